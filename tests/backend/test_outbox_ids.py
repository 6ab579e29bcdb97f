"""Outbox ids are never given out twice (SQLite and PostgreSQL).

A consumer without a broker reads the outbox in ``id`` order with its own cursor (the notifier's
is the newest id the desk stored). An id handed out again after its row was deleted -- a
reseeded sandbox deletes the demo's rows -- would sit at or below such a cursor: the change
under it would be skipped. PostgreSQL's sequence never goes back; SQLite reuses the highest
rowid unless the table is ``AUTOINCREMENT`` (migration 0003).

Times: T0 = 2026-03-10 04:00 UTC (tests/backend/support.py); demo-posting's RP-posting-2 is
unposted after seeding (eligibility/seed.py)."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from sqlalchemy import inspect, select, text

from common.db import make_engine, make_session_factory
from common.migrate import alembic_config
from eligibility import ledger, outbox
from eligibility.migrate import MIGRATIONS_DIR
from eligibility.models import OutboxMessage
from eligibility.seed import seed

from .support import T0

HOUR = timedelta(hours=1)


def _post(sessions, at):
    with sessions() as session:
        ledger.post_repayment(session, "RP-posting-2", posted_at=at, now=at)
        session.commit()


def _outbox(engine):
    with engine.connect() as connection:
        return connection.execute(
            select(OutboxMessage.id, OutboxMessage.key).order_by(OutboxMessage.id)).all()


def test_a_reseed_never_gives_an_outbox_id_out_again(engine):
    sessions = make_session_factory(engine)
    with sessions() as session:
        seed(session, T0)
    _post(sessions, T0 + HOUR)
    ((first_id, first_key),) = _outbox(engine)

    with sessions() as session:  # the demo again: its outbox rows are deleted
        seed(session, T0 + 2 * HOUR)
    assert _outbox(engine) == []
    _post(sessions, T0 + 3 * HOUR)

    ((second_id, second_key),) = _outbox(engine)
    assert second_key != first_key  # a new change (its key names the posting time)
    assert second_id > first_id


def test_rows_with_the_highest_ids_deleted_are_not_followed_by_their_ids(engine):
    sessions = make_session_factory(engine)
    with sessions() as session:
        seed(session, T0)
        for n in range(3):
            outbox.record(session, kind="hold_released", borrower_id="demo-compliance",
                          subject=f"H-{n}", occurred_at=T0, now=T0, data={"n": n})
        session.commit()
    ids = [row.id for row in _outbox(engine)]
    with sessions() as session:
        session.execute(OutboxMessage.__table__.delete())
        session.commit()
        outbox.record(session, kind="hold_released", borrower_id="demo-compliance",
                      subject="H-new", occurred_at=T0, now=T0, data={})
        session.commit()
    ((new_id, _key),) = _outbox(engine)
    assert new_id > max(ids)


def _record(sessions, subject):
    with sessions() as session:
        outbox.record(session, kind="hold_released", borrower_id="demo-compliance",
                      subject=subject, occurred_at=T0, now=T0, data={})
        session.commit()


def _shape(engine):
    """The outbox's unique key and indexes (what a rebuilt table must keep)."""
    inspector = inspect(engine)
    return ({(u["name"], tuple(u["column_names"]))
             for u in inspector.get_unique_constraints("outbox")},
            {(i["name"], tuple(i["column_names"])) for i in inspector.get_indexes("outbox")
             if not i.get("unique")})


def test_the_migration_keeps_the_rows_and_the_highest_id_given_out(database_url):
    """A database made before 0003 (rows in its outbox) keeps them, its unique key and
    indexes; after deleting the rows the next id still comes after them; 0003 downgrades and
    upgrades again."""
    config = alembic_config(MIGRATIONS_DIR, database_url)
    command.upgrade(config, "0002")
    engine = make_engine(database_url)
    try:
        sessions = make_session_factory(engine)
        for subject in ("H-1", "H-2"):
            _record(sessions, subject)
        before = _outbox(engine)
        command.upgrade(config, "head")
        assert _outbox(engine) == before
        assert _shape(engine) == ({("uq_outbox_key", ("key",))},
                                  {("ix_outbox_borrower_id", ("borrower_id",)),
                                   ("ix_outbox_published_at", ("published_at",))})
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM outbox"))
        _record(sessions, "H-3")
        ((new_id, new_key),) = _outbox(engine)
        assert new_key == "hold_released:H-3:2026-03-10T04:00:00Z"
        assert new_id > max(row.id for row in before)
        command.downgrade(config, "0002")
        assert _outbox(engine) == [(new_id, new_key)]
        command.upgrade(config, "head")
        assert _outbox(engine) == [(new_id, new_key)]
    finally:
        engine.dispose()
