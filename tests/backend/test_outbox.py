"""The outbox (SQLite and PostgreSQL): rows written with the change or not at all, the
scheduler's time-based changes and reminders (exactly once, with the test's clock), the
publisher against the real RabbitMQ (127.0.0.1:5672; a queue of its own per test), the
embedded poll interface, and the migration's downgrade.

Expected times are worked out by hand from eligibility/seed.py with T0 = 2026-03-10 04:00 UTC
(12:00 in Shanghai)."""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import inspect, select, update
from sqlalchemy.exc import IntegrityError

from common.db import make_engine, make_session_factory
from common.migrate import alembic_config
from eligibility import ledger, outbox
from eligibility.migrate import MIGRATIONS_DIR
from eligibility.models import (
    ComplianceHold,
    Incident,
    Loan,
    OutboxMessage,
    Repayment,
)
from eligibility.outbox import AmqpTransport, CallbackTransport, Publisher
from eligibility.scheduler import tick
from tests.conftest import run_coroutine

from .support import DAY, T0, make_settings

HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def iso(value):
    return value.isoformat().replace("+00:00", "Z")


@pytest.fixture
def sessions(engine):
    return make_session_factory(engine)


@pytest.fixture
def settings(migrated_url):
    return make_settings(migrated_url)


def rows(engine, kind=None):
    with engine.connect() as connection:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if kind:
            query = query.where(OutboxMessage.kind == kind)
        return connection.execute(query).all()


# --- in the same transaction as the change -----------------------------------------------------


def test_deciding_an_appeal_records_the_change(api, seeded, engine, clock):
    appeal = api.file("demo-reduced")
    assert rows(engine) == []  # filing is not a change the borrower waits for
    api.move(appeal["appeal_id"], "in_review")
    assert rows(engine) == []
    clock.advance(HOUR)

    response = api.move(appeal["appeal_id"], "upheld")

    assert response.status_code == 200, response.text
    (row,) = rows(engine)
    assert (row.kind, row.borrower_id, row.key) == (
        "appeal_decided", "demo-reduced", f"appeal_decided:{appeal['appeal_id']}")
    assert row.occurred_at == T0 + HOUR and row.published_at is None
    # upheld against a cut from 50,000: the limit is restored to 50,000
    assert row.payload == {"appeal_id": appeal["appeal_id"], "reason_code": "LIMIT_REDUCED",
                           "status": "upheld", "resolution_note": None,
                           "restored_limit": 50000.0}


def test_a_refused_transition_records_nothing(api, seeded, engine):
    appeal = api.file("demo-reduced")
    assert api.move(appeal["appeal_id"], "rejected").status_code == 422  # no note
    assert api.move(appeal["appeal_id"], "upheld").status_code == 409  # not in review
    assert rows(engine) == []
    assert api.move(appeal["appeal_id"], "rejected", note="Income not shown.").status_code == 200
    (row,) = rows(engine)
    assert row.payload["status"] == "rejected"
    assert row.payload["resolution_note"] == "Income not shown."


def test_a_change_that_fails_leaves_no_row_and_no_change(seeded, sessions, engine):
    # the change's own outbox row cannot be written (its key is taken): the commit fails,
    # and the repayment is not posted either
    posted_at = T0 + 2 * HOUR
    with sessions() as session:
        session.add(OutboxMessage(key=outbox.change_key("repayment_posted", "RP-posting-2",
                                                        posted_at),
                                  borrower_id="someone-else", kind="repayment_posted",
                                  occurred_at=T0, recorded_at=T0, payload={}, attempts=0))
        session.commit()
    with sessions() as session:
        assert ledger.post_repayment(session, "RP-posting-2", posted_at=posted_at,
                                     now=posted_at)
        with pytest.raises(IntegrityError):
            session.commit()
    assert [row.borrower_id for row in rows(engine)] == ["someone-else"]
    with sessions() as session:
        assert session.get(Repayment, "RP-posting-2").posted_at is None
        assert session.get(Loan, "LN-posting-1").outstanding_cents == 500_000


