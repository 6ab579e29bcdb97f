"""Filing and reading a borrower's appeals (service token)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse

from .. import schemas, service
from ..deps import ACCEPTED_BODY, SERVICE, NowDep, SessionDep, SettingsDep
from ..errors import ServiceError

IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{8,200}\Z")

router = APIRouter(dependencies=[SERVICE], tags=["appeals"])


@router.post("/v1/appeals", response_model=schemas.Appeal, status_code=201,
             dependencies=[ACCEPTED_BODY],
             responses={200: {"model": schemas.Appeal,
                              "description": "Replay of an earlier request with the same key"},
                        **schemas.error_responses(400, 401, 404, 409, 413, 415, 422)})
def file_appeal(
    request_body: schemas.AppealRequest,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    idempotency_key: str = Header(..., alias="Idempotency-Key",
                                  description="8-200 visible ASCII characters"),
) -> Any:
    # checked here, not in a dependency: a body that fails validation is reported first (422)
    if not IDEMPOTENCY_KEY_PATTERN.match(idempotency_key):
        raise ServiceError(400, "invalid_idempotency_key",
                           "Idempotency-Key must be 8-200 visible ASCII characters.")
    appeal, created = service.file_appeal(
        session,
        borrower_id=request_body.borrower_id,
        decision_id=request_body.decision_id,
        reason_code=request_body.reason_code,
        statement=request_body.statement,
        channel=request_body.channel,
        idempotency_key=idempotency_key,
        now=now,
        response_hours=settings.appeal_response_hours,
    )
    return JSONResponse(service.appeal_to_dict(appeal), status_code=201 if created else 200)


@router.get("/v1/borrowers/{borrower_id}/appeals", response_model=schemas.AppealList,
            responses=schemas.error_responses(400, 401, 404))
def list_appeals(borrower_id: str, session: SessionDep) -> Any:
    appeals = service.list_appeals(session, borrower_id)
    return {"borrower_id": borrower_id, "appeals": [service.appeal_to_dict(a) for a in appeals]}


@router.get("/v1/borrowers/{borrower_id}/appeals/{appeal_id}", response_model=schemas.Appeal,
            responses=schemas.error_responses(400, 401, 404))
def get_appeal(borrower_id: str, appeal_id: str, session: SessionDep) -> Any:
    """One of this borrower's appeals. Another borrower's appeal is `404 appeal_not_found`,
    exactly as an appeal that does not exist."""
    return service.appeal_to_dict(service.get_borrower_appeal(session, borrower_id, appeal_id))
