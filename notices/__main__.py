"""``python -m notices [run|once]``: the notifier (notices/sources.py).

``run`` (the default) consumes RabbitMQ's queue when ``RELEND_NOTICES_AMQP_URL`` is set, else
reads the backend's outbox feed, for ever; ``once`` reads the feed until it is empty, then
exits (0; 1 when the desk or the backend failed).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import httpx
from pydantic import ValidationError

from common.settings import InsecureSettings

from .config import NoticeSettings
from .handler import DeskUnavailable, Handler
from .sources import run_broker, run_feed


async def main(command: str, settings: NoticeSettings) -> int:
    async with httpx.AsyncClient(timeout=settings.timeout) as client:
        handler = Handler(settings, client)
        if command == "once":
            try:
                count = await run_feed(settings, handler, client, once=True)
            except (DeskUnavailable, httpx.HTTPError, ValueError) as exc:
                print(f"notices: {exc}", file=sys.stderr)
                return 1
            print(f"notices: {count} change(s) handled")
            return 0
        if settings.amqp_url:
            await run_broker(settings, handler)
        else:
            await run_feed(settings, handler, client)
    return 0


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notices", description=__doc__)
    parser.add_argument("command", nargs="?", default="run", choices=("run", "once"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # not a line per request: the feed is read every few seconds (the changes are logged)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = NoticeSettings.from_env()
    except (InsecureSettings, ValidationError) as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        return asyncio.run(main(args.command, settings))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(cli())
