"""Faults of issue 11, in-process: the assistant silent or wedged, a desk that stops between
the ack and the turn, the bot coming back after an outage, bad frames, typed intent syntax.

Rasa is the ``FakeRasa`` (desk_support), whose trackers behave like Rasa 3.6's: a failed
custom action answers ``200 []``, and a failed ``action_session_start`` on a session's first
message leaves the tracker wedged by the circuit breaker. The same faults against the real
servers: tests/e2e/test_faults.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from desk_support import (
    BOT_TEXT,
    BUTTONS,
    TYPING_OFF,
    TYPING_ON,
    AgentApi,
    AgentFeed,
    Chat,
    FakeRasa,
    borrower_token,
    make_settings,
    ownership,
    subprotocols,
)
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy import text as sql
from sqlalchemy.orm import Session, sessionmaker

from common.db import make_engine
from common.texts import text as catalog_text
from desk import service
from desk.config import DeskSettings
from desk.migrate import upgrade
from desk.models import Case, Message
from desk.service import utc_now

pytestmark = pytest.mark.timeout(30)

DOWN_ZH = catalog_text("desk.assistant_down", "zh")
BACK_ZH = catalog_text("desk.assistant_back", "zh")
LONG_AGO = timedelta(minutes=5)  # older than any turn may take (RELEND_RASA_TIMEOUT + 5 s)


def turns(client: TestClient):
    return client.app.state.desk.turns


def sweep(client: TestClient) -> None:
    """One round of what the desk's lifespan runs every few seconds."""
    client.portal.call(turns(client).sweep)


def states(sessions: sessionmaker[Session], conversation_id: str) -> list[tuple[str, str]]:
    with sessions() as session:
        return [(m.text, m.state) for m in session.execute(
            select(Message).where(Message.conversation_id == conversation_id,
                                  Message.sender == "borrower").order_by(Message.id)).scalars()]


def cases(sessions: sessionmaker[Session], conversation_id: str) -> list[tuple[str, str]]:
    with sessions() as session:
        return [(c.reason, c.status) for c in session.execute(
            select(Case).where(Case.conversation_id == conversation_id).order_by(Case.id)
        ).scalars()]


def wait_until(condition: Callable[[], Any], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)
    return result


# --- 1. an empty answer is a failed turn, and never wedges the conversation --------------------


def test_an_empty_answer_while_the_bot_owns_the_conversation_is_a_failed_turn(
        chat: Chat, fake_rasa: FakeRasa, agents: list[AgentApi], sessions):
    fake_rasa.actions_down = True  # Rasa answers 200 [] when a custom action fails

    ack = chat.message("我还清了为什么借不了")
    frames = chat.rest_of_turn(ack)

    assert frames[:2] == [TYPING_ON, TYPING_OFF]
    assert [(f["sender"], f["text"]) for f in frames[2:]] == [("system", DOWN_ZH)]
    [case] = agents[0].queue()
    assert (case["conversation_id"], case["reason"]) == (chat.conversation_id,
                                                         "assistant_unavailable")
    assert states(sessions, chat.conversation_id) == [("我还清了为什么借不了", "failed")]


def test_a_failed_first_message_of_a_session_does_not_wedge_the_tracker(
        chat: Chat, fake_rasa: FakeRasa):
    fake_rasa.actions_down = True
    chat.rest_of_turn(chat.message("你好"))

    # the failed action_session_start left ten fallbacks and no action_listen; the desk
    # appended one (right after the turn's turn_done), so Rasa's circuit breaker counts
    # from there
    events = fake_rasa.trackers[chat.conversation_id]
    wait_until(lambda: [e.get("name") for e in events if e["event"] == "action"][-2:] == [
        "action_default_fallback", "action_listen"], timeout=5)
    assert not fake_rasa.breaker_trips(events + [{"event": "user", "text": "x"}])


def slow_first_reset(client: TestClient, fake_rasa: FakeRasa) -> dict[str, int]:
    """Rasa takes 8 s to take the desk's first tracker reset (``.../tracker/events``), as
    when a hung action server holds the conversation's lock; ``left`` is 0 once it was
    asked."""
    slow = {"left": 1}

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/tracker/events") and slow["left"]:
            slow["left"] -= 1
            await asyncio.sleep(8)  # until the desk gives up (then it is cancelled)
        return await fake_rasa.handle(request)

    turns(client).rasa._client = httpx.AsyncClient(transport=httpx.MockTransport(handle),
                                                   base_url="http://rasa.test")
    return slow