def test_an_uncommitted_change_leaves_no_row(seeded, sessions, engine):
    with sessions() as session:
        assert ledger.post_repayment(session, "RP-posting-2", posted_at=T0, now=T0)
        session.rollback()
    assert rows(engine) == []


def test_posting_a_repayment_twice_records_it_once(seeded, sessions, engine):
    for _ in range(2):
        with sessions() as session:
            ledger.post_repayment(session, "RP-posting-2", posted_at=T0 + HOUR, now=T0 + HOUR)
            session.commit()
    (row,) = rows(engine)
    assert row.payload == {"repayment_id": "RP-posting-2", "loan_id": "LN-posting-1",
                           "amount": 5000.0, "paid_at": iso(T0 - timedelta(minutes=10)),
                           "posted_at": iso(T0 + HOUR), "instalment_number": 1,
                           "outstanding_principal": 0.0}


# --- back-office actions: the change and its row in one request -------------------------------


def test_posting_a_repayment_in_the_back_office(api, seeded, engine, clock, sessions, settings):
    url = "/v1/backoffice/repayments/RP-posting-2/post"
    assert api.client.post(url, headers=api.service).status_code == 401
    clock.advance(HOUR)

    response = api.client.post(url, headers=api.backoffice)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "repayment_id": "RP-posting-2", "loan_id": "LN-posting-1", "instalment_number": 1,
        "amount": 5000.0, "channel": "bank_card", "paid_at": iso(T0 - timedelta(minutes=10)),
        "status": "posted", "posted_at": iso(T0 + HOUR), "expected_post_at": None,
        "delayed": False}
    (row,) = rows(engine)
    assert (row.kind, row.borrower_id, row.occurred_at) == ("repayment_posted", "demo-posting",
                                                            T0 + HOUR)
    # again: nothing changes; nor does the scheduler post it a second time
    assert api.client.post(url, headers=api.backoffice).json()["posted_at"] == iso(T0 + HOUR)
    tick(sessions, T0, settings)
    tick(sessions, T0 + 3 * HOUR, settings)
    assert [r.borrower_id for r in rows(engine, "repayment_posted")] == [
        "demo-posting", "demo-posting-incident"]
    missing = api.client.post("/v1/backoffice/repayments/RP-nope/post", headers=api.backoffice)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "repayment_not_found")


def test_releasing_a_hold_in_the_back_office(api, seeded, engine, clock, sessions, settings):
    tick(sessions, T0, settings)
    clock.advance(HOUR)
    url = "/v1/backoffice/holds/HOLD-demo-compliance/release"

    response = api.client.post(url, headers=api.backoffice)

    assert response.status_code == 200, response.text
    assert response.json() == {"hold_id": "HOLD-demo-compliance",
                               "borrower_id": "demo-compliance", "kind": "security",
                               "placed_at": iso(T0 - 2 * DAY), "released_at": iso(T0 + HOUR)}
    assert api.client.post(url, headers=api.backoffice).json()["released_at"] == iso(T0 + HOUR)
    tick(sessions, T0 + 2 * HOUR, settings)  # the release is in its window: not again
    (row,) = rows(engine, "hold_released")
    assert row.key == f"hold_released:HOLD-demo-compliance:{iso(T0 + HOUR)}"
    assert api.eligibility("demo-compliance")["eligible"] is True
    missing = api.client.post("/v1/backoffice/holds/HOLD-nope/release", headers=api.backoffice)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "hold_not_found")


def test_resolving_an_incident_in_the_back_office(api, seeded, engine, clock):
    api.eligibility("demo-incident")  # told about it; demo-posting-incident never asked
    clock.advance(HOUR)
    url = "/v1/backoffice/incidents/DEMO-INC-0001/resolve"

    response = api.client.post(url, headers=api.backoffice)

    assert response.status_code == 200, response.text
    assert response.json()["resolved_at"] == iso(T0 + HOUR)
    api.client.post(url, headers=api.backoffice)
    (row,) = rows(engine)
    assert (row.kind, row.borrower_id) == ("incident_resolved", "demo-incident")
    assert row.payload == {"incident_id": "DEMO-INC-0001", "incident_kind": "incident",
                           "title": "Disbursement delays at partner bank D",
                           "resolved_at": iso(T0 + HOUR)}


