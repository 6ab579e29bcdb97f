"""The desk's migrations: ``python -m desk migrate`` on an empty database, as the stack runs
it, twice; the schema they build, column for column against the models; an older database
brought up to date."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from desk_support import on_every_database
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Engine

from common.db import make_engine, make_session_factory
from common.migrate import alembic_config
from desk import service
from desk.auth import check_password
from desk.migrate import MIGRATIONS_DIR, upgrade
from desk.models import Agent, Base, CannedReply, Conversation

pytestmark = [on_every_database, pytest.mark.timeout(120)]

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def migrate(database_url: str) -> None:
    env = {**os.environ, "RELEND_DESK_DB_URL": database_url,
           "RELEND_DEMO_AGENT_PASSWORD": "demo-pass", "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "desk", "migrate"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_migrate_creates_the_schema_and_seeds_the_demo_agents_once(database_url: str):
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            first = {a.username: (a.display_name, a.password_hash)
                     for a in session.execute(select(Agent)).scalars()}
            canned = session.execute(select(CannedReply.title)).scalars().all()

        migrate(database_url)  # again: nothing new

        tables = set(inspect(engine).get_table_names())
        with make_session_factory(engine)() as session:
            again = {a.username: (a.display_name, a.password_hash)
                     for a in session.execute(select(Agent)).scalars()}
            canned_again = session.execute(select(CannedReply.title)).scalars().all()
    finally:
        engine.dispose()

    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert sorted(first) == ["agent1", "agent2"]
    assert first["agent1"][0] == "李娜 Li Na"
    assert check_password("demo-pass", first["agent1"][1])
    assert again == first
    assert len(canned) == 4 and canned_again == canned


def columns(engine: Engine) -> dict[str, set[str]]:
    found = inspect(engine)
    return {table: {c["name"] for c in found.get_columns(table)}
            for table in found.get_table_names() if table != "alembic_version"}


def test_the_migrated_schema_has_exactly_the_models_columns(database_url: str):
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        assert columns(engine) == {name: {c.name for c in table.columns}
                                   for name, table in Base.metadata.tables.items()}
    finally:
        engine.dispose()


def test_a_database_from_before_0003_keeps_its_conversations_without_a_status(
        database_url: str):
    upgrade(database_url, "0002")
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO conversations (id, borrower_id, locale, owner, status, created_at,"
                " updated_at) VALUES ('c-old', 'b-1001', 'zh-CN', 'agent', 'open',"
                " '2026-11-30 12:00:00', '2026-11-30 12:00:00')"))
            # a message pointing at it: on SQLite, a migration that copies and drops the
            # conversations table fails on its foreign key
            connection.execute(text(
                "INSERT INTO messages (conversation_id, sender, text, created_at)"
                " VALUES ('c-old', 'borrower', '你好', '2026-11-30 12:00:00')"))
        upgrade(database_url)
        assert "status" not in columns(engine)["conversations"]
        with make_session_factory(engine)() as session:
            kept = session.get(Conversation, "c-old")
            assert (kept.borrower_id, kept.locale, kept.owner) == ("b-1001", "zh-CN", "agent")
            assert service.open_conversation(session, "b-1001", "zh-CN", kept.created_at).id \
                == "c-old"
    finally:
        engine.dispose()


def test_0005_merges_a_borrowers_conversations_and_keeps_one_open_case_and_downgrades(
        database_url: str):
    """Rows from before the unique indexes: two conversations of one borrower (the newer is
    the one the desk was using), each with an open case and a message with the same client
    id. Migrated, one conversation holds every message and one open case (the claimed
    one); downgraded, the indexes are gone and the rows stay as mended."""
    upgrade(database_url, "0004")
    engine = make_engine(database_url)
    rows = [
        "INSERT INTO conversations (id, borrower_id, locale, owner, created_at, updated_at)"
        " VALUES ('c-old', 'b-1001', 'zh-CN', 'bot', '2026-11-30 10:00:00',"
        " '2026-11-30 10:00:00')",
        "INSERT INTO conversations (id, borrower_id, locale, owner, created_at, updated_at)"
        " VALUES ('c-new', 'b-1001', 'zh-CN', 'agent', '2026-11-30 10:00:01',"
        " '2026-11-30 10:00:01')",
        "INSERT INTO conversations (id, borrower_id, locale, owner, created_at, updated_at)"
        " VALUES ('c-other', 'b-2002', 'en-US', 'bot', '2026-11-30 10:00:00',"
        " '2026-11-30 10:00:00')",
    ]
    for n, (conversation, client_id) in enumerate(
            [("c-old", "m-1"), ("c-new", "m-1"), ("c-old", "m-2"), ("c-new", "m-3")]):
        rows.append("INSERT INTO messages (conversation_id, sender, text, client_message_id,"
                    f" created_at) VALUES ('{conversation}', 'borrower', 'text {n}',"
                    f" '{client_id}', '2026-11-30 10:00:0{n}')")
    for conversation, status, created in [("c-old", "waiting", "10:00:02"),
                                          ("c-new", "claimed", "10:00:03"),
                                          ("c-other", "waiting", "10:00:04")]:
        rows.append("INSERT INTO cases (conversation_id, borrower_id, language, reason, context,"
                    f" status, created_at) VALUES ('{conversation}', 'b', 'zh', 'r', '{{}}',"
                    f" '{status}', '2026-11-30 {created}')")
    try:
        with engine.begin() as connection:
            for row in rows:
                connection.execute(text(row))
        upgrade(database_url)
        with engine.connect() as connection:
            conversations = connection.execute(text(
                "SELECT id, borrower_id, owner FROM conversations ORDER BY id")).all()
            messages = connection.execute(text(
                "SELECT conversation_id, text, client_message_id FROM messages ORDER BY id"
            )).all()
            cases = connection.execute(text(
                "SELECT conversation_id, status, return_note FROM cases ORDER BY id")).all()
        assert [tuple(r) for r in conversations] == [("c-new", "b-1001", "agent"),
                                                     ("c-other", "b-2002", "bot")]
        assert [tuple(r) for r in messages] == [
            ("c-new", "text 0", None), ("c-new", "text 1", "m-1"), ("c-new", "text 2", "m-2"),
            ("c-new", "text 3", "m-3")]
        assert [(r[0], r[1]) for r in cases] == [("c-new", "closed"), ("c-new", "claimed"),
                                                 ("c-other", "waiting")]
        assert "migration 0005" in cases[0][2]

        command.downgrade(alembic_config(MIGRATIONS_DIR, database_url), "0004")
        with engine.begin() as connection:  # no unique indexes any more
            connection.execute(text(rows[0]))
            connection.execute(text(
                "INSERT INTO cases (conversation_id, borrower_id, language, reason, context,"
                " status, created_at) VALUES ('c-new', 'b', 'zh', 'r', '{}', 'waiting',"
                " '2026-11-30 10:00:05')"))
        assert "turn_owner" not in columns(engine)["conversations"]
    finally:
        engine.dispose()


def test_desks_started_at_once_migrate_and_seed_once(database_url: str):
    """``python -m desk migrate`` (``serve`` runs it first) three times at once, as several
    desk processes start: each succeeds, and the demo data is there once."""
    if database_url.startswith("sqlite"):
        pytest.skip("several desks share PostgreSQL; SQLite is the one-desk default")
    env = {**os.environ, "RELEND_DESK_DB_URL": database_url,
           "RELEND_DEMO_AGENT_PASSWORD": "demo-pass", "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    runs = [subprocess.Popen([sys.executable, "-m", "desk", "migrate"], cwd=PROJECT_ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True) for _ in range(3)]
    outputs = [run.communicate(timeout=90)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            agents = session.execute(select(Agent.username)).scalars().all()
            canned = session.execute(select(CannedReply.id)).scalars().all()
    finally:
        engine.dispose()
    assert sorted(agents) == ["agent1", "agent2"] and len(canned) == 4
