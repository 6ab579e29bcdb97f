"""Handoffs: the bot opens a case, agents own the conversation, and the bot goes quiet."""

from __future__ import annotations

from datetime import timedelta

import pytest
from desk_support import (
    BORROWER,
    HANDOFF_PAYLOAD,
    HANDOFF_TEXT,
    INTERNAL_TOKEN,
    TYPING_OFF,
    AgentApi,
    AgentFeed,
    Chat,
    FakeRasa,
    add_claimed_cases,
    bearer,
    error_code,
    hand_off,
    ownership,
)
from fastapi.testclient import TestClient

from desk.models import Case

pytestmark = pytest.mark.timeout(30)

# the lines a person joining or leaving leaves in the conversation (texts/*.yml desk.agent_*)
JOINED_LI_NA = "人工客服 李娜 已加入对话"
JOINED_WANG_LEI = "人工客服 王磊 已加入对话"
LEFT = "人工客服已结束服务，智能助手继续为您服务"

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
    # the borrower and the agent read who joined (a stored line of the conversation)
    assert (chat.recv()["sender"], feed.next_message()["text"]) == ("system", JOINED_LI_NA)
    assert chat.rest_of_turn(chat.message("还在吗？")) == [TYPING_OFF]
    live = feed.next_message()
    assert (live["sender"], live["text"]) == ("borrower", "还在吗？")
    assert [(m["sender"], m["text"]) for m in agents[0].case(case_id)["messages"]][2:] == [
        ("borrower", HANDOFF_PAYLOAD), ("bot", HANDOFF_TEXT), ("borrower", "人呢？"),
        ("system", JOINED_LI_NA), ("borrower", "还在吗？")]


def test_the_borrowers_messages_reach_the_case(client: TestClient, chat: Chat,
                                               agents: list[AgentApi]):
    chat.turn("我想查额度")
    case_id = hand_off(client, chat.conversation_id).json()["case_id"]
    chat.rest_of_turn(chat.message("我等着"))

    messages = agents[0].case(case_id)["messages"]

    assert [(m["sender"], m["text"]) for m in messages if m["sender"] == "borrower"] == [
        ("borrower", "我想查额度"), ("borrower", "我等着")]


# --- what the borrower sees of the handoff (issue 12) -------------------------------------------


def state_on_hello(chat: Chat) -> dict:
    """The handoff state in the answer to a fresh ``hello`` (what a reloaded page reads)."""
    chat.send({"type": "hello", "after": 10**9})
    frame = chat.recv()
    assert frame["type"] == "history", frame
    return frame["handoff"]


def pushed(chat: Chat, lines: list[str] | None = None) -> list[dict]:
    """The handoff frames pushed to the chat so far (read up to a fresh hello's answer);
    the system lines pushed meanwhile go to ``lines`` (none expected without it)."""
    chat.send({"type": "hello", "after": 10**9})
    while (frame := chat.recv())["type"] == "message":
        assert frame["sender"] == "system" and lines is not None, frame
        lines.append(frame["text"])
    assert frame["type"] == "history", frame  # (recv sets handoff frames aside)
    frames, chat.handoff_frames[:] = list(chat.handoff_frames), []
    return frames


