"""Moments as the backend writes them (ISO 8601), read the same way by the actions and the desk."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def parse_moment(value: Any) -> datetime | None:
    """An ISO 8601 moment (``Z`` or an offset; one without either is UTC), or None for anything
    else, so that a missing or malformed date is never shown as one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
