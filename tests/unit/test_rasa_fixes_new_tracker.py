"""stack/rasa_fixes.py, a conversation's first message: Rasa's new tracker (not read from the
store) is saved by counting the stored events the first time, then carries the mark like a
tracker read from the store, so the turn's own save stores exactly what the turn added even
if someone stored an event in between, and does not count the conversation's events again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from stack import rasa_fixes


def _first_turn(path: Path) -> list[tuple[str, str]]:
    """A new conversation: Rasa creates and saves its tracker (session start), the desk's
    ``action_listen`` is stored meanwhile, the turn adds the message and the reply and saves.
    Returns what is stored."""
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(path))
    t = 1_800_000_000.0
    turn = DialogueStateTracker.from_events("c-1", [
        ActionExecuted("action_session_start", timestamp=t + 0.1),
        SessionStarted(timestamp=t + 0.1),
        ActionExecuted("action_listen", timestamp=t + 0.2),
    ])

    asyncio.run(store.save(turn))  # Rasa's create_tracker
    other = asyncio.run(store.retrieve("c-1"))
    assert other is not None
    other.update(ActionExecuted("action_listen", timestamp=t + 1))
    asyncio.run(store.save(other))
    turn.update(UserUttered("为什么借不了", timestamp=t + 1.1))
    turn.update(BotUttered("因为定期综合评估", timestamp=t + 1.2))
    asyncio.run(store.save(turn))
    full = asyncio.run(store.retrieve_full_tracker("c-1"))
    assert full is not None
    return [(e.as_dict()["event"], e.as_dict().get("text") or e.as_dict().get("name") or "")
            for e in full.events]


def test_a_new_trackers_second_save_stores_what_it_added(tmp_path: Path) -> None:
    import rasa

    if rasa.__version__ != rasa_fixes.PINNED_RASA:
        pytest.fail(f"Rasa {rasa.__version__}: re-check stack/rasa_fixes.py for this version")
    from rasa.core.tracker_store import SQLTrackerStore

    saved = {n: SQLTrackerStore.__dict__.get(n) for n in
             ("_retrieve", "_additional_events", "save", "stream_events")}
    user, bot = ("user", "为什么借不了"), ("bot", "因为定期综合评估")
    stock_additional = saved["_additional_events"]
    counts: list[int] = []

    def counting(self: Any, session: Any, tracker: Any) -> Any:  # the stock COUNT, counted
        counts.append(1)
        return stock_additional(self, session, tracker)  # type: ignore[misc]

    try:
        SQLTrackerStore._additional_events = counting
        stored = _first_turn(tmp_path / "stock.db")
        assert user not in stored and len(counts) == 3  # stock: each save counts
        rasa_fixes._patch_save_what_was_added()  # over the counting stock
        counts.clear()
        stored = _first_turn(tmp_path / "fixed.db")
    finally:
        for name, method in saved.items():
            if method is not None:
                setattr(SQLTrackerStore, name, method)
            elif name in SQLTrackerStore.__dict__:
                delattr(SQLTrackerStore, name)  # the fix added it: the inherited one again
    assert stored == [("action", "action_session_start"), ("session_started", ""),
                      ("action", "action_listen"), ("action", "action_listen"), user, bot]
    assert len(counts) == 1  # only the new tracker's first save counted
