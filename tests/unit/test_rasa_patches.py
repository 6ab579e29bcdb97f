"""stack/rasa_patches.py: custom actions' responses validated with a validator built once
(each event against its own type's part of the schema); Rasa's SQLite tracker store in WAL mode,
its events read and written without ORM objects; the action server called over kept-alive
connections.

What must hold: the patch applies on the pinned Rasa (and this file fails on any other, so an
upgrade makes someone re-check it), valid responses pass, every invalid response is still
rejected exactly as stock Rasa rejects it (same exception type, message, path), the schema
is no longer re-checked per call, another Rasa version or the switch leaves Rasa's code
alone, and the tracker store still saves and reads conversations, now in WAL mode.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema.validators import validator_for
from rasa.core import tracker_store
from rasa.core.actions.action import RemoteAction
from rasa.core.tracker_store import SQLTrackerStore
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core import events as rasa_events
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import ClientResponseError, EndpointConfig
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool, QueuePool

from stack import rasa_patches

STOCK = RemoteAction.__dict__["_validate_action_result"]
STOCK_ENGINE_KWARGS = tracker_store.create_engine_kwargs
STOCK_RESOLVE = rasa_events.Event.__dict__["resolve_by_type"]
STOCK_REQUEST = EndpointConfig.__dict__["request"]
STOCK_SQL = {name: SQLTrackerStore.__dict__[name] for name in ("_retrieve", "save")}
STOCK_RUN = DaskGraphRunner.__dict__["run"]
ALL = [rasa_patches.ACTION_VALIDATION, rasa_patches.SQLITE_TRACKER, rasa_patches.EVENT_TYPES,
       rasa_patches.ENDPOINT_SESSIONS, rasa_patches.SQL_EVENTS, rasa_patches.GRAPH_RUNNER]


def unpatch() -> None:
    RemoteAction._validate_action_result = STOCK
    tracker_store.create_engine_kwargs = STOCK_ENGINE_KWARGS
    rasa_events.Event.resolve_by_type = STOCK_RESOLVE
    EndpointConfig.request = STOCK_REQUEST
    for name, method in STOCK_SQL.items():
        setattr(SQLTrackerStore, name, method)
    DaskGraphRunner.run = STOCK_RUN
    if event.contains(Engine, "connect", rasa_patches._sqlite_pragmas):
        event.remove(Engine, "connect", rasa_patches._sqlite_pragmas)


@pytest.fixture
def patched() -> Iterator[None]:
    assert rasa_patches.apply({}) == ALL
    yield
    unpatch()


@pytest.fixture(autouse=True)
def stock_afterwards() -> Iterator[None]:
    unpatch()
    yield
    unpatch()


def action() -> RemoteAction:
    return RemoteAction("action_explain_decision", None)


def outcome(result: Any) -> tuple[str, ...]:
    """What validating ``result`` does: passes, or which error, with what."""
    try:
        assert action()._validate_action_result(result) is True
    except jsonschema.ValidationError as exc:
        return (type(exc).__name__, exc.message, repr(list(exc.path)),
                repr(list(exc.schema_path)), str(exc.validator))
    return ("valid",)


def every_event_kind() -> list[dict[str, Any]]:
    """One event of each kind an action may return, serialised the way rasa-sdk sends them."""
    made = [
        rasa_events.SlotSet("decision", {"borrower_id": "b", "reasons": [{"code": "X"}]}),
        rasa_events.SlotSet("appeal_ids", ["A1", "A2"]),
        rasa_events.SlotSet("pending_offer", None),
        rasa_events.SessionStarted(),
        rasa_events.ActionExecuted("action_listen"),
        rasa_events.ConversationPaused(),
        rasa_events.ConversationResumed(),
        rasa_events.Restarted(),
        rasa_events.BotUttered("hello", {"buttons": [{"title": "t", "payload": "/p"}]}),
        rasa_events.UserUttered("hi", {"name": "greet", "confidence": 1.0}),
        rasa_events.ActiveLoop("appeal_form"),
        rasa_events.ActiveLoop(None),
        rasa_events.FollowupAction("action_file_appeal"),
        rasa_events.AllSlotsReset(),
        rasa_events.ReminderScheduled("intent", rasa_events.datetime.now()),
        rasa_events.ReminderCancelled(name="r"),
        rasa_events.StoryExported(),
        rasa_events.ActionReverted(),
        rasa_events.UserUtteranceReverted(),
        rasa_events.AgentUttered("agent text"),
        rasa_events.LoopInterrupted(True),
        rasa_events.ActionExecutionRejected("action_x"),
        rasa_events.EntitiesAdded([{"entity": "product", "value": "jiebei"}]),
        rasa_events.DefinePrevUserUtteredFeaturization(False),
    ]
    return [e.as_dict() for e in made]


VALID: list[Any] = [
    {},
    {"events": [], "responses": []},
    {"events": every_event_kind(), "responses": [{"text": "hi", "buttons": []}]},
    {"events": [{"event": "slot", "name": "language", "value": "en", "timestamp": None}]},
    {"responses": [{"template": "utter_greet"}, {"response": "utter_goodbye"}]},
    {"events": [{"event": "action", "name": "action_listen"}], "extra": "ignored"},
    # the one event schema with a oneOf of its own: the first branch holds, the second not
    {"events": [{"event": "user", "parse_data": {"response_selector": {
        "all_retrieval_intents": []}}}]},
    {"events": [{"event": "bot", "text": None, "data": {"custom": {"any": "thing"}},
                 "metadata": {"utter_action": "utter_greet"}}]},
]

INVALID: list[Any] = [
    [],
    "events",
    None,
    {"events": {}},
    {"events": "slot"},
    {"events": [{}]},
    {"events": [{"event": "no_such_event"}]},
    {"events": [{"event": "slot"}]},
    {"events": [{"event": "slot", "name": 3, "value": 1}]},
    {"events": [{"event": "slot", "name": "a"}]},
    {"events": [{"event": "user", "text": 5}]},
    {"events": [{"event": "user", "text": "x", "parse_data": "not an object"}]},
    {"events": [{"event": "user", "text": "x", "parse_data": {"entities": "x"}}]},
    {"events": [{"event": "slot", "name": "ok", "value": 1}, "not an event"]},
    {"events": [{"event": "action", "name": "a", "timestamp": "yesterday"}]},
    {"responses": {}},
    {"responses": ["text"]},
    {"responses": [{"text": "fine"}, 7]},
    # found by the event's own type since the event validation dispatches on it
    {"events": [{"event": 5}]},
    {"events": [{"event": ["slot"]}]},
    {"events": [{"event": None, "name": "a", "value": 1}]},
    {"events": [{"event": "entities"}]},
    {"events": [{"event": "entities", "entities": [{"entity": "x"}]}]},
    {"events": [{"event": "slot", "name": "a", "value": 1, "metadata": "x"}]},
    {"events": [{"event": "action", "name": "a", "hide_rule_turn": "yes"}]},
    {"events": [{"event": "bot"}, {"event": "slot", "name": "a", "value": 1},
                {"event": "Slot", "name": "a", "value": 1}]},
    {"events": [{"event": "user", "parse_data": {"intent": {"name": 1}}}]},
    {"events": [{"event": "user", "parse_data": {"response_selector": {
        "all_retrieval_intents": "x"}}}]},
    # both branches of its oneOf hold: refused
    {"events": [{"event": "user", "parse_data": {"response_selector": {"faq": {}}}}]},
]


def test_patch_is_pinned_to_the_installed_rasa() -> None:
    """Fails after a Rasa upgrade: re-check stack/rasa_patches.py against the new Rasa's
    ``RemoteAction._validate_action_result``, then move PINNED_RASA."""
    import rasa

    assert rasa.__version__ == rasa_patches.PINNED_RASA
    assert rasa_patches.apply({}) == ALL
    assert rasa_patches.active() == ALL


def test_the_patch_uses_the_validator_class_stock_rasa_uses(patched: None) -> None:
    schema = RemoteAction.action_response_format_spec()
    assert validator_for(schema) is jsonschema.Draft202012Validator


def test_events_are_checked_against_their_own_type_in_the_pinned_schema() -> None:
    """The dispatch applies to Rasa 3.6.21's schema: its 23 event types, each required by
    name; a schema of another shape is validated whole."""
    outer, branches = rasa_patches._event_branches(RemoteAction.action_response_format_spec())
    assert len(branches) == 23 and {"user", "bot", "slot", "action", "session_started",
                                    "entities", "agent"} <= set(branches)
    assert "oneOf" not in outer["properties"]["events"]["items"]
    assert outer["properties"]["events"]["items"]["required"] == ["event"]
    same_name = {"type": "object", "properties": {"events": {"type": "array", "items": {
        "type": "object", "properties": {"event": {"type": "string"}}, "required": ["event"],
        "oneOf": [{"properties": {"event": {"const": "a"}}},
                  {"properties": {"event": {"const": "a"}}}]}}}}
    assert rasa_patches._event_branches(same_name) is None  # oneOf would refuse every "a"
    assert rasa_patches._event_branches({"type": "object"}) is None


def test_the_response_schema_is_not_walked_for_every_event_type(
        patched: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the dispatch saves: stock validation tries each event against all 23 types."""
    tried: list[Any] = []
    real = jsonschema._validators.const  # type: ignore[attr-defined]

    def counting(validator: Any, const: Any, instance: Any, schema: Any) -> Any:
        tried.append(const)
        return real(validator, const, instance, schema)

    monkeypatch.setitem(jsonschema.Draft202012Validator.VALIDATORS, "const", counting)
    events = [{"event": "slot", "name": "a", "value": 1}, {"event": "bot", "text": "hi"}]
    assert outcome({"events": events}) == ("valid",)
    assert sorted(tried) == ["bot", "slot"]


