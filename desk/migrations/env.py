"""Alembic environment for the desk: the URL comes from desk.migrate's config."""

from common.migrate import run_migrations
from desk.models import Base

run_migrations(Base.metadata)
