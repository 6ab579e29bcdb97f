"""The outbox: decision-relevant changes recorded with the change, delivered afterwards.

Whoever changes a record that a borrower may be waiting on (a repayment posts, an appeal is
decided, ...) calls ``record`` in the same session before committing: the change and its
outbox row commit together or not at all. Changes that happen because a time passes (a
cooling-off ends, a quota reopens) and due reminders are recorded by the scheduler
(``eligibility.scheduler``) when they come due.

Delivery (the contract, docs/backend.md "Outbox"):

- every row becomes one message (``message``), in ``id`` order, with the change's
  idempotency ``key`` (also the AMQP ``message_id``): delivery is at least once, so a
  consumer dedupes on ``key``;
- ``Publisher.run_once`` sends unpublished rows through a transport and sets ``published_at``
  only for the rows the transport confirmed (RabbitMQ: publisher confirms); a failure stops
  the pass at that row (no later row overtakes it), counts an attempt and backs off
  (doubling, at most ``RELEND_OUTBOX_RETRY_MAX_SECONDS``); rows are never dropped;
- transports: ``AmqpTransport`` (``RELEND_OUTBOX_AMQP_URL`` set) and ``CallbackTransport``
  (in process: the handler returning is the confirmation). Without a broker (the embedded
  default) a consumer can also read the table itself with ``poll`` (its own cursor on ``id``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .models import OutboxMessage, SchedulerState

log = logging.getLogger("relend.eligibility.outbox")

SCHEMA = "relend.notice.v1"
KINDS = ("repayment_posted", "hold_released", "cooling_off_ended", "funding_quota_reopened",
         "incident_resolved", "appeal_decided", "reminder_due")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def change_key(kind: str, subject: str, at: datetime | None = None) -> str:
    """The idempotency key of one change: its kind, what it is about and, for changes that
    can recur on a record rebuilt with the same id (a reseeded sandbox), when it happened."""
    return f"{kind}:{subject}" + (f":{_iso(at)}" if at is not None else "")


def record(session: Session, *, kind: str, borrower_id: str, subject: str,
           occurred_at: datetime, now: datetime, data: dict[str, Any],
           key: str | None = None) -> OutboxMessage:
    """Add one change to the outbox in ``session``'s transaction (the caller commits). A key
    recorded before makes the commit fail (unique constraint), and with it the change."""
    if kind not in KINDS:
        raise ValueError(f"unknown outbox kind {kind!r}")
    row = OutboxMessage(key=key or change_key(kind, subject, occurred_at),
                        borrower_id=borrower_id, kind=kind, occurred_at=occurred_at,
                        recorded_at=now, payload=data, attempts=0)
    session.add(row)
    return row


def key_recorded(session: Session, key: str) -> bool:
    return session.execute(
        select(OutboxMessage.id).where(OutboxMessage.key == key)).first() is not None


def message(row: Any) -> dict[str, Any]:
    """The message a row becomes: the same for every transport and for ``poll``."""
    return {
        "schema": SCHEMA,
        "id": row.id,
        "key": row.key,
        "kind": row.kind,
        "borrower_id": row.borrower_id,
        "occurred_at": _iso(row.occurred_at),
        "recorded_at": _iso(row.recorded_at),
        "data": row.payload,
    }


def poll(connection: Connection, *, after_id: int = 0, limit: int = 100,
         recorded_by: datetime | None = None) -> list[dict[str, Any]]:
    """The embedded consumer interface: messages with ``id > after_id``, in ``id`` order,
    whether published or not. The consumer stores the last ``id`` it handled (and dedupes on
    ``key`` like any consumer).

    ``recorded_by``: only rows recorded by then. On PostgreSQL two transactions may commit
    their rows out of ``id`` order; a cursor that moved past an id still uncommitted would
    never see it. Reading only rows a few seconds old (the HTTP feed's
    ``RELEND_OUTBOX_FEED_SETTLE_SECONDS``) closes that gap for transactions shorter than that
    — every transaction of this service is. The rows are read up to the first one that is too
    young, so no later row is handed out before it."""
    table = OutboxMessage.__table__
    rows = connection.execute(
        select(table).where(table.c.id > after_id).order_by(table.c.id).limit(limit)).all()
    if recorded_by is not None:
        young = next((n for n, row in enumerate(rows) if row.recorded_at > recorded_by), None)
        rows = rows[:young] if young is not None else rows
    return [message(row) for row in rows]


# --- transports ---------------------------------------------------------------------------------


class Transport(Protocol):
    async def __aenter__(self) -> Transport: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def send(self, message: dict[str, Any]) -> None:
        """Return once the message is safely taken (confirmed); raise otherwise."""


class AmqpTransport:
    """RabbitMQ with publisher confirms: to a durable queue through the default exchange,
    persistent, ``mandatory`` (an unroutable message is an error, not a silent drop)."""

    def __init__(self, url: str, queue: str, *, timeout: float) -> None:
        self.url = url
        self.queue = queue
        self.timeout = timeout
        self._connection: Any = None
        self._channel: Any = None

    async def __aenter__(self) -> AmqpTransport:
        import aio_pika

        self._connection = await asyncio.wait_for(
            aio_pika.connect(self.url, timeout=self.timeout), self.timeout)
        try:
            self._channel = await self._connection.channel(publisher_confirms=True,
                                                           on_return_raises=True)
            await self._channel.declare_queue(self.queue, durable=True)
        except BaseException:
            await self._connection.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def send_many(self, messages: list[dict[str, Any]]) -> tuple[int, Exception | None]:
        """Publish the messages pipelined (in order: the channel's lock hands out delivery tags
        first come, first served), wait for every confirm; the confirmed prefix's length."""
        results = await asyncio.gather(*(self.send(m) for m in messages),
                                       return_exceptions=True)
        for n, result in enumerate(results):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                return n, result
        return len(messages), None

    async def send(self, message: dict[str, Any]) -> None:
        import aio_pika
        from pamqp.commands import Basic

        body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        confirmation = await self._channel.default_exchange.publish(
            aio_pika.Message(body, content_type="application/json", message_id=message["key"],
                             type=message["kind"],
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                             headers={"idempotency_key": message["key"]}),
            routing_key=self.queue, mandatory=True, timeout=self.timeout)
        if not isinstance(confirmation, Basic.Ack):
            raise RuntimeError(f"the broker did not confirm the message: {confirmation!r}")


