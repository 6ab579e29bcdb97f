"""The lender's records behind a decision, and the appeals filed against decisions.

Amounts are stored in minor units (fen / cents) as integers; timestamps are UTC.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import declarative_base, relationship

from common.types import UTCDateTime

Base = declarative_base()


class Borrower(Base):
    __tablename__ = "borrowers"

    id = Column(String(64), primary_key=True)
    display_name = Column(String(100), nullable=False)
    locale = Column(String(10), nullable=False, default="zh-CN")
    timezone = Column(String(40), nullable=False, default="Asia/Shanghai")
    segment = Column(String(40), nullable=False, default="standard")
    funding_partner = Column(String(40), nullable=False, default="partner-a")
    created_at = Column(UTCDateTime, nullable=False)
    last_drawdown_at = Column(UTCDateTime, nullable=True)

    credit_line = relationship("CreditLine", uselist=False, back_populates="borrower")
    loans = relationship("Loan", back_populates="borrower", order_by="Loan.opened_at")
    repayments = relationship("Repayment", order_by="Repayment.paid_at")
    risk_reviews = relationship("RiskReview", order_by="RiskReview.reviewed_at")
    credit_scores = relationship("CreditScore", order_by="CreditScore.recorded_at")
    overdue_records = relationship("OverdueRecord", order_by="OverdueRecord.due_date")
    identity_documents = relationship("IdentityDocument")
    holds = relationship("ComplianceHold", order_by="ComplianceHold.placed_at")
    waivers = relationship("ReasonWaiver")


class CreditLine(Base):
    __tablename__ = "credit_lines"

    borrower_id = Column(String(64), ForeignKey("borrowers.id"), primary_key=True)
    total_limit_cents = Column(Integer, nullable=False)
    status = Column(String(20), nullable=False, default="open")  # open | closed
    max_open_loans = Column(Integer, nullable=False, default=5)
    previous_limit_cents = Column(Integer, nullable=True)
    limit_changed_at = Column(UTCDateTime, nullable=True)
    limit_change_reason = Column(String(60), nullable=True)
    closed_at = Column(UTCDateTime, nullable=True)
    # why the line was closed: risk_review | long_inactivity | borrower_request | fraud
    closed_reason = Column(String(60), nullable=True)

    borrower = relationship("Borrower", back_populates="credit_line")


class Loan(Base):
    __tablename__ = "loans"

    id = Column(String(40), primary_key=True)
    borrower_id = Column(String(64), ForeignKey("borrowers.id"), nullable=False, index=True)
    principal_cents = Column(Integer, nullable=False)
    # principal still owed according to posted repayments
    outstanding_cents = Column(Integer, nullable=False)
    instalments_total = Column(Integer, nullable=False, default=1)
    instalments_paid = Column(Integer, nullable=False, default=0)
    opened_at = Column(UTCDateTime, nullable=False)
    next_due_date = Column(UTCDateTime, nullable=True)
    # the interest charged over the whole loan, fixed at drawdown (spread over the
    # instalments: see eligibility/ledger.py); the borrower repays principal + interest
    interest_cents = Column(Integer, nullable=False, default=0, server_default="0")

    borrower = relationship("Borrower", back_populates="loans")
    instalments = relationship("Instalment", order_by="Instalment.number",
                               back_populates="loan")


class Instalment(Base):
    """One due payment of a loan's schedule: its principal part plus its interest part."""

    __tablename__ = "instalments"
    __table_args__ = (UniqueConstraint("loan_id", "number", name="uq_instalments_loan_number"),)

    id = Column(Integer, primary_key=True, autoincrement=True)
    loan_id = Column(String(40), ForeignKey("loans.id"), nullable=False, index=True)
    borrower_id = Column(String(64), ForeignKey("borrowers.id"), nullable=False, index=True)
    number = Column(Integer, nullable=False)  # 1..loan.instalments_total
    due_date = Column(UTCDateTime, nullable=False)
    principal_cents = Column(Integer, nullable=False)
    interest_cents = Column(Integer, nullable=False, default=0)
    # when the repayment that settled it posted (NULL: not paid yet, or still posting)
    paid_at = Column(UTCDateTime, nullable=True)

    loan = relationship("Loan", back_populates="instalments")


