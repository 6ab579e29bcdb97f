"""Fixtures shared across test folders: the live stack on free loopback ports."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from stack.config import ROOT, StackConfig
from stack.model import ensure_model
from stack.services import Stack

T = TypeVar("T")


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run async client code from a test, on its own thread: Playwright's sync API (browser
    tests in the same session) keeps an event loop running on the main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Backend (seeded), desk, action server and Rasa, started for this test session only."""
    var = tmp_path_factory.mktemp("stack")
    base = StackConfig.from_env()
    config = replace(
        base,
        backend_port=free_port(), actions_port=free_port(), rasa_port=free_port(),
        desk_port=free_port(), log_dir=var / "log",
        backend_db_url=f"sqlite:///{var / 'eligibility.db'}",
        desk_db_url=f"sqlite:///{var / 'desk.db'}", tracker_db=var / "tracker.db",
    )
    subprocess.run([sys.executable, "-m", "eligibility", "seed"], cwd=ROOT,
                   env=config.child_env(), check=True, stdout=subprocess.DEVNULL)
    ensure_model(config, quiet=True)
    stack = Stack(config, reuse=False)
    try:
        stack.start()
    except RuntimeError as exc:
        logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(Path(config.log_dir).glob("*.log")))
        stack.stop()
        pytest.fail(f"the stack did not start: {exc}\n{logs}")
    os.environ.setdefault("RELEND_E2E_STACK", "1")
    yield stack
    stack.stop()