# --- the scheduler -----------------------------------------------------------------------------


def test_the_sandbox_ledger_posts_a_repayment_at_its_time(api, seeded, sessions, settings,
                                                          engine, clock):
    assert tick(sessions, T0, settings).recorded == {}
    clock.advance(2 * HOUR - timedelta(seconds=1))
    assert tick(sessions, clock.now, settings).recorded == {}

    clock.advance(timedelta(seconds=2))
    result = tick(sessions, clock.now, settings)

    # demo-posting and demo-posting-incident each repaid 5,000 posting at T0 + 2 h
    assert result.recorded == {"repayment_posted": 2}
    posted = rows(engine, "repayment_posted")
    assert sorted(r.borrower_id for r in posted) == ["demo-posting", "demo-posting-incident"]
    assert {r.occurred_at for r in posted} == {T0 + 2 * HOUR}
    assert tick(sessions, clock.now + HOUR, settings).recorded == {}
    # the records moved with it: the loan is repaid, the borrower can borrow again
    decision = api.eligibility("demo-posting")
    assert decision["eligible"] is True and decision["reasons"] == []
    (loan,) = api.client.get("/v1/borrowers/demo-posting/loans",
                             headers=api.service).json()["loans"]
    assert (loan["status"], loan["instalments"][0]["status"]) == ("repaid", "paid")


def test_a_repayment_already_late_stays_late(seeded, sessions, settings, engine):
    # a posting that was late before the scheduler's watermark (a sandbox fixture's delayed
    # repayment, written between two ticks) is left late
    tick(sessions, T0, settings)
    with sessions() as session:
        session.add(Repayment(id="RP-late", borrower_id="demo-in-use", loan_id="LN-in-use-1",
                              amount_cents=41_667, paid_at=T0 - 3 * HOUR,
                              expected_post_at=T0 - HOUR, posted_at=None))
        session.commit()
    assert "repayment_posted" not in tick(sessions, T0 + SECOND, settings).recorded
    with sessions() as session:
        assert session.get(Repayment, "RP-late").posted_at is None


def test_the_first_tick_posts_nothing_already_due(seeded, sessions, settings):
    # no watermark yet: what fell due before the scheduler ever ran is not the ledger's news
    assert "repayment_posted" not in tick(sessions, T0 + 3 * HOUR, settings).recorded
    with sessions() as session:
        assert session.get(Repayment, "RP-posting-2").posted_at is None


def test_a_stopped_scheduler_catches_up(seeded, sessions, settings, engine):
    tick(sessions, T0, settings)
    # next run 5 hours later: the posting at T0 + 2 h is in (T0, T0 + 5 h]
    assert tick(sessions, T0 + 5 * HOUR, settings).recorded == {"repayment_posted": 2}


def test_concurrent_schedulers_record_each_change_once(api, seeded, sessions, settings,
                                                       engine):
    turn_on(api, "demo-in-use", days_before=14)
    tick(sessions, T0, settings)
    errors = []

    def run():
        try:
            tick(sessions, T0 + 3 * HOUR, settings)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted((r.kind, r.borrower_id) for r in rows(engine)) == [
        ("reminder_due", "demo-in-use"), ("repayment_posted", "demo-posting"),
        ("repayment_posted", "demo-posting-incident")]


