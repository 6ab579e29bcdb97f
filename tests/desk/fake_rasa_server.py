"""``FakeRasa`` (desk_support.py) served over HTTP, for tests that run desks as real processes
(``uvicorn --app-dir tests/desk fake_rasa_server:app``; several desks share one).

It checks what the in-process fake checks (signed channel messages, admin JWTs) and keeps
trackers the same way. Here the bot answers each message with ``REPLY_PREFIX`` + its text
(so a test sees which reply belongs to which message), after ``FAKE_RASA_DELAY`` seconds
(so turns overlap). ``GET /_test/heard/{sender}`` lists the texts Rasa received from a
conversation, in the order it received them.
"""

from __future__ import annotations

import asyncio
import os

import httpx
from desk_support import CHANNEL_PATH, FakeRasa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

REPLY_PREFIX = "回答："

fake = FakeRasa()
received: dict[str, list[str]] = {}  # sender -> texts, in arrival order (before the delay)


async def heard(request: Request) -> JSONResponse:
    return JSONResponse({"heard": received.get(request.path_params["sender"], []),
                         "tracker": fake.heard(request.path_params["sender"])})


async def health(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def rasa(request: Request) -> Response:
    content = await request.body()
    if request.url.path == CHANNEL_PATH:
        body = await request.json()
        received.setdefault(body["sender"], []).append(body["message"])
        await asyncio.sleep(float(os.environ.get("FAKE_RASA_DELAY", "0")))
        fake.replies = [{"text": REPLY_PREFIX + body["message"]}]  # no await until it is used
    answer = await fake.handle(httpx.Request(request.method, str(request.url),
                                             headers=request.headers.raw, content=content))
    return Response(answer.content, answer.status_code,
                    media_type=answer.headers.get("content-type"))


app = Starlette(routes=[
    Route("/_test/heard/{sender}", heard),
    Route("/health", health),
    Route("/{path:path}", rasa, methods=["GET", "POST", "PUT", "DELETE"]),
])
