"""The action server's side (service token ``RELEND_DESK_TOKEN``): open a case when the bot
hands a conversation to a person, and say who owns a conversation."""

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, constr

from .. import service
from ..deps import Context, DbSession, service_token
from ..models import Conversation
from ..service import DeskError, utc_now

router = APIRouter(prefix="/internal", dependencies=[Depends(service_token)])


class HandoffRequest(BaseModel):
    conversation_id: constr(strict=True, min_length=1, max_length=40)  # type: ignore[valid-type]
    borrower_id: str | None = None
    language: str | None = None
    reason: str | None = None
    topics: list[str] = Field(default_factory=list)
    decision: dict | None = None
    appeal_ids: list[str] = Field(default_factory=list)
    unfiled_appeal_statement: str | None = None
    backend_failed: bool = False
    transcript: list[dict] = Field(default_factory=list)


@router.post("/handoffs")
async def handoff(body: HandoffRequest, context: Context, session: DbSession) -> dict[str, Any]:
    case = service.create_case(session, body.dict(), utc_now())
    await context.hub.to_agents({"type": "queue"})
    return {"case_id": case.id}


@router.get("/conversations/{conversation_id}")
def conversation_owner(conversation_id: str, session: DbSession) -> dict[str, Any]:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise DeskError(404, "conversation_not_found", "No such conversation.")
    case = service.open_case_for(session, conversation_id)
    return {"conversation_id": conversation_id, "owner": conversation.owner,
            "case_id": case.id if case else None}
