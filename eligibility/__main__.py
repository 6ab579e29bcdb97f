"""Command line: ``python -m eligibility {migrate,seed,serve,tick,publish,worker,openapi}``.

``migrate``, ``seed`` and ``serve`` read the settings first: in production (``RELEND_ENV`` unset
or ``production``) weak secrets are refused with a message naming each variable, on stderr, and
exit status 2, before anything is touched. ``seed`` loads the demo borrowers and is sandbox only.
``openapi`` needs no settings: the spec is the same whatever the environment says.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from common.settings import InsecureSettings, Mode

from .config import Settings, invalid_settings_message

SPEC_PATH = Path(__file__).resolve().parent / "openapi.json"
REFUSED = 2


def spec_settings() -> Settings:
    """The settings the checked-in spec is generated with: the sandbox, whatever the environment
    says (so the spec also documents the sandbox-only fixture route, tagged ``sandbox``)."""
    return Settings.construct(
        mode=Mode.SANDBOX, database_url="sqlite://", service_token="spec",
        backoffice_token="spec-backoffice", host="127.0.0.1", port=8081, workers=1, threads=1,
        max_body_bytes=16 * 1024, appeal_response_hours=72, min_drawdown=500, currency="CNY",
        sandbox_fixtures=True,
    )


def _spec() -> str:
    from .api import create_app

    app = create_app(spec_settings())
    try:
        spec = app.openapi()
    finally:
        app.state.engine.dispose()
    return json.dumps(spec, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def load_settings() -> Settings | None:
    """The settings from the environment, or None after saying on stderr why they are refused."""
    try:
        return Settings.from_env()
    except InsecureSettings as exc:
        print(exc, file=sys.stderr)
    except ValidationError as exc:
        print(invalid_settings_message(exc), file=sys.stderr)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eligibility",
                                     description="Relend eligibility service.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("seed", help="migrate, then (re)load the demo borrowers (sandbox only)")
    sub.add_parser("serve", help="serve the HTTP API")
    sub.add_parser("tick", help="record the changes and reminders that came due (once)")
    sub.add_parser("publish", help="deliver unpublished outbox rows to RabbitMQ (one pass; "
                                   "exit 1 when the broker failed)")
    worker = sub.add_parser("worker", help="tick and publish in a loop (the outbox worker)")
    worker.add_argument("--interval", type=float, default=5.0, help="seconds between passes")
    spec = sub.add_parser("openapi", help="write or check the checked-in OpenAPI spec")
    spec.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args(argv)

    if args.command == "openapi":
        return _openapi(check=args.check)
    settings = load_settings()
    if settings is None:
        return REFUSED
    if args.command == "seed" and settings.mode is not Mode.SANDBOX:
        print("python -m eligibility seed loads the demo borrowers: it runs only with "
              "RELEND_ENV=sandbox, never against a production database.", file=sys.stderr)
        return REFUSED

    if args.command in ("migrate", "seed"):
        from .migrate import upgrade

        upgrade(settings.database_url)
        if args.command == "seed":
            from common.db import make_engine, make_session_factory

            from .deps import utc_now
            from .seed import seed

            engine = make_engine(settings.database_url)
            with make_session_factory(engine)() as session:
                ids = seed(session, utc_now(), posting_minutes=settings.demo_posting_minutes)
            engine.dispose()
            print(f"seeded {len(ids)} demo borrowers: {', '.join(ids)}")
        return 0
    if args.command in ("tick", "publish", "worker"):
        return _outbox(args.command, settings, getattr(args, "interval", 5.0))
    import uvicorn

    # the worker(s) read the same environment again (eligibility.asgi), already checked here
    uvicorn.run("eligibility.asgi:app", host=settings.host, port=settings.port,
                workers=settings.workers, log_level="warning", access_log=False)
    return 0


def _outbox(command: str, settings: Settings, interval: float) -> int:
    """The scheduler and the publisher from the command line (docs/backend.md, "Outbox")."""
    import asyncio
    import threading

    from common.db import make_engine, make_session_factory

    from .deps import utc_now
    from .outbox import amqp_publisher
    from .scheduler import tick
    from .worker import run

    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    try:
        if command == "tick":
            result = tick(sessions, utc_now(), settings)
            print(f"recorded {sum(result.recorded.values())} changes {result.recorded or ''}")
            return 0
        if command == "publish":
            if not settings.outbox_amqp_url:
                print("RELEND_OUTBOX_AMQP_URL is not set: nothing to publish to (consumers "
                      "poll the outbox table: eligibility.outbox.poll)", file=sys.stderr)
                return REFUSED
            published = asyncio.run(amqp_publisher(sessions, settings).run_once(utc_now()))
            print(f"published {published.published}, pending {published.pending}"
                  + (f", error: {published.error}" if published.error else ""))
            return 1 if published.error else 0
        stop = threading.Event()
        try:
            asyncio.run(run(sessions, settings, utc_now, interval=interval, stop=stop))
        except KeyboardInterrupt:
            stop.set()
        return 0
    finally:
        engine.dispose()


def _openapi(*, check: bool) -> int:
    text = _spec()
    if check:
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
