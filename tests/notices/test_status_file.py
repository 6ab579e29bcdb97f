"""How ``python -m stack`` runs the notifier: its status file (the health check of a process
that serves nothing), the stack's defaults for it and the backend's worker, and the queue of
the production topology. The notifier delivering through a running stack:
tests/topology/test_stack_command.py and tests/notices/test_live_notice.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from stack.config import StackConfig
from stack.production import Engines
from stack.services import notifier, services
from tests.conftest import ROOT


def test_a_notifier_that_cannot_reach_the_desk_writes_no_status(tmp_path: Path) -> None:
    status = tmp_path / "notices.status"
    base = {k: v for k, v in os.environ.items() if not k.startswith("RELEND_")}
    result = subprocess.run(
        [sys.executable, "-m", "notices", "once"], cwd=ROOT, capture_output=True, text=True,
        timeout=60, env={**base, "PYTHONPATH": str(ROOT), "RELEND_ENV": "sandbox",
                         "RELEND_DESK_URL": "http://127.0.0.1:9",
                         "RELEND_BACKEND_URL": "http://127.0.0.1:9",
                         "RELEND_NOTICES_STATUS_FILE": str(status)})
    assert result.returncode == 1, result.stderr
    assert not status.exists()


def stack_config(tmp_path: Path) -> StackConfig:
    return replace(StackConfig.from_env(), log_dir=tmp_path / "log")


def test_the_notifier_is_healthy_only_while_its_status_file_is_fresh(tmp_path: Path) -> None:
    config = stack_config(tmp_path)
    service = notifier(config, {"RELEND_NOTICES_POLL_SECONDS": "2"})
    assert service.status_file == tmp_path / "notices.status"
    assert service.status_max_age == 11  # three rounds of 2 s, and 5 s to spare
    assert not service.healthy()  # none yet
    service.status_file.write_text("1\n")
    assert service.healthy()
    old = time.time() - 12
    os.utime(service.status_file, (old, old))
    assert not service.healthy()


def test_the_embedded_stack_runs_the_worker_and_the_notifier_without_quiet_hours(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RELEND_OUTBOX_WORKER_SECONDS", "RELEND_NOTICES_POLL_SECONDS",
                 "RELEND_NOTICES_QUIET_HOURS", "RELEND_NOTICES_STATUS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RELEND_ENV", "sandbox")
    config = stack_config(tmp_path)
    env = config.child_env()
    assert env["RELEND_OUTBOX_WORKER_SECONDS"] == "2"
    assert env["RELEND_NOTICES_POLL_SECONDS"] == "2"
    assert env["RELEND_NOTICES_QUIET_HOURS"] == "off"
    assert env["RELEND_NOTICES_STATUS_FILE"] == str(tmp_path / "notices.status")
    assert services(config)["notices"].command[-3:] == ["-m", "notices", "run"]

    monkeypatch.setenv("RELEND_NOTICES_QUIET_HOURS", "23:00-07:00")
    monkeypatch.setenv("RELEND_OUTBOX_WORKER_SECONDS", "10")
    env = config.child_env()
    assert env["RELEND_NOTICES_QUIET_HOURS"] == "23:00-07:00"
    assert env["RELEND_OUTBOX_WORKER_SECONDS"] == "10"

    # production keeps the notifier's own default (22:00-08:00): the stack sets none
    monkeypatch.delenv("RELEND_NOTICES_QUIET_HOURS")
    monkeypatch.setenv("RELEND_ENV", "production")
    assert "RELEND_NOTICES_QUIET_HOURS" not in config.child_env()


def test_the_topology_publishes_and_consumes_a_queue_of_its_own() -> None:
    engines = Engines(
        pg_host="127.0.0.1", pg_port=5432, pg_user="postgres", pg_password="",
        tracker_db="t", redis_host="127.0.0.1", redis_port=6379, rabbitmq_host="127.0.0.1",
        rabbitmq_port=5673, rabbitmq_user="relend", rabbitmq_password="p@ss/word",
        rabbitmq_queue="relend_h9_x_events", desk_redis_url="redis://127.0.0.1:6379/2")
    env = engines.notices_env()
    assert env == {
        "RELEND_OUTBOX_AMQP_URL": "amqp://relend:p%40ss%2Fword@127.0.0.1:5673/",
        "RELEND_OUTBOX_QUEUE": "relend_h9_x_events.notices",
        "RELEND_NOTICES_AMQP_URL": "amqp://relend:p%40ss%2Fword@127.0.0.1:5673/",
        "RELEND_NOTICES_QUEUE": "relend_h9_x_events.notices",
    }
    named = replace(engines, notices_queue="lender.notices")
    assert named.notices_env()["RELEND_NOTICES_QUEUE"] == "lender.notices"
