"""Sandbox fixtures: put one test borrower into an exact state, relative to now.

Scripted conversation tests (``python -m qa``) use this so that they do not depend on the
demo seed drifting: ``PUT /v1/backoffice/sandbox/borrowers/qa-...`` with the records below
replaces that borrower entirely. Only ids starting with ``qa-`` can be written, only with the
back-office token, and only while RELEND_BACKEND_SANDBOX is on: by default in the sandbox
(``RELEND_ENV=sandbox``), never in production (the backend refuses to start with it on).
"""

from __future__ import annotations

import asyncio
import hmac
import json
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Extra, Field, confloat, conint, root_validator
from sqlalchemy import delete
from sqlalchemy.orm import Session

from .errors import ServiceError
from .models import Borrower, ComplianceHold, OverdueRecord, RiskReview
from .seed import BORROWER_TABLES, DAY, Builder

SANDBOX_PREFIX = "qa-"
Money = confloat(ge=0, le=10_000_000)
Days = conint(ge=-100_000, le=100_000)


class _Strict(BaseModel):
    class Config:
        extra = Extra.forbid


class LoanFixture(_Strict):
    principal: Money  # type: ignore[valid-type]
    outstanding: Money  # type: ignore[valid-type]
    instalments_paid: conint(ge=0, le=360) = 0  # type: ignore[valid-type]
    instalments_total: conint(ge=1, le=360) = 1  # type: ignore[valid-type]
    opened_days_ago: Days = 30  # type: ignore[valid-type]


class RepaymentFixture(_Strict):
    loan: conint(ge=0) = 0  # type: ignore[valid-type]
    amount: Money  # type: ignore[valid-type]
    paid_minutes_ago: conint(ge=0) = 10  # type: ignore[valid-type]
    posts_in_minutes: conint(ge=-100000) | None = Field(  # type: ignore[valid-type]
        None, description="None: already posted; negative: posting is late")
    # for scripts that wait for the posting (its notice): a few seconds, not a minute
    posts_in_seconds: conint(ge=-6_000_000, le=6_000_000) | None = Field(  # type: ignore[valid-type]
        None, description="the same in seconds (give one of the two, or neither)")

    @root_validator(skip_on_failure=True)
    def _one_posting_time(cls, values: dict[str, Any]) -> dict[str, Any]:
        if values.get("posts_in_minutes") is not None \
                and values.get("posts_in_seconds") is not None:
            raise ValueError("give posts_in_minutes or posts_in_seconds, not both")
        return values

    def posts_in(self) -> timedelta | None:
        """When it posts, from the moment the fixture is written (None: already posted)."""
        if self.posts_in_seconds is not None:
            return timedelta(seconds=self.posts_in_seconds)
        if self.posts_in_minutes is not None:
            return timedelta(minutes=self.posts_in_minutes)
        return None


class IdentityFixture(_Strict):
    expires_in_days: Days | None = 800  # type: ignore[valid-type]
    verified_days_ago: Days = 200  # type: ignore[valid-type]


class ScoreFixture(_Strict):
    score: conint(ge=0, le=1000)  # type: ignore[valid-type]
    days_ago: Days = 10  # type: ignore[valid-type]
    overdue_elsewhere: conint(ge=0) = 0  # type: ignore[valid-type]
    overdue_elsewhere_days_ago: Days | None = None  # type: ignore[valid-type]
    inquiries: conint(ge=0) = 0  # type: ignore[valid-type]
    inquiry_window_days: conint(ge=1) = 30  # type: ignore[valid-type]
    debt_ratio: confloat(ge=0, le=10) | None = None  # type: ignore[valid-type]


class ReviewFixture(_Strict):
    days_ago: Days = 5  # type: ignore[valid-type]
    passed: bool = False
    next_review_in_days: Days | None = 25  # type: ignore[valid-type]


class OverdueFixture(_Strict):
    loan: conint(ge=0) = 0  # type: ignore[valid-type]
    due_days_ago: Days = 40  # type: ignore[valid-type]
    days_overdue: conint(ge=1) = 12  # type: ignore[valid-type]
    amount: Money = 1000  # type: ignore[valid-type]
    cleared_days_ago: Days | None = 28  # type: ignore[valid-type]


class HoldFixture(_Strict):
    kind: Literal["security", "regulatory"] = "security"
    days_ago: Days = 2  # type: ignore[valid-type]
    review_in_days: Days | None = 3  # type: ignore[valid-type]


