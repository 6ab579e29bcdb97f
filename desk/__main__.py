"""Command line: ``python -m desk {migrate,serve}``."""

from __future__ import annotations

import argparse
import sys

from .config import DeskSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m desk", description="Relend support desk.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply migrations and create the sandbox's demo agents")
    sub.add_parser("serve", help="migrate, then serve the desk on RELEND_DESK_HOST:PORT")
    args = parser.parse_args(argv)
    settings = DeskSettings.from_env()

    from common.db import make_engine, make_session_factory

    from .migrate import upgrade
    from .service import ensure_demo_data

    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        ensure_demo_data(session, settings.demo_agent_password)
    engine.dispose()
    if args.command == "serve":
        import uvicorn

        uvicorn.run("desk.asgi:app", host=settings.host, port=settings.port,
                    log_level="warning", access_log=False, ws="websockets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
