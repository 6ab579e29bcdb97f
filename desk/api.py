"""The desk's app: ``create_app`` builds what one desk holds (database, hub, Rasa client,
limits, the demo-borrower directory) into a ``DeskContext`` on ``app.state.desk`` and wires
the middleware, the error handlers, the routers (desk/routes/) and the static files.
Routes reach the context through desk/deps.py.

The database engine is made from ``settings.database_url`` unless the caller hands one in
(``create_app(settings, engine=...)``); an engine handed in stays the caller's to dispose."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from common.db import make_engine, make_session_factory

from . import service
from .config import DeskSettings
from .context import DeskContext
from .demo_borrowers import BackendDemoDirectory
from .guards import GuardMiddleware, LoginThrottle, RateLimiter
from .hub import Hub, instance_id
from .notices import Notices
from .rasa_client import RasaClient
from .records import BackendRecords
from .routes import agents, chat, demo, insights, internal, pages, records
from .service import DeskError, utc_now
from .turns import ConversationLocks, Turns

log = logging.getLogger("relend.desk")
RETENTION_EVERY_SECONDS = 3600


def create_app(settings: DeskSettings | None = None, *, engine: Engine | None = None
               ) -> FastAPI:
    settings = settings or DeskSettings.from_env()
    settings.check()
    engine = engine or make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    instance = instance_id()  # this process, for the other desks and the turn lease
    hub = Hub(settings.redis_url.strip(), settings.redis_channel, instance)
    rasa = RasaClient(settings.rasa_url, settings.rasa_jwt_secret, settings.channel_secret,
                      settings.rasa_timeout)
    app = FastAPI(title="Relend support desk", version="1.0.0", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.desk = DeskContext(
        settings=settings, sessions=sessions, hub=hub, rasa=rasa,
        turns=Turns(sessions, hub, rasa, ConversationLocks(
            sessions if several_desks(settings, engine) else None, instance)),
        demo=BackendDemoDirectory(settings.backend_url, settings.backend_token),
        records=BackendRecords(settings.backend_url, settings.backend_token),
        # per borrower, whatever the socket: a burst of 10 messages, then one every 3 s (default)
        borrower_rate=RateLimiter(settings.messages_per_minute, 10),
        # any frame (hello, message, junk), per borrower: generous, stops floods
        frame_rate=RateLimiter(max(120, settings.messages_per_minute * 6), 60),
        login_by_name=LoginThrottle(settings.login_failures_allowed,
                                    settings.login_lockout_seconds),
        login_by_address=LoginThrottle(settings.login_failures_allowed * 10,
                                       settings.login_lockout_seconds),
    )
    # a notice another desk held in quiet hours, for a borrower in the chat here
    Notices(sessions, hub, rasa, app.state.desk.turns.locks).listen()
    app.add_middleware(GuardMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_exception_handler(DeskError, desk_error)
    app.add_exception_handler(RecursionError, too_deep)
    for router in (pages.router, demo.router, chat.router, internal.router, agents.router,
                   insights.router, records.router):
        app.include_router(router)
    app.mount("/static", pages.StaticAssets(), name="static")
    return app


def several_desks(settings: DeskSettings, engine: Engine) -> bool:
    """Whether other desk processes may share this database: then a conversation's turns
    take a lease in the database (desk/turns.py). Not for the embedded default (SQLite, no
    Redis: one desk), where it would only cost two writes a turn."""
    return bool(settings.redis_url.strip()) or engine.dialect.name != "sqlite"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    context: DeskContext = app.state.desk
    await context.hub.start()  # with RELEND_DESK_REDIS_URL: the live fan-out to other desks
    retention = asyncio.get_running_loop().create_task(keep_retention(context))
    # turns a stopped desk left behind, and conversations that wait for agents only because
    # the assistant was down (desk/turns.py): at start, then every few seconds
    watch = asyncio.get_running_loop().create_task(
        context.turns.watch(context.settings.assistant_probe_seconds))
    try:
        yield
    finally:
        retention.cancel()
        watch.cancel()
        await context.hub.close()
        await context.rasa.close()


async def keep_retention(context: DeskContext) -> None:
    """Raw borrower text is kept RELEND_DESK_RAW_TEXT_DAYS, then only its masked form."""
    while True:
        try:
            with context.sessions() as session:
                service.mask_old_messages(session, context.settings.raw_text_days, utc_now())
        except Exception:  # a busy database must not stop the desk; next round retries
            log.exception("retention round failed")
        await asyncio.sleep(RETENTION_EVERY_SECONDS)


async def desk_error(_request: Request, exc: DeskError) -> JSONResponse:
    return JSONResponse({"error": {"code": exc.code, "message": exc.message}},
                        status_code=exc.status, headers=exc.headers)


async def too_deep(_request: Request, _exc: RecursionError) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": "bad_request", "message": "Body nested too deeply."}}, 400)
