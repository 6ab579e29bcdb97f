"""The decision-relevant changes a back-office action makes, each with its outbox rows in the
caller's transaction, and what the scheduler and those actions share: who is waiting for a
shared change, and what each change's outbox row says (the same key either way, so a change
recorded by a request is never recorded again by the scheduler)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import ledger, outbox
from .errors import ServiceError
from .models import Borrower, ComplianceHold, Decision, Incident, Instalment, Repayment


def waiting(session: Session, code: str, funding_partner: str | None) -> list[str]:
    """The borrowers (of ``funding_partner``; None: everyone) whose latest decision named
    ``code``: those told to wait for it. A shared change (a quota, an incident) is news only
    to them."""
    query = select(Borrower.id)
    if funding_partner is not None:
        query = query.where(Borrower.funding_partner == funding_partner)
    ids = list(session.execute(query).scalars())
    found = []
    for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
        latest: dict[str, Any] = {}
        for borrower_id, payload in session.execute(
            select(Decision.borrower_id, Decision.payload)
            .where(Decision.borrower_id.in_(chunk))
            .order_by(Decision.borrower_id, Decision.created_at.desc(), Decision.id.desc())
        ).all():
            latest.setdefault(borrower_id, payload)
        found += [b for b, payload in latest.items()
                  if any(r.get("code") == code for r in payload.get("reasons", []))]
    return sorted(found)


def hold_released_row(hold: ComplianceHold) -> dict[str, Any]:
    return {"kind": "hold_released", "borrower_id": hold.borrower_id, "subject": hold.id,
            "at": hold.released_at,
            "data": {"hold_id": hold.id, "hold_kind": hold.kind,
                     "released_at": ledger.iso(hold.released_at)}}


def incident_resolved_rows(incident: Incident, ended: datetime, borrower_ids: list[str]
                           ) -> list[dict[str, Any]]:
    return [{"kind": "incident_resolved", "borrower_id": borrower_id,
             "subject": f"{incident.id}:{borrower_id}", "at": ended,
             "data": {"incident_id": incident.id, "incident_kind": incident.kind,
                      "title": incident.title, "resolved_at": ledger.iso(ended)}}
            for borrower_id in borrower_ids]


def add(session: Session, row: dict[str, Any], now: datetime) -> None:
    outbox.record(session, kind=row["kind"], borrower_id=row["borrower_id"],
                  subject=row["subject"], occurred_at=row["at"], now=now, data=row["data"])


# --- back-office actions (eligibility/routes/backoffice.py) -------------------------------------


def post_repayment(session: Session, repayment_id: str, now: datetime) -> dict[str, Any]:
    """Post a repayment now (idempotent: an already posted one is returned as it is)."""
    repayment = session.get(Repayment, repayment_id)
    if repayment is None:
        raise ServiceError(404, "repayment_not_found", "No repayment with this id exists.",
                           {"repayment_id": repayment_id[:80]})
    if ledger.post_repayment(session, repayment_id, posted_at=now, now=now):
        session.commit()
    repayment = session.execute(select(Repayment).where(Repayment.id == repayment_id)
                                .execution_options(populate_existing=True)).scalar_one()
    number = session.get(Instalment, repayment.instalment_id).number \
        if repayment.instalment_id is not None else None
    return ledger.repayment_to_dict(repayment, number, now)


def release_hold(session: Session, hold_id: str, now: datetime) -> ComplianceHold:
    """Release a compliance hold now (idempotent: a released one is returned as it is)."""
    hold = session.execute(select(ComplianceHold).where(ComplianceHold.id == hold_id)
                           .with_for_update()).scalar_one_or_none()
    if hold is None:
        raise ServiceError(404, "hold_not_found", "No compliance hold with this id exists.",
                           {"hold_id": hold_id[:80]})
    if hold.released_at is None or hold.released_at > now:
        hold.released_at = now
        add(session, hold_released_row(hold), now)
    session.commit()
    return hold


def resolve_incident(session: Session, incident_id: str, now: datetime) -> Incident:
    """Mark an incident resolved now; each borrower told about it gets an outbox row
    (idempotent: a resolved one is returned as it is)."""
    incident = session.execute(select(Incident).where(Incident.id == incident_id)
                               .with_for_update()).scalar_one_or_none()
    if incident is None:
        raise ServiceError(404, "incident_not_found", "No incident with this id exists.",
                           {"incident_id": incident_id[:80]})
    if incident.resolved_at is None or incident.resolved_at > now:
        incident.resolved_at = now
        for row in incident_resolved_rows(
                incident, now, waiting(session, "SYSTEM_INCIDENT", incident.funding_partner)):
            add(session, row, now)
    session.commit()
    return incident