class SandboxBorrower(_Strict):
    display_name: str = "QA borrower"
    locale: Literal["zh-CN", "en-US"] = "zh-CN"
    segment: str = "standard"
    funding_partner: str = "partner-a"
    limit: Money = 20000  # type: ignore[valid-type]
    line_status: Literal["open", "closed", "none"] = "open"
    closed_reason: str | None = None
    closed_days_ago: Days = 14  # type: ignore[valid-type]
    previous_limit: Money | None = None  # type: ignore[valid-type]
    limit_changed_days_ago: Days = 9  # type: ignore[valid-type]
    limit_change_reason: str | None = None
    max_open_loans: conint(ge=1, le=50) = 5  # type: ignore[valid-type]
    inactive_days: conint(ge=0) = 30  # type: ignore[valid-type]
    loans: list[LoanFixture] = Field(default_factory=list)
    repayments: list[RepaymentFixture] = Field(default_factory=list)
    identity: IdentityFixture | None = Field(default_factory=IdentityFixture)
    scores: list[ScoreFixture] = Field(default_factory=lambda: [ScoreFixture(score=720)])
    reviews: list[ReviewFixture] = Field(default_factory=list)
    overdue: list[OverdueFixture] = Field(default_factory=list)
    holds: list[HoldFixture] = Field(default_factory=list)


def put_borrower(session: Session, borrower_id: str, fixture: SandboxBorrower,
                 now: datetime) -> None:
    """Replace ``borrower_id`` (a ``qa-`` id) with exactly the records in ``fixture``."""
    if not borrower_id.startswith(SANDBOX_PREFIX):
        raise ServiceError(400, "not_a_sandbox_id",
                           f"Sandbox fixtures only write borrowers whose id starts with "
                           f"'{SANDBOX_PREFIX}'.", {"borrower_id": borrower_id})
    now = now.replace(microsecond=0)
    for table in BORROWER_TABLES:
        session.execute(delete(table).where(table.borrower_id == borrower_id)
                        .execution_options(synchronize_session=False))
    session.execute(delete(Borrower).where(Borrower.id == borrower_id)
                    .execution_options(synchronize_session=False))
    borrower = Borrower(id=borrower_id, display_name=fixture.display_name, locale=fixture.locale,
                        timezone="Asia/Shanghai", segment=fixture.segment,
                        funding_partner=fixture.funding_partner, created_at=now - 900 * DAY,
                        last_drawdown_at=now - fixture.inactive_days * DAY)
    session.add(borrower)
    session.flush()
    b = Builder(session, borrower, now)
    if fixture.line_status != "none":
        closed = fixture.line_status == "closed"
        b.line(round(fixture.limit), status=fixture.line_status,
               max_open_loans=fixture.max_open_loans,
               closed_at=now - fixture.closed_days_ago * DAY if closed else None,
               closed_reason=fixture.closed_reason if closed else None,
               previous_limit_cents=round(fixture.previous_limit * 100)
               if fixture.previous_limit is not None else None,
               limit_changed_at=now - fixture.limit_changed_days_ago * DAY
               if fixture.previous_limit is not None else None,
               limit_change_reason=fixture.limit_change_reason)
    loans = [b.loan(round(loan.principal), loan.outstanding, paid=loan.instalments_paid,
                    total=loan.instalments_total, opened_days_ago=loan.opened_days_ago)
             for loan in fixture.loans]
    for repayment in fixture.repayments:
        b.repayment(_pick(loans, repayment.loan), repayment.amount,
                    paid_ago=timedelta(minutes=repayment.paid_minutes_ago),
                    posts_in=repayment.posts_in())
    if fixture.identity is not None:
        b.identity(expires_in=None if fixture.identity.expires_in_days is None
                   else fixture.identity.expires_in_days * DAY,
                   verified_ago=fixture.identity.verified_days_ago * DAY)
    for score in fixture.scores:
        b.score(score.score, days_ago=score.days_ago,
                overdue_elsewhere_count=score.overdue_elsewhere,
                overdue_elsewhere_last_at=now - score.overdue_elsewhere_days_ago * DAY
                if score.overdue_elsewhere_days_ago is not None else None,
                inquiries_count=score.inquiries, inquiries_window_days=score.inquiry_window_days,
                debt_ratio=score.debt_ratio)
    for review in fixture.reviews:
        b.add(RiskReview(borrower_id=borrower_id, reviewed_at=now - review.days_ago * DAY,
                         passed=review.passed,
                         next_review_at=now + review.next_review_in_days * DAY
                         if review.next_review_in_days is not None else None))
    for record in fixture.overdue:
        b.add(OverdueRecord(borrower_id=borrower_id, loan_id=_pick(loans, record.loan).id,
                            due_date=now - record.due_days_ago * DAY,
                            amount_cents=round(record.amount * 100),
                            days_overdue=record.days_overdue,
                            cleared_at=now - record.cleared_days_ago * DAY
                            if record.cleared_days_ago is not None else None))
    for n, hold in enumerate(fixture.holds, 1):
        b.add(ComplianceHold(id=f"HOLD-{borrower_id}-{n}", borrower_id=borrower_id,
                             kind=hold.kind, placed_at=now - hold.days_ago * DAY,
                             expected_review_at=now + hold.review_in_days * DAY
                             if hold.review_in_days is not None else None))
    session.commit()


