"""Command line: ``python -m eligibility {migrate,seed,serve,openapi}``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import Settings

SPEC_PATH = Path(__file__).resolve().parent / "openapi.json"


def _spec() -> str:
    from .api import create_app

    settings = Settings.from_env()
    spec = create_app(settings).openapi()
    return json.dumps(spec, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eligibility",
                                     description="Relend eligibility service (sandbox).")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("seed", help="migrate, then (re)load the demo borrowers")
    sub.add_parser("serve", help="serve the HTTP API")
    spec = sub.add_parser("openapi", help="write or check the checked-in OpenAPI spec")
    spec.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args(argv)
    settings = Settings.from_env()

    if args.command in ("migrate", "seed"):
        from .migrate import upgrade

        upgrade(settings.database_url)
        if args.command == "seed":
            from common.db import make_engine, make_session_factory

            from .api import utc_now
            from .seed import seed

            engine = make_engine(settings.database_url)
            with make_session_factory(engine)() as session:
                ids = seed(session, utc_now())
            engine.dispose()
            print(f"seeded {len(ids)} demo borrowers: {', '.join(ids)}")
        return 0
    if args.command == "serve":
        import uvicorn

        uvicorn.run("eligibility.asgi:app", host=settings.host, port=settings.port,
                    workers=settings.workers, log_level="warning", access_log=False)
        return 0
    text = _spec()
    if args.check:
        if not SPEC_PATH.exists() or SPEC_PATH.read_text(encoding="utf-8") != text:
            print(f"{SPEC_PATH} is out of date: run `python -m eligibility openapi`",
                  file=sys.stderr)
            return 1
        print(f"{SPEC_PATH.name} is up to date")
        return 0
    SPEC_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {SPEC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
