"""Ports, tokens and paths of the local stack (environment variables, documented in
docs/configuration.md). Child processes inherit these so every piece agrees.

The stack runs the sandbox unless ``RELEND_ENV=production`` is set: there the secrets
between the services (backend and desk tokens, channel and Rasa JWT secrets, action token) get
no default, and ``check()`` refuses missing,
short or public ones (the servers refuse them too)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from common.settings import Mode, current_mode, refuse_insecure

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, "") or default)


def stack_mode() -> Mode:
    """The local stack is the sandbox unless the caller says otherwise (``RELEND_ENV``)."""
    return current_mode({"RELEND_ENV": os.environ.get("RELEND_ENV", "") or "sandbox"})


def _secret(name: str, sandbox_default: str) -> str:
    """A secret from the environment; its public default only in the sandbox."""
    value = os.environ.get(name, "")
    return value or (sandbox_default if stack_mode() is Mode.SANDBOX else "")


@dataclass(frozen=True)
class StackConfig:
    backend_port: int
    actions_port: int
    rasa_port: int
    desk_port: int
    backend_token: str
    desk_token: str
    # signs the desk's messages to Rasa's input channel (channels/desk_channel.py)
    channel_secret: str
    # signs the JWTs Rasa's HTTP API requires (rasa run --jwt-secret)
    rasa_jwt_secret: str
    # the bearer token Rasa sends to the action server, which refuses requests without it
    action_token: str
    model_path: Path
    log_dir: Path
    backend_db_url: str
    desk_db_url: str
    tracker_db: Path
    endpoints: str

    @classmethod
    def from_env(cls) -> StackConfig:
        var = Path(os.environ.get("RELEND_VAR_DIR", VAR))
        return cls(
            backend_port=_port("RELEND_BACKEND_PORT", 8081),
            actions_port=_port("RELEND_ACTIONS_PORT", 5055),
            rasa_port=_port("RELEND_RASA_PORT", 5005),
            desk_port=_port("RELEND_DESK_PORT", 8090),
            backend_token=_secret("RELEND_BACKEND_TOKEN", "relend-sandbox-token"),
            desk_token=_secret("RELEND_DESK_TOKEN", "relend-sandbox-desk-token"),
            channel_secret=_secret("RELEND_CHANNEL_SECRET", "relend-sandbox-channel-secret"),
            rasa_jwt_secret=_secret("RELEND_RASA_JWT_SECRET", "relend-sandbox-rasa-jwt-secret"),
            action_token=_secret("RELEND_ACTION_TOKEN", "relend-sandbox-action-token"),
            model_path=Path(os.environ.get("RELEND_MODEL", ROOT / "models" / "relend.tar.gz")),
            log_dir=var / "log",
            backend_db_url=os.environ.get("RELEND_BACKEND_DB_URL", f"sqlite:///{var}/eligibility.db"),
            desk_db_url=os.environ.get("RELEND_DESK_DB_URL", f"sqlite:///{var}/desk.db"),
            tracker_db=var / "rasa_tracker.db",
            endpoints=os.environ.get("RELEND_ENDPOINTS", "endpoints.yml"),
        )

    @property
    def notices_status(self) -> Path:
        """The notifier's status file: touched after each round that reached the desk."""
        return self.log_dir.parent / "notices.status"

    def url(self, service: str) -> str:
        port = {"backend": self.backend_port, "actions": self.actions_port,
                "rasa": self.rasa_port, "desk": self.desk_port}[service]
        return f"http://127.0.0.1:{port}"

    def check(self) -> None:
        """In production, refuse weak secrets between the services before starting any (each
        server refuses them too, but only after the ones before it have started)."""
        refuse_insecure("the local stack", stack_mode(), {
            "RELEND_BACKEND_TOKEN": self.backend_token,
            "RELEND_DESK_TOKEN": self.desk_token,
            "RELEND_CHANNEL_SECRET": self.channel_secret,
            "RELEND_RASA_JWT_SECRET": self.rasa_jwt_secret,
            "RELEND_ACTION_TOKEN": self.action_token,
        })

    def child_env(self) -> dict[str, str]:
        """What every server process needs to find the others."""
        sandbox = stack_mode() is Mode.SANDBOX
        return {
            **os.environ,
            # proactive notices: the backend's scheduler and publisher run in `serve` (every
            # 2 s unless set), the notifier reads the feed every 2 s and proves it is alive
            # through its status file; in the sandbox no quiet hours unless set (the demo)
            "RELEND_OUTBOX_WORKER_SECONDS": os.environ.get("RELEND_OUTBOX_WORKER_SECONDS", "")
            or "2",
            "RELEND_NOTICES_POLL_SECONDS": os.environ.get("RELEND_NOTICES_POLL_SECONDS", "")
            or "2",
            **({"RELEND_NOTICES_QUIET_HOURS": os.environ.get("RELEND_NOTICES_QUIET_HOURS", "")
                or "off"} if sandbox else {}),
            "RELEND_NOTICES_STATUS_FILE": str(self.notices_status),
            # the local stack is the sandbox unless the caller says otherwise
            "RELEND_ENV": os.environ.get("RELEND_ENV", "") or "sandbox",
            "RELEND_BACKEND_URL": self.url("backend"),
            "RELEND_BACKEND_PORT": str(self.backend_port),
            "RELEND_BACKEND_TOKEN": self.backend_token,
            "RELEND_BACKEND_DB_URL": self.backend_db_url,
            "RELEND_DESK_URL": self.url("desk"),
            "RELEND_DESK_PORT": str(self.desk_port),
            "RELEND_DESK_TOKEN": self.desk_token,
            "RELEND_DESK_DB_URL": self.desk_db_url,
            "RELEND_RASA_URL": self.url("rasa"),
            "RELEND_CHANNEL_SECRET": self.channel_secret,
            "RELEND_RASA_JWT_SECRET": self.rasa_jwt_secret,
            "RELEND_ACTION_URL": f"{self.url('actions')}/webhook",
            "RELEND_ACTION_TOKEN": self.action_token,
            "RELEND_TRACKER_DB": str(self.tracker_db),
            # endpoints.production.yml reads it; RabbitMQ's standard port unless told otherwise
            "RELEND_RABBITMQ_PORT": os.environ.get("RELEND_RABBITMQ_PORT", "") or "5672",
            "SANIC_HOST": "127.0.0.1",
            "RASA_TELEMETRY_ENABLED": "false",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONPATH": str(ROOT),
        }
