"""What the HTTP API does, independent of HTTP: load records, decide, file and move appeals."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import outbox
from .decision import cents, evaluate, reason_to_dict
from .errors import ServiceError
from .models import Appeal, Borrower, CreditLine, Decision, ReasonWaiver
from .records import load_decision_inputs

BORROWER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
APPEAL_ID_PATTERN = re.compile(r"^AP[0-9]{8}-[A-Z0-9]{6}\Z")
OPEN_APPEAL_STATUSES = ("submitted", "in_review")
# which status may follow which, for the back office
APPEAL_TRANSITIONS = {
    "submitted": {"in_review", "rejected"},
    "in_review": {"upheld", "rejected"},
    "upheld": set(),
    "rejected": set(),
}
RESTORING_REASONS = {"CREDIT_LINE_CLOSED", "LIMIT_REDUCED"}


def check_borrower_id(borrower_id: str) -> None:
    if not BORROWER_ID_PATTERN.fullmatch(borrower_id):
        raise ServiceError(
            400,
            "invalid_borrower_id",
            "A borrower id is 1-64 letters, digits, '-' or '_', starting with a letter or digit.",
            {"borrower_id": borrower_id[:80]},
        )


def _not_found(borrower_id: str) -> ServiceError:
    return ServiceError(
        404,
        "borrower_not_found",
        "No borrower with this id is known to the eligibility service.",
        {"borrower_id": borrower_id},
    )


def find_borrower(session: Session, borrower_id: str) -> Borrower:
    """The borrower's profile only (no records)."""
    check_borrower_id(borrower_id)
    borrower = session.get(Borrower, borrower_id)
    if borrower is None:
        raise _not_found(borrower_id)
    return borrower


def compute_decision(
    session: Session, borrower_id: str, *, now: datetime, min_drawdown: int, currency: str
) -> dict[str, Any]:
    """The decision for one borrower now, with a decision id an appeal can refer to."""
    check_borrower_id(borrower_id)
    inputs = load_decision_inputs(session.connection(), borrower_id, now)
    if inputs is None:
        raise _not_found(borrower_id)
    borrower = inputs.borrower
    result = evaluate(inputs, now=now, min_drawdown_cents=min_drawdown * 100)
    body: dict[str, Any] = {
        "borrower_id": borrower.id,
        "eligible": result.eligible,
        "available_limit": cents(result.available_limit_cents),
        "total_limit": cents(result.total_limit_cents),
        "min_drawdown": float(min_drawdown),
        "currency": currency,
        "timezone": borrower.timezone,
        "reasons": [reason_to_dict(r) for r in result.reasons],
    }
    fingerprint = _fingerprint(body)
    if fingerprint == inputs.latest_decision_fingerprint:
        body["decision_id"] = inputs.latest_decision_id
    else:
        body["decision_id"] = _record_decision(session, borrower.id, body, fingerprint, now)
    # ends the transaction (with the new decision, or the read alone): the connection goes back
    # to the pool here, in the worker thread, and closing the session afterwards costs nothing
    session.commit()
    body["checked_at"] = now.isoformat().replace("+00:00", "Z")
    return body


def _fingerprint(payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _record_decision(session: Session, borrower_id: str, body: dict[str, Any], fingerprint: str,
                     now: datetime) -> str:
    """Add a decision whose answer differs from the borrower's latest one (the caller commits)."""
    decision_id = "dec_" + uuid.uuid4().hex[:24]
    session.add(Decision(
        id=decision_id, borrower_id=borrower_id, fingerprint=fingerprint, created_at=now,
        payload=body,
    ))
    return decision_id


def appeal_to_dict(appeal: Appeal) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "appeal_id": appeal.id,
        "borrower_id": appeal.borrower_id,
        "decision_id": appeal.decision_id,
        "reason_code": appeal.reason_code,
        "statement": appeal.statement,
        "channel": appeal.channel,
        "status": appeal.status,
        "submitted_at": iso(appeal.submitted_at),
        "respond_by": iso(appeal.respond_by),
        "updated_at": iso(appeal.updated_at),
        "resolution_note": appeal.resolution_note,
        "restored_limit": cents(appeal.restored_limit_cents)
        if appeal.restored_limit_cents is not None else None,
    }


