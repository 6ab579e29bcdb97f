"""Talking to Rasa: the signed desk channel for borrower messages, the HTTP API to pause,
resume and run actions, read a tracker, ask whether Rasa is up. Every call has one deadline
(``RELEND_RASA_TIMEOUT``, the whole call); failures raise ``AssistantUnavailable`` with the
cause in words (``timeout after 10 s``, ``unreachable: ConnectError ...``, ``HTTP 500``), which
the caller logs with the conversation it was for.

- Borrower messages go to ``/webhooks/desk/webhook`` (channels/desk_channel.py), signed with
  ``RELEND_CHANNEL_SECRET`` over the conversation id, the text's SHA-256, the borrower id,
  the locale, a timestamp and a fresh nonce (common/signing.py): Rasa refuses anything else.
- The HTTP API gets ``Authorization: Bearer <JWT>``, a short-lived HS256 token signed with
  ``RELEND_RASA_JWT_SECRET`` (``rasa run --jwt-secret``); no token ever goes in a URL.

The calls go through one aiohttp session whose connections are kept open between turns
(idle ones are closed after ``KEEPALIVE_SECONDS``, before Rasa's Sanic closes them at 5 s, so
no request goes out on a connection Rasa is closing). aiohttp costs about a quarter of the
CPU httpx does per call here (docs/performance.md). Tests may hand the client an httpx client
instead (``_client``, e.g. over ``httpx.MockTransport``): it is then used for every call, with
the same answers and the same causes for failures.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import aiohttp
import httpx
import jwt

from common.signing import MessageFields, sign

log = logging.getLogger("relend.desk.rasa")

CHANNEL_PATH = "/webhooks/desk/webhook"
JWT_TTL_SECONDS = 300
JWT_USERNAME = "relend-desk"
KEEPALIVE_SECONDS = 2.0  # under Sanic's KEEP_ALIVE_TIMEOUT (5 s): see the module's docstring


def _json_dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def _json_loads(body: bytes) -> Any:
    return json.loads(body)


class AssistantUnavailable(Exception):
    """Rasa did not answer; ``str(exc)`` is the cause, for the log."""


class RasaClient:
    def __init__(self, base_url: str, jwt_secret: str, channel_secret: str,
                 timeout: float) -> None:
        if not jwt_secret or not channel_secret:
            raise ValueError("the Rasa client needs the JWT secret and the channel secret")
        self.base_url = base_url
        self.jwt_secret = jwt_secret
        self.channel_secret = channel_secret
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None  # set by tests only (see above)
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._jwt: tuple[str, float] | None = None  # (token, when to mint a new one)

    @property
    def session(self) -> aiohttp.ClientSession:
        """The kept-alive session of the running event loop (a new one on another loop)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS),
                timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._session_loop = loop
        return self._session

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def api_token(self) -> str:
        """A JWT for Rasa's HTTP API (admin role), reused until a minute before it expires."""
        now = time.time()
        if self._jwt is None or now >= self._jwt[1]:
            issued = int(now)
            token = jwt.encode({"user": {"username": JWT_USERNAME, "role": "admin"},
                                "iat": issued, "exp": issued + JWT_TTL_SECONDS},
                               self.jwt_secret, algorithm="HS256")
            self._jwt = (token, issued + JWT_TTL_SECONDS - 60)
        return self._jwt[0]

    async def _call(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                    timeout: float | None = None, json: Any = None,
                    params: dict[str, str] | None = None) -> Any:
        timeout = self.timeout if timeout is None else timeout
        try:
            if self._client is not None:
                response = await asyncio.wait_for(self._client.request(
                    method, path, headers=headers, json=json, params=params), timeout)
                response.raise_for_status()
                return response.json()
            status, body = await asyncio.wait_for(
                self._request(method, path, headers, json, params), timeout)
            if not 200 <= status < 300:  # what httpx's raise_for_status refuses
                raise AssistantUnavailable(f"HTTP {status}")
            return _json_loads(body)
        except (asyncio.TimeoutError, httpx.TimeoutException) as exc:
            raise AssistantUnavailable(f"timeout after {timeout:g} s") from exc
        except httpx.HTTPStatusError as exc:
            raise AssistantUnavailable(f"HTTP {exc.response.status_code}") from exc
        except (httpx.HTTPError, aiohttp.ClientError) as exc:
            raise AssistantUnavailable(f"unreachable: {type(exc).__name__} {exc}".strip()
                                       ) from exc
        except ValueError as exc:
            raise AssistantUnavailable("an answer that is not JSON") from exc

    async def _request(self, method: str, path: str, headers: dict[str, str] | None,
                       body: Any, params: dict[str, str] | None) -> tuple[int, bytes]:
        """One call through the kept-alive session: the status and the whole body."""
        data = None
        if body is not None:  # encoded as httpx encodes ``json=``
            data = _json_dumps(body)
            headers = {**(headers or {}), "Content-Type": "application/json"}
        async with self.session.request(method, self.base_url.rstrip("/") + path,
                                        headers=headers, params=params, data=data,
                                        allow_redirects=False) as response:
            return response.status, await response.read()

    async def _api(self, method: str, path: str, **kwargs: Any) -> Any:
        return await self._call(method, path, headers={
            "Authorization": f"Bearer {self.api_token()}"}, **kwargs)

    async def send(self, conversation_id: str, text: str, metadata: dict[str, Any]
                   ) -> list[dict[str, Any]]:
        """A borrower message through the signed desk channel; returns the bot's replies.
        Only ``borrower_id`` and ``locale`` of ``metadata`` are sent (and signed)."""
        borrower_id = str(metadata.get("borrower_id") or "")
        locale = str(metadata.get("locale") or "")
        try:
            headers = sign(self.channel_secret, MessageFields(
                sender=conversation_id, text=text, borrower_id=borrower_id, locale=locale))
        except ValueError as exc:  # a field that cannot be signed (a control character)
            raise AssistantUnavailable(f"cannot sign the message: {exc}") from exc
        body = await self._call("POST", CHANNEL_PATH, headers=headers, json={
            "sender": conversation_id, "message": text,
            "metadata": {"borrower_id": borrower_id, "locale": locale}})
        return body if isinstance(body, list) else []

    async def append_events(self, conversation_id: str, events: list[dict[str, Any]]) -> None:
        await self._api("POST", f"/conversations/{conversation_id}/tracker/events",
                        json=events)

    async def execute(self, conversation_id: str, action: str) -> list[dict[str, Any]]:
        body = await self._api("POST", f"/conversations/{conversation_id}/execute",
                               json={"name": action})
        return body.get("messages", []) if isinstance(body, dict) else []

    async def tracker(self, conversation_id: str, *, events: bool = True) -> dict[str, Any]:
        """Rasa's tracker of a conversation: ``paused``, ``latest_action_name`` and, with
        ``events``, every event since the conversation began."""
        body = await self._api("GET", f"/conversations/{conversation_id}/tracker",
                               params={"include_events": "ALL" if events else "NONE"})
        if not isinstance(body, dict):
            raise AssistantUnavailable("a tracker that is not a JSON object")
        return body

    async def ready(self, timeout: float = 3.0) -> bool:
        """Whether Rasa answers ``/status`` with a model loaded (within ``timeout``)."""
        try:
            body = await self._api("GET", "/status", timeout=min(timeout, self.timeout))
        except AssistantUnavailable:
            return False
        return isinstance(body, dict) and bool(body.get("model_id") or body.get("model_file"))
