"""Several desk processes behind a load balancer behave as one desk: two real desks
(``uvicorn desk.asgi:app``) on one PostgreSQL database and one Redis pub/sub channel, with the
fake Rasa served over HTTP (fake_rasa_server.py).

- a borrower on desk A and their agent on desk B see each other's messages live, and queue
  updates reach agents on both desks;
- two desks opening a case for one conversation at once open one; two sockets of a new
  borrower on two desks at once get one conversation (the database enforces both);
- messages of one conversation sent to the two desks are answered once each, in order;
- Redis cut for a moment (a TCP proxy between the desks and the shared Redis, which keeps
  running): the messages still arrive (live once the desk listens again, or by replay), and
  the desk's log says so, naming the conversation.

Needs PostgreSQL and Redis on 127.0.0.1 (skipped without them; a failure with ``CI=true``).
Each test has a PostgreSQL schema, Redis database 11 and a pub/sub channel of its own.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import websockets
from desk_support import (
    AGENT_SECRET,
    APP_SECRET,
    CHANNEL_SECRET,
    INTERNAL_TOKEN,
    RASA_JWT_SECRET,
    agent_token,
    bearer,
    borrower_token,
)
from fake_rasa_server import REPLY_PREFIX
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from desk import service
from desk.models import Agent, Case, Conversation, Message
from desk.service import utc_now
from tests.conftest import run_coroutine
from tests.security.live_support import Chat, subprotocols

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("RELEND_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")

pytestmark = [
    pytest.mark.servers, pytest.mark.postgres, pytest.mark.timeout(180),
    pytest.mark.parametrize("db_kind", ["postgresql"], indirect=True),
]


# --- servers -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        return REDIS_URL
    except redis.RedisError as exc:
        message = (f"Redis not reachable at {REDIS_URL} ({exc}); start it or set "
                   "RELEND_TEST_REDIS_URL; CI=true makes this a failure")
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@contextmanager
def serve(app: str, env: dict[str, str], log: Path, extra: list[str] | None = None
          ) -> Iterator[str]:
    """``uvicorn <app>`` on a socket bound here (no port race), its output in ``log``."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", app, "--fd", str(listener.fileno()),
             *(extra or []), "--log-level", "warning", "--no-access-log"],
            cwd=PROJECT_ROOT, env=env, pass_fds=[listener.fileno()], stdout=out,
            stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        try:
            assert httpx.get(f"{base_url}/health", timeout=30).status_code == 200
        except (httpx.HTTPError, AssertionError) as exc:
            process.kill()
            process.wait(10)
            pytest.fail(f"{app} did not answer /health ({exc!r}):\n{log.read_text()}")
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        listener.close()


