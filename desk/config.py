"""Desk settings from environment variables (documented in docs/configuration.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    return default if not raw else raw in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class DeskSettings:
    database_url: str
    host: str
    port: int
    internal_token: str
    app_secret: str
    agent_secret: str
    demo_login: bool
    rasa_url: str
    rasa_token: str
    rasa_timeout: float
    max_message_chars: int
    token_ttl_seconds: int
    demo_agent_password: str

    @classmethod
    def from_env(cls) -> DeskSettings:
        return cls(
            database_url=os.environ.get("RELEND_DESK_DB_URL",
                                        f"sqlite:///{ROOT / 'var' / 'desk.db'}"),
            host=os.environ.get("RELEND_DESK_HOST", "127.0.0.1"),
            port=int(os.environ.get("RELEND_DESK_PORT", "") or 8090),
            internal_token=os.environ.get("RELEND_DESK_TOKEN", "relend-sandbox-desk-token"),
            app_secret=os.environ.get("RELEND_APP_SECRET", "relend-sandbox-app-secret"),
            agent_secret=os.environ.get("RELEND_AGENT_SECRET", "relend-sandbox-agent-secret"),
            demo_login=_flag("RELEND_DESK_DEMO_LOGIN", True),
            rasa_url=os.environ.get("RELEND_RASA_URL", "http://127.0.0.1:5005").rstrip("/"),
            rasa_token=os.environ.get("RELEND_RASA_TOKEN", "relend-sandbox-rasa-token"),
            rasa_timeout=float(os.environ.get("RELEND_RASA_TIMEOUT", "") or 15),
            max_message_chars=int(os.environ.get("RELEND_DESK_MAX_MESSAGE_CHARS", "") or 2000),
            token_ttl_seconds=int(os.environ.get("RELEND_DESK_TOKEN_TTL", "") or 12 * 3600),
            demo_agent_password=os.environ.get("RELEND_DEMO_AGENT_PASSWORD", "relend-demo"),
        )
