"""stack/rasa_patches.py: custom actions' responses validated with a validator built once;
Rasa's SQLite tracker store in WAL mode.

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
from rasa.shared.core import events as rasa_events
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool, QueuePool

from stack import rasa_patches

STOCK = RemoteAction.__dict__["_validate_action_result"]
STOCK_ENGINE_KWARGS = tracker_store.create_engine_kwargs
STOCK_RESOLVE = rasa_events.Event.__dict__["resolve_by_type"]
ALL = [rasa_patches.ACTION_VALIDATION, rasa_patches.SQLITE_TRACKER, rasa_patches.EVENT_TYPES]


def unpatch() -> None:
    RemoteAction._validate_action_result = STOCK
    tracker_store.create_engine_kwargs = STOCK_ENGINE_KWARGS
    rasa_events.Event.resolve_by_type = STOCK_RESOLVE
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
    assert rasa_patches.apply({}) == ALL
    assert RemoteAction.__dict__["_validate_action_result"] is first
    assert first.__wrapped__ is STOCK
    assert tracker_store.create_engine_kwargs.__wrapped__ is STOCK_ENGINE_KWARGS
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