class TcpProxy:
    """A TCP proxy (its own thread and event loop) that a test can ``cut`` -- every
    connection dropped, new ones refused -- and ``restore`` on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self._call(self._listen())

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    async def _listen(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers -= {writer, up_writer}

    async def _cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    def cut(self) -> None:
        self._call(self._cut())

    def restore(self) -> None:
        self._call(self._listen())

    async def _stop(self) -> None:
        await self._cut()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        self._call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def fake_rasa(tmp_path: Path) -> Iterator[str]:
    env = {**os.environ, "FAKE_RASA_DELAY": "0.3"}
    with serve("fake_rasa_server:app", env, tmp_path / "rasa.log",
               ["--app-dir", str(Path(__file__).resolve().parent)]) as url:
        yield url


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[TcpProxy]:
    url = httpx.URL(redis_url.replace("redis://", "http://"))
    proxy = TcpProxy(url.host, url.port or 6379)
    yield proxy
    proxy.close()


Desks = tuple[str, str]  # base URLs of desk A and desk B


@pytest.fixture
def start_desks(migrated_url: str, fake_rasa: str, redis_url: str, tmp_path: Path
                ) -> Iterator[Callable[..., Desks]]:
    """``start_desks(redis_url=...)``: desk A and desk B on the test's database and one
    channel of the test's own (their logs: ``tmp_path / "desk-a.log"``, ``"desk-b.log"``)."""
    channel = f"relend-test:desk:{uuid.uuid4().hex[:10]}"
    with ExitStack() as stack:
        def start(redis: str = redis_url) -> Desks:
            env = {**os.environ, "RELEND_ENV": "sandbox", "RELEND_DESK_DB_URL": migrated_url,
                   "RELEND_DESK_REDIS_URL": redis, "RELEND_DESK_REDIS_CHANNEL": channel,
                   "RELEND_APP_SECRET": APP_SECRET, "RELEND_AGENT_SECRET": AGENT_SECRET,
                   "RELEND_DESK_TOKEN": INTERNAL_TOKEN, "RELEND_CHANNEL_SECRET": CHANNEL_SECRET,
                   "RELEND_RASA_JWT_SECRET": RASA_JWT_SECRET, "RELEND_RASA_URL": fake_rasa,
                   "RELEND_RASA_TIMEOUT": "5", "RELEND_DESK_MESSAGES_PER_MINUTE": "600",
                   "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
            urls = tuple(stack.enter_context(serve("desk.asgi:app", env,
                                                   tmp_path / f"desk-{name}.log",
                                                   ["--ws", "websockets"]))
                         for name in ("a", "b"))
            for url in urls:  # each listens on the channel before the test goes on
                wait_until(lambda u=url: listening(u, channel, redis_url), 15, "desk listens")
            return urls  # type: ignore[return-value]

        yield start


def listening(_desk: str, channel: str, redis_url: str) -> bool:
    """Both desks are subscribed to the channel (Redis counts the subscribers)."""
    counts = dict(redis.Redis.from_url(redis_url).pubsub_numsub(channel))
    return counts.get(channel.encode(), 0) >= 2


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting: {what}"
        time.sleep(0.05)


@pytest.fixture
def agent_ids(sessions: sessionmaker[Session]) -> list[int]:
    with sessions() as session:
        return list(session.execute(select(Agent.id).order_by(Agent.id)).scalars())


def ws(url: str) -> str:
    return url.replace("http://", "ws://")


async def open_chat(desk: str, borrower_id: str) -> Chat:
    """A borrower's chat socket, once its ``session`` frame came (a live frame for the
    conversation may come first: it stays in ``pending``)."""
    socket = await websockets.connect(f"{ws(desk)}/ws/chat", ping_interval=None,
                                      subprotocols=subprotocols(borrower_token(borrower_id)))
    chat = Chat(socket)
    chat.session = await chat.wait_for(lambda f: f.get("type") == "session", 15)
    chat.conversation_id = chat.session["conversation_id"]
    chat.borrower_id = chat.session["borrower_id"]
    return chat


class AgentSocket:
    def __init__(self, socket: websockets.WebSocketClientProtocol) -> None:
        self.socket = socket
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, desk: str, agent_id: int) -> AgentSocket:
        return cls(await websockets.connect(f"{ws(desk)}/ws/agent", ping_interval=None,
                                            subprotocols=subprotocols(agent_token(agent_id))))

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool],
                       timeout: float = 15) -> dict[str, Any]:
        import json

        for frame in self.frames:
            if predicate(frame):
                self.frames.remove(frame)
                return frame
        deadline = time.monotonic() + timeout
        while True:
            frame = json.loads(await asyncio.wait_for(self.socket.recv(),
                                                      max(0.01, deadline - time.monotonic())))
            if predicate(frame):
                return frame
            self.frames.append(frame)


def is_queue(frame: dict[str, Any]) -> bool:
    return frame.get("type") == "queue"


def hand_off(desk: str, conversation_id: str) -> httpx.Response:
    return httpx.post(f"{desk}/internal/handoffs", headers=bearer(INTERNAL_TOKEN), timeout=30,
                      json={"conversation_id": conversation_id, "language": "zh",
                            "reason": "borrower_asked"})


# --- a borrower and their agent on different desks -----------------------------------------------


