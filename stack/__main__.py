"""``python -m stack {up,train,chat}``: the local assistant, the way the run command starts it.

up     seed the sandbox backend, train if needed, start every server, then wait (Ctrl-C stops)
train  train the Rasa model if its inputs changed (--force to retrain)
chat   all of `up`, then a terminal chat as a demo borrower through the desk (like the app)
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

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
        f"  logs               {config.log_dir}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "train", "chat"])
    parser.add_argument("--force", action="store_true", help="retrain even if nothing changed")
    args = parser.parse_args(argv)
    # a plain `kill` must still stop the servers this started, not orphan them
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    config = StackConfig.from_env()
    if args.command == "train":
        ensure_model(config, force=args.force)
        return 0
    seed_backend(config)
    ensure_model(config, force=args.force)
    print("[stack] starting backend, desk, action server and Rasa...", flush=True)
    with Stack(config).up():
        print(banner(config), flush=True)
        if args.command == "chat":
            from .chat import run_chat

            return run_chat(config)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
