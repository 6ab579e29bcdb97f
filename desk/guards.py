"""Limits that keep one caller from hurting others: body size, message rates, login attempts,
and the security headers every page and answer carries. All in-process and bounded."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
        "object-src 'none'"),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
# pages and API answers are never stored; an answer that says how it may be cached keeps that
# (GET /texts/<lang>.json: no-cache, revalidated by its ETag); the static files are revalidated
# by their ETag and Last-Modified instead of being fetched again on every load
NO_STORE, REVALIDATE = "no-store", "no-cache"
STATIC_PREFIX = "/static/"


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode("utf-8")


def cache_control(path: str, status: int, own: bytes | None) -> bytes:
    """The Cache-Control of an answer: its own if it has one; a static file's (200, 304) is
    revalidated; everything else is never stored."""
    if own:
        return own
    if path.startswith(STATIC_PREFIX) and status in (200, 304):
        return REVALIDATE.encode()
    return NO_STORE.encode()


class GuardMiddleware:
    """Pure ASGI: refuses HTTP bodies over ``max_body_bytes`` with ``413`` (by Content-Length,
    and by reading a body sent without one — at most the limit is ever held) and adds the
    security headers and a Cache-Control (``cache_control``) to every answer."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await self._too_large(send)
            return
        # read the whole (bounded) body first: an error raised while the app reads it would be
        # turned into a 400 by FastAPI, and the caller must learn the real reason
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                await self._too_large(send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = None
                headers = []
                for k, v in message.get("headers", []):
                    name = k.decode("latin-1").lower()
                    if name == "cache-control":
                        own = v
                    elif name not in SECURITY_HEADERS:
                        headers.append((k, v))
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                headers.append((b"cache-control", cache_control(
                    scope.get("path", ""), message.get("status", 200), own)))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, replay, send_with_headers)

    async def _too_large(self, send: Send) -> None:
        body = _error_body("body_too_large",
                           f"Request bodies are limited to {self.max_body_bytes} bytes.")
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            *((k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()),
            (b"cache-control", NO_STORE.encode())]})
        await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """Token buckets by key (a borrower, a socket): ``capacity`` at once, refilled at
    ``per_minute``. Keeps at most ``max_keys`` buckets (least recently used go first)."""

    def __init__(self, per_minute: float, capacity: float, max_keys: int = 50_000) -> None:
        self.rate = per_minute / 60.0
        self.capacity = capacity
        self.max_keys = max_keys
        self._buckets: OrderedDict[Any, tuple[float, float]] = OrderedDict()

    def take(self, key: Any, now: float | None = None) -> float:
        """0 when allowed (and counted); otherwise the seconds to wait before trying again."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (1 - tokens) / self.rate if self.rate else float("inf")
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    def forget(self, key: Any) -> None:
        self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)


class LoginThrottle:
    """After ``allowed`` failures for a username (or from one address) within ``window``
    seconds, further attempts are refused until the window has passed."""

    def __init__(self, allowed: int, window: float, max_keys: int = 50_000) -> None:
        self.allowed = allowed
        self.window = window
        self.max_keys = max_keys
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, []) if now - t < self.window]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def retry_after(self, keys: list[str], now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        waits = [self.window - (now - times[-self.allowed]) for key in keys
                 if len(times := self._recent(key, now)) >= self.allowed]
        return max(waits, default=0.0)

    def failed(self, keys: list[str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for key in keys:
            self._failures[key] = [*self._recent(key, now), now][-self.allowed:]
            self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)
