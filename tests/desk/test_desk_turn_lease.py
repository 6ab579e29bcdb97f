"""The turn lease (desk/turns.py, ``ConversationLocks`` with a database): two desks on one
database, here two ``Turns`` in one process each with a lease of its own, on SQLite and
PostgreSQL. While desk A's turn is with Rasa -- however long -- desk B's recovery round
does not send the message again, even once it looks stale; and a lease left by a desk that
died runs out."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from desk_support import (
    CHANNEL_PATH,
    CHANNEL_SECRET,
    RASA_JWT_SECRET,
    FakeRasa,
    on_every_database,
)
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from desk import service
from desk.hub import Hub
from desk.models import Conversation, Message
from desk.rasa_client import RasaClient
from desk.service import utc_now
from desk.turns import PENDING, ConversationLocks, Turns

pytestmark = [on_every_database, pytest.mark.timeout(60)]


def desk(sessions: sessionmaker[Session], name: str, handler, stale_after: float) -> Turns:
    rasa = RasaClient("http://rasa.test", RASA_JWT_SECRET, CHANNEL_SECRET, 5)
    rasa._client = httpx.AsyncClient(transport=httpx.MockTransport(handler),
                                     base_url="http://rasa.test")
    return Turns(sessions, Hub(), rasa, ConversationLocks(sessions, name, lease_seconds=2),
                 stale_after=stale_after)


def stored_message(sessions: sessionmaker[Session]) -> tuple[str, int]:
    with sessions() as session:
        conversation = service.open_conversation(session, "b-1001", "zh-CN", utc_now())
        message, _ = service.add_message(session, conversation.id, "borrower", "我的额度呢",
                                         utc_now(), client_id="m-1", state=PENDING)
        return conversation.id, message.id


def test_a_live_desk_slow_turn_is_not_sent_again_by_another_desk_recovery_round(
        sessions: sessionmaker[Session]):
    fake = FakeRasa()
    with_rasa, release = asyncio.Event(), asyncio.Event()
    sent_by_b: list[str] = []

    async def slow(request: httpx.Request) -> httpx.Response:  # desk A's Rasa: held
        if request.url.path == CHANNEL_PATH:
            with_rasa.set()
            await release.wait()
        return await fake.handle(request)

    async def counted(request: httpx.Request) -> httpx.Response:  # desk B's Rasa
        if request.url.path == CHANNEL_PATH:
            sent_by_b.append(request.url.path)
        return await fake.handle(request)

    conversation_id, message_id = stored_message(sessions)

    async def scenario() -> None:
        desk_a = desk(sessions, "desk-a", slow, stale_after=15)
        # desk B takes any "sending" message as abandoned at once: only the lease stops it
        desk_b = desk(sessions, "desk-b", counted, stale_after=0)
        desk_a.start(conversation_id, message_id)
        await asyncio.wait_for(with_rasa.wait(), 10)
        await asyncio.sleep(0.05)  # a state_at in the past: stale for desk B
        await desk_b.sweep()  # finds the message "sending" and stale; starts its turn
        assert desk_b.in_flight == {message_id}
        await asyncio.sleep(3)  # longer than the lease: desk A renews it meanwhile
        assert sent_by_b == []
        release.set()
        for turns in (desk_a, desk_b):
            await asyncio.wait_for(asyncio.gather(*turns._running), 10)
        assert sent_by_b == []

    asyncio.run(scenario())
    with sessions() as session:
        stored = session.execute(select(Message.sender, Message.state).where(
            Message.conversation_id == conversation_id).order_by(Message.id)).all()
        lease = session.execute(select(Conversation.turn_owner).where(
            Conversation.id == conversation_id)).scalar()
    assert [tuple(r) for r in stored] == [("borrower", "done"), ("bot", None)]
    assert fake.heard(conversation_id) == ["我的额度呢"]  # once
    assert lease is None  # given back


def test_a_lease_left_by_a_desk_that_died_runs_out(sessions: sessionmaker[Session]):
    fake = FakeRasa()
    conversation_id, message_id = stored_message(sessions)
    with sessions() as session:  # a desk died holding the lease, which ran out a moment ago
        session.execute(update(Conversation).where(Conversation.id == conversation_id)
                        .values(turn_owner="dead-desk",
                                turn_lease_until=utc_now() + timedelta(seconds=1)))
        session.commit()

    async def scenario() -> float:
        turns = desk(sessions, "desk-b", fake.handle, stale_after=15)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await turns.borrower_turn(conversation_id, message_id)
        return loop.time() - started

    waited = asyncio.run(scenario())
    assert 0.5 < waited < 5, waited  # it waited for the lease to run out, then ran the turn
    assert fake.heard(conversation_id) == ["我的额度呢"]
    with sessions() as session:
        assert session.get(Message, message_id).state == "done"


def waiting_for_the_assistant(sessions: sessionmaker[Session]) -> tuple[str, int]:
    """A conversation sent to agents because the assistant failed on its message (the
    message ``failed``, a waiting case of reason assistant_unavailable), as after a fault."""
    conversation_id, message_id = stored_message(sessions)
    with sessions() as session:
        service.create_case(session, {"conversation_id": conversation_id, "language": "zh",
                                      "reason": "assistant_unavailable", "transcript": []},
                            utc_now())
        session.execute(update(Message).where(Message.id == message_id)
                        .values(state="failed", state_at=utc_now()))
        session.commit()
    return conversation_id, message_id


def test_a_desk_round_leaves_the_hand_back_to_the_desk_holding_the_conversation(
        sessions: sessionmaker[Session]):
    """Desk A holds the conversation (its hand-back try, or a turn, is with Rasa): desk B's
    background round does not wait behind it to try the same hand-back again right after --
    it moves on at once and sends nothing. Once nobody holds it, B's round does try it, and
    the bot takes the conversation back (the message is answered once)."""
    fake = FakeRasa()
    sent_by_b: list[str] = []

    async def counted(request: httpx.Request) -> httpx.Response:
        if request.url.path == CHANNEL_PATH:
            sent_by_b.append(request.url.path)
        return await fake.handle(request)

    conversation_id, message_id = waiting_for_the_assistant(sessions)
    with sessions() as session:  # desk A's lease, for 1.5 s more
        session.execute(update(Conversation).where(Conversation.id == conversation_id)
                        .values(turn_owner="desk-a",
                                turn_lease_until=utc_now() + timedelta(seconds=1.5)))
        session.commit()

    async def scenario() -> tuple[float, list[str], list[str]]:
        desk_b = desk(sessions, "desk-b", counted, stale_after=15)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await desk_b.sweep()
        took = loop.time() - started
        while_held = list(sent_by_b)
        await asyncio.sleep(1.6)  # desk A's lease ran out (it died, or gave it back)
        await desk_b.sweep()
        return took, while_held, list(sent_by_b)

    took, while_held, after = asyncio.run(scenario())
    assert took < 1.0, took  # it did not wait for the lease (1.5 s)
    assert while_held == []
    assert after == [CHANNEL_PATH]  # tried once nobody held it, and answered
    with sessions() as session:
        assert session.get(Message, message_id).state == "done"
        assert session.get(Conversation, conversation_id).owner == "bot"
    assert fake.heard(conversation_id) == ["我的额度呢"]