def test_a_slow_reset_after_a_failed_turn_does_not_hold_up_the_next_message(
        client: TestClient, chat: Chat, fake_rasa: FakeRasa, sessions):
    """A failed first message of a session (the action server down); Rasa, still busy with
    that turn (a hung action server holds its conversation lock), would take 8 s to take the
    desk's reset (``action_listen``). The borrower is told at once; their next message, sent
    as soon as they read that, is answered well within Rasa's timeout (5 s here, which the
    unbounded reset waited out): the reset is cut at 2 s and done before that message goes
    to Rasa instead, so the circuit breaker does not trip and both are answered."""
    fake_rasa.actions_down = True
    slow_first_reset(client, fake_rasa)
    started = time.monotonic()
    chat.message("你好")
    while (frame := chat.recv()).get("sender") != "system":
        pass
    told_in = time.monotonic() - started
    assert frame["text"] == DOWN_ZH
    fake_rasa.actions_down = False
    chat.send({"type": "message", "text": "我的额度呢", "client_id": "next"})
    frames, second = [], None
    while True:
        frame = chat.recv()
        if frame.get("type") == "ack" and frame.get("client_id") == "next":
            second = frame["id"]
        elif second is not None and frame == {"type": "turn_done", "message_id": second}:
            break
        frames.append(frame)
    answered_in = time.monotonic() - started

    assert told_in < 1.5, told_in
    assert answered_in < 4.0, answered_in  # the unbounded reset: over 5 s
    said = [(f["sender"], f["text"]) for f in frames
            if f["type"] == "message" and f["sender"] != "borrower"]
    assert said == [("system", BACK_ZH), ("bot", BOT_TEXT), ("bot", BOT_TEXT)]
    assert fake_rasa.heard(chat.conversation_id) == ["你好", "你好", "我的额度呢"]
    assert states(sessions, chat.conversation_id) == [("你好", "done"), ("我的额度呢", "done")]
    assert not turns(client).reset_due


def test_a_reset_left_undone_is_made_when_an_agent_hands_the_conversation_back(
        client: TestClient, chat: Chat, fake_rasa: FakeRasa, agents: list[AgentApi]):
    """The reset after a failed first message did not get through (Rasa too slow); an agent
    takes the case and hands it back: the desk appends ``action_listen`` first, so the
    borrower's next message does not trip Rasa's circuit breaker."""
    fake_rasa.actions_down = True
    slow = slow_first_reset(client, fake_rasa)
    chat.rest_of_turn(chat.message("你好"))
    wait_until(lambda: not slow["left"] and turns(client).reset_due, timeout=5)
    time.sleep(2.5)  # the reset was cut (2 s): still due
    events = fake_rasa.trackers[chat.conversation_id]
    assert fake_rasa.breaker_trips(events + [{"event": "user", "text": "x"}])
    fake_rasa.actions_down = False
    [case] = agents[0].queue()
    assert agents[0].claim(case["case_id"]).status_code == 200
    assert agents[0].post(f"/api/agent/cases/{case['case_id']}/return", {}).status_code == 200

    # appended before the agent's events: listening, then resumed
    appended = [e.get("name") or e["event"] for e in events[-7:]]
    assert appended == ["action_default_fallback", "action_listen", "resume", "handoff_active",
                        "borrower_id", "language", "agent_note"], appended
    assert not fake_rasa.breaker_trips(events + [{"event": "user", "text": "x"}])
    assert not turns(client).reset_due


def test_when_the_action_server_is_back_the_conversation_answers_again(
        chat: Chat, fake_rasa: FakeRasa, agents: list[AgentApi], sessions):
    fake_rasa.actions_down = True
    chat.rest_of_turn(chat.message("你好"))
    fake_rasa.actions_down = False

    frames = chat.rest_of_turn(chat.message("我的额度呢"))

    # the unanswered first message is answered first, then this one; the case is closed
    said = [(f["sender"], f["text"]) for f in frames if f["type"] == "message"]
    assert said == [("system", BACK_ZH), ("bot", BOT_TEXT), ("bot", BOT_TEXT)]
    assert fake_rasa.heard(chat.conversation_id) == ["你好", "你好", "我的额度呢"]
    assert states(sessions, chat.conversation_id) == [("你好", "done"), ("我的额度呢", "done")]
    assert agents[0].queue() == []
    assert cases(sessions, chat.conversation_id) == [("assistant_unavailable", "closed")]


