"""Backend settings, read from environment variables (documented in docs/configuration.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB_PATH = PROJECT_ROOT / "var" / "eligibility.db"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    database_url: str
    service_token: str
    backoffice_token: str
    host: str
    port: int
    workers: int
    threads: int
    max_body_bytes: int
    appeal_response_hours: int
    min_drawdown: int
    currency: str
    sandbox_fixtures: bool

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("RELEND_BACKEND_DB_URL", f"sqlite:///{DEFAULT_DB_PATH}"),
            service_token=os.environ.get("RELEND_BACKEND_TOKEN", "relend-sandbox-token"),
            backoffice_token=os.environ.get(
                "RELEND_BACKOFFICE_TOKEN", "relend-sandbox-backoffice-token"
            ),
            host=os.environ.get("RELEND_BACKEND_HOST", "127.0.0.1"),
            port=_env_int("RELEND_BACKEND_PORT", 8081),
            workers=_env_int("RELEND_BACKEND_WORKERS", 1),
            threads=_env_int("RELEND_BACKEND_THREADS", 8),
            max_body_bytes=_env_int("RELEND_BACKEND_MAX_BODY_BYTES", 16 * 1024),
            appeal_response_hours=_env_int("RELEND_APPEAL_RESPONSE_HOURS", 72),
            min_drawdown=_env_int("RELEND_MIN_DRAWDOWN", 500),
            currency=os.environ.get("RELEND_CURRENCY", "CNY"),
            sandbox_fixtures=os.environ.get("RELEND_BACKEND_SANDBOX", "true").lower()
            in ("1", "true", "yes", "on"),
        )
