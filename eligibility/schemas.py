"""Request and response shapes of the HTTP API (they generate the OpenAPI spec)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Extra, Field, StrictBool, StrictStr, conint, constr

ReasonCode = constr(strict=True, regex=r"^[A-Z_]{3,60}$")


class Reason(BaseModel):
    code: str = Field(..., description="Stable reason code; see the reason table.")
    blocking: bool = Field(..., description="Whether this reason alone stops borrowing now.")
    appealable: bool
    details: dict = Field(..., description="The figures behind the reason (amounts, dates, ...).")
    retry_after: str | None = Field(None, description="When borrowing may work again (UTC).")
    next_review_at: str | None = Field(None, description="When the lender looks again (UTC).")
    self_service: list[dict] = Field(
        ..., description="Steps the borrower can take themselves, as action codes."
    )


class EligibilityDecision(BaseModel):
    borrower_id: str
    eligible: bool
    available_limit: float = Field(..., description="Unused part of the limit, major units.")
    total_limit: float
    min_drawdown: float
    currency: str
    timezone: str = Field(..., description="The borrower's IANA time zone, for showing dates.")
    decision_id: str
    checked_at: str
    reasons: list[Reason] = Field(..., description="Most important first; blocking before not.")


class AppealRequest(BaseModel):
    borrower_id: constr(strict=True, min_length=1, max_length=64)  # type: ignore[valid-type]
    decision_id: constr(strict=True, min_length=1, max_length=40)  # type: ignore[valid-type]
    reason_code: ReasonCode | None = Field(  # type: ignore[valid-type]
        None, description="The reason contested; default: the decision's first appealable one."
    )
    statement: constr(strict=True, strip_whitespace=True, min_length=1, max_length=2000)  # type: ignore[valid-type]
    channel: Literal["chat", "app", "phone", "agent"]

    class Config:
        extra = Extra.forbid


class Appeal(BaseModel):
    appeal_id: str
    borrower_id: str
    decision_id: str
    reason_code: str
    statement: str
    channel: str
    status: Literal["submitted", "in_review", "upheld", "rejected"]
    submitted_at: str
    respond_by: str = Field(..., description="When the borrower can expect an answer (UTC).")
    updated_at: str
    resolution_note: str | None
    restored_limit: float | None


class AppealList(BaseModel):
    borrower_id: str
    appeals: list[Appeal]


class AppealTransition(BaseModel):
    status: Literal["in_review", "upheld", "rejected"]
    note: constr(strict=True, strip_whitespace=True, min_length=1, max_length=2000) | None = None  # type: ignore[valid-type]
    restored_limit: conint(strict=True, ge=1, le=10000000) | None = Field(  # type: ignore[valid-type]
        None, description="Upheld only: the limit to restore (major units)."
    )

    class Config:
        extra = Extra.forbid


class Instalment(BaseModel):
    number: int = Field(..., description="1 for the first instalment of the loan.")
    due_date: str = Field(..., description="When it falls due (UTC); show it in the borrower's "
                                          "time zone.")
    principal: float
    interest: float
    amount: float = Field(..., description="principal + interest: what the borrower pays.")
    status: Literal["paid", "posting", "unpaid", "overdue"] = Field(
        ..., description="paid: its repayment posted; posting: a repayment for it was received "
                         "and is posting; overdue: unpaid after its due date; else unpaid.")
    paid_at: str | None = Field(None, description="When its repayment posted (UTC).")
    days_late: int | None = Field(
        None, description="overdue: days since the due date; paid: days it was paid late "
                          "(null when on time).")


class LoanRecord(BaseModel):
    loan_id: str
    principal: float = Field(..., description="Amount borrowed, major units.")
    interest: float = Field(..., description="Interest over the whole loan (flat, fixed at "
                                             "drawdown).")
    total_repayable: float = Field(..., description="principal + interest = the sum of the "
                                                    "instalments' amounts.")
    outstanding_principal: float = Field(..., description="Principal not yet repaid (posted "
                                                          "repayments only).")
    remaining_to_repay: float = Field(..., description="Sum of the amounts of the instalments "
                                                       "not yet paid.")
    status: Literal["open", "repaid"]
    opened_at: str
    instalments_total: int
    instalments_paid: int
    next_due_date: str | None
    instalments: list[Instalment] = Field(..., description="The whole schedule, in order.")


class LoanList(BaseModel):
    borrower_id: str
    currency: str
    timezone: str = Field(..., description="The borrower's IANA time zone, for showing dates.")
    loans: list[LoanRecord] = Field(..., description="Newest first.")
    total: int = Field(..., description="How many loans the borrower has in all.")
    next_offset: int | None = Field(..., description="The offset of the next page; null on "
                                                     "the last page.")


class RepaymentRecord(BaseModel):
    repayment_id: str
    loan_id: str
    instalment_number: int | None = Field(..., description="The instalment it pays; null for "
                                                           "an early repayment of principal.")
    amount: float
    channel: str
    paid_at: str = Field(..., description="When the borrower paid (UTC).")
    status: Literal["posted", "posting"]
    posted_at: str | None
    expected_post_at: str | None = Field(..., description="posting only: when it should post.")
    delayed: bool = Field(..., description="posting only: the expected time has passed.")


class RepaymentList(BaseModel):
    borrower_id: str
    currency: str
    timezone: str
    repayments: list[RepaymentRecord] = Field(..., description="Newest first.")
    total: int
    next_offset: int | None


class ReminderSettings(BaseModel):
    borrower_id: str
    enabled: bool
    days_before: int = Field(..., description="A reminder this many days before each due "
                                              "date, and one on the due date.")
    updated_at: str | None = Field(..., description="null: never set (the defaults apply).")


class ReminderUpdate(BaseModel):
    enabled: StrictBool
    days_before: conint(strict=True, ge=1, le=14) | None = Field(  # type: ignore[valid-type]
        None, description="Default: the current value (RELEND_REMINDER_DAYS_BEFORE at first).")

    class Config:
        extra = Extra.forbid


class Hold(BaseModel):
    hold_id: str
    borrower_id: str
    kind: str
    placed_at: str
    released_at: str | None


class IncidentState(BaseModel):
    incident_id: str
    kind: str
    title: str
    funding_partner: str | None = Field(..., description="null: every borrower is affected.")
    started_at: str
    expected_end_at: str | None
    resolved_at: str | None


class OutboxMessage(BaseModel):
    schema_: str = Field(..., alias="schema", description="relend.notice.v1")
    id: int = Field(..., description="The outbox sequence: messages come in this order.")
    key: str = Field(..., description="The change's idempotency key: dedupe on it.")
    kind: Literal["repayment_posted", "hold_released", "cooling_off_ended",
                  "funding_quota_reopened", "incident_resolved", "appeal_decided",
                  "reminder_due"]
    borrower_id: str
    occurred_at: str = Field(..., description="When the change happened (UTC).")
    recorded_at: str
    data: dict = Field(..., description="What changed, per kind (docs/backend.md).")


class OutboxFeed(BaseModel):
    messages: list[OutboxMessage] = Field(..., description="id > after_id, in id order.")
    next_after_id: int = Field(..., description="The after_id of the next call.")


class BorrowerProfile(BaseModel):
    borrower_id: str
    display_name: str
    locale: str
    timezone: str


class DemoBorrower(BaseModel):
    borrower_id: str
    name: str = Field(..., description="The borrower's display name.")
    situation: str = Field(..., description="What the demo shows, in a line (English).")
    locale: str


class DemoBorrowerList(BaseModel):
    borrowers: list[DemoBorrower] = Field(..., description="In the seed's order.")


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict


class Error(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: str
    database: str


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": Error} for status in statuses}


__all__ = [
    "Appeal", "AppealList", "AppealRequest", "AppealTransition", "BorrowerProfile",
    "DemoBorrower", "DemoBorrowerList", "EligibilityDecision", "Error", "Health", "Hold",
    "IncidentState", "Instalment", "OutboxFeed", "OutboxMessage",
    "LoanList", "LoanRecord", "Reason", "ReminderSettings", "ReminderUpdate", "RepaymentList",
    "RepaymentRecord",
    "StrictStr", "error_responses",
]
