"""Plain helpers for the backend tests (the fixtures live in conftest.py)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Connection, Engine

from common.db import make_engine, make_session_factory
from eligibility.api import create_app
from eligibility.config import Settings
from eligibility.models import (
    Appeal,
    Base,
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
from eligibility.seed import seed

SERVICE_TOKEN = "test-service-token"
BACKOFFICE_TOKEN = "test-backoffice-token"
# A fixed "now" for every test: a Tuesday, 12:00 in Shanghai.
T0 = datetime(2026, 3, 10, 4, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
DEFAULT: Any = object()  # "use the factory's default" where None means something


class Clock:
    """The app's notion of "now": fixed until a test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


# what the tests assume; ``settings_env`` says the same to a server started in a subprocess
SETTINGS = {"service_token": SERVICE_TOKEN, "backoffice_token": BACKOFFICE_TOKEN,
            "max_body_bytes": 16 * 1024, "appeal_response_hours": 72, "min_drawdown": 500,
            "currency": "CNY"}


def make_settings(database_url: str, **changes: Any) -> Settings:
    """The environment's settings (the sandbox, see tests/conftest.py) with the tests' values."""
    return Settings.from_env().copy(
        update={"database_url": database_url, **SETTINGS, **changes})


def settings_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "RELEND_BACKEND_DB_URL": database_url,
        "RELEND_BACKEND_TOKEN": SERVICE_TOKEN,
        "RELEND_BACKOFFICE_TOKEN": BACKOFFICE_TOKEN,
        "RELEND_BACKEND_MAX_BODY_BYTES": str(SETTINGS["max_body_bytes"]),
        "RELEND_APPEAL_RESPONSE_HOURS": str(SETTINGS["appeal_response_hours"]),
        "RELEND_MIN_DRAWDOWN": str(SETTINGS["min_drawdown"]),
        "RELEND_CURRENCY": str(SETTINGS["currency"]),
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def count_rows(engine: Engine, model: type, **where: Any) -> int:
    statement = select(func.count()).select_from(model)
    for column, value in where.items():
        statement = statement.where(getattr(model, column) == value)
    with engine.connect() as connection:
        return connection.execute(statement).scalar_one()


class Api:
    """The calls the tests make most, with the right token on each."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.service = bearer(SERVICE_TOKEN)
        self.backoffice = bearer(BACKOFFICE_TOKEN)
        self._keys = 0

    def eligibility(self, borrower_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/borrowers/{borrower_id}/eligibility",
                                   headers=self.service)
        assert response.status_code == 200, response.text
        return response.json()

    def new_key(self) -> str:
        self._keys += 1
        return f"test-key-{self._keys:04d}"

    def appeal(self, borrower_id: str, decision_id: str, *, key: str | None = None,
               **fields: Any) -> httpx.Response:
        body = {"borrower_id": borrower_id, "decision_id": decision_id,
                "statement": "I repaid everything on time.", "channel": "chat", **fields}
        return self.client.post("/v1/appeals", json=body,
                                headers={**self.service, "Idempotency-Key": key or self.new_key()})

    def file(self, borrower_id: str, **fields: Any) -> dict[str, Any]:
        """Ask for the borrower's decision and appeal it; the appeal must be created."""
        decision = self.eligibility(borrower_id)
        response = self.appeal(borrower_id, decision["decision_id"], **fields)
        assert response.status_code == 201, response.text
        return response.json()

    def move(self, appeal_id: str, status: str, **fields: Any) -> httpx.Response:
        return self.client.post(f"/v1/backoffice/appeals/{appeal_id}/transitions",
                                json={"status": status, **fields}, headers=self.backoffice)


