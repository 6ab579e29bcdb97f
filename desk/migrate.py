"""Apply the desk's Alembic migrations to a database URL."""

from __future__ import annotations

from pathlib import Path

from common import migrate

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def upgrade(database_url: str, revision: str = "head") -> None:
    migrate.upgrade(MIGRATIONS_DIR, database_url, revision)
