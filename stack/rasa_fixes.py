"""A correctness fix to Rasa's SQL tracker store, pinned to Rasa 3.6.21 (applied by
stack/rasa_run.py in every Rasa the stack starts; not switched off by RELEND_RASA_PATCHES,
which is about speed).

**The latest session is found by insertion order, not by clock.** ``SQLTrackerStore.
_event_query`` keeps the events of the latest session as those whose *timestamp* is at least
the latest ``session_started`` event's. But an event's timestamp is taken when it is created,
not when it is stored: an event appended through the HTTP API
(``POST /conversations/{id}/tracker/events``, as the desk sends ``resume`` and
``action_listen``) is created, then waits for the conversation's lock while a turn on another
Rasa process (or the same one) starts a new session. It is stored *after* that session's
events, with an *earlier* timestamp, and the stock query drops it from the session: found by
the topology tests (tests/topology/), where a conversation whose first turn was cut by a killed
Rasa process stayed paused for good (its ``resume`` landed behind the session start's
``pause``; every later message was stored and never answered). Events are stored one turn at
a time under that lock, so their ids are the conversation's true order: the fix selects the
events from the latest ``session_started`` row's id on, ordered by id, as Rasa already orders
them.

**No silent fallback to memory when the database hiccups.** Rasa wraps the tracker store in
``FailSafeTrackerStore``: when PostgreSQL fails to *read* a conversation it answers "no such
conversation" (the turn then runs on a brand-new, empty tracker: the borrower's context is
gone, a new session starts), and when it fails to *save* it keeps the turn in an in-memory
store of that one process (never written to PostgreSQL, invisible to the other Rasa
processes). Found by cutting PostgreSQL for 6 s under the topology (tests/topology/). With
the fix both raise: the turn fails as a whole, the desk channel answers with no messages, and
the desk tells the borrower, brings in a person and sends the message again once the
assistant answers (docs/desk.md). PostgreSQL connections are also checked before use
(``pool_pre_ping``), so the connections a restart of the database broke are replaced instead
of failing one turn each.

**A turn stores the events it added, never fewer.** Stock ``SQLTrackerStore.save`` works out
which of the tracker's events are new by *counting* the conversation's stored events at save
time (``_additional_events``), and so does the event broker's stream (``stream_events``:
the length of a tracker read again). Both assume nobody else wrote to the conversation since
this turn read it, which only Rasa's lock store guarantees. When it does not -- a Redis
ticket left behind by a cut (``issue_ticket`` stored, the clean-up failed), then a turn that
waited behind it until its own ticket (``TICKET_LOCK_LIFETIME``, counted from when it was
issued, not when it was served) ran out mid-turn and let the next request in -- and another
request stores events in between (the desk's ``action_listen``, ``resume``), the turn's
first new events are skipped: the borrower's ``user`` event is never stored nor published,
while the bot's replies are (found in the Redis fault test of tests/topology/). With the fix a
tracker read from the store remembers how many of its events are stored, and a save stores
(and publishes) exactly the ones after those, then moves the mark. A tracker not read from
the store (Rasa's own new one, for a conversation's first message) is saved as before the
first time and carries the mark from then on: its turn's save neither counts the
conversation's events again nor relies on nobody having written in between.
"""

from __future__ import annotations

import itertools
import logging
import sys
from typing import Any

PINNED_RASA = "3.6.21"
SESSION_BY_ID = "SQL tracker store: the latest session found by event id, not timestamp"
NO_MEMORY_FALLBACK = "tracker store errors fail the turn (no in-memory fallback), PG pre-ping"
SAVE_WHAT_WAS_ADDED = "SQL tracker store: a save stores and publishes the events added since read"
STORED_MARK = "relend_stored"  # on a tracker read from the store: how many events are stored


def _patch_session_query() -> None:
    import sqlalchemy as sa
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.events import SessionStarted

    if getattr(SQLTrackerStore._event_query, "relend_fix", None) == SESSION_BY_ID:
        return
    if not callable(getattr(SQLTrackerStore, "_event_query", None)):
        raise LookupError("SQLTrackerStore._event_query is missing")

    def _event_query(self: Any, session: Any, sender_id: str,
                     fetch_events_from_all_sessions: bool) -> Any:
        query = session.query(self.SQLEvent).filter(self.SQLEvent.sender_id == sender_id)
        if not fetch_events_from_all_sessions:
            start = (session.query(sa.func.max(self.SQLEvent.id))
                     .filter(self.SQLEvent.sender_id == sender_id,
                             self.SQLEvent.type_name == SessionStarted.type_name)
                     .scalar_subquery())
            query = query.filter(sa.or_(start.is_(None), self.SQLEvent.id >= start))
        return query.order_by(self.SQLEvent.id)

    _event_query.relend_fix = SESSION_BY_ID  # type: ignore[attr-defined]
    SQLTrackerStore._event_query = _event_query