def test_cooling_off_end_is_recorded_once(seeded, sessions, settings, engine):
    tick(sessions, T0, settings)
    # demo-overdue: 12 days late, cleared 28 days ago -> 90 days -> ends at T0 + 62 days
    assert "cooling_off_ended" not in tick(sessions, T0 + 62 * DAY - HOUR, settings).recorded
    result = tick(sessions, T0 + 62 * DAY + HOUR, settings)
    assert result.recorded.get("cooling_off_ended") == 1
    (row,) = rows(engine, "cooling_off_ended")
    assert (row.borrower_id, row.occurred_at) == ("demo-overdue", T0 + 62 * DAY)
    assert row.payload["cooling_off_until"] == iso(T0 + 62 * DAY)
    assert "cooling_off_ended" not in tick(sessions, T0 + 62 * DAY + 2 * HOUR,
                                           settings).recorded


def test_a_reopened_quota_is_news_to_those_told_to_wait(api, seeded, sessions, settings,
                                                        engine):
    # both use the exhausted partner; only demo-funding was told (asked for a decision)
    assert api.eligibility("demo-funding")["reasons"][0]["code"] == "FUNDING_QUOTA_EXHAUSTED"
    tick(sessions, T0, settings)
    # reopens tomorrow 10:00 in Shanghai = T0 + 22 h
    tick(sessions, T0 + 22 * HOUR + SECOND, settings)
    (row,) = rows(engine, "funding_quota_reopened")
    assert (row.borrower_id, row.occurred_at) == ("demo-funding", T0 + 22 * HOUR)


def test_a_resolved_incident_and_a_released_hold(api, seeded, sessions, settings, engine):
    api.eligibility("demo-incident")
    tick(sessions, T0, settings)
    with sessions() as session:
        session.execute(update(Incident).where(Incident.id == "DEMO-INC-0001")
                        .values(resolved_at=T0 + HOUR))
        session.execute(update(ComplianceHold).where(ComplianceHold.id == "HOLD-demo-compliance")
                        .values(released_at=T0 + 90 * 60 * SECOND))
        session.commit()
    result = tick(sessions, T0 + 2 * HOUR - timedelta(seconds=1), settings)
    assert result.recorded == {"incident_resolved": 1, "hold_released": 1}
    (incident,) = rows(engine, "incident_resolved")
    assert incident.borrower_id == "demo-incident"  # demo-posting-incident never asked
    assert incident.key == f"incident_resolved:DEMO-INC-0001:demo-incident:{iso(T0 + HOUR)}"
    (hold,) = rows(engine, "hold_released")
    assert (hold.borrower_id, hold.payload["hold_kind"]) == ("demo-compliance", "security")


# --- reminders ---------------------------------------------------------------------------------


def reminders(engine):
    return [(r.borrower_id, r.payload["reminder"], r.payload["instalment_number"])
            for r in rows(engine, "reminder_due")]


def turn_on(api, borrower_id, **fields):
    response = api.client.put(f"/v1/borrowers/{borrower_id}/reminders", headers=api.service,
                              json={"enabled": True, **fields})
    assert response.status_code == 200, response.text


def test_reminders_come_once_before_and_once_on_the_due_day(api, seeded, sessions, settings,
                                                            engine):
    turn_on(api, "demo-in-use")
    # instalment 2 falls due at T0 + 12 days (12:00 in Shanghai): "before" from T0 + 9 days,
    # "due_day" from midnight in Shanghai that day (T0 + 12 days - 12 h)
    for at in (T0, T0 + 9 * DAY - HOUR):
        tick(sessions, at, settings)
        assert reminders(engine) == []
    for at in (T0 + 9 * DAY, T0 + 10 * DAY, T0 + 12 * DAY - 12 * HOUR - SECOND):
        tick(sessions, at, settings)
        assert reminders(engine) == [("demo-in-use", "before", 2)]
    for at in (T0 + 12 * DAY - 12 * HOUR, T0 + 12 * DAY, T0 + 12 * DAY + HOUR):
        tick(sessions, at, settings)
    assert reminders(engine) == [("demo-in-use", "before", 2), ("demo-in-use", "due_day", 2)]
    before, due_day = rows(engine, "reminder_due")
    assert before.payload == {"reminder": "before", "loan_id": "LN-in-use-1",
                              "instalment_number": 2, "due_date": iso(T0 + 12 * DAY),
                              "amount": 416.67, "days_before": 3}
    assert due_day.payload["days_before"] == 0


