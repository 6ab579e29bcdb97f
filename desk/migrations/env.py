"""Alembic environment for the desk: the URL comes from desk.migrate's config.

On PostgreSQL the migrations run under an advisory lock: several desk processes started at
once (``python -m desk serve`` migrates first) take turns, and the later ones find the schema
already up to date instead of racing to create it."""

from alembic import context
from sqlalchemy import text

from common.db import make_engine
from common.migrate import run_migrations
from desk.models import Base

MIGRATION_LOCK = 7_246_001  # any fixed number; the desk's demo data uses the next one

url = context.config.get_main_option("sqlalchemy.url")
if url.startswith("postgresql"):
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()
            try:
                run_migrations(Base.metadata)
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                   {"key": MIGRATION_LOCK})
                connection.commit()
    finally:
        engine.dispose()
else:
    run_migrations(Base.metadata)
