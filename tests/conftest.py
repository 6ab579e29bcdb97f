"""Fixtures shared across test folders: the live stack on free loopback ports."""

from __future__ import annotations

import asyncio
import functools
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Collection, Coroutine, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import psycopg2
import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from stack.config import ROOT, StackConfig
from stack.model import ensure_model
from stack.services import Stack

# the tests run the sandbox (demo logins, demo agents); production is tested explicitly
os.environ.setdefault("RELEND_ENV", "sandbox")

T = TypeVar("T")
DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """The PostgreSQL server URL, checked once per session (skip or fail if unreachable)."""
    url = os.environ.get("RELEND_TEST_PG_URL", DEFAULT_PG_URL)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        psycopg2.connect(dsn, connect_timeout=2).close()
        return url
    except psycopg2.OperationalError as exc:
        problem = " ".join(str(exc).split())[:200]
    message = (
        "PostgreSQL not reachable on 127.0.0.1:5432: start it (pg_ctlcluster ... start) "
        "or set RELEND_TEST_PG_URL; CI=true makes this a failure "
        f"[{make_url(url)!r}: {problem}]"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@contextmanager
def fresh_database(kind: str, request: pytest.FixtureRequest, directory: Path,
                   name: str) -> Iterator[str]:
    """An empty database of its own: a SQLite file, or a new PostgreSQL schema."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / f'{name}.db'}"
        return
    server = request.getfixturevalue("pg_server_url")
    schema = f"{name[:6]}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, future=True, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        # every connection (Alembic's too) puts its tables in the schema
        yield make_url(server).update_query_dict(
            {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def serve_asgi(app: str, env: dict[str, str], extra_args: Sequence[str] = ()) -> Iterator[str]:
    """``uvicorn <app>`` in a subprocess on a socket bound here, answering ``/health``.

    The socket is handed over with ``--fd``: requests queue in its backlog until the server
    accepts them, so there is no port race. Yields the base URL.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--fd", str(listener.fileno()), *extra_args,
         "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env, pass_fds=[listener.fileno()],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        try:
            health = requests.get(f"{base_url}/health", timeout=30)
        except requests.RequestException as exc:
            process.kill()
            output = process.communicate(timeout=10)[0].decode(errors="replace")
            pytest.fail(f"{app} did not answer /health ({exc!r}):\n{output}")
        assert health.status_code == 200, health.text
        yield base_url
    finally:
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        listener.close()


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run async client code from a test, on its own thread: Playwright's sync API (browser
    tests in the same session) keeps an event loop running on the main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@functools.cache
def _ephemeral_low() -> int:
    """The first port the kernel hands out as a connection's source port (32768 by default)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_handed_out: set[int] = set()
_pick = random.Random(f"{os.getpid()}:{time.time_ns()}")


def free_port(avoid: Collection[int] = ()) -> int:
    """A port on 127.0.0.1 for a test server (not one of ``avoid``): free now, and from
    below the kernel's ephemeral range. A port from inside it (what binding port 0 gives)
    can, between this call and the server binding it, become the source port of one of the
    stack's own outgoing connections (Postgres, Redis, RabbitMQ); the server then dies with
    "address already in use" (a Rasa replica did, in a fresh-clone run of the production
    topology test). Ports below the range are never taken that way; each is handed out once
    per test session."""
    high = _ephemeral_low()
    low = max(1024, high - 12000)
    while True:
        port = _pick.randrange(low, high - 250)  # room for a replica block of base + 0..202
        if port in _handed_out or port in avoid:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Backend (seeded), desk, action server, Rasa and the notifier, started for this test
    session only, as ``python -m stack up`` runs them: the backend's outbox worker every 2 s,
    the notifier reading its feed, no quiet hours in the sandbox (stack/config.py), so a test
    that posts a repayment or ends a hold sees the notice in that borrower's chat."""
    var = tmp_path_factory.mktemp("stack")
    base = StackConfig.from_env()
    config = replace(
        base,
        backend_port=free_port(), actions_port=free_port(), rasa_port=free_port(),
        desk_port=free_port(), log_dir=var / "log",
        backend_db_url=f"sqlite:///{var / 'eligibility.db'}",
        desk_db_url=f"sqlite:///{var / 'desk.db'}", tracker_db=var / "tracker.db",
    )
    subprocess.run([sys.executable, "-m", "eligibility", "seed"], cwd=ROOT,
                   env=config.child_env(), check=True, stdout=subprocess.DEVNULL)
    ensure_model(config, quiet=True)
    stack = Stack(config, reuse=False)
    try:
        stack.start()
    except RuntimeError as exc:
        logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(Path(config.log_dir).glob("*.log")))
        stack.stop()
        pytest.fail(f"the stack did not start: {exc}\n{logs}")
    yield stack
    stack.stop()
