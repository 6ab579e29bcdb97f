"""The HTTP API of the eligibility service (FastAPI); ``create_app`` builds it."""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.db import make_engine, make_session_factory

from . import schemas, service
from .config import Settings
from .errors import ServiceError
from .sandbox import SandboxBorrower, put_borrower

log = logging.getLogger("relend.eligibility")

API_VERSION = "1.0.0"
OPEN_PATHS = {"/health", "/v1/openapi.json"}
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{8,200}\Z")
# No request body of this API nests deeper than 3 levels (a sandbox fixture: object, list,
# object). Deeper bodies are refused before they are parsed, so no nesting can make the JSON
# parser (or anything after it) recurse into a RecursionError.
MAX_JSON_DEPTH = 32
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _json_error(status: int, code: str, message: str, details: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ServiceError(status, code, message, details).body(), status_code=status,
                        headers=headers)


class GuardMiddleware:
    """Runs before routing: bearer-token auth, body size limit, UTF-8 JSON bodies.

    Doing this first means a caller without a valid token learns nothing, not even
    whether its request would have validated.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if path not in OPEN_PATHS:
            expected = (self.settings.backoffice_token if path.startswith("/v1/backoffice/")
                        else self.settings.service_token)
            if not _token_ok(headers.get("authorization", ""), expected):
                await _json_error(
                    401, "unauthorized", "A valid bearer token is required.",
                    headers={"WWW-Authenticate": "Bearer"},
                )(scope, receive, send)
                return
        if scope["method"] in ("POST", "PUT", "PATCH"):
            await self._guard_body(scope, receive, send, headers)
            return
        await self.app(scope, receive, send)

    async def _guard_body(self, scope: Scope, receive: Receive, send: Send,
                          headers: dict[str, str]) -> None:
        limit = self.settings.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and not declared.isdigit():
            await _json_error(400, "invalid_content_length",
                              "Content-Length must be a whole number of bytes.")(
                scope, receive, send)
            return
        if declared is not None and int(declared) > limit:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if not headers.get("content-type", "").lower().startswith("application/json"):
            await _json_error(415, "unsupported_media_type",
                              "Send the body as application/json (UTF-8).")(scope, receive, send)
            return
        if json_depth_exceeds(body, MAX_JSON_DEPTH):
            await _json_error(400, "json_too_deep",
                              f"The body nests arrays or objects more than {MAX_JSON_DEPTH} "
                              f"levels deep.", {"max_depth": MAX_JSON_DEPTH})(
                scope, receive, send)
            return
        try:
            parsed = json.loads(body.decode("utf-8"))
            # "\ud800"-style escapes decode to lone surrogates, which no UTF-8 store accepts
            json.dumps(parsed, ensure_ascii=False).encode("utf-8")
        except UnicodeError:
            await _json_error(400, "invalid_encoding", "The body is not valid UTF-8.")(
                scope, receive, send)
            return
        except (ValueError, RecursionError) as exc:
            await _json_error(400, "invalid_json", "The body is not valid JSON.",
                              {"problem": str(exc)[:200]})(scope, receive, send)
            return

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.settings.max_body_bytes
        await _json_error(413, "body_too_large", f"Request bodies are limited to {limit} bytes.",
                          {"limit_bytes": limit})(scope, receive, send)


_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether the arrays and objects in ``body`` nest deeper than ``limit``: one pass over the
    bytes, brackets inside strings ignored, no parsing (so it works on any nesting, valid JSON
    or not; what is not valid JSON is refused by the parser afterwards)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # cannot be deeper than the number of openers: the common case, in C
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSERS:
            depth -= 1
    return False


def _token_ok(authorization: str, expected: str) -> bool:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    return hmac.compare_digest(token.strip().encode("utf-8"), expected.encode("utf-8"))


def create_app(settings: Settings | None = None, *, clock: Clock = utc_now) -> FastAPI:
    """The app on ``settings`` (default: from the environment). Settings production must not
    run with raise ``InsecureSettings`` here, whoever built them."""
    settings = settings or Settings.from_env()
    settings.check()
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)

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
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.clock = clock
    app.add_middleware(GuardMiddleware, settings=settings)

    @app.on_event("startup")
    async def _limit_threads() -> None:
        # Many threads contending for the GIL serve fewer requests, not more: keep it small.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads

    @contextmanager
    def session_scope() -> Iterator[Session]:
        session = sessions()
        try:
            yield session
        except Exception:
            session.rollback()
            raise
        finally:
            session.close()

    def now() -> datetime:
        return app.state.clock()

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
             "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        return _json_error(422, "validation_error",
                           "Some fields are missing or have the wrong type.", {"fields": fields})

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return _json_error(exc.status_code, codes.get(exc.status_code, "http_error"),
                           str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _json_error(500, "internal_error", "The service failed; nothing was changed.")

    @app.get("/health", response_model=schemas.Health, tags=["operations"],
             responses=schemas.error_responses(503))
    def health() -> Any:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return _json_error(503, "database_unavailable", "The database is not reachable.")
        return {"status": "ok", "database": "ok"}

    @app.get("/v1/borrowers/{borrower_id}", response_model=schemas.BorrowerProfile,
             tags=["borrowers"], responses=schemas.error_responses(400, 401, 404))
    def borrower_profile(borrower_id: str) -> Any:
        with session_scope() as session:
            borrower = service.find_borrower(session, borrower_id)
            return {"borrower_id": borrower.id, "display_name": borrower.display_name,
                    "locale": borrower.locale, "timezone": borrower.timezone}

    @app.get("/v1/borrowers/{borrower_id}/eligibility", response_model=schemas.EligibilityDecision,
             tags=["eligibility"], responses=schemas.error_responses(400, 401, 404))
    def eligibility(borrower_id: str) -> Any:
        with session_scope() as session:
            # returned as a response directly: the dict is already in the documented shape,
            # and re-validating it through the response model would double the CPU per request
            return JSONResponse(service.compute_decision(
                session, borrower_id, now=now(), min_drawdown=settings.min_drawdown,
                currency=settings.currency,
            ))

    @app.post("/v1/appeals", response_model=schemas.Appeal, status_code=201, tags=["appeals"],
              responses={200: {"model": schemas.Appeal,
                               "description": "Replay of an earlier request with the same key"},
                         **schemas.error_responses(400, 401, 404, 409, 413, 415, 422)})
    def file_appeal(
        request_body: schemas.AppealRequest,
        idempotency_key: str = Header(..., alias="Idempotency-Key",
                                      description="8-200 visible ASCII characters"),
    ) -> Any:
        if not IDEMPOTENCY_KEY_PATTERN.match(idempotency_key):
            raise ServiceError(400, "invalid_idempotency_key",
                               "Idempotency-Key must be 8-200 visible ASCII characters.")
        with session_scope() as session:
            appeal, created = service.file_appeal(
                session,
                borrower_id=request_body.borrower_id,
                decision_id=request_body.decision_id,
                reason_code=request_body.reason_code,
                statement=request_body.statement,
                channel=request_body.channel,
                idempotency_key=idempotency_key,
                now=now(),
                response_hours=settings.appeal_response_hours,
            )
            return JSONResponse(service.appeal_to_dict(appeal), status_code=201 if created else 200)

    @app.get("/v1/borrowers/{borrower_id}/appeals", response_model=schemas.AppealList,
             tags=["appeals"], responses=schemas.error_responses(400, 401, 404))
    def list_appeals(borrower_id: str) -> Any:
        with session_scope() as session:
            appeals = service.list_appeals(session, borrower_id)
            return {"borrower_id": borrower_id,
                    "appeals": [service.appeal_to_dict(a) for a in appeals]}

    @app.get("/v1/borrowers/{borrower_id}/appeals/{appeal_id}", response_model=schemas.Appeal,
             tags=["appeals"], responses=schemas.error_responses(400, 401, 404))
    def get_appeal(borrower_id: str, appeal_id: str) -> Any:
        """One of this borrower's appeals. Another borrower's appeal is `404 appeal_not_found`,
        exactly as an appeal that does not exist."""
        with session_scope() as session:
            return service.appeal_to_dict(
                service.get_borrower_appeal(session, borrower_id, appeal_id))

    @app.post("/v1/backoffice/appeals/{appeal_id}/transitions", response_model=schemas.Appeal,
              tags=["back office"],
              responses=schemas.error_responses(400, 401, 404, 409, 413, 415, 422))
    def move_appeal(appeal_id: str, transition: schemas.AppealTransition) -> Any:
        with session_scope() as session:
            appeal = service.move_appeal(
                session, appeal_id, status=transition.status, note=transition.note,
                restored_limit=transition.restored_limit, now=now(),
            )
            return service.appeal_to_dict(appeal)

    if settings.sandbox_fixtures:  # never in production: Settings.check refuses it there
        @app.put("/v1/backoffice/sandbox/borrowers/{borrower_id}", status_code=204,
                 tags=["sandbox"], responses=schemas.error_responses(400, 401, 413, 415, 422))
        def put_sandbox_borrower(borrower_id: str, fixture: SandboxBorrower) -> Response:
            """Sandbox only (`RELEND_ENV=sandbox`; absent in production): replace a `qa-`
            borrower with exactly these records."""
            service.check_borrower_id(borrower_id)
            with session_scope() as session:
                put_borrower(session, borrower_id, fixture, now())
            return Response(status_code=204)

    _add_security_scheme(app)
    return app


def _add_security_scheme(app: FastAPI) -> None:
    """Declare bearer auth in the spec (enforced by GuardMiddleware, not per route)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = original()
        spec.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"}
        }
        for path, operations in spec["paths"].items():
            for operation in operations.values():
                operation["security"] = [] if path in OPEN_PATHS else [{"bearer": []}]
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]

