"""The scheduler: records the changes that happen because a time passes, and due reminders.

No in-process timers: every fact is in the database (a cooling-off's end follows from the
overdue record, a quota window has its ``reopens_at``, ...). ``tick`` looks at what came due
in (watermark, now] — the watermark is stored (``scheduler_state``), so a stopped scheduler
catches up when it runs again, at most ``RELEND_OUTBOX_LOOKBACK_HOURS`` back — and records
each change in its own transaction with its outbox row. Keys make it exactly once: a change
recorded before (by another tick, or by the request that made it) is skipped. Run it with
``python -m eligibility tick`` (once), ``python -m eligibility worker`` (a loop, with the
publisher) or ``RELEND_OUTBOX_WORKER_SECONDS`` (inside ``serve``).

Reminders are not watermarked (a borrower may turn them on late): an unpaid instalment gets a
``before`` reminder from ``days_before`` days ahead until its due day starts, and a
``due_day`` one from the start of its due day (the borrower's time zone) until it is due; each
at most once (its key names the instalment, the kind and the due date). Quiet hours are the
consumer's business.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from . import changes, ledger, outbox
from .decision import cents, cooling_off_days
from .models import (
    Borrower,
    ComplianceHold,
    FundingQuotaWindow,
    Incident,
    Instalment,
    OutboxMessage,
    OverdueRecord,
    ReminderPreference,
    Repayment,
    SchedulerState,
)

STATE = "changes"
DAY = timedelta(days=1)
# reminders look this far ahead for due dates (the longest ``days_before`` is 14)
REMINDER_HORIZON = 15 * DAY


@dataclass
class TickResult:
    since: datetime
    until: datetime
    recorded: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str) -> None:
        self.recorded[kind] = self.recorded.get(kind, 0) + 1


def tick(sessions: sessionmaker, now: datetime, settings: Any) -> TickResult:
    """Record every change that came due since the last tick, and every due reminder."""
    lookback = timedelta(hours=settings.outbox_lookback_hours)
    with sessions() as session:
        state = session.get(SchedulerState, STATE)
        watermark = state.watermark if state else None
    since = max(watermark, now - lookback) if watermark else now - lookback
    result = TickResult(since, now)
    if since < now:
        # the sandbox's ledger posts only what falls due after the scheduler first ran: a
        # fixture's repayment written late on purpose must stay late
        if settings.sandbox_fixtures and watermark is not None:
            _post_due_repayments(sessions, since, now, result)
        _changes(sessions, since, now, result)
    _reminders(sessions, now, settings, result)
    with sessions() as session:
        state = session.get(SchedulerState, STATE)
        if state is None:
            session.add(SchedulerState(name=STATE, watermark=now))
        elif state.watermark < now:
            state.watermark = now
        try:
            session.commit()
        except IntegrityError:  # another tick created it at the same time: its watermark holds
            session.rollback()
    return result


def _once(sessions: sessionmaker, key: str, write: Callable[[Session], bool]) -> bool:
    """Run ``write`` (which records the outbox row with ``key``) in a transaction of its own
    unless ``key`` was recorded already; False when it was (here or by a concurrent tick)."""
    with sessions() as session:
        if outbox.key_recorded(session, key):
            return False
        if not write(session):
            session.rollback()
            return False
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            return False
    return True


def _post_due_repayments(sessions: sessionmaker, since: datetime, now: datetime,
                         result: TickResult) -> None:
    """Sandbox only: the simulated ledger posts each repayment at its expected time (one that
    was already late when the window opened stays late: sandbox fixtures use that)."""
    with sessions() as session:
        due = list(session.execute(
            select(Repayment.id, Repayment.expected_post_at)
            .where(Repayment.posted_at.is_(None), Repayment.expected_post_at > since,
                   Repayment.expected_post_at <= now)
            .order_by(Repayment.expected_post_at, Repayment.id)).all())
    for repayment_id, expected in due:
        key = outbox.change_key("repayment_posted", repayment_id, expected)
        if _once(sessions, key, lambda s, r=repayment_id, e=expected: ledger.post_repayment(
                s, r, posted_at=e, now=now)):
            result.add("repayment_posted")


def _changes(sessions: sessionmaker, since: datetime, now: datetime,
             result: TickResult) -> None:
    with sessions() as session:
        holds = list(session.execute(
            select(ComplianceHold).where(ComplianceHold.released_at > since,
                                         ComplianceHold.released_at <= now)).scalars())
        # a cooling-off lasts at most 180 days after the clearing
        cleared = list(session.execute(
            select(OverdueRecord).where(OverdueRecord.cleared_at.is_not(None),
                                        OverdueRecord.cleared_at > since - 181 * DAY,
                                        OverdueRecord.cleared_at <= now)).scalars())
        windows = list(session.execute(
            select(FundingQuotaWindow).where(FundingQuotaWindow.reopens_at > since,
                                             FundingQuotaWindow.reopens_at <= now)).scalars())
        incidents = list(session.execute(
            select(Incident).where(or_(
                (Incident.resolved_at > since) & (Incident.resolved_at <= now),
                (Incident.kind == "maintenance") & Incident.resolved_at.is_(None)
                & (Incident.expected_end_at > since) & (Incident.expected_end_at <= now),
            ))).scalars())
        session.expunge_all()

    for hold in holds:
        _record_row(sessions, result, changes.hold_released_row(hold))
    for overdue in cleared:
        until = overdue.cleared_at + timedelta(days=cooling_off_days(overdue.days_overdue))
        if since < until <= now:
            _record(sessions, result, kind="cooling_off_ended", borrower_id=overdue.borrower_id,
                    subject=f"overdue-{overdue.id}", at=until,
                    data={"loan_id": overdue.loan_id, "due_date": ledger.iso(overdue.due_date),
                          "amount": cents(overdue.amount_cents),
                          "cooling_off_until": ledger.iso(until)})
    for window in windows:
        for borrower_id in _waiting(sessions, "FUNDING_QUOTA_EXHAUSTED",
                                    window.funding_partner):
            _record(sessions, result, kind="funding_quota_reopened", borrower_id=borrower_id,
                    subject=f"quota-{window.id}:{borrower_id}", at=window.reopens_at,
                    data={"funding_partner": window.funding_partner,
                          "reopens_at": ledger.iso(window.reopens_at)})
    for incident in incidents:
        ended = incident.resolved_at or incident.expected_end_at
        told = _waiting(sessions, "SYSTEM_INCIDENT", incident.funding_partner)
        for row in changes.incident_resolved_rows(incident, ended, told):
            _record_row(sessions, result, row)


def _record_row(sessions: sessionmaker, result: TickResult, row: dict[str, Any]) -> None:
    _record(sessions, result, kind=row["kind"], borrower_id=row["borrower_id"],
            subject=row["subject"], at=row["at"], data=row["data"])


def _record(sessions: sessionmaker, result: TickResult, *, kind: str, borrower_id: str,
            subject: str, at: datetime, data: dict[str, Any]) -> None:
    key = outbox.change_key(kind, subject, at)

    def write(session: Session) -> bool:
        outbox.record(session, kind=kind, borrower_id=borrower_id, subject=subject,
                      occurred_at=at, now=result.until, data=data, key=key)
        return True

    if _once(sessions, key, write):
        result.add(kind)


def _waiting(sessions: sessionmaker, code: str, funding_partner: str | None) -> list[str]:
    with sessions() as session:
        return changes.waiting(session, code, funding_partner)


def _reminders(sessions: sessionmaker, now: datetime, settings: Any,
               result: TickResult) -> None:
    query = (select(Instalment, Borrower.timezone, ReminderPreference.enabled,
                    ReminderPreference.days_before)
             .join(Borrower, Borrower.id == Instalment.borrower_id)
             .where(Instalment.paid_at.is_(None), Instalment.due_date >= now,
                    Instalment.due_date <= now + REMINDER_HORIZON)
             .order_by(Instalment.due_date, Instalment.id))
    if settings.reminders_default:  # everyone, but those who turned them off
        query = query.outerjoin(ReminderPreference,
                                ReminderPreference.borrower_id == Instalment.borrower_id)
    else:  # only those who turned them on
        query = query.join(ReminderPreference,
                           ReminderPreference.borrower_id == Instalment.borrower_id
                           ).where(ReminderPreference.enabled.is_(True))
    due: list[tuple[str, Instalment, str, int]] = []
    with sessions() as session:
        for instalment, zone, enabled, days_before in session.execute(query).all():
            if enabled is None:
                enabled, days_before = True, settings.reminder_days_before
            kind = reminder_kind(instalment.due_date, zone, days_before, now) if enabled \
                else None
            if kind is not None:
                due.append((outbox.change_key("reminder_due",
                                              f"instalment-{instalment.id}:{kind}",
                                              instalment.due_date),
                            instalment, kind, days_before))
        # one query for the reminders already recorded, not one per instalment and tick
        recorded = set(session.execute(
            select(OutboxMessage.key).where(OutboxMessage.key.in_([d[0] for d in due]))
        ).scalars()) if due else set()
        session.expunge_all()
    for key, instalment, kind, days_before in due:
        if key in recorded:
            continue

        def write(session: Session, i: Instalment = instalment, k: str = kind,
                  key: str = key, days: int = days_before) -> bool:
            # re-read in this transaction: paid (or posting) since the query above means no
            # reminder
            fresh = session.get(Instalment, i.id)
            if fresh is None or fresh.paid_at is not None or session.execute(
                    select(Repayment.id).where(Repayment.instalment_id == i.id,
                                               Repayment.posted_at.is_(None))).first():
                return False
            outbox.record(session, kind="reminder_due", borrower_id=i.borrower_id,
                          subject=f"instalment-{i.id}:{k}", occurred_at=now, now=now,
                          key=key, data={
                              "reminder": k, "loan_id": i.loan_id, "instalment_number": i.number,
                              "due_date": ledger.iso(i.due_date),
                              "amount": cents(i.principal_cents + i.interest_cents),
                              "days_before": days if k == "before" else 0})
            return True

        if _once(sessions, key, write):
            result.add("reminder_due")


def due_day_start(due_date: datetime, zone: str) -> datetime:
    """Midnight at the start of the due date's day in the borrower's time zone, as UTC."""
    tz = ZoneInfo(zone)
    local_day = due_date.astimezone(tz).date()
    return datetime.combine(local_day, time(0), tz).astimezone(due_date.tzinfo)


def reminder_kind(due_date: datetime, zone: str, days_before: int, now: datetime) -> str | None:
    """Which reminder an unpaid instalment is due for at ``now``: ``before`` from
    ``days_before`` days ahead until its due day starts, ``due_day`` on its due day until the
    due time, else None."""
    if now > due_date:
        return None
    start = due_day_start(due_date, zone)
    if now >= start:
        return "due_day"
    if now >= due_date - days_before * DAY:
        return "before"
    return None

