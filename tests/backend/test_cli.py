"""``python -m eligibility``: the OpenAPI check, migrations and seeding, as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import inspect, text

import eligibility.__main__ as cli
from common.db import make_engine, make_session_factory
from eligibility.models import Base, Borrower, Decision
from eligibility.seed import DEMO_BORROWERS

from .support import count_rows, settings_env

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eligibility", *args], cwd=PROJECT_ROOT,
        env=settings_env(database_url), capture_output=True, text=True, timeout=120,
    )


def row_counts(database_url: str) -> dict[str, int]:
    engine = make_engine(database_url)
    try:
        return {table.name: count_rows(engine, table) for table in Base.metadata.sorted_tables}
    finally:
        engine.dispose()


def test_checked_in_openapi_spec_is_up_to_date(tmp_path):
    result = run_cli("openapi", "--check", database_url=f"sqlite:///{tmp_path / 'unused.db'}")
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_openapi_check_fails_on_a_stale_spec(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RELEND_BACKEND_DB_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    spec = tmp_path / "openapi.json"
    monkeypatch.setattr(cli, "SPEC_PATH", spec)
    spec.write_text("{}\n", encoding="utf-8")

    assert cli.main(["openapi", "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert cli.main(["openapi"]) == 0  # rewrites it
    assert cli.main(["openapi", "--check"]) == 0


def test_migrate_creates_every_table_and_is_repeatable(database_url):
    for _ in range(2):
        result = run_cli("migrate", database_url=database_url)
        assert result.returncode == 0, result.stderr

    engine = make_engine(database_url)
    try:
        # SQLite's own bookkeeping (sqlite_sequence: the AUTOINCREMENT outbox) is not ours
        tables = {t for t in inspect(engine).get_table_names() if not t.startswith("sqlite_")}
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert len(versions) == 1


def test_seed_twice_gives_the_same_records(database_url):
    first = run_cli("seed", database_url=database_url)
    assert first.returncode == 0, first.stderr
    assert f"seeded {len(DEMO_BORROWERS)} demo borrowers" in first.stdout
    counts = row_counts(database_url)
    assert counts["borrowers"] == len(DEMO_BORROWERS)

    # someone else's borrower, and a decision a demo borrower got in between
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        now = datetime.now(timezone.utc)
        session.add(Borrower(id="real-borrower-1", display_name="Real", locale="zh-CN",
                             timezone="Asia/Shanghai", segment="standard",
                             funding_partner="partner-a", created_at=now))
        session.add(Decision(id="dec_between", borrower_id="demo-eligible", fingerprint="x",
                             created_at=now, payload={}))
        session.commit()
    engine.dispose()

    second = run_cli("seed", database_url=database_url)
    assert second.returncode == 0, second.stderr
    assert row_counts(database_url) == {**counts, "borrowers": counts["borrowers"] + 1}