class CallbackTransport:
    """In process: ``handler(message)`` returning is the confirmation; raising is a failure."""

    def __init__(self, handler: Callable[[dict[str, Any]], Awaitable[None] | None]) -> None:
        self.handler = handler

    async def __aenter__(self) -> CallbackTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, message: dict[str, Any]) -> None:
        result = self.handler(message)
        if asyncio.iscoroutine(result):
            await result


# --- the publisher ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishResult:
    published: int
    pending: int  # rows still unpublished after this pass (this pass's batch only)
    error: str | None = None


class Publisher:
    """Delivers unpublished outbox rows through a transport, in ``id`` order.

    One pass at a time across processes: a pass holds a lease (the ``publisher`` row of
    ``scheduler_state``, until ``LEASE``), so two workers never interleave (which could reorder
    messages); a pass that died leaves the lease to expire.
    """

    LEASE = timedelta(seconds=60)
    LEASE_NAME = "publisher"

    def __init__(self, sessions: sessionmaker, transport: Callable[[], Transport], *,
                 batch: int = 100, retry_max_seconds: int = 300,
                 after_send: Callable[[Sequence[int]], None] | None = None) -> None:
        self.sessions = sessions
        self.transport = transport
        self.batch = batch
        self.retry_max_seconds = retry_max_seconds
        # tests only: runs after the broker confirmed and before the rows are marked
        self.after_send = after_send

    async def run_once(self, now: datetime) -> PublishResult:
        """Deliver what is unpublished, batch after batch, until none is left or one fails."""
        if not self._lease(now, now + self.LEASE):
            return PublishResult(0, 0, "another publisher is running")
        published = 0
        started = time.monotonic()
        try:
            async with _Lazy(self.transport) as transport:
                while True:
                    result = await self._batch(transport, now)
                    published += result.published
                    if result.error is not None or result.pending or \
                            result.published < self.batch or \
                            time.monotonic() - started > self.LEASE.total_seconds() / 2:
                        # done, failed, or half the lease used: the next pass goes on
                        return PublishResult(published, result.pending, result.error)
        finally:
            self._lease(now + self.LEASE, now)

    def _lease(self, expired_by: datetime, until: datetime) -> bool:
        """Take (or give back) the lease: set it to ``until`` if it ran out by ``expired_by``."""
        with self.sessions() as session:
            taken = session.execute(
                update(SchedulerState)
                .where(SchedulerState.name == self.LEASE_NAME,
                       SchedulerState.watermark <= expired_by)
                .values(watermark=until).execution_options(synchronize_session=False)
            ).rowcount
            if not taken:
                if session.get(SchedulerState, self.LEASE_NAME) is not None:
                    return False
                session.add(SchedulerState(name=self.LEASE_NAME, watermark=until))
            try:
                session.commit()
            except IntegrityError:  # another publisher created it just now
                return False
        return True

    async def _batch(self, transport: _Lazy, now: datetime) -> PublishResult:
        with self.sessions() as session:
            rows = [message(row) for row in session.execute(
                select(OutboxMessage).where(OutboxMessage.published_at.is_(None))
                .order_by(OutboxMessage.id).limit(self.batch)).scalars()]
            head = session.get(OutboxMessage, rows[0]["id"]) if rows else None
            if head is not None and head.next_attempt_at is not None \
                    and head.next_attempt_at > now:
                return PublishResult(0, len(rows), "waiting to retry")
        if not rows:
            return PublishResult(0, 0)
        sent: list[int] = []
        error: str | None = None
        try:
            confirmed, failure = await transport.send_many(rows)
            sent = [row["id"] for row in rows[:confirmed]]
            if failure is not None:
                raise failure
        except Exception as exc:  # any failure: keep the row for a retry
            error = f"{type(exc).__name__}: {exc}"[:1000]
            log.warning("outbox: delivery stopped at row %s after %d sent: %s",
                        rows[len(sent)]["id"], len(sent), error)
        if self.after_send is not None:
            self.after_send(sent)
        with self.sessions() as session:
            if sent:
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(sent), OutboxMessage.published_at.is_(None))
                    .values(published_at=now, next_attempt_at=None, last_error=None)
                    .execution_options(synchronize_session=False))
            if error is not None:
                failed = session.get(OutboxMessage, rows[len(sent)]["id"])
                failed.attempts += 1
                delay = min(2 ** min(failed.attempts - 1, 20), self.retry_max_seconds)
                failed.next_attempt_at = now + timedelta(seconds=delay)
                failed.last_error = error
            session.commit()
        return PublishResult(len(sent), len(rows) - len(sent), error)


