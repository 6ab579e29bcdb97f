"""The borrower's chat socket: every message stored, acked once, forwarded to Rasa with the
identity from the token, and the bot's replies delivered; bad frames lose nothing."""

from __future__ import annotations

import pytest
from desk_support import (
    ASSISTANT_DOWN_EN,
    ASSISTANT_DOWN_ZH,
    BOT_TEXT,
    BUTTONS,
    CHANNEL_PATH,
    MAX_CHARS,
    TYPING_OFF,
    TYPING_ON,
    AgentApi,
    AgentFeed,
    Chat,
    FakeRasa,
    borrower_token,
    subprotocols,
)
from fastapi.testclient import TestClient

pytestmark = pytest.mark.timeout(30)


def test_the_session_frame_names_the_borrowers_conversation(open_chat):
    chat = open_chat("b-2002", "en-US")

    assert chat.session == {"type": "session", "conversation_id": chat.conversation_id,
                            "borrower_id": "b-2002", "locale": "en-US",
                            "max_chars": MAX_CHARS}  # the page warns before sending more
    assert chat.conversation_id.startswith("c-")


def test_a_message_is_acked_stored_forwarded_and_answered(open_chat, fake_rasa: FakeRasa):
    chat = open_chat("b-2002", "en-US")

    ack = chat.message("  What is my limit?  ", client_id="k-1")
    typing_on, typing_off, reply = chat.rest_of_turn(ack)

    assert (typing_on, typing_off) == (TYPING_ON, TYPING_OFF)

    assert reply["sender"] == "bot" and reply["text"] == BOT_TEXT
    assert reply["buttons"] == BUTTONS and reply["conversation_id"] == chat.conversation_id
    assert reply["id"] > ack["id"]
    [call] = fake_rasa.to(CHANNEL_PATH)
    assert call.json == {"sender": chat.conversation_id, "message": "What is my limit?",
                         "metadata": {"borrower_id": "b-2002", "locale": "en-US"}}
    assert call.params == {} and not call.refused  # signed in headers, nothing in the URL
    stored = chat.history()
    assert [(m["id"], m["sender"], m["text"], m["client_id"]) for m in stored] == [
        (ack["id"], "borrower", "What is my limit?", "k-1"), (reply["id"], "bot", BOT_TEXT, None)]


def test_identity_and_locale_come_from_the_token_never_from_the_frame(chat: Chat,
                                                                      fake_rasa: FakeRasa):
    ack = chat.message("hi", borrower_id="b-evil", locale="en-US",
                       metadata={"borrower_id": "b-evil", "locale": "en-US"})
    chat.rest_of_turn(ack)

    assert fake_rasa.messages[0]["metadata"] == {"borrower_id": "b-1001", "locale": "zh-CN"}


def test_every_text_reply_is_delivered_in_order_and_the_rest_skipped(chat: Chat,
                                                                     fake_rasa: FakeRasa):
    fake_rasa.replies = [
        {"text": "第一条", "buttons": [{"title": "是", "payload": "/affirm", "type": "postback"}]},
        {"image": "https://example.test/x.png"},
        {"custom": {"kind": "card"}},
        {"text": "第二条"},
    ]

    first, second = chat.turn("你好")

    assert (first["text"], first["buttons"]) == ("第一条", [{"title": "是", "payload": "/affirm"}])
    assert (second["text"], second["buttons"]) == ("第二条", [])


def test_hello_replays_the_history_after_an_id(chat: Chat):
    [first_reply] = chat.turn("一")
    chat.turn("二")

    everything = chat.history()
    later = chat.history(after=first_reply["id"])

    assert [m["text"] for m in everything] == ["一", BOT_TEXT, "二", BOT_TEXT]
    assert later == everything[2:]
    assert chat.history(after=everything[-1]["id"]) == []


def test_a_resent_message_is_acked_with_the_same_id_and_handled_once(chat: Chat,
                                                                     fake_rasa: FakeRasa):
    ack = chat.message("我的额度是多少", client_id="resend-1")
    chat.rest_of_turn(ack)

    # the page reconnected and sends its unacked message again
    chat.send({"type": "message", "text": "我的额度是多少", "client_id": "resend-1"})
    assert chat.recv() == ack
    chat.turn("另一条")  # anything the resend had set off would have come before this turn

    assert [m["message"] for m in fake_rasa.messages] == ["我的额度是多少", "另一条"]
    assert [m["text"] for m in chat.history() if m["sender"] == "borrower"] == [
        "我的额度是多少", "另一条"]


BAD_FRAMES = [
    pytest.param(["message"], {"type": "error", "code": "bad_frame"}, id="list"),
    pytest.param("message", {"type": "error", "code": "bad_frame"}, id="string"),
    pytest.param(42, {"type": "error", "code": "bad_frame"}, id="number"),
    pytest.param({"type": "shout", "text": "hi"}, {"type": "error", "code": "unknown_type"},
                 id="unknown-type"),
    pytest.param({"text": "hi", "client_id": "a"}, {"type": "error", "code": "unknown_type"},
                 id="no-type"),
    pytest.param({"type": "message", "text": "hi"},
                 {"type": "error", "code": "bad_client_id"}, id="no-client-id"),
    pytest.param({"type": "message", "text": "hi", "client_id": "a b"},
                 {"type": "error", "code": "bad_client_id"}, id="client-id-with-space"),
    pytest.param({"type": "message", "text": "hi", "client_id": 7},
                 {"type": "error", "code": "bad_client_id"}, id="client-id-number"),
    pytest.param({"type": "message", "text": "hi", "client_id": "x" * 65},
                 {"type": "error", "code": "bad_client_id"}, id="client-id-too-long"),
    pytest.param({"type": "message", "text": "", "client_id": "e1"},
                 {"type": "error", "code": "empty_message", "client_id": "e1"}, id="empty"),
    pytest.param({"type": "message", "text": " \n\t ", "client_id": "e2"},
                 {"type": "error", "code": "empty_message", "client_id": "e2"}, id="blank"),
    pytest.param({"type": "message", "client_id": "e3"},
                 {"type": "error", "code": "empty_message", "client_id": "e3"}, id="no-text"),
    pytest.param({"type": "message", "text": ["hi"], "client_id": "e4"},
                 {"type": "error", "code": "empty_message", "client_id": "e4"}, id="text-list"),
    pytest.param({"type": "message", "text": "长" * (MAX_CHARS + 1), "client_id": "e5"},
                 {"type": "error", "code": "message_too_long", "client_id": "e5",
                  "limit": MAX_CHARS}, id="too-long"),
]


