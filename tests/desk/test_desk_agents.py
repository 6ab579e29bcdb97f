"""The agent console: claiming cases, replying, notes, returning to the bot, closing,
running the check, canned replies."""

from __future__ import annotations

import pytest
from desk_support import (
    BOT_TEXT,
    BUTTONS,
    RESUME_TEXT,
    AgentApi,
    AgentFeed,
    Chat,
    FakeRasa,
    error_code,
    hand_off,
    ownership,
    subprotocols,
)
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from desk.models import Case, Message

pytestmark = pytest.mark.timeout(30)

RESUME = "action_resume_after_handoff"
RASA_USER = {"username": "relend-desk", "role": "admin"}  # the desk's JWT for Rasa's API


@pytest.fixture
def case_id(client: TestClient, chat: Chat) -> int:
    """A waiting case: the bot handed b-1001's conversation off."""
    response = hand_off(client, chat.conversation_id, reason="borrower_asked")
    assert response.status_code == 200, response.text
    return response.json()["case_id"]


# the lines a person joining or leaving leaves in the conversation (desk/handoffs.py, issue 12)
JOINED = ("system", "人工客服 李娜 已加入对话")
LEFT = ("system", "人工客服已结束服务，智能助手继续为您服务")


def said(frame: dict) -> tuple[str, str]:
    return frame["sender"], frame["text"]


@pytest.fixture
def claimed(agents: list[AgentApi], case_id: int, chat: Chat) -> int:
    """The waiting case, claimed by the first agent (its borrower has read who joined)."""
    assert agents[0].claim(case_id).status_code == 200
    assert said(chat.recv()) == JOINED
    return case_id


def resume_events(note: str | None, language: str | None = "zh") -> list[dict]:
    """What the desk appends before the bot speaks again; no language slot when the assistant
    already knows the borrower's (``None``)."""
    return [{"event": "resume"},
            {"event": "slot", "name": "handoff_active", "value": False},
            {"event": "slot", "name": "borrower_id", "value": "b-1001"},
            *([{"event": "slot", "name": "language", "value": language}] if language else []),
            {"event": "slot", "name": "agent_note", "value": note}]


# --- claiming ------------------------------------------------------------------------------------


def test_one_agent_claims_a_case_and_the_other_is_told_it_is_taken(agents: list[AgentApi],
                                                                   case_id: int):
    mine = agents[0].claim(case_id)
    theirs = agents[1].claim(case_id)
    mine_again = agents[0].claim(case_id)  # a double click is fine

    assert mine.status_code == mine_again.status_code == 200
    assert (mine.json()["status"], mine.json()["claimed_by"]) == ("claimed", agents[0].name)
    assert theirs.status_code == 409 and error_code(theirs) == "already_claimed"
    assert [(c["status"], c["claimed_by"]) for c in agents[1].queue()] == [
        ("claimed", agents[0].name)]


def test_claiming_a_missing_case_is_404(agents: list[AgentApi]):
    response = agents[0].claim(999)
    assert response.status_code == 404 and error_code(response) == "case_not_found"


def test_an_ended_case_cannot_be_claimed_again(agents: list[AgentApi], claimed: int):
    assert agents[0].post(f"/api/agent/cases/{claimed}/close").status_code == 200

    for agent in agents:  # neither the agent who had it nor anyone else
        response = agent.claim(claimed)
        assert response.status_code == 409, response.text


NOT_MINE = [
    pytest.param("messages", {"text": "您好"}, id="reply"),
    pytest.param("return", {"note": "已处理"}, id="return"),
    pytest.param("close", None, id="close"),
]


