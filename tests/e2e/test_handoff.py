"""Handoff both ways through the real desk, Rasa and action server, and the pause guard:
while an agent owns a conversation the bot says nothing, even after /restart or a new session."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import requests
import websockets

from stack.services import Stack
from tests.conftest import run_coroutine
from tests.e2e.channel import api

pytestmark = pytest.mark.servers


class Borrower:
    """The in-app chat, as a WebSocket client of the desk."""

    def __init__(self, stack: Stack, borrower_id: str, locale: str = "zh-CN") -> None:
        desk = stack.config.url("desk")
        self.token = requests.post(f"{desk}/api/demo/login", timeout=10, json={
            "borrower_id": borrower_id, "locale": locale}).json()["token"]
        self.url = desk.replace("http://", "ws://") + "/ws/chat"
        self.received: list[dict[str, Any]] = []

    async def say(self, text: str, *, wait_for: str | None = "bot", timeout: float = 30
                  ) -> list[dict[str, Any]]:
        """Send a message; return the messages that arrive until one from ``wait_for``."""
        # the desk takes the token as a WebSocket subprotocol, never in the URL
        async with websockets.connect(self.url, subprotocols=["relend.v1",
                                                              f"auth.{self.token}"]) as socket:
            session = json.loads(await socket.recv())
            self.conversation_id = session["conversation_id"]
            await socket.send(json.dumps({"type": "message", "text": text,
                                          "client_id": uuid.uuid4().hex}))
            arrived: list[dict[str, Any]] = []
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    return arrived
                try:
                    frame = json.loads(await asyncio.wait_for(socket.recv(), remaining))
                except asyncio.TimeoutError:
                    return arrived
                if frame.get("type") == "message" and frame.get("sender") != "borrower":
                    arrived.append(frame)
                    if wait_for and frame["sender"] == wait_for:
                        return arrived

    def run(self, text: str, **kwargs: Any) -> list[dict[str, Any]]:
        return run_coroutine(self.say(text, **kwargs))


class Agent:
    def __init__(self, stack: Stack, username: str = "agent1") -> None:
        self.desk = stack.config.url("desk")
        token = requests.post(f"{self.desk}/api/agent/login", timeout=10, json={
            "username": username, "password": "relend-demo"}).json()["token"]
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.desk}{path}", headers=self.headers, timeout=30,
                                **kwargs)

    def case_for(self, conversation_id: str) -> dict[str, Any]:
        cases = self.call("GET", "/api/agent/queue").json()["cases"]
        return next(c for c in cases if c["conversation_id"] == conversation_id)


def test_handoff_agent_reply_pause_guard_and_return(live_stack: Stack) -> None:
    borrower = Borrower(live_stack, "demo-compliance")
    explained = borrower.run("我还清了为什么借不了")
    assert any("安全核查" in m["text"] for m in explained)

    handed = borrower.run("转人工")
    assert any("人工客服" in m["text"] for m in handed)
    agent, other = Agent(live_stack), Agent(live_stack, "agent2")
    case = agent.case_for(borrower.conversation_id)
    assert agent.call("POST", f"/api/agent/cases/{case['case_id']}/claim").ok
    assert other.call("POST", f"/api/agent/cases/{case['case_id']}/claim").status_code == 409

    detail = agent.call("GET", f"/api/agent/cases/{case['case_id']}").json()
    assert detail["borrower_id"] == "demo-compliance"
    assert detail["context"]["decision"]["reasons"][0]["code"] == "COMPLIANCE_HOLD"
    assert any("借不了" in line["text"] for line in detail["context"]["transcript"])

    # the agent's reply reaches the borrower, marked as coming from a person
    assert agent.call("POST", f"/api/agent/cases/{case['case_id']}/messages",
                      json={"text": "您好，我来帮您看一下核查进度"}).ok
    # while the agent owns it, the bot stays silent: a message, a /restart, a new session
    assert borrower.run("好的谢谢，我等一下", wait_for=None, timeout=6) == []
    assert borrower.run("/restart", wait_for=None, timeout=6) == []
    api(live_stack.config, "POST", f"/conversations/{borrower.conversation_id}/execute",
        json={"name": "action_session_start"}).raise_for_status()
    assert borrower.run("还在吗", wait_for=None, timeout=6) == []
    tracker = api(live_stack.config, "GET",
                  f"/conversations/{borrower.conversation_id}/tracker").json()
    assert tracker["paused"] is True
    messages = agent.call("GET", f"/api/agent/cases/{case['case_id']}").json()["messages"]
    assert {"好的谢谢，我等一下", "还在吗"} <= {m["text"] for m in messages}
    assert any(m["sender"] == "agent" for m in messages)

    # the agent hands back with a note; the bot resumes knowing it, and answers again
    assert agent.call("POST", f"/api/agent/cases/{case['case_id']}/return",
                      json={"note": "安全核查已完成"}).ok
    after = borrower.run("那我现在能借了吗")
    assert after and after[-1]["sender"] == "bot"
    assert "没完全理解" not in after[-1]["text"]  # understood, like any other turn
