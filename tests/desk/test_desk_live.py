"""The desk under uvicorn, spoken to by a real WebSocket client (the way browsers see it).

Only what the in-process TestClient cannot show: close codes after a real handshake, and a
whole borrower turn over the network while Rasa is unreachable (the demo login asks a fake
backend, tests/desk/fake_backend.py, served by uvicorn as well).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from desk_support import APP_SECRET, ASSISTANT_DOWN_ZH, agent_token, borrower_token
from fake_backend import BACKEND_TOKEN

from tests.conftest import serve_asgi

pytestmark = pytest.mark.timeout(60)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def refused_url() -> str:
    """A loopback URL nobody listens on: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture(scope="module")
def fake_backend() -> Iterator[str]:
    """The backend's demo-borrower route, under uvicorn."""
    with serve_asgi("fake_backend:app", dict(os.environ),
                    ["--app-dir", str(Path(__file__).resolve().parent)]) as base_url:
        yield base_url


@pytest.fixture
def live_desk(migrated_url: str, fake_backend: str) -> Iterator[str]:
    """``uvicorn desk.asgi:app`` on a socket bound here (no port race), Rasa unreachable."""
    env = {**os.environ, "RELEND_DESK_DB_URL": migrated_url, "RELEND_APP_SECRET": APP_SECRET,
           "RELEND_AGENT_SECRET": "another-agent-secret", "RELEND_RASA_URL": refused_url(),
           "RELEND_RASA_TIMEOUT": "5", "RELEND_BACKEND_URL": fake_backend,
           "RELEND_BACKEND_TOKEN": BACKEND_TOKEN, "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    with serve_asgi("desk.asgi:app", env, ["--ws", "websockets"]) as base_url:
        yield base_url.removeprefix("http://")


async def close_code(url: str, token: str) -> int | None:
    async with websockets.connect(url, subprotocols=["relend.v1", f"auth.{token}"]) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        return ws.close_code


@pytest.mark.parametrize(("path", "token"), [
    pytest.param("/ws/chat", borrower_token(ttl=-60), id="chat-expired"),  # past the 10 s leeway
    pytest.param("/ws/chat", "garbage", id="chat-garbage"),
    pytest.param("/ws/agent", agent_token(1, "李娜 Li Na"), id="agent-wrong-secret"),
])
def test_a_browser_is_told_4401_so_the_page_can_log_in_again(live_desk: str, path, token):
    assert asyncio.run(close_code(f"ws://{live_desk}{path}", token)) == 4401


async def borrower_turn(base: str, token: str) -> list[dict[str, Any]]:
    async with websockets.connect(f"ws://{base}/ws/chat",
                                  subprotocols=["relend.v1", f"auth.{token}"]) as ws:
        assert ws.subprotocol == "relend.v1"
        frames = [json.loads(await ws.recv())]
        await ws.send(json.dumps({"type": "message", "text": "你好", "client_id": "live-1"}))
        while frames[-1].get("type") != "turn_done":
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
        # the handoff state frames (desk/handoffs.py) are another test's subject
        return [f for f in frames if f.get("type") != "handoff"]


def test_a_borrower_turn_over_the_network_with_rasa_unreachable(live_desk: str):
    login = httpx.post(f"http://{live_desk}/api/demo/login",
                       json={"borrower_id": "demo-eligible"})
    session, ack, echo, typing_on, typing_off, notice, done = asyncio.run(
        borrower_turn(live_desk, login.json()["token"]))

    assert (session["type"], session["borrower_id"]) == ("session", "demo-eligible")
    assert ack == {"type": "ack", "client_id": "live-1", "id": echo["id"]}
    assert (echo["sender"], echo["text"]) == ("borrower", "你好")
    assert (typing_on, typing_off) == ({"type": "typing", "on": True},
                                       {"type": "typing", "on": False})
    assert (notice["sender"], notice["text"]) == ("system", ASSISTANT_DOWN_ZH)
    assert done == {"type": "turn_done", "message_id": echo["id"]}