def test_an_empty_answer_while_an_agent_owns_it_is_normal(
        client: TestClient, chat: Chat, fake_rasa: FakeRasa, agents: list[AgentApi], sessions):
    case_id = client.post("/internal/handoffs", headers={"Authorization": "Bearer test-desk-token"},
                          json={"conversation_id": chat.conversation_id}).json()["case_id"]
    fake_rasa.trackers[chat.conversation_id] = [{"event": "pause"}]  # the handoff paused it

    assert chat.rest_of_turn(chat.message("有人吗")) == [TYPING_OFF]
    assert states(sessions, chat.conversation_id) == [("有人吗", "done")]
    assert [c["case_id"] for c in agents[0].queue()] == [case_id]


# --- 2. a message stored and acked is answered once, whatever stops in between -----------------


def orphan(sessions: sessionmaker[Session], conversation_id: str, text: str, state: str, *,
           age: timedelta = LONG_AGO, forwarded: timedelta | None = None,
           client_id: str = "lost-1") -> int:
    """A borrower message as a desk that stopped left it: stored and acked, its turn
    ``state`` (pending: never started; sending: forwarded ``forwarded`` ago)."""
    now = utc_now()
    with sessions() as session:
        message = Message(conversation_id=conversation_id, sender="borrower", text=text,
                          client_message_id=client_id, created_at=now - age, state=state,
                          state_at=now - age,
                          forwarded_at=now - forwarded if forwarded is not None else None)
        session.add(message)
        session.commit()
        return message.id


def test_a_message_left_pending_is_answered_when_the_desk_starts(
        make_app: Callable[[DeskSettings], FastAPI], settings: DeskSettings,
        fake_rasa: FakeRasa, sessions):
    with sessions() as session:
        conversation_id = service.open_conversation(session, "b-1001", "zh-CN", utc_now()).id
    message_id = orphan(sessions, conversation_id, "我的额度呢", "pending")

    with TestClient(make_app(settings)):  # the lifespan's first round finds it
        wait_until(lambda: states(sessions, conversation_id) == [("我的额度呢", "done")])

    assert [m["message"] for m in fake_rasa.messages] == ["我的额度呢"]
    with sessions() as session:
        stored = service.messages_after(session, conversation_id, 0)
    assert [(m.id, m.sender, m.text) for m in stored] == [
        (message_id, "borrower", "我的额度呢"), (message_id + 1, "bot", BOT_TEXT)]


def test_a_message_left_pending_is_answered_when_the_borrower_reconnects(
        open_chat, fake_rasa: FakeRasa, sessions):
    conversation_id = open_chat().conversation_id
    message_id = orphan(sessions, conversation_id, "我的额度呢", "pending",
                        age=timedelta(0))  # too young for the sweep: the reconnect runs it

    chat = open_chat()  # the page reconnects after the desk came back

    frames = chat.rest_of_turn({"id": message_id})
    assert frames[:2] == [TYPING_ON, TYPING_OFF]
    assert (frames[2]["sender"], frames[2]["text"]) == ("bot", BOT_TEXT)
    assert [m["message"] for m in fake_rasa.messages] == ["我的额度呢"]


def test_resending_a_pending_message_runs_its_turn_once(chat: Chat, fake_rasa: FakeRasa,
                                                        sessions):
    # left pending after this socket connected (another desk process stopped, say)
    message_id = orphan(sessions, chat.conversation_id, "我的额度呢", "pending",
                        age=timedelta(0), client_id="k-9")
    resend = {"type": "message", "text": "我的额度呢", "client_id": "k-9"}

    chat.send(resend)
    chat.send(resend)  # twice, at once: the page's outbox after two quick reconnects

    frames = chat.rest_of_turn({"id": message_id})
    assert [f for f in frames if f["type"] == "ack"] == [
        {"type": "ack", "client_id": "k-9", "id": message_id}] * 2
    assert [f["text"] for f in frames if f["type"] == "message"] == [BOT_TEXT]
    chat.turn("另一条")  # anything a second run had set off would have come before this
    assert [m["message"] for m in fake_rasa.messages] == ["我的额度呢", "另一条"]