def test_the_borrower_sees_waiting_with_the_place_in_the_queue_then_the_agent_then_the_bot(
        client: TestClient, open_chat, agents: list[AgentApi]):
    first, second = open_chat("b-1001"), open_chat("b-1002")
    assert state_on_hello(first) == {"state": "bot"}

    case_1 = hand_off(client, first.conversation_id).json()["case_id"]
    case_2 = hand_off(client, second.conversation_id).json()["case_id"]

    assert pushed(first) == [{"type": "handoff", "state": "waiting", "position": 1}]
    assert pushed(second) == [{"type": "handoff", "state": "waiting", "position": 2}]

    # an agent takes the first case: its borrower sees who (the state, and a line in the
    # conversation, before it); the second moves up
    assert agents[1].claim(case_1).status_code == 200
    lines: list[str] = []
    assert pushed(first, lines) == [
        {"type": "handoff", "state": "agent", "agent_name": "王磊 Wang Lei"}]
    assert lines == [JOINED_WANG_LEI]
    assert pushed(second) == [{"type": "handoff", "state": "waiting", "position": 1}]

    # closed: the bot has it again, and the conversation says so
    assert agents[1].post(f"/api/agent/cases/{case_1}/close").status_code == 200
    assert pushed(first, lines) == [{"type": "handoff", "state": "bot"}]
    assert lines == [JOINED_WANG_LEI, LEFT]
    assert pushed(second) == []  # a claimed case leaving the queue moves nobody
    assert state_on_hello(first) == {"state": "bot"}
    assert state_on_hello(second) == {"state": "waiting", "position": 1}
    assert case_2 != case_1


def test_a_reconnected_page_reads_the_current_state_in_the_answer_to_its_hello(
        client: TestClient, open_chat, agents: list[AgentApi]):
    chat = open_chat()
    case_id = hand_off(client, chat.conversation_id).json()["case_id"]
    assert state_on_hello(open_chat()) == {"state": "waiting", "position": 1}

    agents[0].claim(case_id)  # while no socket of this page listens

    assert state_on_hello(open_chat()) == {"state": "agent", "agent_name": "李娜 Li Na"}
    agents[0].post(f"/api/agent/cases/{case_id}/return", {})
    assert state_on_hello(open_chat()) == {"state": "bot"}


def test_returning_to_the_bot_says_so_before_the_bots_words(
        client: TestClient, chat: Chat, agents: list[AgentApi]):
    case_id = hand_off(client, chat.conversation_id).json()["case_id"]
    agents[0].claim(case_id)
    pushed(chat, [])

    assert agents[0].post(f"/api/agent/cases/{case_id}/return", {}).status_code == 200

    left = chat.socket.receive_json()
    assert (left["sender"], left["text"]) == ("system", LEFT)  # the person left
    assert chat.socket.receive_json() == {"type": "handoff", "state": "bot"}
    assert chat.socket.receive_json()["sender"] == "bot"  # then the bot speaks


def test_when_the_assistant_fails_the_borrower_waits_for_a_person_until_it_is_back(
        client: TestClient, chat: Chat, fake_rasa: FakeRasa):
    fake_rasa.failure = "connect"
    chat.rest_of_turn(chat.message("我的额度为什么没了？"))
    assert chat.handoff_frames == [{"type": "handoff", "state": "waiting", "position": 1}]

    fake_rasa.failure = None
    client.portal.call(client.app.state.desk.turns.sweep)  # the background round

    frames = [chat.socket.receive_json() for _ in range(4)]
    assert [(f["type"], f.get("sender")) for f in frames] == [
        ("message", "system"), ("handoff", None), ("message", "bot"), ("turn_done", None)]
    assert frames[1] == {"type": "handoff", "state": "bot"}  # right after "the assistant is back"


# --- the case's context follows the bot's later checks (issue 12) -------------------------------


NEW_DECISION = {"eligible": True, "decision_id": "dec-2", "reasons": [
    {"code": "repayment_posting", "blocking": True, "detail": "手机 13812345678 已还款"}]}


def update_decision(client: TestClient, conversation_id: str, **body):
    return client.post(f"/internal/conversations/{conversation_id}/decision",
                       headers=bearer(INTERNAL_TOKEN), json=body)


def test_a_new_decision_updates_the_open_case_and_every_console_hears_of_it(
        client: TestClient, chat: Chat, feed: AgentFeed, agents: list[AgentApi]):
    case_id = hand_off(client, chat.conversation_id, decision=DECISION,
                       backend_failed=True).json()["case_id"]
    assert feed.recv() == {"type": "queue"}
    agents[0].claim(case_id)
    assert feed.recv() == {"type": "queue"}
    assert feed.next_message()["text"] == JOINED_LI_NA

    response = update_decision(client, chat.conversation_id, decision=NEW_DECISION)

    assert response.status_code == 200 and response.json() == {"case_id": case_id}
    assert feed.recv() == {"type": "case_context", "case_id": case_id}  # no content in it
    case = agents[0].case(case_id)
    assert case["context"]["decision"] == {**NEW_DECISION, "reasons": [
        {"code": "repayment_posting", "blocking": True, "detail": "手机 138****5678 已还款"}]}
    assert case["context"]["backend_failed"] is False
    assert case["primary_reason"] == "repayment_posting"
    assert case["context"]["topics"] == []  # the rest as it was


