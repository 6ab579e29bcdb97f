"""The notifier's settings (docs/configuration.md, "The notifier")."""

from __future__ import annotations

from typing import Any

from pydantic import Field, root_validator, validator

from common.settings import Mode, RelendSettings, refuse_insecure

SANDBOX_DEFAULTS = {
    "desk_token": "relend-sandbox-desk-token",
    "backend_token": "relend-sandbox-token",
    "backoffice_token": "relend-sandbox-backoffice-token",
}


class NoticeSettings(RelendSettings):
    desk_url: str = Field("http://127.0.0.1:8090", env="RELEND_DESK_URL")
    desk_token: str = Field("", env="RELEND_DESK_TOKEN")
    backend_url: str = Field("http://127.0.0.1:8081", env="RELEND_BACKEND_URL")
    # the decision and time zone of the borrower (GET /v1/borrowers/{id}/eligibility)
    backend_token: str = Field("", env="RELEND_BACKEND_TOKEN")
    # the outbox feed (GET /v1/backoffice/outbox), when there is no broker
    backoffice_token: str = Field("", env="RELEND_BACKOFFICE_TOKEN")
    # set: consume the broker's queue; empty: read the backend's outbox feed
    amqp_url: str = Field("", env="RELEND_NOTICES_AMQP_URL")
    queue: str = Field("relend.notices", min_length=1, env="RELEND_NOTICES_QUEUE")
    prefetch: int = Field(20, ge=1, le=1000, env="RELEND_NOTICES_PREFETCH")
    poll_seconds: float = Field(5.0, gt=0, env="RELEND_NOTICES_POLL_SECONDS")
    batch: int = Field(100, ge=1, le=1000, env="RELEND_NOTICES_BATCH")
    # "HH:MM-HH:MM" in the borrower's time zone (may wrap midnight); empty: none
    quiet_hours: str = Field("22:00-08:00", env="RELEND_NOTICES_QUIET_HOURS")
    # when the backend names no time zone for the borrower
    lender_timezone: str = Field("Asia/Shanghai", env="RELEND_NOTICES_TIMEZONE")
    timeout: float = Field(10.0, gt=0, env="RELEND_NOTICES_HTTP_TIMEOUT")
    # touched after each round that reached the desk (and the feed or the broker): a
    # supervisor's health check (python -m stack); empty: none
    status_file: str = Field("", env="RELEND_NOTICES_STATUS_FILE")

    @root_validator(skip_on_failure=True)
    def _sandbox_secrets(cls, values: dict[str, Any]) -> dict[str, Any]:
        for field, default in SANDBOX_DEFAULTS.items():
            if not (values.get(field) or "").strip():
                values[field] = default if values.get("mode") is Mode.SANDBOX else ""
        return values

    @validator("desk_url", "backend_url")
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @validator("quiet_hours")
    def _quiet_hours(cls, value: str) -> str:
        from .quiet import parse_quiet_hours

        parse_quiet_hours(value)  # a malformed value refuses to start
        return value

    def check(self) -> None:
        secrets = {"RELEND_DESK_TOKEN": self.desk_token,
                   "RELEND_BACKEND_TOKEN": self.backend_token}
        if not self.amqp_url:
            secrets["RELEND_BACKOFFICE_TOKEN"] = self.backoffice_token
        refuse_insecure("the notifier", self.mode, secrets)
