"""``python -m qa run [scripts or folders...]``: run scripted conversations against the
live assistant (started here, or reused when already running). Exit 1 on any failure.

Expectations are written by people; there is deliberately no option to record them."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from stack.config import ROOT, StackConfig

from .script import ScriptError, load_script

DEFAULT_DIR = ROOT / "tests" / "conversations"


def collect(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths or [str(DEFAULT_DIR)]:
        path = Path(raw)
        found += sorted(path.rglob("*.yml")) if path.is_dir() else [path]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run scripts (default: tests/conversations/)")
    run.add_argument("paths", nargs="*")
    run.add_argument("--jobs", type=int, default=4, help="scripts run in parallel (default 4)")
    run.add_argument("--junit", type=Path, help="also write a JUnit XML report here")
    run.add_argument("--no-seed", action="store_true",
                     help="do not reload the demo borrowers before running")
    sub.add_parser("check", help="only validate the scripts' format").add_argument(
        "paths", nargs="*")
    args = parser.parse_args(argv)

    files = collect(args.paths)
    if not files:
        print("no scripts found", file=sys.stderr)
        return 2
    scripts, broken = [], []
    for file in files:
        if not file.exists():
            broken.append(f"{file}: no such file")
            continue
        try:
            scripts.append(load_script(file))
        except ScriptError as exc:
            broken.append(str(exc))
    for message in broken:
        print(f"ERROR {message}", file=sys.stderr)
    if broken:
        return 2
    if args.command == "check":
        print(f"{len(scripts)} script(s) OK")
        return 0

    from stack.model import ensure_model
    from stack.services import Stack

    from .runner import report, run_all, write_junit

    config = StackConfig.from_env()
    if not args.no_seed:
        subprocess.run([sys.executable, "-m", "eligibility", "seed"], cwd=ROOT,
                       env=config.child_env(), check=True, stdout=subprocess.DEVNULL)
    ensure_model(config)
    with Stack(config).up():
        results = run_all(scripts, config, args.jobs)
    print(report(results))
    if args.junit:
        write_junit(results, args.junit)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
