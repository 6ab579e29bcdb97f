"""Judging one turn: what was expected against what happened. Pure, so it is easy to test."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TurnResult:
    """What a step produced: the messages the borrower received, and what the probes saw."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    slots: dict[str, Any] | None = None
    owner: str | None = None
    appeals: list[dict[str, Any]] | None = None

    def replies(self, sender: str = "any") -> list[dict[str, Any]]:
        return [m for m in self.messages
                if m.get("sender") != "borrower" and sender in ("any", m.get("sender"))]

    def text(self, sender: str = "any") -> str:
        return "\n".join(m.get("text") or "" for m in self.replies(sender))

    def buttons(self) -> list[str]:
        return [b.get("title", "") for m in self.replies() for b in m.get("buttons") or []]


def check(expect: dict[str, Any], result: TurnResult) -> list[str]:
    """Every way ``result`` falls short of ``expect``, in plain words (empty: it passed)."""
    sender = expect.get("from", "any")
    text = result.text(sender)
    problems: list[str] = []
    missing = [s for s in expect.get("contains", []) if str(s) not in text]
    if missing:
        problems.append(f"reply does not contain {missing}")
    options = expect.get("contains_any", [])
    if options and not any(str(s) in text for s in options):
        problems.append(f"reply contains none of {options}")
    present = [s for s in expect.get("not_contains", []) if str(s) in text]
    if present:
        problems.append(f"reply contains {present}, which it must not")
    if expect.get("silent") and result.replies():
        problems.append(f"expected silence, got {len(result.replies())} message(s)")
    if expect.get("silent") is False and not result.replies():
        problems.append("expected a reply, got none")
    if "notice" in expect:
        kinds = [m.get("notice") for m in result.replies(sender) if m.get("notice")]
        if expect["notice"] not in kinds:
            problems.append(f"no {expect['notice']} notice among the replies (notices: {kinds})")
    if "reason" in expect:
        actual = (result.slots or {}).get("primary_reason")
        if actual != expect["reason"]:
            problems.append(f"reason is {actual!r}, expected {expect['reason']!r}")
    for name, wanted in expect.get("slots", {}).items():
        actual = (result.slots or {}).get(name)
        if actual != wanted:
            problems.append(f"slot {name} is {actual!r}, expected {wanted!r}")
    offered = result.buttons()
    absent = [b for b in expect.get("buttons", []) if b not in offered]
    if absent:
        problems.append(f"buttons {absent} not offered (offered: {offered})")
    if expect.get("no_buttons") and offered:
        problems.append(f"expected no buttons, got {offered}")
    if "handoff" in expect:
        handed = result.owner == "agent"
        if handed != expect["handoff"]:
            problems.append("expected a handoff to an agent" if expect["handoff"]
                            else f"unexpected handoff (conversation owner: {result.owner})")
    if "appeal" in expect:
        problems += _check_appeal(expect["appeal"], result.appeals or [])
    return problems


def _check_appeal(wanted: dict[str, Any], appeals: list[dict[str, Any]]) -> list[str]:
    if not appeals and set(wanted) - {"count"}:
        return ["expected an appeal in the backend, found none"]
    latest = appeals[0] if appeals else {}  # only `count` is checked when there is none
    fields = {"status": "status", "reason": "reason_code", "count": None}
    problems = []
    for key, value in wanted.items():
        if key == "count":
            if len(appeals) != value:
                problems.append(f"{len(appeals)} appeal(s) in the backend, expected {value}")
            continue
        actual = latest.get(fields.get(key) or key)
        if actual != value:
            problems.append(f"latest appeal {key} is {actual!r}, expected {value!r}")
    return problems
