"""Plain helpers for the desk tests (the fixtures live in conftest.py).

``FakeRasa`` stands in for Rasa's HTTP API behind ``httpx.MockTransport``; ``FixedDemoDirectory``
for the backend's list of demo borrowers; ``Chat`` and ``AgentFeed`` wrap the TestClient's
WebSocket sessions; ``AgentApi`` is an agent's console.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import timedelta
from itertools import count
from typing import Any

import httpx
import jwt
import pytest
from fake_backend import BACKEND_TOKEN, DEMO_BORROWERS
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

from common.settings import Mode
from common.signing import InvalidSignature, MessageFields, Verifier
from desk import auth
from desk.auth import sign
from desk.config import DeskSettings
from desk.demo_borrowers import DemoBorrower
from desk.models import Case, Conversation
from desk.service import utc_now

APP_SECRET = "test-app-secret-0123456789abcdefghij"
AGENT_SECRET = "test-agent-secret-0123456789abcdefghij"
INTERNAL_TOKEN = "test-desk-token"
CHANNEL_SECRET = "test-channel-secret-0123456789abcdefghij"
RASA_JWT_SECRET = "test-rasa-jwt-secret-0123456789abcdefghij"
PASSWORD = "test-agent-password"
MAX_CHARS = 200

BORROWER = "b-1001"
# what the borrower types: an ID number, a mobile number and a bank card, then the masked forms
PRIVATE = "身份证110105194912310021，手机138 1234 5678，卡号6222 0212 3456 7890"
MASKED = "身份证110105********0021，手机138****5678，卡号6222 **** **** 7890"

HANDOFF_PAYLOAD = "/human"  # what the fake Rasa treats as "get me a person" (a button payload)
HANDOFF_TEXT = "正在为您转接人工客服，请稍候。"
RESUME_TEXT = "我回来了，继续为您服务。"
BOT_TEXT = "好的，我来帮您查看。"
BUTTONS = [{"title": "查看额度", "payload": "/check_limit"}]
TYPING_ON = {"type": "typing", "on": True}
TYPING_OFF = {"type": "typing", "on": False}

# what the desk tells a borrower when the assistant does not answer (texts/*.yml,
# desk.assistant_down), as a person read it
ASSISTANT_DOWN_ZH = "抱歉，助手暂时没有响应。您的消息已经保存，我们已请人工客服接手，请稍候。"
ASSISTANT_DOWN_EN = ("Sorry, the assistant isn't responding right now. Your message is saved and a "
                     "colleague will take over shortly.")


DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]
# a mark for tests (or ``pytestmark``) that run on SQLite and on PostgreSQL
on_every_database = pytest.mark.parametrize("db_kind", DATABASES, indirect=True)


def make_settings(database_url: str, **overrides: Any) -> DeskSettings:
    """Sandbox settings with the test's own secrets (the environment plays no part)."""
    fields = dict(
        mode=Mode.SANDBOX, database_url=database_url, host="127.0.0.1", port=0,
        internal_token=INTERNAL_TOKEN, app_secret=APP_SECRET, agent_secret=AGENT_SECRET,
        channel_secret=CHANNEL_SECRET, rasa_jwt_secret=RASA_JWT_SECRET,
        demo_login=True, demo_agents=True, rasa_url="http://rasa.test", rasa_timeout=5,
        max_message_chars=MAX_CHARS, borrower_token_ttl_seconds=600,
        agent_token_ttl_seconds=600, demo_agent_password=PASSWORD,
        backend_url="http://backend.test", backend_token=BACKEND_TOKEN,
        # the background round runs once at start; tests run more rounds with ``sweep``
        assistant_probe_seconds=3600,
    )
    return DeskSettings.construct(**{**DeskSettings().dict(), **fields, **overrides})


