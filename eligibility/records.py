"""Load everything a decision needs about one borrower in a single database round trip.

The decision runs on every eligibility request. Instead of one query per table, one SELECT
returns the borrower's row with each related table aggregated as a JSON array (correlated
subqueries), on SQLite and PostgreSQL alike; only the names of the JSON functions differ.
Rows come back as simple objects with the same attribute names as the ORM models, so
``eligibility.decision.evaluate`` accepts either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Boolean, bindparam, func, literal_column, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from common.types import UTCDateTime

from .models import (
    Borrower,
    ComplianceHold,
    CreditLine,
    CreditScore,
    Decision,
    FundingQuotaWindow,
    IdentityDocument,
    Incident,
    Loan,
    OverdueRecord,
    ReasonWaiver,
    Repayment,
    RiskPolicy,
    RiskReview,
)

Record = SimpleNamespace


@dataclass
class BorrowerRecords:
    id: str
    timezone: str
    segment: str
    funding_partner: str
    created_at: datetime
    last_drawdown_at: datetime | None
    credit_line: Record | None
    loans: list[Record] = field(default_factory=list)
    repayments: list[Record] = field(default_factory=list)
    risk_reviews: list[Record] = field(default_factory=list)
    credit_scores: list[Record] = field(default_factory=list)
    overdue_records: list[Record] = field(default_factory=list)
    identity_documents: list[Record] = field(default_factory=list)
    holds: list[Record] = field(default_factory=list)
    waivers: list[Record] = field(default_factory=list)


@dataclass
class DecisionInputs:
    borrower: BorrowerRecords
    policies: list[Record]
    quota_windows: list[Record]
    incidents: list[Record]
    latest_decision_id: str | None
    latest_decision_fingerprint: str | None


# attribute -> (model, sort key): lists come back in the same order as the ORM relationships
_RELATED: dict[str, tuple[Any, tuple[str, ...]]] = {
    "loans": (Loan, ("opened_at", "id")),
    "repayments": (Repayment, ("paid_at", "id")),
    "risk_reviews": (RiskReview, ("reviewed_at", "id")),
    "credit_scores": (CreditScore, ("recorded_at", "id")),
    "overdue_records": (OverdueRecord, ("due_date", "id")),
    "identity_documents": (IdentityDocument, ("id",)),
    "holds": (ComplianceHold, ("placed_at", "id")),
    "waivers": (ReasonWaiver, ("granted_at", "id")),
}
_SHARED: dict[str, tuple[Any, tuple[str, ...]]] = {
    "policies": (RiskPolicy, ("effective_from", "id")),
    "quota_windows": (FundingQuotaWindow, ("reopens_at", "id")),
    "incidents": (Incident, ("started_at", "id")),
}


def _json_row(dialect: str, table: Any) -> ColumnElement[Any]:
    build = func.json_object if dialect == "sqlite" else func.json_build_object
    args: list[Any] = []
    for column in table.c:
        args += [literal_column(f"'{column.name}'"), column]
    return build(*args)


def _json_rows(dialect: str, table: Any) -> ColumnElement[Any]:
    row = _json_row(dialect, table)
    return func.json_group_array(row) if dialect == "sqlite" else func.json_agg(row)


@cache
def _statement(dialect: str) -> Any:
    """Built once per dialect on first use; each request only binds its parameters."""
    borrower = Borrower.__table__
    now = bindparam("now", type_=UTCDateTime())
    columns: list[Any] = [borrower]
    line = CreditLine.__table__
    columns.append(select(_json_row(dialect, line)).where(line.c.borrower_id == borrower.c.id)
                   .scalar_subquery().label("credit_line"))
    for attribute, (model, _order) in _RELATED.items():
        table = model.__table__
        columns.append(select(_json_rows(dialect, table))
                       .where(table.c.borrower_id == borrower.c.id)
                       .scalar_subquery().label(attribute))
    policy, window, incident = (RiskPolicy.__table__, FundingQuotaWindow.__table__,
                                Incident.__table__)
    columns.append(select(_json_rows(dialect, policy))
                   .where(policy.c.segment == borrower.c.segment)
                   .scalar_subquery().label("policies"))
    columns.append(select(_json_rows(dialect, window))
                   .where(window.c.funding_partner == borrower.c.funding_partner,
                          window.c.reopens_at > now)
                   .scalar_subquery().label("quota_windows"))
    columns.append(select(_json_rows(dialect, incident))
                   .where(incident.c.resolved_at.is_(None) | (incident.c.resolved_at > now),
                          or_(incident.c.funding_partner.is_(None),
                              incident.c.funding_partner == borrower.c.funding_partner))
                   .scalar_subquery().label("incidents"))
    decision = Decision.__table__
    # each a correlated scalar subquery: a derived table (FROM (...)) could not see the
    # outer borrower, and would compare against another borrower's latest decision
    for column in ("id", "fingerprint"):
        columns.append(select(decision.c[column])
                       .where(decision.c.borrower_id == borrower.c.id)
                       .order_by(decision.c.created_at.desc(), decision.c.id.desc()).limit(1)
                       .scalar_subquery().label(f"latest_decision_{column}"))
    return select(*columns).where(borrower.c.id == bindparam("borrower_id"))


def _parse_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


def _records(model: Any, raw: Any, order: tuple[str, ...] = ()) -> list[Record]:
    if raw is None:
        return []
    rows = json.loads(raw) if isinstance(raw, str) else raw
    converted = []
    for row in rows:
        for column in model.__table__.c:
            if isinstance(column.type, UTCDateTime):
                row[column.name] = _parse_time(row[column.name])
            elif isinstance(column.type, Boolean) and row[column.name] is not None:
                row[column.name] = bool(row[column.name])
        converted.append(Record(**row))
    converted.sort(key=lambda r: tuple(getattr(r, name) for name in order))
    return converted


def load_decision_inputs(connection: Connection, borrower_id: str, now: datetime
                         ) -> DecisionInputs | None:
    row = connection.execute(_statement(connection.dialect.name),
                             {"borrower_id": borrower_id, "now": now}).first()
    if row is None:
        return None
    line = _records(CreditLine, f"[{row.credit_line}]" if isinstance(row.credit_line, str)
                    else [row.credit_line] if row.credit_line else None)
    borrower = BorrowerRecords(
        id=row.id, timezone=row.timezone, segment=row.segment,
        funding_partner=row.funding_partner, created_at=row.created_at,
        last_drawdown_at=row.last_drawdown_at, credit_line=line[0] if line else None,
    )
    for attribute, (model, order) in _RELATED.items():
        setattr(borrower, attribute, _records(model, getattr(row, attribute), order))
    shared = {attribute: _records(model, getattr(row, attribute), order)
              for attribute, (model, order) in _SHARED.items()}
    return DecisionInputs(
        borrower=borrower,
        latest_decision_id=row.latest_decision_id,
        latest_decision_fingerprint=row.latest_decision_fingerprint,
        **shared,
    )
