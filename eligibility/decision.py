"""Compute a borrower's eligibility decision from their records at a given moment.

Pure functions over the read model of ``eligibility.records`` (what ``load_decision_inputs``
loads): no I/O, no clock. ``evaluate`` is the one entry point; each ``_check_*`` function
returns the reason it finds, or None.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .reasons import REASONS, sort_key
from .records import (
    BorrowerRecords,
    DecisionInputs,
    IncidentRow,
    LoanRow,
    OverdueRecordRow,
    PolicyRow,
    QuotaWindowRow,
    RepaymentRow,
)

SCORE_THRESHOLD = 600
FREQUENT_APPLICATIONS_MIN = 6
HIGH_DEBT_RATIO_MIN = 0.70
LONG_INACTIVITY_DAYS = 365
SCORE_REFRESH_DAYS = 30
REAL_NAME_STALE_DAYS = 3 * 365
LIMIT_REDUCTION_REPORTED_DAYS = 90


def cooling_off_days(days_overdue: int) -> int:
    """Cooling-off period after a late repayment on this product, by how late it was."""
    if days_overdue <= 3:
        return 7
    if days_overdue <= 30:
        return 90
    return 180


@dataclass
class Reason:
    code: str
    blocking: bool
    details: dict[str, Any]
    # when the evidence behind the reason was recorded: a waiver granted later voids it
    evidence_at: datetime | None = None
    retry_after: datetime | None = None
    next_review_at: datetime | None = None
    self_service: list[dict[str, Any]] = field(default_factory=list)

    @property
    def appealable(self) -> bool:
        spec_appealable = REASONS[self.code].appealable
        if self.code == "CREDIT_LINE_CLOSED":
            return spec_appealable and self.details.get("closed_reason") != "borrower_request"
        return spec_appealable


@dataclass
class Evaluation:
    eligible: bool
    total_limit_cents: int
    available_limit_cents: int
    reasons: list[Reason]


def cents(value: int) -> float:
    return round(value / 100, 2)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def evaluate(inputs: DecisionInputs, *, now: datetime, min_drawdown_cents: int = 50_000
             ) -> Evaluation:
    """Decide whether the borrower of ``inputs`` can borrow at ``now``, and every reason why not.

    The shared records (policies, quota windows, incidents) may include ones that do not apply
    at ``now``: their dates are checked here.
    """
    borrower = inputs.borrower
    line = borrower.credit_line
    closed = line is None or line.status == "closed"
    total = 0 if closed else line.total_limit_cents
    outstanding = sum(loan.outstanding_cents for loan in borrower.loans)
    posting = [r for r in borrower.repayments if _in_force(r.paid_at, r.posted_at, now)]
    posting_cents = min(sum(r.amount_cents for r in posting), outstanding)
    available = max(0, total - outstanding)
    short_of_minimum = available < min_drawdown_cents

    found: list[Reason | None] = [
        _check_line_closed(borrower),
        _check_compliance_hold(borrower, now),
        _check_overdue(borrower, now),
        _check_identity(borrower, now),
        _check_risk_review(borrower, now),
        _check_risk_policy(borrower, inputs.policies, now),
        _check_credit_score(borrower, now),
        _check_incident(borrower, inputs.incidents, now),
        _check_funding_quota(borrower, inputs.quota_windows, now),
        _check_open_loans_cap(borrower),
    ]
    if not closed:
        found += [
            _check_repayment_posting(posting, posting_cents, short_of_minimum, now),
            _check_limit_in_use(borrower, outstanding - posting_cents, short_of_minimum),
            _check_limit_reduced(borrower, short_of_minimum, now),
        ]
    reasons = [r for r in found if r is not None and not _waived(borrower, r)]
    reasons.sort(key=lambda r: sort_key(r.code, r.blocking))
    eligible = not closed and not short_of_minimum and not any(r.blocking for r in reasons)
    return Evaluation(
        eligible=eligible,
        total_limit_cents=total,
        available_limit_cents=available,
        reasons=reasons,
    )


def reason_to_dict(reason: Reason) -> dict[str, Any]:
    return {
        "code": reason.code,
        "blocking": reason.blocking,
        "appealable": reason.appealable,
        "details": reason.details,
        "retry_after": _iso(reason.retry_after),
        "next_review_at": _iso(reason.next_review_at),
        "self_service": reason.self_service,
    }


def _in_force(start: datetime, end: datetime | None, now: datetime) -> bool:
    """``now`` is in [start, end): begun, and not (yet) ended. A repayment is posting from
    payment to posting; a hold, a policy or an incident applies until it ends."""
    return start <= now and (end is None or end > now)


def _waived(borrower: BorrowerRecords, reason: Reason) -> bool:
    if reason.evidence_at is None:
        return False
    return any(
        w.reason_code == reason.code and reason.evidence_at <= w.granted_at
        for w in borrower.waivers
    )


def _future(value: datetime | None, now: datetime) -> datetime | None:
    return value if value is not None and value > now else None


def _check_line_closed(borrower: BorrowerRecords) -> Reason | None:
    line = borrower.credit_line
    if line is None:
        return Reason("CREDIT_LINE_CLOSED", True, {"closed_at": None, "closed_reason": "no_line"})
    if line.status != "closed":
        return None
    return Reason(
        "CREDIT_LINE_CLOSED",
        True,
        {
            "closed_at": _iso(line.closed_at),
            "closed_reason": line.closed_reason,
            "limit_before_closing": cents(line.previous_limit_cents or line.total_limit_cents),
        },
        evidence_at=line.closed_at,
    )


def _check_compliance_hold(borrower: BorrowerRecords, now: datetime) -> Reason | None:
    active = [h for h in borrower.holds if _in_force(h.placed_at, h.released_at, now)]
    if not active:
        return None
    hold = active[-1]
    return Reason(
        "COMPLIANCE_HOLD",
        True,
        {"hold_id": hold.id, "kind": hold.kind, "placed_at": _iso(hold.placed_at)},
        evidence_at=hold.placed_at,
        next_review_at=_future(hold.expected_review_at, now),
    )


def _check_overdue(borrower: BorrowerRecords, now: datetime) -> Reason | None:
    """The late repayment that keeps borrowing paused longest, if any still does."""
    worst: tuple[datetime | None, OverdueRecordRow] | None = None
    for record in borrower.overdue_records:
        if record.due_date > now:
            continue
        if record.cleared_at is None or record.cleared_at > now:
            until = None  # still unpaid: the cooling-off has not even started
        else:
            until = record.cleared_at + timedelta(days=cooling_off_days(record.days_overdue))
            if until <= now:
                continue
        if worst is None or until is None or (worst[0] is not None and until > worst[0]):
            worst = (until, record)
    if worst is None:
        return None
    until, record = worst
    cleared = until is not None
    return Reason(
        "OVERDUE_COOLING_OFF",
        True,
        {
            "loan_id": record.loan_id,
            "due_date": _iso(record.due_date),
            "days_overdue": record.days_overdue,
            "amount": cents(record.amount_cents),
            "cleared": cleared,
            "cleared_at": _iso(record.cleared_at) if cleared else None,
            "cooling_off_days": cooling_off_days(record.days_overdue),
            "cooling_off_until": _iso(until),
        },
        evidence_at=record.due_date,
        retry_after=until,
        self_service=[] if cleared else [{"action": "repay_overdue", "loan_id": record.loan_id}],
    )


def _check_identity(borrower: BorrowerRecords, now: datetime) -> Reason | None:
    docs = borrower.identity_documents
    if not docs:
        return Reason(
            "IDENTITY_VERIFICATION_REQUIRED",
            True,
            {"problem": "missing", "document_type": "national_id"},
            self_service=[{"action": "reverify_identity"}],
        )
    doc = max(docs, key=lambda d: d.verified_at)
    if doc.expires_at is not None and doc.expires_at <= now:
        problem = "expired"
    elif now - doc.verified_at >= timedelta(days=REAL_NAME_STALE_DAYS):
        problem = "stale"
    else:
        return None
    return Reason(
        "IDENTITY_VERIFICATION_REQUIRED",
        True,
        {
            "problem": problem,
            "document_type": doc.document_type,
            "expired_on": _iso(doc.expires_at) if problem == "expired" else None,
            "verified_at": _iso(doc.verified_at),
        },
        self_service=[{"action": "reverify_identity"}],
    )


def _check_risk_review(borrower: BorrowerRecords, now: datetime) -> Reason | None:
    done = [r for r in borrower.risk_reviews if r.reviewed_at <= now]
    if not done or done[-1].passed:
        return None
    review = done[-1]
    return Reason(
        "RISK_REVIEW_NOT_PASSED",
        True,
        {"reviewed_at": _iso(review.reviewed_at)},
        evidence_at=review.reviewed_at,
        next_review_at=_future(review.next_review_at, now),
    )


def _check_risk_policy(
    borrower: BorrowerRecords, policies: Iterable[PolicyRow], now: datetime
) -> Reason | None:
    active = [
        p for p in policies
        if p.segment == borrower.segment and _in_force(p.effective_from, p.effective_until, now)
    ]
    if not active:
        return None
    policy = max(active, key=lambda p: (p.effective_from, p.id))
    return Reason(
        "RISK_POLICY_TIGHTENED",
        True,
        {
            "policy_id": policy.id,
            "segment": policy.segment,
            "effective_from": _iso(policy.effective_from),
            "effective_until": _iso(policy.effective_until),
        },
        evidence_at=policy.effective_from,
        retry_after=policy.effective_until,
        next_review_at=_future(policy.next_review_at, now),
    )


def _check_credit_score(borrower: BorrowerRecords, now: datetime) -> Reason | None:
    snapshots = [s for s in borrower.credit_scores if s.recorded_at <= now]
    if not snapshots or snapshots[-1].score >= SCORE_THRESHOLD:
        return None
    latest = snapshots[-1]
    before = snapshots[-2].score if len(snapshots) > 1 else None
    factors: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    if latest.overdue_elsewhere_count > 0:
        factors.append({
            "factor": "RECENT_OVERDUE_ELSEWHERE",
            "count": latest.overdue_elsewhere_count,
            "last_at": _iso(latest.overdue_elsewhere_last_at),
        })
    if latest.inquiries_count >= FREQUENT_APPLICATIONS_MIN:
        factors.append({
            "factor": "FREQUENT_APPLICATIONS",
            "count": latest.inquiries_count,
            "window_days": latest.inquiries_window_days,
        })
        steps.append({"action": "avoid_new_credit_applications",
                      "days": latest.inquiries_window_days})
    if latest.debt_ratio is not None and latest.debt_ratio >= HIGH_DEBT_RATIO_MIN:
        factors.append({"factor": "HIGH_DEBT_RATIO", "ratio": round(latest.debt_ratio, 2)})
        steps.append({"action": "reduce_debt"})
    inactive_since = borrower.last_drawdown_at or borrower.created_at
    inactive_days = (now - inactive_since).days
    if inactive_days >= LONG_INACTIVITY_DAYS:
        factors.append({"factor": "LONG_INACTIVITY", "inactive_days": inactive_days})
        steps.append({"action": "use_line_regularly"})
    return Reason(
        "CREDIT_SCORE_DROPPED",
        True,
        {
            "score_before": before,
            "score_after": latest.score,
            "threshold": SCORE_THRESHOLD,
            "recorded_at": _iso(latest.recorded_at),
            "factors": factors,
        },
        evidence_at=latest.recorded_at,
        next_review_at=latest.recorded_at + timedelta(days=SCORE_REFRESH_DAYS),
        self_service=steps,
    )


def _check_incident(
    borrower: BorrowerRecords, incidents: Iterable[IncidentRow], now: datetime
) -> Reason | None:
    active = [
        i for i in incidents
        if _in_force(i.started_at, i.resolved_at, now)
        and (i.kind != "maintenance" or i.expected_end_at is None or i.expected_end_at > now)
        and (i.funding_partner is None or i.funding_partner == borrower.funding_partner)
    ]
    if not active:
        return None
    incident = min(active, key=lambda i: (i.started_at, i.id))
    return Reason(
        "SYSTEM_INCIDENT",
        True,
        {
            "incident_id": incident.id,
            "kind": incident.kind,
            "title": incident.title,
            "started_at": _iso(incident.started_at),
            "expected_end_at": _iso(incident.expected_end_at),
            "other_incidents": [i.id for i in active if i is not incident],
        },
        retry_after=_future(incident.expected_end_at, now),
        self_service=[{"action": "retry_later"}],
    )


def _check_funding_quota(
    borrower: BorrowerRecords, windows: Iterable[QuotaWindowRow], now: datetime
) -> Reason | None:
    active = [
        w for w in windows
        if w.funding_partner == borrower.funding_partner and w.exhausted_at <= now < w.reopens_at
    ]
    if not active:
        return None
    window = max(active, key=lambda w: w.reopens_at)
    return Reason(
        "FUNDING_QUOTA_EXHAUSTED",
        True,
        {"exhausted_at": _iso(window.exhausted_at), "reopens_at": _iso(window.reopens_at)},
        retry_after=window.reopens_at,
        self_service=[{"action": "retry_later"}],
    )


def _open_loans(borrower: BorrowerRecords) -> list[LoanRow]:
    return [loan for loan in borrower.loans if loan.outstanding_cents > 0]


def _check_open_loans_cap(borrower: BorrowerRecords) -> Reason | None:
    line = borrower.credit_line
    open_loans = _open_loans(borrower)
    if line is None or len(open_loans) < line.max_open_loans:
        return None
    return Reason(
        "OPEN_LOANS_CAP_REACHED",
        True,
        {"open_loans": len(open_loans), "max_open_loans": line.max_open_loans},
        self_service=[{"action": "repay_loan_early", "loan_id": open_loans[0].id}],
    )


def _check_repayment_posting(
    posting: list[RepaymentRow], posting_cents: int, short_of_minimum: bool, now: datetime
) -> Reason | None:
    if not posting:
        return None
    expected = max(r.expected_post_at for r in posting)
    return Reason(
        "REPAYMENT_POSTING",
        short_of_minimum,
        {
            "amount": cents(posting_cents),
            "repayments": [
                {"repayment_id": r.id, "loan_id": r.loan_id, "amount": cents(r.amount_cents),
                 "paid_at": _iso(r.paid_at), "expected_post_at": _iso(r.expected_post_at)}
                for r in posting
            ],
            "paid_at": _iso(max(r.paid_at for r in posting)),
            "expected_post_at": _iso(expected),
            "delayed": expected <= now,
        },
        retry_after=_future(expected, now),
        self_service=[{"action": "wait_for_posting"}],
    )


def _check_limit_in_use(
    borrower: BorrowerRecords, in_use_cents: int, short_of_minimum: bool
) -> Reason | None:
    if in_use_cents <= 0:
        return None
    loans = _open_loans(borrower)
    return Reason(
        "LIMIT_IN_USE",
        short_of_minimum,
        {
            "amount_in_use": cents(in_use_cents),
            "loans": [
                {"loan_id": loan.id, "principal": cents(loan.principal_cents),
                 "outstanding": cents(loan.outstanding_cents),
                 "instalments_paid": loan.instalments_paid,
                 "instalments_total": loan.instalments_total,
                 "next_due_date": _iso(loan.next_due_date)}
                for loan in loans
            ],
        },
        self_service=[{"action": "repay_loan_early", "loan_id": loan.id} for loan in loans[:1]],
    )


def _check_limit_reduced(
    borrower: BorrowerRecords, short_of_minimum: bool, now: datetime
) -> Reason | None:
    line = borrower.credit_line
    if (
        line is None
        or line.previous_limit_cents is None
        or line.limit_changed_at is None
        or line.previous_limit_cents <= line.total_limit_cents
        or now - line.limit_changed_at > timedelta(days=LIMIT_REDUCTION_REPORTED_DAYS)
    ):
        return None
    return Reason(
        "LIMIT_REDUCED",
        short_of_minimum,
        {
            "previous_limit": cents(line.previous_limit_cents),
            "new_limit": cents(line.total_limit_cents),
            "reduced_at": _iso(line.limit_changed_at),
            "change_reason": line.limit_change_reason,
        },
        evidence_at=line.limit_changed_at,
    )
