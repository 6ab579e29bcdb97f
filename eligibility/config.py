"""Backend settings: one typed object read from environment variables (docs/configuration.md).

``RELEND_ENV`` decides the mode (unset means production, see common/settings.py). In production
the service refuses to start when ``RELEND_BACKEND_TOKEN`` or ``RELEND_BACKOFFICE_TOKEN`` is
missing, empty, a public sandbox value or shorter than 32 bytes, when the two are equal (the
service token would open the back office), or when the sandbox fixture route is switched on
(it lets the back-office token rewrite a borrower's records).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, validator

from common.settings import RelendSettings, refuse_insecure, sandbox_default

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB_PATH = PROJECT_ROOT / "var" / "eligibility.db"
SERVICE = "the eligibility backend"
# the public defaults of the local sandbox: refused in production (common.settings)
SANDBOX_SERVICE_TOKEN = "relend-sandbox-token"
SANDBOX_BACKOFFICE_TOKEN = "relend-sandbox-backoffice-token"


class Settings(RelendSettings):
    # the mode comes first: the defaults of the fields below depend on it
    database_url: str = Field(f"sqlite:///{DEFAULT_DB_PATH}", env="RELEND_BACKEND_DB_URL")
    # unset: the public sandbox value in the sandbox, nothing (refused) in production
    service_token: str | None = Field(None, env="RELEND_BACKEND_TOKEN")
    backoffice_token: str | None = Field(None, env="RELEND_BACKOFFICE_TOKEN")
    host: str = Field("127.0.0.1", env="RELEND_BACKEND_HOST")
    port: int = Field(8081, ge=0, le=65535, env="RELEND_BACKEND_PORT")
    workers: int = Field(1, ge=1, env="RELEND_BACKEND_WORKERS")
    threads: int = Field(8, ge=1, env="RELEND_BACKEND_THREADS")
    max_body_bytes: int = Field(16 * 1024, ge=1, env="RELEND_BACKEND_MAX_BODY_BYTES")
    appeal_response_hours: int = Field(72, ge=1, env="RELEND_APPEAL_RESPONSE_HOURS")
    min_drawdown: int = Field(500, ge=0, env="RELEND_MIN_DRAWDOWN")
    currency: str = Field("CNY", env="RELEND_CURRENCY")
    # the sandbox routes (eligibility/routes/sandbox.py: the fixture route
    # PUT /v1/backoffice/sandbox/borrowers/{id}, GET /v1/sandbox/demo-borrowers): unset means
    # on in the sandbox, off in production (where turning it on is refused)
    sandbox_fixtures: bool | None = Field(None, env="RELEND_BACKEND_SANDBOX")
    # the outbox of decision-relevant changes (eligibility/outbox.py, docs/backend.md): unset
    # URL means the embedded default (consumers poll the outbox table, no broker)
    outbox_amqp_url: str | None = Field(None, env="RELEND_OUTBOX_AMQP_URL")
    outbox_queue: str = Field("relend.notices", min_length=1, env="RELEND_OUTBOX_QUEUE")
    outbox_batch: int = Field(100, ge=1, le=10_000, env="RELEND_OUTBOX_BATCH")
    outbox_confirm_timeout: float = Field(5.0, gt=0, env="RELEND_OUTBOX_CONFIRM_TIMEOUT")
    outbox_retry_max_seconds: int = Field(300, ge=1, env="RELEND_OUTBOX_RETRY_MAX_SECONDS")
    outbox_lookback_hours: int = Field(24, ge=1, env="RELEND_OUTBOX_LOOKBACK_HOURS")
    outbox_feed_settle_seconds: float = Field(2.0, ge=0, env="RELEND_OUTBOX_FEED_SETTLE_SECONDS")
    # > 0: `serve` also runs the scheduler and the publisher every this many seconds
    outbox_worker_seconds: float = Field(0, ge=0, env="RELEND_OUTBOX_WORKER_SECONDS")
    reminder_days_before: int = Field(3, ge=1, le=14, env="RELEND_REMINDER_DAYS_BEFORE")
    reminders_default: bool = Field(False, env="RELEND_REMINDERS_DEFAULT")
    # `seed` only: how long the demo's posting repayments take to post from the seeding
    demo_posting_minutes: int = Field(120, ge=1, le=1440, env="RELEND_DEMO_POSTING_MINUTES")

    @validator("service_token", always=True)
    def _service_token(cls, value: str | None, values: dict[str, Any]) -> str:
        return sandbox_default(value, values, SANDBOX_SERVICE_TOKEN, "")

    @validator("backoffice_token", always=True)
    def _backoffice_token(cls, value: str | None, values: dict[str, Any]) -> str:
        return sandbox_default(value, values, SANDBOX_BACKOFFICE_TOKEN, "")

    @validator("sandbox_fixtures", always=True)
    def _sandbox_fixtures(cls, value: bool | None, values: dict[str, Any]) -> bool:
        return sandbox_default(value, values, True, False)

    def check(self) -> None:
        """Raise ``InsecureSettings`` in production for weak secrets or sandbox-only features."""
        extra = []
        if self.service_token and self.service_token == self.backoffice_token:
            extra.append("RELEND_BACKEND_TOKEN and RELEND_BACKOFFICE_TOKEN are equal: the "
                         "service token would open the back office; they must differ")
        if self.sandbox_fixtures:
            extra.append("RELEND_BACKEND_SANDBOX is on: its fixture route lets the back-office "
                         "token rewrite borrowers' records (sandbox only)")
        refuse_insecure(SERVICE, self.mode, {
            "RELEND_BACKEND_TOKEN": self.service_token,
            "RELEND_BACKOFFICE_TOKEN": self.backoffice_token,
        }, extra)


def invalid_settings_message(exc: ValidationError) -> str:
    """A ``ValidationError`` of ``Settings`` in the environment's words (variable: problem)."""
    lines = []
    for error in exc.errors():
        field = Settings.__fields__.get(str(error["loc"][0])) if error["loc"] else None
        name = field.field_info.extra.get("env", field.name) if field else "settings"
        lines.append(f"  - {name}: {error['msg']}")
    return f"{SERVICE} cannot start: invalid settings\n" + "\n".join(lines)
