"""Exactly once per change, with the real pieces: RabbitMQ on 127.0.0.1:5672 (a queue of this
test's own), the desk as a uvicorn server on a migrated SQLite file, and the notifier as a
subprocess (``python -m notices``) that is SIGKILLed in the middle of the queue and started
again. The broker redelivers what the dead notifier had not acknowledged; changes the
publisher sent twice come twice. Each key must end as exactly one chat message."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from common.db import make_engine, make_session_factory
from desk.migrate import upgrade
from desk.models import Message, Notice
from desk.service import open_conversation, utc_now
from tests.conftest import ROOT, run_coroutine, serve_asgi

pytestmark = pytest.mark.servers

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
TOKEN = "kill-test-desk-token-0123456789abcdef"
BORROWERS = [f"b-kill-{n}" for n in range(10)]
CHANGES = 300
SENT_TWICE = range(0, CHANGES, 15)  # the publisher sent these again (same key)
KILL_AFTER = 40  # stored notices


def broker_reachable() -> None:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError as exc:
        message = f"RabbitMQ not reachable on 127.0.0.1:5672 ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture
def queue() -> Iterator[str]:
    broker_reachable()
    name = f"relend_h7_{uuid.uuid4().hex[:10]}"
    yield name

    async def delete() -> None:
        import aio_pika

        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(name)

    run_coroutine(delete())


def change(n: int) -> dict:
    return {"schema": "relend.notice.v1", "id": n + 1, "key": f"hold_released:H-{n}",
            "kind": "hold_released", "borrower_id": BORROWERS[n % len(BORROWERS)],
            "occurred_at": "2026-11-30T03:30:00Z", "recorded_at": "2026-11-30T03:30:01Z",
            "data": {"hold_id": f"H-{n}", "hold_kind": "security",
                     "released_at": "2026-11-30T03:30:00Z"}}


def publish(queue: str, messages: list[dict]) -> None:
    """As the backend's publisher does: persistent JSON, the key as the message id."""
    async def run() -> None:
        import aio_pika

        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        async with connection:
            channel = await connection.channel()
            await channel.declare_queue(queue, durable=True)
            for message in messages:
                await channel.default_exchange.publish(aio_pika.Message(
                    json.dumps(message).encode(), message_id=message["key"],
                    content_type="application/json", type=message["kind"],
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=queue)

    run_coroutine(run())


def queue_depth(queue: str) -> int:
    async def run() -> int:
        import aio_pika

        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        async with connection:
            channel = await connection.channel()
            declared = await channel.declare_queue(queue, durable=True)
            return int(declared.declaration_result.message_count or 0)

    return run_coroutine(run())


def notifier(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "notices", "run"], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def test_killed_mid_queue_each_change_is_one_message(queue: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as session:
        for borrower in BORROWERS:
            open_conversation(session, borrower, "zh-CN", utc_now())
    env = {**os.environ, "RELEND_ENV": "sandbox", "PYTHONPATH": str(ROOT),
           "RELEND_DESK_DB_URL": url, "RELEND_DESK_TOKEN": TOKEN,
           "RELEND_RASA_URL": "http://127.0.0.1:9", "RELEND_DESK_REDIS_URL": ""}
    messages = [change(n) for n in range(CHANGES)]
    publish(queue, messages + [messages[n] for n in SENT_TWICE])

    def stored() -> int:
        with sessions() as session:
            return int(session.execute(select(func.count(Notice.id))).scalar() or 0)

    log = tmp_path / "notifier.log"
    with serve_asgi("desk.asgi:app", env) as desk_url:
        notifier_env = {**env, "RELEND_DESK_URL": desk_url, "RELEND_NOTICES_AMQP_URL": AMQP_URL,
                        "RELEND_NOTICES_QUEUE": queue, "RELEND_NOTICES_PREFETCH": "50",
                        "RELEND_NOTICES_QUIET_HOURS": "off", "RELEND_NOTICES_POLL_SECONDS": "1",
                        # no backend: each notice goes out without a decision
                        "RELEND_BACKEND_URL": "http://127.0.0.1:9"}
        first = notifier(notifier_env, log)
        try:
            deadline = time.monotonic() + 60
            while stored() < KILL_AFTER and time.monotonic() < deadline \
                    and first.poll() is None:
                time.sleep(0.005)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        at_kill = stored()
        assert KILL_AFTER <= at_kill < CHANGES, (at_kill, log.read_text())
        second = notifier(notifier_env, log)
        restarted = time.monotonic()
        try:
            deadline = time.monotonic() + 120
            # until every change is stored and the twice-sent ones came back as duplicates
            while (stored() < CHANGES or log.read_text().count(": duplicate") < len(SENT_TWICE)
                   or queue_depth(queue)) and time.monotonic() < deadline:
                time.sleep(0.2)
            took = time.monotonic() - restarted
            time.sleep(1.0)  # anything still in flight lands (and must change nothing)
        finally:
            second.terminate()
            second.wait(10)
    with sessions() as session:
        notices = session.execute(select(Notice.key, Notice.state, Notice.message_id)).all()
        bot = session.execute(select(Message.id, Message.text).where(
            Message.sender == "bot")).all()
    engine.dispose()
    output = log.read_text()
    assert sorted(k for k, _, _ in notices) == sorted(m["key"] for m in messages), output
    assert {s for _, s, _ in notices} == {"delivered"}
    # one chat message per key, each the one its notice names
    assert len(bot) == CHANGES
    assert sorted(m for _, _, m in notices) == sorted(i for i, _ in bot)
    # the changes sent twice were answered as duplicates, not stored again
    assert output.count(": duplicate") >= len(SENT_TWICE), output[-3000:]
    print(f"killed after {at_kill} of {CHANGES} stored; the restarted notifier took {took:.1f} s "
          f"for the other {CHANGES - at_kill} and {len(SENT_TWICE)} duplicates")
