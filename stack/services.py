"""The four servers and the notifier as processes: start (or reuse what already answers),
wait until ready, and stop only what this stack started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .config import ROOT, StackConfig
from .rasa_auth import rasa_headers

SERVICES = ("backend", "desk", "actions", "rasa", "notices")


@dataclass
class Service:
    name: str
    command: list[str]
    health: str
    timeout: float
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    # headers for the health check (Rasa's /status wants a JWT), made fresh for each check
    headers: Callable[[], dict[str, str]] | None = field(default=None, repr=False)
    # variables of this process only (a replica's own port), over the stack's child_env
    env: dict[str, str] | None = field(default=None, repr=False)
    # a process that serves nothing (the notifier): healthy while it touches this file at
    # least every ``status_max_age`` seconds (``health`` is then only its name in messages)
    status_file: Path | None = field(default=None, repr=False)
    status_max_age: float = 15.0

    def healthy(self) -> bool:
        if self.status_file is not None:
            try:
                age = time.time() - self.status_file.stat().st_mtime
            except OSError:
                return False
            return age <= self.status_max_age
        try:
            headers = self.headers() if self.headers else None
            return requests.get(self.health, headers=headers, timeout=1).status_code == 200
        except requests.RequestException:
            return False


def _python(module_args: list[str]) -> list[str]:
    return [sys.executable, *module_args]


def notifier(config: StackConfig, env: dict[str, str], timeout: float = 60) -> Service:
    """``python -m notices run``: healthy while its status file is fresh (it touches it after
    every round that reached the desk, every RELEND_NOTICES_POLL_SECONDS)."""
    poll = float(env.get("RELEND_NOTICES_POLL_SECONDS") or 5)
    return Service("notices", _python(["-m", "notices", "run"]),
                   f"{config.notices_status} (status file)", timeout,
                   config.log_dir / "notices.log", status_file=config.notices_status,
                   status_max_age=3 * poll + 5)


def launch(service: Service, env: dict[str, str]) -> None:
    """Start the service's process in its own process group, its output into its log."""
    if service.status_file is not None:
        # a file left by an earlier run proves nothing about this process
        service.status_file.unlink(missing_ok=True)
    with service.log.open("ab") as log:
        service.process = subprocess.Popen(service.command, cwd=ROOT, env=env, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)


def services(config: StackConfig) -> dict[str, Service]:
    logs = config.log_dir
    return {
        "backend": Service("backend", _python(["-m", "eligibility", "serve"]),
                           f"{config.url('backend')}/health", 30, logs / "backend.log"),
        "desk": Service("desk", _python(["-m", "desk", "serve"]),
                        f"{config.url('desk')}/health", 30, logs / "desk.log"),
        # rasa-sdk's server guarded by RELEND_ACTION_TOKEN (actions/server.py), on loopback
        "actions": Service("actions", _python(["-m", "actions.server", "--host", "127.0.0.1",
                                               "--port", str(config.actions_port)]),
                           f"{config.url('actions')}/health", 60, logs / "actions.log"),
        # `rasa run ... --jwt-secret $RELEND_RASA_JWT_SECRET --jwt-method HS256`, the secret
        # kept off the command line (stack/rasa_run.py); the API takes only a Bearer JWT
        "rasa": Service("rasa", _python(["-m", "stack.rasa_run", "run", "-i", "127.0.0.1",
                                         "--port", str(config.rasa_port),
                                         "--model", str(config.model_path), "--enable-api",
                                         "--endpoints", config.endpoints, "--credentials",
                                         "credentials.yml", "--cors", "http://127.0.0.1"]),
                        f"{config.url('rasa')}/status", 180, logs / "rasa.log",
                        headers=lambda: rasa_headers(config.rasa_jwt_secret)),
        # the notifier (notices/): the backend's outbox feed -> the borrower's chat
        "notices": notifier(config, config.child_env()),
    }



def warm_up(rasa_url: str, jwt_secret: str) -> None:
    """One parse, so that Rasa loads its tokenizer's dictionary before a borrower's first turn."""
    with contextlib.suppress(requests.RequestException):
        requests.post(f"{rasa_url}/model/parse", headers=rasa_headers(jwt_secret),
                      json={"text": "还款后为什么借不了"}, timeout=30)

class Stack:
    """``with Stack(config).up(): ...`` — servers answering inside, stopped after."""

    def __init__(self, config: StackConfig | None = None, *, reuse: bool = True,
                 only: tuple[str, ...] = SERVICES) -> None:
        self.config = config or StackConfig.from_env()
        self.reuse = reuse
        self.only = only
        self.started: list[Service] = []
        self.all = services(self.config)
        # seconds from starting each server this stack started until it answered
        self.ready_seconds: dict[str, float] = {}

    def start(self) -> None:
        self.config.check()
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        env = self.config.child_env()
        pending = []
        launched = time.monotonic()
        for name in self.only:
            service = self.all[name]
            if service.healthy():
                if not self.reuse:
                    raise RuntimeError(f"{name}: something already answers at {service.health}")
                continue
            launch(service, env)
            self.started.append(service)
            pending.append(service)
        for service in pending:
            self._wait(service)
            self.ready_seconds[service.name] = round(time.monotonic() - launched, 1)
        if "rasa" in [s.name for s in pending]:
            self._warm_up()

    def _wait(self, service: Service) -> None:
        deadline = time.monotonic() + service.timeout
        while time.monotonic() < deadline:
            if service.process is not None and service.process.poll() is not None:
                raise RuntimeError(f"{service.name} exited early; see {service.log}")
            if service.healthy():
                return
            time.sleep(0.3)
        raise RuntimeError(f"{service.name} not ready after {service.timeout:.0f} s; "
                           f"see {service.log}")

    def _warm_up(self) -> None:
        """The tokenizer loads its dictionary on the first message: pay that before users do."""
        warm_up(self.config.url("rasa"), self.config.rasa_jwt_secret)

    def stop(self) -> None:
        for service in reversed(self.started):
            if service.process is None or service.process.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.process.pid, signal.SIGTERM)
            try:
                service.process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(service.process.pid, signal.SIGKILL)
                service.process.wait(5)
            if service.status_file is not None:
                service.status_file.unlink(missing_ok=True)
        self.started.clear()

    @contextlib.contextmanager
    def up(self) -> Iterator[Stack]:
        try:
            self.start()
            yield self
        finally:
            self.stop()
