"""Who is calling: signed tokens, scrypt passwords, and every door that checks them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from desk_support import (
    AGENT_SECRET,
    APP_SECRET,
    BORROWER,
    PASSWORD,
    agent_token,
    bearer,
    borrower_token,
    error_code,
    make_settings,
)
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from desk.auth import InvalidToken, check_password, hash_password, sign, verify

pytestmark = pytest.mark.timeout(30)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(claims: dict, secret: str = APP_SECRET) -> str:
    """A correctly signed token with exactly these claims (no expiry added)."""
    body = b64(json.dumps(claims).encode())
    return f"{body}.{b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())}"


# --- tokens ---------------------------------------------------------------------------------


def test_a_signed_token_verifies_to_its_claims_with_an_expiry():
    token = sign({"borrower_id": "b-1", "locale": "en-US"}, "s3cret", 60)

    claims = verify(token, "s3cret")

    assert claims["borrower_id"] == "b-1" and claims["locale"] == "en-US"
    assert isinstance(claims["exp"], int)


def swap_claims(token: str) -> str:
    _body, mac = token.split(".")
    return b64(json.dumps({"borrower_id": "b-other", "exp": 2**40}).encode()) + "." + mac


def flip_mac(token: str) -> str:
    body, mac = token.split(".")
    return f"{body}.{('A' if mac[0] != 'A' else 'B')}{mac[1:]}"


@pytest.mark.parametrize("tamper", [
    pytest.param(swap_claims, id="claims-swapped"),
    pytest.param(flip_mac, id="signature-changed"),
    pytest.param(lambda t: t.split(".")[0], id="signature-dropped"),
    pytest.param(lambda t: t + "x", id="signature-extended"),
    pytest.param(lambda t: t.replace(".", ".."), id="extra-dot"),
])
def test_a_tampered_token_is_rejected(tamper):
    token = sign({"borrower_id": "b-1"}, APP_SECRET, 60)

    with pytest.raises(InvalidToken):
        verify(tamper(token), APP_SECRET)


@pytest.mark.parametrize("token", [
    pytest.param(sign({"borrower_id": "b-1"}, APP_SECRET, -1), id="expired"),
    pytest.param(sign({"borrower_id": "b-1"}, "another-secret", 60), id="other-secret"),
    pytest.param(forged({"borrower_id": "b-1"}), id="no-expiry"),
    pytest.param(forged(["b-1"]), id="not-an-object"),
    pytest.param("", id="empty"),
    pytest.param("no-dot-at-all", id="no-dot"),
    pytest.param("!!!.???", id="not-base64"),
    pytest.param("身份.令牌", id="not-ascii"),
])
def test_an_expired_foreign_or_malformed_token_is_rejected(token):
    with pytest.raises(InvalidToken):
        verify(token, APP_SECRET)


# --- passwords --------------------------------------------------------------------------------


def test_passwords_are_stored_as_salted_scrypt_hashes():
    first, second = hash_password("correct horse"), hash_password("correct horse")

    assert first.startswith("scrypt$") and first.count("$") == 2
    assert "correct horse" not in first
    assert first != second  # a fresh salt each time
    assert check_password("correct horse", first) and check_password("correct horse", second)
    assert not check_password("correct horsE", first)
    assert not check_password("correct horse", "not-a-hash")


def test_an_agent_logs_in_with_the_right_password_only(client: TestClient):
    good = client.post("/api/agent/login", json={"username": "agent1", "password": PASSWORD})
    wrong = client.post("/api/agent/login", json={"username": "agent1", "password": "nope"})
    nobody = client.post("/api/agent/login", json={"username": "agent9", "password": PASSWORD})

    assert good.status_code == 200, good.text
    assert good.json()["agent"]["name"] == "李娜 Li Na"
    assert client.get("/api/agent/queue", headers=bearer(good.json()["token"])).status_code == 200
    for response in (wrong, nobody):
        assert response.status_code == 401
        assert error_code(response) == "bad_credentials"


def test_a_malformed_login_is_a_validation_error(client: TestClient):
    response = client.post("/api/agent/login", json={"username": "agent1"})
    assert response.status_code == 422


# --- agent and internal endpoints ----------------------------------------------------------------

AGENT_ENDPOINTS = [
    ("GET", "/api/agent/queue"),
    ("GET", "/api/agent/cases/1"),
    ("POST", "/api/agent/cases/1/claim"),
    ("POST", "/api/agent/cases/1/messages"),
    ("POST", "/api/agent/cases/1/notes"),
    ("POST", "/api/agent/cases/1/return"),
    ("POST", "/api/agent/cases/1/close"),
    ("GET", "/api/agent/conversations"),
    ("POST", "/api/agent/conversations/c-1/run-check"),
    ("GET", "/api/agent/canned"),
    ("POST", "/api/agent/canned"),
    ("PUT", "/api/agent/canned/1"),
    ("DELETE", "/api/agent/canned/1"),
]

BAD_AGENT_AUTH = {
    "none": {},
    "garbage": bearer("garbage"),
    "basic-scheme": {"Authorization": f"Basic {agent_token(1, 'x')}"},
    "borrower-token": bearer(borrower_token()),
    "expired": bearer(agent_token(1, "李娜 Li Na", ttl=-1)),
    "no-agent-id": bearer(forged({"name": "x", "exp": 2**40}, AGENT_SECRET)),
}


@pytest.mark.parametrize("auth", BAD_AGENT_AUTH.values(), ids=BAD_AGENT_AUTH.keys())
def test_agent_endpoints_need_an_agent_token(client: TestClient, auth):
    for method, path in AGENT_ENDPOINTS:
        response = client.request(method, path, headers=auth,
                                  json={"text": "hi", "title": "t", "text_zh": "z", "text_en": "e"})
        assert response.status_code == 401, (method, path, response.text)
        assert error_code(response) == "unauthorized"


@pytest.mark.parametrize("auth", [{}, bearer("wrong"), {"Authorization": "test-desk-token"},
                                  bearer(agent_token(1, "x"))],
                         ids=["none", "wrong", "no-scheme", "agent-token"])
def test_internal_endpoints_need_the_service_token(client: TestClient, auth):
    handoff = client.post("/internal/handoffs", headers=auth, json={"conversation_id": "c-1"})
    owner = client.get("/internal/conversations/c-1", headers=auth)

    for response in (handoff, owner):
        assert response.status_code == 401, response.text
        assert error_code(response) == "unauthorized"


def test_the_service_token_gets_through(client: TestClient, internal):
    owner = client.get("/internal/conversations/c-unknown", headers=internal)
    assert owner.status_code == 404 and error_code(owner) == "conversation_not_found"


# --- sockets ----------------------------------------------------------------------------------


def assert_closed_with(client: TestClient, url: str, code: int) -> None:
    """The socket is closed with ``code`` (after the handshake, so browsers see the code)."""
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(url) as socket:
        socket.receive_json()
    assert closed.value.code == code


@pytest.mark.parametrize("token", [
    pytest.param("", id="none"),
    pytest.param("garbage", id="garbage"),
    pytest.param(borrower_token(ttl=-1), id="expired"),
    pytest.param(borrower_token(secret=AGENT_SECRET), id="wrong-secret"),
    pytest.param(agent_token(1, "李娜 Li Na"), id="agent-token"),
    pytest.param(forged({"locale": "zh-CN", "exp": 2**40}), id="no-borrower-id"),
    pytest.param(forged({"borrower_id": "../admin", "exp": 2**40}), id="bad-borrower-id"),
])
def test_the_chat_socket_closes_4401_without_a_valid_borrower_token(client: TestClient, token):
    assert_closed_with(client, f"/ws/chat?token={token}", 4401)


@pytest.mark.parametrize("token", [
    pytest.param("", id="none"),
    pytest.param(borrower_token(), id="borrower-token"),
    pytest.param(agent_token(1, "李娜 Li Na", ttl=-1), id="expired"),
])
def test_the_agent_socket_closes_4401_without_a_valid_agent_token(client: TestClient, token):
    assert_closed_with(client, f"/ws/agent?token={token}", 4401)


# --- the sandbox's demo login -------------------------------------------------------------------


def test_demo_login_signs_a_borrower_token_the_chat_accepts(client: TestClient):
    response = client.post("/api/demo/login", json={"borrower_id": BORROWER, "locale": "en-US"})
    assert response.status_code == 200, response.text

    with client.websocket_connect(f"/ws/chat?token={response.json()['token']}") as socket:
        session = socket.receive_json()

    assert session["type"] == "session"
    assert (session["borrower_id"], session["locale"]) == (BORROWER, "en-US")


@pytest.mark.parametrize("body", [
    {"borrower_id": "../admin"}, {"borrower_id": ""}, {"borrower_id": 1001},
    {"borrower_id": BORROWER, "locale": "fr-FR"}, {},
])
def test_demo_login_rejects_bad_input(client: TestClient, body):
    assert client.post("/api/demo/login", json=body).status_code == 422


def test_demo_borrowers_are_listed_for_the_picker(client: TestClient):
    borrowers = client.get("/api/demo/borrowers").json()["borrowers"]
    assert borrowers and {"borrower_id", "name", "situation", "locale"} <= set(borrowers[0])


def test_demo_login_can_be_switched_off(make_app, migrated_url):
    with TestClient(make_app(make_settings(migrated_url, demo_login=False))) as client:
        login = client.post("/api/demo/login", json={"borrower_id": BORROWER})
        listing = client.get("/api/demo/borrowers")

    assert login.status_code == listing.status_code == 404
