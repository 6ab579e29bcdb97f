"""Sandbox-only routes, included only while ``settings.sandbox_fixtures`` is on (by default in
the sandbox, never in production): elsewhere they answer 404 like any unknown path."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from .. import schemas, service
from ..deps import ACCEPTED_BODY, BACKOFFICE, SERVICE, NowDep, SessionDep
from ..sandbox import SandboxBorrower, put_borrower
from ..seed import DEMO_BORROWERS, DEMO_NAMES

router = APIRouter(tags=["sandbox"])

# the seed's borrowers, as the desk's picker shows them (they never change while serving)
DEMO_LISTING = {"borrowers": [
    {"borrower_id": demo.id, "name": DEMO_NAMES[demo.id], "situation": demo.situation,
     "locale": demo.locale}
    for demo in DEMO_BORROWERS
]}


@router.get("/v1/sandbox/demo-borrowers", response_model=schemas.DemoBorrowerList,
            dependencies=[SERVICE], responses=schemas.error_responses(401))
async def demo_borrowers() -> Any:
    """Sandbox only: the demo borrowers `python -m eligibility seed` loads, in the seed's
    order, with the name and situation a demo picker shows."""
    return DEMO_LISTING


@router.put("/v1/backoffice/sandbox/borrowers/{borrower_id}", status_code=204,
            dependencies=[BACKOFFICE, ACCEPTED_BODY],
            responses=schemas.error_responses(400, 401, 413, 415, 422))
def put_sandbox_borrower(borrower_id: str, fixture: SandboxBorrower, session: SessionDep,
                         now: NowDep) -> Response:
    """Sandbox only (`RELEND_ENV=sandbox`; absent in production): replace a `qa-`
    borrower with exactly these records."""
    service.check_borrower_id(borrower_id)
    put_borrower(session, borrower_id, fixture, now)
    return Response(status_code=204)
