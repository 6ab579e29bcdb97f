"""What the routes depend on: settings, the clock, a database session, and who may call.

Routes declare these with ``Depends`` (or the ``...Dep`` aliases); ``create_app`` puts the
settings, the session factory and the clock on ``app.state``, where these read them. The token
checks use FastAPI's ``HTTPBearer``, so the OpenAPI document declares the bearer scheme on
exactly the operations that need a token.

Order, for every request: the token (``401`` with no data), then the body guard's refusal
(``eligibility.middleware``), then FastAPI's validation, then the route. A request that matches
no route meets no dependency: the 404/405 handler asks ``refusal_without_route`` first, so that
without a token nobody learns which paths exist.

Each dependency FastAPI resolves costs some CPU on every request (tens of microseconds here,
against about a millisecond for a whole decision), so the hot ones are kept few and async.
"""

# no ``from __future__ import annotations``: FastAPI reads the annotations of BearerToken's
# __call__ as objects (an instance has no module globals to resolve strings in)
import hmac
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPBearer
from sqlalchemy.orm import Session

from .config import Settings
from .errors import ServiceError
from .middleware import BODY_REFUSAL

Clock = Callable[[], datetime]
# answered without a token: readiness and the contract itself
OPEN_PATHS = frozenset({"/health", "/v1/openapi.json"})
BACKOFFICE_PREFIX = "/v1/backoffice/"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def now_of(request: Request) -> datetime:
    """Now, by the app's clock (``create_app(clock=...)``; tests set their own)."""
    return request.app.state.clock()


async def get_settings(request: Request) -> Settings:
    return settings_of(request)


async def get_now(request: Request) -> datetime:
    return now_of(request)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session for one request, closed after the route has run (what it did not commit is
    rolled back).

    Async, so that FastAPI opens and closes it on the event loop: a plain generator would cost
    two more trips to the thread pool per request (about 0.3 ms of CPU measured here, a third
    of a whole decision). Making a session touches no database, and neither does closing one
    whose transaction has ended (``compute_decision`` ends its own); closing one with a
    transaction still open rolls it back, which is database I/O, so that is done in a worker
    thread.
    """
    session: Session = request.app.state.sessions()
    try:
        yield session
    finally:
        if session.in_transaction():
            # a limiter of its own, as FastAPI does for its own closing: waiting for one of the
            # routes' threads while holding a pooled connection could deadlock with them
            await anyio.to_thread.run_sync(session.close, limiter=anyio.CapacityLimiter(1))
        else:
            session.close()


SettingsDep = Annotated[Settings, Depends(get_settings)]
NowDep = Annotated[datetime, Depends(get_now)]
SessionDep = Annotated[Session, Depends(get_session)]


def unauthorized() -> ServiceError:
    return ServiceError(401, "unauthorized", "A valid bearer token is required.",
                        headers={"WWW-Authenticate": "Bearer"})


class BearerToken(HTTPBearer):
    """FastAPI's ``HTTPBearer`` that also checks the token against one of the settings: a
    route's dependency on it is its whole authentication (``401`` otherwise), and it puts the
    bearer scheme into the OpenAPI document. One dependency, not a check depending on an
    ``HTTPBearer``: FastAPI resolves each dependency at some CPU cost on every request."""

    def __init__(self, setting: str) -> None:
        # one scheme, "bearer", in the OpenAPI document for both tokens: which token a route
        # takes is said by the instance it depends on
        super().__init__(scheme_name="bearer", auto_error=False)
        self.setting = setting

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        if not await self.accepts(request):
            raise unauthorized()

    async def accepts(self, request: Request) -> bool:
        credentials = await super().__call__(request)
        if credentials is None:  # no header, another scheme, or no token after "Bearer"
            return False
        expected: str = getattr(settings_of(request), self.setting)
        return hmac.compare_digest(credentials.credentials.strip().encode("utf-8"),
                                   expected.encode("utf-8"))


require_service_token = BearerToken("service_token")
require_backoffice_token = BearerToken("backoffice_token")


async def accepted_body(request: Request) -> None:
    """Raise the body guard's refusal of this request's body, if it refused it. Every route
    that takes a body depends on it, after its token check (``dependencies=[ACCEPTED_BODY]``:
    a route's own dependencies come after its router's)."""
    refusal = getattr(request.state, BODY_REFUSAL, None)
    if refusal is not None:
        raise refusal


SERVICE = Depends(require_service_token)
BACKOFFICE = Depends(require_backoffice_token)
ACCEPTED_BODY = Depends(accepted_body)


async def refusal_without_route(request: Request) -> ServiceError | None:
    """What a request that matched no route (404 or 405) is refused with before that answer,
    as if it had met a route's dependencies: ``401`` without the token its path calls for (the
    back-office token under /v1/backoffice/, else the service token), then the body guard's
    refusal. None: the 404 or 405 stands."""
    path: str = request.scope["path"]
    if path not in OPEN_PATHS:
        token = (require_backoffice_token if path.startswith(BACKOFFICE_PREFIX)
                 else require_service_token)
        if not await token.accepts(request):
            return unauthorized()
    return getattr(request.state, BODY_REFUSAL, None)
