"""Two more desk lines follow the reply-language rule (common/language.py; issue 12, item 4):
the note the bot reads out after an agent runs a check (desk/routes/agents.py) and proactive
notices (desk/notices.py). The borrower's latest clearly Chinese or English message decides;
with none (a borrower who never chatted), the app's locale.

Expected texts are the catalog's words (texts/*.yml ``desk.run_check_note``,
``notice.hold_released.security``, ``notice.decision_unknown``, ``fmt.*``), written out here
for a hold released on 10 Mar 2025 at 11:30 in Shanghai (03:30 UTC; not this year, so the
date carries its year)."""

from __future__ import annotations

from typing import Any

import pytest
from desk_support import INTERNAL_TOKEN, AgentApi, FakeRasa, bearer
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from desk.models import Message

pytestmark = pytest.mark.timeout(30)

NOTE = {"zh": "我已请助手再为您查一下账户情况",
        "en": "I've asked the assistant to check your account again"}
HOLD = {"hold_id": "H-7", "hold_kind": "security", "released_at": "2025-03-10T03:30:00Z"}
HOLD_TEXT = {
    "zh": "您账户的安全核查已经结束（2025年3月10日 11:30）。想知道现在能借多少，随时问我就好。",
    "en": ("The security check on your account has ended (10 Mar 2025 at 11:30). Ask me any "
           "time to check what you can borrow now."),
}


def note_sent(fake_rasa: FakeRasa) -> Any:
    """The ``agent_note`` slot the desk appended before the bot spoke again."""
    notes = [event["value"] for call in fake_rasa.to("/tracker/events")
             for event in (call.json if isinstance(call.json, list) else [])
             if event.get("event") == "slot" and event.get("name") == "agent_note"]
    assert len(notes) == 1, notes
    return notes[0]


@pytest.mark.parametrize(("locale", "written", "expected"), [
    ("en-US", ["我的额度为什么用不了？"], "zh"),  # an English app, a borrower writing Chinese
    ("zh-CN", ["why can't I borrow any more?"], "en"),
    ("en-US", ["why can't I borrow", "我想再查一下", "👍"], "zh"),  # the latest clear one
    ("en-US", [], "en"),  # nothing written: the locale
    ("zh-CN", ["20000"], "zh"),  # nothing clear: the locale
])
def test_the_run_check_note_follows_the_borrowers_language(
        client: TestClient, open_chat, agents: list[AgentApi], fake_rasa: FakeRasa,
        locale: str, written: list[str], expected: str) -> None:
    chat = open_chat("b-1001", locale)
    for text in written:
        chat.turn(text)
    fake_rasa.calls.clear()

    # outside a case: the supervisor (agent1) runs it
    response = agents[0].post(f"/api/agent/conversations/{chat.conversation_id}/run-check")

    assert response.status_code == 200, response.text
    assert note_sent(fake_rasa) == NOTE[expected]


def notice(borrower_id: str, key: str) -> dict[str, Any]:
    return {"schema": "relend.notice.v1", "id": 1, "key": key, "kind": "hold_released",
            "borrower_id": borrower_id, "occurred_at": "2025-03-10T03:30:00Z",
            "recorded_at": "2025-03-10T03:30:01Z", "data": HOLD, "timezone": "Asia/Shanghai",
            "decision": None, "deliver_after": None}


def bot_texts(sessions: sessionmaker[Session], conversation_id: str) -> list[str]:
    with sessions() as session:
        return list(session.execute(select(Message.text).where(
            Message.conversation_id == conversation_id, Message.sender == "bot",
            Message.notice.is_not(None)).order_by(Message.id)).scalars())


@pytest.mark.parametrize(("locale", "written", "expected"), [
    ("en-US", ["我的额度为什么用不了？"], "zh"),
    ("zh-CN", ["when will my limit come back?"], "en"),
    ("en-US", [], "en"),  # never wrote: the locale
    ("zh-CN", [], "zh"),
])
def test_a_notice_follows_the_borrowers_language(
        client: TestClient, open_chat, sessions: sessionmaker[Session], locale: str,
        written: list[str], expected: str) -> None:
    chat = open_chat("b-1003", locale)
    for text in written:
        chat.turn(text)

    answer = client.post("/internal/notices", headers=bearer(INTERNAL_TOKEN),
                         json=notice("b-1003", f"hold_released:H-7:{locale}"))

    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "delivered"
    frame = chat.recv()
    assert (frame["sender"], frame["notice"], frame["text"]) == (
        "bot", "hold_released", HOLD_TEXT[expected])
    assert bot_texts(sessions, chat.conversation_id) == [HOLD_TEXT[expected]]


def test_a_borrower_who_never_chatted_gets_the_notice_in_the_locale(
        client: TestClient, open_chat, sessions: sessionmaker[Session]) -> None:
    held = client.post("/internal/notices", headers=bearer(INTERNAL_TOKEN),
                       json=notice("b-1004", "hold_released:H-7:never"))
    assert held.json()["status"] == "waiting"  # no conversation yet

    chat = open_chat("b-1004", "en-US")

    assert chat.recv()["text"] == HOLD_TEXT["en"]
    assert bot_texts(sessions, chat.conversation_id) == [HOLD_TEXT["en"]]
