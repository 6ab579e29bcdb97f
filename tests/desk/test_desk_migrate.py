"""The desk's migrations: ``python -m desk migrate`` on an empty database, as the stack runs
it, twice; the schema they build, column for column against the models; an older database
brought up to date."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from desk_support import on_every_database
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Engine

from common.db import make_engine, make_session_factory
from desk import service
from desk.auth import check_password
from desk.migrate import upgrade
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
        upgrade(database_url)
        assert "status" not in columns(engine)["conversations"]
        with make_session_factory(engine)() as session:
            kept = session.get(Conversation, "c-old")
            assert (kept.borrower_id, kept.locale, kept.owner) == ("b-1001", "zh-CN", "agent")
            assert service.open_conversation(session, "b-1001", "zh-CN", kept.created_at).id \
                == "c-old"
    finally:
        engine.dispose()
