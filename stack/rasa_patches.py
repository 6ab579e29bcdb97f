"""Run-time fixes to Rasa, pinned to the Rasa version they were written and tested for.

The project does not change Rasa's source. ``stack/rasa_run.py`` (how the stack starts Rasa)
calls :func:`apply` before handing over to Rasa's command line, so the patches are active in
every Rasa server the stack starts; nothing else imports this module.

**Action responses validated with a validator built once.** Rasa 3.6's
``RemoteAction._validate_action_result`` checks every custom action's response with
``jsonschema.validate(result, RemoteAction.action_response_format_spec())``. That call picks
the validator class for the schema, checks the schema against its meta-schema and builds a
new validator *every time*: about 38 ms of CPU per custom action here (jsonschema 4.17.3),
three quarters of Rasa's CPU in a turn (docs/performance.md). The patch builds the same
validator class (``jsonschema.validators.validator_for`` of the same schema: Draft 2020-12
with jsonschema 4.17), checks the schema once at start-up, and answers a valid response with
``validator.is_valid`` (about 1 ms). An *invalid* response is handed to Rasa's own method,
which validates it again and raises exactly what it raised before: the same
``jsonschema.ValidationError`` (``best_match`` of the errors), with the same message.

The validator checks each event of a response against its own type's part of the schema:
Rasa's events schema is a ``oneOf`` of 23 event types, each requiring its name
(``properties.event.const``), so stock validation tries every event against all 23 and
builds an error for each of the 22 it is not (10 times the work for a response of 8 events).
An event is valid for the ``oneOf`` exactly when it is valid for the one branch whose name it
carries (the names are distinct and ``event`` is required), so the patch validates the
schema without the ``oneOf`` and then each event against that branch; a schema of any other
shape is validated whole.

**Custom actions over kept-alive connections.** ``EndpointConfig.request`` opens a new aiohttp
session, and so a new TCP connection, for every action call. The patch runs Rasa's own
``request`` with ``session()`` lending one session per endpoint and event loop, made the way
Rasa makes it (headers, basic auth, total timeout); idle connections are closed after
:data:`KEEPALIVE_SECONDS`, before the action server's Sanic closes them (5 s), so a request
never goes out on a connection the server is closing.

**SQL tracker store without ORM objects.** ``SQLTrackerStore.save`` adds one ORM object per
new event, and the flush inserts them one by one, fetching each id back; ``_retrieve`` builds
an ORM object per stored event to read its ``data``. The patch inserts the same rows with one
``executemany`` INSERT (in order: the ids keep the conversation's order) and reads only the
``data`` column, with the same query (stack/rasa_fixes.py's, when applied).

**The model's graph run in dependency order.** ``DaskGraphRunner.run`` hands graphs of a few
nodes (the NLU pipeline, the policies; about three runs a turn) to dask's threaded
scheduler machinery (``dask.get``: ordering, state, a futures pool): 5-7% of Rasa's CPU. The
patch runs the same graph with ``dask.core.get``, dask's sequential reference scheduler:
the same tasks, results and exceptions.

**SQLite tracker store: pooled connections in WAL mode.** Rasa's ``SQLTrackerStore`` opens
SQLite with SQLAlchemy's defaults: a new connection for every read and save (no pool for
SQLite files in SQLAlchemy 1.4), in rollback-journal mode with ``synchronous=FULL``. Every
save then waits for several fsyncs (about 10 ms here) on Rasa's event loop, so every other
conversation waits too. The patch wraps ``rasa.core.tracker_store.create_engine_kwargs`` so
that an SQLite *file* gets a connection pool (``QueuePool``, as common/db.py gives the desk
and the backend), and each SQLite connection the Rasa process opens gets
``journal_mode=WAL`` and ``synchronous=NORMAL`` (an SQLAlchemy ``connect`` listener), the
settings of the desk's and the backend's databases: a commit survives a crash of any
process; only a power cut may lose the last commits. Other databases (PostgreSQL in
production) get exactly Rasa's engine arguments.

**Event classes looked up from a table.** Every event read from the tracker store or an
action's response goes through ``Event.resolve_by_type(type_name)``, which walks all
subclasses of ``Event`` (``all_subclasses``, with an ``inspect.isabstract`` check each) to
find the one with that ``type_name``: about 6% of Rasa's CPU per turn, for a conversation's
few dozen events. The patch keeps a table from type name to class, built with the same walk
and keeping the first class per name, as the walk does; a name not in the table rebuilds it
(a subclass imported since) and then behaves exactly as Rasa does (``topic``, the default,
or ``ValueError``).

**Another Rasa version: stock behaviour, with a warning.** If the installed Rasa is not
:data:`PINNED_RASA` nothing is patched (nor is a patch whose target is missing) and a warning
says so: Rasa then runs, correctly, at its own speed. A performance patch must never stop
the assistant from starting. The unit tests (tests/unit/test_rasa_patches.py) fail on any
other Rasa version, so an upgrade cannot pass CI without someone re-checking this file.
``RELEND_RASA_PATCHES=off`` also leaves Rasa as it is (to compare, or to rule the patch
out while investigating).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from collections.abc import Callable
from typing import Any

PINNED_RASA = "3.6.21"
SWITCH_VARIABLE = "RELEND_RASA_PATCHES"
ACTION_VALIDATION = "action response validator built once"
SQLITE_TRACKER = "SQLite tracker store: pooled connections in WAL mode"
EVENT_TYPES = "event classes looked up by type name from a table"
ENDPOINT_SESSIONS = "action server calls over kept-alive connections"
SQL_EVENTS = "SQL tracker store: events read and written without ORM objects"
GRAPH_RUNNER = "model graph run in dependency order without dask's scheduler"


class _OnePerThread:
    """The validator, built once per thread: jsonschema's ``$ref`` resolver keeps a scope
    stack while it validates, so one instance is not shared between threads (Rasa validates
    on its event loop's thread; this keeps it correct anywhere else too)."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._local = threading.local()

    def get(self) -> Any:
        validator = getattr(self._local, "validator", None)
        if validator is None:
            validator = self._local.validator = self._build()
        return validator


def _event_branches(schema: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The response schema without the events' ``oneOf``, and that ``oneOf``'s branches by the
    event name each one requires (``properties.event.const``); None unless the schema has
    exactly the shape this relies on (see ``_patch_action_validation``)."""
    events = schema.get("properties", {}).get("events")
    item = events.get("items") if isinstance(events, dict) else None
    if not isinstance(item, dict) or item.get("type") != "object" \
            or item.get("required") != ["event"] \
            or item.get("properties", {}).get("event") != {"type": "string"} \
            or not isinstance(item.get("oneOf"), list):
        return None
    branches: dict[str, Any] = {}
    for branch in item["oneOf"]:
        name = branch.get("properties", {}).get("event", {}).get("const") \
            if isinstance(branch, dict) else None
        if not isinstance(name, str) or name in branches:
            return None
        branches[name] = branch
    without = {key: value for key, value in item.items() if key != "oneOf"}
    outer = {**schema, "properties": {**schema["properties"],
                                      "events": {**events, "items": without}}}
    return outer, branches


def _patch_action_validation() -> None:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    original = RemoteAction.__dict__.get("_validate_action_result")
    spec = RemoteAction.__dict__.get("action_response_format_spec")
    if getattr(original, "relend_patch", None) == ACTION_VALIDATION:
        return  # already applied in this process
    if original is None:
        raise LookupError("RemoteAction._validate_action_result is missing")
    if not isinstance(spec, staticmethod):
        raise LookupError("RemoteAction.action_response_format_spec is not a static method")
    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)  # the class jsonschema.validate picks for it
    validator_class.check_schema(schema)  # what jsonschema.validate re-did on every call
    split = _event_branches(schema)

    def build() -> Callable[[Any], bool]:
        if split is None:  # not the shape the dispatch relies on: the whole schema
            return validator_class(schema).is_valid
        # parts of the schema checked above: no check of their own
        outer = validator_class(split[0]).is_valid
        branches = {name: validator_class(branch).is_valid
                    for name, branch in split[1].items()}

        def is_valid(result: Any) -> bool:
            if not outer(result):
                return False
            for event in result.get("events") or ():
                name = event.get("event")  # a string: ``outer`` checked it
                branch = branches.get(name) if isinstance(name, str) else None
                if branch is None or not branch(event):
                    return False
            return True

        return is_valid

    validators = _OnePerThread(build)

    def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        if type(self).action_response_format_spec is not RemoteAction.action_response_format_spec:
            return original(self, result)  # a subclass with a schema of its own
        if validators.get()(result):
            return True
        # invalid: Rasa's own method raises its exception, message and all
        return original(self, result)

    _validate_action_result.relend_patch = ACTION_VALIDATION  # type: ignore[attr-defined]
    _validate_action_result.__wrapped__ = original  # type: ignore[attr-defined]
    _validate_action_result.__doc__ = original.__doc__
    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _is_sqlite_file(url: Any) -> bool:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "",
                                                                            ":memory:")


def _patch_sqlite_tracker_store() -> None:
    from rasa.core import tracker_store
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import QueuePool

    original = tracker_store.__dict__.get("create_engine_kwargs")
    if getattr(original, "relend_patch", None) == SQLITE_TRACKER:
        return  # already applied in this process
    if original is None:
        raise LookupError("rasa.core.tracker_store.create_engine_kwargs is missing")

    def create_engine_kwargs(url: Any) -> dict[str, Any]:
        kwargs = original(url)
        if not _is_sqlite_file(url):
            return kwargs
        # SQLAlchemy 1.4 opens and closes a new SQLite connection per session; closing the
        # last one checkpoints the WAL (an fsync). Keep connections open in a pool instead.
        connect_args = {**kwargs.get("connect_args", {}), "check_same_thread": False}
        return {**kwargs, "poolclass": QueuePool, "pool_size": 2, "max_overflow": 8,
                "connect_args": connect_args}

    create_engine_kwargs.relend_patch = SQLITE_TRACKER  # type: ignore[attr-defined]
    create_engine_kwargs.__wrapped__ = original  # type: ignore[attr-defined]
    tracker_store.create_engine_kwargs = create_engine_kwargs
    if not event.contains(Engine, "connect", _sqlite_pragmas):
        event.listen(Engine, "connect", _sqlite_pragmas)


def _patch_event_lookup() -> None:
    from rasa.shared.core import events
    from rasa.shared.utils.common import all_subclasses

    original = events.Event.__dict__.get("resolve_by_type")
    if getattr(getattr(original, "__func__", None), "relend_patch", None) == EVENT_TYPES:
        return  # already applied in this process
    if not isinstance(original, staticmethod):
        raise LookupError("Event.resolve_by_type is missing or not a static method")
    stock = original.__func__
    table: dict[str, type] = {}

    def rebuild() -> None:
        fresh: dict[str, type] = {}
        for cls in all_subclasses(events.Event):
            fresh.setdefault(cls.type_name, cls)  # the first one wins, as in Rasa's walk
        table.clear()
        table.update(fresh)

    def resolve_by_type(type_name: str, default: type | None = None) -> type | None:
        found = table.get(type_name)
        if found is None:
            rebuild()
            found = table.get(type_name)
        return found if found is not None else stock(type_name, default)

    rebuild()
    resolve_by_type.relend_patch = EVENT_TYPES  # type: ignore[attr-defined]
    resolve_by_type.__wrapped__ = stock  # type: ignore[attr-defined]
    resolve_by_type.__doc__ = stock.__doc__
    events.Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[assignment]


# the action endpoint's connections are kept open this long when idle: shorter than the
# action server's keep-alive (Sanic's KEEP_ALIVE_TIMEOUT, 5 s), so a request never goes out on a
# connection the server is closing at that moment
KEEPALIVE_SECONDS = 2.0


class _Lent:
    """``async with`` over a shared session that does not close it at the end."""

    def __init__(self, session: Any) -> None:
        self._session = session

    async def __aenter__(self) -> Any:
        return self._session

    async def __aexit__(self, *_: object) -> None:
        return None


class _SharedSessionView:
    """The endpoint as Rasa's own ``request`` sees it, but ``session()`` lends the endpoint's
    long-lived session instead of making a new one (and a new TCP connection)."""

    def __init__(self, endpoint: Any, session: Any) -> None:
        self._endpoint = endpoint
        self._session = session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._endpoint, name)

    def session(self) -> _Lent:
        return _Lent(self._session)


def _patch_endpoint_sessions() -> None:
    import asyncio

    import aiohttp
    from rasa.core.constants import DEFAULT_REQUEST_TIMEOUT
    from rasa.utils.endpoints import EndpointConfig

    original = EndpointConfig.__dict__.get("request")
    if getattr(original, "relend_patch", None) == ENDPOINT_SESSIONS:
        return  # already applied in this process
    if original is None or not callable(EndpointConfig.__dict__.get("session")):
        raise LookupError("EndpointConfig.request or EndpointConfig.session is missing")

    def shared_session(endpoint: Any) -> Any:
        """The endpoint's session on the running loop, made as Rasa's ``session()`` makes
        one (headers, basic auth, total timeout), with connections kept for reuse."""
        loop = asyncio.get_running_loop()
        settings = (dict(endpoint.headers), dict(endpoint.basic_auth))
        held = endpoint.__dict__.get("_relend_session")
        if held is not None:
            held_loop, held_settings, session = held
            if held_loop is loop and held_settings == settings and not session.closed:
                return session
        auth = aiohttp.BasicAuth(endpoint.basic_auth["username"],
                                 endpoint.basic_auth["password"]) \
            if endpoint.basic_auth else None
        session = aiohttp.ClientSession(
            headers=endpoint.headers, auth=auth,
            timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
            connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS))
        endpoint.__dict__["_relend_session"] = (loop, settings, session)
        return session

    async def request(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await original(_SharedSessionView(self, shared_session(self)), *args, **kwargs)

    request.relend_patch = ENDPOINT_SESSIONS  # type: ignore[attr-defined]
    request.__wrapped__ = original  # type: ignore[attr-defined]
    request.__doc__ = original.__doc__
    EndpointConfig.request = request  # type: ignore[method-assign]


def _patch_sql_events() -> None:
    import json

    import sqlalchemy as sa
    from rasa.core import tracker_store
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.shared.nlu.constants import INTENT_NAME_KEY

    if getattr(SQLTrackerStore.__dict__.get("save"), "relend_patch", None) == SQL_EVENTS:
        return  # already applied in this process
    for name in ("_retrieve", "save", "_event_query", "_additional_events", "stream_events",
                 "session_scope"):
        if not callable(getattr(SQLTrackerStore, name, None)):
            raise LookupError(f"SQLTrackerStore.{name} is missing")
    stock_retrieve = SQLTrackerStore.__dict__["_retrieve"]
    stock_save = SQLTrackerStore.__dict__["save"]
    log = tracker_store.logger

    async def _retrieve(self: Any, sender_id: str, fetch_events_from_all_sessions: bool
                        ) -> DialogueStateTracker | None:
        with self.session_scope() as session:
            rows = self._event_query(session, sender_id,
                                     fetch_events_from_all_sessions=fetch_events_from_all_sessions
                                     ).with_entities(self.SQLEvent.data).all()
            events = [json.loads(row.data) for row in rows]
            if self.domain and len(events) > 0:
                log.debug(f"Recreating tracker from sender id '{sender_id}'")
                return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)
            log.debug(f"Can't retrieve tracker matching sender id '{sender_id}' from SQL "
                      f"storage. Returning `None` instead.")
            return None

    async def save(self: Any, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        with self.session_scope() as session:
            rows = []
            for event in self._additional_events(session, tracker):
                data = event.as_dict()
                rows.append({
                    "sender_id": tracker.sender_id, "type_name": event.type_name,
                    "timestamp": data.get("timestamp"),
                    "intent_name": data.get("parse_data", {}).get("intent", {}).get(
                        INTENT_NAME_KEY),
                    "action_name": data.get("name"), "data": json.dumps(data)})
            if rows:  # one INSERT for all, in order: ids keep the conversation's order
                session.execute(sa.insert(self.SQLEvent.__table__), rows)
            session.commit()
        log.debug(f"Tracker with sender_id '{tracker.sender_id}' stored to database")

    for patched, stock in ((_retrieve, stock_retrieve), (save, stock_save)):
        patched.relend_patch = SQL_EVENTS  # type: ignore[attr-defined]
        patched.__wrapped__ = stock  # type: ignore[attr-defined]
        patched.__doc__ = stock.__doc__
    SQLTrackerStore._retrieve = _retrieve
    SQLTrackerStore.save = save


def _patch_graph_runner() -> None:
    from dask.core import get as get_in_order
    from rasa.engine.exceptions import GraphRunError
    from rasa.engine.runner import dask as dask_runner
    from rasa.engine.runner.dask import DaskGraphRunner

    original = DaskGraphRunner.__dict__.get("run")
    if getattr(original, "relend_patch", None) == GRAPH_RUNNER:
        return  # already applied in this process
    for name in ("run", "_build_dask_graph", "_add_inputs_to_graph"):
        if not callable(getattr(DaskGraphRunner, name, None)):
            raise LookupError(f"DaskGraphRunner.{name} is missing")
    log = dask_runner.logger

    def run(self: Any, inputs: dict[str, Any] | None = None,
            targets: list[str] | None = None) -> dict[str, Any]:
        run_targets = targets if targets else self._graph_schema.target_names
        minimal_schema = self._graph_schema.minimal_graph_schema(run_targets)
        run_graph = self._build_dask_graph(minimal_schema)
        if inputs:
            self._add_inputs_to_graph(inputs, run_graph)
        log.debug(f"Running graph with inputs: {inputs}, targets: {targets} "
                  f"and {self._execution_context}.")
        try:
            # the same graph, its tasks run one after the other in dependency order
            return dict(get_in_order(run_graph, run_targets))
        except RuntimeError as e:
            raise GraphRunError("Error running runner.") from e

    run.relend_patch = GRAPH_RUNNER  # type: ignore[attr-defined]
    run.__wrapped__ = original  # type: ignore[attr-defined]
    run.__doc__ = original.__doc__
    DaskGraphRunner.run = run  # type: ignore[method-assign]


PATCHES: dict[str, Callable[[], None]] = {
    ACTION_VALIDATION: _patch_action_validation,
    SQLITE_TRACKER: _patch_sqlite_tracker_store,
    EVENT_TYPES: _patch_event_lookup,
    ENDPOINT_SESSIONS: _patch_endpoint_sessions,
    SQL_EVENTS: _patch_sql_events,
    GRAPH_RUNNER: _patch_graph_runner,
}


def _say(message: str) -> None:
    # Rasa configures logging only later, in its command line: stderr reaches the log file
    print(f"[relend] {message}", file=sys.stderr, flush=True)


def apply(environ: dict[str, str] | None = None) -> list[str]:
    """Apply the patches if the installed Rasa is the pinned one; returns those applied."""
    environ = os.environ if environ is None else environ
    if environ.get(SWITCH_VARIABLE, "").strip().lower() in ("off", "0", "false", "no"):
        _say(f"Rasa patches switched off ({SWITCH_VARIABLE}): stock Rasa behaviour")
        return []
    import rasa

    if rasa.__version__ != PINNED_RASA:
        _say(f"WARNING: Rasa {rasa.__version__} is not {PINNED_RASA}, the version "
             f"stack/rasa_patches.py was written and tested for: nothing patched "
             f"({'; '.join(PATCHES)}); Rasa's own, slower behaviour applies")
        return []
    applied = []
    for name, patch in PATCHES.items():
        try:
            patch()
        except LookupError as exc:
            _say(f"WARNING: not patched ({name}): {exc}; Rasa's own behaviour applies")
            continue
        applied.append(name)
    _say(f"Rasa {rasa.__version__} patched: {'; '.join(applied) or 'nothing'} "
         "(stack/rasa_patches.py)")
    return applied


def active() -> list[str]:
    """The patches active in this process."""
    from rasa.core import tracker_store
    from rasa.core.actions.action import RemoteAction
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.shared.core.events import Event
    from rasa.utils.endpoints import EndpointConfig

    def chain(function: Any) -> set[Any]:
        """The patch marks on a function and those it wraps (rasa_fixes.py wraps some)."""
        found = set()
        while function is not None:
            found.add(getattr(function, "relend_patch", None))
            function = getattr(function, "__wrapped__", None)
        return found

    marks = set().union(*(chain(f) for f in (
        RemoteAction._validate_action_result, tracker_store.create_engine_kwargs,
        Event.resolve_by_type, EndpointConfig.request, SQLTrackerStore.save,
        DaskGraphRunner.run)))
    return [name for name in PATCHES if name in marks]
