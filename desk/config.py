"""Desk settings: one typed object read from environment variables (docs/configuration.md).

In production (``RELEND_ENV`` unset or ``production``) the desk refuses to start with a missing,
empty, short or public secret (its own five, and the backend's service token
``RELEND_BACKEND_TOKEN``, which the agent console's borrower records need), with the demo login
or the demo agents switched on, or with the borrower-app and agent secrets equal (see
common/settings.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, root_validator, validator

from common.settings import Mode, RelendSettings, refuse_insecure, sandbox_default

ROOT = Path(__file__).resolve().parent.parent
SANDBOX_DEFAULTS = {
    "internal_token": "relend-sandbox-desk-token",
    "app_secret": "relend-sandbox-app-secret",
    "agent_secret": "relend-sandbox-agent-secret",
    "channel_secret": "relend-sandbox-channel-secret",
    "rasa_jwt_secret": "relend-sandbox-rasa-jwt-secret",
    # the eligibility backend's public sandbox token (the demo login's borrower list, the
    # console's borrower records); production needs a real one (``check``)
    "backend_token": "relend-sandbox-token",
}


class DeskSettings(RelendSettings):
    database_url: str = Field(f"sqlite:///{ROOT / 'var' / 'desk.db'}", env="RELEND_DESK_DB_URL")
    host: str = Field("127.0.0.1", env="RELEND_DESK_HOST")
    port: int = Field(8090, env="RELEND_DESK_PORT")
    internal_token: str = Field("", env="RELEND_DESK_TOKEN")
    app_secret: str = Field("", env="RELEND_APP_SECRET")
    agent_secret: str = Field("", env="RELEND_AGENT_SECRET")
    # during a rotation: the previous secrets keep verifying the tokens they signed
    app_secret_previous: str = Field("", env="RELEND_APP_SECRET_PREVIOUS")
    agent_secret_previous: str = Field("", env="RELEND_AGENT_SECRET_PREVIOUS")
    # signs each borrower message's identity for the assistant's input channel
    channel_secret: str = Field("", env="RELEND_CHANNEL_SECRET")
    # signs the desk's short-lived JWTs for Rasa's HTTP API (rasa run --jwt-secret)
    rasa_jwt_secret: str = Field("", env="RELEND_RASA_JWT_SECRET")
    demo_login: bool | None = Field(None, env="RELEND_DESK_DEMO_LOGIN")
    demo_agents: bool | None = Field(None, env="RELEND_DESK_DEMO_AGENTS")
    demo_agent_password: str = Field("relend-demo", env="RELEND_DEMO_AGENT_PASSWORD")
    rasa_url: str = Field("http://127.0.0.1:5005", env="RELEND_RASA_URL")
    # the longest one call to Rasa may take (docs/configuration.md says why 10 s)
    rasa_timeout: float = Field(10.0, env="RELEND_RASA_TIMEOUT")
    # how often the desk looks for turns a crash left behind and asks Rasa whether it is
    # back for conversations sent to agents only because it was down
    assistant_probe_seconds: float = Field(5.0, env="RELEND_DESK_ASSISTANT_PROBE_SECONDS")
    # the eligibility backend: the sandbox's demo borrowers (demo login) and the borrower
    # records the agent console shows (desk/records.py), with the backend's service token
    backend_url: str = Field("http://127.0.0.1:8081", env="RELEND_BACKEND_URL")
    backend_token: str = Field("", env="RELEND_BACKEND_TOKEN")
    max_message_chars: int = Field(2000, env="RELEND_DESK_MAX_MESSAGE_CHARS")
    borrower_token_ttl_seconds: int = Field(12 * 3600, env="RELEND_DESK_TOKEN_TTL")
    agent_token_ttl_seconds: int = Field(15 * 60, env="RELEND_AGENT_TOKEN_TTL")
    agent_refresh_ttl_seconds: int = Field(10 * 3600, env="RELEND_AGENT_REFRESH_TTL")
    max_body_bytes: int = Field(16 * 1024, env="RELEND_DESK_MAX_BODY_BYTES")
    ws_max_bytes: int = Field(16 * 1024, env="RELEND_DESK_WS_MAX_BYTES")
    messages_per_minute: int = Field(20, env="RELEND_DESK_MESSAGES_PER_MINUTE")
    login_failures_allowed: int = Field(5, env="RELEND_DESK_LOGIN_FAILURES")
    login_lockout_seconds: int = Field(300, env="RELEND_DESK_LOGIN_LOCKOUT")
    raw_text_days: int = Field(30, env="RELEND_DESK_RAW_TEXT_DAYS")
    # several desk processes: their live frames go through Redis pub/sub (desk/hub.py);
    # empty: one desk, in-process. Pub/sub channels ignore the database number, hence the
    # channel name: desks that must see each other share it, other deployments do not
    redis_url: str = Field("", env="RELEND_DESK_REDIS_URL")
    redis_channel: str = Field("relend:desk", env="RELEND_DESK_REDIS_CHANNEL")

    @root_validator(skip_on_failure=True)
    def _sandbox_secrets(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Secrets left empty get the public sandbox values, in the sandbox only."""
        for field, default in SANDBOX_DEFAULTS.items():
            if not (values.get(field) or "").strip():
                values[field] = default if values.get("mode") is Mode.SANDBOX else ""
        return values

    @validator("demo_login", "demo_agents", always=True)
    def _sandbox_feature(cls, value: bool | None, values: dict[str, Any]) -> bool:
        """Sandbox-only: on by default in the sandbox, off by default in production."""
        return sandbox_default(value, values, True, False)

    @validator("rasa_url", "backend_url")
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def check(self) -> None:
        extra = []
        if self.demo_login:
            extra.append("RELEND_DESK_DEMO_LOGIN is on: anyone could log in as a demo borrower")
        if self.demo_agents:
            extra.append("RELEND_DESK_DEMO_AGENTS is on: demo agents have a public password")
        if self.app_secret and self.app_secret == self.agent_secret:
            extra.append("RELEND_APP_SECRET and RELEND_AGENT_SECRET must differ")
        refuse_insecure("the support desk", self.mode, {
            "RELEND_DESK_TOKEN": self.internal_token,
            "RELEND_APP_SECRET": self.app_secret,
            "RELEND_AGENT_SECRET": self.agent_secret,
            "RELEND_CHANNEL_SECRET": self.channel_secret,
            "RELEND_RASA_JWT_SECRET": self.rasa_jwt_secret,
            "RELEND_BACKEND_TOKEN": self.backend_token,
        }, extra)