@pytest.mark.parametrize(("action", "body"), NOT_MINE)
def test_acting_on_a_case_you_do_not_own_is_refused(
        agents: list[AgentApi], case_id: int, chat: Chat, fake_rasa: FakeRasa, client, action,
        body):
    waiting = agents[1].post(f"/api/agent/cases/{case_id}/{action}", body)
    agents[0].claim(case_id)
    others = agents[1].post(f"/api/agent/cases/{case_id}/{action}", body)
    missing = agents[1].post(f"/api/agent/cases/999/{action}", body)

    for response in (waiting, others):
        assert response.status_code == 409, response.text
        assert error_code(response) == "not_your_case"
    assert missing.status_code == 404
    assert agents[0].case(case_id)["status"] == "claimed"
    assert ownership(client, chat.conversation_id)["owner"] == "agent"
    assert fake_rasa.calls == []
    assert said(chat.recv()) == JOINED  # agents[0] joined; nothing else reached the borrower
    chat.assert_quiet()


# --- replies and notes ---------------------------------------------------------------------------


def test_an_agent_reply_reaches_the_borrower_as_a_person(
        chat: Chat, agents: list[AgentApi], claimed: int, fake_rasa: FakeRasa,
        sessions: sessionmaker[Session]):
    response = agents[0].reply(claimed, "  您好，我是人工客服，我来帮您。  ")

    assert response.status_code == 200, response.text
    sent = response.json()
    assert (sent["sender"], sent["agent_name"], sent["text"]) == (
        "agent", "李娜 Li Na", "您好，我是人工客服，我来帮您。")
    assert chat.recv() == sent  # in the borrower's chat, marked as a person
    assert chat.history()[-1] == sent
    with sessions() as session:
        stored = session.get(Message, sent["id"])
        assert (stored.sender, stored.agent_name, stored.conversation_id) == (
            "agent", "李娜 Li Na", chat.conversation_id)
    # the bot's tracker gets the line too, for when it takes over again
    [call] = fake_rasa.calls
    assert (call.method, call.path, call.params, call.user) == (  # a JWT, no token in the URL
        "POST", f"/conversations/{chat.conversation_id}/tracker/events", {}, RASA_USER)
    assert call.json == [{"event": "bot", "text": "您好，我是人工客服，我来帮您。",
                          "metadata": {"agent": "李娜 Li Na"}}]


def test_an_agent_reply_is_delivered_even_if_rasa_cannot_log_it(
        chat: Chat, agents: list[AgentApi], claimed: int, fake_rasa: FakeRasa):
    fake_rasa.failure = "connect"

    response = agents[0].reply(claimed, "稍等")

    assert response.status_code == 200
    assert chat.recv()["text"] == "稍等"


@pytest.mark.parametrize("body", [{"text": ""}, {"text": "   "}, {"text": "长" * 2001}, {},
                                  {"text": 5}, {"text": ["a"]}, None])
def test_a_bad_agent_reply_is_rejected_and_nothing_is_sent(
        chat: Chat, agents: list[AgentApi], claimed: int, fake_rasa: FakeRasa, body):
    response = agents[0].post(f"/api/agent/cases/{claimed}/messages", body)

    assert response.status_code == 422
    assert [said(m) for m in chat.history()] == [JOINED] and fake_rasa.calls == []


def test_notes_are_for_agents_only(chat: Chat, agents: list[AgentApi], claimed: int,
                                   fake_rasa: FakeRasa, feed: AgentFeed):
    response = agents[0].post(f"/api/agent/cases/{claimed}/notes",
                              {"text": " 借款人情绪激动，注意语气 "})

    assert response.status_code == 200
    assert response.json() == {"id": response.json()["id"], "text": "借款人情绪激动，注意语气"}
    case = agents[0].case(claimed)
    assert [(n["text"], n["agent"]) for n in case["notes"]] == [
        ("借款人情绪激动，注意语气", agents[0].name)]
    assert [said(m) for m in case["messages"]] == [JOINED]
    chat.assert_quiet()  # never pushed to the borrower
    assert [said(m) for m in chat.history()] == [JOINED] and fake_rasa.calls == []


def test_notes_on_a_missing_case_or_without_text_are_refused(agents: list[AgentApi],
                                                             case_id: int):
    assert agents[0].post("/api/agent/cases/999/notes", {"text": "x"}).status_code == 404
    assert agents[0].post(f"/api/agent/cases/{case_id}/notes", {"text": " "}).status_code == 422


# --- back to the bot ----------------------------------------------------------------------------


