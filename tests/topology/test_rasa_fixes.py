"""stack/rasa_fixes.py on a real SQL tracker store (an SQLite file): an event stored after a
session's start but created before it (``resume`` appended through the API while another
turn started the session) belongs to that session."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from stack import rasa_fixes


def _store_and_read(path: Path) -> bool:
    """Store a session that pauses, then a ``resume`` created a second earlier but stored
    after; returns whether the conversation's latest session reads as paused."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import (
        ActionExecuted,
        ConversationPaused,
        ConversationResumed,
        SessionStarted,
    )
    from rasa.shared.core.trackers import DialogueStateTracker

    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(path))
    t = 1_800_000_000.0
    tracker = DialogueStateTracker.from_events("c-1", [
        ActionExecuted("action_session_start", timestamp=t),
        SessionStarted(timestamp=t + 0.1),
        ConversationPaused(timestamp=t + 0.2),
        ActionExecuted("action_listen", timestamp=t + 0.3),
    ])
    asyncio.run(store.save(tracker))
    tracker.update(ConversationResumed(timestamp=t - 1))  # created before, stored after
    asyncio.run(store.save(tracker))
    again = asyncio.run(store.retrieve("c-1"))
    assert again is not None
    return again.is_paused()


def test_a_late_stored_resume_counts_in_the_latest_session(tmp_path: Path) -> None:
    import rasa

    if rasa.__version__ != rasa_fixes.PINNED_RASA:
        pytest.fail(f"Rasa {rasa.__version__}: re-check stack/rasa_fixes.py for this version")
    from rasa.core.tracker_store import SQLTrackerStore

    stock = SQLTrackerStore._event_query
    try:
        assert _store_and_read(tmp_path / "stock.db") is True  # the bug, as Rasa has it
        rasa_fixes._patch_session_query()
        assert _store_and_read(tmp_path / "fixed.db") is False
    finally:
        SQLTrackerStore._event_query = stock


def test_a_failing_tracker_store_fails_the_turn_instead_of_forgetting(tmp_path: Path) -> None:
    """Rasa's FailSafeTrackerStore over a database that cannot be read (a directory, not a
    file): stock Rasa answers "no conversation" (None: the turn would run on an empty
    tracker); fixed, the error reaches the turn."""
    from rasa.core import tracker_store
    from rasa.core.tracker_store import FailSafeTrackerStore, SQLTrackerStore
    from rasa.shared.core.domain import Domain

    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(tmp_path / "t.db"))
    (tmp_path / "t.db").unlink()
    (tmp_path / "t.db").mkdir()  # from now on every connection fails
    store.engine.dispose()
    saved = {n: FailSafeTrackerStore.__dict__[n]
             for n in ("retrieve", "retrieve_full_tracker", "save")}
    engine_kwargs = tracker_store.create_engine_kwargs
    try:
        assert asyncio.run(FailSafeTrackerStore(store).retrieve("c-1")) is None  # stock
        rasa_fixes._patch_fail_safe_store()
        with pytest.raises(Exception, match="unable to open database file"):
            asyncio.run(FailSafeTrackerStore(store).retrieve("c-1"))
        assert tracker_store.create_engine_kwargs(
            "postgresql://u@h/db")["pool_pre_ping"] is True
    finally:
        for name, method in saved.items():
            setattr(FailSafeTrackerStore, name, method)
        tracker_store.create_engine_kwargs = engine_kwargs
