"""Quiet hours: when a notice may not be pushed, in the borrower's time zone."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def parse_quiet_hours(value: str) -> tuple[time, time] | None:
    """``"22:00-08:00"`` -> (22:00, 08:00); empty or ``off`` -> None. ``ValueError`` else."""
    value = value.strip()
    if not value or value.lower() == "off":
        return None
    try:
        start, end = (time.fromisoformat(part.strip()) for part in value.split("-"))
    except ValueError as exc:
        raise ValueError(f"quiet hours must read HH:MM-HH:MM, not {value!r}") from exc
    return (start, end) if start != end else None


def zone(name: str | None, fallback: str) -> ZoneInfo:
    for candidate in (name, fallback):
        try:
            return ZoneInfo(candidate) if candidate else ZoneInfo(fallback)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")


def quiet_until(now: datetime, tz: ZoneInfo, hours: tuple[time, time] | None
                ) -> datetime | None:
    """The end of the quiet hours ``now`` falls in (an aware datetime), or None when it is not
    quiet. The window may wrap midnight (22:00-08:00)."""
    if hours is None:
        return None
    start, end = hours
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    quiet = start <= clock < end if start < end else (clock >= start or clock < end)
    if not quiet:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    # a wall-clock time in the zone (fold=0 on a repeated hour; a skipped one moves on)
    return datetime.combine(day, end, tzinfo=tz)