def test_returning_to_the_bot_with_a_note_resumes_it_and_it_answers_the_borrower(
        client: TestClient, chat: Chat, agents: list[AgentApi], claimed: int,
        fake_rasa: FakeRasa, sessions: sessionmaker[Session]):
    fake_rasa.resume_replies = [{"text": RESUME_TEXT, "buttons": BUTTONS}]

    response = agents[0].post(f"/api/agent/cases/{claimed}/return", {"note": " 身份证已更新 "})

    assert response.status_code == 200, response.text
    assert response.json() == {"case_id": claimed, "status": "returned"}
    read, events, execute = fake_rasa.calls
    assert (read.method, read.path) == ("GET", f"/conversations/{chat.conversation_id}/tracker")
    assert (events.path, events.params, events.user) == (
        f"/conversations/{chat.conversation_id}/tracker/events", {}, RASA_USER)
    assert events.json == resume_events("身份证已更新")
    assert (execute.path, execute.params, execute.user, execute.json) == (
        f"/conversations/{chat.conversation_id}/execute", {}, RASA_USER, {"name": RESUME})
    assert said(chat.recv()) == LEFT  # the person left, then the bot speaks
    resumed = chat.recv()
    assert (resumed["sender"], resumed["text"], resumed["buttons"]) == ("bot", RESUME_TEXT,
                                                                       BUTTONS)
    assert ownership(client, chat.conversation_id) == {
        "conversation_id": chat.conversation_id, "owner": "bot", "case_id": None}
    assert agents[0].queue() == []
    with sessions() as session:
        case = session.get(Case, claimed)
        assert (case.status, case.return_note) == ("returned", "身份证已更新")
        assert case.ended_at is not None
    # and the bot answers the borrower again
    assert [m["text"] for m in chat.turn("好的，再帮我查一下")] == [BOT_TEXT]


def test_returning_without_a_note_sends_none(chat: Chat, agents: list[AgentApi], claimed: int,
                                             fake_rasa: FakeRasa):
    response = agents[0].post(f"/api/agent/cases/{claimed}/return", {})

    assert response.status_code == 200
    assert fake_rasa.calls[1].json == resume_events(None)
    assert said(chat.recv()) == LEFT
    assert chat.recv()["text"] == RESUME_TEXT


def test_returning_keeps_the_language_the_borrower_writes_in(chat: Chat, agents: list[AgentApi],
                                                             claimed: int, fake_rasa: FakeRasa):
    # a Chinese phone, an English writer: the assistant's language slot says "en"
    fake_rasa.trackers.setdefault(chat.conversation_id, []).append(
        {"event": "slot", "name": "language", "value": "en"})

    assert agents[0].post(f"/api/agent/cases/{claimed}/return", {}).status_code == 200

    assert fake_rasa.calls[1].json == resume_events(None, language=None)


def test_a_return_the_assistant_does_not_take_is_reported(
        client: TestClient, chat: Chat, agents: list[AgentApi], claimed: int,
        fake_rasa: FakeRasa):
    fake_rasa.failure = "500"

    response = agents[0].post(f"/api/agent/cases/{claimed}/return", {"note": "x"})

    assert response.status_code == 502 and error_code(response) == "assistant_unavailable"
    # nothing changed hands: the agent still owns the case and can try again
    assert ownership(client, chat.conversation_id)["owner"] == "agent"
    fake_rasa.failure = None
    assert agents[0].post(f"/api/agent/cases/{claimed}/return", {"note": "x"}).status_code == 200


def test_closing_ends_the_case_and_the_bot_answers_next_time(
        client: TestClient, chat: Chat, agents: list[AgentApi], claimed: int,
        fake_rasa: FakeRasa):
    response = agents[0].post(f"/api/agent/cases/{claimed}/close")

    assert response.json() == {"case_id": claimed, "status": "closed"}
    [call] = fake_rasa.calls
    assert call.json == [{"event": "resume"},
                         {"event": "slot", "name": "handoff_active", "value": False},
                         {"event": "action", "name": "action_listen"}]
    assert agents[0].case(claimed)["status"] == "closed"
    assert ownership(client, chat.conversation_id)["owner"] == "bot"
    # the borrower reads that the person left (the bot says nothing until asked)
    assert said(chat.recv()) == LEFT
    chat.assert_quiet()
    assert [m["text"] for m in chat.turn("谢谢")] == [BOT_TEXT]


