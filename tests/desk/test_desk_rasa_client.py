"""desk/rasa_client.py over a real HTTP server on loopback: the kept-alive aiohttp session the
desk uses answers, and fails with the same causes, as the httpx client tests hand it; its
calls reuse one connection; idle connections are dropped before Rasa's Sanic drops them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from aiohttp import web

from common.signing import DEFAULT_WINDOW_SECONDS, MessageFields, Verifier
from desk.rasa_client import CHANNEL_PATH, KEEPALIVE_SECONDS, AssistantUnavailable, RasaClient

JWT_SECRET, CHANNEL_SECRET = "j" * 40, "c" * 40
REPLIES = [{"recipient_id": "c-1", "text": "您好，我是助手"}]


class Rasa:
    """What the desk calls on Rasa, with ways to misbehave; notes the connections used."""

    def __init__(self) -> None:
        self.connections: set[int] = set()
        self.bodies: list[Any] = []
        self.mode = "ok"

    async def channel(self, request: web.Request) -> web.StreamResponse:
        self.connections.add(id(request.transport))
        body = json.loads(await request.read())
        self.bodies.append(body)
        Verifier(CHANNEL_SECRET, window=DEFAULT_WINDOW_SECONDS).verify(MessageFields(
            sender=body["sender"], text=body["message"], **body["metadata"]), request.headers)
        if self.mode == "error":
            return web.json_response({"message": "internal"}, status=500)
        if self.mode == "html":
            return web.Response(text="<html>bad gateway</html>", content_type="text/html")
        if self.mode == "redirect":
            raise web.HTTPFound("/elsewhere")
        if self.mode == "slow":
            await asyncio.sleep(2)
        return web.json_response(REPLIES)

    async def tracker(self, request: web.Request) -> web.Response:
        self.connections.add(id(request.transport))
        assert request.headers["Authorization"].startswith("Bearer ")
        return web.json_response({"sender_id": request.match_info["sender"], "paused": False,
                                  "include_events": request.query.get("include_events")})

    async def events(self, request: web.Request) -> web.Response:
        self.bodies.append(json.loads(await request.read()))
        return web.json_response({"sender_id": request.match_info["sender"]})


@asynccontextmanager
async def serving(rasa: Rasa) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post(CHANNEL_PATH, rasa.channel)
    app.router.add_get("/conversations/{sender}/tracker", rasa.tracker)
    app.router.add_post("/conversations/{sender}/tracker/events", rasa.events)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def with_client(use_httpx: bool, call: Callable[[RasaClient, Rasa], Awaitable[Any]],
                mode: str = "ok", timeout: float = 5) -> tuple[Any, Rasa]:
    """``call`` on a client of a server in ``mode``: the answer or the failure's cause."""
    async def run() -> tuple[Any, Rasa]:
        rasa = Rasa()
        rasa.mode = mode
        async with serving(rasa) as url:
            client = RasaClient(url, JWT_SECRET, CHANNEL_SECRET, timeout)
            if use_httpx:  # as the desk's tests hand it one
                client._client = httpx.AsyncClient(base_url=url, timeout=timeout)
            try:
                return await call(client, rasa), rasa
            except AssistantUnavailable as exc:
                return f"unavailable: {exc}", rasa
            finally:
                await client.close()

    return asyncio.run(run())


async def say(client: RasaClient, _rasa: Rasa) -> Any:
    return await client.send("c-1", "为什么借不了款？", {"borrower_id": "b-1", "locale": "zh-CN",
                                                   "ignored": "x"})


@pytest.mark.parametrize("use_httpx", [False, True], ids=["aiohttp", "httpx"])
def test_a_message_goes_signed_and_the_replies_come_back(use_httpx: bool) -> None:
    answer, rasa = with_client(use_httpx, say)
    assert answer == REPLIES
    assert rasa.bodies == [{"sender": "c-1", "message": "为什么借不了款？",
                            "metadata": {"borrower_id": "b-1", "locale": "zh-CN"}}]


@pytest.mark.parametrize("mode, cause", [
    ("error", "unavailable: HTTP 500"),
    ("html", "unavailable: an answer that is not JSON"),
    ("redirect", "unavailable: HTTP 302"),
    ("slow", "unavailable: timeout after 0.3 s"),
])
def test_failures_have_the_same_causes_on_both_clients(mode: str, cause: str) -> None:
    for use_httpx in (False, True):
        answer, _ = with_client(use_httpx, say, mode, timeout=0.3)
        assert answer == cause, (use_httpx, answer)


def test_an_unreachable_rasa_is_said_so() -> None:
    async def run() -> str:
        client = RasaClient("http://127.0.0.1:9", JWT_SECRET, CHANNEL_SECRET, 2)
        try:
            await client.send("c-1", "hi", {})
        except AssistantUnavailable as exc:
            return str(exc)
        finally:
            await client.close()
        return "answered"

    assert asyncio.run(run()).startswith("unreachable: ClientConnectorError")


def test_the_api_calls_answer_as_before() -> None:
    async def calls(client: RasaClient, _rasa: Rasa) -> Any:
        await client.append_events("c-1", [{"event": "resume"}])
        return [await client.tracker("c-1"), await client.tracker("c-1", events=False)]

    for use_httpx in (False, True):
        answer, rasa = with_client(use_httpx, calls)
        assert [a["include_events"] for a in answer] == ["ALL", "NONE"]
        assert rasa.bodies == [[{"event": "resume"}]]


def test_calls_reuse_one_kept_alive_connection() -> None:
    async def three(client: RasaClient, rasa: Rasa) -> Any:
        return [await say(client, rasa), await client.tracker("c-1"), await say(client, rasa)]

    answer, rasa = with_client(False, three)
    assert answer[0] == answer[2] == REPLIES
    assert len(rasa.connections) == 1


def test_idle_connections_are_dropped_before_sanic_drops_them() -> None:
    from sanic.config import DEFAULT_CONFIG

    assert DEFAULT_CONFIG["KEEP_ALIVE_TIMEOUT"] > KEEPALIVE_SECONDS