def test_two_tasks_for_one_message_run_its_turn_once(client: TestClient, chat: Chat,
                                                     fake_rasa: FakeRasa, sessions):
    # as two desk processes on one database would: nothing shared but the message's state
    message_id = orphan(sessions, chat.conversation_id, "我的额度呢", "pending")
    desk = turns(client)

    async def both() -> None:
        await asyncio.gather(desk.borrower_turn(chat.conversation_id, message_id),
                             desk.borrower_turn(chat.conversation_id, message_id))

    client.portal.call(both)

    frames = chat.rest_of_turn({"id": message_id})
    assert [f["text"] for f in frames if f["type"] == "message"] == [BOT_TEXT]
    chat.assert_quiet()  # no second turn_done, nothing else
    assert [m["message"] for m in fake_rasa.messages] == ["我的额度呢"]


def test_a_turn_rasa_answered_before_the_desk_stopped_is_delivered_not_sent_again(
        client: TestClient, chat: Chat, fake_rasa: FakeRasa, sessions):
    # the desk forwarded it a minute ago and stopped before storing the answer
    message_id = orphan(sessions, chat.conversation_id, "我的额度呢", "sending",
                        forwarded=timedelta(minutes=1))
    fake_rasa.trackers[chat.conversation_id] = [
        {"event": "user", "text": "我的额度呢", "timestamp": time.time() - 59},
        {"event": "bot", "text": "您的额度是两万元。", "data": {"buttons": BUTTONS}},
        {"event": "action", "name": "action_listen"}]

    sweep(client)

    frames = chat.rest_of_turn({"id": message_id})
    [reply] = [f for f in frames if f["type"] == "message"]
    assert (reply["text"], reply["buttons"]) == ("您的额度是两万元。", BUTTONS)
    assert fake_rasa.messages == []  # not sent again
    assert states(sessions, chat.conversation_id) == [("我的额度呢", "done")]


def test_a_turn_rasa_never_saw_is_sent_after_the_desk_stopped(
        client: TestClient, chat: Chat, fake_rasa: FakeRasa, sessions):
    # the same text earlier in the conversation is not this message's answer
    fake_rasa.trackers[chat.conversation_id] = [
        {"event": "user", "text": "我的额度呢", "timestamp": time.time() - 3600},
        {"event": "bot", "text": "上次的回答"}, {"event": "action", "name": "action_listen"}]
    message_id = orphan(sessions, chat.conversation_id, "我的额度呢", "sending",
                        forwarded=timedelta(minutes=1))

    sweep(client)

    frames = chat.rest_of_turn({"id": message_id})
    assert [f["text"] for f in frames if f["type"] == "message"] == [BOT_TEXT]
    assert [m["message"] for m in fake_rasa.messages] == ["我的额度呢"]


def test_a_turn_in_progress_is_not_taken_by_the_sweep(client: TestClient, chat: Chat,
                                                     fake_rasa: FakeRasa, sessions):
    orphan(sessions, chat.conversation_id, "我的额度呢", "sending", age=timedelta(seconds=1),
           forwarded=timedelta(seconds=1))

    sweep(client)
    chat.assert_quiet()

    assert fake_rasa.calls == []
    assert states(sessions, chat.conversation_id) == [("我的额度呢", "sending")]


# --- 3. after an outage the bot takes the conversation back -------------------------------------


