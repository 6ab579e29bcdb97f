"""Limits on what one caller can send: ids that must match exactly, messages that are empty once
cleaned, bursts, open sockets per borrower, body sizes however they are sent, headers."""

from __future__ import annotations

import pytest
from desk_support import Chat, FakeRasa, borrower_token, error_code, subprotocols
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("body", [
    {"borrower_id": "demo-eligible\n"}, {"borrower_id": "demo-eligible", "locale": "zh-CN\n"}])
def test_an_id_or_locale_with_a_trailing_newline_is_refused_at_login(client: TestClient, body):
    response = client.post("/api/demo/login", json=body)
    assert response.status_code == 422 and "token" not in response.json()


@pytest.mark.parametrize(("borrower_id", "locale"), [("b-1001\n", "zh-CN"), ("b-1001", "en\n")])
def test_a_token_with_a_trailing_newline_is_refused_by_the_socket(client: TestClient,
                                                                  borrower_id, locale):
    token = borrower_token(borrower_id, locale)
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(
            "/ws/chat", subprotocols=subprotocols(token)) as socket:
        socket.receive_json()
    assert closed.value.code == 4401


@pytest.mark.parametrize("text", ["\u0000\u0001", " \x00 ", "\x1b", "\x00\t\x08", "\u202e\u2066"])
def test_a_message_of_control_characters_only_is_empty(chat: Chat, fake_rasa: FakeRasa, text):
    chat.send({"type": "message", "text": text, "client_id": "k-1"})

    assert chat.recv() == {"type": "error", "code": "empty_message", "client_id": "k-1"}
    assert chat.history() == [] and fake_rasa.calls == []


def test_controls_and_direction_overrides_are_removed_before_storing(chat: Chat):
    chat.send({"type": "message", "text": "我的\u202e额度\x00没了\x9b", "client_id": "k-1"})
    ack = chat.recv()
    echo = chat.recv()
    assert (ack["type"], echo["text"]) == ("ack", "我的额度没了")
    chat.rest_of_turn(ack)
    assert chat.history()[0]["text"] == "我的额度没了"


def test_a_burst_past_the_borrowers_rate_is_refused_and_not_stored(chat: Chat,
                                                                    fake_rasa: FakeRasa):
    for n in range(10):
        chat.rest_of_turn(chat.message(f"第{n}条"))
    chat.send({"type": "message", "text": "第11条", "client_id": "k-11"})

    refused = chat.recv()
    assert (refused["code"], refused["client_id"]) == ("rate_limited", "k-11")
    assert 0 < refused["retry_after"] <= 3.1  # one message every 3 s at 20 a minute
    assert "第11条" not in [m["text"] for m in chat.history()]
    assert len(fake_rasa.messages) == 10


def test_a_borrower_can_hold_five_chats_open_not_more(client: TestClient, open_chat):
    chats = [open_chat() for _ in range(5)]
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(
            "/ws/chat", subprotocols=subprotocols(borrower_token())) as socket:
        socket.receive_json()
    assert closed.value.code == 4429
    assert chats[0].turn("还在吗")  # the open ones still work


def chunks(total: int, size: int = 4096):
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


@pytest.mark.parametrize("path", ["/api/agent/login", "/api/demo/login", "/internal/handoffs"])
def test_an_oversized_body_is_413_with_or_without_a_length(client: TestClient, path):
    declared = client.post(path, content=b"{" + b" " * 20000 + b"}",
                           headers={"content-type": "application/json"})
    streamed = client.post(path, content=chunks(64 * 1024),
                           headers={"content-type": "application/json"})

    for response in (declared, streamed):
        assert response.status_code == 413 and error_code(response) == "body_too_large"


def test_deeply_nested_json_is_a_client_error(client: TestClient):
    response = client.post("/api/agent/login", content=b"[" * 5000 + b"]" * 5000,
                           headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("path", ["/chat", "/console", "/health", "/api/agent/queue"])
def test_every_answer_carries_the_security_headers(client: TestClient, path):
    headers = client.get(path).headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
