"""The sandbox's demo borrowers, as the eligibility backend lists them.

The chat page's picker shows them, and the demo login signs tokens for them only. The desk does
not import the backend's code: it asks ``GET {RELEND_BACKEND_URL}/v1/sandbox/demo-borrowers``
(with the service token ``RELEND_BACKEND_TOKEN``; the route exists only in the sandbox) and
keeps a good answer for a minute. Whoever needs another list (the in-process tests, which have
no backend) puts any object with an ``async borrowers()`` method on ``app.state.desk.demo``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

import httpx
from pydantic import BaseModel, StrictStr

log = logging.getLogger("relend.desk.demo")

PATH = "/v1/sandbox/demo-borrowers"
TIMEOUT_SECONDS = 5.0
CACHE_SECONDS = 60.0


class DemoBorrower(BaseModel):
    borrower_id: StrictStr
    name: StrictStr
    situation: StrictStr
    locale: StrictStr


class _Listing(BaseModel):
    borrowers: list[DemoBorrower]


class DemoUnavailable(Exception):
    """The backend could not say who the demo borrowers are (down, slow, not a sandbox, or an
    answer that is not a list of demo borrowers)."""


class DemoDirectory(Protocol):
    async def borrowers(self) -> list[DemoBorrower]: ...


class BackendDemoDirectory:
    """The list from the backend, cached for ``cache_seconds``; failures are not cached."""

    def __init__(self, base_url: str, token: str, *, timeout: float = TIMEOUT_SECONDS,
                 cache_seconds: float = CACHE_SECONDS,
                 transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base_url = base_url
        self.token = token
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self._transport = transport
        self._clock = clock
        self._cached: tuple[list[DemoBorrower], float] | None = None  # (list, good until)

    async def borrowers(self) -> list[DemoBorrower]:
        now = self._clock()
        if self._cached is not None and now < self._cached[1]:
            return self._cached[0]
        borrowers = await self._fetch()
        self._cached = (borrowers, now + self.cache_seconds)
        return borrowers

    async def _fetch(self) -> list[DemoBorrower]:
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout,
                                         transport=self._transport) as client:
                response = await client.get(PATH, headers={
                    "Authorization": f"Bearer {self.token}"})
            response.raise_for_status()
            return _Listing.parse_obj(response.json()).borrowers
        except (httpx.HTTPError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            log.error("could not list the demo borrowers (%s%s): %s", self.base_url, PATH, exc)
            raise DemoUnavailable(str(exc)) from exc
