"""The feed path when the backend's outbox ids go back under a running notifier (its database
replaced or restored while the desk's is kept): changes recorded under ids at or below the
cursor must not be passed over because a newer one landed above it before the next read.

A fake backend feed (``GET /v1/backoffice/outbox``, as eligibility/routes/backoffice.py serves
it) and a fake desk (stores each key once; its cursor is the newest outbox id it stored)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from notices.config import NoticeSettings
from notices.sources import run_feed
from tests.conftest import run_coroutine


def row(id_: int, key: str) -> dict[str, Any]:
    return {"schema": "relend.notice.v1", "id": id_, "key": key, "kind": "hold_released",
            "borrower_id": "b-1", "occurred_at": "2026-11-30T03:30:00Z",
            "recorded_at": "2026-11-30T03:30:01Z", "data": {}}


class Backend:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/backoffice/outbox"
        after = int(request.url.params.get("after_id", 0))
        limit = int(request.url.params.get("limit", 100))
        assert 1 <= limit <= 1000
        found = [r for r in self.rows if r["id"] > after][:limit]
        return httpx.Response(200, json={"messages": found,
                                         "next_after_id": found[-1]["id"] if found else after})


class Desk:
    """The notifier's handler, as far as ``run_feed`` uses it."""

    def __init__(self) -> None:
        self.stored: dict[str, int] = {}
        self.desk_answered = True
        self.on_store: Any = None

    async def __call__(self, message: dict[str, Any]) -> str:
        if message["key"] in self.stored:
            return "duplicate"
        self.stored[message["key"]] = message["id"]
        if self.on_store is not None:
            self.on_store(message)
        return "delivered"

    async def cursor(self) -> int:
        return max(self.stored.values(), default=0)

    async def release(self) -> int:
        return 0


def settings() -> NoticeSettings:
    return NoticeSettings(desk_url="http://desk.test", desk_token="d" * 32,
                          backend_url="http://backend.test", backend_token="b" * 32,
                          backoffice_token="o" * 32, poll_seconds=0.01, batch=10)


async def feed_until(desk: Desk, backend: Backend, keys: set[str]) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(backend)) as client:
        task = asyncio.ensure_future(run_feed(settings(), desk, client))  # type: ignore[arg-type]
        try:
            for _ in range(300):
                if keys <= set(desk.stored) or task.done():
                    break
                await asyncio.sleep(0.01)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def test_changes_under_ids_that_went_back_are_read_though_a_newer_one_overtook_the_cursor(
        ) -> None:
    old = [row(1, "old-1"), row(2, "old-2")]
    new = [row(1, "new-1"), row(2, "new-2"), row(3, "new-3")]
    backend, desk = Backend(list(old)), Desk()

    def replace_the_database(message: dict[str, Any]) -> None:
        # right after the cursor reached row 2: the backend starts again, and three changes
        # are recorded before the notifier's next read
        if message["key"] == "old-2":
            backend.rows = list(new)

    desk.on_store = replace_the_database
    run_coroutine(feed_until(desk, backend, {"old-1", "old-2", "new-1", "new-2", "new-3"}))

    assert desk.stored == {"old-1": 1, "old-2": 2, "new-1": 1, "new-2": 2, "new-3": 3}


def test_a_running_notifier_reads_each_change_once_when_nothing_goes_back() -> None:
    backend, desk = Backend([row(1, "k-1")]), Desk()
    calls: list[str] = []

    def more(message: dict[str, Any]) -> None:
        calls.append(message["key"])
        if message["key"] == "k-1":
            backend.rows.append(row(2, "k-2"))

    desk.on_store = more
    run_coroutine(feed_until(desk, backend, {"k-1", "k-2"}))

    assert calls == ["k-1", "k-2"]
    assert desk.stored == {"k-1": 1, "k-2": 2}
