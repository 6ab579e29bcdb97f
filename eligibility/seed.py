"""Demo borrowers for the sandbox: one per reason code, a few combinations, one eligible.

Dates are relative to the moment of seeding, so "posting in two hours" stays true after a
fresh start. ``seed`` replaces every demo record (ids starting with ``demo-`` / ``DEMO-``)
and touches nothing else. The table in docs/demo-borrowers.md describes each one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from sqlalchemy.orm import Session

from . import ledger
from .models import (
    Appeal,
    Borrower,
    ComplianceHold,
    CreditLine,
    CreditScore,
    Decision,
    FundingQuotaWindow,
    IdentityDocument,
    Incident,
    Instalment,
    Loan,
    OutboxMessage,
    OverdueRecord,
    ReasonWaiver,
    ReminderPreference,
    Repayment,
    RiskPolicy,
    RiskReview,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
# what the shared records of ``_shared_records`` apply to: a borrower is in one of them only
# when its builder puts it there
TIGHTENED_SEGMENT = "demo-tightened"  # a risk policy tightened for the segment
QUOTA_PARTNER = "demo-partner-c"  # a funding partner whose daily quota is used up
INCIDENT_PARTNER = "demo-partner-d"  # a funding partner with a disbursement incident
BORROWER_TABLES = (ReasonWaiver, Appeal, Decision, Repayment, OverdueRecord, Instalment, Loan,
                   RiskReview, CreditScore, IdentityDocument, ComplianceHold, CreditLine,
                   ReminderPreference)
# a loan's instalments fall due every this many days (the schedule, eligibility/ledger.py)
INSTALMENT_PERIOD = 30 * DAY


@dataclass(frozen=True)
class DemoBorrower:
    id: str
    situation: str
    build: Callable[[Builder], None]
    locale: str = "zh-CN"


class Builder:
    """Writes one demo borrower's records; every helper takes amounts in yuan."""

    def __init__(self, session: Session, borrower: Borrower, now: datetime,
                 posting_window: timedelta = 2 * HOUR) -> None:
        self.session = session
        self.borrower = borrower
        self.now = now
        # how long the demo's repayments still posting take from now (RELEND_DEMO_POSTING_MINUTES)
        self.posting_window = posting_window
        self._n = 0

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}-{self.borrower.id.removeprefix('demo-')}-{self._n}"

    def line(self, limit: int, **fields: object) -> CreditLine:
        line = CreditLine(borrower_id=self.borrower.id, total_limit_cents=limit * 100, **fields)
        self.session.add(line)
        return line

    def loan(self, principal: int, outstanding: float, *, paid: int = 0, total: int = 1,
             opened_days_ago: int = 30, interest: float = 0) -> Loan:
        """A loan with its schedule: the first unpaid instalment falls due in 12 days, the
        others every 30 days around it; a repaid loan's last instalment fell due 30 days per
        instalment after opening (at the latest yesterday). Each paid instalment has its posted
        repayment, paid the day before it fell due."""
        loan = Loan(
            id=self._id("LN"), borrower_id=self.borrower.id, principal_cents=principal * 100,
            outstanding_cents=round(outstanding * 100), instalments_total=total,
            instalments_paid=paid, opened_at=self.now - opened_days_ago * DAY,
            interest_cents=round(interest * 100),
        )
        if outstanding:
            first_unpaid = self.now + 12 * DAY
            dues = [first_unpaid + (n - paid - 1) * INSTALMENT_PERIOD
                    for n in range(1, total + 1)]
        else:
            last = min(loan.opened_at + total * INSTALMENT_PERIOD, self.now - DAY)
            dues = [last - (total - n) * INSTALMENT_PERIOD for n in range(1, total + 1)]
        instalments = ledger.schedule(loan, dues)
        loan.next_due_date = dues[paid] if outstanding and paid < total else None
        self.session.add(loan)
        self.session.flush()
        for instalment in instalments:
            self.session.add(instalment)
        self.session.flush()
        for instalment in instalments[:paid]:
            self._settle(instalment, instalment.due_date - DAY)
        return loan

    def _settle(self, instalment: Instalment, paid_at: datetime) -> Repayment:
        """The instalment's posted repayment (its id names the loan and the instalment)."""
        repayment = self.session.get(Repayment, f"RP-{instalment.loan_id}-{instalment.number}")
        if repayment is None:
            repayment = Repayment(id=f"RP-{instalment.loan_id}-{instalment.number}",
                                  borrower_id=self.borrower.id, loan_id=instalment.loan_id,
                                  instalment_id=instalment.id)
            self.session.add(repayment)
        repayment.amount_cents = instalment.principal_cents + instalment.interest_cents
        repayment.paid_at = paid_at
        repayment.expected_post_at = paid_at + timedelta(hours=2)
        repayment.posted_at = paid_at + timedelta(minutes=5)
        instalment.paid_at = repayment.posted_at
        self.session.flush()
        return repayment

    def _instalments(self, loan: Loan) -> list[Instalment]:
        self.session.flush()
        return list(self.session.query(Instalment).filter(Instalment.loan_id == loan.id)
                    .order_by(Instalment.number))

    def repayment(self, loan: Loan, amount: float, *, paid_ago: timedelta,
                  posts_in: timedelta | None) -> None:
        """A posted repayment is the one that paid the loan's latest paid instalment (moved to
        ``paid_ago``); a posting one pays its first unpaid instalment."""
        paid_at = self.now - paid_ago
        posted = posts_in is None
        instalments = self._instalments(loan)
        if posted:
            done = [i for i in instalments if i.paid_at is not None]
            if done and round(amount * 100) == done[-1].principal_cents + done[-1].interest_cents:
                if paid_at > done[-1].due_date:  # paid on time: it fell due the day after
                    done[-1].due_date = paid_at + DAY
                self._settle(done[-1], paid_at)
                return
        unpaid = [i for i in instalments if i.paid_at is None]
        self.session.add(Repayment(
            id=self._id("RP"), borrower_id=self.borrower.id, loan_id=loan.id,
            amount_cents=round(amount * 100), paid_at=paid_at,
            expected_post_at=(paid_at + timedelta(hours=2)) if posted else self.now + posts_in,
            posted_at=(paid_at + timedelta(minutes=5)) if posted else None,
            instalment_id=None if posted or not unpaid else unpaid[0].id,
        ))

    def identity(self, *, expires_in: timedelta | None = 800 * DAY,
                 verified_ago: timedelta = 200 * DAY) -> None:
        self.session.add(IdentityDocument(
            borrower_id=self.borrower.id, document_type="national_id",
            expires_at=None if expires_in is None else self.now + expires_in,
            verified_at=self.now - verified_ago,
        ))

    def score(self, value: int, *, days_ago: int, **factors: object) -> None:
        self.session.add(CreditScore(
            borrower_id=self.borrower.id, score=value, recorded_at=self.now - days_ago * DAY,
            **factors,
        ))

    def limit_cut(self, previous: int, *, days_ago: int, reason: str) -> None:
        """The line's limit was lowered from ``previous`` to what it is now."""
        line = self.borrower.credit_line
        line.previous_limit_cents = previous * 100
        line.limit_changed_at = self.now - days_ago * DAY
        line.limit_change_reason = reason

    def late_payment(self, loan: Loan, amount: int, *, due_days_ago: int, days_late: int,
                     cleared_days_ago: int) -> None:
        """An instalment paid late: the loan's latest paid instalment, moved to fall due
        ``due_days_ago`` and paid when the overdue record was cleared."""
        done = [i for i in self._instalments(loan) if i.paid_at is not None]
        if done:
            done[-1].due_date = self.now - due_days_ago * DAY
            self._settle(done[-1], self.now - cleared_days_ago * DAY - timedelta(minutes=5))
        self.session.add(OverdueRecord(
            borrower_id=self.borrower.id, loan_id=loan.id, due_date=self.now - due_days_ago * DAY,
            amount_cents=amount * 100, days_overdue=days_late,
            cleared_at=self.now - cleared_days_ago * DAY,
        ))

    def add(self, record: object) -> None:
        self.session.add(record)