@pytest.mark.parametrize("result", VALID, ids=range(len(VALID)))
def test_valid_responses_pass_as_before(result: Any) -> None:
    stock = outcome(result)
    rasa_patches.apply({})
    assert stock == ("valid",)
    assert outcome(result) == ("valid",)


@pytest.mark.parametrize("result", INVALID, ids=range(len(INVALID)))
def test_invalid_responses_are_rejected_exactly_as_before(result: Any) -> None:
    stock = outcome(result)
    rasa_patches.apply({})
    assert rasa_patches.active() == ALL
    assert stock[0] == "ValidationError"
    assert "Failed to validate Action server response" in stock[1]
    assert outcome(result) == stock


def test_the_schema_is_checked_once_not_per_response(monkeypatch: pytest.MonkeyPatch) -> None:
    checks: list[Any] = []
    real = jsonschema.Draft202012Validator.check_schema.__func__  # type: ignore[attr-defined]

    def counting(cls: type, schema: Any, *args: Any, **kwargs: Any) -> None:
        checks.append(schema)
        real(cls, schema, *args, **kwargs)

    monkeypatch.setattr(jsonschema.Draft202012Validator, "check_schema", classmethod(counting))
    assert outcome(VALID[2]) == ("valid",)
    assert len(checks) == 1  # stock Rasa: once per response
    checks.clear()
    rasa_patches.apply({})
    assert len(checks) == 1  # at start-up
    for _ in range(5):
        assert outcome(VALID[2]) == ("valid",)
    assert len(checks) == 1