def test_a_borrower_on_one_desk_and_their_agent_on_another_see_each_other_live(
        start_desks: Callable[..., Desks], agent_ids: list[int]):
    desk_a, desk_b = start_desks()
    agent, other_agent = agent_ids

    async def scenario() -> None:
        chat = await open_chat(desk_a, "b-2001")
        console_b = await AgentSocket.open(desk_b, agent)
        console_a = await AgentSocket.open(desk_a, other_agent)

        response = hand_off(desk_b, chat.conversation_id)  # the action server reached desk B
        assert response.status_code == 200, response.text
        case_id = response.json()["case_id"]
        await console_a.wait_for(is_queue)  # the queue update reached the agents on both desks
        await console_b.wait_for(is_queue)

        claim = httpx.post(f"{desk_b}/api/agent/cases/{case_id}/claim", timeout=30,
                           headers=bearer(agent_token(agent)))
        assert claim.status_code == 200, claim.text
        await console_a.wait_for(is_queue)
        await console_b.wait_for(is_queue)

        reply = httpx.post(f"{desk_b}/api/agent/cases/{case_id}/messages", timeout=30,
                           headers=bearer(agent_token(agent)), json={"text": "我是人工客服小王"})
        assert reply.status_code == 200, reply.text
        heard = await chat.wait_for(lambda f: f.get("type") == "message"
                                    and f.get("sender") == "agent", 15)
        assert heard["text"] == "我是人工客服小王"

        ack = await chat.message("我的额度为什么降了？")
        assert ack["type"] == "ack", ack
        seen = await console_b.wait_for(lambda f: f.get("type") == "message"
                                        and f.get("sender") == "borrower", 15)
        assert (seen["id"], seen["sender"], seen["text"]) == (
            ack["id"], "borrower", "我的额度为什么降了？")
        await chat.close()
        await console_a.socket.close()
        await console_b.socket.close()

    run_coroutine(scenario())


# --- the database keeps one conversation per borrower, one open case per conversation ----------


def test_two_desks_opening_a_case_for_one_conversation_at_once_open_one(
        start_desks: Callable[..., Desks], sessions: sessionmaker[Session]):
    desk_a, desk_b = start_desks()
    conversations = []
    with sessions() as session:
        for n in range(8):
            conversations.append(service.open_conversation(
                session, f"b-30{n:02d}", "zh-CN", utc_now()).id)

    async def race(conversation_id: str) -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            answers = await asyncio.gather(*(
                client.post(f"{desk}/internal/handoffs", headers=bearer(INTERNAL_TOKEN),
                            json={"conversation_id": conversation_id, "reason": "borrower_asked"})
                for desk in (desk_a, desk_b, desk_a, desk_b)))
        assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
        return [a.json()["case_id"] for a in answers]

    async def races() -> list[list[int]]:
        return list(await asyncio.gather(*(race(c) for c in conversations)))

    case_ids = run_coroutine(races())

    with sessions() as session:
        for conversation_id, ids in zip(conversations, case_ids, strict=True):
            cases = session.execute(select(Case).where(
                Case.conversation_id == conversation_id)).scalars().all()
            assert len(cases) == 1, (conversation_id, ids)
            assert set(ids) == {cases[0].id}
            assert session.get(Conversation, conversation_id).owner == "agent"


def test_two_sockets_of_a_new_borrower_on_two_desks_at_once_share_one_conversation(
        start_desks: Callable[..., Desks], sessions: sessionmaker[Session]):
    desk_a, desk_b = start_desks()

    async def both(borrower_id: str) -> set[str]:
        chats = await asyncio.gather(*(open_chat(desk, borrower_id)
                                       for desk in (desk_a, desk_b, desk_a, desk_b)))
        for chat in chats:
            await chat.close()
        return {chat.conversation_id for chat in chats}

    async def all_of_them() -> list[set[str]]:
        return list(await asyncio.gather(*(both(f"b-50{n:02d}") for n in range(8))))

    for n, ids in enumerate(run_coroutine(all_of_them())):
        assert len(ids) == 1, ids
        with sessions() as session:
            stored = session.execute(select(Conversation.id).where(
                Conversation.borrower_id == f"b-50{n:02d}")).scalars().all()
        assert stored == list(ids)


# --- turns across desks ------------------------------------------------------------------------


