"""Driving one script's conversation through the live servers: the borrower on the desk's
chat socket (exactly like the in-app chat), the agent on the console API, and probes that
read the assistant's slots, the desk's ownership and the backend's appeals."""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import requests
import websockets

from desk.auth import BORROWER, sign
from desk.config import SANDBOX_DEFAULTS
from stack.config import StackConfig
from stack.rasa_auth import rasa_headers

from .check import TurnResult

TURN_TIMEOUT = 45.0
BACKOFFICE_TOKEN_ENV = "RELEND_BACKOFFICE_TOKEN"


def app_secret() -> str:
    """The secret the desk verifies borrower tokens with: the environment's, else the
    sandbox's public value (the runner only drives sandbox stacks)."""
    return os.environ.get("RELEND_APP_SECRET", "").strip() or SANDBOX_DEFAULTS["app_secret"]


class LiveError(Exception):
    """The stack misbehaved (not the assistant's answer): reported as an error, not a failure."""


def fixture_borrower_id(script_name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", script_name.lower()).strip("-")[:30] or "script"
    return f"qa-{slug}-{uuid.uuid4().hex[:6]}"


def put_fixture(config: StackConfig, borrower_id: str, fixture: dict[str, Any]) -> None:
    import os

    token = os.environ.get(BACKOFFICE_TOKEN_ENV, "relend-sandbox-backoffice-token")
    response = requests.put(f"{config.url('backend')}/v1/backoffice/sandbox/borrowers/"
                            f"{borrower_id}", json=fixture, timeout=15,
                            headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 204:
        raise LiveError(f"the backend refused the fixture ({response.status_code}): "
                        f"{response.text[:500]}")


class LiveConversation:
    def __init__(self, config: StackConfig, borrower_id: str, locale: str) -> None:
        self.config = config
        self.borrower_id = borrower_id
        self.locale = locale
        self.conversation_id = ""
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.last_buttons: list[dict[str, str]] = []
        self._socket: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._agent_headers: dict[str, str] | None = None
        self._case_id: int | None = None

    # ---- connection -------------------------------------------------------------------
    async def open(self) -> None:
        desk = self.config.url("desk")
        # the runner plays the app: it signs the borrower's token with the app secret (the
        # sandbox's demo login only serves the seeded demo borrowers, not script fixtures)
        token = sign({"borrower_id": self.borrower_id, "locale": self.locale}, app_secret(),
                     BORROWER, 600)
        # the desk takes the token as a WebSocket subprotocol, never in the URL
        self._socket = await websockets.connect(
            desk.replace("http://", "ws://") + "/ws/chat", max_size=2**20,
            subprotocols=["relend.v1", f"auth.{token}"])
        session = json.loads(await self._socket.recv())
        self.conversation_id = session["conversation_id"]
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self._socket:
                await self.frames.put(json.loads(raw))
        except websockets.ConnectionClosed:
            await self.frames.put({"type": "closed"})

    async def close(self) -> None:
        if self._reader:
            self._reader.cancel()
        if self._socket is not None:
            await self._socket.close()

    # ---- borrower ---------------------------------------------------------------------
    async def say(self, text: str) -> list[dict[str, Any]]:
        client_id = uuid.uuid4().hex
        await self._socket.send(json.dumps({"type": "message", "text": text,
                                            "client_id": client_id}))
        message_id: int | None = None
        arrived: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TURN_TIMEOUT
        while True:
            frame = await self._next(deadline - loop.time(), f"reply to {text!r}")
            kind = frame.get("type")
            if kind == "ack" and frame.get("client_id") == client_id:
                message_id = frame["id"]
            elif kind == "error" and frame.get("client_id") == client_id:
                arrived.append({"sender": "system", "text": f"[desk error] {frame.get('code')}"})
                return arrived
            elif kind == "message" and frame.get("sender") != "borrower":
                arrived.append(frame)
                if frame.get("buttons"):
                    self.last_buttons = frame["buttons"]
            elif kind == "turn_done" and frame.get("message_id") == message_id:
                return arrived

    async def press(self, title: str) -> list[dict[str, Any]]:
        button = next((b for b in self.last_buttons if b.get("title") == title), None)
        if button is None:
            offered = [b.get("title") for b in self.last_buttons]
            raise AssertionError(f"no button titled {title!r} to press (offered: {offered})")
        return await self.say(button["payload"])

    async def _next(self, timeout: float, waiting_for: str) -> dict[str, Any]:
        if timeout <= 0:
            raise LiveError(f"timed out waiting for the {waiting_for}")
        try:
            frame = await asyncio.wait_for(self.frames.get(), timeout)
        except asyncio.TimeoutError:
            raise LiveError(f"timed out waiting for the {waiting_for}") from None
        if frame.get("type") == "closed":
            raise LiveError("the desk closed the chat connection")
        return frame

    async def _bot_messages(self, seconds: float) -> AsyncIterator[dict[str, Any]]:
        """Each message from the bot or an agent arriving within ``seconds`` (buttons noted
        as the latest offered)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            try:
                frame = await asyncio.wait_for(self.frames.get(), remaining)
            except asyncio.TimeoutError:
                return
            if frame.get("type") == "closed":
                raise LiveError("the desk closed the chat connection")
            if frame.get("type") == "message" and frame.get("sender") != "borrower":
                if frame.get("buttons"):
                    self.last_buttons = frame["buttons"]
                yield frame

    async def collect(self, seconds: float, *, until_sender: str | None = None
                      ) -> list[dict[str, Any]]:
        """Messages arriving within ``seconds`` (or until one from ``until_sender``)."""
        arrived: list[dict[str, Any]] = []
        async for frame in self._bot_messages(seconds):
            arrived.append(frame)
            if until_sender and frame.get("sender") == until_sender:
                # the rest of that batch follows immediately
                arrived += await self.collect(1.0)
                break
        return arrived

    async def wait_notice(self, seconds: float) -> list[dict[str, Any]]:
        """Messages arriving within ``seconds``, up to the first proactive notice (a message
        the desk marks with the kind of change, ``notice``). No notice in time: the turn fails
        (``AssertionError``), naming what did arrive."""
        arrived: list[dict[str, Any]] = []
        async for frame in self._bot_messages(seconds):
            arrived.append(frame)
            if frame.get("notice"):
                return arrived
        said = [m.get("text") for m in arrived]
        raise AssertionError(f"no notice arrived within {seconds:g} s (arrived: {said})")

    # ---- agent ------------------------------------------------------------------------
    async def _agent(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        desk = self.config.url("desk")
        if self._agent_headers is None:
            login = await asyncio.to_thread(requests.post, f"{desk}/api/agent/login", timeout=10,
                                            json={"username": "agent1",
                                                  "password": _agent_password()})
            if not login.ok:
                raise LiveError(f"agent login failed: {login.status_code}")
            self._agent_headers = {"Authorization": f"Bearer {login.json()['token']}"}
        return await asyncio.to_thread(requests.request, method, f"{desk}{path}",
                                       headers=self._agent_headers, timeout=30, **kwargs)

    async def _claimed_case(self) -> int:
        if self._case_id is not None:
            return self._case_id
        queue = (await self._agent("GET", "/api/agent/queue")).json().get("cases", [])
        case = next((c for c in queue if c["conversation_id"] == self.conversation_id), None)
        if case is None:
            raise AssertionError("no handoff case for this conversation: the agent has "
                                 "nothing to reply to")
        claimed = await self._agent("POST", f"/api/agent/cases/{case['case_id']}/claim")
        if not claimed.ok:
            raise LiveError(f"claiming the case failed: {claimed.text[:200]}")
        self._case_id = case["case_id"]
        return self._case_id

    async def agent_say(self, text: str) -> list[dict[str, Any]]:
        case_id = await self._claimed_case()
        sent = await self._agent("POST", f"/api/agent/cases/{case_id}/messages",
                                 json={"text": text})
        if not sent.ok:
            raise LiveError(f"the agent's message was refused: {sent.text[:200]}")
        return await self.collect(10, until_sender="agent")

    async def agent_return(self, note: str | None) -> list[dict[str, Any]]:
        case_id = await self._claimed_case()
        back = await self._agent("POST", f"/api/agent/cases/{case_id}/return",
                                 json={"note": note} if note else {})
        if not back.ok:
            raise LiveError(f"returning the conversation failed: {back.text[:200]}")
        self._case_id = None
        return await self.collect(TURN_TIMEOUT, until_sender="bot")

    async def agent_close(self) -> list[dict[str, Any]]:
        case_id = await self._claimed_case()
        closed = await self._agent("POST", f"/api/agent/cases/{case_id}/close")
        if not closed.ok:
            raise LiveError(f"closing the case failed: {closed.text[:200]}")
        self._case_id = None
        return await self.collect(1.0)

    # ---- probes -----------------------------------------------------------------------
    async def probe(self, result: TurnResult, expect: dict[str, Any]) -> None:
        if "reason" in expect or "slots" in expect:
            tracker = await asyncio.to_thread(
                requests.get, f"{self.config.url('rasa')}/conversations/{self.conversation_id}"
                "/tracker", headers=rasa_headers(self.config.rasa_jwt_secret), timeout=15)
            result.slots = tracker.json().get("slots", {}) if tracker.ok else {}
        if "handoff" in expect:
            owner = await asyncio.to_thread(
                requests.get, f"{self.config.url('desk')}/internal/conversations/"
                f"{self.conversation_id}", timeout=15,
                headers={"Authorization": f"Bearer {self.config.desk_token}"})
            result.owner = owner.json().get("owner") if owner.ok else None
        if "appeal" in expect:
            appeals = await asyncio.to_thread(
                requests.get, f"{self.config.url('backend')}/v1/borrowers/{self.borrower_id}"
                "/appeals", timeout=15,
                headers={"Authorization": f"Bearer {self.config.backend_token}"})
            result.appeals = appeals.json().get("appeals", []) if appeals.ok else []


def _agent_password() -> str:
    import os

    return os.environ.get("RELEND_DEMO_AGENT_PASSWORD", "relend-demo")
