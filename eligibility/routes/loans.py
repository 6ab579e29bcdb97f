"""A borrower's loans with their schedules, repayments and reminder settings (service token)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from .. import ledger, schemas, service
from ..deps import ACCEPTED_BODY, SERVICE, NowDep, SessionDep, SettingsDep

router = APIRouter(dependencies=[SERVICE])

MAX_PAGE = 100
Limit = Query(20, ge=1, le=MAX_PAGE, description=f"Page size, 1-{MAX_PAGE}.")
Offset = Query(0, ge=0, le=1_000_000, description="How many to skip (newest first).")


@router.get("/v1/borrowers/{borrower_id}/loans", response_model=schemas.LoanList,
            tags=["loans"], responses=schemas.error_responses(400, 401, 404, 422))
def list_loans(borrower_id: str, session: SessionDep, settings: SettingsDep, now: NowDep,
               limit: int = Limit, offset: int = Offset) -> Any:
    """The borrower's loans, newest first, each with its whole instalment schedule."""
    borrower = service.find_borrower(session, borrower_id)
    page = ledger.loans_page(session, borrower.id, now=now, limit=limit, offset=offset)
    return {"borrower_id": borrower.id, "currency": settings.currency,
            "timezone": borrower.timezone, **page}


@router.get("/v1/borrowers/{borrower_id}/repayments", response_model=schemas.RepaymentList,
            tags=["loans"], responses=schemas.error_responses(400, 401, 404, 422))
def list_repayments(borrower_id: str, session: SessionDep, settings: SettingsDep,
                    now: NowDep, limit: int = Limit, offset: int = Offset) -> Any:
    """The borrower's repayments, newest first: posted, or still posting."""
    borrower = service.find_borrower(session, borrower_id)
    page = ledger.repayments_page(session, borrower.id, now=now, limit=limit, offset=offset)
    return {"borrower_id": borrower.id, "currency": settings.currency,
            "timezone": borrower.timezone, **page}


@router.get("/v1/borrowers/{borrower_id}/reminders", response_model=schemas.ReminderSettings,
            tags=["reminders"], responses=schemas.error_responses(400, 401, 404))
def get_reminders(borrower_id: str, session: SessionDep, settings: SettingsDep) -> Any:
    borrower = service.find_borrower(session, borrower_id)
    return ledger.reminder_preference(session, borrower.id,
                                      default_enabled=settings.reminders_default,
                                      default_days=settings.reminder_days_before)


@router.put("/v1/borrowers/{borrower_id}/reminders", response_model=schemas.ReminderSettings,
            tags=["reminders"], dependencies=[ACCEPTED_BODY],
            responses=schemas.error_responses(400, 401, 404, 413, 415, 422))
def put_reminders(borrower_id: str, update: schemas.ReminderUpdate, session: SessionDep,
                  settings: SettingsDep, now: NowDep) -> Any:
    """Turn repayment reminders on or off (and choose how many days ahead). Idempotent."""
    borrower = service.find_borrower(session, borrower_id)
    current = ledger.reminder_preference(session, borrower.id,
                                         default_enabled=settings.reminders_default,
                                         default_days=settings.reminder_days_before)
    days = update.days_before if update.days_before is not None else current["days_before"]
    return ledger.set_reminder_preference(session, borrower.id, enabled=update.enabled,
                                          days_before=days, now=now)
