"""Readiness: open to anyone, no token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text

from .. import schemas
from ..errors import ServiceError

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=schemas.Health, responses=schemas.error_responses(503))
def health(request: Request) -> Any:
    try:
        with request.app.state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return ServiceError(503, "database_unavailable",
                            "The database is not reachable.").response()
    return {"status": "ok", "database": "ok"}
