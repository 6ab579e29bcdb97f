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
    validators = _OnePerThread(lambda: validator_class(schema))

    def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        if type(self).action_response_format_spec is not RemoteAction.action_response_format_spec:
            return original(self, result)  # a subclass with a schema of its own
        if validators.get().is_valid(result):
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


PATCHES: dict[str, Callable[[], None]] = {
    ACTION_VALIDATION: _patch_action_validation,
    SQLITE_TRACKER: _patch_sqlite_tracker_store,
    EVENT_TYPES: _patch_event_lookup,
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
    from rasa.shared.core.events import Event

    marks = (getattr(RemoteAction._validate_action_result, "relend_patch", None),
             getattr(tracker_store.create_engine_kwargs, "relend_patch", None),
             getattr(Event.resolve_by_type, "relend_patch", None))
    return [name for name in PATCHES if name in marks]
