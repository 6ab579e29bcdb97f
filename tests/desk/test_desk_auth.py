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
    subprotocols,
)
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from desk.auth import BORROWER as BORROWER_AUDIENCE
from desk.auth import (
    InvalidToken,
    check_password,
    hash_password,
    key_id,
    sign,
    verify,
)

pytestmark = pytest.mark.timeout(30)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(claims: dict | list, secret: str = APP_SECRET, *, kid: str | None = None,
           alg: str = "HS256") -> str:
    """A JWT with exactly these claims, signed by hand (no expiry or audience added)."""
    header = {"alg": alg, "typ": "JWT", "kid": kid or key_id(secret)}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


LATER = 2**40


# --- tokens ---------------------------------------------------------------------------------


def test_a_signed_token_verifies_to_its_claims_with_audience_expiry_and_key_id():
    token = sign({"borrower_id": "b-1", "locale": "en-US"}, APP_SECRET, BORROWER_AUDIENCE, 60)

    claims = verify(token, APP_SECRET, BORROWER_AUDIENCE)

    assert claims["borrower_id"] == "b-1" and claims["locale"] == "en-US"
    assert claims["aud"] == "relend-borrower"
    assert claims["exp"] - claims["iat"] == 60
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "HS256" and header["kid"] == key_id(APP_SECRET)


def test_a_hand_signed_token_with_the_right_claims_verifies():
    """The format is plain HS256 JWT: an app can sign it with any JWT library."""
    token = forged({"borrower_id": "b-1", "aud": "relend-borrower", "iat": 1, "exp": LATER})
    assert verify(token, APP_SECRET, BORROWER_AUDIENCE)["borrower_id"] == "b-1"


def test_the_previous_secret_still_verifies_during_a_rotation():
    old = sign({"borrower_id": "b-1"}, "the-previous-secret", BORROWER_AUDIENCE, 60)

    assert verify(old, [APP_SECRET, "the-previous-secret"], BORROWER_AUDIENCE)
    with pytest.raises(InvalidToken):
        verify(old, [APP_SECRET, ""], BORROWER_AUDIENCE)


def swap_claims(token: str) -> str:
    header, _body, mac = token.split(".")
    other = {"borrower_id": "b-other", "aud": "relend-borrower", "iat": 1, "exp": LATER}
    return f"{header}.{b64(json.dumps(other).encode())}.{mac}"


def flip_mac(token: str) -> str:
    header, body, mac = token.split(".")
    return f"{header}.{body}.{('A' if mac[0] != 'A' else 'B')}{mac[1:]}"


@pytest.mark.parametrize("tamper", [
    pytest.param(swap_claims, id="claims-swapped"),
    pytest.param(flip_mac, id="signature-changed"),
    pytest.param(lambda t: t.rsplit(".", 1)[0], id="signature-dropped"),
    pytest.param(lambda t: t.rsplit(".", 1)[0] + ".", id="signature-emptied"),
    pytest.param(lambda t: t + "x", id="signature-extended"),
    pytest.param(lambda t: t.replace(".", ".."), id="extra-dot"),
])
def test_a_tampered_token_is_rejected(tamper):
    token = sign({"borrower_id": "b-1"}, APP_SECRET, BORROWER_AUDIENCE, 60)

    with pytest.raises(InvalidToken):
        verify(tamper(token), APP_SECRET, BORROWER_AUDIENCE)


