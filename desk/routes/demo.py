"""Sandbox only: the demo borrowers for the chat page's picker, and a login that stands in for
the app (which signs borrower tokens with RELEND_APP_SECRET) for those borrowers only."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, constr

from .. import auth
from ..auth import sign
from ..demo_borrowers import DemoBorrower, DemoUnavailable
from ..deps import Context
from ..service import DeskError

router = APIRouter(prefix="/api/demo")


class DemoLogin(BaseModel):
    borrower_id: constr(strict=True, regex=auth.BORROWER_ID.pattern)  # type: ignore[valid-type]
    locale: constr(strict=True, regex=auth.LOCALE.pattern) = "zh-CN"  # type: ignore[valid-type]


async def demo_borrowers_of(context: Context) -> list[DemoBorrower]:
    """The list from the backend; 404 while the demo login is off, 503 if it cannot be had."""
    if not context.settings.demo_login:
        raise DeskError(404, "not_found", "Demo login is disabled.")
    try:
        return await context.demo.borrowers()
    except DemoUnavailable as exc:
        raise DeskError(503, "demo_unavailable", "The demo borrowers could not be loaded from "
                        "the eligibility backend. Try again in a moment.") from exc


@router.get("/borrowers")
async def demo_borrowers(context: Context) -> dict[str, Any]:
    return {"borrowers": [b.dict() for b in await demo_borrowers_of(context)]}


@router.post("/login")
async def demo_login(body: DemoLogin, context: Context) -> dict[str, str]:
    """Never for an id someone makes up: only for the backend's demo borrowers."""
    if body.borrower_id not in {b.borrower_id for b in await demo_borrowers_of(context)}:
        raise DeskError(403, "not_a_demo_borrower",
                        "Demo login is only for the sandbox's demo borrowers.")
    settings = context.settings
    token = sign({"borrower_id": body.borrower_id, "locale": body.locale},
                 settings.app_secret, auth.BORROWER, settings.borrower_token_ttl_seconds)
    return {"token": token}
