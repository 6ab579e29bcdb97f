"""``python -m stack up`` (embedded) and ``python -m stack up --production --replicas 2`` as a
user runs them, then ``python -m stack stop``: everything answers in between (through nginx
in production), the notifier runs and tells a borrower in their open chat that the repayment
the back office posted has posted, and afterwards no process of that var directory is left
(nginx and the notifier included), no port is open and the notifier's status file is gone."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import websockets

from stack.config import ROOT
from tests.conftest import free_port, run_coroutine
from tests.topology.conftest import PREFIX, _drop, _missing

pytestmark = [pytest.mark.servers, pytest.mark.topology]


def processes_of(var_dir: Path) -> list[str]:
    """Running processes started for ``var_dir`` (its path in their command line or
    RELEND_VAR_DIR in their environment)."""
    found = []
    needle = str(var_dir).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in cmdline or (b"\0RELEND_VAR_DIR=" + needle + b"\0"
                                 in b"\0" + environ + b"\0"):
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {command}")
    return found


def listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


BACKOFFICE = {"Authorization": "Bearer relend-sandbox-backoffice-token"}


def wait_ready(up: subprocess.Popen[bytes], log: Path, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while b"[stack] ready after" not in log.read_bytes():
        assert up.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(1)
    return log.read_text()


def notice_after_repayment_post(desk: str, backend: str, timeout: float = 45) -> dict:
    """demo-posting has the chat open; the back office posts their repayment; the first
    message frame that is a notice (none by hand: the stack's notifier must deliver it)."""
    token = requests.post(f"{desk}/api/demo/login", timeout=10, json={
        "borrower_id": "demo-posting", "locale": "zh-CN"}).json()["token"]

    async def run() -> dict:
        async with websockets.connect(desk.replace("http://", "ws://") + "/ws/chat",
                                      subprotocols=["relend.v1", f"auth.{token}"]) as socket:
            assert json.loads(await socket.recv())["type"] == "session"
            paid = requests.get(f"{backend}/v1/borrowers/demo-posting/repayments", timeout=10,
                                headers={"Authorization": "Bearer relend-sandbox-token"}
                                ).json()["repayments"][0]
            posted = requests.post(f"{backend}/v1/backoffice/repayments/"
                                   f"{paid['repayment_id']}/post", headers=BACKOFFICE,
                                   timeout=10)
            assert posted.status_code == 200, posted.text

            async def first_notice() -> dict:
                while True:
                    frame = json.loads(await socket.recv())
                    if frame.get("type") == "message" and frame.get("notice"):
                        return frame

            return await asyncio.wait_for(first_notice(), timeout)

    return run_coroutine(run())


def test_up_runs_the_notifier_which_tells_the_chat_and_stop_stops_it(tmp_path: Path) -> None:
    ports = {"RELEND_BACKEND_PORT": free_port(), "RELEND_RASA_PORT": free_port(),
             "RELEND_ACTIONS_PORT": free_port(), "RELEND_DESK_PORT": free_port()}
    env = {**os.environ, "RELEND_ENV": "sandbox", "RELEND_VAR_DIR": str(tmp_path),
           **{k: str(v) for k, v in ports.items()}}
    for name in ("RELEND_NOTICES_AMQP_URL", "RELEND_OUTBOX_AMQP_URL", "RELEND_BACKEND_DB_URL",
                 "RELEND_DESK_DB_URL", "RELEND_NOTICES_QUIET_HOURS",
                 "RELEND_OUTBOX_WORKER_SECONDS"):
        env.pop(name, None)
    status = tmp_path / "notices.status"
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen([sys.executable, "-m", "stack", "up"], cwd=ROOT, env=env, stdout=log,
                          stderr=subprocess.STDOUT)
    try:
        printed = wait_ready(up, tmp_path / "up.log")
        assert "notices" in printed.rsplit("[stack] ready after", 1)[1], printed
        assert any("-m notices run" in p for p in processes_of(tmp_path)), \
            processes_of(tmp_path)
        assert time.time() - status.stat().st_mtime < 15

        frame = notice_after_repayment_post(f"http://127.0.0.1:{ports['RELEND_DESK_PORT']}",
                                            f"http://127.0.0.1:{ports['RELEND_BACKEND_PORT']}")
        assert frame["sender"] == "bot" and frame["notice"] == "repayment_posted", frame
        assert "5,000元已经入账" in frame["text"], frame

        stopped = subprocess.run([sys.executable, "-m", "stack", "stop"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=120)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert up.wait(30) == 0
        time.sleep(1)
        assert processes_of(tmp_path) == []
        assert not status.exists()
        assert [p for p in ports.values() if listening(p)] == []
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
            up.wait(60)
        log.close()


def test_up_production_then_stop_leaves_nothing_running(tmp_path: Path) -> None:
    missing = _missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing, pytrace=False)
        pytest.skip(missing)
    prefix = f"{PREFIX}{uuid.uuid4().hex[:8]}"
    base = free_port()
    while any(listening(base + offset + i) for offset in (0, 100, 200) for i in range(2)) \
            or base + 202 > 65000:
        base = free_port()
    replicas = {base + offset + i for offset in (0, 100, 200) for i in range(2)}
    ports = {name: free_port(avoid=replicas) for name in (
        "RELEND_BACKEND_PORT", "RELEND_RASA_PORT", "RELEND_ACTIONS_PORT", "RELEND_DESK_PORT")}
    env = {**os.environ, "RELEND_ENV": "sandbox", "RELEND_VAR_DIR": str(tmp_path),
           **{k: str(v) for k, v in ports.items()}, "RELEND_REPLICA_PORT_BASE": str(base),
           "RELEND_PROD_BACKEND_DB": f"{prefix}_backend", "RELEND_PROD_DESK_DB":
           f"{prefix}_desk", "RELEND_PG_DB": f"{prefix}_tracker",
           "RELEND_RABBITMQ_QUEUE": f"{prefix}_events",
           "RELEND_DESK_REDIS_CHANNEL": f"{prefix}:desk"}
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen([sys.executable, "-m", "stack", "up", "--production", "--replicas",
                           "2"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while b"[stack] ready after" not in (tmp_path / "up.log").read_bytes():
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "up.log").read_text()
            time.sleep(1)
        printed = (tmp_path / "up.log").read_text()
        for line in ("load balancer (nginx)", "python -m stack stop",
                     f"{prefix}_events.notices (outbox -> notifier)",
                     f":{ports['RELEND_DESK_PORT']} -> {base + 200}, {base + 201}"):
            assert line in printed, printed
        desk = f"http://127.0.0.1:{ports['RELEND_DESK_PORT']}"
        assert requests.get(f"{desk}/health", timeout=10).status_code == 200
        assert requests.get(f"{desk}/chat", timeout=10).status_code == 200
        # backend, 2+2+2 replicas, nginx (2), the notifier, up
        assert len(processes_of(tmp_path)) >= 10
        assert any("-m notices run" in p for p in processes_of(tmp_path))
        # the backend publishes to RabbitMQ, the notifier consumes the topology's queue
        frame = notice_after_repayment_post(desk, f"http://127.0.0.1:{ports['RELEND_BACKEND_PORT']}")
        assert frame["notice"] == "repayment_posted" and "5,000元已经入账" in frame["text"], frame
        notices_log = (tmp_path / "log" / "notices.log").read_text()
        assert f"consuming notices from the queue {prefix}_events.notices" in notices_log

        stopped = subprocess.run([sys.executable, "-m", "stack", "stop"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=120)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert up.wait(30) == 0
        time.sleep(1)
        assert processes_of(tmp_path) == []
        assert not (tmp_path / "notices.status").exists()
        open_ports = [p for p in [*ports.values(), *(base + o + i for o in (0, 100, 200)
                                                      for i in range(2))] if listening(p)]
        assert open_ports == []
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
            up.wait(60)
        log.close()
        _drop(prefix, f"{prefix}_events")
        _drop(prefix, f"{prefix}_events.notices")
