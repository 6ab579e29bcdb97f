"""The deployment mode every service shares, and the rule for secrets in production.

``RELEND_ENV`` is ``sandbox`` (the local demo: demo logins, demo agents, the backend's fixture
route, public default secrets) or ``production``. Unset means **production**: a deployer who
forgets the switch gets a service that refuses to start and says what is missing, never one
that lets anybody log in as anybody. The local stack (``python -m stack``, ``scripts/run``,
``scripts/test``) sets ``sandbox`` for the servers it starts.

Each service reads its settings with one typed object (a ``RelendSettings``): ``from_env``
reads the environment and calls the service's ``check``, which passes the secrets it holds to
``refuse_insecure``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeVar

from pydantic import BaseSettings, Field, validator

MODE_VARIABLE = "RELEND_ENV"
MIN_SECRET_BYTES = 32

# Every secret value that has ever been a default in this public repository: none of them may
# protect a production service.
SANDBOX_SECRETS = frozenset({
    "relend-sandbox-token",
    "relend-sandbox-backoffice-token",
    "relend-sandbox-desk-token",
    "relend-sandbox-app-secret",
    "relend-sandbox-agent-secret",
    "relend-sandbox-rasa-token",
    "relend-sandbox-rasa-jwt-secret",
    "relend-sandbox-channel-secret",
    "relend-sandbox-action-token",
    "relend-demo",
})


class Mode(str, Enum):
    SANDBOX = "sandbox"
    PRODUCTION = "production"


class InsecureSettings(Exception):
    """Production settings a service must refuse to start with; the message names each one."""

    def __init__(self, service: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{service} refuses to start in production ({MODE_VARIABLE}=production):\n{lines}\n"
            f"Set each one to a random value of at least {MIN_SECRET_BYTES} bytes (e.g. "
            f"`python -c 'import secrets; print(secrets.token_urlsafe(48))'`), or run the local "
            f"demo with {MODE_VARIABLE}=sandbox. See docs/configuration.md and docs/security.md.")


def current_mode(environ: Mapping[str, str] | None = None) -> Mode:
    raw = (environ if environ is not None else os.environ).get(MODE_VARIABLE, "")
    raw = raw.strip().lower() or Mode.PRODUCTION.value
    try:
        return Mode(raw)
    except ValueError:
        raise InsecureSettings("Relend", [
            f"{MODE_VARIABLE} must be 'sandbox' or 'production', not {raw!r}"]) from None


def secret_problems(secrets: Mapping[str, str | None]) -> list[str]:
    """What is wrong with each named secret for production use (empty list: all fine)."""
    problems = []
    for name, value in secrets.items():
        if not value or not value.strip():
            problems.append(f"{name} is not set")
        elif value in SANDBOX_SECRETS:
            problems.append(f"{name} is the public sandbox value from the repository")
        elif len(value.encode("utf-8")) < MIN_SECRET_BYTES:
            problems.append(f"{name} is shorter than {MIN_SECRET_BYTES} bytes")
    return problems


def refuse_insecure(service: str, mode: Mode, secrets: Mapping[str, str | None],
                    extra_problems: list[str] | None = None) -> None:
    """Raise ``InsecureSettings`` in production when any secret is weak or a sandbox-only
    feature is on (``extra_problems``); do nothing in the sandbox."""
    if mode is not Mode.PRODUCTION:
        return
    problems = secret_problems(secrets) + list(extra_problems or [])
    if problems:
        raise InsecureSettings(service, problems)


def sandbox_default(value: Any, values: Mapping[str, Any], sandbox: Any, production: Any) -> Any:
    """For a validator: an unset field (None) is ``sandbox`` in the sandbox and ``production``
    in production (``values`` are the fields read before it, the mode first)."""
    if value is not None:
        return value
    return sandbox if values.get("mode") is Mode.SANDBOX else production


_Settings = TypeVar("_Settings", bound="RelendSettings")


class RelendSettings(BaseSettings):
    """What every service's settings share: the mode, immutability, no .env file, an
    environment variable set to blanks meaning the same as an unset one, and reading them
    (``from_env``) only together with the service's own ``check``."""

    mode: Mode = Field(default_factory=current_mode, env=MODE_VARIABLE)

    class Config:
        allow_mutation = False
        env_file = None

        @classmethod
        def customise_sources(cls, init_settings: Any, env_settings: Any,
                              file_secret_settings: Any) -> tuple[Any, ...]:
            def environment(settings: BaseSettings) -> dict[str, Any]:
                return {name: value for name, value in env_settings(settings).items()
                        if not (isinstance(value, str) and not value.strip())}

            return init_settings, environment

    @validator("mode", pre=True)
    def _mode(cls, value: Any) -> Any:
        # the one reading of RELEND_ENV: case and blanks do not matter, anything else is refused
        return current_mode({MODE_VARIABLE: value}) if isinstance(value, str) else value

    @classmethod
    def from_env(cls: type[_Settings], **overrides: Any) -> _Settings:
        """Read the environment, then refuse what production must never run with
        (``InsecureSettings``, whose message names each variable)."""
        settings = cls(**overrides)
        settings.check()
        return settings

    def replace(self: _Settings, **changes: Any) -> _Settings:
        """A copy with some fields changed (not re-read from the environment, not re-checked:
        the service checks the settings it is given)."""
        return self.copy(update=changes)

    def check(self) -> None:
        """Raise ``InsecureSettings`` in production for weak secrets or sandbox-only features
        (each service says which it has)."""
        raise NotImplementedError
