"""Clients for attacking the live desk (tests/security/test_desk_attacks.py, test_fuzz_chat.py).

Everything here talks to the real servers started by the ``live_stack`` fixture: the borrower
chat socket (``/ws/chat``), the agent console (``/api/agent/*``, ``/ws/agent``) and, to check
that nothing changed behind the desk's back, the desk's internal API and the backend.

The sandbox secrets are the public defaults from desk/config.py: a test signs its own borrower
tokens (as the app would) and forged ones (as an attacker would).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests
import websockets
from websockets.exceptions import ConnectionClosed

from desk import auth
from stack.services import Stack

APP_SECRET = "relend-sandbox-app-secret"  # desk/config.py: RELEND_APP_SECRET in the sandbox
AGENT_SECRET = "relend-sandbox-agent-secret"  # RELEND_AGENT_SECRET in the sandbox
DEMO_PASSWORD = "relend-demo"  # the sandbox's demo agents (agent1 supervisor, agent2 agent)
SUBPROTOCOL = "relend.v1"
ERROR_CODES = {"empty_message", "message_too_long", "bad_client_id", "unknown_type",
               "bad_frame", "frame_too_large", "rate_limited", "not_json", "binary_frame",
               "unavailable"}
# what the bot says when it hands a conversation to a person (actions/texts.py)
HANDOFF_MARKERS = ("正在为您转接人工客服", "I'm bringing in a colleague now")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def desk_url(stack: Stack) -> str:
    return stack.config.url("desk")


def ws_url(stack: Stack, path: str) -> str:
    return desk_url(stack).replace("http://", "ws://") + path


def subprotocols(token: str) -> list[str]:
    """How a page hands its token to the desk: a subprotocol, never the URL."""
    return [SUBPROTOCOL, f"auth.{token}"]


def borrower_token(borrower_id: str, locale: str = "zh-CN", *, secret: str = APP_SECRET,
                   ttl: int = 3600, audience: str = auth.BORROWER,
                   extra: dict[str, Any] | None = None) -> str:
    """What the app gives the chat page (signed with RELEND_APP_SECRET), or a forgery."""
    return auth.sign({"borrower_id": borrower_id, "locale": locale, **(extra or {})}, secret,
                     audience, ttl)


def agent_token(agent_id: int, version: int = 0, *, secret: str = AGENT_SECRET, ttl: int = 600,
                audience: str = auth.AGENT) -> str:
    return auth.sign({"sub": str(agent_id), "ver": version}, secret, audience, ttl)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get_json(url: str, headers: dict[str, str] | None = None) -> Any:
    """GET ``url``; it must answer 200, with JSON."""
    response = requests.get(url, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def error_code(response: requests.Response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


# --- the borrower's chat socket ------------------------------------------------------------


class Chat:
    """One borrower chat socket. Frames that arrive while waiting for another one are kept
    (in order) in ``pending``, so nothing the desk pushes is lost or skipped."""

    def __init__(self, socket: websockets.WebSocketClientProtocol) -> None:
        self.socket = socket
        self.pending: list[dict[str, Any]] = []
        self.session: dict[str, Any] = {}
        self.conversation_id = ""
        self.borrower_id = ""

    @classmethod
    async def open(cls, url: str, token: str, *, max_size: int | None = 2**22,
                   timeout: float = 30) -> Chat:
        socket = await asyncio.wait_for(
            websockets.connect(url, subprotocols=subprotocols(token), max_size=max_size,
                               open_timeout=timeout, ping_interval=None), timeout)
        chat = cls(socket)
        chat.session = await chat.recv(timeout)
        assert chat.session.get("type") == "session", chat.session
        chat.conversation_id = chat.session["conversation_id"]
        chat.borrower_id = chat.session["borrower_id"]
        return chat

    async def close(self) -> None:
        await self.socket.close()

    async def __aenter__(self) -> Chat:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def recv(self, timeout: float = 30) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.socket.recv(), timeout)
        assert isinstance(raw, str), f"binary frame from the desk: {raw!r}"
        frame = json.loads(raw)
        assert isinstance(frame, dict), frame
        return frame

    async def send(self, frame: Any, *, ensure_ascii: bool = False) -> None:
        """One JSON text frame: UTF-8 as a browser sends it, or with ``\\uXXXX`` escapes
        (always for lone surrogates, which UTF-8 cannot carry: ``"\\ud800"`` in the JSON)."""
        data = json.dumps(frame, ensure_ascii=ensure_ascii)
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            data = json.dumps(frame, ensure_ascii=True)
        await self.socket.send(data)

    async def send_raw(self, data: str | bytes) -> None:
        await self.socket.send(data)

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool],
                       timeout: float = 30) -> dict[str, Any]:
        """The first frame (kept or new) that matches; the others stay in ``pending``."""
        for index, frame in enumerate(self.pending):
            if predicate(frame):
                return self.pending.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - time.monotonic()))
            if predicate(frame):
                return frame
            self.pending.append(frame)

    async def message(self, text: Any, client_id: str | None = None, *, timeout: float = 30,
                      **extra: Any) -> dict[str, Any]:
        """Send a borrower message; return its ``ack`` or its ``error`` frame."""
        client_id = client_id or uuid.uuid4().hex
        await self.send({"type": "message", "client_id": client_id, "text": text, **extra})
        return await self.answer_to(client_id, timeout=timeout)

    async def answer_to(self, client_id: str, *, timeout: float = 30) -> dict[str, Any]:
        return await self.wait_for(
            lambda f: f.get("type") in ("ack", "error") and f.get("client_id") == client_id,
            timeout)

    async def rest_of_turn(self, message_id: int, timeout: float = 60) -> list[dict[str, Any]]:
        """Every frame up to the ``turn_done`` of ``message_id`` (which is not included)."""
        done = await self.wait_for(
            lambda f: f.get("type") == "turn_done" and f.get("message_id") == message_id, timeout)
        assert done == {"type": "turn_done", "message_id": message_id}, done
        frames, self.pending = self.pending, []
        return frames

    async def turn(self, text: str, *, timeout: float = 60, **extra: Any
                   ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A whole exchange: the ack, then the frames up to its turn_done."""
        ack = await self.message(text, timeout=timeout, **extra)
        assert ack["type"] == "ack", ack
        return ack, await self.rest_of_turn(ack["id"], timeout)

    async def bot_says(self, text: str, **extra: Any) -> list[str]:
        """The texts of the bot's (or system's) messages answering ``text``."""
        _ack, frames = await self.turn(text, **extra)
        return [f["text"] for f in frames
                if f.get("type") == "message" and f.get("sender") in ("bot", "system")]

    async def history(self, after: Any = 0, **extra: Any) -> list[dict[str, Any]]:
        await self.send({"type": "hello", "after": after, **extra})
        frame = await self.wait_for(lambda f: f.get("type") == "history")
        return frame["messages"]


