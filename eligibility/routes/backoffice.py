"""The lender's back office: moving appeals along their lifecycle (back-office token)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from .. import schemas, service
from ..deps import ACCEPTED_BODY, BACKOFFICE, NowDep, SessionDep

router = APIRouter(dependencies=[BACKOFFICE], tags=["back office"])


@router.post("/v1/backoffice/appeals/{appeal_id}/transitions", response_model=schemas.Appeal,
             dependencies=[ACCEPTED_BODY],
             responses=schemas.error_responses(400, 401, 404, 409, 413, 415, 422))
def move_appeal(appeal_id: str, transition: schemas.AppealTransition, session: SessionDep,
                now: NowDep) -> Any:
    appeal = service.move_appeal(
        session, appeal_id, status=transition.status, note=transition.note,
        restored_limit=transition.restored_limit, now=now,
    )
    return service.appeal_to_dict(appeal)