class _Lazy:
    """A transport opened on the first message only (a pass with nothing to send never
    connects to the broker), closed at the end of the pass."""

    def __init__(self, factory: Callable[[], Transport]) -> None:
        self.factory = factory
        self.opened: Transport | None = None

    async def __aenter__(self) -> _Lazy:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.opened is not None:
            await self.opened.__aexit__(*exc)

    async def send_many(self, messages: list[dict[str, Any]]) -> tuple[int, Exception | None]:
        if self.opened is None:
            self.opened = await self.factory().__aenter__()
        many = getattr(self.opened, "send_many", None)
        if many is not None:
            return await many(messages)
        for n, message in enumerate(messages):  # one at a time, in order
            try:
                await self.opened.send(message)
            except Exception as exc:  # the confirmed prefix ends here
                return n, exc
        return len(messages), None


def amqp_publisher(sessions: sessionmaker, settings: Any,
                   **options: Any) -> Publisher:
    """The publisher the settings describe (``RELEND_OUTBOX_AMQP_URL`` must be set)."""
    url, queue, timeout = (settings.outbox_amqp_url, settings.outbox_queue,
                           settings.outbox_confirm_timeout)
    return Publisher(sessions, lambda: AmqpTransport(url, queue, timeout=timeout),
                     batch=settings.outbox_batch,
                     retry_max_seconds=settings.outbox_retry_max_seconds, **options)
