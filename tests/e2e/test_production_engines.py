"""Rasa on the production engines that run on this machine: PostgreSQL tracker store,
Redis lock store and RabbitMQ event broker, each on its standard local port, used for real."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
# endpoints.production.yml: lock_store db 1, key_prefix "relend"; Rasa's RedisLockStore keys a
# conversation's lock as "<key_prefix>:lock:<sender id>"
LOCK_DB, LOCK_KEY = 1, "relend:lock:{sender}"


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


def _drain(queue: str, sender: str, kinds: set[str], seconds: float = 15.0) -> list[dict]:
    """The conversation's events on the queue. Rasa's broker publishes in the background (the
    turn's HTTP answer can come first), so it reads until an event of each of ``kinds`` has
    arrived or ``seconds`` have passed; then deletes the queue."""
    import aio_pika

    async def run() -> list[dict]:
        connection = await aio_pika.connect_robust("amqp://guest:guest@127.0.0.1/")
        async with connection:
            channel = await connection.channel()
            q = await channel.declare_queue(queue, durable=True)
            events: list[dict] = []
            deadline = asyncio.get_running_loop().time() + seconds
            while True:
                while (message := await q.get(no_ack=True, fail=False)) is not None:
                    event = json.loads(message.body)
                    if event.get("sender_id") == sender:
                        events.append(event)
                seen = {e.get("event") for e in events}
                if kinds <= seen or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.2)
            await channel.queue_delete(queue)
            return events

    return run_coroutine(run())


def test_conversation_is_stored_in_postgres_and_published_to_rabbitmq(
        production_rasa: tuple[Stack, str]) -> None:
    stack, queue = production_rasa
    sender = f"prod-{uuid.uuid4().hex[:10]}"
    with _lock_key_events(sender) as lock_events:
        replies = say(stack.config, sender, "还款后为什么借不了", "demo-posting", "zh-CN")
    assert any("5,000元" in (r.get("text") or "") for r in replies)
    # this conversation's lock went through Redis: written, then deleted once the turn ended
    assert lock_events[:1] == ["set"] and lock_events[-1:] == ["del"], lock_events

    with psycopg2.connect(host="127.0.0.1", dbname="test", user="postgres") as conn, \
            conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM events WHERE sender_id = %s", (sender,))
        assert cur.fetchone()[0] > 3

    published = _drain(queue, sender, {"user", "bot"})
    assert any(e.get("event") == "user" for e in published)
    assert any(e.get("event") == "bot" for e in published)


@contextmanager
def _lock_key_events(sender: str) -> Iterator[list[str]]:
    """The commands Redis ran on this conversation's lock key during the block (keyspace
    notifications, switched on for the block and restored after); waits for the lock's
    release ("del") before leaving."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379, db=LOCK_DB)
    key = LOCK_KEY.format(sender=sender)
    before = client.config_get("notify-keyspace-events")["notify-keyspace-events"]
    # K: keyspace channel; $: string commands (SET); g: generic ones (DEL, EXPIRE)
    client.config_set("notify-keyspace-events", "".join(sorted(set(before) | set("K$g"))))
    pubsub = client.pubsub()
    events: list[str] = []
    try:
        pubsub.subscribe(f"__keyspace@{LOCK_DB}__:{key}")
        confirmed = pubsub.get_message(timeout=10)  # subscribed before anything is sent
        assert confirmed is not None and confirmed["type"] == "subscribe", confirmed
        yield events
        deadline = time.monotonic() + 30
        while "del" not in events and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=1)
            if message is not None and message["type"] == "message":
                events.append(message["data"].decode())
        assert client.exists(key) == 0, f"{key} is still held"
    finally:
        pubsub.close()
        client.config_set("notify-keyspace-events", before)
        client.close()