def local(now: datetime, days: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in Shanghai, ``days`` after today, as UTC."""
    day = now.astimezone(SHANGHAI).date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), SHANGHAI).astimezone(now.tzinfo)


def _healthy(b: Builder, limit: int = 20000) -> None:
    """An open line, valid ID, good score: the baseline every scenario starts from."""
    b.line(limit)
    b.identity()
    b.score(720, days_ago=40)
    b.score(735, days_ago=10)


def eligible(b: Builder) -> None:
    _healthy(b, 20000)
    loan = b.loan(3000, 0, paid=3, total=3, opened_days_ago=100)
    b.repayment(loan, 1000, paid_ago=20 * DAY, posts_in=None)


def repayment_posting(b: Builder) -> None:
    _healthy(b, 5000)
    loan = b.loan(5000, 5000, paid=0, total=1, opened_days_ago=28)
    b.repayment(loan, 5000, paid_ago=timedelta(minutes=10), posts_in=b.posting_window)


def limit_in_use(b: Builder) -> None:
    _healthy(b, 5000)
    loan = b.loan(5000, 4583.33, paid=1, total=12, opened_days_ago=35)
    b.repayment(loan, 416.67, paid_ago=2 * DAY, posts_in=None)


def open_loans_cap(b: Builder) -> None:
    b.line(30000, max_open_loans=3)
    b.identity()
    b.score(730, days_ago=15)
    for principal, outstanding in ((3000, 2000), (2000, 1500), (1000, 500)):
        b.loan(principal, outstanding, paid=1, total=3, opened_days_ago=45)


def risk_review(b: Builder) -> None:
    _healthy(b, 15000)
    b.add(RiskReview(borrower_id=b.borrower.id, reviewed_at=b.now - 5 * DAY, passed=False,
                     next_review_at=local(b.now, 25, 0)))


def risk_policy(b: Builder) -> None:
    """Healthy records of its own; what stops it is the segment's tightened risk policy, a
    shared record (``_shared_records``) that applies to every borrower in the segment."""
    _healthy(b, 8000)
    b.borrower.segment = TIGHTENED_SEGMENT


def score_drop(b: Builder) -> None:
    b.line(12000)
    b.identity()
    b.score(712, days_ago=45)
    b.score(598, days_ago=6, overdue_elsewhere_count=1,
            overdue_elsewhere_last_at=b.now - 20 * DAY, inquiries_count=9,
            inquiries_window_days=30, debt_ratio=0.45)


def score_inactive(b: Builder) -> None:
    b.line(10000)
    b.identity()
    b.borrower.last_drawdown_at = b.now - 420 * DAY
    b.score(655, days_ago=60)
    b.score(581, days_ago=3, debt_ratio=0.78)


def overdue(b: Builder) -> None:
    _healthy(b, 10000)
    loan = b.loan(4000, 0, paid=4, total=4, opened_days_ago=150)
    b.late_payment(loan, 1000, due_days_ago=40, days_late=12, cleared_days_ago=28)


def id_expired(b: Builder) -> None:
    b.line(20000)
    b.identity(expires_in=-3 * DAY, verified_ago=3000 * DAY)
    b.score(740, days_ago=12)


def compliance(b: Builder) -> None:
    _healthy(b, 30000)
    b.add(ComplianceHold(id="HOLD-demo-compliance", borrower_id=b.borrower.id, kind="security",
                         placed_at=b.now - 2 * DAY, expected_review_at=b.now + 3 * DAY))


def funding(b: Builder) -> None:
    _healthy(b, 20000)
    b.borrower.funding_partner = QUOTA_PARTNER


def incident(b: Builder) -> None:
    _healthy(b, 20000)
    b.borrower.funding_partner = INCIDENT_PARTNER


def closed(b: Builder) -> None:
    b.line(15000, status="closed", closed_at=b.now - 14 * DAY, closed_reason="long_inactivity")
    b.identity()
    b.score(700, days_ago=20)


def reduced(b: Builder) -> None:
    _healthy(b, 20000)
    b.limit_cut(50000, days_ago=9, reason="periodic_review")


def posting_and_incident(b: Builder) -> None:
    repayment_posting(b)
    b.borrower.funding_partner = INCIDENT_PARTNER


def id_score_funding(b: Builder) -> None:
    b.line(9000)
    b.identity(expires_in=-10 * DAY, verified_ago=2000 * DAY)
    b.score(690, days_ago=50)
    b.score(572, days_ago=4, inquiries_count=11, inquiries_window_days=30)
    b.borrower.funding_partner = QUOTA_PARTNER


def overdue_reduced_in_use(b: Builder) -> None:
    _healthy(b, 6000)
    b.limit_cut(15000, days_ago=20, reason="overdue")
    # flat interest 3,600 (300 per instalment): instalment 1 = 200 principal + 300 interest,
    # the 500 paid 5 days late
    late = b.loan(6000, 5800, paid=1, total=12, opened_days_ago=70, interest=3600)
    b.late_payment(late, 500, due_days_ago=25, days_late=5, cleared_days_ago=20)


DEMO_BORROWERS: tuple[DemoBorrower, ...] = (
    DemoBorrower("demo-eligible", "Can borrow: all 20,000 available", eligible),
    DemoBorrower("demo-posting", "Repaid 5,000 ten minutes ago; posts in 2 hours",
                 repayment_posting),
    DemoBorrower("demo-in-use", "Paid instalment 1 of 12; 4,583.33 of 5,000 still in use",
                 limit_in_use),
    DemoBorrower("demo-loan-cap", "Three open loans, cap is three", open_loans_cap),
    DemoBorrower("demo-risk-review", "Periodic risk review not passed 5 days ago", risk_review),
    DemoBorrower("demo-policy", "Segment risk policy tightened", risk_policy),
    DemoBorrower("demo-score-drop", "Score 712 -> 598: overdue elsewhere, 9 inquiries",
                 score_drop),
    DemoBorrower("demo-score-inactive", "Score 655 -> 581: 420 days inactive, debt ratio 0.78",
                 score_inactive, locale="en-US"),
    DemoBorrower("demo-overdue", "12 days late, cleared 28 days ago: cooling-off 90 days",
                 overdue),
    DemoBorrower("demo-id-expired", "National ID expired 3 days ago", id_expired),
    DemoBorrower("demo-compliance", "Security hold placed 2 days ago", compliance),
    DemoBorrower("demo-funding", "Funding partner's daily quota used up", funding,
                 locale="en-US"),
    DemoBorrower("demo-incident", "Disbursement incident at the funding partner", incident),
    DemoBorrower("demo-closed", "Line closed 14 days ago for inactivity", closed),
    DemoBorrower("demo-reduced", "Limit cut from 50,000 to 20,000 nine days ago", reduced,
                 locale="en-US"),
    DemoBorrower("demo-posting-incident", "Repayment posting + incident", posting_and_incident),
    DemoBorrower("demo-id-score-funding", "ID expired + score drop + quota used up",
                 id_score_funding),
    DemoBorrower("demo-overdue-reduced", "Cooling-off + limit reduced + limit in use",
                 overdue_reduced_in_use),
)

DEMO_NAMES = {
    "demo-eligible": "王芳", "demo-posting": "李强", "demo-in-use": "张伟", "demo-loan-cap": "刘洋",
    "demo-risk-review": "陈静", "demo-policy": "杨磊", "demo-score-drop": "赵敏",
    "demo-score-inactive": "Alex Chen", "demo-overdue": "黄婷", "demo-id-expired": "周杰",
    "demo-compliance": "吴霞", "demo-funding": "Sam Lee", "demo-incident": "徐明",
    "demo-closed": "孙丽", "demo-reduced": "Jordan Wu", "demo-posting-incident": "马超",
    "demo-id-score-funding": "朱琳", "demo-overdue-reduced": "胡军",
}


def _shared_records(now: datetime) -> list[object]:
    """Records that apply to a segment or a funding partner rather than one borrower."""
    return [
        RiskPolicy(id="DEMO-POLICY-2026Q4", segment=TIGHTENED_SEGMENT,
                   title="Q4 limit tightening for short-history borrowers",
                   effective_from=now - 12 * DAY, effective_until=local(now, 33, 0),
                   next_review_at=local(now, 18, 0)),
        FundingQuotaWindow(funding_partner=QUOTA_PARTNER, exhausted_at=now - timedelta(hours=1),
                           reopens_at=local(now, 1, 10)),
        Incident(id="DEMO-INC-0001", kind="incident",
                 title="Disbursement delays at partner bank D", funding_partner=INCIDENT_PARTNER,
                 started_at=now - timedelta(minutes=40),
                 expected_end_at=now + timedelta(hours=3)),
    ]


def seed(session: Session, now: datetime, *, posting_minutes: int = 120) -> list[str]:
    """Replace every demo record with a fresh set relative to ``now``; returns the ids.
    ``posting_minutes``: when the demo's posting repayments post (a short one shows the
    "repayment posted" notice arrive while one watches)."""
    now = now.replace(microsecond=0)

    def wipe(table: type, condition: object) -> None:
        session.execute(delete(table).where(condition)
                        .execution_options(synchronize_session=False))

    for table in BORROWER_TABLES:
        wipe(table, table.borrower_id.like("demo-%"))
    wipe(Borrower, Borrower.id.like("demo-%"))
    wipe(RiskPolicy, RiskPolicy.id.like("DEMO-%"))
    wipe(Incident, Incident.id.like("DEMO-%"))
    wipe(FundingQuotaWindow, FundingQuotaWindow.funding_partner.like("demo-%"))
    # the demo's earlier changes: their keys name the old records' times, never the new ones
    wipe(OutboxMessage, OutboxMessage.borrower_id.like("demo-%"))
    for record in _shared_records(now):
        session.add(record)
    for demo in DEMO_BORROWERS:
        borrower = Borrower(
            id=demo.id, display_name=DEMO_NAMES[demo.id], locale=demo.locale,
            timezone="Asia/Shanghai", segment="standard",
            funding_partner="partner-a", created_at=now - 900 * DAY,
            last_drawdown_at=now - 30 * DAY,
        )
        session.add(borrower)
        session.flush()
        demo.build(Builder(session, borrower, now, timedelta(minutes=posting_minutes)))
        session.flush()
    session.commit()
    return [d.id for d in DEMO_BORROWERS]