async def closed_with(url: str, offered: list[str] | None, *, timeout: float = 15,
                      headers: dict[str, str] | None = None) -> tuple[int | None,
                                                                        list[dict[str, Any]]]:
    """Connect and read until the desk closes the socket: (close code, frames received).
    A refused handshake (HTTP error) counts as close code None with no frames."""
    frames: list[dict[str, Any]] = []
    try:
        socket = await asyncio.wait_for(
            websockets.connect(url, subprotocols=offered, extra_headers=headers,
                               open_timeout=timeout, ping_interval=None), timeout)
    except websockets.InvalidStatusCode:
        return None, frames
    try:
        while True:
            raw = await asyncio.wait_for(socket.recv(), timeout)
            frames.append(json.loads(raw) if isinstance(raw, str) else {"binary": raw})
    except ConnectionClosed as exc:
        return exc.code, frames
    except asyncio.TimeoutError:
        await socket.close()
        raise AssertionError(f"the desk kept the socket open; frames: {frames}") from None


# --- agents ----------------------------------------------------------------------------------


class Console:
    """One agent's console session (a fresh login: logging out revokes all of that agent's
    tokens, so no test shares another's)."""

    def __init__(self, stack: Stack, username: str, password: str = DEMO_PASSWORD) -> None:
        self.desk = desk_url(stack)
        self.stack = stack
        response = requests.post(f"{self.desk}/api/agent/login", timeout=30,
                                 json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        body = response.json()
        self.token: str = body["token"]
        self.refresh_token: str = body["refresh_token"]
        self.agent: dict[str, Any] = body["agent"]
        self.headers = bearer(self.token)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.desk}{path}", headers=self.headers, timeout=60,
                                **kwargs)

    def get(self, path: str) -> Any:
        """GET a console path as this agent; it must answer 200, with JSON."""
        return get_json(f"{self.desk}{path}", self.headers)

    def queue(self) -> list[dict[str, Any]]:
        return self.get("/api/agent/queue")["cases"]

    def case_for(self, conversation_id: str) -> dict[str, Any]:
        cases = [c for c in self.queue() if c["conversation_id"] == conversation_id]
        assert len(cases) == 1, cases
        return cases[0]

    def case(self, case_id: int) -> dict[str, Any]:
        return self.get(f"/api/agent/cases/{case_id}")

    def canned(self) -> list[dict[str, Any]]:
        return self.get("/api/agent/canned")["replies"]


class AgentFeed:
    """An agent console's socket: records everything it is sent."""

    def __init__(self, socket: websockets.WebSocketClientProtocol) -> None:
        self.socket = socket
        self.frames: list[dict[str, Any]] = []
        self.close_code: int | None = None

    @classmethod
    async def open(cls, url: str, token: str) -> AgentFeed:
        socket = await websockets.connect(url, subprotocols=subprotocols(token),
                                          ping_interval=None)
        return cls(socket)

    async def drain(self, seconds: float) -> list[dict[str, Any]]:
        """Whatever arrives within ``seconds`` (stops early if the desk closes the socket)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(self.socket.recv(), left)
            except asyncio.TimeoutError:
                break
            except ConnectionClosed as exc:
                self.close_code = exc.code
                break
            self.frames.append(json.loads(raw))
        return self.frames

    def messages(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("type") != "queue"]

    async def close(self) -> None:
        await self.socket.close()


# --- behind the desk -------------------------------------------------------------------------


def ownership(stack: Stack, conversation_id: str) -> dict[str, Any]:
    """What the desk says about a conversation (its internal API, with the service token)."""
    return get_json(f"{desk_url(stack)}/internal/conversations/{conversation_id}",
                    bearer(stack.config.desk_token))


def backend_appeals(stack: Stack, borrower_id: str) -> list[dict[str, Any]]:
    return get_json(f"{stack.config.url('backend')}/v1/borrowers/{borrower_id}/appeals",
                    bearer(stack.config.backend_token))["appeals"]


def desk_healthy(stack: Stack) -> None:
    response = requests.get(f"{desk_url(stack)}/health", timeout=30)
    assert response.status_code == 200, response.text