def test_another_rasa_version_keeps_stock_behaviour_and_says_so(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import rasa

    monkeypatch.setattr(rasa, "__version__", "3.7.0")
    assert rasa_patches.apply({}) == []
    assert RemoteAction.__dict__["_validate_action_result"] is STOCK
    assert tracker_store.create_engine_kwargs is STOCK_ENGINE_KWARGS
    assert rasa_events.Event.__dict__["resolve_by_type"] is STOCK_RESOLVE
    assert EndpointConfig.__dict__["request"] is STOCK_REQUEST
    assert {n: SQLTrackerStore.__dict__[n] for n in STOCK_SQL} == STOCK_SQL
    assert DaskGraphRunner.__dict__["run"] is STOCK_RUN
    assert not event.contains(Engine, "connect", rasa_patches._sqlite_pragmas)
    assert rasa_patches.active() == []
    err = capsys.readouterr().err
    assert "WARNING" in err and "3.7.0" in err and rasa_patches.PINNED_RASA in err


def test_the_switch_leaves_rasa_alone(capsys: pytest.CaptureFixture[str]) -> None:
    assert rasa_patches.apply({rasa_patches.SWITCH_VARIABLE: "off"}) == []
    assert RemoteAction.__dict__["_validate_action_result"] is STOCK
    assert tracker_store.create_engine_kwargs is STOCK_ENGINE_KWARGS
    assert rasa_patches.active() == []
    assert "switched off" in capsys.readouterr().err


def test_applying_twice_patches_once(patched: None) -> None:
    first = RemoteAction.__dict__["_validate_action_result"]
    request, save = EndpointConfig.__dict__["request"], SQLTrackerStore.__dict__["save"]
    assert rasa_patches.apply({}) == ALL
    assert RemoteAction.__dict__["_validate_action_result"] is first
    assert first.__wrapped__ is STOCK
    assert tracker_store.create_engine_kwargs.__wrapped__ is STOCK_ENGINE_KWARGS
    assert EndpointConfig.__dict__["request"] is request and request.__wrapped__ is STOCK_REQUEST
    assert SQLTrackerStore.__dict__["save"] is save and save.__wrapped__ is STOCK_SQL["save"]
    assert event.contains(Engine, "connect", rasa_patches._sqlite_pragmas)


def test_a_subclass_with_its_own_schema_gets_stock_validation(patched: None) -> None:
    class Strict(RemoteAction):
        @staticmethod
        def action_response_format_spec() -> dict[str, Any]:
            return {"type": "object", "required": ["events"]}

    with pytest.raises(jsonschema.ValidationError, match="'events' is a required property"):
        Strict("x", None)._validate_action_result({})


def test_other_databases_get_rasas_own_engine_arguments(patched: None) -> None:
    for url in ("postgresql://u:p@127.0.0.1:5432/rasa", "sqlite://", "sqlite:///:memory:"):
        assert tracker_store.create_engine_kwargs(url) == STOCK_ENGINE_KWARGS(url)


def test_stock_rasa_opens_an_unpooled_sqlite_in_rollback_journal_mode(tmp_path: Path) -> None:
    """What the patch is for (if this fails, Rasa changed: re-measure before keeping it)."""
    store = SQLTrackerStore(None, dialect="sqlite", db=str(tmp_path / "stock.db"))
    assert isinstance(store.engine.pool, NullPool)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"


@pytest.mark.filterwarnings("ignore:Slot auto-fill")  # Rasa says it for any slots
def test_the_sqlite_tracker_store_runs_in_wal_mode_and_keeps_conversations(
        patched: None, tmp_path: Path) -> None:
    domain = Domain.from_yaml("version: '3.1'\nintents: [greet]\n"
                              "slots:\n  language:\n    type: text\n    mappings: "
                              "[{type: custom}]\n")
    store = SQLTrackerStore(domain, dialect="sqlite", db=str(tmp_path / "tracker.db"))
    assert isinstance(store.engine.pool, QueuePool)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    tracker = DialogueStateTracker.from_events("c-1", [
        rasa_events.ActionExecuted("action_session_start"), rasa_events.SessionStarted(),
        rasa_events.SlotSet("language", "en"), rasa_events.ActionExecuted("action_listen"),
        rasa_events.UserUttered("hi", {"name": "greet", "confidence": 1.0}),
    ], slots=domain.slots)
    asyncio.run(store.save(tracker))
    again = asyncio.run(store.retrieve("c-1"))
    assert again is not None and again.get_slot("language") == "en"
    # the latest session, as stock Rasa reads it back
    assert [e.as_dict() for e in again.events] == [e.as_dict() for e in tracker.events][1:]
    with sqlite3.connect(tmp_path / "tracker.db") as raw:  # the mode stays with the file
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def lookup(resolve: Any, name: str) -> Any:
    try:
        return resolve(name)
    except ValueError as exc:
        return str(exc)


def test_event_classes_are_found_as_stock_rasa_finds_them(patched: None) -> None:
    stock = STOCK_RESOLVE.__func__
    names = sorted({cls.type_name for cls in rasa_events.Event.__subclasses__()}
                   | {e["event"] for e in every_event_kind()} | {"event", "topic", ""})
    for name in names:  # "event" is the abstract base's: stock Rasa refuses it too
        assert lookup(rasa_events.Event.resolve_by_type, name) == lookup(stock, name), name
    assert rasa_events.Event.resolve_by_type("topic") is None
    assert rasa_events.Event.resolve_by_type("no_such", rasa_events.SlotSet) is \
        rasa_events.SlotSet
    with pytest.raises(ValueError, match="Unknown event name 'no_such'"):
        rasa_events.Event.resolve_by_type("no_such")
    # what goes through it: every event read back from the store or an action's response
    serialised = every_event_kind()
    assert [e.as_dict() for e in rasa_events.deserialise_events(serialised)] == serialised


def test_an_event_class_imported_later_is_found(patched: None) -> None:
    class LateEvent(rasa_events.ConversationPaused):
        type_name = "relend_late_event"

    assert rasa_events.Event.resolve_by_type("relend_late_event") is LateEvent


# --- the action server over kept-alive connections -------------------------------------------

class ActionServer:
    """A stand-in action server on loopback: answers ``POST /webhook`` with what ``answer``
    says, remembers each request's headers and the connections it arrived on."""

    def __init__(self) -> None:
        self.connections: set[int] = set()
        self.headers: list[dict[str, str]] = []
        self.status, self.body = 200, {"events": [], "responses": []}
        self.url = ""
        self._runner: Any = None

    async def __aenter__(self) -> ActionServer:
        from aiohttp import web

        async def webhook(request: web.Request) -> web.Response:
            self.connections.add(id(request.transport))
            self.headers.append(dict(request.headers))
            await request.json()
            return web.json_response(self.body, status=self.status)

        app = web.Application()
        app.router.add_post("/webhook", webhook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/webhook"
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._runner.cleanup()


def calls(count: int, *, status: int = 200, body: Any = None) -> tuple[ActionServer, list[Any]]:
    """``count`` action calls through an endpoint like endpoints.yml's, one after the other."""
    async def run() -> tuple[ActionServer, list[Any]]:
        async with ActionServer() as server:
            server.status = status
            if body is not None:
                server.body = body
            endpoint = EndpointConfig(server.url, headers={"Authorization": "Bearer t"})
            answers = []
            for n in range(count):
                try:
                    answers.append(await endpoint.request(json={"n": n}, method="post",
                                                          timeout=10))
                except ClientResponseError as exc:
                    answers.append((exc.status, exc.text))
            return server, answers

    return asyncio.run(run())


def test_stock_rasa_opens_a_connection_per_action_call() -> None:
    """What the patch is for (if this fails, Rasa changed: re-measure before keeping it)."""
    server, answers = calls(3)
    assert answers == [{"events": [], "responses": []}] * 3
    assert len(server.connections) == 3


def test_action_calls_reuse_one_connection_and_answer_as_before(patched: None) -> None:
    server, answers = calls(3)
    assert answers == [{"events": [], "responses": []}] * 3
    assert len(server.connections) == 1
    assert all(h["Authorization"] == "Bearer t" and h["Content-Type"] == "application/json"
               for h in server.headers)


def test_an_error_answer_is_raised_as_before(patched: None) -> None:
    """A 400 (rasa-sdk's ActionExecutionRejection) still reaches Rasa as ClientResponseError
    with the body, which RemoteAction.run reads; the next call still works."""
    rejected = {"error": "no", "action_name": "action_x"}
    unpatch()
    _, stock = calls(2, status=400, body=rejected)
    rasa_patches.apply({})
    _, answers = calls(2, status=400, body=rejected)
    assert answers == stock
    assert answers[0][0] == 400 and b"action_x" in answers[0][1]


def test_a_connection_the_server_closed_is_not_reused(patched: None) -> None:
    """The action server restarted between two calls: the second goes out on a new
    connection, not the dead one."""
    async def run() -> list[Any]:
        answers = []
        async with ActionServer() as first:
            endpoint = EndpointConfig(first.url)
            answers.append(await endpoint.request(json={}, method="post"))
            port = int(first.url.rsplit(":", 1)[1].split("/")[0])
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/webhook", lambda _r: web.json_response({"events": []}))
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await asyncio.sleep(0.05)
            answers.append(await endpoint.request(json={}, method="post"))
        finally:
            await runner.cleanup()
        return answers

    assert asyncio.run(run()) == [{"events": [], "responses": []}, {"events": []}]


def test_idle_connections_are_dropped_before_the_action_server_drops_them() -> None:
    from sanic.config import DEFAULT_CONFIG

    assert DEFAULT_CONFIG["KEEP_ALIVE_TIMEOUT"] > rasa_patches.KEEPALIVE_SECONDS


# --- the SQL tracker store without ORM objects ------------------------------------------------

def conversation(domain: Domain) -> DialogueStateTracker:
    return DialogueStateTracker.from_events("c-1", [
        rasa_events.ActionExecuted("action_session_start", timestamp=1_800_000_000.0),
        rasa_events.SessionStarted(timestamp=1_800_000_000.1),
        rasa_events.SlotSet("language", "en", timestamp=1_800_000_000.2),
        rasa_events.ActionExecuted("action_listen", timestamp=1_800_000_000.3),
        rasa_events.UserUttered("hi", {"name": "greet", "confidence": 1.0},
                                timestamp=1_800_000_000.4),
        rasa_events.BotUttered("hello", {"buttons": []}, timestamp=1_800_000_000.5),
    ], slots=domain.slots)


def stored_rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as raw:
        return raw.execute("SELECT id, sender_id, type_name, timestamp, intent_name, "
                           "action_name, data FROM events ORDER BY id").fetchall()


@pytest.mark.filterwarnings("ignore:Slot auto-fill")
def test_the_tracker_store_writes_and_reads_what_stock_rasa_does(tmp_path: Path) -> None:
    domain = Domain.from_yaml("version: '3.1'\nintents: [greet]\n"
                              "slots:\n  language:\n    type: text\n    mappings: "
                              "[{type: custom}]\n")

    def save_twice_and_read(path: Path) -> Any:
        store = SQLTrackerStore(domain, dialect="sqlite", db=str(path))
        asyncio.run(store.save(conversation(domain)))
        tracker = asyncio.run(store.retrieve("c-1"))  # as a turn reads it, then adds to it
        tracker.update(rasa_events.ActionExecuted("action_listen", timestamp=1_800_000_001.0))
        asyncio.run(store.save(tracker))
        return asyncio.run(store.retrieve_full_tracker("c-1"))

    stock = save_twice_and_read(tmp_path / "stock.db")
    rasa_patches.apply({})
    patched = save_twice_and_read(tmp_path / "patched.db")
    rows = stored_rows(tmp_path / "patched.db")
    assert rows == stored_rows(tmp_path / "stock.db")
    assert [r[2] for r in rows] == ["action", "session_started", "slot", "action", "user", "bot",
                                    "action"]
    assert rows[4][4] == "greet" and rows[0][5] == "action_session_start"
    assert [e.as_dict() for e in patched.events] == [e.as_dict() for e in stock.events]
    assert patched.get_slot("language") == "en"


def test_with_the_fixes_a_turn_still_stores_every_event_it_added(
        patched: None, tmp_path: Path) -> None:
    """stack/rasa_fixes.py wraps the patched save (the stack applies both): the interleaving
    of tests/topology/test_rasa_concurrent_save.py stores and publishes each event once."""
    from stack import rasa_fixes
    from tests.topology.test_rasa_concurrent_save import _interleaved

    saved = {n: SQLTrackerStore.__dict__.get(n) for n in
             ("_retrieve", "_additional_events", "save", "stream_events", "_event_query")}
    try:
        rasa_fixes._patch_session_query()
        rasa_fixes._patch_save_what_was_added()
        assert rasa_patches.active() == ALL
        stored, published = _interleaved(tmp_path / "both.db")
    finally:
        for name, method in saved.items():
            setattr(SQLTrackerStore, name, method)
    user, bot = ("user", "我还清了为什么借不了"), ("bot", "因为定期综合评估")
    assert stored == [("action", "action_session_start"), ("session_started", ""),
                      ("action", "action_listen"), ("action", "action_listen"), user, bot,
                      ("action", "action_listen")], stored
    assert published == [("action", "action_listen"), user, bot, ("action", "action_listen")]


# --- the model's graph run in dependency order ------------------------------------------------

def graph_runs(tmp_path: Path) -> dict[str, Any]:
    """A small graph of real Rasa graph nodes (two branches joined, an input, a node that
    fails on a given input) run by whatever DaskGraphRunner.run is now: each run's result,
    or the exception it raised, and the order the nodes ran in."""
    from rasa.engine.graph import ExecutionContext, GraphComponent, GraphSchema, SchemaNode
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    ran: list[str] = []

    class Step(GraphComponent):
        def __init__(self, config: dict[str, Any]) -> None:
            self.name = config["name"]

        @classmethod
        def create(cls, config: dict[str, Any], model_storage: Any, resource: Any,
                   execution_context: Any) -> Step:
            return cls(config)

        def start(self, text: str) -> str:
            ran.append(self.name)
            if text == "fail":
                raise ValueError("the component refused it")
            return text.strip()

        def one(self, text: str) -> list[str]:
            ran.append(self.name)
            return text.split()

        def two(self, text: str) -> int:
            ran.append(self.name)
            return len(text)

        def join(self, words: list[str], length: int) -> dict[str, Any]:
            ran.append(self.name)
            return {"words": words, "length": length}

    def node(fn: str, needs: dict[str, str], **kwargs: Any) -> SchemaNode:
        return SchemaNode(needs=needs, uses=Step, constructor_name="create", fn=fn,
                          config={"name": fn}, **kwargs)

    schema = GraphSchema({
        "start": node("start", {"text": "__text__"}),
        "one": node("one", {"text": "start"}),
        "two": node("two", {"text": "start"}),
        "join": node("join", {"words": "one", "length": "two"}, is_target=True),
        "unused": node("two", {"text": "__text__"}),
    })
    runner = DaskGraphRunner(schema, LocalModelStorage(tmp_path),
                             ExecutionContext(schema, "m"))
    outcomes: dict[str, Any] = {}
    for label, inputs, targets in (("joined", {"__text__": " a b c "}, ["join"]),
                                   ("two targets", {"__text__": "x y"}, ["one", "join"]),
                                   ("fails", {"__text__": "fail"}, ["join"]),
                                   ("clash", {"__text__": "start"}, ["join"])):
        ran.clear()
        try:
            outcomes[label] = runner.run(inputs, targets)
        except Exception as exc:  # Rasa's GraphNode wraps a component's exception
            outcomes[label] = (type(exc).__name__, str(exc), repr(exc.__cause__))
        outcomes[label + " ran"] = sorted(ran)
    return outcomes


def test_the_graph_runs_as_with_dasks_scheduler(tmp_path: Path) -> None:
    stock = graph_runs(tmp_path / "stock")
    assert stock["joined"] == {"join": {"words": ["a", "b", "c"], "length": 5}}
    assert stock["fails"] == ("GraphComponentException", "Error running graph component for "
                              "node start.", "ValueError('the component refused it')")
    assert stock["clash"][0] == "GraphRunError"
    rasa_patches.apply({})
    assert graph_runs(tmp_path / "patched") == stock