def test_closing_works_while_rasa_is_down(client: TestClient, chat: Chat,
                                          agents: list[AgentApi], claimed: int,
                                          fake_rasa: FakeRasa):
    fake_rasa.failure = "connect"

    response = agents[0].post(f"/api/agent/cases/{claimed}/close")

    assert response.status_code == 200
    assert ownership(client, chat.conversation_id)["owner"] == "bot"


# --- run the check --------------------------------------------------------------------------------


# the note the bot reads out (desk.run_check_note), in the borrower's language (their latest
# clear message, else the locale: test_desk_language_followups.py has the mixed cases)
@pytest.mark.parametrize(("locale", "written", "note"), [
    ("zh-CN", "你好", "我已请助手再为您查一下账户情况"),
    ("en-US", "hello there", "I've asked the assistant to check your account again")])
def test_an_agent_has_the_bot_run_the_check_on_a_conversation(
        client: TestClient, open_chat, agents: list[AgentApi], fake_rasa: FakeRasa,
        locale: str, written: str, note: str):
    chat = open_chat("b-1001", locale)
    chat.turn(written)
    fake_rasa.calls.clear()
    fake_rasa.resume_replies = [{"text": "我重新查了一下：您现在可以借款。", "buttons": BUTTONS}]

    # outside a case, only a supervisor (agent1) may have the bot check a borrower's account
    response = agents[0].post(f"/api/agent/conversations/{chat.conversation_id}/run-check")

    assert response.json() == {"conversation_id": chat.conversation_id, "owner": "bot"}
    _, events, execute = fake_rasa.calls
    assert events.json == resume_events(note, locale[:2])  # no language yet: the app's
    assert execute.json == {"name": RESUME}
    checked = chat.recv()
    assert (checked["sender"], checked["text"]) == ("bot", "我重新查了一下：您现在可以借款。")
    assert ownership(client, chat.conversation_id)["owner"] == "bot"


def test_running_the_check_ends_ones_own_case(
        client: TestClient, chat: Chat, agents: list[AgentApi], case_id: int,
        sessions: sessionmaker[Session]):
    assert agents[1].claim(case_id).status_code == 200
    response = agents[1].post(f"/api/agent/conversations/{chat.conversation_id}/run-check")

    assert response.status_code == 200
    assert said(chat.recv()) == ("system", "人工客服 王磊 已加入对话")
    assert said(chat.recv()) == LEFT
    assert chat.recv()["text"] == RESUME_TEXT
    with sessions() as session:
        case = session.get(Case, case_id)
        assert (case.status, case.return_note) == ("returned", "eligibility check")
    assert ownership(client, chat.conversation_id) == {
        "conversation_id": chat.conversation_id, "owner": "bot", "case_id": None}


def test_running_the_check_on_another_agents_case_is_refused(
        client: TestClient, chat: Chat, agents: list[AgentApi], claimed: int,
        fake_rasa: FakeRasa):
    response = agents[1].post(f"/api/agent/conversations/{chat.conversation_id}/run-check")

    assert response.status_code == 409 and error_code(response) == "not_your_case"
    assert agents[0].case(claimed)["status"] == "claimed"
    assert ownership(client, chat.conversation_id)["owner"] == "agent"
    assert fake_rasa.calls == []


def test_running_the_check_needs_a_known_conversation_and_a_working_bot(
        chat: Chat, agents: list[AgentApi], fake_rasa: FakeRasa):
    missing = agents[0].post("/api/agent/conversations/c-nobody/run-check")
    fake_rasa.failure = "timeout"
    down = agents[0].post(f"/api/agent/conversations/{chat.conversation_id}/run-check")

    assert missing.status_code == 404 and error_code(missing) == "conversation_not_found"
    assert down.status_code == 502 and error_code(down) == "assistant_unavailable"


