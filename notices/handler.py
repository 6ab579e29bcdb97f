"""One change of the outbox -> the desk: the same handler for the broker and the feed.

The handler looks up the borrower's decision (their time zone for quiet hours, and what the
notice may say about borrowing now), works out whether quiet hours hold the notice back, and
hands it to the desk, which stores it once per key with the message it becomes. The handler
returns only once the desk has stored it (or refused it for good): only then may the source
acknowledge the message or move its cursor, so a notifier killed at any moment loses nothing,
and a change it sends again finds its key in the desk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx

from .config import NoticeSettings
from .quiet import parse_quiet_hours, quiet_until, zone

log = logging.getLogger("relend.notices")


class DeskUnavailable(Exception):
    """The desk did not store the change (down, an error): try the same change again later."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


class Handler:
    def __init__(self, settings: NoticeSettings, client: httpx.AsyncClient,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.client = client
        self.clock = clock
        self.quiet = parse_quiet_hours(settings.quiet_hours)
        # whether the desk answered the last release (the broker's health beat)
        self.desk_answered = False

    def _desk(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.desk_token}"}

    async def decision(self, borrower_id: str) -> dict[str, Any] | None:
        """The borrower's decision now, or None when the backend cannot say (the notice then
        goes out without it: it only invites the borrower to ask)."""
        try:
            response = await self.client.get(
                f"{self.settings.backend_url}/v1/borrowers/{borrower_id}/eligibility",
                headers={"Authorization": f"Bearer {self.settings.backend_token}"})
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("borrower %s: no decision for the notice (%s); it goes out without one",
                        borrower_id, exc)
            return None
        return body if isinstance(body, dict) else None

    async def __call__(self, message: dict[str, Any]) -> str:
        """Hand one outbox message to the desk. Returns the desk's answer (``delivered``,
        ``waiting``, ``to_agent``, ``duplicate``) or ``refused`` (a change the desk cannot
        put into words: logged, not retried). ``DeskUnavailable``: try again later."""
        key, borrower_id = message.get("key"), message.get("borrower_id")
        if not isinstance(key, str) or not isinstance(borrower_id, str):
            log.error("an outbox message without key or borrower: %r; skipped", message)
            return "refused"
        decision = await self.decision(borrower_id)
        tz_name = (decision or {}).get("timezone") or self.settings.lender_timezone
        tz = zone(tz_name, self.settings.lender_timezone)
        held = quiet_until(self.clock(), tz, self.quiet)
        body = {**message, "timezone": tz.key,
                "decision": {k: decision.get(k) for k in (
                    "eligible", "available_limit", "currency", "decision_id", "checked_at")}
                if decision else None,
                "deliver_after": iso(held) if held else None}
        try:
            response = await self.client.post(f"{self.settings.desk_url}/internal/notices",
                                              json=body, headers=self._desk())
        except httpx.HTTPError as exc:
            raise DeskUnavailable(f"{type(exc).__name__} {exc}".strip()) from exc
        if response.status_code == 422:
            log.error("change %s (%s): the desk refused it for good: %s", key,
                      message.get("kind"), response.text[:300])
            return "refused"
        if response.status_code != 200:
            raise DeskUnavailable(f"HTTP {response.status_code}")
        status = str(response.json().get("status"))
        log.info("change %s (%s, borrower %s): %s%s", key, message.get("kind"), borrower_id,
                 status, f" until {iso(held)}" if held and status == "waiting" else "")
        return status

    async def release(self) -> int:
        """Ask the desk to deliver held notices whose quiet hours are over."""
        try:
            response = await self.client.post(f"{self.settings.desk_url}/internal/notices/"
                                              "release", headers=self._desk())
            response.raise_for_status()
            delivered = int(response.json().get("delivered") or 0)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("could not ask the desk to release held notices: %s", exc)
            self.desk_answered = False
            return 0
        self.desk_answered = True
        return delivered

    async def cursor(self) -> int:
        """Where the feed goes on: the newest outbox id the desk stored."""
        try:
            response = await self.client.get(f"{self.settings.desk_url}/internal/notices/"
                                             "cursor", headers=self._desk())
            response.raise_for_status()
            return int(response.json()["after_id"])
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise DeskUnavailable(f"no cursor from the desk: {exc}") from exc
