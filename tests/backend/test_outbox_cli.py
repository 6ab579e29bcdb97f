"""The scheduler and the publisher as a user runs them: ``python -m eligibility tick`` and
``publish``, and the worker inside ``serve`` (``RELEND_OUTBOX_WORKER_SECONDS``), on the real
clock and the real RabbitMQ."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from common.db import make_engine, make_session_factory
from eligibility import ledger
from eligibility.models import OutboxMessage, Repayment
from eligibility.seed import seed
from tests.conftest import run_coroutine, serve_asgi

from .support import settings_env
from .test_cli import PROJECT_ROOT, run_cli
from .test_outbox import broker_reachable, closed_port, drain


def post_in(url: str, seconds: float) -> datetime:
    """Seed the demo, and make demo-posting's repayment due to post ``seconds`` from now."""
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            now = datetime.now(timezone.utc)
            seed(session, now)
            due = now + timedelta(seconds=seconds)
            session.execute(update(Repayment).where(Repayment.id == "RP-posting-2")
                            .values(expected_post_at=due))
            # demo-posting-incident's repayment posts later than these tests look
            session.execute(update(Repayment).where(Repayment.id == "RP-posting-incident-2")
                            .values(expected_post_at=now + timedelta(days=1)))
            session.commit()
        return due
    finally:
        engine.dispose()


def outbox_keys(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(
                select(OutboxMessage.key).order_by(OutboxMessage.id)).scalars())
    finally:
        engine.dispose()


def test_tick_records_what_came_due(migrated_url):
    post_in(migrated_url, 3600)
    first = run_cli("tick", database_url=migrated_url)
    assert first.returncode == 0, first.stderr
    assert outbox_keys(migrated_url) == []
    # after the first tick (its watermark), the repayment comes due
    engine = make_engine(migrated_url)
    with engine.begin() as connection:
        connection.execute(update(Repayment).where(Repayment.id == "RP-posting-2").values(
            expected_post_at=datetime.now(timezone.utc) + timedelta(seconds=0.5)))
    engine.dispose()
    time.sleep(0.6)

    second = run_cli("tick", database_url=migrated_url)

    assert second.returncode == 0, second.stderr
    assert "recorded 1 changes" in second.stdout
    (key,) = outbox_keys(migrated_url)
    assert key.startswith("repayment_posted:RP-posting-2:")
    assert "recorded 0 changes" in run_cli("tick", database_url=migrated_url).stdout


def test_publish_needs_a_broker_url(migrated_url):
    result = run_cli("publish", database_url=migrated_url)
    assert result.returncode == 2
    assert "RELEND_OUTBOX_AMQP_URL" in result.stderr


@pytest.mark.parametrize("reachable", [True, False], ids=["broker", "closed-port"])
def test_publish_delivers_or_says_it_failed(migrated_url, queue, reachable):
    post_in(migrated_url, -1)
    engine = make_engine(migrated_url)
    with make_session_factory(engine)() as session:  # the change, recorded as the ledger would
        now = datetime.now(timezone.utc)
        ledger.post_repayment(session, "RP-posting-2", posted_at=now, now=now)
        session.commit()
    engine.dispose()
    port = 5672 if reachable else closed_port()
    result = subprocess.run(
        [sys.executable, "-m", "eligibility", "publish"], cwd=PROJECT_ROOT,
        env={**settings_env(migrated_url),
             "RELEND_OUTBOX_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{port}/",
             "RELEND_OUTBOX_QUEUE": queue, "RELEND_OUTBOX_CONFIRM_TIMEOUT": "3"},
        capture_output=True, text=True, timeout=120)
    if reachable:
        assert result.returncode == 0, result.stderr
        assert "published 1, pending 0" in result.stdout
        (delivered,) = drain(queue)
        assert delivered[1]["key"] == outbox_keys(migrated_url)[0]
    else:
        assert result.returncode == 1
        assert "published 0, pending 1, error:" in result.stdout


def test_the_worker_inside_serve_posts_and_records(migrated_url):
    post_in(migrated_url, 3600)
    env = {**settings_env(migrated_url), "RELEND_OUTBOX_WORKER_SECONDS": "0.2"}
    with serve_asgi("eligibility.asgi:app", env):
        # the worker's first tick has run (or runs within 0.2 s): then the repayment comes due
        engine = make_engine(migrated_url)
        with engine.begin() as connection:
            connection.execute(update(Repayment).where(Repayment.id == "RP-posting-2").values(
                expected_post_at=datetime.now(timezone.utc) + timedelta(seconds=2)))
        engine.dispose()
        deadline = time.monotonic() + 15
        while not outbox_keys(migrated_url) and time.monotonic() < deadline:
            time.sleep(0.2)
    (key,) = outbox_keys(migrated_url)
    assert key.startswith("repayment_posted:RP-posting-2:")


@pytest.fixture
def queue():
    broker_reachable()
    name = f"relend_h6_{uuid.uuid4().hex[:10]}"
    yield name

    async def delete():
        import aio_pika

        connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/", timeout=5)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(name)

    run_coroutine(delete())


def test_the_demo_posting_window_is_configurable(migrated_url):
    before = datetime.now(timezone.utc)
    result = subprocess.run(
        [sys.executable, "-m", "eligibility", "seed"], cwd=PROJECT_ROOT,
        env={**settings_env(migrated_url), "RELEND_DEMO_POSTING_MINUTES": "3"},
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    engine = make_engine(migrated_url)
    try:
        with engine.connect() as connection:
            expected = connection.execute(select(Repayment.expected_post_at).where(
                Repayment.id == "RP-posting-2")).scalar_one()
    finally:
        engine.dispose()
    # seeding drops the fraction of a second of its "now"
    assert before - timedelta(seconds=1) + timedelta(minutes=3) <= expected
    assert expected <= datetime.now(timezone.utc) + timedelta(minutes=3)
