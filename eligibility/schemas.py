"""Request and response shapes of the HTTP API (they generate the OpenAPI spec)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Extra, Field, StrictStr, conint, constr

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
    "DemoBorrower", "DemoBorrowerList", "EligibilityDecision", "Error", "Health", "Reason",
    "StrictStr", "error_responses",
]
