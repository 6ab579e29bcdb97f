"""Identity no longer rests on port reachability: against the real Rasa, action server and
backend (started on free loopback ports by ``live_stack``).

- Rasa's desk channel takes a message only if the desk signed it (common/signing.py):
  unsigned, wrongly signed, stale, replayed, altered, or re-addressed to another borrower ->
  401, nothing about any account in the answer, and no user event in any tracker.
- Rasa's HTTP API takes only a Bearer JWT signed with RELEND_RASA_JWT_SECRET: none, one signed
  with another key, or the old ``?token=`` -> 401.
- The action server runs nothing for a caller without RELEND_ACTION_TOKEN, even with a
  made-up tracker that claims to be a demo borrower; with the token the same call works.

The few tests at the end need no servers: the production refusals of weak secrets.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
import pytest
import requests

from common.settings import InsecureSettings
from common.signing import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, MessageFields, sign
from stack.rasa_auth import rasa_headers, rasa_jwt
from stack.services import Stack
from tests.security.live_support import get_json

servers = pytest.mark.servers

QUESTION = "我已经还清了，为什么现在借不了款？"
VICTIM = "demo-closed"          # the account an attacker wants to hear about
ATTACKER = "demo-eligible"      # a borrower the attacker can legitimately be
OLD_SANDBOX_TOKEN = "relend-sandbox-rasa-token"
# what any answer about an account would contain (the closed line, limits, amounts, names)
ACCOUNT_WORDS = ("demo-", "额度", "关闭", "借款", "元", "limit", "closed", "borrow")
REFUSED = {"error": {"code": "unauthorized",
                     "message": "The desk's signature is missing or invalid."}}


def new_sender() -> str:
    return f"sec-{uuid.uuid4().hex[:12]}"


def post_message(stack: Stack, sender: str, text: str, metadata: dict[str, Any],
                 headers: dict[str, str] | None) -> requests.Response:
    return requests.post(f"{stack.config.url('rasa')}/webhooks/desk/webhook", timeout=30,
                         headers=headers or {}, json={"sender": sender, "message": text,
                                                      "metadata": metadata})


def signed(stack: Stack, sender: str, text: str = QUESTION, borrower_id: str = VICTIM,
           locale: str = "zh-CN", **kwargs: Any) -> dict[str, str]:
    return sign(stack.config.channel_secret, MessageFields(sender, text, borrower_id, locale),
                **kwargs)


def tracker(stack: Stack, sender: str) -> dict[str, Any]:
    return get_json(f"{stack.config.url('rasa')}/conversations/{sender}/tracker",
                    rasa_headers(stack.config.rasa_jwt_secret))


def user_events(stack: Stack, sender: str) -> list[dict[str, Any]]:
    return [e for e in tracker(stack, sender)["events"] if e.get("event") == "user"]


def assert_refused_and_silent(response: requests.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == REFUSED
    assert not any(word in response.text for word in ACCOUNT_WORDS), response.text


def reply_text(response: requests.Response) -> str:
    return "\n".join(m.get("text") or "" for m in response.json())


# --- the desk channel ---------------------------------------------------------------------------


def _unsigned(stack: Stack, sender: str) -> tuple[dict, dict]:
    return {"borrower_id": VICTIM, "locale": "zh-CN"}, {}


def _wrong_signature(stack: Stack, sender: str) -> tuple[dict, dict]:
    forged = sign("not-the-channel-secret", MessageFields(sender, QUESTION, VICTIM, "zh-CN"))
    return {"borrower_id": VICTIM, "locale": "zh-CN"}, forged


def _stale(stack: Stack, sender: str) -> tuple[dict, dict]:
    return ({"borrower_id": VICTIM, "locale": "zh-CN"},
            signed(stack, sender, timestamp=int(time.time()) - 120))


def _from_the_future(stack: Stack, sender: str) -> tuple[dict, dict]:
    return ({"borrower_id": VICTIM, "locale": "zh-CN"},
            signed(stack, sender, timestamp=int(time.time()) + 120))


def _other_borrower(stack: Stack, sender: str) -> tuple[dict, dict]:
    """A valid signature for the attacker's own account, sent with the victim's id."""
    return {"borrower_id": VICTIM, "locale": "zh-CN"}, signed(stack, sender, borrower_id=ATTACKER)


def _garbage_headers(stack: Stack, sender: str) -> tuple[dict, dict]:
    return ({"borrower_id": VICTIM, "locale": "zh-CN"},
            {TIMESTAMP_HEADER: "now", NONCE_HEADER: "x", SIGNATURE_HEADER: "y"})


@servers
@pytest.mark.parametrize("attack", [_unsigned, _wrong_signature, _stale, _from_the_future,
                                    _other_borrower, _garbage_headers],
                         ids=["unsigned", "wrong-signature", "stale", "future",
                              "signed-for-another-borrower", "garbage-headers"])
def test_the_channel_refuses_what_the_desk_did_not_sign(live_stack: Stack, attack) -> None:
    sender = new_sender()
    metadata, headers = attack(live_stack, sender)

    response = post_message(live_stack, sender, QUESTION, metadata, headers)

    assert_refused_and_silent(response)
    assert user_events(live_stack, sender) == []


@servers
def test_altered_text_is_refused(live_stack: Stack) -> None:
    sender = new_sender()
    headers = signed(live_stack, sender, text="你好")

    response = post_message(live_stack, sender, QUESTION, {"borrower_id": VICTIM,
                                                           "locale": "zh-CN"}, headers)

    assert_refused_and_silent(response)
    assert user_events(live_stack, sender) == []


@servers
def test_a_signed_message_works_once_and_its_replay_is_refused(live_stack: Stack) -> None:
    sender = new_sender()
    headers = signed(live_stack, sender)
    metadata = {"borrower_id": VICTIM, "locale": "zh-CN"}

    first = post_message(live_stack, sender, QUESTION, metadata, headers)
    assert first.status_code == 200, first.text
    assert "关闭" in reply_text(first)  # the real answer: the guards did not break the bot
    assert len(user_events(live_stack, sender)) == 1

    replayed = post_message(live_stack, sender, QUESTION, metadata, headers)
    assert_refused_and_silent(replayed)
    # the same captured message, now aimed at a fresh conversation: the sender is signed too
    elsewhere = new_sender()
    assert_refused_and_silent(post_message(live_stack, elsewhere, QUESTION, metadata, headers))

    assert len(user_events(live_stack, sender)) == 1
    assert user_events(live_stack, elsewhere) == []


@servers
def test_only_the_signed_identity_reaches_the_actions(live_stack: Stack) -> None:
    """Extra metadata (and a claimed input channel) is dropped; the actions see only the
    signed borrower id and locale."""
    sender = new_sender()
    headers = signed(live_stack, sender, borrower_id=ATTACKER)
    response = requests.post(
        f"{live_stack.config.url('rasa')}/webhooks/desk/webhook", timeout=30, headers=headers,
        json={"sender": sender, "message": QUESTION, "input_channel": "rest",
              "metadata": {"borrower_id": ATTACKER, "locale": "zh-CN", "role": "admin",
                           "victim": VICTIM}})

    assert response.status_code == 200, response.text
    [event] = user_events(live_stack, sender)
    assert event["input_channel"] == "desk"
    assert {k: event["metadata"].get(k) for k in ("borrower_id", "locale")} == {
        "borrower_id": ATTACKER, "locale": "zh-CN"}
    assert "role" not in event["metadata"] and "victim" not in event["metadata"]
    assert tracker(live_stack, sender)["slots"]["borrower_id"] == ATTACKER


@servers
def test_the_rest_channel_is_gone(live_stack: Stack) -> None:
    response = requests.post(f"{live_stack.config.url('rasa')}/webhooks/rest/webhook",
                             timeout=30, json={"sender": new_sender(), "message": QUESTION,
                                               "metadata": {"borrower_id": VICTIM}})
    assert response.status_code == 404
    assert not any(word in response.text for word in ACCOUNT_WORDS)


# --- Rasa's HTTP API ----------------------------------------------------------------------------


def _expired_jwt(secret: str) -> str:
    past = int(time.time()) - 3600
    return jwt.encode({"user": {"username": "x", "role": "admin"}, "iat": past - 300,
                       "exp": past}, secret, algorithm="HS256")


@servers
@pytest.mark.parametrize("how", ["none", "wrong-key", "old-query-token", "expired", "not-a-jwt",
                                 "alg-none"])
def test_the_http_api_needs_a_jwt_signed_with_the_secret(live_stack: Stack, how: str) -> None:
    sender = new_sender()
    post_message(live_stack, sender, QUESTION, {"borrower_id": VICTIM, "locale": "zh-CN"},
                 signed(live_stack, sender)).raise_for_status()
    rasa = live_stack.config.url("rasa")
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    if how == "wrong-key":
        headers = rasa_headers("an-attackers-own-secret-0123456789abcdef")
    elif how == "old-query-token":
        params = {"token": OLD_SANDBOX_TOKEN}
    elif how == "expired":
        headers = {"Authorization": f"Bearer {_expired_jwt(live_stack.config.rasa_jwt_secret)}"}
    elif how == "not-a-jwt":
        headers = {"Authorization": f"Bearer {OLD_SANDBOX_TOKEN}"}
    elif how == "alg-none":
        unsigned = jwt.encode({"user": {"username": "x", "role": "admin"}}, None,
                              algorithm="none")
        headers = {"Authorization": f"Bearer {unsigned}"}

    for method, path, body in (
            ("GET", f"/conversations/{sender}/tracker", None),
            ("POST", f"/conversations/{sender}/tracker/events",
             [{"event": "slot", "name": "borrower_id", "value": ATTACKER}]),
            ("POST", f"/conversations/{sender}/execute", {"name": "action_explain_decision"}),
            ("POST", "/model/parse", {"text": QUESTION}),
            ("GET", "/status", None)):
        response = requests.request(method, f"{rasa}{path}", headers=headers, params=params,
                                    json=body, timeout=30)
        # sanic-jwt lets PyJWT's InvalidAlgorithmError escape: an unsigned ("alg": "none")
        # token gets a 500 rather than a 401, but is refused all the same
        refused = (401, 403, 500) if how == "alg-none" else (401, 403)
        assert response.status_code in refused, (method, path, response.text)
        assert not any(word in response.text for word in ACCOUNT_WORDS), response.text

    # nothing was changed: the conversation still belongs to the borrower who signed in
    assert tracker(live_stack, sender)["slots"]["borrower_id"] == VICTIM


@servers
def test_a_user_role_jwt_reaches_only_its_own_conversation(live_stack: Stack) -> None:
    rasa = live_stack.config.url("rasa")
    token = rasa_jwt(live_stack.config.rasa_jwt_secret, username="mine", role="user")
    other = requests.get(f"{rasa}/conversations/{new_sender()}/tracker", timeout=30,
                         headers={"Authorization": f"Bearer {token}"})
    assert other.status_code == 403


@servers
def test_the_http_api_works_with_a_valid_jwt(live_stack: Stack) -> None:
    response = requests.post(f"{live_stack.config.url('rasa')}/model/parse", timeout=30,
                             headers=rasa_headers(live_stack.config.rasa_jwt_secret),
                             json={"text": QUESTION})
    assert response.status_code == 200, response.text
    assert response.json()["intent"]["name"]


# --- the action server --------------------------------------------------------------------------


def made_up_call(borrower_id: str = VICTIM) -> dict[str, Any]:
    """What someone who reaches the action server's port could send: a tracker of their own
    making, whose slots say they are ``borrower_id``."""
    sender = new_sender()
    latest = {"text": QUESTION, "intent": {"name": "cannot_borrow_after_repayment",
                                           "confidence": 1.0},
              "entities": [], "metadata": {"borrower_id": borrower_id, "locale": "zh-CN"}}
    return {
        "next_action": "action_explain_decision",
        "sender_id": sender,
        "version": "3.6.21",
        "domain": {"slots": {}, "responses": {}, "actions": [], "intents": [], "entities": [],
                   "forms": {}},
        "tracker": {"sender_id": sender, "slots": {"borrower_id": borrower_id,
                                                   "language": "zh"},
                    "latest_message": latest, "events": [], "paused": False,
                    "followup_action": None, "active_loop": {},
                    "latest_action_name": "action_listen"},
    }


def call_actions(stack: Stack, body: dict[str, Any], token: str | None,
                 path: str = "/webhook") -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.post(f"{stack.config.url('actions')}{path}", data=json.dumps(body),
                         headers={"Content-Type": "application/json", **headers}, timeout=30)


@servers
@pytest.mark.parametrize("token", [None, "", "relend-sandbox-rasa-token", "wrong-token"],
                         ids=["no-header", "empty", "another-token", "wrong-token"])
def test_the_action_server_refuses_callers_without_the_token(live_stack: Stack,
                                                             token: str | None) -> None:
    response = call_actions(live_stack, made_up_call(), token)

    assert response.status_code == 401, response.text
    assert response.json()["error"] == "unauthorized"
    assert not any(word in response.text for word in ACCOUNT_WORDS), response.text
    listing = requests.get(f"{live_stack.config.url('actions')}/actions", timeout=30,
                           headers={"Authorization": f"Bearer {token}"} if token else {})
    assert listing.status_code == 401


@servers
def test_the_action_server_runs_the_action_for_rasa(live_stack: Stack) -> None:
    """The same made-up call with Rasa's token works: the guard is what refused it above."""
    response = call_actions(live_stack, made_up_call(), live_stack.config.action_token)

    assert response.status_code == 200, response.text
    texts = "\n".join(r.get("text") or "" for r in response.json()["responses"])
    assert "关闭" in texts
    health = requests.get(f"{live_stack.config.url('actions')}/health", timeout=30)
    assert health.status_code == 200  # the health check stays open, and says nothing