def _pick(loans: list, index: int):  # type: ignore[no-untyped-def]
    if index >= len(loans):
        raise ServiceError(422, "validation_error", f"No loan number {index} in this fixture.",
                           {"fields": [{"field": "loan", "problem": "no such loan"}]})
    return loans[index]


# ---- faults: make the backend slow, failing or nonsensical (sandbox only) -------------------

FAULTS_PATH = "/v1/backoffice/sandbox/faults"


class Faults(_Strict):
    """What the backend does to the requests under ``prefix`` until cleared."""

    latency_ms: conint(ge=0, le=120_000) = 0  # type: ignore[valid-type]
    # answer this status (with a JSON error body) instead of serving the request
    status: conint(ge=400, le=599) | None = None  # type: ignore[valid-type]
    # answer 200 with a body no client can use: "json" (valid JSON of the wrong shape) or
    # "text" (not JSON at all)
    garbage: Literal["json", "text"] | None = None
    prefix: str = "/v1/borrowers/"


class SandboxFaultsMiddleware:
    """A test switch for fault tests of the whole topology (tests/topology/): ``PUT
    /v1/backoffice/sandbox/faults`` with the back-office token and a :class:`Faults` body makes
    every later request under its ``prefix`` wait ``latency_ms``, then answer ``status`` or
    garbage; ``DELETE`` clears it. State of this process only (the topology runs one backend).

    Added by ``create_app`` only while the sandbox routes are on, and inert unless the mode is
    the sandbox: production never has it (docs/production.md). The route is the middleware's
    own, so it is not in the API's OpenAPI document.
    """

    def __init__(self, app: Any, backoffice_token: str, sandbox: bool) -> None:
        self.app = app
        self.token = backoffice_token
        self.sandbox = sandbox
        self.faults: Faults | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not self.sandbox or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == FAULTS_PATH:
            await self._switch(scope, receive, send)
            return
        faults = self.faults
        if faults is None or not path.startswith(faults.prefix):
            await self.app(scope, receive, send)
            return
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.status is not None:
            await _answer(send, faults.status, json.dumps({"error": {
                "code": "sandbox_fault", "message": "A fault switched on in the sandbox."}}))
        elif faults.garbage == "json":
            await _answer(send, 200, json.dumps({"sandbox": "garbage", "eligible": "perhaps",
                                                 "reasons": 7}))
        elif faults.garbage == "text":
            await _answer(send, 200, "<html>502 upstream garbage", "text/html")
        else:
            await self.app(scope, receive, send)

    async def _switch(self, scope: Any, receive: Any, send: Any) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        given = headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
            await _answer(send, 401, json.dumps({"error": {"code": "unauthorized",
                                                           "message": "Back-office token."}}))
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "DELETE":
            self.faults = None
        elif scope["method"] == "PUT":
            try:
                self.faults = Faults.parse_raw(body or b"{}")
            except ValueError as exc:
                await _answer(send, 422, json.dumps({"error": {
                    "code": "validation_error", "message": str(exc)[:500]}}))
                return
        elif scope["method"] != "GET":
            await _answer(send, 405, json.dumps({"error": {"code": "method_not_allowed",
                                                           "message": "GET, PUT or DELETE."}}))
            return
        await _answer(send, 200, self.faults.json() if self.faults else "null")


async def _answer(send: Any, status: int, body: str,
                  content_type: str = "application/json") -> None:
    data = body.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
