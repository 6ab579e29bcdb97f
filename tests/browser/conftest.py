"""Browser tests: the live stack (backend, desk, action server, Rasa) on free loopback ports,
and headless Chromium driven by Playwright.

Chromium is Debian's (/usr/bin/chromium), never a Playwright download. Screenshots go to
reports/browser/.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.config import ROOT, StackConfig
from stack.model import ensure_model, fingerprint
from tests.browser.helpers import CSP_LISTENER, csp_violations
from tests.conftest import free_port

SHOTS = ROOT / "reports" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
MODEL_WAIT_SECONDS = 1800
TEST_TIMEOUT_SECONDS = 2400  # the first run may train the Rasa model
HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives the desk's pages in headless Chromium against the live stack")


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is a browser test against the live stack."""
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_SECONDS))


def _trainer(models_dir: Path) -> int | None:
    """The pid of another process (a developer, another test run) training into the same
    folder, or None."""
    target = str(models_dir.resolve())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if any(a.endswith("rasa") for a in args) and "train" in args and "--out" in args:
            out = args[args.index("--out") + 1] if args.index("--out") + 1 < len(args) else ""
            cwd = ""
            with contextlib.suppress(OSError):
                cwd = os.readlink(proc / "cwd")
            if str((Path(cwd) / out).resolve()) == target:
                return int(proc.name)
    return None


def _wait_for_exit(pid: int, timeout: float) -> None:
    """Return when process ``pid`` has ended (or ``timeout`` seconds have passed)."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # already gone
    try:
        select.select([handle], [], [], max(0.0, timeout))  # readable once the process ends
    finally:
        os.close(handle)


def _model_ready(config: StackConfig) -> None:
    """Train if needed, but never race another process that is training right now."""
    stamp = config.model_path.with_suffix(".fingerprint")
    deadline = time.monotonic() + MODEL_WAIT_SECONDS
    while (trainer := _trainer(config.model_path.parent)) is not None:
        if time.monotonic() > deadline:
            raise RuntimeError("another process has been training the Rasa model for too long")
        _wait_for_exit(trainer, deadline - time.monotonic())
    if config.model_path.exists() and stamp.exists() and stamp.read_text().strip() == fingerprint():
        return
    ensure_model(config)


@pytest.fixture(scope="session")
def stack_config(tmp_path_factory: pytest.TempPathFactory) -> StackConfig:
    var = tmp_path_factory.mktemp("relend-var")
    backend, actions, rasa, desk = (free_port() for _ in range(4))
    base = StackConfig.from_env()
    return dataclasses.replace(
        base, backend_port=backend, actions_port=actions, rasa_port=rasa, desk_port=desk,
        log_dir=var / "log", backend_db_url=f"sqlite:///{var}/eligibility.db",
        desk_db_url=f"sqlite:///{var}/desk.db", tracker_db=var / "rasa_tracker.db")


@pytest.fixture(scope="session")
def live_stack(stack_config: StackConfig) -> Iterator[StackConfig]:
    from stack.services import Stack

    seeded = subprocess.run([sys.executable, "-m", "eligibility", "seed"], cwd=ROOT,
                            env=stack_config.child_env(), capture_output=True, text=True)
    if seeded.returncode != 0:
        raise RuntimeError(f"seeding the backend failed:\n{seeded.stdout}\n{seeded.stderr}")
    _model_ready(stack_config)
    stack = Stack(stack_config, reuse=False)
    try:
        with stack.up():
            yield stack_config
    except RuntimeError as exc:  # say which log to read, with its tail
        tails = []
        for service in stack.all.values():
            if service.log.exists():
                tails.append(f"--- {service.log} ---\n" + service.log.read_text(
                    errors="replace")[-3000:])
        raise RuntimeError(f"{exc}\n" + "\n".join(tails)) from exc


@pytest.fixture(scope="session")
def desk_url(live_stack: StackConfig) -> str:
    return live_stack.url("desk")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    executable = shutil.which("chromium")
    if not executable:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.call_failed = report.failed  # type: ignore[attr-defined]


@pytest.fixture()
def new_page(browser, request):  # type: ignore[no-untyped-def]
    """new_page(kind) -> a page in its own context: "phone" (390x844) or "desktop".

    Uncaught JavaScript errors and anything the desk's Content-Security-Policy blocked fail the
    test at the end. When the test fails, every page it opened is saved as
    reports/browser/FAILED-*.png.
    """
    contexts = []

    def make(kind: str = "phone"):  # type: ignore[no-untyped-def]
        size = {"width": 390, "height": 844} if kind == "phone" else {"width": 1440, "height": 900}
        context = browser.new_context(viewport=size, locale="zh-CN",
                                      timezone_id="Asia/Shanghai")
        context.set_default_timeout(20_000)
        context.add_init_script(CSP_LISTENER)
        contexts.append(context)
        page = context.new_page()
        page.errors = []  # uncaught exceptions on the page fail the test at the end
        page.csp_console = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on("console", lambda msg: page.csp_console.append(msg.text)
                if msg.type == "error" and "Content Security Policy" in msg.text else None)
        return page

    yield make
    if getattr(request.node, "call_failed", False):
        SHOTS.mkdir(parents=True, exist_ok=True)
        pages = [p for c in contexts for p in c.pages]
        for n, page in enumerate(pages, 1):
            with contextlib.suppress(Exception):
                page.screenshot(path=str(SHOTS / f"FAILED-{request.node.name}-{n}.png"),
                                full_page=True)
    errors = [e for c in contexts for p in c.pages for e in getattr(p, "errors", [])]
    blocked = [v for c in contexts for p in c.pages for v in csp_violations(p)]
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not blocked, f"the Content-Security-Policy blocked something: {blocked}"


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