# --- production refuses weak secrets (no servers) -----------------------------------------------


def test_the_channel_refuses_to_start_in_production_with_a_weak_secret(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from channels.desk_channel import DeskInput

    monkeypatch.setenv("RELEND_ENV", "production")
    for weak in ("", "relend-sandbox-channel-secret", "short"):
        monkeypatch.setenv("RELEND_CHANNEL_SECRET", weak)
        with pytest.raises(InsecureSettings, match="RELEND_CHANNEL_SECRET"):
            DeskInput.from_credentials({"window_seconds": 60})
    monkeypatch.delenv("RELEND_CHANNEL_SECRET")
    with pytest.raises(InsecureSettings, match="RELEND_CHANNEL_SECRET is not set"):
        DeskInput.from_credentials(None)
    monkeypatch.setenv("RELEND_CHANNEL_SECRET", "k" * 48)
    assert DeskInput.from_credentials(None).name() == "desk"
    monkeypatch.setenv("RELEND_ENV", "sandbox")
    monkeypatch.delenv("RELEND_CHANNEL_SECRET")
    DeskInput.from_credentials(None)  # the sandbox: the public default is fine


def test_the_action_server_refuses_to_start_in_production_with_a_weak_token(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from actions.server import action_token

    monkeypatch.setenv("RELEND_ENV", "production")
    monkeypatch.delenv("RELEND_ACTION_TOKEN", raising=False)
    with pytest.raises(InsecureSettings, match="RELEND_ACTION_TOKEN is not set"):
        action_token()
    monkeypatch.setenv("RELEND_ACTION_TOKEN", "relend-sandbox-action-token")
    with pytest.raises(InsecureSettings, match="public sandbox value"):
        action_token()
    monkeypatch.setenv("RELEND_ACTION_TOKEN", "t" * 48)
    assert action_token() == "t" * 48
    monkeypatch.setenv("RELEND_ENV", "sandbox")
    monkeypatch.delenv("RELEND_ACTION_TOKEN")
    assert action_token() == "relend-sandbox-action-token"


def test_rasa_is_not_started_without_a_strong_jwt_secret_in_production(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from stack import rasa_run

    monkeypatch.setenv("RELEND_ENV", "production")
    monkeypatch.setenv("RELEND_RASA_JWT_SECRET", "relend-sandbox-rasa-jwt-secret")
    monkeypatch.setattr("sys.argv", ["rasa_run", "run", "--enable-api"])
    assert rasa_run.main() == 2
    assert "RELEND_RASA_JWT_SECRET" in capsys.readouterr().err
    monkeypatch.setenv("RELEND_ENV", "sandbox")
    monkeypatch.setenv("RELEND_RASA_JWT_SECRET", "")
    assert rasa_run.main() == 2  # no secret: the API would be open
    monkeypatch.setenv("RELEND_RASA_JWT_SECRET", "s" * 48)
    monkeypatch.setattr("sys.argv", ["rasa_run", "run", "--jwt-secret", "on-the-command-line"])
    assert rasa_run.main() == 2  # never on the command line
