"""Action-server settings, read from environment variables (see docs/configuration.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


@dataclass(frozen=True)
class ActionSettings:
    backend_url: str
    backend_token: str
    connect_timeout: float
    read_timeout: float
    retries: int
    decision_max_age: int
    product_name_zh: str
    product_name_en: str
    desk_url: str
    desk_token: str

    @classmethod
    def from_env(cls) -> ActionSettings:
        return cls(
            backend_url=os.environ.get("RELEND_BACKEND_URL", "http://127.0.0.1:8081").rstrip("/"),
            backend_token=os.environ.get("RELEND_BACKEND_TOKEN", "relend-sandbox-token"),
            connect_timeout=_float("RELEND_BACKEND_CONNECT_TIMEOUT", 1.0),
            read_timeout=_float("RELEND_BACKEND_READ_TIMEOUT", 3.0),
            retries=_int("RELEND_BACKEND_RETRIES", 1),
            decision_max_age=_int("RELEND_DECISION_MAX_AGE_SECONDS", 300),
            product_name_zh=os.environ.get("RELEND_PRODUCT_NAME_ZH", "Relend信用借"),
            product_name_en=os.environ.get("RELEND_PRODUCT_NAME_EN", "Relend Credit"),
            desk_url=os.environ.get("RELEND_DESK_URL", "http://127.0.0.1:8090").rstrip("/"),
            desk_token=os.environ.get("RELEND_DESK_TOKEN", "relend-sandbox-desk-token"),
        )


@cache
def settings() -> ActionSettings:
    """Read once, on first use (never at import time)."""
    return ActionSettings.from_env()
