"""stack/rasa_fixes.py (a save stores what the turn added) on a real SQL tracker store (an
SQLite file) with an event broker: the interleaving that lost an acknowledged borrower message
in the topology's Redis fault test, made deterministic. Rasa's lock store failed to keep two
requests of one conversation apart (a ticket left behind by the Redis cut; the waiting turn's
own ticket ran out mid-turn), so while a turn ran on what it had read, the desk's reset
(``action_listen`` through the API) was stored; the turn's save then counted the stored events
and skipped its own first one: the borrower's ``user`` event, neither stored nor published,
while the bot's reply was both (the borrower saw it)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from stack import rasa_fixes


def _interleaved(path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """One conversation with a session started; a turn reads it; the desk's ``action_listen``
    is read and stored meanwhile; the turn adds the borrower's message, the bot's reply and
    ``action_listen`` and stores them. Returns (stored, published) as (event, text or name)."""
    from rasa.core.brokers.broker import EventBroker
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    class Published(EventBroker):
        def __init__(self) -> None:
            self.events: list[dict[str, Any]] = []

        def publish(self, event: dict[str, Any]) -> None:
            self.events.append(event)

    broker = Published()
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(path), event_broker=broker)
    t = 1_800_000_000.0
    asyncio.run(store.save(DialogueStateTracker.from_events("c-1", [
        ActionExecuted("action_session_start", timestamp=t),
        SessionStarted(timestamp=t + 0.1),
        ActionExecuted("action_listen", timestamp=t + 0.2),
    ])))
    broker.events.clear()

    turn = asyncio.run(store.retrieve("c-1"))  # the borrower's turn reads the conversation
    reset = asyncio.run(store.retrieve("c-1"))  # ... and so does the desk's append
    assert turn is not None and reset is not None
    reset.update(ActionExecuted("action_listen", timestamp=t + 1))
    asyncio.run(store.save(reset))
    turn.update(UserUttered("我还清了为什么借不了", timestamp=t + 1.1))
    turn.update(BotUttered("因为定期综合评估", timestamp=t + 1.2))
    turn.update(ActionExecuted("action_listen", timestamp=t + 1.3))
    asyncio.run(store.save(turn))
    asyncio.run(store.save(turn))  # saved again with nothing new: nothing stored twice

    full = asyncio.run(store.retrieve_full_tracker("c-1"))
    assert full is not None

    def named(event: dict[str, Any]) -> tuple[str, str]:
        return event["event"], event.get("text") or event.get("name") or ""

    stored = [named(e.as_dict()) for e in full.events]
    return stored, [named(e) for e in broker.events]


def test_a_turn_stores_and_publishes_every_event_it_added(tmp_path: Path) -> None:
    import rasa

    if rasa.__version__ != rasa_fixes.PINNED_RASA:
        pytest.fail(f"Rasa {rasa.__version__}: re-check stack/rasa_fixes.py for this version")
    from rasa.core.tracker_store import SQLTrackerStore

    saved = {n: SQLTrackerStore.__dict__.get(n) for n in
             ("_retrieve", "_additional_events", "save", "stream_events")}
    user = ("user", "我还清了为什么借不了")
    bot = ("bot", "因为定期综合评估")
    try:
        stored, published = _interleaved(tmp_path / "stock.db")
        assert user not in stored and bot in stored  # the bug, as Rasa has it
        assert user not in published and bot in published
        rasa_fixes._patch_save_what_was_added()
        stored, published = _interleaved(tmp_path / "fixed.db")
    finally:
        for name, method in saved.items():
            if method is None:
                if name in SQLTrackerStore.__dict__:
                    delattr(SQLTrackerStore, name)
            else:
                setattr(SQLTrackerStore, name, method)
    # everything each side added, once: the session, the desk's action_listen, the turn
    assert stored == [("action", "action_session_start"), ("session_started", ""),
                      ("action", "action_listen"), ("action", "action_listen"), user, bot,
                      ("action", "action_listen")], stored
    assert published == [("action", "action_listen"), user, bot, ("action", "action_listen")]