def test_no_reminders_when_off_paid_or_being_paid(api, seeded, sessions, settings, engine):
    # demo-loan-cap's instalments fall due at T0 + 12 days too, but reminders are off;
    # demo-posting's only instalment is being paid; demo-eligible's are all paid
    turn_on(api, "demo-posting")
    turn_on(api, "demo-eligible")
    for at in (T0 + 9 * DAY + HOUR, T0 + 12 * DAY - HOUR):
        tick(sessions, at, settings)
    assert reminders(engine) == []


def test_a_reminder_stops_once_the_instalment_is_paid(api, seeded, sessions, settings, engine):
    turn_on(api, "demo-posting", days_before=14)
    with sessions() as session:  # the posting repayment posted early: instalment 1 is paid
        ledger.post_repayment(session, "RP-posting-2", posted_at=T0, now=T0)
        session.commit()
    tick(sessions, T0 + HOUR, settings)
    assert reminders(engine) == []


def test_days_before_is_the_borrowers_choice(api, seeded, sessions, settings, engine):
    turn_on(api, "demo-in-use", days_before=5)
    tick(sessions, T0 + 7 * DAY - HOUR, settings)
    assert reminders(engine) == []
    tick(sessions, T0 + 7 * DAY + HOUR, settings)
    assert reminders(engine) == [("demo-in-use", "before", 2)]
    assert rows(engine, "reminder_due")[0].payload["days_before"] == 5


def test_reminders_on_by_default_unless_turned_off(api, seeded, sessions, migrated_url,
                                                  engine):
    settings = make_settings(migrated_url, reminders_default=True)
    response = api.client.put("/v1/borrowers/demo-in-use/reminders", headers=api.service,
                              json={"enabled": False})
    assert response.status_code == 200
    tick(sessions, T0 + 9 * DAY + HOUR, settings)
    # every loan but demo-in-use's (turned off) and demo-posting's (being paid) has an
    # instalment due at T0 + 12 days: demo-loan-cap (3 loans), demo-overdue-reduced
    assert sorted(reminders(engine)) == [("demo-loan-cap", "before", 2)] * 3 + [
        ("demo-overdue-reduced", "before", 2)]


# --- the embedded consumer interface -----------------------------------------------------------


def test_poll_reads_messages_in_order_after_a_cursor(seeded, sessions, settings, engine):
    tick(sessions, T0, settings)
    tick(sessions, T0 + 3 * HOUR, settings)
    with engine.connect() as connection:
        first = outbox.poll(connection, after_id=0, limit=1)
        rest = outbox.poll(connection, after_id=first[0]["id"])
    assert len(first) == 1 and len(rest) == 1
    assert first[0]["id"] < rest[0]["id"]
    message = first[0]
    assert set(message) == {"schema", "id", "key", "kind", "borrower_id", "occurred_at",
                            "recorded_at", "data"}
    assert message["schema"] == "relend.notice.v1" and message["kind"] == "repayment_posted"
    assert message["key"] == f"repayment_posted:{message['data']['repayment_id']}:" \
                             f"{iso(T0 + 2 * HOUR)}"


def test_the_feed_hands_out_settled_messages_after_a_cursor(api, seeded, sessions, settings,
                                                            clock):
    tick(sessions, T0, settings)
    tick(sessions, T0 + 3 * HOUR, settings)  # two repayments post, recorded at T0 + 3 h
    clock.advance(3 * HOUR + SECOND)
    url = "/v1/backoffice/outbox"
    assert api.client.get(url, headers=api.service).status_code == 401
    # one second old: not settled yet (2 s), so nothing is handed out
    assert api.client.get(url, headers=api.backoffice).json() == {"messages": [],
                                                                  "next_after_id": 0}
    clock.advance(2 * SECOND)

    first = api.client.get(url, headers=api.backoffice, params={"limit": 1}).json()
    rest = api.client.get(url, headers=api.backoffice,
                          params={"after_id": first["next_after_id"]}).json()

    assert [m["kind"] for m in first["messages"] + rest["messages"]] == ["repayment_posted"] * 2
    assert first["next_after_id"] == first["messages"][0]["id"]
    assert rest["next_after_id"] == rest["messages"][0]["id"] > first["next_after_id"]
    with sessions() as session:
        polled = outbox.poll(session.connection())
    assert first["messages"] + rest["messages"] == polled