@pytest.mark.parametrize("token", [
    pytest.param(sign({"borrower_id": "b-1"}, APP_SECRET, BORROWER_AUDIENCE, -60),
                 id="expired"),
    pytest.param(sign({"borrower_id": "b-1"}, "another-secret", BORROWER_AUDIENCE, 60),
                 id="other-secret"),
    pytest.param(sign({"borrower_id": "b-1"}, APP_SECRET, "relend-agent", 60),
                 id="wrong-audience"),
    pytest.param(forged({"borrower_id": "b-1", "aud": "relend-borrower", "iat": 1}),
                 id="no-expiry"),
    pytest.param(forged({"borrower_id": "b-1", "iat": 1, "exp": LATER}), id="no-audience"),
    pytest.param(forged({"borrower_id": "b-1", "aud": "relend-borrower", "exp": LATER}),
                 id="no-issued-at"),
    pytest.param(forged({"borrower_id": "b-1", "aud": "relend-borrower", "iat": 1,
                         "exp": LATER}, kid="someone-elses-key"), id="unknown-key-id"),
    pytest.param(forged({"borrower_id": "b-1", "aud": "relend-borrower", "iat": 1,
                         "exp": LATER}, alg="none"), id="alg-none"),
    pytest.param(forged(["b-1"]), id="not-an-object"),
    pytest.param("", id="empty"),
    pytest.param("no-dot-at-all", id="no-dot"),
    pytest.param("!!!.???.***", id="not-base64"),
    pytest.param("身份.令牌.签名", id="not-ascii"),
])
def test_an_expired_foreign_or_malformed_token_is_rejected(token):
    with pytest.raises(InvalidToken):
        verify(token, APP_SECRET, BORROWER_AUDIENCE)


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
    "expired": bearer(agent_token(1, "李娜 Li Na", ttl=-60)),  # past the 10 s leeway
    "no-agent-id": bearer(forged({"ver": 0, "aud": "relend-agent", "iat": 1, "exp": LATER},
                                 AGENT_SECRET)),
    "refresh-token": bearer(agent_token(1, audience="relend-agent-refresh")),
    "revoked": bearer(agent_token(1, version=-1)),
    "unknown-agent": bearer(agent_token(999)),
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


def assert_closed_with(client: TestClient, url: str, token: str, code: int) -> None:
    """The socket is closed with ``code`` (after the handshake, so browsers see the code)."""
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(
            url, subprotocols=subprotocols(token)) as socket:
        socket.receive_json()
    assert closed.value.code == code


@pytest.mark.parametrize("token", [
    pytest.param("", id="none"),
    pytest.param("garbage", id="garbage"),
    pytest.param(borrower_token(ttl=-60), id="expired"),  # past the 10 s leeway
    pytest.param(borrower_token(secret=AGENT_SECRET), id="wrong-secret"),
    pytest.param(agent_token(1, "李娜 Li Na"), id="agent-token"),
    pytest.param(forged({"locale": "zh-CN", "aud": "relend-borrower", "iat": 1, "exp": LATER}),
                 id="no-borrower-id"),
    pytest.param(forged({"borrower_id": "../admin", "aud": "relend-borrower", "iat": 1,
                         "exp": LATER}), id="bad-borrower-id"),
])
def test_the_chat_socket_closes_4401_without_a_valid_borrower_token(client: TestClient, token):
    assert_closed_with(client, "/ws/chat", token, 4401)


def test_a_token_in_the_url_is_not_accepted(client: TestClient):
    """Tokens travel in the WebSocket subprotocol, never in a URL that proxies log."""
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(
            f"/ws/chat?token={borrower_token()}") as socket:
        socket.receive_json()
    assert closed.value.code == 4401


@pytest.mark.parametrize("token", [
    pytest.param("", id="none"),
    pytest.param(borrower_token(), id="borrower-token"),
    pytest.param(agent_token(1, "李娜 Li Na", ttl=-60), id="expired"),
    pytest.param(agent_token(1, audience="relend-agent-refresh"), id="refresh-token"),
    pytest.param(agent_token(1, version=3), id="revoked"),
    pytest.param(agent_token(999), id="unknown-agent"),
])
def test_the_agent_socket_closes_4401_without_a_valid_agent_token(client: TestClient, token):
    assert_closed_with(client, "/ws/agent", token, 4401)


# --- the sandbox's demo login -------------------------------------------------------------------


def test_demo_login_signs_a_borrower_token_the_chat_accepts(client: TestClient):
    response = client.post("/api/demo/login",
                           json={"borrower_id": "demo-eligible", "locale": "en-US"})
    assert response.status_code == 200, response.text

    with client.websocket_connect("/ws/chat",
                                  subprotocols=subprotocols(response.json()["token"])) as socket:
        session = socket.receive_json()

    assert session["type"] == "session"
    assert (session["borrower_id"], session["locale"]) == ("demo-eligible", "en-US")


def test_demo_login_refuses_an_id_that_is_not_a_demo_borrower(client: TestClient):
    """Otherwise anyone could sign in as any real borrower whose id they know."""
    response = client.post("/api/demo/login", json={"borrower_id": BORROWER})
    assert response.status_code == 403 and error_code(response) == "not_a_demo_borrower"
    assert "token" not in response.json()


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
