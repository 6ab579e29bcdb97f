"""Handoff both ways through the real desk, Rasa and action server, and the pause guard:
while an agent owns a conversation the bot says nothing, even after /restart or a new session.

The desk drops whatever the assistant says while an agent owns the conversation, so what the
borrower receives cannot show the pause. The assistant's own tracker (Rasa's HTTP API, with a
JWT) can: each borrower message reaches Rasa, and Rasa must log it without a word in reply.
"""

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
from tests.e2e.channel import api, say

pytestmark = pytest.mark.servers


class Borrower:
    """The in-app chat, as a WebSocket client of the desk."""

    def __init__(self, stack: Stack, borrower_id: str, locale: str = "zh-CN") -> None:
        desk = stack.config.url("desk")
        self.token = requests.post(f"{desk}/api/demo/login", timeout=10, json={
            "borrower_id": borrower_id, "locale": locale}).json()["token"]
        self.url = desk.replace("http://", "ws://") + "/ws/chat"
        self.received: list[dict[str, Any]] = []

    async def say(self, text: str, *, until: str = "bot", timeout: float = 60
                  ) -> list[dict[str, Any]]:
        """Send a message; return the messages that arrive until the first from the bot
        (``until="bot"``), or until the desk says this message's turn is over whatever the
        assistant answered (``until="turn_done"``). Nothing conclusive in time fails."""
        # the desk takes the token as a WebSocket subprotocol, never in the URL
        async with websockets.connect(self.url, subprotocols=["relend.v1",
                                                              f"auth.{self.token}"]) as socket:
            session = json.loads(await socket.recv())
            self.conversation_id = session["conversation_id"]
            client_id = uuid.uuid4().hex
            await socket.send(json.dumps({"type": "message", "text": text,
                                          "client_id": client_id}))
            arrived: list[dict[str, Any]] = []

            async def collect() -> list[dict[str, Any]]:
                message_id = None
                while True:
                    frame = json.loads(await socket.recv())
                    if frame.get("type") == "ack" and frame.get("client_id") == client_id:
                        message_id = frame["id"]
                    elif frame.get("type") == "turn_done" and until == "turn_done" \
                            and message_id is not None and frame.get("message_id") == message_id:
                        return arrived
                    elif frame.get("type") == "message" and frame.get("sender") != "borrower":
                        arrived.append(frame)
                        if frame["sender"] == until:
                            return arrived

            try:
                return await asyncio.wait_for(collect(), timeout)
            except asyncio.TimeoutError:
                raise AssertionError(f"no {until} for {text!r} within {timeout} s; "
                                     f"got {arrived}") from None

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


class Assistant:
    """Rasa's own view of one conversation: its tracker, all events since the first."""

    def __init__(self, stack: Stack, conversation_id: str) -> None:
        self.stack, self.conversation_id = stack, conversation_id

    def tracker(self) -> dict[str, Any]:
        response = api(self.stack.config, "GET", f"/conversations/{self.conversation_id}/tracker",
                       params={"include_events": "ALL"})
        response.raise_for_status()
        return response.json()

    def since_message(self, text: str) -> list[dict[str, Any]]:
        """The events from the borrower's latest message ``text`` on (it must be there: the
        desk forwards every message, an agent's conversation too)."""
        events = self.tracker()["events"]
        heard = [i for i, e in enumerate(events) if e["event"] == "user" and e.get("text") == text]
        assert heard, f"Rasa never got {text!r}: {[e['event'] for e in events]}"
        return events[heard[-1]:]

    def assert_paused_and_silent_since(self, text: str) -> list[dict[str, Any]]:
        events = self.since_message(text)
        said = [e.get("text") for e in events if e["event"] == "bot"]
        assert said == [], f"the assistant answered {text!r} while an agent owns it: {said}"
        assert self.tracker()["paused"] is True, \
            f"not paused after {text!r}: {[(e['event'], e.get('name')) for e in events]}"
        return events


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(e["event"], e.get("name") or e.get("text")) for e in events
            if e["event"] in ("user", "bot", "action", "pause", "resume", "restart",
                              "session_started")]


def test_handoff_agent_reply_pause_guard_and_return(live_stack: Stack) -> None:
    borrower = Borrower(live_stack, "demo-compliance")
    explained = borrower.run("我还清了为什么借不了")
    assert any("安全核查" in m["text"] for m in explained)

    handed = borrower.run("转人工")
    assert any("人工客服" in m["text"] for m in handed)
    assistant = Assistant(live_stack, borrower.conversation_id)
    assert assistant.tracker()["paused"] is True  # the handoff paused the assistant
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

    # while the agent owns it, the assistant hears every message and says nothing
    assert borrower.run("好的谢谢，我等一下", until="turn_done") == []
    assistant.assert_paused_and_silent_since("好的谢谢，我等一下")

    # a borrower who types "/restart" sends text: the desk never lets typed text be read as
    # an intent (issue 11), so nothing restarts and the assistant stays silent
    assert borrower.run("/restart", until="turn_done") == []
    typed = assistant.assert_paused_and_silent_since("\uff0frestart")
    assert ("restart", None) not in kinds(typed), kinds(typed)

    # /restart is the one message Rasa handles while paused (sent here as any channel could):
    # action_restart clears the conversation, asks the desk who owns it, and pauses again
    say(live_stack.config, borrower.conversation_id, "/restart", "demo-compliance")
    restarted = assistant.assert_paused_and_silent_since("/restart")
    assert {("action", "action_restart"), ("restart", None)} <= set(kinds(restarted)), \
        kinds(restarted)  # the conversation really was restarted, and is paused after it
    assert {"event": "slot", "name": "handoff_active", "value": True} in [
        {k: e.get(k) for k in ("event", "name", "value")} for e in restarted]

    # a new session (as after the session expires): action_session_start pauses again
    # (the tracker in /execute's answer is the one from before the action: read it afresh)
    api(live_stack.config, "POST", f"/conversations/{borrower.conversation_id}/execute",
        json={"name": "action_session_start"}).raise_for_status()
    tracker = assistant.tracker()
    last_session = [i for i, e in enumerate(tracker["events"]) if e["event"] == "session_started"]
    after_start = tracker["events"][last_session[-1]:]
    assert ("pause", None) in kinds(after_start), kinds(after_start)
    assert tracker["paused"] is True

    assert borrower.run("还在吗", until="turn_done") == []
    assistant.assert_paused_and_silent_since("还在吗")
    messages = agent.call("GET", f"/api/agent/cases/{case['case_id']}").json()["messages"]
    assert {"好的谢谢，我等一下", "还在吗"} <= {m["text"] for m in messages}
    assert any(m["sender"] == "agent" for m in messages)

    # the agent hands back with a note; the bot resumes knowing it, and answers again
    assert agent.call("POST", f"/api/agent/cases/{case['case_id']}/return",
                      json={"note": "安全核查已完成"}).ok
    assert assistant.tracker()["paused"] is False
    after = borrower.run("那我现在能借了吗")
    assert after and after[-1]["sender"] == "bot"
    assert "没完全理解" not in after[-1]["text"]  # understood, like any other turn
    assert [e for e in assistant.since_message("那我现在能借了吗") if e["event"] == "bot"]
