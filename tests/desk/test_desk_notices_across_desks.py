"""Quiet hours with several desks (desk/notices.py, ``SIGNAL``): a borrower in the chat on
another desk than the one the notifier reached gets the notice at once, exactly once.

Three desk apps in this process (each under its own TestClient and event loop) share one
database and one real Redis pub/sub channel (``h44-...``) on 127.0.0.1:6379: desk A receives
the notice in the borrower's quiet hours and has no socket of theirs, so it holds the notice
and signals the other desks; the borrower has the chat open on desk B and on desk C (two
tabs behind the load balancer). Both hear the signal and try to deliver: one stores it, each
tab shows it once. Skipped without Redis (a failure with ``CI=true``)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis
from desk_support import (
    DATABASES,
    INTERNAL_TOKEN,
    Chat,
    bearer,
    borrower_token,
    make_settings,
    subprotocols,
)
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from desk.config import DeskSettings
from desk.models import Message, Notice
from desk.notices import SIGNAL, Notices

REDIS_URL = os.environ.get("RELEND_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")

pytestmark = [pytest.mark.servers, pytest.mark.timeout(90),
              pytest.mark.parametrize("db_kind", DATABASES, indirect=True)]

# notice.hold_released.security + notice.decision_unknown (texts/zh.yml), for a hold released
# on 10 Mar 2025 at 11:30 in Shanghai (03:30 UTC)
HOLD = {"hold_id": "H-8", "hold_kind": "security", "released_at": "2025-03-10T03:30:00Z"}
HOLD_ZH = "您账户的安全核查已经结束（2025年3月10日 11:30）。想知道现在能借多少，随时问我就好。"


@pytest.fixture
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis not reachable at {REDIS_URL}: {exc}", pytrace=False)
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture
def channel() -> str:
    return f"h44-notices-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def signals(redis_url: str, channel: str) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """``signals()``: the ``notice_waiting`` frames published on the channel so far (the test
    listens too, as a fourth subscriber)."""
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    heard: list[dict[str, Any]] = []

    def read() -> list[dict[str, Any]]:
        while (message := pubsub.get_message(timeout=0.05)) is not None:
            frame = json.loads(message["data"])
            if frame.get("to") == SIGNAL:
                heard.append(frame)
        return heard

    yield read
    pubsub.close()
    client.close()


@pytest.fixture
def desks(make_app: Callable[[DeskSettings], FastAPI], migrated_url: str, redis_url: str,
          channel: str, signals: Callable[[], list[dict[str, Any]]]
          ) -> Iterator[list[TestClient]]:
    """Desks A, B and C, started (each listening on the test's own channel)."""
    apps = [make_app(make_settings(migrated_url, redis_url=redis_url, redis_channel=channel))
            for _ in range(3)]
    with ExitStack() as stack:
        clients = [stack.enter_context(TestClient(app)) for app in apps]
        deadline = time.monotonic() + 15
        while dict(redis.Redis.from_url(redis_url).pubsub_numsub(channel)).get(
                channel.encode(), 0) < 4:
            assert time.monotonic() < deadline, "the desks did not subscribe"
            time.sleep(0.05)
        yield clients


@pytest.fixture
def openings(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str, int]]:
    """Every ``Notices.opened`` call: (id of the desk's hub, conversation, notices it sent)."""
    calls: list[tuple[int, str, int]] = []
    original = Notices.opened

    async def spy(self: Notices, conversation_id: str, now: datetime | None = None) -> int:
        sent = await original(self, conversation_id, now)
        calls.append((id(self.hub), conversation_id, sent))
        return sent

    monkeypatch.setattr(Notices, "opened", spy)
    return calls


def chat_on(stack: ExitStack, client: TestClient, borrower_id: str) -> Chat:
    token = borrower_token(borrower_id, "zh-CN")
    return Chat(stack.enter_context(
        client.websocket_connect("/ws/chat", subprotocols=subprotocols(token))))


def hub_of(client: TestClient) -> int:
    app: Any = client.app
    return id(app.state.desk.hub)


def notice_state(sessions: sessionmaker[Session]) -> str | None:
    with sessions() as session:
        return session.execute(select(Notice.state)).scalar()


