"""``python -m stack {up,train,chat,stop}``: the local assistant, the way the run command starts it.

up     seed the sandbox backend, train if needed, start every server and the notifier, then
       wait (Ctrl-C stops)
train  train the Rasa model if its inputs changed (--force to retrain)
chat   all of `up`, then a terminal chat as a demo borrower through the desk (like the app)
stop   stop a running `up` or `chat` (of the same RELEND_VAR_DIR) and the servers it started

up --production --replicas N   the production topology instead (docs/production.md): N Rasa
       processes, action servers and desks behind nginx, on PostgreSQL, Redis and RabbitMQ
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .config import ROOT, StackConfig
from .model import ensure_model
from .services import Stack


def seed_backend(config: StackConfig) -> None:
    subprocess.run([sys.executable, "-m", "eligibility", "seed"], cwd=ROOT,
                   env=config.child_env(), check=True, stdout=subprocess.DEVNULL)


def banner(config: StackConfig) -> str:
    return "\n".join([
        "Relend is running (all on 127.0.0.1):",
        f"  in-app chat page   {config.url('desk')}/chat",
        f"  agent console      {config.url('desk')}/console   (agent1 / relend-demo)",
        f"  eligibility API    {config.url('backend')}/v1/openapi.json",
        f"  Rasa               {config.url('rasa')}",
        "  notices            python -m notices run (the backend's outbox -> the borrower's chat)",
        f"  logs               {config.log_dir}",
    ])


def pid_file(config: StackConfig) -> Path:
    """Where a running ``up``/``chat`` writes its process id (one per var directory)."""
    return config.log_dir.parent / "stack.pid"


@contextlib.contextmanager
def running(config: StackConfig) -> Iterator[None]:
    path = pid_file(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if path.read_text().strip() == str(os.getpid()):
                path.unlink()


def _is_stack(pid: int) -> bool:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"stack" in args and b"-m" in args


def stop(config: StackConfig, timeout: float = 40.0) -> int:
    """SIGTERM to the running ``up``/``chat``, which stops the servers it started; waits."""
    path = pid_file(config)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        print(f"[stack] nothing to stop (no {path})")
        return 0
    if not _is_stack(pid):
        print(f"[stack] process {pid} is not a running stack; removing {path}")
        path.unlink(missing_ok=True)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_stack(pid):
            print(f"[stack] stopped (process {pid})")
            return 0
        time.sleep(0.3)
    print(f"[stack] process {pid} still running after {timeout:.0f} s", file=sys.stderr)
    return 1


def serve(command: str, config: StackConfig, ready_seconds: dict[str, float]) -> int:
    """With every server up: the terminal chat (``chat``), or wait until Ctrl-C (``up``)."""
    if ready_seconds:
        print("[stack] ready after (s): " + ", ".join(
            f"{name} {seconds}" for name, seconds in ready_seconds.items()), flush=True)
    if command == "chat":
        from .chat import run_chat

        return run_chat(config)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def up_production(command: str, replicas: int, *, force: bool = False) -> int:
    """``up``/``chat`` with ``--production``: the topology of stack/production.py."""
    from .production import ProductionStack, Topology

    topology = Topology.from_env(replicas)
    config = topology.config
    with running(config):
        stack = ProductionStack(topology)
        stack.prepare()
        subprocess.run([sys.executable, "-m", "eligibility", "seed"], cwd=ROOT,
                       env=stack.child_env(), check=True, stdout=subprocess.DEVNULL)
        ensure_model(config, force=force)
        print(f"[stack] starting the production topology ({replicas} replicas)...", flush=True)
        with stack.up():
            print(topology.describe(), flush=True)
            return serve(command, config, stack.ready_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "train", "chat", "stop"])
    parser.add_argument("--force", action="store_true", help="retrain even if nothing changed")
    parser.add_argument("--production", action="store_true",
                        help="up/chat: the production topology (docs/production.md)")
    parser.add_argument("--replicas", type=int, default=2,
                        help="with --production: Rasa processes, action servers and desks (2)")
    args = parser.parse_args(argv)
    # a plain `kill` must still stop the servers this started, not orphan them
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    config = StackConfig.from_env()
    if args.command == "train":
        ensure_model(config, force=args.force)
        return 0
    if args.command == "stop":
        return stop(config)
    if args.production:
        return up_production(args.command, args.replicas, force=args.force)
    seed_backend(config)
    ensure_model(config, force=args.force)
    print("[stack] starting backend, desk, action server, Rasa and the notifier...", flush=True)
    with running(config), Stack(config).up() as stack:
        print(banner(config), flush=True)
        return serve(args.command, config, stack.ready_seconds)


if __name__ == "__main__":
    sys.exit(main())
