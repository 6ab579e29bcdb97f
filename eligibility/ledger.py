"""Loans, their instalment schedules and repayments: building, reading and posting.

The money model (docs/backend.md, "Loans and repayments"): a loan's interest is fixed at
drawdown (``Loan.interest_cents``, flat). Principal and interest are each spread over the
instalments in equal parts rounded to the cent, the last instalment taking what rounding left
over (``principal_parts`` for a loan already part repaid), so the instalments' amounts always
add up to principal + interest exactly. The
outstanding principal is the principal less the principal parts of the paid instalments (and
less early repayments of principal). An instalment is paid when the repayment that settles it
posts; until then it is ``posting`` (a repayment is in flight), ``overdue`` (its due date has
passed) or ``unpaid``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import outbox
from .decision import cents
from .models import Instalment, Loan, ReminderPreference, Repayment


def split(total_cents: int, parts: int) -> list[int]:
    """``total_cents`` in ``parts`` equal shares rounded to the cent (half up); the last share
    takes the rounding difference, so the shares add up to ``total_cents`` exactly."""
    if parts < 1:
        raise ValueError("parts must be at least 1")
    share = (2 * total_cents + parts) // (2 * parts)
    last = total_cents - share * (parts - 1)
    if last < 0:  # only for tiny totals over many parts: fall back to rounding down
        share = total_cents // parts
        last = total_cents - share * (parts - 1)
    return [share] * (parts - 1) + [last]


def principal_parts(principal_cents: int, outstanding_cents: int, paid: int, total: int
                    ) -> list[int]:
    """The principal parts of a schedule whose first ``paid`` instalments are paid and whose
    outstanding principal is ``outstanding_cents``: the paid principal split equally over the
    paid instalments, the outstanding one over the others (a plain equal split when nothing
    was paid or everything was); they add up to ``principal_cents``."""
    parts = (split(principal_cents - outstanding_cents, paid) if paid else []) + \
        (split(outstanding_cents, total - paid) if total > paid else [])
    if sum(parts) != principal_cents or any(p < 0 for p in parts):
        return split(principal_cents, total)
    return parts


def schedule(loan: Loan, due_dates: list[datetime]) -> list[Instalment]:
    """The instalments of ``loan`` (not yet added to a session), one per due date."""
    if len(due_dates) != loan.instalments_total:
        raise ValueError("one due date per instalment")
    principal = principal_parts(loan.principal_cents, loan.outstanding_cents,
                                loan.instalments_paid, loan.instalments_total)
    interest = split(loan.interest_cents or 0, loan.instalments_total)
    return [
        Instalment(loan_id=loan.id, borrower_id=loan.borrower_id, number=n,
                   due_date=due, principal_cents=p, interest_cents=i)
        for n, (due, p, i) in enumerate(zip(due_dates, principal, interest, strict=True), 1)
    ]


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


# --- reading -----------------------------------------------------------------------------------


def instalment_status(instalment: Instalment, posting: bool, now: datetime) -> str:
    if instalment.paid_at is not None:
        return "paid"
    if posting:
        return "posting"
    return "overdue" if instalment.due_date < now else "unpaid"


def _instalment_to_dict(instalment: Instalment, posting: bool, now: datetime) -> dict[str, Any]:
    status = instalment_status(instalment, posting, now)
    late_days = None
    if status == "paid" and instalment.paid_at > instalment.due_date:
        late_days = (instalment.paid_at - instalment.due_date).days or None
    elif status == "overdue":
        late_days = max(1, (now - instalment.due_date).days)
    return {
        "number": instalment.number,
        "due_date": iso(instalment.due_date),
        "principal": cents(instalment.principal_cents),
        "interest": cents(instalment.interest_cents),
        "amount": cents(instalment.principal_cents + instalment.interest_cents),
        "status": status,
        "paid_at": iso(instalment.paid_at),
        "days_late": late_days,
    }


def loans_page(session: Session, borrower_id: str, *, now: datetime, limit: int, offset: int
               ) -> dict[str, Any]:
    """A page of the borrower's loans, newest first, each with its whole schedule. The caller
    has checked that the borrower exists."""
    total = session.execute(
        select(func.count()).select_from(Loan).where(Loan.borrower_id == borrower_id)
    ).scalar_one()
    loans = list(session.execute(
        select(Loan).where(Loan.borrower_id == borrower_id)
        .order_by(Loan.opened_at.desc(), Loan.id.desc()).limit(limit).offset(offset)
    ).scalars())
    ids = [loan.id for loan in loans]
    by_loan: dict[str, list[Instalment]] = {loan_id: [] for loan_id in ids}
    posting: set[int] = set()
    if ids:
        for instalment in session.execute(
            select(Instalment).where(Instalment.loan_id.in_(ids))
            .order_by(Instalment.loan_id, Instalment.number)
        ).scalars():
            by_loan[instalment.loan_id].append(instalment)
        posting = set(session.execute(
            select(Repayment.instalment_id).where(
                Repayment.loan_id.in_(ids), Repayment.posted_at.is_(None),
                Repayment.paid_at <= now, Repayment.instalment_id.is_not(None))
        ).scalars())
    items = []
    for loan in loans:
        instalments = [_instalment_to_dict(i, i.id in posting, now) for i in by_loan[loan.id]]
        unpaid = [i for i in by_loan[loan.id] if i.paid_at is None]
        items.append({
            "loan_id": loan.id,
            "principal": cents(loan.principal_cents),
            "interest": cents(loan.interest_cents or 0),
            "total_repayable": cents(loan.principal_cents + (loan.interest_cents or 0)),
            "outstanding_principal": cents(loan.outstanding_cents),
            "remaining_to_repay": cents(sum(i.principal_cents + i.interest_cents
                                            for i in unpaid)),
            "status": "open" if loan.outstanding_cents > 0 else "repaid",
            "opened_at": iso(loan.opened_at),
            "instalments_total": loan.instalments_total,
            "instalments_paid": loan.instalments_paid,
            "next_due_date": iso(loan.next_due_date),
            "instalments": instalments,
        })
    return {"loans": items, "total": total,
            "next_offset": offset + len(loans) if offset + len(loans) < total else None}


def repayments_page(session: Session, borrower_id: str, *, now: datetime, limit: int,
                    offset: int) -> dict[str, Any]:
    """A page of the borrower's repayments, newest first."""
    total = session.execute(
        select(func.count()).select_from(Repayment).where(Repayment.borrower_id == borrower_id)
    ).scalar_one()
    rows = session.execute(
        select(Repayment, Instalment.number)
        .outerjoin(Instalment, Instalment.id == Repayment.instalment_id)
        .where(Repayment.borrower_id == borrower_id)
        .order_by(Repayment.paid_at.desc(), Repayment.id.desc()).limit(limit).offset(offset)
    ).all()
    return {"repayments": [repayment_to_dict(r, number, now) for r, number in rows],
            "total": total,
            "next_offset": offset + len(rows) if offset + len(rows) < total else None}


