"""Fixtures for the support desk tests.

The desk runs in-process under Starlette's TestClient (HTTP and WebSockets share one event
loop) on a migrated SQLite file. Storage tests, claim races and migrations also run on
PostgreSQL: a fresh schema per test on the local server, dropped afterwards
(``postgresql+psycopg2://postgres@127.0.0.1:5432/test`` unless ``RELEND_TEST_PG_URL`` says
otherwise; unreachable -> those variants skip, or fail with ``CI=true``). Rasa is a
``FakeRasa`` behind ``httpx.MockTransport``; the backend's demo borrowers are a fixed list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from desk_support import (
    INTERNAL_TOKEN,
    PASSWORD,
    AgentApi,
    AgentFeed,
    Chat,
    FakeRasa,
    FixedDemoDirectory,
    bearer,
    borrower_token,
    make_settings,
    subprotocols,
)
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from common.db import make_engine, make_session_factory
from desk.api import create_app
from desk.auth import hash_password
from desk.config import DeskSettings
from desk.migrate import upgrade
from desk.models import Agent
from desk.service import DEMO_AGENTS, ensure_demo_data
from tests.conftest import fresh_database

# --- databases ------------------------------------------------------------------------------


@pytest.fixture
def db_kind(request: pytest.FixtureRequest) -> str:
    """SQLite, unless a test is marked ``on_every_database`` (desk_support)."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def database_url(db_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database for one test (no tables yet)."""
    with fresh_database(db_kind, request, tmp_path, "desk") as url:
        yield url


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One scrypt hash of the demo password for the whole session (each takes ~0.1 s)."""
    return hash_password(PASSWORD)


@pytest.fixture
def migrated_url(database_url: str, password_hash: str) -> str:
    """Migrated, with the demo agents and canned replies ``python -m desk migrate`` adds."""
    upgrade(database_url)
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        for username, name, role in DEMO_AGENTS:  # pre-hashed: ensure_demo_data skips them
            session.add(Agent(username=username, display_name=name, role=role,
                              password_hash=password_hash))
        session.commit()
        ensure_demo_data(session, PASSWORD, demo_agents=True)
    engine.dispose()
    return database_url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    engine = make_engine(migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """A session factory on the test's database, for looking at (or racing on) the records."""
    return make_session_factory(engine)


# --- the app under test -----------------------------------------------------------------------


@pytest.fixture
def settings(migrated_url: str) -> DeskSettings:
    return make_settings(migrated_url)


@pytest.fixture
def fake_rasa() -> FakeRasa:
    return FakeRasa()


@pytest.fixture
def make_app(fake_rasa: FakeRasa) -> Iterator[Callable[[DeskSettings], FastAPI]]:
    """Build desk apps wired to the fake Rasa and the fixed demo borrowers, each on an engine
    of its own that is disposed afterwards."""
    engines: list[Engine] = []

    def build(settings: DeskSettings) -> FastAPI:
        engines.append(make_engine(settings.database_url))
        app = create_app(settings, engine=engines[-1])
        app.state.desk.rasa._client = fake_rasa.client()
        app.state.desk.demo = FixedDemoDirectory()
        return app

    yield build
    for engine in engines:
        engine.dispose()


@pytest.fixture
def app(make_app: Callable[[DeskSettings], FastAPI], settings: DeskSettings,
        fake_rasa: FakeRasa) -> FastAPI:
    app = make_app(settings)
    # the fake Rasa's handoff action calls the desk back, in the app's own event loop
    fake_rasa.desk = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                       base_url="http://desk.test")
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def internal() -> dict[str, str]:
    """The service token the action server uses."""
    return bearer(INTERNAL_TOKEN)


@pytest.fixture
def open_chat(client: TestClient) -> Iterator[Callable[..., Chat]]:
    """``open_chat(borrower_id=..., locale=...)``: a connected borrower chat, closed afterwards."""
    with ExitStack() as stack:
        def open_(borrower_id: str = "b-1001", locale: str = "zh-CN") -> Chat:
            token = borrower_token(borrower_id, locale)
            return Chat(stack.enter_context(
                client.websocket_connect("/ws/chat", subprotocols=subprotocols(token))))

        yield open_


@pytest.fixture
def chat(open_chat: Callable[..., Chat]) -> Chat:
    """The demo borrower b-1001's chat (zh-CN)."""
    return open_chat()


@pytest.fixture
def agents(client: TestClient, sessions: sessionmaker[Session]) -> list[AgentApi]:
    """The two demo agents, logged in."""
    with sessions() as session:
        rows = session.execute(select(Agent).order_by(Agent.id)).scalars().all()
    return [AgentApi(client, row.id, row.display_name) for row in rows]


@pytest.fixture
def feed(client: TestClient, agents: list[AgentApi]) -> Iterator[AgentFeed]:
    """The first agent's console socket."""
    with client.websocket_connect("/ws/agent",
                                  subprotocols=subprotocols(agents[0].token)) as socket:
        yield AgentFeed(socket)