class Repayment(Base):
    __tablename__ = "repayments"

    id = Column(String(40), primary_key=True)
    borrower_id = Column(String(64), ForeignKey("borrowers.id"), nullable=False, index=True)
    loan_id = Column(String(40), ForeignKey("loans.id"), nullable=False)
    amount_cents = Column(Integer, nullable=False)
    channel = Column(String(40), nullable=False, default="bank_card")
    paid_at = Column(UTCDateTime, nullable=False)
    # when the repayment is expected to post and restore limit; posted_at once it has
    expected_post_at = Column(UTCDateTime, nullable=False)
    posted_at = Column(UTCDateTime, nullable=True)
    # the instalment it pays (NULL: an early repayment of principal)
    instalment_id = Column(Integer, ForeignKey("instalments.id"), nullable=True)


class RiskReview(Base):
    """A periodic risk re-evaluation of one borrower."""

    __tablename__ = "risk_reviews"

    id = Column(Integer, primary_key=True, autoincrement=True)
    borrower_id = Column(String(64), ForeignKey("borrowers.id"), nullable=False, index=True)
    reviewed_at = Column(UTCDateTime, nullable=False)
    passed = Column(Boolean, nullable=False)
    next_review_at = Column(UTCDateTime, nullable=True)


class RiskPolicy(Base):
    """A risk-policy tightening that applies to a whole borrower segment for a period."""

    __tablename__ = "risk_policies"

    id = Column(String(40), primary_key=True)
    segment = Column(String(40), nullable=False, index=True)
    title = Column(String(200), nullable=False)
    effective_from = Column(UTCDateTime, nullable=False)
    effective_until = Column(UTCDateTime, nullable=True)
    next_review_at = Column(UTCDateTime, nullable=True)


class CreditScore(Base):
    """A snapshot of the borrower's internal credit score and the factors behind it."""

    __tablename__ = "credit_scores"

    id = Column(Integer, primary_key=True, autoincrement=True)
    borrower_id = Column(String(64), ForeignKey("borrowers.id"), nullable=False, index=True)
    recorded_at = Column(UTCDateTime, nullable=False)
    score = Column(Integer, nullable=False)
    overdue_elsewhere_count = Column(Integer, nullable=False, default=0)
    overdue_elsewhere_last_at = Column(UTCDateTime, nullable=True)
    inquiries_count = Column(Integer, nullable=False, default=0)
    inquiries_window_days = Column(Integer, nullable=False, default=30)
    debt_ratio = Column(Float, nullable=True)


class OverdueRecord(Base):
    """A late instalment on this product."""

    __tablename__ = "overdue_records"

    id = Column(Integer, primary_key=True, autoincrement=True)
    borrower_id = Column(String(64), ForeignKey("borrowers.id"), nullable=False, index=True)
    loan_id = Column(String(40), ForeignKey("loans.id"), nullable=False)
    due_date = Column(UTCDateTime, nullable=False)
    amount_cents = Column(Integer, nullable=False)
    days_overdue = Column(Integer, nullable=False)
    cleared_at = Column(UTCDateTime, nullable=True)


class IdentityDocument(Base):
    __tablename__ = "identity_documents"

    id = Column(Integer, primary_key=True, autoincrement=True)
    borrower_id = Column(String(64), ForeignKey("borrowers.id"), nullable=False, index=True)
    document_type = Column(String(30), nullable=False, default="national_id")
    expires_at = Column(UTCDateTime, nullable=True)
    verified_at = Column(UTCDateTime, nullable=False)


class ComplianceHold(Base):
    __tablename__ = "compliance_holds"

    id = Column(String(40), primary_key=True)
    borrower_id = Column(String(64), ForeignKey("borrowers.id"), nullable=False, index=True)
    kind = Column(String(30), nullable=False)  # security | regulatory
    placed_at = Column(UTCDateTime, nullable=False)
    expected_review_at = Column(UTCDateTime, nullable=True)
    released_at = Column(UTCDateTime, nullable=True)


class FundingQuotaWindow(Base):
    """A funding partner's daily quota running out: no new drawdowns until it reopens."""

    __tablename__ = "funding_quota_windows"

    id = Column(Integer, primary_key=True, autoincrement=True)
    funding_partner = Column(String(40), nullable=False, index=True)
    exhausted_at = Column(UTCDateTime, nullable=False)
    reopens_at = Column(UTCDateTime, nullable=False)


class Incident(Base):
    """A system incident or maintenance window affecting borrowing."""

    __tablename__ = "incidents"

    id = Column(String(40), primary_key=True)
    kind = Column(String(20), nullable=False, default="incident")  # incident | maintenance
    title = Column(String(200), nullable=False)
    # a funding partner it affects; NULL means every borrower
    funding_partner = Column(String(40), nullable=True)
    started_at = Column(UTCDateTime, nullable=False)
    expected_end_at = Column(UTCDateTime, nullable=True)
    resolved_at = Column(UTCDateTime, nullable=True)