def repayment_to_dict(repayment: Repayment, instalment_number: int | None, now: datetime
                      ) -> dict[str, Any]:
    posted = repayment.posted_at is not None
    return {
        "repayment_id": repayment.id,
        "loan_id": repayment.loan_id,
        "instalment_number": instalment_number,
        "amount": cents(repayment.amount_cents),
        "channel": repayment.channel,
        "paid_at": iso(repayment.paid_at),
        "status": "posted" if posted else "posting",
        "posted_at": iso(repayment.posted_at),
        "expected_post_at": None if posted else iso(repayment.expected_post_at),
        "delayed": False if posted else repayment.expected_post_at <= now,
    }


# --- posting -----------------------------------------------------------------------------------


def post_repayment(session: Session, repayment_id: str, *, posted_at: datetime, now: datetime
                   ) -> bool:
    """Post a repayment (the lender's ledger does this; the sandbox's scheduler does it at the
    expected time): the instalment it pays becomes paid, the loan's outstanding principal
    drops, and a ``repayment_posted`` change goes into the outbox — all in the caller's
    transaction (the caller commits). False: it had already posted (nothing written)."""
    claimed = session.execute(
        update(Repayment).where(Repayment.id == repayment_id, Repayment.posted_at.is_(None))
        .values(posted_at=posted_at).execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        return False
    repayment = session.execute(
        select(Repayment).where(Repayment.id == repayment_id)
        .execution_options(populate_existing=True)
    ).scalar_one()
    loan = session.get(Loan, repayment.loan_id)
    instalment = (session.get(Instalment, repayment.instalment_id)
                  if repayment.instalment_id is not None else None)
    settled = None
    if (instalment is not None and instalment.paid_at is None
            and repayment.amount_cents >= instalment.principal_cents + instalment.interest_cents):
        instalment.paid_at = posted_at
        loan.outstanding_cents = max(0, loan.outstanding_cents - instalment.principal_cents)
        settled = instalment.number
    else:  # an early repayment (or a part payment): it pays principal
        loan.outstanding_cents = max(0, loan.outstanding_cents - repayment.amount_cents)
    session.flush()
    unpaid = list(session.execute(
        select(Instalment).where(Instalment.loan_id == loan.id, Instalment.paid_at.is_(None))
        .order_by(Instalment.number)).scalars())
    loan.instalments_paid = loan.instalments_total - len(unpaid)
    loan.next_due_date = unpaid[0].due_date if unpaid and loan.outstanding_cents > 0 else None
    outbox.record(
        session, kind="repayment_posted", borrower_id=repayment.borrower_id,
        subject=repayment.id, occurred_at=posted_at, now=now,
        data={"repayment_id": repayment.id, "loan_id": loan.id,
              "amount": cents(repayment.amount_cents), "paid_at": iso(repayment.paid_at),
              "posted_at": iso(posted_at), "instalment_number": settled,
              "outstanding_principal": cents(loan.outstanding_cents)},
    )
    return True


# --- reminder preferences ----------------------------------------------------------------------


def reminder_preference(session: Session, borrower_id: str, *, default_enabled: bool,
                        default_days: int) -> dict[str, Any]:
    pref = session.get(ReminderPreference, borrower_id)
    if pref is None:
        return {"borrower_id": borrower_id, "enabled": default_enabled,
                "days_before": default_days, "updated_at": None}
    return {"borrower_id": borrower_id, "enabled": pref.enabled,
            "days_before": pref.days_before, "updated_at": iso(pref.updated_at)}


def set_reminder_preference(session: Session, borrower_id: str, *, enabled: bool,
                            days_before: int, now: datetime) -> dict[str, Any]:
    pref = session.get(ReminderPreference, borrower_id)
    if pref is None:
        pref = ReminderPreference(borrower_id=borrower_id)
        session.add(pref)
    pref.enabled = enabled
    pref.days_before = days_before
    pref.updated_at = now
    try:
        session.commit()
    except IntegrityError:  # a concurrent first PUT created the row: update that one
        session.rollback()
        pref = session.get(ReminderPreference, borrower_id)
        pref.enabled, pref.days_before, pref.updated_at = enabled, days_before, now
        session.commit()
    return {"borrower_id": borrower_id, "enabled": enabled, "days_before": days_before,
            "updated_at": iso(now)}
