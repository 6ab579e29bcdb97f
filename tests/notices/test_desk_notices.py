"""The desk's side of the notifier (desk/notices.py, ``POST /internal/notices``): the real desk
app in-process on a migrated SQLite database (and PostgreSQL where marked), a fake Rasa, real
chat sockets. Expected texts are written out from texts/*.yml by hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from desk_support import (
    BOT_TEXT,
    INTERNAL_TOKEN,
    AgentApi,
    Chat,
    FakeRasa,
    bearer,
    hand_off,
    on_every_database,
)
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from desk.models import Conversation, Message, Notice
from desk.notices import Notices
from desk.service import open_conversation, utc_now
from notices.config import NoticeSettings
from notices.handler import Handler


def _released() -> tuple[str, str, str]:
    """A hold released ten days ago at 11:30 in Shanghai, and the date as each catalog writes
    it (texts/*.yml: fmt.date, fmt.date_with_year, fmt.at_time)."""
    shanghai = ZoneInfo("Asia/Shanghai")
    today = datetime.now(shanghai)
    day = (today - timedelta(days=10)).replace(hour=11, minute=30, second=0, microsecond=0)
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    zh = f"{day.month}月{day.day}日 11:30"
    en = f"{day.day} {months[day.month - 1]} at 11:30"
    if day.year != today.year:
        zh = f"{day.year}年{zh}"
        en = f"{day.day} {months[day.month - 1]} {day.year} at 11:30"
    return day.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"), zh, en


RELEASED_AT, RELEASED_ZH, RELEASED_EN = _released()
HOLD = {"hold_id": "H-1", "hold_kind": "security", "released_at": RELEASED_AT}
HOLD_ZH = f"您账户的安全核查已经结束（{RELEASED_ZH}）。想知道现在能借多少，随时问我就好。"
HOLD_EN = (f"The security check on your account has ended ({RELEASED_EN}). Ask me any time "
           "to check what you can borrow now.")
APPEAL = {"appeal_id": "AP-9", "reason_code": "LIMIT_REDUCED", "status": "upheld",
          "resolution_note": None, "restored_limit": 30000}
APPEAL_ZH = ("您的申诉（编号 AP-9）已通过，总额度已恢复为30,000元。"
             "想知道现在能借多少，随时问我就好。")


def change(borrower_id: str, key: str, kind: str = "hold_released",
           data: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """An outbox message (docs/backend.md) as the notifier hands it over."""
    return {"schema": "relend.notice.v1", "id": extra.pop("id", 1), "key": key, "kind": kind,
            "borrower_id": borrower_id, "occurred_at": "2026-11-30T03:30:00Z",
            "recorded_at": "2026-11-30T03:30:01Z", "data": data or HOLD,
            "timezone": "Asia/Shanghai", "decision": None, "deliver_after": None, **extra}


def post(client: TestClient, body: dict[str, Any]) -> httpx.Response:
    return client.post("/internal/notices", headers=bearer(INTERNAL_TOKEN), json=body)


def bot_texts(sessions: sessionmaker[Session], conversation_id: str) -> list[str]:
    with sessions() as session:
        return list(session.execute(select(Message.text).where(
            Message.conversation_id == conversation_id, Message.sender == "bot")
            .order_by(Message.id)).scalars())


def conversation_of(sessions: sessionmaker[Session], borrower_id: str) -> str | None:
    with sessions() as session:
        return session.execute(select(Conversation.id).where(
            Conversation.borrower_id == borrower_id)).scalar()


@on_every_database
def test_a_change_becomes_one_bot_message_live_stored_and_in_the_tracker(
        client: TestClient, chat: Chat, sessions: sessionmaker[Session],
        fake_rasa: FakeRasa) -> None:
    chat.rest_of_turn(chat.message("我的额度为什么用不了"))  # the assistant has a tracker now
    answer = post(client, change("b-1001", "hold_released:H-1:2026-11-30T03:30:00Z"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "delivered"
    frame = chat.recv()
    assert (frame["type"], frame["sender"], frame["text"]) == ("message", "bot", HOLD_ZH)
    assert frame["notice"] == "hold_released"  # the app can show it as a notice
    # the broker delivers it again, the notifier replays it: no second message
    again = post(client, change("b-1001", "hold_released:H-1:2026-11-30T03:30:00Z"))
    assert again.json()["status"] == "duplicate"
    assert again.json()["message_id"] == frame["id"]
    assert bot_texts(sessions, chat.conversation_id).count(HOLD_ZH) == 1
    # the assistant knows what it told the borrower (and it is no reply to their message)
    logged = [e for e in fake_rasa.trackers[chat.conversation_id] if e["event"] == "bot"
              and (e.get("metadata") or {}).get("notice")]
    assert [(e["text"], e["metadata"]["notice"]) for e in logged] == [
        (HOLD_ZH, "hold_released:H-1:2026-11-30T03:30:00Z")]
    # and forgets the decision it kept for follow-ups: the next question fetches the new one
    events = fake_rasa.trackers[chat.conversation_id]
    after = events[events.index(logged[0]) + 1]
    assert (after["event"], after["name"], after["value"]) == ("slot", "decision", None)
    # replayed on reconnect
    chat.send({"type": "hello", "after": 0})
    history = chat.recv()
    bot = [m for m in history["messages"] if m["sender"] == "bot"]
    assert [(m["text"], m["notice"]) for m in bot] == [(BOT_TEXT, None), (HOLD_ZH, "hold_released")]


@on_every_database
def test_a_borrower_who_never_chatted_gets_it_when_they_open_the_chat(
        client: TestClient, open_chat: Callable[..., Chat],
        sessions: sessionmaker[Session], fake_rasa: FakeRasa) -> None:
    answer = post(client, change("b-2002", "appeal_decided:AP-9", "appeal_decided", APPEAL))
    assert answer.json()["status"] == "waiting"
    assert conversation_of(sessions, "b-2002") is None
    chat = open_chat("b-2002", "zh-CN")
    frame = chat.recv()
    assert (frame["sender"], frame["text"]) == ("bot", APPEAL_ZH)
    assert bot_texts(sessions, chat.conversation_id) == [APPEAL_ZH]
    # nothing went to Rasa: a first event from the desk would skip action_session_start
    assert chat.conversation_id not in fake_rasa.trackers
    # opening the chat again does not send it again; nor does the change coming again
    open_chat("b-2002", "zh-CN")
    assert post(client, change("b-2002", "appeal_decided:AP-9", "appeal_decided",
                               APPEAL)).json()["status"] == "duplicate"
    assert bot_texts(sessions, chat.conversation_id) == [APPEAL_ZH]


def test_the_conversations_language_is_used(client: TestClient,
                                            open_chat: Callable[..., Chat],
                                            sessions: sessionmaker[Session]) -> None:
    chat = open_chat("b-3003", "en-US")
    post(client, change("b-3003", "hold_released:H-3"))
    assert chat.recv()["text"] == HOLD_EN


@on_every_database
def test_never_to_the_borrower_while_an_agent_owns_the_conversation(
        client: TestClient, chat: Chat, sessions: sessionmaker[Session],
        agents: list[AgentApi], app: FastAPI) -> None:
    case_id = hand_off(client, chat.conversation_id, language="zh").json()["case_id"]
    assert agents[1].claim(case_id).status_code == 200
    answer = post(client, change("b-1001", "hold_released:H-1"))
    assert answer.json()["status"] == "to_agent"
    assert answer.json()["case_id"] == case_id
    assert bot_texts(sessions, chat.conversation_id) == []
    notices = agents[1].case(case_id)["context"]["notices"]
    assert [(n["key"], n["kind"], n["text"]) for n in notices] == [
        ("hold_released:H-1", "hold_released",
         "通知（对话由人工处理中，未发给借款人）：" + HOLD_ZH)]
    # a later round does not send it to the borrower either
    desk = app.state.desk
    notices_ = Notices(desk.sessions, desk.hub, desk.rasa, desk.turns.locks)
    assert client.portal.call(notices_.release) == 0
    assert bot_texts(sessions, chat.conversation_id) == []


def away(sessions: sessionmaker[Session], borrower_id: str) -> str:
    """A borrower who chatted before but has no chat open now: their conversation."""
    with sessions() as session:
        return open_conversation(session, borrower_id, "zh-CN", utc_now()).id


def test_quiet_hours_hold_a_notice_until_their_end(client: TestClient,
                                                   open_chat: Callable[..., Chat],
                                                   sessions: sessionmaker[Session],
                                                   app: FastAPI) -> None:
    conversation_id = away(sessions, "b-4004")
    end = datetime.now(timezone.utc) + timedelta(hours=3)
    held = post(client, change("b-4004", "hold_released:H-4",
                               deliver_after=end.isoformat().replace("+00:00", "Z")))
    assert held.json()["status"] == "waiting"
    assert client.post("/internal/notices/release",
                       headers=bearer(INTERNAL_TOKEN)).json() == {"delivered": 0}
    desk = app.state.desk
    notices = Notices(desk.sessions, desk.hub, desk.rasa, desk.turns.locks)
    assert client.portal.call(notices.release, end - timedelta(seconds=1)) == 0
    assert bot_texts(sessions, conversation_id) == []
    assert client.portal.call(notices.release, end) == 1
    assert bot_texts(sessions, conversation_id) == [HOLD_ZH]
    assert client.portal.call(notices.release, end + timedelta(hours=1)) == 0
    # the borrower finds it when they come back
    chat = open_chat("b-4004")
    chat.send({"type": "hello", "after": 0})
    assert [m["text"] for m in chat.recv()["messages"]] == [HOLD_ZH]


def test_a_borrower_in_the_chat_gets_it_in_quiet_hours_too(
        client: TestClient, open_chat: Callable[..., Chat],
        sessions: sessionmaker[Session]) -> None:
    conversation_id = away(sessions, "b-1001")
    end = (datetime.now(timezone.utc) + timedelta(hours=3)).isoformat().replace("+00:00", "Z")
    held = post(client, change("b-1001", "appeal_decided:AP-9", "appeal_decided", APPEAL,
                               deliver_after=end))
    assert held.json()["status"] == "waiting"
    with sessions() as session:  # the borrower was away: it was held, and is not yet sent
        assert session.execute(select(Notice.state)).scalar_one() == "waiting"
    chat = open_chat("b-1001")
    assert chat.recv()["text"] == APPEAL_ZH  # opening the chat: what waited for them
    answer = post(client, change("b-1001", "hold_released:H-4", deliver_after=end))
    assert answer.json()["status"] == "delivered"  # in the chat now: at once
    assert chat.recv()["text"] == HOLD_ZH
    assert bot_texts(sessions, conversation_id) == [APPEAL_ZH, HOLD_ZH]


def test_what_the_desk_cannot_word_is_refused_for_good(client: TestClient,
                                                       sessions: sessionmaker[Session]) -> None:
    unknown = post(client, change("b-1001", "limit_raised:X", "limit_raised", {"x": 1}))
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_notice_kind"
    broken = post(client, change("b-1001", "repayment_posted:RP-x", "repayment_posted",
                                 {"repayment_id": "RP-x"}))
    assert broken.status_code == 422 and broken.json()["error"]["code"] == "bad_notice"
    assert client.post("/internal/notices", json=change("b-1001", "k")).status_code == 401
    with sessions() as session:
        assert session.execute(select(Notice)).first() is None
    assert client.get("/internal/notices/cursor",
                      headers=bearer(INTERNAL_TOKEN)).json() == {"after_id": 0}


# --- the notifier's handler against the real desk, with a clock the test sets -------------------


def handler_for(app: FastAPI, moment: datetime, zone: str,
                eligible: bool = True) -> Handler:
    checked = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")

    def backend(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer backend-token"
        return httpx.Response(200, json={
            "borrower_id": "b-1001", "eligible": eligible, "available_limit": 8000,
            "total_limit": 20000, "currency": "CNY", "timezone": zone, "reasons": [],
            "decision_id": "D-1", "checked_at": checked})

    client = httpx.AsyncClient(mounts={
        "http://backend.test": httpx.MockTransport(backend),
        "http://desk.test": httpx.ASGITransport(app=app)})
    settings = NoticeSettings(desk_url="http://desk.test", desk_token=INTERNAL_TOKEN,
                              backend_url="http://backend.test", backend_token="backend-token",
                              backoffice_token="x", quiet_hours="22:00-08:00",
                              lender_timezone="Asia/Shanghai")
    return Handler(settings, client, clock=lambda: moment)


def test_the_notifier_holds_a_notice_in_the_borrowers_night(
        client: TestClient, sessions: sessionmaker[Session], app: FastAPI) -> None:
    conversation_id = away(sessions, "b-1001")
    # 23:30 in Shanghai tomorrow: the desk holds a notice against its own clock, so the
    # borrower's night must still be ahead of the real time (a fixed date stops being night
    # once it has passed: this test failed the first time it ran after 2026-12-01 00:00 UTC)
    tomorrow = datetime.now(timezone.utc).date() + timedelta(days=1)
    night = datetime.combine(tomorrow, dt_time(15, 30), tzinfo=timezone.utc)
    handle = handler_for(app, night, "Asia/Shanghai")
    assert client.portal.call(handle, change("b-1001", "hold_released:H-5")) == "waiting"
    with sessions() as session:
        notice = session.execute(select(Notice)).scalar_one()
        # 08:00 the next morning in Shanghai, 00:00 UTC
        assert notice.deliver_after == datetime.combine(tomorrow + timedelta(days=1),
                                                        dt_time(0, 0), tzinfo=timezone.utc)
        assert notice.timezone == "Asia/Shanghai"
        assert notice.decision["eligible"] is True
    assert bot_texts(sessions, conversation_id) == []
    # the same moment is 15:30 in London: a borrower there gets it at once, with the decision
    handle = handler_for(app, night, "Europe/London")
    assert client.portal.call(handle, change("b-1001", "hold_released:H-6")) == "delivered"
    (text,) = bot_texts(sessions, conversation_id)
    assert text.startswith("您账户的安全核查已经结束") and text.endswith(
        "您现在可以借款了，可用额度8,000元。")
    # and the change coming again is a duplicate
    assert client.portal.call(handle, change("b-1001", "hold_released:H-6")) == "duplicate"
