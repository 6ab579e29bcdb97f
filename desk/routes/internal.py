"""The action server's side (service token ``RELEND_DESK_TOKEN``): open a case when the bot
hands a conversation to a person, say who owns a conversation, and keep an open case's
decision current when the assistant checks the account again. The notifier's side (the same
token): proactive notices (desk/notices.py)."""

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, constr

from .. import handoffs, service
from ..deps import Context, DbSession, service_token
from ..models import Conversation
from ..notices import KINDS, Notices
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


class DecisionUpdate(BaseModel):
    """The assistant's latest check of the account: its decision, or none when it failed."""

    decision: dict | None = None
    backend_failed: bool = False


@router.post("/handoffs")
async def handoff(body: HandoffRequest, context: Context, session: DbSession) -> dict[str, Any]:
    existing = service.open_case_for(session, body.conversation_id)
    case = service.create_case(session, body.dict(), utc_now())
    case_id = case.id
    if existing is not None and existing.id == case_id and body.decision is not None:
        # asked again (no second case): the case keeps the decision the bot has now
        handoffs.update_decision(session, case, body.decision, body.backend_failed)
        await context.hub.to_agents(handoffs.context_frame(case_id))
    session.close()
    await context.hub.to_agents({"type": "queue"})
    await handoffs.publish(context.hub, context.sessions, body.conversation_id)
    return {"case_id": case_id}


@router.get("/conversations/{conversation_id}")
def conversation_owner(conversation_id: str, session: DbSession) -> dict[str, Any]:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise DeskError(404, "conversation_not_found", "No such conversation.")
    case = service.open_case_for(session, conversation_id)
    return {"conversation_id": conversation_id, "owner": conversation.owner,
            "case_id": case.id if case else None}


@router.post("/conversations/{conversation_id}/decision")
async def case_decision(conversation_id: str, body: DecisionUpdate, context: Context,
                        session: DbSession) -> dict[str, Any]:
    """The assistant checked the account again: an open case shows the new decision, live in
    the console. ``case_id`` null: the conversation has no open case (nothing to update)."""
    if session.get(Conversation, conversation_id) is None:
        raise DeskError(404, "conversation_not_found", "No such conversation.")
    case = service.open_case_for(session, conversation_id)
    if case is None:
        return {"case_id": None}
    case_id = case.id
    handoffs.update_decision(session, case, body.decision, body.backend_failed)
    session.close()
    # (the console reads the case, and the queue, which shows its primary reason, again)
    await context.hub.to_agents(handoffs.context_frame(case_id))
    return {"case_id": case_id}


class NoticeIn(BaseModel):
    """An outbox message (docs/backend.md, "Outbox") as the notifier hands it over, with what
    the notifier adds: the borrower's time zone, the decision it checked, and in quiet hours
    the moment the notice may go out (ISO 8601, UTC)."""

    key: constr(strict=True, min_length=1, max_length=200)  # type: ignore[valid-type]
    kind: constr(strict=True, min_length=1, max_length=40)  # type: ignore[valid-type]
    borrower_id: constr(strict=True, min_length=1, max_length=64)  # type: ignore[valid-type]
    data: dict[str, Any]
    id: int | None = None
    schema_: str | None = Field(None, alias="schema")
    occurred_at: str | None = None
    recorded_at: str | None = None
    timezone: constr(max_length=64) | None = None  # type: ignore[valid-type]
    decision: dict[str, Any] | None = None
    deliver_after: str | None = None


def _notices(context: Any) -> Notices:
    return Notices(context.sessions, context.hub, context.rasa, context.turns.locks)


def _refused(code: str, message: str) -> JSONResponse:
    """A notice the desk cannot turn into words: final (the notifier logs it and goes on;
    sending it again would not help)."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=422)


@router.post("/notices", response_model=None)
async def notice(body: NoticeIn, context: Context) -> dict[str, Any] | JSONResponse:
    """A change the borrower was waiting for: stored once per ``key`` and delivered as the
    bot's message now, held (no conversation yet, quiet hours), or shown to the agent who
    owns the conversation. The same key again answers ``duplicate`` and changes nothing."""
    if body.kind not in KINDS:
        return _refused("unknown_notice_kind", f"No notice for changes of kind {body.kind}.")
    try:
        return await _notices(context).receive(body.dict(exclude={"schema_"}))
    except (KeyError, TypeError, ValueError) as exc:
        return _refused("bad_notice", f"The change lacks what its notice says: {exc!r}.")


@router.post("/notices/release")
async def release_notices(context: Context) -> dict[str, Any]:
    """Deliver the held notices whose quiet hours are over (the notifier calls it each round)."""
    return {"delivered": await _notices(context).release()}


@router.get("/notices/cursor")
def notices_cursor(context: Context) -> dict[str, Any]:
    """The outbox id of the newest change the desk stored: where the notifier's feed goes on
    from after a restart (the keys make going over a change again harmless)."""
    return {"after_id": _notices(context).cursor()}
