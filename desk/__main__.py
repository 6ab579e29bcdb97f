"""Command line: ``python -m desk {migrate,serve}``."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from common.settings import InsecureSettings

from .config import DeskSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m desk", description="Relend support desk.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply migrations and create the sandbox's demo agents")
    sub.add_parser("serve", help="migrate, then serve the desk on RELEND_DESK_HOST:PORT")
    args = parser.parse_args(argv)
    try:
        settings = DeskSettings.from_env()
    except (InsecureSettings, ValidationError) as exc:
        print(exc, file=sys.stderr)
        return 2

    from common.db import make_engine, make_session_factory

    from .migrate import upgrade
    from .service import ensure_demo_data

    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        ensure_demo_data(session, settings.demo_agent_password,
                         demo_agents=bool(settings.demo_agents))
    engine.dispose()
    if args.command == "serve":
        import uvicorn

        uvicorn.run("desk.asgi:app", host=settings.host, port=settings.port,
                    log_level="warning", access_log=False, ws="websockets",
                    ws_max_size=settings.ws_max_bytes, server_header=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