class Records:
    """Tiny factory for borrower records; amounts in yuan, times absolute (use ``now``).

    Objects are transient ORM objects, linked to the borrower by its relationships; a test may
    change them at will. ``store`` writes them as rows (with ``supporting``: rows other records
    refer to, such as the appeal behind a waiver).
    """

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._n = 0
        self.supporting: list[Any] = []

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}-{self._n}"

    def borrower(self, borrower_id: str = "b-test", *, limit: int | None = 20_000,
                 identity: bool = True, score: int | None = 735, **fields: Any) -> Borrower:
        """A healthy borrower: open line, valid ID, good score, active 30 days ago."""
        values: dict[str, Any] = {
            "display_name": "Test Borrower", "locale": "zh-CN", "timezone": "Asia/Shanghai",
            "segment": "standard", "funding_partner": "partner-a",
            "created_at": self.now - 900 * DAY, "last_drawdown_at": self.now - 30 * DAY,
        }
        borrower = Borrower(id=borrower_id, **{**values, **fields})
        if limit is not None:
            self.line(borrower, limit)
        if identity:
            self.identity(borrower)
        if score is not None:
            self.score(borrower, score, at=self.now - 10 * DAY)
        return borrower

    def line(self, borrower: Borrower, limit: int, **fields: Any) -> CreditLine:
        values: dict[str, Any] = {"status": "open", "max_open_loans": 5}
        borrower.credit_line = CreditLine(borrower_id=borrower.id, total_limit_cents=limit * 100,
                                          **{**values, **fields})
        return borrower.credit_line

    def loan(self, borrower: Borrower, principal: int, outstanding: float, **fields: Any) -> Loan:
        values: dict[str, Any] = {
            "instalments_total": 1, "instalments_paid": 0, "opened_at": self.now - 30 * DAY,
            "next_due_date": self.now + 12 * DAY if outstanding else None,
        }
        loan = Loan(id=self._id("LN"), borrower_id=borrower.id, principal_cents=principal * 100,
                    outstanding_cents=round(outstanding * 100), **{**values, **fields})
        borrower.loans.append(loan)
        return loan

    def repayment(self, borrower: Borrower, loan: Loan, amount: float, *, paid_at: datetime,
                  expected_post_at: datetime, posted_at: datetime | None = None) -> Repayment:
        repayment = Repayment(
            id=self._id("RP"), borrower_id=borrower.id, loan_id=loan.id,
            amount_cents=round(amount * 100), channel="bank_card", paid_at=paid_at,
            expected_post_at=expected_post_at, posted_at=posted_at,
        )
        borrower.repayments.append(repayment)
        return repayment

    def overdue(self, borrower: Borrower, *, due_date: datetime, days_overdue: int,
                cleared_at: datetime | None, amount: int = 1000) -> OverdueRecord:
        loan = self.loan(borrower, amount, 0, opened_at=due_date - 30 * DAY)
        record = OverdueRecord(borrower_id=borrower.id, loan_id=loan.id, due_date=due_date,
                               amount_cents=amount * 100, days_overdue=days_overdue,
                               cleared_at=cleared_at)
        borrower.overdue_records.append(record)
        return record

    def identity(self, borrower: Borrower, *, verified_at: datetime | None = None,
                 expires_at: Any = DEFAULT) -> IdentityDocument:
        """A national ID verified 200 days ago, expiring in 800 (``expires_at=None``: never)."""
        document = IdentityDocument(
            borrower_id=borrower.id, document_type="national_id",
            verified_at=verified_at or self.now - 200 * DAY,
            expires_at=self.now + 800 * DAY if expires_at is DEFAULT else expires_at,
        )
        borrower.identity_documents.append(document)
        return document

    def score(self, borrower: Borrower, value: int, *, at: datetime, **factors: Any
              ) -> CreditScore:
        values: dict[str, Any] = {"overdue_elsewhere_count": 0, "inquiries_count": 0,
                                  "inquiries_window_days": 30, "debt_ratio": 0.2}
        snapshot = CreditScore(borrower_id=borrower.id, score=value, recorded_at=at,
                               **{**values, **factors})
        borrower.credit_scores.append(snapshot)
        return snapshot

    def review(self, borrower: Borrower, *, at: datetime, passed: bool,
               next_review_at: datetime | None = None) -> RiskReview:
        review = RiskReview(borrower_id=borrower.id, reviewed_at=at, passed=passed,
                            next_review_at=next_review_at)
        borrower.risk_reviews.append(review)
        return review

    def hold(self, borrower: Borrower, *, placed_at: datetime, released_at: datetime | None = None,
             expected_review_at: datetime | None = None, kind: str = "security"
             ) -> ComplianceHold:
        hold = ComplianceHold(id=self._id("HOLD"), borrower_id=borrower.id, kind=kind,
                              placed_at=placed_at, released_at=released_at,
                              expected_review_at=expected_review_at)
        borrower.holds.append(hold)
        return hold

    def waiver(self, borrower: Borrower, code: str, *, granted_at: datetime) -> ReasonWaiver:
        """A waiver, with the upheld appeal it comes from (and the decision that was appealed)."""
        self._n += 1
        n = self._n
        decision = Decision(id=f"dec_test{n:016d}", borrower_id=borrower.id, fingerprint="0" * 64,
                            created_at=granted_at, payload={"reasons": []})
        appeal = Appeal(id=f"AP20260101-TEST{n:02d}", idempotency_key=f"test-waiver-{n}",
                        request_fingerprint="0" * 64, borrower_id=borrower.id,
                        decision_id=decision.id, reason_code=code, statement="Test appeal.",
                        channel="chat", status="upheld", submitted_at=granted_at,
                        respond_by=granted_at, updated_at=granted_at)
        self.supporting += [decision, appeal]
        waiver = ReasonWaiver(borrower_id=borrower.id, reason_code=code, granted_at=granted_at,
                              appeal_id=appeal.id)
        borrower.waivers.append(waiver)
        return waiver

    def policy(self, *, segment: str, effective_from: datetime,
               effective_until: datetime | None = None, next_review_at: datetime | None = None
               ) -> RiskPolicy:
        return RiskPolicy(id=self._id("POL"), segment=segment, title="Tightening",
                          effective_from=effective_from, effective_until=effective_until,
                          next_review_at=next_review_at)

    def quota(self, *, partner: str, exhausted_at: datetime, reopens_at: datetime
              ) -> FundingQuotaWindow:
        return FundingQuotaWindow(funding_partner=partner, exhausted_at=exhausted_at,
                                  reopens_at=reopens_at)

    def incident(self, *, started_at: datetime, partner: str | None = None,
                 kind: str = "incident", expected_end_at: datetime | None = None,
                 resolved_at: datetime | None = None) -> Incident:
        return Incident(id=self._id("INC"), kind=kind, title=f"{kind} for tests",
                        funding_partner=partner, started_at=started_at,
                        expected_end_at=expected_end_at, resolved_at=resolved_at)


