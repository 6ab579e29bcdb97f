"""The borrower's records for the console's context panel (desk/records.py): the loans with
their schedules, the repayments and the reminder setting the assistant answers from.

By case, not by borrower id: an agent sees the records of the borrower of a case they can
read (``readable_case``: a waiting case, their own, or any case for a supervisor), and no
other borrower's."""

from typing import Any

from fastapi import APIRouter

from ..deps import Context, CurrentAgent, DbSession
from ..masking import mask
from ..records import RecordsUnavailable
from ..service import DeskError
from .agents import readable_case

router = APIRouter(prefix="/api/agent")


@router.get("/cases/{case_id}/records")
async def case_records(case_id: int, agent: CurrentAgent, context: Context,
                       session: DbSession) -> dict[str, Any]:
    """``known`` False: the backend has no records of this borrower. ``503
    records_unavailable`` when it cannot say (the console says so in the panel)."""
    borrower_id = readable_case(session, case_id, agent).borrower_id
    session.close()  # nothing held while the backend answers
    try:
        records = await context.records.fetch(borrower_id)
    except RecordsUnavailable as exc:
        raise DeskError(503, "records_unavailable",
                        "The borrower's records cannot be read right now.") from exc
    if records is None:
        return {"case_id": case_id, "borrower_id": borrower_id, "known": False}
    # as everything agents see (desk/masking.py); the records hold no such numbers today
    return {"case_id": case_id, "borrower_id": borrower_id, "known": True, **mask(records)}