def test_in_process_transport_marks_only_what_the_handler_took(seeded, sessions, engine):
    for n in range(3):
        with sessions() as session:
            outbox.record(session, kind="reminder_due", borrower_id="demo-in-use",
                          subject=f"test-{n}", occurred_at=T0, now=T0, data={"n": n})
            session.commit()
    taken = []

    def handler(message):
        if message["data"]["n"] == 1 and not taken[1:]:
            raise RuntimeError("consumer busy")
        taken.append(message["data"]["n"])

    publisher = Publisher(sessions, lambda: CallbackTransport(handler))
    first = run_coroutine(publisher.run_once(T0))
    assert (first.published, first.pending, taken) == (1, 2, [0])
    assert "consumer busy" in first.error
    # backing off: one second after the first failure
    assert run_coroutine(publisher.run_once(T0)).error == "waiting to retry"
    taken.append("retry")
    second = run_coroutine(publisher.run_once(T0 + timedelta(seconds=1)))
    assert (second.published, second.pending) == (2, 0)
    assert taken == [0, "retry", 1, 2]
    assert all(r.published_at is not None for r in rows(engine))


def test_a_pass_delivers_every_batch_and_one_publisher_runs_at_a_time(seeded, sessions,
                                                                      engine):
    for n in range(5):
        with sessions() as session:
            outbox.record(session, kind="reminder_due", borrower_id="demo-in-use",
                          subject=f"test-{n}", occurred_at=T0, now=T0, data={"n": n})
            session.commit()
    taken = []
    inner = Publisher(sessions, lambda: CallbackTransport(lambda m: taken.append(m["id"])))

    async def handler(message):
        # while this pass runs, a second publisher finds the lease taken
        if not taken:
            assert (await inner.run_once(T0)).error == "another publisher is running"
        taken.append(message["id"])

    result = run_coroutine(Publisher(sessions, lambda: CallbackTransport(handler),
                                     batch=2).run_once(T0))
    assert (result.published, result.pending, result.error) == (5, 0, None)
    assert taken == [r.id for r in rows(engine)]
    # the lease was given back
    assert run_coroutine(inner.run_once(T0)) == outbox.PublishResult(0, 0)


# --- the publisher against RabbitMQ ------------------------------------------------------------


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the probe is closed


def broker_reachable() -> None:
    """Skip (fail with CI=true) when RabbitMQ does not answer on 127.0.0.1:5672, as the
    PostgreSQL variants do."""
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
    except OSError as exc:
        message = f"RabbitMQ not reachable on 127.0.0.1:5672 ({exc}); CI=true makes this a failure"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture
def queue():
    """A queue of this test's own on the real broker, deleted afterwards."""
    broker_reachable()
    name = f"relend_h6_{uuid.uuid4().hex[:10]}"
    yield name

    async def delete():
        import aio_pika

        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(name)

    run_coroutine(delete())


def drain(name):
    """Every message now in the queue (acknowledged, so the queue is left empty)."""
    async def run():
        import aio_pika

        connection = await aio_pika.connect(AMQP_URL, timeout=5)
        async with connection:
            channel = await connection.channel()
            q = await channel.declare_queue(name, durable=True)
            got = []
            while (message := await q.get(fail=False, timeout=5)) is not None:
                await message.ack()
                got.append((message.message_id, json.loads(message.body)))
            return got

    return run_coroutine(run())


