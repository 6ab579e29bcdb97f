"""Talking to Rasa: the REST channel for borrower messages, the HTTP API to pause, resume
and run actions. Every call has a timeout; failures raise ``AssistantUnavailable``."""

from __future__ import annotations

import logging
from typing import Any

import httpx

log = logging.getLogger("relend.desk.rasa")


class AssistantUnavailable(Exception):
    pass


class RasaClient:
    def __init__(self, base_url: str, token: str, timeout: float) -> None:
        self.base_url = base_url
        self.token = token
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        params = {"token": self.token} if not path.startswith("/webhooks/") else None
        try:
            response = await self.client.request(method, path, params=params, **kwargs)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.error("rasa %s %s failed: %s", method, path, exc)
            raise AssistantUnavailable(str(exc)) from exc

    async def send(self, conversation_id: str, text: str, metadata: dict[str, Any]
                   ) -> list[dict[str, Any]]:
        """A borrower message through the REST channel; returns the bot's replies."""
        body = await self._call("POST", "/webhooks/rest/webhook",
                                json={"sender": conversation_id, "message": text,
                                      "metadata": metadata})
        return body if isinstance(body, list) else []

    async def append_events(self, conversation_id: str, events: list[dict[str, Any]]) -> None:
        await self._call("POST", f"/conversations/{conversation_id}/tracker/events",
                         json=events)

    async def execute(self, conversation_id: str, action: str) -> list[dict[str, Any]]:
        body = await self._call("POST", f"/conversations/{conversation_id}/execute",
                                json={"name": action})
        return body.get("messages", []) if isinstance(body, dict) else []