def test_when_the_assistant_is_back_an_unclaimed_case_returns_to_the_bot(
        client: TestClient, chat: Chat, fake_rasa: FakeRasa, feed: AgentFeed,
        agents: list[AgentApi], sessions):
    fake_rasa.failure = "connect"
    ack = chat.message("我的额度为什么没了？")
    *_, notice = chat.rest_of_turn(ack)
    assert notice["text"] == DOWN_ZH and feed.recv() == {"type": "queue"}

    sweep(client)  # still down: nothing changes
    assert [c["reason"] for c in agents[0].queue()] == ["assistant_unavailable"]
    chat.assert_quiet()

    fake_rasa.failure = None
    sweep(client)

    frames = chat.rest_of_turn(ack)
    assert [(f["sender"], f["text"]) for f in frames] == [("system", BACK_ZH), ("bot", BOT_TEXT)]
    assert feed.recv() == {"type": "queue"}  # the agents' queue changed
    assert agents[0].queue() == []
    assert ownership(client, chat.conversation_id) == {
        "conversation_id": chat.conversation_id, "owner": "bot", "case_id": None}
    assert states(sessions, chat.conversation_id) == [("我的额度为什么没了？", "done")]
    assert chat.turn("谢谢") == [chat.history()[-1]]  # the bot answers again


def test_a_case_an_agent_claimed_stays_with_the_agent(client: TestClient, chat: Chat,
                                                      fake_rasa: FakeRasa,
                                                      agents: list[AgentApi], sessions):
    fake_rasa.failure = "timeout"
    chat.rest_of_turn(chat.message("我的额度为什么没了？"))
    [case] = agents[0].queue()
    assert agents[0].claim(case["case_id"]).status_code == 200

    fake_rasa.failure = None
    sweep(client)

    assert [(c["case_id"], c["status"]) for c in agents[0].queue()] == [
        (case["case_id"], "claimed")]
    assert ownership(client, chat.conversation_id)["owner"] == "agent"
    # the agent answers it now: never sent to the bot again
    assert states(sessions, chat.conversation_id) == [("我的额度为什么没了？", "done")]
    assert len(fake_rasa.messages) == 1


def test_a_reply_rasa_finished_after_the_desk_gave_up_is_delivered_when_it_is_back(
        client: TestClient, chat: Chat, fake_rasa: FakeRasa, sessions):
    fake_rasa.failure = "late"  # Rasa answers in its tracker, the desk timed out
    ack = chat.message("我的额度为什么没了？")
    assert chat.rest_of_turn(ack)[-1]["text"] == DOWN_ZH

    fake_rasa.failure = None
    sweep(client)

    said = [(f["sender"], f["text"]) for f in chat.rest_of_turn(ack)]
    assert said == [("system", BACK_ZH), ("bot", BOT_TEXT)]
    assert fake_rasa.heard(chat.conversation_id) == ["我的额度为什么没了？"]  # handled once


def test_with_the_action_server_still_down_the_case_stays_and_tries_are_spaced(
        client: TestClient, chat: Chat, fake_rasa: FakeRasa, agents: list[AgentApi]):
    fake_rasa.actions_down = True
    chat.rest_of_turn(chat.message("你好"))

    sweep(client)  # Rasa answers /status, but still nothing to the message
    tried = len(fake_rasa.messages)
    sweep(client)  # too soon to try again

    assert tried == 2 and len(fake_rasa.messages) == 2
    assert [c["reason"] for c in agents[0].queue()] == ["assistant_unavailable"]
    chat.assert_quiet()  # no second notice


def test_a_hung_assistant_is_given_up_on_after_the_timeout(
        make_app, settings: DeskSettings, fake_rasa: FakeRasa):
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200, json=[])

    app = make_app(settings.copy(update={"rasa_timeout": 0.5}))
    app.state.desk.rasa._client = httpx.AsyncClient(transport=httpx.MockTransport(hang),
                                                    base_url="http://rasa.test")
    with TestClient(app) as client, client.websocket_connect(
            "/ws/chat", subprotocols=subprotocols(borrower_token())) as socket:
        chat = Chat(socket)
        started = time.monotonic()
        *_, notice = chat.rest_of_turn(chat.message("在吗"))
        elapsed = time.monotonic() - started

    assert notice["text"] == DOWN_ZH and elapsed < 3, elapsed


def test_the_default_rasa_timeout_is_10_seconds():
    assert DeskSettings().rasa_timeout == 10


@pytest.mark.parametrize(("failure", "cause"), [
    ("timeout", "timeout after 5 s"), ("connect", "unreachable: ConnectError"),
    ("500", "HTTP 500"), ("garbage", "not JSON"), ("actions_down", "empty answer")])
