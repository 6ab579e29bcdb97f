"""Money, dates and lists in the borrower's language and time zone (words from texts/*.yml)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from common.moments import parse_moment

from .texts import text


def money(amount: float, lang: str) -> str:
    whole = abs(amount - round(amount)) < 0.005
    figure = f"{amount:,.0f}" if whole else f"{amount:,.2f}"
    return text("fmt.money", lang, figure=figure)


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "Asia/Shanghai")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Shanghai")


def _local(value: str | datetime | None, tz: str | None) -> datetime | None:
    moment = parse_moment(value) if isinstance(value, str) or value is None else value
    return moment.astimezone(_zone(tz)) if moment is not None else None


def _day(local: datetime, lang: str, now: datetime) -> tuple[str, bool]:
    """The day as a word ('今天', 'tomorrow') or a date, and whether it is a word."""
    today = now.astimezone(local.tzinfo).date()
    days = (local.date() - today).days
    relative = text(f"fmt.relative.{days}", lang) if -1 <= days <= 2 else ""
    if relative:
        return relative, True
    month = text(f"fmt.month.{local.month}", lang)
    if local.year != today.year:
        return text("fmt.date_with_year", lang, day=local.day, month=month,
                    year=local.year), False
    return text("fmt.date", lang, day=local.day, month=month), False


def when(value: str | datetime | None, lang: str, tz: str | None, now: datetime,
         *, with_time: bool = True) -> str:
    """A moment as the borrower reads it: '今天 14:30', 'tomorrow at 10:00', '2月6日'."""
    local = _local(value, tz)
    if local is None:
        return "—"
    day, relative = _day(local, lang, now)
    if with_time:
        return text("fmt.at_time", lang, day=day, clock=local.strftime("%H:%M"))
    return day if relative else text("fmt.on_day", lang, day=day)


def day(value: str | datetime | None, lang: str, tz: str | None, now: datetime) -> str:
    """The day alone, to follow a preposition: '6 Feb' where ``when`` says 'on 6 Feb'."""
    local = _local(value, tz)
    return _day(local, lang, now)[0] if local is not None else "—"


def duration(delta: timedelta, lang: str) -> str:
    minutes = max(1, round(delta.total_seconds() / 60))
    if minutes < 60:
        return text("fmt.minutes_one" if minutes == 1 else "fmt.minutes", lang, n=minutes)
    hours = round(minutes / 60)
    if hours < 48:
        return text("fmt.hours_one" if hours == 1 else "fmt.hours", lang, n=hours)
    return text("fmt.days", lang, n=round(hours / 24))


def join(items: list[str], lang: str) -> str:
    """'a、b、c' / 'a, b and c'; the long separators where an item has a comma of its own."""
    if len(items) <= 1:
        return "".join(items)
    long = any(text("fmt.list.comma", lang) in item for item in items)
    separator = text("fmt.list.separator_long" if long else "fmt.list.separator", lang)
    last = text("fmt.list.last_long" if long else "fmt.list.last", lang)
    return separator.join(items[:-1]) + last + items[-1]