def wait_for(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting: {what}"
        time.sleep(0.05)


def test_a_borrower_in_the_chat_on_other_desks_gets_a_quiet_hours_notice_once(
        desks: list[TestClient], sessions: sessionmaker[Session],
        openings: list[tuple[int, str, int]],
        signals: Callable[[], list[dict[str, Any]]]) -> None:
    desk_a, desk_b, desk_c = desks
    with ExitStack() as stack:
        tab_b = chat_on(stack, desk_b, "b-1005")
        tab_c = chat_on(stack, desk_c, "b-1005")
        conversation_id = tab_b.conversation_id
        assert tab_c.conversation_id == conversation_id
        # the openings of the two tabs found nothing waiting
        wait_for(lambda: len(openings) == 2, "both openings ran")
        assert [sent for *_, sent in openings] == [0, 0]
        openings.clear()

        end = datetime.now(timezone.utc) + timedelta(hours=3)  # in the quiet hours
        answer = desk_a.post("/internal/notices", headers=bearer(INTERNAL_TOKEN), json={
            "schema": "relend.notice.v1", "id": 1, "key": "hold_released:H-8",
            "kind": "hold_released", "borrower_id": "b-1005",
            "occurred_at": "2025-03-10T03:30:00Z", "data": HOLD, "timezone": "Asia/Shanghai",
            "decision": None, "deliver_after": end.isoformat().replace("+00:00", "Z")})

        # desk A has no socket of theirs: it holds the notice (and signals the others)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "waiting"
        # stored at once (not three hours later; waiting here, rather than blocking on the
        # sockets, makes a missing delivery a failure instead of a hang)
        wait_for(lambda: notice_state(sessions) == "delivered", "the notice delivered")
        # each tab shows it once
        frame_b, frame_c = tab_b.recv(), tab_c.recv()
        for frame in (frame_b, frame_c):
            assert (frame["type"], frame["sender"], frame["notice"], frame["text"]) == (
                "message", "bot", "hold_released", HOLD_ZH)
        assert frame_b["id"] == frame_c["id"]
        # desk A signalled once; both desks with a tab tried; one of them sent it; A did not
        wait_for(lambda: len(signals()) == 1, "the signal on the channel")
        assert signals()[0]["conversation_id"] == conversation_id
        wait_for(lambda: len(openings) == 2, "both desks acted on the signal")
        assert sorted(hub for hub, *_ in openings) == sorted([hub_of(desk_b), hub_of(desk_c)])
        assert sorted(sent for *_, sent in openings) == [0, 1]
        assert {conversation for _, conversation, _ in openings} == {conversation_id}

        time.sleep(0.5)  # a second copy would have come by now: it would precede the history
        for tab in (tab_b, tab_c):
            assert tab.history(after=frame_b["id"]) == []
    with sessions() as session:
        texts = session.execute(select(Message.text).where(
            Message.conversation_id == conversation_id, Message.sender == "bot")).scalars()
        assert list(texts) == [HOLD_ZH]
        notice = session.execute(select(Notice)).scalar_one()
        assert (notice.state, notice.message_id) == ("delivered", frame_b["id"])


def test_without_a_tab_anywhere_the_notice_waits_for_the_end_of_quiet_hours(
        desks: list[TestClient], sessions: sessionmaker[Session],
        openings: list[tuple[int, str, int]],
        signals: Callable[[], list[dict[str, Any]]]) -> None:
    desk_a, desk_b, _ = desks
    with ExitStack() as stack:  # the borrower chatted on desk B once, then closed the tab
        conversation_id = chat_on(stack, desk_b, "b-1006").conversation_id
    wait_for(lambda: len(openings) == 1, "the opening ran")
    openings.clear()
    end = datetime.now(timezone.utc) + timedelta(hours=3)

    answer = desk_a.post("/internal/notices", headers=bearer(INTERNAL_TOKEN), json={
        "schema": "relend.notice.v1", "id": 2, "key": "hold_released:H-8:away",
        "kind": "hold_released", "borrower_id": "b-1006",
        "occurred_at": "2025-03-10T03:30:00Z", "data": HOLD, "timezone": "Asia/Shanghai",
        "decision": None, "deliver_after": end.isoformat().replace("+00:00", "Z")})

    assert answer.json()["status"] == "waiting"
    wait_for(lambda: len(signals()) == 1, "the signal on the channel")
    time.sleep(0.5)  # the desks heard it too: none has a tab, none tries
    assert openings == []
    with sessions() as session:
        assert session.execute(select(Notice.state)).scalar_one() == "waiting"
        assert list(session.execute(select(Message.id).where(
            Message.conversation_id == conversation_id, Message.sender == "bot")).scalars()) == []