def test_a_failed_recheck_keeps_the_decision_and_says_it_may_be_stale(
        client: TestClient, chat: Chat, agents: list[AgentApi]):
    case_id = hand_off(client, chat.conversation_id, decision=DECISION).json()["case_id"]

    update_decision(client, chat.conversation_id, decision=None, backend_failed=True)

    context = agents[0].case(case_id)["context"]
    assert context["decision"] == DECISION and context["backend_failed"] is True


def test_a_new_decision_without_an_open_case_changes_nothing(
        client: TestClient, chat: Chat, agents: list[AgentApi]):
    case_id = hand_off(client, chat.conversation_id, decision=DECISION).json()["case_id"]
    agents[0].claim(case_id)
    agents[0].post(f"/api/agent/cases/{case_id}/close")

    response = update_decision(client, chat.conversation_id, decision=NEW_DECISION)

    assert response.json() == {"case_id": None}
    assert agents[0].case(case_id)["context"]["decision"] == DECISION  # the record stays
    assert update_decision(client, "c-nobody", decision=NEW_DECISION).status_code == 404
    no_token = client.post(f"/internal/conversations/{chat.conversation_id}/decision",
                           json={"decision": NEW_DECISION})
    assert no_token.status_code == 401


def test_asking_for_a_person_again_brings_the_newer_decision_to_the_same_case(
        client: TestClient, chat: Chat, agents: list[AgentApi]):
    case_id = hand_off(client, chat.conversation_id).json()["case_id"]
    assert agents[0].case(case_id)["context"]["decision"] is None

    again = hand_off(client, chat.conversation_id, decision=NEW_DECISION)

    assert again.json() == {"case_id": case_id}
    assert agents[0].case(case_id)["context"]["decision"]["decision_id"] == "dec-2"


# --- a person joining or leaving is a stored line of the conversation (issue 12) ---------------


def lines_of(messages: list[dict]) -> list[tuple[str, str]]:
    return [(m["sender"], m["text"]) for m in messages if m["sender"] == "system"]


def test_who_joined_and_left_is_replayed_on_a_fresh_device_and_in_the_transcript(
        client: TestClient, open_chat, agents: list[AgentApi]):
    chat = open_chat()
    case_id = hand_off(client, chat.conversation_id).json()["case_id"]
    assert agents[1].claim(case_id).status_code == 200
    assert agents[1].post(f"/api/agent/cases/{case_id}/close").status_code == 200

    # another device of the same borrower, with nothing cached: the whole history
    fresh = open_chat()
    assert lines_of(fresh.history(after=0)) == [("system", JOINED_WANG_LEI), ("system", LEFT)]
    # a supervisor reading the closed case sees the same lines in the transcript
    assert lines_of(agents[0].case(case_id)["messages"]) == [
        ("system", JOINED_WANG_LEI), ("system", LEFT)]


def test_the_lines_are_in_the_cases_language_with_the_agents_name_in_it(
        client: TestClient, open_chat, agents: list[AgentApi]):
    chat = open_chat("b-1002", "en-US")
    case_id = hand_off(client, chat.conversation_id, language="en").json()["case_id"]
    agents[0].claim(case_id)
    agents[0].post(f"/api/agent/cases/{case_id}/return", {})

    assert lines_of(open_chat("b-1002", "en-US").history(after=0)) == [
        ("system", "Li Na from our support team has joined the chat"),
        ("system", "Our colleague has left the chat. The assistant is back to help you")]


