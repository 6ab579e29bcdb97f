"""The HTTP API of the eligibility service (FastAPI): ``create_app`` wires it together.

Settings, engine and clock go on ``app.state`` (read by ``eligibility.deps``); the routes live
in ``eligibility.routes``, one module per area; the body guard stays a middleware
(``eligibility.middleware``: it must see bodies before FastAPI parses them).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from common.db import make_engine, make_session_factory
from common.settings import Mode

from .config import Settings
from .deps import Clock, refusal_without_route, utc_now
from .errors import ServiceError
from .middleware import BodyGuardMiddleware
from .routes import appeals, backoffice, decisions, health, loans, sandbox
from .routes.appeals import IDEMPOTENCY_KEY_PATTERN
from .sandbox import SandboxFaultsMiddleware

# IDEMPOTENCY_KEY_PATTERN is re-exported: tests/actions import it from here
__all__ = ["API_VERSION", "IDEMPOTENCY_KEY_PATTERN", "create_app"]

log = logging.getLogger("relend.eligibility")

API_VERSION = "1.0.0"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Many threads contending for the GIL serve fewer requests, not more: keep it small.
    anyio.to_thread.current_default_thread_limiter().total_tokens = app.state.settings.threads
    settings = app.state.settings
    worker = None
    if settings.outbox_worker_seconds > 0:  # the scheduler and the publisher, in a thread
        from .worker import start_thread

        worker = start_thread(app.state.sessions, settings, app.state.clock,
                              settings.outbox_worker_seconds)
    yield
    if worker is not None:
        thread, stop = worker
        stop.set()
        thread.join(timeout=10)
    app.state.engine.dispose()


def create_app(settings: Settings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    """The app on ``settings`` (default: from the environment). Settings production must not
    run with raise ``InsecureSettings`` here, whoever built them."""
    settings = settings or Settings.from_env()
    settings.check()
    engine = make_engine(settings.database_url)

    app = FastAPI(
        title="Relend eligibility service",
        version=API_VERSION,
        description=(
            "Decides, for one borrower, whether they can borrow now and exactly why not; "
            "takes and tracks appeals. Every /v1 request needs `Authorization: Bearer <token>`; "
            "the back-office endpoints need the back-office token."
        ),
        openapi_url="/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        # no 307 to the path without its trailing slash: it would tell a caller without a
        # token that the path exists (an unknown path is 401, then 404, see below)
        redirect_slashes=False,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = make_session_factory(engine)
    app.state.clock = clock
    app.add_middleware(BodyGuardMiddleware, max_body_bytes=settings.max_body_bytes)
    _add_exception_handlers(app)

    app.include_router(health.router)
    app.include_router(decisions.router)
    app.include_router(appeals.router)
    app.include_router(loans.router)
    app.include_router(backoffice.router)
    if settings.sandbox_fixtures:  # never in production: Settings.check refuses it there
        app.include_router(sandbox.router)
        # the fault switch of the topology tests (eligibility/sandbox.py), sandbox mode only
        app.add_middleware(SandboxFaultsMiddleware, backoffice_token=settings.backoffice_token,
                           sandbox=settings.mode is Mode.SANDBOX)
    return app


def _add_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
             "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        return ServiceError(422, "validation_error",
                            "Some fields are missing or have the wrong type.",
                            {"fields": fields}).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # only routing raises these (404, 405): no route's dependencies ran, so ask first
        refusal = await refusal_without_route(request)
        if refusal is not None:
            return refusal.response()
        codes = {404: "not_found", 405: "method_not_allowed"}
        return ServiceError(exc.status_code, codes.get(exc.status_code, "http_error"),
                            str(exc.detail)).response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return ServiceError(500, "internal_error",
                            "The service failed; nothing was changed.").response()
