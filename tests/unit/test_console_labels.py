"""The console names in words every code it shows (issue 12): the handoff reasons the
assistant and the desk send, and the decision's reason codes the backend can give."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from actions import language
from actions.texts import catalog
from eligibility.reasons import REASONS

ROOT = Path(__file__).resolve().parents[2]
# where a handoff reason is named in code: the slot the handoff reads, the reason a handoff
# is made with, the defaults and fall-backs of actions/handoff.py, the desk's own case
SENT = re.compile(r"""SlotSet\(\s*"handoff_reason"\s*,\s*"(\w+)"\s*\)"""
                  r"""|hand_off\(\s*dispatcher\s*,\s*tracker\s*,\s*"(\w+)"\s*\)"""
                  r"""|_handoff_reason\(\s*tracker\s*,\s*"(\w+)"\s*\)"""
                  r"""|^UNAVAILABLE = "(\w+)\"""", re.M)
RETURNED = re.compile(r'^\s+return "(\w+)"$', re.M)
NEXT_DEFINITION = re.compile(r"^(?:async def|def|class) ", re.M)


def handoff_reasons() -> set[str]:
    found: set[str] = set()
    for path in [ROOT / "actions" / "appeals.py", ROOT / "actions" / "handoff.py",
                 ROOT / "desk" / "turns.py"]:
        source = path.read_text(encoding="utf-8")
        found |= {next(g for g in m.groups() if g) for m in SENT.finditer(source)}
        if path.name == "handoff.py":  # what _handoff_reason falls back to
            start = source.index("def _handoff_reason")
            end = NEXT_DEFINITION.search(source, start + 1)
            found |= set(RETURNED.findall(source[start:end.start() if end else len(source)]))
    return found


def test_the_scan_finds_the_reasons_sent_today() -> None:
    assert {"borrower_asked", "offered_by_bot", "backend_unavailable", "assistant_unavailable",
            "disagrees_not_appealable", "appeal_refused", "appeal_not_filed"} <= handoff_reasons()


@pytest.mark.parametrize("lang", language.SUPPORTED)
def test_every_handoff_reason_has_a_label(lang: str) -> None:
    texts = catalog(lang)
    assert sorted(r for r in handoff_reasons() if f"page.console.reason.{r}" not in texts) == []


@pytest.mark.parametrize("lang", language.SUPPORTED)
def test_no_label_for_a_handoff_reason_nothing_sends(lang: str) -> None:
    """One table for both sides: a label the assistant and the desk never send would only
    drift (issue 12 found two)."""
    labelled = {key.rsplit(".", 1)[1] for key in catalog(lang)
                if key.startswith("page.console.reason.")}
    assert sorted(labelled - handoff_reasons()) == []


@pytest.mark.parametrize("lang", language.SUPPORTED)
def test_every_reason_code_of_a_decision_has_a_label(lang: str) -> None:
    texts = catalog(lang)
    assert sorted(c for c in REASONS if f"page.console.code.{c}" not in texts) == []
