"""The decision's read model: what ``eligibility.decision.evaluate`` sees of one borrower.

The row types below are frozen dataclasses naming exactly the columns the decision reads.
``load_decision_inputs`` is the one place they are built, for the service and for the decision
tests alike (those store records, then load them through here). It needs one database round
trip: one SELECT returns the borrower's row with each related table aggregated as a JSON array
(correlated subqueries), on SQLite and PostgreSQL alike; only the JSON functions' names differ.
The ORM models (``eligibility.models``) are for writing records, never for deciding.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from functools import cache
from operator import itemgetter
from typing import Any

from sqlalchemy import Boolean, Table, bindparam, func, literal_column, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from common.types import UTCDateTime

from . import models

# --- the read model ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreditLineRow:
    total_limit_cents: int
    status: str
    max_open_loans: int
    previous_limit_cents: int | None
    limit_changed_at: datetime | None
    limit_change_reason: str | None
    closed_at: datetime | None
    closed_reason: str | None


@dataclass(frozen=True, slots=True)
class LoanRow:
    id: str
    principal_cents: int
    outstanding_cents: int
    instalments_total: int
    instalments_paid: int
    opened_at: datetime
    next_due_date: datetime | None


@dataclass(frozen=True, slots=True)
class RepaymentRow:
    id: str
    loan_id: str
    amount_cents: int
    paid_at: datetime
    expected_post_at: datetime
    posted_at: datetime | None


@dataclass(frozen=True, slots=True)
class RiskReviewRow:
    id: int
    reviewed_at: datetime
    passed: bool
    next_review_at: datetime | None


@dataclass(frozen=True, slots=True)
class CreditScoreRow:
    id: int
    recorded_at: datetime
    score: int
    overdue_elsewhere_count: int
    overdue_elsewhere_last_at: datetime | None
    inquiries_count: int
    inquiries_window_days: int
    debt_ratio: float | None


@dataclass(frozen=True, slots=True)
class OverdueRecordRow:
    id: int
    loan_id: str
    due_date: datetime
    amount_cents: int
    days_overdue: int
    cleared_at: datetime | None


@dataclass(frozen=True, slots=True)
class IdentityDocumentRow:
    id: int
    document_type: str
    expires_at: datetime | None
    verified_at: datetime


@dataclass(frozen=True, slots=True)
class HoldRow:
    id: str
    kind: str
    placed_at: datetime
    expected_review_at: datetime | None
    released_at: datetime | None


@dataclass(frozen=True, slots=True)
class WaiverRow:
    id: int
    reason_code: str
    granted_at: datetime


@dataclass(frozen=True, slots=True)
class PolicyRow:
    id: str
    segment: str
    effective_from: datetime
    effective_until: datetime | None
    next_review_at: datetime | None


@dataclass(frozen=True, slots=True)
class QuotaWindowRow:
    id: int
    funding_partner: str
    exhausted_at: datetime
    reopens_at: datetime


@dataclass(frozen=True, slots=True)
class IncidentRow:
    id: str
    kind: str
    title: str
    funding_partner: str | None
    started_at: datetime
    expected_end_at: datetime | None
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class BorrowerRecords:
    """One borrower and their own records, each list in time order (ids break ties)."""

    id: str
    timezone: str
    segment: str
    funding_partner: str
    created_at: datetime
    last_drawdown_at: datetime | None
    credit_line: CreditLineRow | None
    loans: tuple[LoanRow, ...]
    repayments: tuple[RepaymentRow, ...]
    risk_reviews: tuple[RiskReviewRow, ...]
    credit_scores: tuple[CreditScoreRow, ...]
    overdue_records: tuple[OverdueRecordRow, ...]
    identity_documents: tuple[IdentityDocumentRow, ...]
    holds: tuple[HoldRow, ...]
    waivers: tuple[WaiverRow, ...]


@dataclass(frozen=True, slots=True)
class DecisionInputs:
    """Everything one decision needs. The shared records are those that may apply to this
    borrower now (their segment's policies, their partner's quota windows not yet reopened,
    incidents not yet resolved): ``evaluate`` still checks each one's dates."""

    borrower: BorrowerRecords
    policies: tuple[PolicyRow, ...]
    quota_windows: tuple[QuotaWindowRow, ...]
    incidents: tuple[IncidentRow, ...]
    latest_decision_id: str | None
    latest_decision_fingerprint: str | None


# --- how each row type is read ----------------------------------------------------------------


class _Shape:
    """A row type, the table it is read from and the order its rows come in."""

    def __init__(self, row: type, model: Any, order: tuple[str, ...] = ()) -> None:
        self.row = row
        self.table: Table = model.__table__
        self.columns = [self.table.c[f.name] for f in fields(row)]
        self.times = [c.name for c in self.columns if isinstance(c.type, UTCDateTime)]
        self.flags = [c.name for c in self.columns if isinstance(c.type, Boolean)]
        self.sort_key = itemgetter(*order) if order else None

    def build(self, raw: Any) -> tuple[Any, ...]:
        """Rows from a JSON array of objects (text on SQLite, decoded on PostgreSQL)."""
        if raw is None:
            return ()
        rows = json.loads(raw) if isinstance(raw, str) else raw
        for row in rows:
            self._convert(row)
        if self.sort_key is not None:
            rows.sort(key=self.sort_key)
        return tuple(self.row(**row) for row in rows)

    def build_one(self, raw: Any) -> Any:
        if raw is None:
            return None
        return self.row(**self._convert(json.loads(raw) if isinstance(raw, str) else raw))

    def _convert(self, row: dict[str, Any]) -> dict[str, Any]:
        for name in self.times:
            row[name] = _parse_time(row[name])
        for name in self.flags:  # SQLite's JSON has 0 and 1
            if row[name] is not None:
                row[name] = bool(row[name])
        return row