def test_log_lines_about_a_failed_turn_name_the_conversation_and_the_cause(
        chat: Chat, fake_rasa: FakeRasa, caplog, failure, cause):
    caplog.set_level(logging.INFO, logger="relend.desk")
    if failure == "actions_down":
        fake_rasa.actions_down = True
    else:
        fake_rasa.failure = failure

    chat.rest_of_turn(chat.message("在吗"))  # the turn fails
    chat.rest_of_turn(chat.message("还在吗"))  # and the try to hand the conversation back

    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) >= 2 and all(chat.conversation_id in line for line in lines), lines
    assert sum(cause in line for line in lines) >= 2, lines


# --- 4. bad frames: an error frame each, and the socket goes on ---------------------------------

DEEP = "[" * 6000 + "]" * 6000  # under the 16 KiB frame limit, far over json's recursion limit
# a lone surrogate (UTF-8 cannot carry one: as text the WebSocket layer closes 1007 itself)
LONE_SURROGATE_MESSAGE = b'{"type":"message","client_id":"k-8","text":"\xed\xa0\x80"}'


@pytest.mark.parametrize(("send", "error"), [
    pytest.param(lambda s: s.send_text("{not json"), {"type": "error", "code": "not_json"},
                 id="not-json"),
    pytest.param(lambda s: s.send_text('{"type":"message","client_id":"k-7","text":"hi"'),
                 {"type": "error", "code": "not_json", "client_id": "k-7"},
                 id="not-json-with-a-client-id"),
    pytest.param(lambda s: s.send_bytes(b'{"type": "hello"}'),
                 {"type": "error", "code": "binary_frame"}, id="binary"),
    pytest.param(lambda s: s.send_bytes(LONE_SURROGATE_MESSAGE),
                 {"type": "error", "code": "binary_frame", "client_id": "k-8"},
                 id="binary-lone-surrogate"),
    pytest.param(lambda s: s.send_text(DEEP), {"type": "error", "code": "not_json"},
                 id="deep-nesting"),
    pytest.param(lambda s: s.send_text('{"type":"message","client_id":"k-9","text":' + DEEP + "}"),
                 {"type": "error", "code": "not_json", "client_id": "k-9"},
                 id="deep-nesting-in-a-message"),
    pytest.param(lambda s: s.send_text('{"type":"hello","after":' + "9" * 5000 + "}"),
                 {"type": "error", "code": "not_json"}, id="a-5000-digit-number"),
    pytest.param(lambda s: s.send_json({"type": "hello", "after": 10**30}),
                 {"type": "error", "code": "bad_frame"}, id="hello-after-10**30"),
    pytest.param(lambda s: s.send_json({"type": "hello", "after": True}),
                 {"type": "error", "code": "bad_frame"}, id="hello-after-true"),
    pytest.param(lambda s: s.send_json({"type": "hello", "after": -1}),
                 {"type": "error", "code": "bad_frame"}, id="hello-after-negative"),
    pytest.param(lambda s: s.send_json({"type": "hello", "after": "7"}),
                 {"type": "error", "code": "bad_frame"}, id="hello-after-string"),
    pytest.param(lambda s: s.send_text('{"type":"message","client_id":"\\ud800","text":"hi"}'),
                 {"type": "error", "code": "bad_client_id"}, id="client-id-lone-surrogate"),
])
def test_a_bad_frame_gets_an_error_frame_and_the_socket_goes_on(
        chat: Chat, fake_rasa: FakeRasa, send, error):
    send(chat.socket)

    assert chat.recv() == error
    assert chat.history() == [] and fake_rasa.calls == []
    chat.turn("还在吗")  # the same socket still works


def test_a_rate_limit_refusal_never_echoes_an_unsafe_client_id(client: TestClient, chat: Chat):
    client.app.state.desk.frame_rate.take = lambda key: 3.0  # every frame over the limit
    chat.send({"type": "message", "client_id": "\ud800", "text": "hi"})
    assert chat.recv() == {"type": "error", "code": "rate_limited", "retry_after": 3.0}
    chat.send({"type": "message", "client_id": "ok-1", "text": "hi"})
    assert chat.recv()["client_id"] == "ok-1"


