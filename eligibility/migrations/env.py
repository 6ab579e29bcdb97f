"""Alembic environment: the URL comes from the config the caller builds (eligibility.migrate)."""

from common.migrate import run_migrations
from eligibility.models import Base

run_migrations(Base.metadata)
