"""Fixtures for the eligibility backend tests.

Every database test runs twice: on SQLite (a file in ``tmp_path``) and on PostgreSQL (a
fresh schema per test on the local server, dropped afterwards). Migrations are applied
with the real Alembic scripts. The app under test gets a clock the test controls.

PostgreSQL: ``postgresql+psycopg2://postgres@127.0.0.1:5432/test`` unless
``RELEND_TEST_PG_URL`` names another server. Unreachable -> the PostgreSQL variants skip,
except with ``CI=true``, where they fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from common.db import make_engine, make_session_factory
from eligibility.api import create_app
from eligibility.migrate import upgrade
from eligibility.models import Appeal
from eligibility.seed import seed
from tests.conftest import fresh_database, serve_asgi

from .support import (
    BACKOFFICE_TOKEN,
    SERVICE_TOKEN,
    T0,
    Api,
    Clock,
    LiveServer,
    Records,
    SeededApp,
    bearer,
    count_rows,
    make_settings,
    settings_env,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


# --- databases -------------------------------------------------------------------------------


DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database for one test (no tables yet)."""
    with fresh_database(request.param, request, tmp_path, "eligibility") as url:
        yield url


@pytest.fixture
def migrated_url(database_url: str) -> str:
    upgrade(database_url)
    return database_url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    engine = make_engine(migrated_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module", params=DATABASES)
def module_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[str]:
    """A migrated database shared by one module's tests (a SQLite one, a PostgreSQL one)."""
    with fresh_database(request.param, request, tmp_path_factory.mktemp("module"),
                        "eligibility") as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="module")
def module_engine(module_url: str) -> Iterator[Engine]:
    """An engine on the module's database, for tests that write only inside a transaction
    they roll back (nothing is ever committed to it)."""
    engine = make_engine(module_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with make_session_factory(engine)() as session:
        yield session


@pytest.fixture
def appeal_count(engine: Engine) -> Callable[..., int]:
    """How many appeal rows exist right now (optionally filtered: ``appeal_count(status=...)``)."""
    return lambda **where: count_rows(engine, Appeal, **where)


# --- the app under test ------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def app(migrated_url: str, clock: Clock) -> Iterator[FastAPI]:
    app = create_app(make_settings(migrated_url), clock=clock)
    yield app
    app.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client)


@pytest.fixture
def service_auth() -> dict[str, str]:
    return bearer(SERVICE_TOKEN)


@pytest.fixture
def backoffice_auth() -> dict[str, str]:
    return bearer(BACKOFFICE_TOKEN)


@pytest.fixture
def seeded(session: Session, clock: Clock) -> list[str]:
    """The demo borrowers of ``eligibility.seed``, recorded relative to the test's "now"."""
    return seed(session, clock.now)


@pytest.fixture
def records(clock: Clock) -> Records:
    return Records(clock.now)


# --- one seeded app per module, for tests that write nothing ----------------------------------


@pytest.fixture(scope="module")
def shared(module_url: str) -> Iterator[SeededApp]:
    """A seeded database and an app on it, shared by a module's read-only tests: they must
    not change records; they may check that nothing was written."""
    shared = SeededApp(module_url)
    yield shared
    shared.close()


# --- a real server -----------------------------------------------------------------------------


@pytest.fixture
def live_server(migrated_url: str) -> Iterator[LiveServer]:
    """``uvicorn eligibility.asgi:app`` in a subprocess, configured through the environment.

    The listening socket is bound here and handed over with ``--fd``: requests queue in its
    backlog until the server accepts them, so there is no port race and no polling.
    """
    with serve_asgi("eligibility.asgi:app", settings_env(migrated_url)) as base_url:
        yield LiveServer(base_url, migrated_url)
