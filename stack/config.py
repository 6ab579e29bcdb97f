"""Ports, tokens and paths of the local stack (environment variables, documented in
docs/configuration.md). Child processes inherit these so every piece agrees."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, "") or default)


@dataclass(frozen=True)
class StackConfig:
    backend_port: int
    actions_port: int
    rasa_port: int
    desk_port: int
    backend_token: str
    rasa_token: str
    desk_token: str
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
            backend_token=os.environ.get("RELEND_BACKEND_TOKEN", "relend-sandbox-token"),
            rasa_token=os.environ.get("RELEND_RASA_TOKEN", "relend-sandbox-rasa-token"),
            desk_token=os.environ.get("RELEND_DESK_TOKEN", "relend-sandbox-desk-token"),
            model_path=Path(os.environ.get("RELEND_MODEL", ROOT / "models" / "relend.tar.gz")),
            log_dir=var / "log",
            backend_db_url=os.environ.get("RELEND_BACKEND_DB_URL", f"sqlite:///{var}/eligibility.db"),
            desk_db_url=os.environ.get("RELEND_DESK_DB_URL", f"sqlite:///{var}/desk.db"),
            tracker_db=var / "rasa_tracker.db",
            endpoints=os.environ.get("RELEND_ENDPOINTS", "endpoints.yml"),
        )

    def url(self, service: str) -> str:
        port = {"backend": self.backend_port, "actions": self.actions_port,
                "rasa": self.rasa_port, "desk": self.desk_port}[service]
        return f"http://127.0.0.1:{port}"

    def child_env(self) -> dict[str, str]:
        """What every server process needs to find the others."""
        return {
            **os.environ,
            "RELEND_BACKEND_URL": self.url("backend"),
            "RELEND_BACKEND_PORT": str(self.backend_port),
            "RELEND_BACKEND_TOKEN": self.backend_token,
            "RELEND_BACKEND_DB_URL": self.backend_db_url,
            "RELEND_DESK_URL": self.url("desk"),
            "RELEND_DESK_PORT": str(self.desk_port),
            "RELEND_DESK_TOKEN": self.desk_token,
            "RELEND_DESK_DB_URL": self.desk_db_url,
            "RELEND_RASA_URL": self.url("rasa"),
            "RELEND_RASA_TOKEN": self.rasa_token,
            "RELEND_ACTION_URL": f"{self.url('actions')}/webhook",
            "RELEND_TRACKER_DB": str(self.tracker_db),
            "SANIC_HOST": "127.0.0.1",
            "RASA_TELEMETRY_ENABLED": "false",
            "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONPATH": str(ROOT),
        }