def subprotocols(token: str) -> list[str]:
    """How a page hands its token to a WebSocket: never in the URL."""
    return ["relend.v1", f"auth.{token}"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def borrower_token(borrower_id: str = BORROWER, locale: str = "zh-CN", *,
                   secret: str = APP_SECRET, ttl: int = 600) -> str:
    """What the app hands the chat page: signed with RELEND_APP_SECRET."""
    return sign({"borrower_id": borrower_id, "locale": locale}, secret, auth.BORROWER, ttl)


def agent_token(agent_id: int, name: str = "", *, secret: str = AGENT_SECRET, ttl: int = 600,
                version: int = 0, audience: str = auth.AGENT) -> str:
    """What the console login returns (signed here to skip the deliberately slow scrypt)."""
    return sign({"sub": str(agent_id), "ver": version}, secret, audience, ttl)


# --- the backend's demo borrowers -------------------------------------------------------------


class FixedDemoDirectory:
    """The demo borrowers without a backend (the in-process tests have none)."""

    def __init__(self, borrowers: list[dict[str, str]] = DEMO_BORROWERS) -> None:
        self.listing = [DemoBorrower(**b) for b in borrowers]

    async def borrowers(self) -> list[DemoBorrower]:
        return self.listing


# --- Rasa ---------------------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    path: str
    params: dict[str, str]
    json: Any
    # the JWT's ``user`` for an HTTP API call (None for the channel); why it was refused, if so
    user: dict[str, Any] | None = None
    refused: str | None = None


CHANNEL_PATH = "/webhooks/desk/webhook"


class FakeRasa:
    """Rasa's desk channel and HTTP API, as far as the desk uses them, with Rasa's checks.

    The channel (``/webhooks/desk/webhook``) answers 401 unless the message is signed with
    ``CHANNEL_SECRET`` (common/signing.py: signature, timestamp window, fresh nonce); the HTTP
    API answers 401 unless ``Authorization: Bearer`` holds an HS256 JWT signed with
    ``RASA_JWT_SECRET`` whose ``user.role`` is ``admin``, and with no token in the URL.

    ``replies`` is what the bot says to any borrower message, ``resume_replies`` what
    ``action_resume_after_handoff`` says. ``failure`` makes every call fail: "connect",
    "timeout", "500" or "garbage" (a 200 that is not JSON); "late" answers the message in the
    tracker but the desk gets a timeout (Rasa finished after the desk gave up). The message
    ``/human`` hands off the way the real action does: it posts the case to the desk (``desk``
    is an httpx client on the app) before answering.

    Each conversation has a tracker (``trackers``: its events, ``GET .../tracker``, ``POST
    .../tracker/events``) kept the way Rasa 3.6 keeps it, circuit breaker included:
    ``actions_down`` is Rasa up with its action server down -- every message is answered
    ``200 []``; on a session's first message ``action_session_start`` fails, so ten
    ``action_default_fallback`` follow and no ``action_listen``, and from then on every
    message trips the breaker (ten actions since the last ``action_listen``) and gets ``[]``,
    until the desk appends an ``action_listen``.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.replies: list[dict[str, Any]] = [{"text": BOT_TEXT, "buttons": BUTTONS}]
        self.resume_replies: list[dict[str, Any]] = [{"text": RESUME_TEXT}]
        self.failure: str | None = None
        self.actions_down = False
        self.desk: httpx.AsyncClient | None = None
        self.verifier = Verifier(CHANNEL_SECRET)
        self.trackers: dict[str, list[dict[str, Any]]] = {}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle),
                                 base_url="http://rasa.test")

    def to(self, suffix: str) -> list[Call]:
        """The calls whose path ends with ``suffix``."""
        return [call for call in self.calls if call.path.endswith(suffix)]

    @property
    def messages(self) -> list[Any]:
        """The bodies the desk channel received."""
        return [call.json for call in self.to(CHANNEL_PATH)]

    def heard(self, sender: str) -> list[str]:
        """The texts of the user events in a conversation's tracker."""
        return [e["text"] for e in self.trackers.get(sender, []) if e["event"] == "user"]

    def _check_channel(self, request: httpx.Request, body: Any) -> str | None:
        """Why the channel would refuse this message (None: it is signed and fresh)."""
        metadata = body.get("metadata") or {}
        fields = MessageFields(sender=body["sender"], text=body["message"],
                               borrower_id=metadata.get("borrower_id") or "",
                               locale=metadata.get("locale") or "")
        try:
            self.verifier.verify(fields, request.headers)
        except InvalidSignature as exc:
            return exc.reason
        return None

    @staticmethod
    def _check_api(request: httpx.Request, call: Call) -> str | None:
        """Why the HTTP API would refuse this call (None: a valid admin JWT, no URL token)."""
        if "token" in request.url.params:
            return "a token in the URL"
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return "no bearer token"
        try:
            claims = jwt.decode(token, RASA_JWT_SECRET, algorithms=["HS256"],
                                options={"require": ["exp"]})
        except jwt.InvalidTokenError as exc:
            return f"bad JWT: {exc}"
        call.user = claims.get("user")
        return None if (call.user or {}).get("role") == "admin" else "not an admin"

    # --- the tracker ----------------------------------------------------------------------------

    @staticmethod
    def paused(events: list[dict[str, Any]]) -> bool:
        flags = [e["event"] for e in events if e["event"] in ("pause", "resume", "restart")]
        return bool(flags) and flags[-1] == "pause"

    @staticmethod
    def latest_action(events: list[dict[str, Any]]) -> str | None:
        return next((e["name"] for e in reversed(events) if e["event"] == "action"), None)

    @staticmethod
    def breaker_trips(events: list[dict[str, Any]]) -> bool:
        """Rasa's is_action_limit_reached: ten actions since action_listen/session start."""
        count = 0
        for event in reversed(events):
            if event["event"] == "action":
                if event["name"] in ("action_listen", "action_session_start"):
                    break
                count += 1
        return count >= 10

    def _turn(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """What Rasa logs for one message and what the channel answers."""
        events = self.trackers.setdefault(sender, [])
        first = not events
        if first:  # a new session: action_session_start, a custom action
            events.append({"event": "action", "name": "action_session_start"})
            if not self.actions_down:
                events += [{"event": "session_started"},
                           {"event": "action", "name": "action_listen"}]
        events.append({"event": "user", "text": text, "timestamp": time.time()})
        if self.breaker_trips(events):  # "Circuit breaker tripped"
            return []
        if self.paused(events) and text != "/restart":
            return []  # logged, nothing predicted
        if self.actions_down:
            if first:
                events += [{"event": "action", "name": "action_default_fallback"}] * 10
            else:
                events += [{"event": "action", "name": "action_validate_slot_mappings"},
                           {"event": "action", "name": "action_listen"}]
            return []
        replies = self.replies
        if text == HANDOFF_PAYLOAD:
            replies = [{"text": HANDOFF_TEXT}]
        for reply in replies:
            events.append({"event": "bot", "text": reply.get("text"), "timestamp": time.time(),
                           "data": {"buttons": reply.get("buttons")}})
        events.append({"event": "pause"} if text == HANDOFF_PAYLOAD
                      else {"event": "action", "name": "action_listen"})
        return [{"recipient_id": sender, **r} for r in replies]

    def _tracker(self, sender: str, params: dict[str, str]) -> dict[str, Any]:
        events = self.trackers.get(sender, [])
        slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
        return {"sender_id": sender, "paused": self.paused(events), "slots": slots,
                "latest_action_name": self.latest_action(events),
                "events": None if params.get("include_events") == "NONE" else list(events)}

    async def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        call = Call(request.method, request.url.path, dict(request.url.params), body)
        self.calls.append(call)
        if self.failure == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if self.failure == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if self.failure == "500":
            return httpx.Response(500, json={"message": "internal error"})
        if self.failure == "garbage":
            return httpx.Response(200, text="<html>bad gateway</html>")
        path = request.url.path
        call.refused = (self._check_channel(request, body) if path == CHANNEL_PATH
                        else self._check_api(request, call))
        if call.refused:
            return httpx.Response(401, json={"error": call.refused})
        if path == CHANNEL_PATH:
            sender = body["sender"]
            if body["message"] == HANDOFF_PAYLOAD and not self.actions_down:
                await self._hand_off(sender, body["metadata"])
            replies = self._turn(sender, body["message"], body["metadata"])
            if self.failure == "late":
                raise httpx.ReadTimeout("timed out", request=request)
            return httpx.Response(200, json=replies)
        sender = path.split("/")[2] if path.startswith("/conversations/") else ""
        if path.endswith("/tracker/events"):
            events = self.trackers.setdefault(sender, [])
            events += body if isinstance(body, list) else [body]
            return httpx.Response(200, json=self._tracker(sender, {}))
        if path.endswith("/tracker") and request.method == "GET":
            return httpx.Response(200, json=self._tracker(sender, call.params))
        if path.endswith("/execute"):
            return httpx.Response(200, json={"tracker": {}, "messages": self.resume_replies})
        if path == "/status":
            return httpx.Response(200, json={"model_file": "fake.tar.gz", "model_id": "fake",
                                             "num_active_training_jobs": 0})
        return httpx.Response(404, json={"message": "not found"})

    async def _hand_off(self, conversation_id: str, metadata: dict[str, Any]) -> None:
        assert self.desk is not None, "FakeRasa.desk is not set"
        response = await self.desk.post("/internal/handoffs", headers=bearer(INTERNAL_TOKEN), json={
            "conversation_id": conversation_id, "borrower_id": metadata["borrower_id"],
            "language": metadata["locale"][:2], "reason": "borrower_asked",
            "transcript": [{"sender": "borrower", "text": HANDOFF_PAYLOAD}]})
        response.raise_for_status()


# --- sockets ------------------------------------------------------------------------------------


class Chat:
    """The borrower's chat socket, opened (the session frame is read on entry)."""

    _ids = count(1)

    def __init__(self, socket: WebSocketTestSession) -> None:
        self.socket = socket
        # the handoff states the desk pushed (desk/handoffs.py), set aside by ``recv``
        self.handoff_frames: list[dict[str, Any]] = []
        self.session = socket.receive_json()
        assert self.session["type"] == "session", self.session
        self.conversation_id: str = self.session["conversation_id"]

    def send(self, frame: Any) -> None:
        self.socket.send_json(frame)

    def recv(self) -> dict[str, Any]:
        """The next frame but ``handoff`` ones, which go to ``handoff_frames``."""
        while (frame := self.socket.receive_json()).get("type") == "handoff":
            self.handoff_frames.append(frame)
        return frame

    def message(self, text: str, client_id: str | None = None, **extra: Any) -> dict[str, Any]:
        """Send a borrower message; return its ack (the echo to the borrower is read too)."""
        client_id = client_id or f"m{next(self._ids)}"
        self.send({"type": "message", "text": text, "client_id": client_id, **extra})
        ack = self.recv()
        assert ack == {"type": "ack", "client_id": client_id, "id": ack.get("id")}, ack
        echo = self.recv()
        assert echo["type"] == "message" and echo["id"] == ack["id"], echo
        assert echo["sender"] == "borrower" and echo["text"] == text.strip(), echo
        return ack

    def rest_of_turn(self, ack: dict[str, Any]) -> list[dict[str, Any]]:
        """The frames the desk pushes for that message, up to its ``turn_done``."""
        done = {"type": "turn_done", "message_id": ack["id"]}
        frames = []
        while (frame := self.recv()) != done:
            frames.append(frame)
        return frames

    def turn(self, text: str) -> list[dict[str, Any]]:
        """A whole exchange with the bot: message, typing on and off, the bot's replies."""
        frames = self.rest_of_turn(self.message(text))
        assert frames[:2] == [TYPING_ON, TYPING_OFF], frames
        assert all(f["type"] == "message" for f in frames[2:]), frames
        return frames[2:]

    def history(self, after: int = 0) -> list[dict[str, Any]]:
        self.send({"type": "hello", "after": after})
        frame = self.recv()
        assert frame["type"] == "history", frame
        return frame["messages"]

    def assert_quiet(self) -> None:
        """Nothing was pushed: the next frame is the answer to this hello."""
        assert self.history(after=10**9) == []


class AgentFeed:
    """An agent console's socket: queue notices and live messages, in order."""

    def __init__(self, socket: WebSocketTestSession) -> None:
        self.socket = socket

    def recv(self) -> dict[str, Any]:
        return self.socket.receive_json()

    def next_message(self) -> dict[str, Any]:
        """The next message frame, skipping queue notices."""
        while (frame := self.recv())["type"] != "message":
            assert frame == {"type": "queue"}, frame
        return frame


class AgentApi:
    """One agent's side of the console API."""

    def __init__(self, client: TestClient, agent_id: int, name: str) -> None:
        self.client = client
        self.id = agent_id
        self.name = name
        self.token = agent_token(agent_id, name)
        self.headers = bearer(self.token)

    def request(self, method: str, path: str, json: Any = None, **kwargs: Any
                ) -> httpx.Response:
        return self.client.request(method, path, headers=self.headers, json=json, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None) -> httpx.Response:
        return self.request("POST", path, json)

    def claim(self, case_id: int) -> httpx.Response:
        return self.post(f"/api/agent/cases/{case_id}/claim")

    def reply(self, case_id: int, text: str) -> httpx.Response:
        return self.post(f"/api/agent/cases/{case_id}/messages", {"text": text})

    def case(self, case_id: int) -> dict[str, Any]:
        response = self.get(f"/api/agent/cases/{case_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def queue(self) -> list[dict[str, Any]]:
        response = self.get("/api/agent/queue")
        assert response.status_code == 200, response.text
        return response.json()["cases"]


def error_code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


def hand_off(client: TestClient, conversation_id: str, **fields: Any) -> httpx.Response:
    """What the action server posts when the bot hands a conversation to a person."""
    return client.post("/internal/handoffs", headers=bearer(INTERNAL_TOKEN),
                       json={"conversation_id": conversation_id, **fields})


def ownership(client: TestClient, conversation_id: str) -> dict[str, Any]:
    """What the action server asks before un-pausing the bot."""
    response = client.get(f"/internal/conversations/{conversation_id}",
                          headers=bearer(INTERNAL_TOKEN))
    assert response.status_code == 200, response.text
    return response.json()


def add_claimed_cases(sessions, waits_minutes: list[float], *, claimed_hours_ago: float = 0.5
                      ) -> None:
    """Fixture cases other borrowers opened and agents claimed, ``waits_minutes`` apart."""
    now = utc_now()
    with sessions() as session:
        for n, wait in enumerate(waits_minutes):
            claimed = now - timedelta(hours=claimed_hours_ago, seconds=n)
            opened = claimed - timedelta(minutes=wait)
            conversation_id = f"c-estimate-{claimed_hours_ago}-{n}"
            session.add(Conversation(id=conversation_id, borrower_id=f"b-est-{conversation_id}",
                                     locale="zh-CN", owner="bot", created_at=opened,
                                     updated_at=claimed))
            session.flush()
            session.add(Case(conversation_id=conversation_id, borrower_id="b-est",
                             language="zh", reason="borrower_asked", context={},
                             status="closed", created_at=opened, claimed_at=claimed,
                             ended_at=claimed))
        session.commit()
