"""Action-server settings: one typed object read from environment variables
(see docs/configuration.md).

Nothing is read at import time: ``settings()`` reads and checks the environment on first use.
In production (``RELEND_ENV`` unset or ``production``, see common/settings.py) a missing, empty,
public sandbox or shorter-than-32-byte ``RELEND_BACKEND_TOKEN`` or ``RELEND_DESK_TOKEN`` is
refused with ``InsecureSettings``, whose message names each variable.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import Field, validator
from pydantic.fields import ModelField

from common.settings import RelendSettings, refuse_insecure, sandbox_default

SERVICE = "the action server"
# the public defaults of the local sandbox: refused in production (common.settings)
SANDBOX_BACKEND_TOKEN = "relend-sandbox-token"
SANDBOX_DESK_TOKEN = "relend-sandbox-desk-token"
SANDBOX_TOKENS = {"backend_token": SANDBOX_BACKEND_TOKEN, "desk_token": SANDBOX_DESK_TOKEN}


class ActionSettings(RelendSettings):
    # the mode comes first: the secrets' defaults depend on it
    backend_url: str = Field("http://127.0.0.1:8081", env="RELEND_BACKEND_URL")
    # unset: the public sandbox value in the sandbox, nothing (refused) in production
    backend_token: str | None = Field(None, env="RELEND_BACKEND_TOKEN")
    connect_timeout: float = Field(1.0, gt=0, env="RELEND_BACKEND_CONNECT_TIMEOUT")
    read_timeout: float = Field(3.0, gt=0, env="RELEND_BACKEND_READ_TIMEOUT")
    retries: int = Field(1, ge=0, env="RELEND_BACKEND_RETRIES")
    decision_max_age: int = Field(300, ge=0, env="RELEND_DECISION_MAX_AGE_SECONDS")
    product_name_zh: str = Field("Relend信用借", env="RELEND_PRODUCT_NAME_ZH")
    product_name_en: str = Field("Relend Credit", env="RELEND_PRODUCT_NAME_EN")
    desk_url: str = Field("http://127.0.0.1:8090", env="RELEND_DESK_URL")
    desk_token: str | None = Field(None, env="RELEND_DESK_TOKEN")

    @validator("backend_url", "desk_url")
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @validator("backend_token", "desk_token", always=True)
    def _token(cls, value: str | None, values: dict[str, Any], field: ModelField) -> str:
        return sandbox_default(value, values, SANDBOX_TOKENS[field.name], "")

    def check(self) -> None:
        refuse_insecure(SERVICE, self.mode, {
            "RELEND_BACKEND_TOKEN": self.backend_token,
            "RELEND_DESK_TOKEN": self.desk_token,
        })


@cache
def settings() -> ActionSettings:
    """Read and checked once, on first use (never at import time)."""
    return ActionSettings.from_env()