def test_messages_of_one_conversation_sent_to_two_desks_are_answered_once_each_in_order(
        start_desks: Callable[..., Desks], fake_rasa: str, sessions: sessionmaker[Session]):
    """The borrower has a socket on each desk and alternates; Rasa takes 0.3 s a turn, so
    each message arrives while the previous one is still with Rasa on the other desk."""
    desk_a, desk_b = start_desks()
    texts = [f"第{n}条消息" for n in range(1, 7)]

    async def scenario() -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
        on_a = await open_chat(desk_a, "b-6001")
        on_b = await open_chat(desk_b, "b-6001")
        assert on_a.conversation_id == on_b.conversation_id
        acks = []
        for n, text in enumerate(texts):
            chat = on_a if n % 2 == 0 else on_b
            acks.append(await chat.message(text))
        assert [a["type"] for a in acks] == ["ack"] * len(texts), acks
        for chat in (on_a, on_b):  # each socket sees every turn end
            for ack in acks:
                await chat.wait_for(lambda f, i=ack["id"]: f.get("type") == "turn_done"
                                    and f.get("message_id") == i, 30)
        frames_a, frames_b = list(on_a.pending), list(on_b.pending)
        await on_a.close()
        await on_b.close()
        return on_a.conversation_id, frames_a, frames_b

    conversation_id, frames_a, frames_b = run_coroutine(scenario())

    expected = [REPLY_PREFIX + text for text in texts]
    heard = httpx.get(f"{fake_rasa}/_test/heard/{conversation_id}", timeout=10).json()
    assert heard["heard"] == texts  # sent to Rasa once each, in order
    for frames in (frames_a, frames_b):  # both sockets got every reply live, in order
        assert [f["text"] for f in frames if f.get("type") == "message"
                and f.get("sender") == "bot"] == expected
    with sessions() as session:
        stored = session.execute(select(Message).where(
            Message.conversation_id == conversation_id).order_by(Message.id)).scalars().all()
    # the borrower did not wait for answers: stored in the order sent, answers in that order,
    # each after its message
    borrower = [m for m in stored if m.sender == "borrower"]
    bot = [m for m in stored if m.sender == "bot"]
    assert [m.text for m in borrower] == texts and [m.text for m in bot] == expected
    assert all(b.id > m.id for m, b in zip(borrower, bot, strict=True))
    assert len(stored) == 2 * len(texts) and {m.state for m in borrower} == {"done"}


# --- Redis away for a moment ------------------------------------------------------------------


def test_with_redis_cut_for_a_moment_messages_still_arrive_and_the_log_says_why(
        redis_proxy: TcpProxy, start_desks: Callable[..., Desks], agent_ids: list[int],
        tmp_path: Path):
    desk_a, desk_b = start_desks(f"redis://127.0.0.1:{redis_proxy.port}/11")
    agent = agent_ids[1]

    async def scenario() -> str:
        chat = await open_chat(desk_a, "b-7001")
        case_id = hand_off(desk_b, chat.conversation_id).json()["case_id"]
        claim = httpx.post(f"{desk_b}/api/agent/cases/{case_id}/claim", timeout=30,
                           headers=bearer(agent_token(agent)))
        assert claim.status_code == 200, claim.text

        redis_proxy.cut()  # the shared Redis keeps running; only these desks lose it
        reply = httpx.post(f"{desk_b}/api/agent/cases/{case_id}/messages", timeout=30,
                           headers=bearer(agent_token(agent)), json={"text": "断线时发的回复"})
        assert reply.status_code == 200, reply.text
        await asyncio.sleep(1.5)  # both desks notice
        redis_proxy.restore()

        # the page's way: on a close, reconnect and ask for what came after the last id
        last_id = max([f["id"] for f in chat.pending if f.get("type") == "message"] or [0])
        deadline, found = time.monotonic() + 30, False
        while not found:
            assert time.monotonic() < deadline, "the agent's reply never reached the borrower"
            try:  # live (also a frame that came before a new socket's session frame)
                frame = await chat.wait_for(lambda f: f.get("type") == "message"
                                            and f.get("sender") == "agent", 2)
                assert frame["text"] == "断线时发的回复"
                found = True
            except asyncio.TimeoutError:
                continue
            except websockets.ConnectionClosed as closed:
                assert closed.code == 1012  # the desk listens again: replay
                chat = await open_chat(desk_a, "b-7001")
                history = await chat.history(after=last_id)
                found = any(m["sender"] == "agent" and m["text"] == "断线时发的回复"
                            for m in history)
        await chat.close()
        return chat.conversation_id

    conversation_id = run_coroutine(scenario())
    # the frame desk B held went out once Redis was back
    wait_until(lambda: "Redis is back for publishing" in (tmp_path / "desk-b.log").read_text(),
               15, "desk B publishes what it held")
    log_a = (tmp_path / "desk-a.log").read_text()
    log_b = (tmp_path / "desk-b.log").read_text()
    assert "live fan-out: lost Redis" in log_a
    assert "listening on Redis again" in log_a and conversation_id in log_a
    assert "Redis unavailable for the live fan-out" in log_b
    back = next(line for line in log_b.splitlines() if "Redis is back for publishing" in line)
    assert f"conversation {conversation_id}" in back.split("frames waited for:")[1], back
    assert "Traceback" not in log_a + log_b