def file_appeal(
    session: Session,
    *,
    borrower_id: str,
    decision_id: str,
    reason_code: str | None,
    statement: str,
    channel: str,
    idempotency_key: str,
    now: datetime,
    response_hours: int,
) -> tuple[Appeal, bool]:
    """File an appeal once per idempotency key. Returns (appeal, created)."""
    request_fp = _fingerprint([borrower_id, decision_id, reason_code, statement, channel])
    existing = _replay(session, idempotency_key, request_fp, borrower_id)
    if existing is not None:
        return existing, False
    find_borrower(session, borrower_id)
    decision = session.get(Decision, decision_id)
    if decision is None or decision.borrower_id != borrower_id:
        raise ServiceError(
            404, "decision_not_found",
            "No decision with this id was made for this borrower.",
            {"decision_id": decision_id, "borrower_id": borrower_id},
        )
    code = _appealed_reason(decision, reason_code)
    appeal = Appeal(
        id=f"AP{now:%Y%m%d}-" + "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")
                                         for _ in range(6)),
        idempotency_key=idempotency_key,
        request_fingerprint=request_fp,
        borrower_id=borrower_id,
        decision_id=decision_id,
        reason_code=code,
        statement=statement,
        channel=channel,
        status="submitted",
        submitted_at=now,
        respond_by=now + timedelta(hours=response_hours),
        updated_at=now,
        open_slot=f"{borrower_id}:{code}",
    )
    session.add(appeal)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = _replay(session, idempotency_key, request_fp, borrower_id)
        if existing is not None:
            return existing, False
        _raise_if_already_open(session, borrower_id, code)
        raise
    return appeal, True


def _replay(session: Session, idempotency_key: str, request_fp: str, borrower_id: str
            ) -> Appeal | None:
    """The appeal this key already filed, for the same request (the fingerprint covers the
    borrower). A different request with the key is 409; the earlier appeal's id is named only
    when it is the same borrower's own appeal, never another borrower's."""
    appeal = session.execute(
        select(Appeal).where(Appeal.idempotency_key == idempotency_key)
    ).scalar_one_or_none()
    if appeal is not None and appeal.request_fingerprint != request_fp:
        raise ServiceError(
            409, "idempotency_key_reused",
            "This Idempotency-Key was already used for a different appeal request.",
            {"appeal_id": appeal.id} if appeal.borrower_id == borrower_id else {},
        )
    return appeal


def _appealed_reason(decision: Decision, reason_code: str | None) -> str:
    reasons = decision.payload.get("reasons", [])
    appealable = [r["code"] for r in reasons if r.get("appealable")]
    if reason_code is None:
        if not appealable:
            raise ServiceError(
                422, "decision_not_appealable",
                "None of the reasons in this decision can be appealed.",
                {"decision_id": decision.id, "reason_codes": [r["code"] for r in reasons]},
            )
        return appealable[0]
    if reason_code not in {r["code"] for r in reasons}:
        raise ServiceError(
            422, "reason_not_in_decision",
            "This reason is not part of the decision being appealed.",
            {"reason_code": reason_code, "decision_id": decision.id},
        )
    if reason_code not in appealable:
        raise ServiceError(
            422, "reason_not_appealable",
            "This reason cannot be appealed.",
            {"reason_code": reason_code, "appealable_reason_codes": appealable},
        )
    return reason_code


def _raise_if_already_open(session: Session, borrower_id: str, code: str) -> None:
    """409 naming the open appeal: the slot is this borrower's (``borrower_id:code``), so the
    appeal named is always the asking borrower's own."""
    open_appeal = session.execute(
        select(Appeal).where(Appeal.open_slot == f"{borrower_id}:{code}")
    ).scalar_one_or_none()
    if open_appeal is not None:
        raise ServiceError(
            409, "appeal_already_open",
            "An appeal against this reason is already open for this borrower.",
            {"appeal_id": open_appeal.id, "status": open_appeal.status},
        )


