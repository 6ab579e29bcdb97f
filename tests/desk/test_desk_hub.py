"""The hub's Redis fan-out (desk/hub.py) on the local Redis, two hubs in one process standing
for two desks: frames cross once, in order; frames that waited too long for Redis are
dropped and their sockets, on the other desk, are told to replay (1012) once Redis is back.
The desks themselves, over the network: test_desk_scaleout.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from test_desk_scaleout import REDIS_URL, TcpProxy

import desk.hub
from desk.hub import Hub
from tests.conftest import run_coroutine

pytestmark = [pytest.mark.servers, pytest.mark.timeout(60)]


class FakeSocket:
    """What the hub uses of a WebSocket: what it was sent, and how it was closed."""

    def __init__(self) -> None:
        self.frames: list[Any] = []

    async def send_json(self, payload: dict[str, Any]) -> None:
        self.frames.append(payload)

    async def close(self, code: int = 1000) -> None:
        self.frames.append(("closed", code))


@pytest.fixture
def proxy(redis_url: str) -> Iterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", int(redis_url.split(":")[2].split("/")[0]))
    yield proxy
    proxy.close()


@pytest.fixture
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


def channel() -> str:
    return f"relend-test:hub:{uuid.uuid4().hex[:10]}"


async def settle(check, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_frames_reach_the_other_desk_once_and_in_order(redis_url: str):
    name = channel()

    async def scenario() -> tuple[FakeSocket, FakeSocket, FakeSocket, FakeSocket]:
        desk_a, desk_b = Hub(redis_url, name), Hub(redis_url, name)
        await desk_a.start()
        await desk_b.start()
        borrower_a, borrower_b = FakeSocket(), FakeSocket()
        agent_a, agent_b = FakeSocket(), FakeSocket()
        desk_a.add_borrower("c-1", borrower_a)
        desk_b.add_borrower("c-1", borrower_b)
        desk_a.add_agent(7, agent_a)
        desk_b.add_agent(8, agent_b)
        for n in range(20):
            await desk_a.to_borrower("c-1", {"type": "message", "id": n})
        await desk_b.to_agent(7, {"type": "message", "id": 100})
        await desk_a.to_agents({"type": "queue"})
        await desk_a.disconnect_agent(8)
        await settle(lambda: len(borrower_b.frames) == 20 and len(agent_b.frames) == 2
                     and len(agent_a.frames) == 2)
        await asyncio.sleep(0.3)  # nothing more comes
        await desk_a.close()
        await desk_b.close()
        return borrower_a, borrower_b, agent_a, agent_b

    borrower_a, borrower_b, agent_a, agent_b = run_coroutine(scenario())
    sent = [{"type": "message", "id": n} for n in range(20)]
    assert borrower_a.frames == sent and borrower_b.frames == sent  # each once, in order
    # from desk B, and from its own desk: no order between the two
    assert sorted(agent_a.frames, key=str) == [{"type": "message", "id": 100}, {"type": "queue"}]
    assert agent_b.frames == [{"type": "queue"}, ("closed", 4401)]  # logged out on desk A


def test_frames_that_waited_too_long_for_redis_make_their_sockets_replay(
        redis_url: str, proxy: TcpProxy, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(desk.hub, "HOLD_SECONDS", 1.0)
    name = channel()

    async def scenario() -> tuple[FakeSocket, FakeSocket]:
        loop = asyncio.get_running_loop()
        desk_a = Hub(f"redis://127.0.0.1:{proxy.port}/11", name)  # loses Redis
        desk_b = Hub(redis_url, name)  # keeps it
        await desk_a.start()
        await desk_b.start()
        gone, other = FakeSocket(), FakeSocket()
        desk_b.add_borrower("c-gone", gone)
        desk_b.add_borrower("c-other", other)
        await loop.run_in_executor(None, proxy.cut)
        await desk_a.to_borrower("c-gone", {"type": "message", "id": 1})
        await asyncio.sleep(2)  # longer than HOLD_SECONDS: dropped
        await loop.run_in_executor(None, proxy.restore)
        await settle(lambda: gone.frames != [])
        await desk_a.close()
        await desk_b.close()
        return gone, other

    gone, other = run_coroutine(scenario())
    assert gone.frames == [("closed", 1012)]  # replays from the database
    assert other.frames == []  # missed nothing: stays