# --- finding conversations, canned replies ----------------------------------------------


def test_agents_find_conversations_by_borrower(open_chat, agents: list[AgentApi]):
    first, second = open_chat("b-1001"), open_chat("b-2002", "en-US")

    everyone = agents[0].get("/api/agent/conversations").json()["conversations"]
    one = agents[0].get("/api/agent/conversations",
                        params={"borrower_id": "b-2002"}).json()["conversations"]

    assert {c["conversation_id"] for c in everyone} == {first.conversation_id,
                                                         second.conversation_id}
    assert one == [{"conversation_id": second.conversation_id, "borrower_id": "b-2002",
                    "owner": "bot", "locale": "en-US", "updated_at": one[0]["updated_at"]}]


def test_canned_replies_can_be_listed_added_edited_and_deleted(agents: list[AgentApi]):
    agent = agents[0]

    def listed() -> list[dict]:
        return agent.get("/api/agent/canned").json()["replies"]

    defaults = listed()
    assert len(defaults) == 4 and defaults[0]["title"] == "问候 Greeting"

    added = agent.post("/api/agent/canned", {"title": " 退款 Refund ", "text_zh": "退款三天到账。",
                                             "text_en": "Refunds take three days."})
    reply_id = added.json()["id"]
    edited = agent.request("PUT", f"/api/agent/canned/{reply_id}", {
        "title": "退款 Refund", "text_zh": "退款一般三个工作日到账。",
        "text_en": "Refunds take three working days."})
    after_edit = listed()
    deleted = agent.request("DELETE", f"/api/agent/canned/{reply_id}")

    assert added.status_code == edited.status_code == deleted.status_code == 200
    assert after_edit[-1] == {"id": reply_id, "title": "退款 Refund",
                              "text_zh": "退款一般三个工作日到账。",
                              "text_en": "Refunds take three working days."}
    assert deleted.json() == {"deleted": reply_id}
    assert listed() == defaults


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("PUT", "/api/agent/canned/999", {"title": "t", "text_zh": "z", "text_en": "e"}, 404),
    ("DELETE", "/api/agent/canned/999", None, 404),
    ("POST", "/api/agent/canned", {"title": " ", "text_zh": "z", "text_en": "e"}, 422),
    ("POST", "/api/agent/canned", {"title": "t" * 81, "text_zh": "z", "text_en": "e"}, 422),
    ("POST", "/api/agent/canned", {"title": "t", "text_zh": "z"}, 422),
    ("PUT", "/api/agent/canned/1", {"title": "t", "text_zh": "", "text_en": "e"}, 422),
])
def test_bad_canned_reply_requests_change_nothing(agents: list[AgentApi], method, path, body,
                                                  status):
    before = agents[0].get("/api/agent/canned").json()

    assert agents[0].request(method, path, body).status_code == status
    assert agents[0].get("/api/agent/canned").json() == before


def test_a_missing_case_is_404(agents: list[AgentApi]):
    response = agents[0].get("/api/agent/cases/999")
    assert response.status_code == 404 and error_code(response) == "case_not_found"


def test_the_agent_who_lost_a_claim_race_hears_that_the_case_is_taken(
        client: TestClient, agents: list[AgentApi], case_id: int):
    """Issue 12: the loser's console must stop offering "claim": its socket hears the queue
    change, and the queue (what the console reads next) names who has the case."""
    with client.websocket_connect("/ws/agent",
                                  subprotocols=subprotocols(agents[1].token)) as socket:
        loser = AgentFeed(socket)
        assert agents[0].claim(case_id).status_code == 200

        assert loser.recv() == {"type": "queue"}
        [case] = agents[1].queue()
        assert (case["case_id"], case["status"], case["claimed_by"]) == (
            case_id, "claimed", "李娜 Li Na")
        late = agents[1].claim(case_id)  # clicked before the update arrived
        assert late.status_code == 409 and error_code(late) == "already_claimed"
