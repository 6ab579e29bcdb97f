"""The picture attached to an answer about *when*: the window the borrower is waiting out
(repayment posting, cooling-off, review, hold ...) with "now" marked, and the limit in use
versus available. Its shape is ``common/situation.py``; the chat page draws it.

Only the decision's own moments and figures go in: a reason without both ends of its window
gets no timeline, and a limit fully available gets no bar. Pure functions (no I/O).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from common import situation as shape

# kind -> (where the window starts, where it ends): a detail's name, or "@field" for a field
# of the reason itself (next_review_at is next to the details, not in them)
WINDOWS: dict[str, tuple[str, str]] = {
    "posting": ("paid_at", "expected_post_at"),
    "cooling_off": ("cleared_at", "cooling_off_until"),
    "review": ("reviewed_at", "@next_review_at"),
    "score": ("recorded_at", "@next_review_at"),
    "policy": ("effective_from", "effective_until"),
    "hold": ("placed_at", "@next_review_at"),
    "funding": ("exhausted_at", "reopens_at"),
    "incident": ("started_at", "expected_end_at"),
}
KIND_OF = {code: kind for kind, code in shape.KINDS.items()}


def _field(reason: dict[str, Any], name: str) -> Any:
    if name.startswith("@"):
        return reason.get(name[1:])
    details = reason.get("details")
    return details.get(name) if isinstance(details, dict) else None


def timeline(reason: dict[str, Any] | None) -> dict[str, Any] | None:
    """The window of ``reason`` when the decision gives both its ends (start before end)."""
    kind = KIND_OF.get((reason or {}).get("code", ""))
    if reason is None or kind is None:
        return None
    begins, ends = WINDOWS[kind]
    start, end = shape.moment(_field(reason, begins)), shape.moment(_field(reason, ends))
    if start is None or end is None or end <= start:
        return None
    return {"kind": kind, "reason": reason["code"], "start": shape.iso(start),
            "end": shape.iso(end)}


def limit(decision: dict[str, Any]) -> dict[str, Any] | None:
    """The limit in use versus available, when some of it is not available."""
    total, available = decision.get("total_limit"), decision.get("available_limit")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool)
               for x in (total, available)):
        return None
    if total <= 0 or not 0 <= available < total:
        return None
    minimum = decision.get("min_drawdown")
    return {"total": float(total), "available": float(available),
            "in_use": round(float(total) - float(available), 2),
            "min_drawdown": float(minimum) if isinstance(minimum, (int, float))
            and not isinstance(minimum, bool) else None,
            "currency": str(decision.get("currency") or "CNY")}


def situation(decision: dict[str, Any], reason: dict[str, Any] | None, *, lang: str,
              now: datetime) -> dict[str, Any] | None:
    """The attachment for an answer led by ``reason`` (None: no timeline), or None when there
    is nothing to draw. Always a payload ``common.situation.validated`` accepts as it is."""
    payload = {"type": shape.TYPE, "version": shape.VERSION, "lang": lang,
               "timezone": str(decision.get("timezone") or "Asia/Shanghai"),
               "now": shape.iso(now), "timeline": timeline(reason), "limit": limit(decision)}
    return shape.validated(payload)