def record_three(sessions):
    with sessions() as session:
        for n in range(3):
            outbox.record(session, kind="repayment_posted", borrower_id="demo-posting",
                          subject=f"RP-test-{n}", occurred_at=T0 + n * HOUR, now=T0,
                          data={"n": n})
        session.commit()


def amqp(sessions, queue, url=AMQP_URL, **options):
    return Publisher(sessions, lambda: AmqpTransport(url, queue, timeout=3), **options)


def test_delivered_once_in_order_and_marked(seeded, sessions, engine, queue):
    record_three(sessions)

    result = run_coroutine(amqp(sessions, queue).run_once(T0 + HOUR))

    assert (result.published, result.pending, result.error) == (3, 0, None)
    assert all(r.published_at == T0 + HOUR for r in rows(engine))
    assert run_coroutine(amqp(sessions, queue).run_once(T0 + 2 * HOUR)).published == 0
    delivered = drain(queue)
    keys = [r.key for r in rows(engine)]
    assert [message_id for message_id, _ in delivered] == keys
    assert [body["data"]["n"] for _, body in delivered] == [0, 1, 2]
    assert delivered[0][1]["key"] == f"repayment_posted:RP-test-0:{iso(T0)}"
    assert delivered[0][1]["borrower_id"] == "demo-posting"


def test_not_marked_when_the_broker_is_unreachable(seeded, sessions, engine, queue):
    record_three(sessions)
    url = f"amqp://guest:guest@127.0.0.1:{closed_port()}/"

    result = run_coroutine(amqp(sessions, queue, url).run_once(T0))

    assert (result.published, result.pending) == (0, 3) and result.error
    first, *others = rows(engine)
    assert all(r.published_at is None for r in rows(engine))
    assert (first.attempts, first.next_attempt_at) == (1, T0 + timedelta(seconds=1))
    assert first.last_error
    assert [r.attempts for r in others] == [0, 0]
    # the next failure waits twice as long
    run_coroutine(amqp(sessions, queue, url).run_once(T0 + timedelta(seconds=1)))
    assert rows(engine)[0].next_attempt_at == T0 + timedelta(seconds=3)
    # the broker back: everything goes, in order
    assert run_coroutine(amqp(sessions, queue).run_once(T0 + HOUR)).published == 3
    assert [body["data"]["n"] for _, body in drain(queue)] == [0, 1, 2]


def test_a_crash_between_publish_and_mark_is_redelivered_with_the_same_keys(
        seeded, sessions, engine, queue):
    record_three(sessions)

    def crash(sent):
        raise SystemExit("killed after the broker confirmed, before marking")

    with pytest.raises(SystemExit):
        run_coroutine(amqp(sessions, queue, after_send=crash).run_once(T0))
    assert all(r.published_at is None for r in rows(engine))
    assert run_coroutine(amqp(sessions, queue).run_once(T0 + HOUR)).published == 3

    delivered = drain(queue)
    assert len(delivered) == 6  # at least once: every message twice
    seen, handled = set(), []
    for message_id, body in delivered:  # what a consumer does: dedupe on the key
        assert message_id == body["key"]
        if body["key"] not in seen:
            seen.add(body["key"])
            handled.append(body["data"]["n"])
    assert handled == [0, 1, 2]


# --- the migration -----------------------------------------------------------------------------


def test_the_migration_downgrades_and_upgrades_again(migrated_url):
    config = alembic_config(MIGRATIONS_DIR, migrated_url)
    command.downgrade(config, "0001")
    engine = make_engine(migrated_url)
    try:
        inspector = inspect(engine)
        tables = set(inspector.get_table_names())
        assert not {"outbox", "instalments", "reminder_preferences", "scheduler_state"} & tables
        assert "instalment_id" not in {c["name"] for c in inspector.get_columns("repayments")}
        assert "interest_cents" not in {c["name"] for c in inspector.get_columns("loans")}
        command.upgrade(config, "head")
        assert "outbox" in set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
