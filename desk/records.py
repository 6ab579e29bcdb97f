"""A borrower's loans, repayments and reminder setting, as the eligibility backend keeps them,
for the console's context panel (issue 13, item 2: "the agent console shows the same records"
the assistant answers from, actions/records.py).

The desk does not import the backend's code: it asks ``GET {RELEND_BACKEND_URL}/v1/borrowers/
{id}/loans``, ``/repayments`` and ``/reminders`` (service token ``RELEND_BACKEND_TOKEN``) at
once, each bounded by ``TIMEOUT_SECONDS``, and checks that the answers have the fields the
console shows. Nothing is cached: an agent reading a case wants the records as they are now.
Whoever needs other records (the in-process tests) puts any object with an ``async
fetch(borrower_id)`` method on ``app.state.desk.records``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx
from pydantic import BaseModel, StrictBool, StrictInt, StrictStr

log = logging.getLogger("relend.desk.records")

TIMEOUT_SECONDS = 5.0  # the three calls run at once; all three within this
LOANS_SHOWN = 20  # the newest loans (actions/records.py asks for as many)
REPAYMENTS_SHOWN = 20  # the newest repayments
# the backend's answers for an id it has no records of (a 404, or a 400 for a malformed id)
UNKNOWN_BORROWER = frozenset({"borrower_not_found", "invalid_borrower_id"})


class RecordsUnavailable(Exception):
    """The backend did not give the records (down, slow, refused the token, or an answer
    without the fields the console shows)."""


# --- what the console shows (eligibility/schemas.py has the whole contract) ----------------------

class _Instalment(BaseModel):
    number: StrictInt
    due_date: StrictStr
    amount: float
    principal: float
    interest: float
    status: Literal["paid", "posting", "unpaid", "overdue"]
    paid_at: StrictStr | None = None
    days_late: StrictInt | None = None


class _Loan(BaseModel):
    loan_id: StrictStr
    principal: float
    total_repayable: float
    remaining_to_repay: float
    outstanding_principal: float
    status: Literal["open", "repaid"]
    opened_at: StrictStr
    instalments_total: StrictInt
    instalments_paid: StrictInt
    next_due_date: StrictStr | None
    instalments: list[_Instalment]


class _Loans(BaseModel):
    currency: StrictStr
    timezone: StrictStr
    loans: list[_Loan]
    total: StrictInt


class _Repayment(BaseModel):
    repayment_id: StrictStr
    loan_id: StrictStr
    instalment_number: StrictInt | None
    amount: float
    paid_at: StrictStr
    status: Literal["posted", "posting"]
    posted_at: StrictStr | None
    expected_post_at: StrictStr | None
    delayed: StrictBool


class _Repayments(BaseModel):
    repayments: list[_Repayment]
    total: StrictInt


class _Reminders(BaseModel):
    enabled: StrictBool
    days_before: StrictInt
    updated_at: StrictStr | None


class RecordsSource(Protocol):
    async def fetch(self, borrower_id: str) -> dict[str, Any] | None:
        """The borrower's records; None when the backend does not know the borrower;
        ``RecordsUnavailable`` when it cannot say."""


class BackendRecords:
    """The records from the backend's API, asked afresh each time."""

    def __init__(self, base_url: str, token: str, *, timeout: float = TIMEOUT_SECONDS,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url
        self.token = token
        self.timeout = timeout
        self._transport = transport

    async def fetch(self, borrower_id: str) -> dict[str, Any] | None:
        base = f"/v1/borrowers/{quote(borrower_id, safe='')}"
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout,
                                         transport=self._transport, headers={
                                             "Authorization": f"Bearer {self.token}"}) as client:
                # httpx bounds each read and connect; this bounds the whole look
                answers = await asyncio.wait_for(asyncio.gather(
                    client.get(f"{base}/loans", params={"limit": LOANS_SHOWN}),
                    client.get(f"{base}/repayments", params={"limit": REPAYMENTS_SHOWN}),
                    client.get(f"{base}/reminders")), self.timeout)
            if any(_code(a) in UNKNOWN_BORROWER for a in answers):
                return None
            for answer in answers:
                answer.raise_for_status()
            loans = _Loans.parse_obj(answers[0].json())
            repayments = _Repayments.parse_obj(answers[1].json())
            reminders = _Reminders.parse_obj(answers[2].json())
        except (httpx.HTTPError, ValueError, asyncio.TimeoutError) as exc:
            # pydantic's ValidationError is a ValueError
            log.error("borrower %s: records unavailable from the backend (%s): %s: %s",
                      borrower_id, self.base_url, type(exc).__name__, exc)
            raise RecordsUnavailable(str(exc)) from exc
        return {"currency": loans.currency, "timezone": loans.timezone,
                "loans": [loan.dict() for loan in loans.loans], "loans_total": loans.total,
                "repayments": [r.dict() for r in repayments.repayments],
                "repayments_total": repayments.total, "reminders": reminders.dict()}


def _code(answer: httpx.Response) -> str | None:
    """The backend's error code (``{"error": {"code": ...}}``), if it sent one."""
    try:
        body = answer.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None
