"""The reason catalogue: every code the decision can carry, in the order they are reported.

This module is the single source of the reason table in docs/backend.md (a test checks
the two agree). Codes are stable: clients map them to words; never rename one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReasonSpec:
    code: str
    rank: int
    appealable: bool
    # A limiting reason explains why less limit is available; it blocks borrowing only when
    # what is left is below the minimum drawdown. Every other reason blocks on its own.
    limiting: bool
    summary: str


_SPECS = [
    ReasonSpec("CREDIT_LINE_CLOSED", 10, True, False, "The credit line is closed."),
    ReasonSpec("COMPLIANCE_HOLD", 20, False, False, "A security or regulatory check is open."),
    ReasonSpec(
        "OVERDUE_COOLING_OFF", 30, True, False,
        "A late repayment on this product: borrowing pauses until a cooling-off date.",
    ),
    ReasonSpec(
        "IDENTITY_VERIFICATION_REQUIRED", 40, False, False,
        "The identity document expired or the real-name data is stale: re-verify in the app.",
    ),
    ReasonSpec(
        "RISK_REVIEW_NOT_PASSED", 50, True, False,
        "The periodic risk re-evaluation of this borrower was not passed.",
    ),
    ReasonSpec(
        "RISK_POLICY_TIGHTENED", 60, True, False,
        "Risk policy was tightened for the borrower's segment for a period.",
    ),
    ReasonSpec(
        "CREDIT_SCORE_DROPPED", 70, True, False,
        "The credit score fell below the borrowing threshold; details name the factors.",
    ),
    ReasonSpec(
        "SYSTEM_INCIDENT", 80, False, False,
        "A known system incident or maintenance window affects borrowing.",
    ),
    ReasonSpec(
        "FUNDING_QUOTA_EXHAUSTED", 90, False, False,
        "The funding partner's quota for the day is used up: try again after a time.",
    ),
    ReasonSpec(
        "OPEN_LOANS_CAP_REACHED", 100, False, False,
        "The number of open loans has reached the line's cap.",
    ),
    ReasonSpec(
        "REPAYMENT_POSTING", 110, False, True,
        "A repayment was received but is still posting; the limit restores at a known time.",
    ),
    ReasonSpec(
        "LIMIT_IN_USE", 120, False, True,
        "Loans not yet fully repaid still use part of the limit.",
    ),
    ReasonSpec(
        "LIMIT_REDUCED", 130, True, True,
        "The total limit was reduced recently; some limit may still be available.",
    ),
]

REASONS: dict[str, ReasonSpec] = {spec.code: spec for spec in _SPECS}

# Credit-score factors, most weighty first (the order they appear in details.factors).
SCORE_FACTORS = (
    "RECENT_OVERDUE_ELSEWHERE",
    "FREQUENT_APPLICATIONS",
    "HIGH_DEBT_RATIO",
    "LONG_INACTIVITY",
)


def sort_key(code: str, blocking: bool) -> tuple[int, int]:
    """Blocking reasons first, then by catalogue rank (most important first)."""
    return (0 if blocking else 1, REASONS[code].rank)
