"""Production as an operator starts it, for the tests of what each service refuses there.

The tests run in the sandbox (tests/conftest.py sets ``RELEND_ENV``, and a test may set more
``RELEND_*``): production here starts from an environment with none of that, then
``RELEND_ENV=production``, then what the test gives -- for a subprocess
(``production_environment``, ``run_module``) or for this process (``use_production``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KEPT = {"RELEND_PYTHON"}  # picks the interpreter for scripts/setup, not a setting of a service


def _apply(env: MutableMapping[str, str], variables: Mapping[str, str | None]) -> None:
    for name, value in variables.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value


def production_environment(settings: Mapping[str, str], **variables: str | None) -> dict[str, str]:
    """For a subprocess: this environment without the sandbox's ``RELEND_*``, in production,
    with the project importable, then ``settings`` (the service's good ones), then
    ``variables`` on top (None: leave the variable unset)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELEND_") or k in KEPT}
    env.update(RELEND_ENV="production", PYTHONPATH=str(PROJECT_ROOT),
               SQLALCHEMY_SILENCE_UBER_WARNING="1")
    env.update(settings)
    _apply(env, variables)
    return env


def run_module(args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m <args>`` from the project root. A start that is wrongly allowed would serve
    forever: the timeout turns it into a failure."""
    return subprocess.run([sys.executable, "-m", *args], cwd=PROJECT_ROOT, env=dict(env),
                          capture_output=True, text=True, timeout=60)


def use_production(monkeypatch: pytest.MonkeyPatch, **variables: str | None) -> None:
    """The same for this process, until the test ends: no ``RELEND_*`` of the sandbox,
    ``RELEND_ENV=production``, then ``variables`` (None: leave the variable unset)."""
    for name in [n for n in os.environ if n.startswith("RELEND_") and n not in KEPT]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RELEND_ENV", "production")
    for name, value in variables.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