def _check_appeal_id(appeal_id: str) -> None:
    if not APPEAL_ID_PATTERN.fullmatch(appeal_id):
        raise ServiceError(400, "invalid_appeal_id", "An appeal id looks like AP20260101-ABC234.",
                           {"appeal_id": appeal_id[:80]})


def _appeal_not_found(appeal_id: str) -> ServiceError:
    return ServiceError(404, "appeal_not_found", "No appeal with this id exists.",
                        {"appeal_id": appeal_id})


def get_appeal(session: Session, appeal_id: str) -> Appeal:
    """Any appeal (the back office's view)."""
    _check_appeal_id(appeal_id)
    appeal = session.get(Appeal, appeal_id)
    if appeal is None:
        raise _appeal_not_found(appeal_id)
    return appeal


def get_borrower_appeal(session: Session, borrower_id: str, appeal_id: str) -> Appeal:
    """One of this borrower's appeals; another borrower's is not found, exactly as a missing
    one (same status, code, message and details)."""
    find_borrower(session, borrower_id)
    _check_appeal_id(appeal_id)
    appeal = session.execute(
        select(Appeal).where(Appeal.id == appeal_id, Appeal.borrower_id == borrower_id)
    ).scalar_one_or_none()
    if appeal is None:
        raise _appeal_not_found(appeal_id)
    return appeal


def list_appeals(session: Session, borrower_id: str) -> list[Appeal]:
    find_borrower(session, borrower_id)
    return list(session.execute(
        select(Appeal).where(Appeal.borrower_id == borrower_id)
        .order_by(Appeal.submitted_at.desc(), Appeal.id)
    ).scalars())


def move_appeal(
    session: Session,
    appeal_id: str,
    *,
    status: str,
    note: str | None,
    restored_limit: int | None,
    now: datetime,
) -> Appeal:
    """Back office: move an appeal along its lifecycle; an upheld one takes effect at once."""
    get_appeal(session, appeal_id)
    appeal = session.execute(
        select(Appeal).where(Appeal.id == appeal_id).with_for_update()
        .execution_options(populate_existing=True)  # re-read the status under the lock
    ).scalar_one()
    if status not in APPEAL_TRANSITIONS[appeal.status]:
        raise ServiceError(
            409, "invalid_transition",
            f"An appeal that is {appeal.status} cannot become {status}.",
            {"status": appeal.status, "allowed": sorted(APPEAL_TRANSITIONS[appeal.status])},
        )
    if status == "rejected" and not note:
        raise ServiceError(422, "note_required", "A rejected appeal needs a reason in 'note'.")
    appeal.status = status
    appeal.updated_at = now
    if note:
        appeal.resolution_note = note
    if status in ("upheld", "rejected"):
        appeal.open_slot = None
    if status == "upheld":
        session.add(ReasonWaiver(borrower_id=appeal.borrower_id, reason_code=appeal.reason_code,
                                 granted_at=now, appeal_id=appeal.id))
        line = session.get(CreditLine, appeal.borrower_id)
        if line is not None and (appeal.reason_code in RESTORING_REASONS or restored_limit):
            new_limit = (restored_limit * 100 if restored_limit
                         else max(line.previous_limit_cents or 0, line.total_limit_cents))
            line.previous_limit_cents = line.total_limit_cents
            line.total_limit_cents = new_limit
            line.limit_changed_at = now
            line.limit_change_reason = "appeal_upheld"
            line.status = "open"
            line.closed_at = None
            line.closed_reason = None
            appeal.restored_limit_cents = new_limit
    if status in ("upheld", "rejected"):
        # the borrower waits for this: recorded in the transaction that decides the appeal
        outbox.record(session, kind="appeal_decided", borrower_id=appeal.borrower_id,
                      subject=appeal.id, occurred_at=now, now=now,
                      key=outbox.change_key("appeal_decided", appeal.id),
                      data={"appeal_id": appeal.id, "reason_code": appeal.reason_code,
                            "status": status, "resolution_note": appeal.resolution_note,
                            "restored_limit": cents(appeal.restored_limit_cents)
                            if appeal.restored_limit_cents is not None else None})
    session.commit()
    return appeal