def _patch_fail_safe_store() -> None:
    from rasa.core import tracker_store
    from rasa.core.tracker_store import FailSafeTrackerStore

    if getattr(FailSafeTrackerStore.save, "relend_fix", None) == NO_MEMORY_FALLBACK:
        return
    for name in ("retrieve", "retrieve_full_tracker", "save"):
        if not callable(getattr(FailSafeTrackerStore, name, None)):
            raise LookupError(f"FailSafeTrackerStore.{name} is missing")
    log = logging.getLogger("relend.rasa_fixes")

    def failing(name: str) -> Any:
        async def method(self: Any, *args: Any) -> Any:
            try:
                return await getattr(self._tracker_store, name)(*args)
            except Exception as exc:
                log.error("tracker store %s failed (%s: %s): the turn fails, nothing is kept "
                          "in memory", name, type(exc).__name__, str(exc).splitlines()[0][:200])
                raise

        method.relend_fix = NO_MEMORY_FALLBACK  # type: ignore[attr-defined]
        return method

    for name in ("retrieve", "retrieve_full_tracker", "save"):
        setattr(FailSafeTrackerStore, name, failing(name))

    current = tracker_store.create_engine_kwargs  # maybe stack/rasa_patches.py's wrapper

    def create_engine_kwargs(url: Any) -> dict[str, Any]:
        kwargs = current(url)
        if tracker_store.is_postgresql_url(url):
            kwargs["pool_pre_ping"] = True
        return kwargs

    # stack/rasa_patches.active() recognises its own patch by this mark: keep it visible
    create_engine_kwargs.relend_patch = getattr(  # type: ignore[attr-defined]
        current, "relend_patch", None)
    create_engine_kwargs.__wrapped__ = current  # type: ignore[attr-defined]
    tracker_store.create_engine_kwargs = create_engine_kwargs


def _patch_save_what_was_added() -> None:
    from rasa.core.tracker_store import SQLTrackerStore

    if getattr(SQLTrackerStore.save, "relend_fix", None) == SAVE_WHAT_WAS_ADDED:
        return
    for name in ("_retrieve", "_additional_events", "save", "stream_events",
                 "_stream_new_events"):
        if not callable(getattr(SQLTrackerStore, name, None)):
            raise LookupError(f"SQLTrackerStore.{name} is missing")
    stock_retrieve = SQLTrackerStore._retrieve
    stock_additional = SQLTrackerStore._additional_events
    stock_save = SQLTrackerStore.save
    stock_stream = SQLTrackerStore.stream_events

    def added(tracker: Any) -> list[Any] | None:
        stored = getattr(tracker, STORED_MARK, None)
        if stored is None or stored > len(tracker.events):
            return None
        return list(itertools.islice(tracker.events, stored, len(tracker.events)))

    async def _retrieve(self: Any, sender_id: str, fetch_events_from_all_sessions: bool
                        ) -> Any:
        tracker = await stock_retrieve(self, sender_id, fetch_events_from_all_sessions)
        if tracker is not None:
            setattr(tracker, STORED_MARK, len(tracker.events))
        return tracker

    def _additional_events(self: Any, session: Any, tracker: Any) -> Any:
        new = added(tracker)
        return stock_additional(self, session, tracker) if new is None else iter(new)

    async def stream_events(self: Any, tracker: Any) -> None:
        new = added(tracker)
        if new is None or self.event_broker is None:
            return await stock_stream(self, tracker)
        await self._stream_new_events(self.event_broker, new, tracker.sender_id)

    async def save(self: Any, tracker: Any) -> None:
        await stock_save(self, tracker)
        # a new tracker's first save counted what was stored (stock); from then on it is
        # marked too, so the turn's own save does not count the conversation's events again
        setattr(tracker, STORED_MARK, len(tracker.events))

    save.relend_fix = SAVE_WHAT_WAS_ADDED  # type: ignore[attr-defined]
    save.__wrapped__ = stock_save  # type: ignore[attr-defined]  # rasa_patches.active() looks
    SQLTrackerStore._retrieve = _retrieve
    SQLTrackerStore._additional_events = _additional_events
    SQLTrackerStore.stream_events = stream_events
    SQLTrackerStore.save = save


FIXES = {SESSION_BY_ID: _patch_session_query, NO_MEMORY_FALLBACK: _patch_fail_safe_store,
         SAVE_WHAT_WAS_ADDED: _patch_save_what_was_added}


def apply() -> list[str]:
    """Apply the fix if the installed Rasa is the pinned one; returns what was applied."""
    import rasa

    if rasa.__version__ != PINNED_RASA:
        print(f"[relend] WARNING: Rasa {rasa.__version__} is not {PINNED_RASA}: not fixed "
              f"({'; '.join(FIXES)}); check stack/rasa_fixes.py against this version",
              file=sys.stderr, flush=True)
        return []
    applied = []
    for name, fix in FIXES.items():
        try:
            fix()
        except LookupError as exc:
            print(f"[relend] WARNING: not fixed ({name}): {exc}", file=sys.stderr, flush=True)
            continue
        applied.append(name)
    return applied
