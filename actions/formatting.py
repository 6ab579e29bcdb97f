"""Money, dates and lists in the borrower's language and time zone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def money(amount: float, lang: str) -> str:
    whole = abs(amount - round(amount)) < 0.005
    figure = f"{amount:,.0f}" if whole else f"{amount:,.2f}"
    return f"{figure}元" if lang == "zh" else f"¥{figure}"


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "Asia/Shanghai")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Shanghai")


_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def when(value: str | datetime | None, lang: str, tz: str | None, now: datetime,
         *, with_time: bool = True) -> str:
    """A moment as the borrower reads it: '今天 14:30', 'tomorrow at 10:00', '2月6日'."""
    moment = parse_time(value) if isinstance(value, str) or value is None else value
    if moment is None:
        return "—"
    zone = _zone(tz)
    local = moment.astimezone(zone)
    today = now.astimezone(zone).date()
    days = (local.date() - today).days
    clock = local.strftime("%H:%M")
    if lang == "zh":
        relative = {-1: "昨天", 0: "今天", 1: "明天", 2: "后天"}.get(days)
        if relative:
            return f"{relative} {clock}" if with_time else relative
        day = f"{local.month}月{local.day}日"
        if local.year != today.year:
            day = f"{local.year}年{day}"
        return f"{day} {clock}" if with_time else day
    relative = {-1: "yesterday", 0: "today", 1: "tomorrow"}.get(days)
    if relative:
        return f"{relative} at {clock}" if with_time else relative
    day = f"{local.day} {_EN_MONTHS[local.month - 1]}"
    if local.year != today.year:
        day = f"{day} {local.year}"
    return f"{day} at {clock}" if with_time else f"on {day}"


def duration(delta: timedelta, lang: str) -> str:
    minutes = max(1, round(delta.total_seconds() / 60))
    if minutes < 60:
        return (f"约{minutes}分钟" if lang == "zh"
                else f"about {minutes} minute{'s' * (minutes != 1)}")
    hours = round(minutes / 60)
    if hours < 48:
        return f"约{hours}小时" if lang == "zh" else f"about {hours} hour{'s' * (hours != 1)}"
    days = round(hours / 24)
    return f"约{days}天" if lang == "zh" else f"about {days} days"


def join(items: list[str], lang: str) -> str:
    if lang == "zh":
        return "；".join(items) if any("，" in i for i in items) else "、".join(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
