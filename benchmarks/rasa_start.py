"""Rasa's start-to-ready time, and where it goes: imports, model loading, first answer.

Starts Rasa alone the way the stack does (``python -m stack.rasa_run run ...``, on a free
port, a scratch tracker database) ``--runs`` times and prints, for each start, when its log
says it starts the server (Rasa's imports are done), starts loading the model, is up, when
``/status`` first answers (the stack's readiness check), and when the first parse returns
(the tokenizer's dictionary loads on first use), plus the RSS once ready. ``--cold`` first
drops the page cache of the virtualenv's and the model's files (``posix_fadvise``), like a
start after a reboot or on a busy machine whose cache was evicted.

    .venv/bin/python benchmarks/rasa_start.py [--runs 3] [--cold]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.desk_load import process_tree, rss_mb  # noqa: E402
from stack.config import StackConfig  # noqa: E402
from stack.model import ensure_model  # noqa: E402
from stack.rasa_auth import rasa_headers  # noqa: E402
from stack.services import services  # noqa: E402

warnings.filterwarnings("ignore", message="The HMAC key")

MARKS = {"imports done": "Starting Rasa server on", "model loading": "Loading model",
         "server up": "Rasa server is up and running"}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def evict(paths: list[Path]) -> int:
    """Drop these files' pages from the page cache; returns how many files."""
    count = 0
    for base in paths:
        files = [base] if base.is_file() else (p for p in base.rglob("*") if p.is_file())
        for path in files:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                count += 1
            finally:
                os.close(fd)
    return count


def one_start(config: StackConfig, log: Path) -> dict[str, float]:
    service = services(config)["rasa"]
    log.write_text("")
    started = time.monotonic()
    with log.open("ab") as out:
        process = subprocess.Popen(service.command, cwd=ROOT, env=config.child_env(),
                                   stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    seen: dict[str, float] = {}
    try:
        while time.monotonic() - started < 300:
            if process.poll() is not None:
                raise RuntimeError(f"Rasa exited early: {log.read_text()[-2000:]}")
            text = log.read_text(errors="replace")
            for name, needle in MARKS.items():
                if name not in seen and needle in text:
                    seen[name] = time.monotonic() - started
            if service.healthy():
                seen["/status answers"] = time.monotonic() - started
                break
            time.sleep(0.05)
        requests.post(f"{config.url('rasa')}/model/parse", timeout=60,
                      headers=rasa_headers(config.rasa_jwt_secret),
                      json={"text": "还款后为什么借不了"})
        seen["first parse done"] = time.monotonic() - started
        seen["rss_mb"] = rss_mb(process_tree(process.pid))
    finally:
        os.killpg(process.pid, 15)
        process.wait(30)
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true",
                        help="evict the virtualenv's and the model's files from the page cache "
                             "before each start")
    args = parser.parse_args(argv)
    base = StackConfig.from_env()
    ensure_model(base, quiet=True)
    with tempfile.TemporaryDirectory() as scratch:
        config = replace(base, rasa_port=free_port(), tracker_db=Path(scratch) / "tracker.db")
        for run in range(1, args.runs + 1):
            if args.cold:
                evicted = evict([Path(sys.prefix) / "lib", config.model_path])
                print(f"run {run}: evicted {evicted} files from the page cache")
            seen = one_start(config, Path(scratch) / "rasa.log")
            rss = seen.pop("rss_mb")
            print(f"run {run}: " + "  ".join(f"{name} {seconds:5.1f} s"
                                              for name, seconds in seen.items())
                  + f"  RSS {rss:.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