def test_a_frame_the_desk_fails_on_is_an_error_to_retry_not_a_dead_socket(
        chat: Chat, monkeypatch):
    def broken(*_args: Any) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr(service, "messages_after", broken)
    chat.send({"type": "hello", "after": 0})
    assert chat.recv() == {"type": "error", "code": "unavailable", "retry_after": 5}
    monkeypatch.undo()
    assert chat.history() == []


def test_the_agent_socket_ignores_bad_frames(client: TestClient, agents: list[AgentApi],
                                             chat: Chat):
    with client.websocket_connect("/ws/agent",
                                  subprotocols=subprotocols(agents[0].token)) as socket:
        socket.send_text("{not json")
        socket.send_bytes(b"\x00")
        chat.send({"type": "message", "text": "hi", "client_id": "a-1"})  # still connected:
        client.post("/internal/handoffs", headers={"Authorization": "Bearer test-desk-token"},
                    json={"conversation_id": chat.conversation_id})
        assert socket.receive_json() == {"type": "queue"}  # it hears the queue change


# --- 5. typed text is never an intent; the bot's buttons are ------------------------------------


@pytest.mark.parametrize(("typed", "forwarded"), [
    ("/restart", "\uff0frestart"),
    ('/request_human{"topic": "x"}', '\uff0frequest_human{"topic": "x"}'),
    ("  /affirm", "\uff0faffirm"),
    ("//restart", "\uff0f/restart"),
    ("我要 /restart", "我要 /restart"),  # a "/" inside the text means nothing to Rasa
])
def test_typed_intent_syntax_never_reaches_rasa_as_an_intent(chat: Chat, fake_rasa: FakeRasa,
                                                             typed, forwarded):
    chat.turn(typed)

    assert fake_rasa.messages[-1]["message"] == forwarded
    assert chat.history()[0]["text"] == typed.strip()  # stored as the borrower wrote it


def test_a_button_the_bot_offered_sends_its_payload(chat: Chat, fake_rasa: FakeRasa):
    fake_rasa.replies = [{"text": "要提交申诉吗？", "buttons": [
        {"title": "确认", "payload": "/affirm"}, {"title": "转人工", "payload": "/request_human"}]}]
    chat.turn("我要申诉")

    chat.turn("/request_human")  # pressed

    assert fake_rasa.messages[-1]["message"] == "/request_human"


def test_a_button_from_before_the_borrowers_last_message_is_typed_text(chat: Chat,
                                                                        fake_rasa: FakeRasa):
    fake_rasa.replies = [{"text": "要提交申诉吗？", "buttons": [{"title": "确认",
                                                                "payload": "/affirm"}]}]
    chat.turn("我要申诉")
    fake_rasa.replies = [{"text": "好的"}]
    chat.turn("算了")

    chat.turn("/affirm")  # the page disables those buttons: this was typed

    assert fake_rasa.messages[-1]["message"] == "\uff0faffirm"


# --- the migration -------------------------------------------------------------------------------


def test_messages_from_before_0004_have_no_turn_state_and_are_never_replayed(
        database_url: str, make_app, fake_rasa: FakeRasa):
    upgrade(database_url, "0003")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(sql(
                "INSERT INTO conversations (id, borrower_id, locale, owner, created_at, updated_at)"
                " VALUES ('c-old', 'b-1001', 'zh-CN', 'bot', '2026-11-30 12:00:00',"
                " '2026-11-30 12:00:00')"))
            connection.execute(sql(
                "INSERT INTO messages (conversation_id, sender, text, client_message_id,"
                " created_at) VALUES ('c-old', 'borrower', '旧消息', 'old-1',"
                " '2026-11-30 12:00:00')"))
        upgrade(database_url)
        with engine.connect() as connection:
            assert connection.execute(sql("SELECT state, state_at, forwarded_at FROM messages")
                                      ).all() == [(None, None, None)]
    finally:
        engine.dispose()

    with TestClient(make_app(make_settings(database_url))) as client:
        sweep(client)
        with client.websocket_connect("/ws/chat",
                                      subprotocols=subprotocols(borrower_token())) as socket:
            chat = Chat(socket)
            assert chat.conversation_id == "c-old"
            assert [m["text"] for m in chat.history()] == ["旧消息"]
    assert fake_rasa.calls == []
