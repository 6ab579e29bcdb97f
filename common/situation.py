"""The picture of a borrower's situation that a bot reply may carry: its one shape.

The assistant attaches it to an answer about *when* (``actions/visuals.py`` builds it from the
decision and sends it as Rasa's ``custom`` payload, next to the reply's text, which says the
same in words); the desk keeps it only when ``validated`` accepts it, stores it with the reply
and passes it to the chat page, which draws it (``desk/static/common.js``,
``Relend.situationView``). Clients that ignore it lose nothing: the text stands alone.

It holds figures and moments only, never words: the page writes the labels from its catalog
(``page.*.visual.*``) in the reply's language (``lang``). Every moment is one the backend's
decision gave, except ``now`` (when the answer was given: where "today" is marked)::

    {"type": "relend.situation", "version": 1, "lang": "zh", "timezone": "Asia/Shanghai",
     "now": "2026-03-10T04:00:00Z",
     "timeline": {"kind": "posting", "reason": "REPAYMENT_POSTING",
                  "start": "2026-03-10T03:50:00Z", "end": "2026-03-10T06:00:00Z"} | null,
     "limit": {"total": 5000.0, "available": 0.0, "in_use": 5000.0, "min_drawdown": 500.0,
               "currency": "CNY"} | null}
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any

TYPE = "relend.situation"
VERSION = 1
LANGS = ("zh", "en")
# the kinds of window a timeline shows, and the reason code each belongs to
KINDS = {
    "posting": "REPAYMENT_POSTING",
    "cooling_off": "OVERDUE_COOLING_OFF",
    "review": "RISK_REVIEW_NOT_PASSED",
    "score": "CREDIT_SCORE_DROPPED",
    "policy": "RISK_POLICY_TIGHTENED",
    "hold": "COMPLIANCE_HOLD",
    "funding": "FUNDING_QUOTA_EXHAUSTED",
    "incident": "SYSTEM_INCIDENT",
}
_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_MOMENT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?(?:Z|[+-]\d\d:\d\d)$")
MAX_AMOUNT = 1e12


def moment(value: Any) -> datetime | None:
    """An ISO 8601 moment with its offset (as the backend writes them), or None."""
    if not isinstance(value, str) or not _MOMENT.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _amount(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) and 0 <= number <= MAX_AMOUNT else None


def _timeline(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict) or value.get("kind") not in KINDS \
            or value.get("reason") != KINDS[value["kind"]]:
        raise ValueError("unknown timeline kind")
    start, end = moment(value.get("start")), moment(value.get("end"))
    if start is None or end is None or end <= start:
        raise ValueError("a timeline needs a start before its end")
    return {"kind": value["kind"], "reason": value["reason"], "start": iso(start),
            "end": iso(end)}


def _limit(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("limit is not an object")
    total, available, in_use = (_amount(value.get(k)) for k in ("total", "available", "in_use"))
    minimum = value.get("min_drawdown")
    if total is None or available is None or in_use is None or total <= 0 \
            or available > total or abs(total - available - in_use) > 0.005:
        raise ValueError("limit figures do not add up")
    if minimum is not None and _amount(minimum) is None:
        raise ValueError("bad minimum")
    currency = value.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise ValueError("bad currency")
    return {"total": total, "available": available, "in_use": in_use,
            "min_drawdown": None if minimum is None else float(minimum), "currency": currency}


def validated(payload: Any) -> dict[str, Any] | None:
    """``payload`` rebuilt from its known fields when it is a situation of this shape (with at
    least a timeline or a limit), else None. Nothing else in it passes through."""
    if not isinstance(payload, dict) or payload.get("type") != TYPE \
            or payload.get("version") != VERSION or payload.get("lang") not in LANGS:
        return None
    zone, now = payload.get("timezone"), moment(payload.get("now"))
    if not isinstance(zone, str) or len(zone) > 64 or not _ZONE.match(zone) or now is None:
        return None
    try:
        timeline = None if payload.get("timeline") is None else _timeline(payload["timeline"])
        limit = None if payload.get("limit") is None else _limit(payload["limit"])
    except ValueError:
        return None
    if timeline is None and limit is None:
        return None
    return {"type": TYPE, "version": VERSION, "lang": payload["lang"], "timezone": zone,
            "now": iso(now), "timeline": timeline, "limit": limit}