def store(connection: Connection, borrower: Borrower, *others: Any) -> None:
    """Insert ``borrower``, every record its relationships hold, and ``others`` (ORM objects,
    left transient) as rows, parents before children. Attributes left None take the column's
    default (or NULL); autoincrement ids come from the database."""
    objects = [borrower, *others]
    for relationship in inspect(Borrower).relationships:
        held = getattr(borrower, relationship.key)
        objects += held if relationship.uselist else [held] if held is not None else []
    rows: dict[Any, list[dict[str, Any]]] = {}
    for obj in objects:
        values = {attribute.key: getattr(obj, attribute.key)
                  for attribute in inspect(obj).mapper.column_attrs}
        rows.setdefault(obj.__table__, []).append(
            {key: value for key, value in values.items() if value is not None})
    for table in Base.metadata.sorted_tables:
        for row in rows.get(table, ()):
            connection.execute(table.insert().values(**row))


class SeededApp:
    """The app (clock at ``T0``) on a migrated database seeded with the demo borrowers at ``T0``,
    with a client and an engine of its own to look at the rows. ``settings``: changes to the
    tests' settings."""

    def __init__(self, url: str, **settings: Any) -> None:
        self.engine = make_engine(url)
        with make_session_factory(self.engine)() as session:
            self.borrower_ids = seed(session, T0)
        self.app = create_app(make_settings(url, **settings), clock=Clock(T0))
        self.client = TestClient(self.app)
        self.api = Api(self.client)

    def close(self) -> None:
        self.client.close()
        self.app.state.engine.dispose()
        self.engine.dispose()


class LiveServer:
    def __init__(self, base_url: str, database_url: str) -> None:
        self.base_url = base_url
        self.database_url = database_url