def test_a_repeated_or_lost_claim_adds_no_second_line(
        client: TestClient, open_chat, agents: list[AgentApi]):
    chat = open_chat()
    case_id = hand_off(client, chat.conversation_id).json()["case_id"]
    assert agents[0].claim(case_id).status_code == 200
    assert agents[0].claim(case_id).status_code == 200  # the same agent again: a no-op
    assert agents[1].claim(case_id).status_code == 409  # the race's loser

    assert lines_of(open_chat().history(after=0)) == [("system", JOINED_LI_NA)]


def test_a_case_that_nobody_claimed_leaves_no_line_when_it_ends(
        client: TestClient, open_chat, fake_rasa: FakeRasa):
    """The bot taking back a case nobody claimed (the assistant is back) says only that; no
    person joined, so none left."""
    chat = open_chat()
    fake_rasa.failure = "connect"
    chat.rest_of_turn(chat.message("我的额度为什么没了？"))
    fake_rasa.failure = None
    client.portal.call(client.app.state.desk.turns.sweep)

    texts = [text for _, text in lines_of(open_chat().history(after=0))]
    assert LEFT not in texts and JOINED_LI_NA not in texts and len(texts) == 2


# --- the waiting estimate: only from enough recent claimed cases (issue 12) --------------------


def test_with_enough_recent_claims_the_borrower_reads_the_median_wait(
        client: TestClient, chat: Chat, sessions):
    add_claimed_cases(sessions, [2, 4, 6, 8, 30])  # the median: 6 minutes

    hand_off(client, chat.conversation_id)

    # just opened: about 6 minutes left (the few seconds since round it up to 6)
    assert pushed(chat) == [{"type": "handoff", "state": "waiting", "position": 1,
                             "expected_minutes": 6}]
    assert state_on_hello(chat) == {"state": "waiting", "position": 1, "expected_minutes": 6}


def test_what_the_case_waited_already_is_taken_off_and_past_the_median_there_is_no_figure(
        client: TestClient, chat: Chat, sessions):
    add_claimed_cases(sessions, [10, 10, 10, 10, 10])
    case_id = hand_off(client, chat.conversation_id).json()["case_id"]
    with sessions() as session:
        case = session.get(Case, case_id)
        case.created_at = case.created_at - timedelta(minutes=7)
        session.commit()
    assert state_on_hello(chat)["expected_minutes"] == 3

    with sessions() as session:
        case = session.get(Case, case_id)
        case.created_at = case.created_at - timedelta(minutes=5)  # 12 minutes now
        session.commit()
    assert state_on_hello(chat) == {"state": "waiting", "position": 1}


@pytest.mark.parametrize("fixture", [
    {"waits": [2, 4, 6, 8]},                              # too few claimed cases
    {"waits": [2, 4, 6, 8, 10], "claimed_hours_ago": 4},  # not recent
])
def test_without_a_basis_the_borrower_reads_only_the_place(client: TestClient, chat: Chat,
                                                           sessions, fixture):
    add_claimed_cases(sessions, fixture["waits"],
                      claimed_hours_ago=fixture.get("claimed_hours_ago", 0.5))

    hand_off(client, chat.conversation_id)

    assert pushed(chat) == [{"type": "handoff", "state": "waiting", "position": 1}]
    assert state_on_hello(chat) == {"state": "waiting", "position": 1}


def test_the_estimate_follows_the_queue_when_it_moves(client: TestClient, open_chat,
                                                      agents: list[AgentApi], sessions):
    add_claimed_cases(sessions, [5, 5, 5, 5, 5])
    first, second = open_chat("b-1001"), open_chat("b-1002")
    case_1 = hand_off(client, first.conversation_id).json()["case_id"]
    hand_off(client, second.conversation_id)
    pushed(second)

    agents[0].claim(case_1)  # a sixth claim, of a case that waited seconds: median still 5

    assert pushed(second) == [{"type": "handoff", "state": "waiting", "position": 1,
                               "expected_minutes": 5}]
