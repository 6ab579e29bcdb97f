"""The desk's records under concurrency, on SQLite and PostgreSQL: one winner per claim race,
one row per client message id, one open case per conversation and one conversation per
borrower (enforced by the database, which several desks at once rely on); and the engine an
app is given."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import pytest
from desk_support import PASSWORD, AgentApi, on_every_database
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from desk import service
from desk.api import create_app
from desk.config import DeskSettings
from desk.models import Agent, Case, Conversation, Message

pytestmark = [on_every_database, pytest.mark.timeout(60)]

T0 = datetime(2026, 3, 10, 4, 0, tzinfo=timezone.utc)
RACERS = 8
R = TypeVar("R")


def all_at_once(n: int, attempt: Callable[[int], R]) -> list[R]:
    """``attempt(0..n-1)`` on n threads, released together."""
    barrier = threading.Barrier(n)

    def run(i: int) -> R:
        barrier.wait()
        return attempt(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


@pytest.fixture
def conversation(sessions: sessionmaker[Session]) -> str:
    with sessions() as session:
        return service.open_conversation(session, "b-1001", "zh-CN", T0).id


@pytest.fixture
def case_id(sessions: sessionmaker[Session], conversation: str) -> int:
    with sessions() as session:
        return service.create_case(session, {"conversation_id": conversation}, T0).id


@pytest.fixture
def agent_ids(sessions: sessionmaker[Session]) -> list[int]:
    """RACERS agents besides the demo ones (tokens are signed directly: no passwords needed)."""
    with sessions() as session:
        agents = [Agent(username=f"racer{i}", display_name=f"Racer {i}", password_hash="-")
                  for i in range(RACERS)]
        session.add_all(agents)
        session.commit()
        return [agent.id for agent in agents]


def test_of_many_agents_claiming_at_once_exactly_one_wins(sessions: sessionmaker[Session],
                                                          case_id: int, agent_ids: list[int]):
    def attempt(i: int) -> str:
        with sessions() as session:
            try:
                service.claim(session, case_id, agent_ids[i], T0)
            except service.DeskError as exc:
                return exc.code
            return "won"

    outcomes = all_at_once(RACERS, attempt)

    assert sorted(outcomes) == ["already_claimed"] * (RACERS - 1) + ["won"]
    with sessions() as session:
        case = session.get(Case, case_id)
        assert (case.status, case.claimed_by) == ("claimed", agent_ids[outcomes.index("won")])


def test_claim_requests_racing_through_two_desk_instances_have_one_winner(
        make_app, settings, case_id: int, agent_ids: list[int], sessions: sessionmaker[Session]):
    instances = [make_app(settings), make_app(settings)]

    def attempt(i: int) -> int:
        # a TestClient outside ``with`` runs each request on an event loop of its own
        client = TestClient(instances[i % 2])
        return AgentApi(client, agent_ids[i], f"Racer {i}").claim(case_id).status_code

    statuses = all_at_once(RACERS, attempt)

    assert sorted(statuses) == [200] + [409] * (RACERS - 1)
    with sessions() as session:
        assert session.get(Case, case_id).claimed_by == agent_ids[statuses.index(200)]


def test_a_message_resent_at_once_is_stored_once(sessions: sessionmaker[Session],
                                                 conversation: str):
    def attempt(_i: int) -> tuple[int, bool]:
        with sessions() as session:
            message, created = service.add_message(session, conversation, "borrower", "在吗",
                                                   T0, client_id="dup-1")
            return message.id, created

    results = all_at_once(RACERS, attempt)

    assert [created for _id, created in results].count(True) == 1
    assert len({message_id for message_id, _created in results}) == 1
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 1


def test_client_ids_are_per_conversation_and_messages_without_one_are_all_kept(
        sessions: sessionmaker[Session], conversation: str):
    with sessions() as session:
        other = service.open_conversation(session, "b-2002", "en-US", T0).id
        stored = [service.add_message(session, conv, "borrower", "hi", T0, client_id="m1")
                  for conv in (conversation, other)]
        stored += [service.add_message(session, conversation, "bot", "hello", T0)
                   for _ in range(2)]

    assert [created for _message, created in stored] == [True] * 4
    assert len({message.id for message, _created in stored}) == 4


def test_a_conversation_has_at_most_one_open_case(sessions: sessionmaker[Session],
                                                 conversation: str):
    payload: dict[str, Any] = {"conversation_id": conversation,
                               "transcript": [{"sender": "borrower", "text": "13812345678"}]}
    with sessions() as session:
        first = service.create_case(session, payload, T0)
        again = service.create_case(session, {**payload, "reason": "other"}, T0)
        assert again.id == first.id
        assert first.context["transcript"] == [{"sender": "borrower", "text": "138****5678"}]
        assert session.get(Conversation, conversation).owner == "agent"

        service.end_case(session, first, "closed", T0)
        assert session.get(Conversation, conversation).owner == "bot"
        later = service.create_case(session, payload, T0)  # a new handoff after the first ended
        assert later.id != first.id and service.open_case_for(session, conversation).id == later.id


def test_of_many_handoffs_of_one_conversation_at_once_one_opens_a_case(
        sessions: sessionmaker[Session], conversation: str):
    def attempt(i: int) -> int:
        with sessions() as session:
            return service.create_case(session, {"conversation_id": conversation,
                                                 "reason": f"racer {i}"}, T0).id

    case_ids = all_at_once(RACERS, attempt)

    with sessions() as session:
        stored = session.execute(select(Case.id)).scalars().all()
        assert session.get(Conversation, conversation).owner == "agent"
    assert len(stored) == 1 and set(case_ids) == set(stored)


def test_of_many_sockets_of_a_new_borrower_at_once_one_opens_the_conversation(
        sessions: sessionmaker[Session]):
    def attempt(_i: int) -> str:
        with sessions() as session:
            return service.open_conversation(session, "b-3003", "zh-CN", T0).id

    ids = all_at_once(RACERS, attempt)

    with sessions() as session:
        stored = session.execute(select(Conversation.id).where(
            Conversation.borrower_id == "b-3003")).scalars().all()
    assert len(stored) == 1 and set(ids) == set(stored)


def test_the_database_itself_refuses_a_second_open_case_and_a_second_conversation(
        sessions: sessionmaker[Session], conversation: str):
    """Not the code's check: the indexes (what two desks at once rely on)."""
    with sessions() as session:
        first = service.create_case(session, {"conversation_id": conversation}, T0)
        session.add(Case(conversation_id=conversation, borrower_id="b-1001", language="zh",
                         reason="borrower_asked", context={}, status="waiting", created_at=T0))
        with pytest.raises(IntegrityError):
            session.commit()
        session.rollback()
        first.status = "closed"  # closed cases do not count: a new one may open
        session.commit()
        session.add(Case(conversation_id=conversation, borrower_id="b-1001", language="zh",
                         reason="borrower_asked", context={}, status="claimed", created_at=T0))
        session.commit()

        session.add(Conversation(id="c-second", borrower_id="b-1001", locale="zh-CN",
                                 owner="bot", created_at=T0, updated_at=T0))
        with pytest.raises(IntegrityError):
            session.commit()


def test_a_borrower_keeps_one_open_conversation(sessions: sessionmaker[Session],
                                                conversation: str):
    with sessions() as session:
        again = service.open_conversation(session, "b-1001", "en-US", T0)
        other = service.open_conversation(session, "b-2002", "zh-CN", T0)

        assert again.id == conversation and again.locale == "en-US"
        assert other.id != conversation
        assert again.created_at == T0  # stored as UTC, read back timezone-aware


def test_an_app_handed_an_engine_keeps_its_records_there(settings: DeskSettings, engine: Engine,
                                                          tmp_path: Path):
    """``create_app(settings, engine=...)``: the app works through that engine, whatever
    ``settings.database_url`` names."""
    nowhere = settings.replace(database_url=f"sqlite:///{tmp_path / 'absent' / 'desk.db'}")
    with TestClient(create_app(nowhere, engine=engine)) as client:
        login = client.post("/api/agent/login",
                            json={"username": "agent1", "password": PASSWORD})
    assert login.status_code == 200, login.text
    assert not (tmp_path / "absent").exists()