@pytest.mark.parametrize(("frame", "error"), BAD_FRAMES)
def test_a_bad_frame_gets_an_error_and_nothing_is_stored_or_sent(chat: Chat, fake_rasa: FakeRasa,
                                                                  frame, error):
    chat.send(frame)

    assert chat.recv() == error
    assert chat.history() == []
    assert fake_rasa.calls == []
    chat.turn("长" * MAX_CHARS)  # the socket still works, and the limit itself is fine


@pytest.mark.parametrize(("send", "code"), [
    pytest.param(lambda socket: socket.send_text("{not json"), "not_json", id="not-json"),
    pytest.param(lambda socket: socket.send_bytes(b'{"type": "hello"}'), "binary_frame",
                 id="binary-frame"),
])
def test_an_unreadable_frame_gets_an_error_and_the_socket_stays_open(client: TestClient, send,
                                                                     code):
    token = subprotocols(borrower_token())
    with client.websocket_connect("/ws/chat", subprotocols=token) as socket:
        chat = Chat(socket)
        send(socket)
        assert chat.recv() == {"type": "error", "code": code}
        assert chat.history() == []
        chat.turn("还在吗")


def test_reconnecting_finds_the_same_open_conversation(client: TestClient):
    def connect(borrower_id: str, locale: str) -> dict:
        with client.websocket_connect(
                "/ws/chat", subprotocols=subprotocols(borrower_token(borrower_id, locale))
        ) as socket:
            chat = Chat(socket)
            if borrower_id == "b-1001" and locale == "zh-CN":
                chat.turn("第一次")
            return {**chat.session, "history": [m["text"] for m in chat.history()]}

    first = connect("b-1001", "zh-CN")
    again = connect("b-1001", "en-US")  # the app's language changed in between
    other = connect("b-2002", "zh-CN")

    assert again["conversation_id"] == first["conversation_id"]
    assert again["locale"] == "en-US"
    assert again["history"] == ["第一次", BOT_TEXT]
    assert other["conversation_id"] != first["conversation_id"] and other["history"] == []


def test_two_tabs_of_one_borrower_both_see_the_conversation(open_chat):
    phone, laptop = open_chat(), open_chat()
    assert phone.conversation_id == laptop.conversation_id

    ack = phone.message("在吗")
    echo = laptop.recv()

    assert echo["id"] == ack["id"] and echo["text"] == "在吗"
    assert phone.rest_of_turn(ack) == laptop.rest_of_turn(ack)


# --- when Rasa does not answer ----------------------------------------------------------------


@pytest.mark.parametrize("failure", ["connect", "timeout", "500", "garbage"])
def test_when_rasa_is_down_the_message_is_kept_and_a_person_is_called(
        chat: Chat, fake_rasa: FakeRasa, feed: AgentFeed, agents: list[AgentApi], client,
        internal, failure):
    fake_rasa.failure = failure

    ack = chat.message("我的额度为什么没了？")
    *typing, notice = chat.rest_of_turn(ack)

    assert typing == [TYPING_ON, TYPING_OFF]

    assert (notice["sender"], notice["text"]) == ("system", ASSISTANT_DOWN_ZH)
    assert [m["id"] for m in chat.history()] == [ack["id"], notice["id"]]
    [case] = agents[0].queue()
    assert (case["conversation_id"], case["reason"], case["status"]) == (
        chat.conversation_id, "assistant_unavailable", "waiting")
    assert agents[0].case(case["case_id"])["context"]["transcript"] == [
        {"sender": "borrower", "text": "我的额度为什么没了？"}]
    owner = client.get(f"/internal/conversations/{chat.conversation_id}", headers=internal)
    assert owner.json() == {"conversation_id": chat.conversation_id, "owner": "agent",
                            "case_id": case["case_id"]}
    assert feed.recv() == {"type": "queue"}  # no live text before an agent takes the case

    # still down: the next message reaches the case; no second case, no second notice
    assert agents[0].claim(case["case_id"]).status_code == 200
    assert feed.recv() == {"type": "queue"}
    # who joined: a line in the chat and in the agent's transcript (issue 12)
    assert (chat.recv()["sender"], feed.next_message()["sender"]) == ("system", "system")
    assert chat.rest_of_turn(chat.message("有人吗？")) == [TYPING_OFF]
    assert [c["case_id"] for c in agents[0].queue()] == [case["case_id"]]
    assert feed.next_message()["text"] == "有人吗？"
    assert len(fake_rasa.messages) == 2


def test_the_assistant_down_notice_speaks_the_borrowers_language(open_chat, fake_rasa: FakeRasa):
    chat = open_chat("b-2002", "en-US")
    fake_rasa.failure = "connect"

    *_typing, notice = chat.rest_of_turn(chat.message("Where is my money?"))

    assert notice["text"] == ASSISTANT_DOWN_EN
