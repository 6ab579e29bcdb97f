"""``python -m notices``: what it refuses to start with."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def run(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RELEND_")}
    return subprocess.run([sys.executable, "-m", "notices", "once"], cwd=ROOT,
                          env={**base, "PYTHONPATH": str(ROOT), **env},
                          capture_output=True, text=True, timeout=60)


def test_production_without_secrets_is_refused_naming_them() -> None:
    result = run()
    assert result.returncode == 2
    for name in ("RELEND_DESK_TOKEN", "RELEND_BACKEND_TOKEN", "RELEND_BACKOFFICE_TOKEN"):
        assert name in result.stderr


def test_with_a_broker_the_backoffice_token_is_not_needed() -> None:
    result = run(RELEND_NOTICES_AMQP_URL="amqp://guest:guest@127.0.0.1:5672/")
    assert result.returncode == 2
    assert "RELEND_DESK_TOKEN" in result.stderr and "RELEND_BACKOFFICE_TOKEN" not in result.stderr


def test_malformed_quiet_hours_are_refused() -> None:
    result = run(RELEND_ENV="sandbox", RELEND_NOTICES_QUIET_HOURS="22h-8h")
    assert result.returncode == 2
    assert "quiet hours must read HH:MM-HH:MM" in result.stderr


def test_once_without_a_desk_fails_and_says_why() -> None:
    result = run(RELEND_ENV="sandbox", RELEND_DESK_URL="http://127.0.0.1:9",
                 RELEND_BACKEND_URL="http://127.0.0.1:9")
    assert result.returncode == 1
    assert "no cursor from the desk" in result.stderr