_CREDIT_LINE = _Shape(CreditLineRow, models.CreditLine)
# BorrowerRecords attribute -> shape: the same order as the ORM relationships, ids break ties
_OWN: dict[str, _Shape] = {
    "loans": _Shape(LoanRow, models.Loan, ("opened_at", "id")),
    "repayments": _Shape(RepaymentRow, models.Repayment, ("paid_at", "id")),
    "risk_reviews": _Shape(RiskReviewRow, models.RiskReview, ("reviewed_at", "id")),
    "credit_scores": _Shape(CreditScoreRow, models.CreditScore, ("recorded_at", "id")),
    "overdue_records": _Shape(OverdueRecordRow, models.OverdueRecord, ("due_date", "id")),
    "identity_documents": _Shape(IdentityDocumentRow, models.IdentityDocument, ("id",)),
    "holds": _Shape(HoldRow, models.ComplianceHold, ("placed_at", "id")),
    "waivers": _Shape(WaiverRow, models.ReasonWaiver, ("granted_at", "id")),
}
_POLICIES = _Shape(PolicyRow, models.RiskPolicy, ("effective_from", "id"))
_QUOTA_WINDOWS = _Shape(QuotaWindowRow, models.FundingQuotaWindow, ("reopens_at", "id"))
_INCIDENTS = _Shape(IncidentRow, models.Incident, ("started_at", "id"))
_BORROWER_COLUMNS = ("id", "timezone", "segment", "funding_partner", "created_at",
                     "last_drawdown_at")
# PostgreSQL drops trailing zeros from fractions of a second (".12"); fromisoformat wants 3 or 6
_FRACTION = re.compile(r"\.(\d{1,6})")


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = datetime.fromisoformat(_FRACTION.sub(lambda m: "." + m[1].ljust(6, "0"), value))
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


def _json_row(dialect: str, shape: _Shape) -> ColumnElement[Any]:
    build = func.json_object if dialect == "sqlite" else func.json_build_object
    args: list[Any] = []
    for column in shape.columns:
        args += [literal_column(f"'{column.name}'"), column]
    return build(*args)


def _json_rows(dialect: str, shape: _Shape) -> ColumnElement[Any]:
    row = _json_row(dialect, shape)
    return func.json_group_array(row) if dialect == "sqlite" else func.json_agg(row)


@cache
def _statement(dialect: str) -> Any:
    """Built once per dialect on first use; each request only binds its parameters."""
    borrower = models.Borrower.__table__
    now = bindparam("now", type_=UTCDateTime())
    columns: list[Any] = [borrower.c[name] for name in _BORROWER_COLUMNS]
    line = _CREDIT_LINE.table
    columns.append(select(_json_row(dialect, _CREDIT_LINE))
                   .where(line.c.borrower_id == borrower.c.id)
                   .scalar_subquery().label("credit_line"))
    for attribute, shape in _OWN.items():
        columns.append(select(_json_rows(dialect, shape))
                       .where(shape.table.c.borrower_id == borrower.c.id)
                       .scalar_subquery().label(attribute))
    policy, window, incident = _POLICIES.table, _QUOTA_WINDOWS.table, _INCIDENTS.table
    columns.append(select(_json_rows(dialect, _POLICIES))
                   .where(policy.c.segment == borrower.c.segment)
                   .scalar_subquery().label("policies"))
    columns.append(select(_json_rows(dialect, _QUOTA_WINDOWS))
                   .where(window.c.funding_partner == borrower.c.funding_partner,
                          window.c.reopens_at > now)
                   .scalar_subquery().label("quota_windows"))
    columns.append(select(_json_rows(dialect, _INCIDENTS))
                   .where(incident.c.resolved_at.is_(None) | (incident.c.resolved_at > now),
                          or_(incident.c.funding_partner.is_(None),
                              incident.c.funding_partner == borrower.c.funding_partner))
                   .scalar_subquery().label("incidents"))
    decision = models.Decision.__table__
    # each a correlated scalar subquery: a derived table (FROM (...)) could not see the
    # outer borrower, and would compare against another borrower's latest decision
    for column in ("id", "fingerprint"):
        columns.append(select(decision.c[column])
                       .where(decision.c.borrower_id == borrower.c.id)
                       .order_by(decision.c.created_at.desc(), decision.c.id.desc()).limit(1)
                       .scalar_subquery().label(f"latest_decision_{column}"))
    return select(*columns).where(borrower.c.id == bindparam("borrower_id"))


def load_decision_inputs(connection: Connection, borrower_id: str, now: datetime
                         ) -> DecisionInputs | None:
    """The borrower's records as they stand in the database (None: no such borrower)."""
    row = connection.execute(_statement(connection.dialect.name),
                             {"borrower_id": borrower_id, "now": now}).first()
    if row is None:
        return None
    borrower = BorrowerRecords(
        **{name: row._mapping[name] for name in _BORROWER_COLUMNS},
        credit_line=_CREDIT_LINE.build_one(row.credit_line),
        **{attribute: shape.build(row._mapping[attribute]) for attribute, shape in _OWN.items()},
    )
    return DecisionInputs(
        borrower=borrower,
        policies=_POLICIES.build(row.policies),
        quota_windows=_QUOTA_WINDOWS.build(row.quota_windows),
        incidents=_INCIDENTS.build(row.incidents),
        latest_decision_id=row.latest_decision_id,
        latest_decision_fingerprint=row.latest_decision_fingerprint,
    )