class ReasonWaiver(Base):
    """An upheld appeal: the reason stops applying to the evidence it was judged on."""

    __tablename__ = "reason_waivers"

    id = Column(Integer, primary_key=True, autoincrement=True)
    borrower_id = Column(String(64), ForeignKey("borrowers.id"), nullable=False, index=True)
    reason_code = Column(String(60), nullable=False)
    granted_at = Column(UTCDateTime, nullable=False)
    appeal_id = Column(String(40), ForeignKey("appeals.id"), nullable=False)


class Decision(Base):
    """A decision as it was answered, so that an appeal can name exactly what it contests.

    A new row is written only when the computed decision differs from the borrower's
    latest one; otherwise the latest decision id is reused.
    """

    __tablename__ = "decisions"

    id = Column(String(40), primary_key=True)
    borrower_id = Column(String(64), ForeignKey("borrowers.id"), nullable=False, index=True)
    fingerprint = Column(String(64), nullable=False)
    created_at = Column(UTCDateTime, nullable=False)
    payload = Column(JSON, nullable=False)


class Appeal(Base):
    __tablename__ = "appeals"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_appeals_idempotency_key"),
        UniqueConstraint("open_slot", name="uq_appeals_open_slot"),
    )

    id = Column(String(40), primary_key=True)
    idempotency_key = Column(String(200), nullable=False)
    request_fingerprint = Column(String(64), nullable=False)
    borrower_id = Column(String(64), ForeignKey("borrowers.id"), nullable=False, index=True)
    decision_id = Column(String(40), ForeignKey("decisions.id"), nullable=False)
    reason_code = Column(String(60), nullable=False)
    statement = Column(Text, nullable=False)
    channel = Column(String(40), nullable=False)
    # submitted | in_review | upheld | rejected
    status = Column(String(20), nullable=False, default="submitted")
    submitted_at = Column(UTCDateTime, nullable=False)
    respond_by = Column(UTCDateTime, nullable=False)
    updated_at = Column(UTCDateTime, nullable=False)
    resolution_note = Column(Text, nullable=True)
    restored_limit_cents = Column(Integer, nullable=True)
    # one open appeal per borrower and reason: set while open, cleared when decided
    open_slot = Column(String(140), nullable=True)


class ReminderPreference(Base):
    """A borrower's choice about repayment reminders (no row: the defaults)."""

    __tablename__ = "reminder_preferences"

    borrower_id = Column(String(64), ForeignKey("borrowers.id"), primary_key=True)
    enabled = Column(Boolean, nullable=False)
    days_before = Column(Integer, nullable=False)
    updated_at = Column(UTCDateTime, nullable=False)


class OutboxMessage(Base):
    """A decision-relevant change (or a due reminder), written in the transaction that made it.

    The publisher (eligibility/outbox.py) delivers rows in ``id`` order and sets
    ``published_at`` only after the broker confirmed; ``key`` is the change's idempotency key
    (unique: recording the same change twice is refused by the database). An ``id`` is never
    given out twice, also after its row was deleted (a reseeded sandbox).
    """

    __tablename__ = "outbox"
    # AUTOINCREMENT: SQLite never gives a deleted row's id out again (consumers keep a cursor
    # on ``id``; migration 0003). PostgreSQL's sequence never goes back anyway.
    __table_args__ = (UniqueConstraint("key", name="uq_outbox_key"),
                      {"sqlite_autoincrement": True})

    id = Column(Integer, primary_key=True, autoincrement=True)
    key = Column(String(200), nullable=False)
    borrower_id = Column(String(64), nullable=False, index=True)
    kind = Column(String(40), nullable=False)
    occurred_at = Column(UTCDateTime, nullable=False)
    recorded_at = Column(UTCDateTime, nullable=False)
    payload = Column(JSON, nullable=False)
    published_at = Column(UTCDateTime, nullable=True, index=True)
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(UTCDateTime, nullable=True)
    last_error = Column(Text, nullable=True)


class SchedulerState(Base):
    """How far the scheduler (eligibility/scheduler.py) has looked: changes that come due at a
    time are recorded once that time is in (watermark, now]."""

    __tablename__ = "scheduler_state"

    name = Column(String(40), primary_key=True)
    watermark = Column(UTCDateTime, nullable=False)
