"""The lender's back office (back-office token): moving appeals along their lifecycle, and the
changes borrowers wait for — posting a repayment, releasing a hold, resolving an incident —
each recorded in the outbox in its own transaction (eligibility/changes.py). Those three take
no body (one sent is ignored)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Query

from .. import changes, outbox, schemas, service
from ..deps import ACCEPTED_BODY, BACKOFFICE, NowDep, SessionDep, SettingsDep
from ..ledger import iso

router = APIRouter(dependencies=[BACKOFFICE], tags=["back office"])


@router.post("/v1/backoffice/appeals/{appeal_id}/transitions", response_model=schemas.Appeal,
             dependencies=[ACCEPTED_BODY],
             responses=schemas.error_responses(400, 401, 404, 409, 413, 415, 422))
def move_appeal(appeal_id: str, transition: schemas.AppealTransition, session: SessionDep,
                now: NowDep) -> Any:
    appeal = service.move_appeal(
        session, appeal_id, status=transition.status, note=transition.note,
        restored_limit=transition.restored_limit, now=now,
    )
    return service.appeal_to_dict(appeal)


@router.post("/v1/backoffice/repayments/{repayment_id}/post",
             response_model=schemas.RepaymentRecord, responses=schemas.error_responses(401, 404))
def post_repayment(repayment_id: str, session: SessionDep, now: NowDep) -> Any:
    """Post a repayment now: its instalment is paid, the loan's outstanding principal drops, and
    the change goes into the outbox. Posting a posted repayment changes nothing."""
    return changes.post_repayment(session, repayment_id, now)


@router.post("/v1/backoffice/holds/{hold_id}/release", response_model=schemas.Hold,
             responses=schemas.error_responses(401, 404))
def release_hold(hold_id: str, session: SessionDep, now: NowDep) -> Any:
    """Release a compliance hold now (the change goes into the outbox). Idempotent."""
    hold = changes.release_hold(session, hold_id, now)
    return {"hold_id": hold.id, "borrower_id": hold.borrower_id, "kind": hold.kind,
            "placed_at": iso(hold.placed_at), "released_at": iso(hold.released_at)}


@router.post("/v1/backoffice/incidents/{incident_id}/resolve",
             response_model=schemas.IncidentState, responses=schemas.error_responses(401, 404))
def resolve_incident(incident_id: str, session: SessionDep, now: NowDep) -> Any:
    """Mark an incident resolved now; each borrower whose latest decision named it gets an
    outbox row. Idempotent."""
    incident = changes.resolve_incident(session, incident_id, now)
    return {"incident_id": incident.id, "kind": incident.kind, "title": incident.title,
            "funding_partner": incident.funding_partner, "started_at": iso(incident.started_at),
            "expected_end_at": iso(incident.expected_end_at),
            "resolved_at": iso(incident.resolved_at)}


@router.get("/v1/backoffice/outbox", response_model=schemas.OutboxFeed,
            response_model_by_alias=True, responses=schemas.error_responses(401, 422))
def outbox_feed(session: SessionDep, settings: SettingsDep, now: NowDep,
                after_id: int = Query(0, ge=0, description="The last id already handled."),
                limit: int = Query(100, ge=1, le=1000)) -> Any:
    """The outbox as a feed, for a consumer without the broker (the embedded default): the
    messages after ``after_id``, published or not, exactly as the broker would carry them,
    once they are `RELEND_OUTBOX_FEED_SETTLE_SECONDS` old (so that none committed late is
    skipped)."""
    messages = outbox.poll(
        session.connection(), after_id=after_id, limit=limit,
        recorded_by=now - timedelta(seconds=settings.outbox_feed_settle_seconds))
    session.commit()
    return {"messages": messages,
            "next_after_id": messages[-1]["id"] if messages else after_id}
