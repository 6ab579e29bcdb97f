"""Handoffs: the bot opens a case, agents own the conversation, and the bot goes quiet."""

from __future__ import annotations

import pytest
from desk_support import (
    BORROWER,
    HANDOFF_PAYLOAD,
    HANDOFF_TEXT,
    TYPING_OFF,
    AgentApi,
    AgentFeed,
    Chat,
    FakeRasa,
    error_code,
    hand_off,
    ownership,
)
from fastapi.testclient import TestClient

pytestmark = pytest.mark.timeout(30)

DECISION = {"eligible": False, "reasons": [
    {"code": "overdue_balance", "blocking": False}, {"code": "identity_expired", "blocking": True}]}


def test_before_any_handoff_the_bot_owns_the_conversation(client: TestClient, chat: Chat):
    assert ownership(client, chat.conversation_id) == {
        "conversation_id": chat.conversation_id, "owner": "bot", "case_id": None}


def test_a_handoff_opens_one_waiting_case_and_agents_own_the_conversation(
        client: TestClient, chat: Chat, feed: AgentFeed, agents: list[AgentApi]):
    first = hand_off(client, chat.conversation_id, borrower_id="b-spoofed", language="en",
                     reason="borrower_asked", topics=["ask_limit"], decision=DECISION,
                     appeal_ids=["ap-1"], backend_failed=True)
    again = hand_off(client, chat.conversation_id, reason="offered_by_bot")

    assert first.status_code == again.status_code == 200, (first.text, again.text)
    case_id = first.json()["case_id"]
    assert again.json() == {"case_id": case_id}  # asking twice never opens two cases
    assert feed.recv() == {"type": "queue"}
    assert ownership(client, chat.conversation_id) == {
        "conversation_id": chat.conversation_id, "owner": "agent", "case_id": case_id}
    [case] = agents[1].queue()
    assert case == {
        "case_id": case_id, "conversation_id": chat.conversation_id,
        "borrower_id": BORROWER,  # the conversation's verified borrower, not the payload's
        "language": "en", "reason": "borrower_asked", "status": "waiting", "claimed_by": None,
        "waiting_since": case["waiting_since"], "primary_reason": "identity_expired"}
    assert case["waiting_since"].endswith("Z")
    context = agents[1].case(case_id)["context"]
    assert context == {"topics": ["ask_limit"], "decision": DECISION, "appeal_ids": ["ap-1"],
                       "transcript": [], "unfiled_appeal_statement": None,
                       "backend_failed": True}


def test_the_case_language_defaults_to_the_conversations(client: TestClient, open_chat,
                                                         agents: list[AgentApi]):
    chat = open_chat("b-2002", "en-US")
    case_id = hand_off(client, chat.conversation_id).json()["case_id"]

    case = agents[0].case(case_id)
    assert (case["language"], case["reason"], case["primary_reason"]) == (
        "en", "borrower_asked", None)


def test_a_handoff_for_an_unknown_conversation_is_404(client: TestClient):
    response = hand_off(client, "c-nobody")
    assert response.status_code == 404 and error_code(response) == "conversation_not_found"


@pytest.mark.parametrize("body", [{}, {"conversation_id": 123}, {"conversation_id": ""},
                                  {"conversation_id": "c-x", "topics": "limit"}])
def test_a_malformed_handoff_is_a_validation_error(client: TestClient, internal, body):
    response = client.post("/internal/handoffs", headers=internal, json=body)
    assert response.status_code == 422


def test_the_handoff_turns_reply_is_delivered_and_later_bot_replies_are_dropped(
        client: TestClient, chat: Chat, feed: AgentFeed, fake_rasa: FakeRasa,
        agents: list[AgentApi]):
    # the bot offers a person; pressing the button sends its payload, and Rasa's handoff
    # action calls the desk while it answers
    fake_rasa.replies = [{"text": "需要转人工吗？", "buttons": [
        {"title": "转人工", "payload": HANDOFF_PAYLOAD}]}]
    chat.turn("我要找人")
    [reply] = chat.turn(HANDOFF_PAYLOAD)
    assert (reply["sender"], reply["text"]) == ("bot", HANDOFF_TEXT)
    assert ownership(client, chat.conversation_id)["owner"] == "agent"

    ack = chat.message("人呢？")

    # Rasa still hears it (its tracker stays complete) but whatever it says is not delivered
    assert chat.rest_of_turn(ack) == [TYPING_OFF]
    assert fake_rasa.messages[-1]["message"] == "人呢？"
    assert [(m["sender"], m["text"]) for m in chat.history()][2:] == [
        ("borrower", HANDOFF_PAYLOAD), ("bot", HANDOFF_TEXT), ("borrower", "人呢？")]
    # the case shows everything; live text reaches only the agent who takes the case
    assert feed.recv() == {"type": "queue"}
    case_id = ownership(client, chat.conversation_id)["case_id"]
    assert agents[0].claim(case_id).status_code == 200
    assert feed.recv() == {"type": "queue"}
    assert chat.rest_of_turn(chat.message("还在吗？")) == [TYPING_OFF]
    live = feed.next_message()
    assert (live["sender"], live["text"]) == ("borrower", "还在吗？")
    assert [(m["sender"], m["text"]) for m in agents[0].case(case_id)["messages"]][2:] == [
        ("borrower", HANDOFF_PAYLOAD), ("bot", HANDOFF_TEXT), ("borrower", "人呢？"),
        ("borrower", "还在吗？")]


def test_the_borrowers_messages_reach_the_case(client: TestClient, chat: Chat,
                                               agents: list[AgentApi]):
    chat.turn("我想查额度")
    case_id = hand_off(client, chat.conversation_id).json()["case_id"]
    chat.rest_of_turn(chat.message("我等着"))

    messages = agents[0].case(case_id)["messages"]

    assert [(m["sender"], m["text"]) for m in messages if m["sender"] == "borrower"] == [
        ("borrower", "我想查额度"), ("borrower", "我等着")]
