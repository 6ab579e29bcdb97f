"""Rasa on the production engines that run on this machine: PostgreSQL tracker store,
Redis lock store and RabbitMQ event broker, each on its standard local port, used for real."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import replace

import psycopg2
import pytest

from stack.services import Stack
from tests.conftest import free_port, run_coroutine
from tests.e2e.channel import say

pytestmark = pytest.mark.servers

ENGINES = {
    "RELEND_PG_HOST": "127.0.0.1", "RELEND_PG_PORT": "5432", "RELEND_PG_DB": "test",
    "RELEND_PG_USER": "postgres", "RELEND_PG_PASSWORD": "",
    "RELEND_REDIS_HOST": "127.0.0.1", "RELEND_REDIS_PORT": "6379",
    "RELEND_RABBITMQ_HOST": "127.0.0.1", "RELEND_RABBITMQ_USER": "guest",
    "RELEND_RABBITMQ_PASSWORD": "guest",
}


def _engines_reachable() -> str | None:
    import socket

    for name, port in (("PostgreSQL", 5432), ("Redis", 6379), ("RabbitMQ", 5672)):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            return name
    return None


@pytest.fixture(scope="module")
def production_rasa(live_stack: Stack, monkeypatch_module: pytest.MonkeyPatch
                    ) -> Iterator[tuple[Stack, str]]:
    down = _engines_reachable()
    if down:
        message = (f"{down} is not reachable on its standard local port; start it to run the "
                   "production-engine tests")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    queue = f"relend_test_{uuid.uuid4().hex[:8]}"
    for name, value in {**ENGINES, "RELEND_RABBITMQ_QUEUE": queue}.items():
        monkeypatch_module.setenv(name, value)
    config = replace(live_stack.config, rasa_port=free_port(),
                     endpoints="endpoints.production.yml")
    stack = Stack(config, reuse=False, only=("rasa",))
    stack.start()
    try:
        yield stack, queue
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()


def _drain(queue: str) -> list[dict]:
    import aio_pika

    async def run() -> list[dict]:
        connection = await aio_pika.connect_robust("amqp://guest:guest@127.0.0.1/")
        async with connection:
            channel = await connection.channel()
            q = await channel.declare_queue(queue, durable=True)
            events = []
            while (message := await q.get(no_ack=True, fail=False)) is not None:
                events.append(json.loads(message.body))
            await channel.queue_delete(queue)
            return events

    return run_coroutine(run())


def test_conversation_is_stored_in_postgres_and_published_to_rabbitmq(
        production_rasa: tuple[Stack, str]) -> None:
    stack, queue = production_rasa
    sender = f"prod-{uuid.uuid4().hex[:10]}"
    redis_writes_before = _redis_writes()
    replies = say(stack.config, sender, "还款后为什么借不了", "demo-posting", "zh-CN")
    assert any("5,000元" in (r.get("text") or "") for r in replies)

    with psycopg2.connect(host="127.0.0.1", dbname="test", user="postgres") as conn, \
            conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM events WHERE sender_id = %s", (sender,))
        assert cur.fetchone()[0] > 3

    published = [e for e in _drain(queue) if e.get("sender_id") == sender]
    assert any(e.get("event") == "user" for e in published)
    assert any(e.get("event") == "bot" for e in published)

    assert _redis_writes() > redis_writes_before  # the conversation lock went through Redis


def _redis_writes() -> int:
    import redis

    stats = redis.Redis(host="127.0.0.1", port=6379).info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k in ("cmdstat_set", "cmdstat_del"))
