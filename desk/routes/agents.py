"""The agent console's API and socket: sign-in, the queue, cases (claim, read, reply, note,
return to the bot, close), conversation lookup, the eligibility re-check, canned replies."""

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request, Response, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, constr
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.texts import text as catalog_text

from .. import auth, handoffs, service
from ..auth import check_password, sign
from ..config import DeskSettings
from ..deps import (
    AgentIdentity,
    BearerToken,
    Context,
    CurrentAgent,
    DbSession,
    Supervisor,
    agent_for_token,
)
from ..masking import mask_text
from ..models import Agent, CannedReply, Case, Conversation, Note
from ..rasa_client import AssistantUnavailable
from ..service import DeskError, utc_now
from ..sockets import accept, receive_frame, token_from_subprotocols

log = logging.getLogger("relend.desk")

Text2000 = constr(strict=True, strip_whitespace=True, min_length=1, max_length=2000)

router = APIRouter()


class AgentLogin(BaseModel):
    username: constr(strict=True, min_length=1, max_length=40)  # type: ignore[valid-type]
    password: constr(strict=True, min_length=1, max_length=200)  # type: ignore[valid-type]


class AgentText(BaseModel):
    text: Text2000  # type: ignore[valid-type]


class ReturnToBot(BaseModel):
    note: constr(strict=True, strip_whitespace=True, max_length=500) | None = None  # type: ignore[valid-type]


class Canned(BaseModel):
    title: constr(strict=True, strip_whitespace=True, min_length=1, max_length=80)  # type: ignore[valid-type]
    text_zh: Text2000  # type: ignore[valid-type]
    text_en: Text2000  # type: ignore[valid-type]


def readable_case(session: Session, case_id: int, agent: AgentIdentity) -> Case:
    """A waiting case is open to every agent (to decide whether to take it); after that,
    only to the agent who took it, and to supervisors."""
    case = session.get(Case, case_id)
    if case is None:
        raise DeskError(404, "case_not_found", "No such case.")
    if case.status != "waiting" and case.claimed_by != agent.id and not agent.supervisor:
        raise DeskError(403, "forbidden", "This case belongs to another agent.")
    return case


def agent_tokens(settings: DeskSettings, agent: Agent) -> dict[str, Any]:
    claims = {"sub": str(agent.id), "ver": agent.token_version}
    return {"token": sign(claims, settings.agent_secret, auth.AGENT,
                          settings.agent_token_ttl_seconds),
            "refresh_token": sign(claims, settings.agent_secret, auth.AGENT_REFRESH,
                                  settings.agent_refresh_ttl_seconds),
            "expires_in": settings.agent_token_ttl_seconds,
            "agent": {"id": agent.id, "name": agent.display_name, "role": agent.role}}


# ---- signing in and out -----------------------------------------------------------------------
@router.post("/api/agent/login")
async def agent_login(body: AgentLogin, request: Request, context: Context,
                      session: DbSession) -> dict[str, Any]:
    """Same answer and about the same time for a wrong password and an unknown name;
    repeated failures for a name (or from an address) are refused for a while."""
    by_name, by_address = context.login_by_name, context.login_by_address
    name_key = [body.username.casefold()]
    address_key = [request.client.host if request.client else "unknown"]
    wait = max(by_name.retry_after(name_key), by_address.retry_after(address_key))
    if wait:
        raise DeskError(429, "too_many_attempts",
                        "Too many failed sign-ins. Wait a few minutes and try again.",
                        headers={"Retry-After": str(int(wait) + 1)})
    agent = session.execute(select(Agent).where(Agent.username == body.username)
                            ).scalar_one_or_none()
    session.close()  # nothing held while the password is hashed
    stored = agent.password_hash if agent is not None else auth.UNKNOWN_USER_HASH
    matches = await asyncio.to_thread(check_password, body.password, stored)
    if agent is None or not agent.active or not matches:
        by_name.failed(name_key)
        by_address.failed(address_key)
        raise DeskError(401, "bad_credentials", "Wrong username or password.")
    by_name.succeeded(name_key)
    return agent_tokens(context.settings, agent)


@router.post("/api/agent/refresh")
def agent_refresh(token: BearerToken, context: Context, session: DbSession) -> dict[str, Any]:
    """A new access token for a console whose refresh token is still valid."""
    identity = agent_for_token(session, context.agent_keys, token, auth.AGENT_REFRESH)
    if identity is None:
        raise DeskError(401, "unauthorized", "Sign in again.")
    tokens = agent_tokens(context.settings, session.get(Agent, identity.id))
    return {"token": tokens["token"], "expires_in": tokens["expires_in"]}


@router.post("/api/agent/logout", status_code=204)
async def agent_logout(agent: CurrentAgent, context: Context, session: DbSession) -> Response:
    """Revokes every token the agent holds and closes their console sockets."""
    session.get(Agent, agent.id).token_version += 1
    session.commit()
    await context.hub.disconnect_agent(agent.id)
    return Response(status_code=204)


# ---- the queue and cases ------------------------------------------------------------------------
@router.get("/api/agent/queue")
def agent_queue(agent: CurrentAgent, session: DbSession) -> dict[str, Any]:
    names = service.agent_names(session)
    return {"cases": [service.case_summary(c, names) for c in service.queue(session)]}


@router.post("/api/agent/cases/{case_id}/claim")
async def claim_case(case_id: int, agent: CurrentAgent, context: Context,
                     session: DbSession) -> dict[str, Any]:
    # with the line "a person joined" in the conversation, stored in the claim's transaction
    case, joined = handoffs.claim(session, case_id, agent.id, utc_now())
    summary = service.case_summary(case, service.agent_names(session))
    # the borrower's unanswered messages are the agent's now: never sent to the bot again
    context.turns.settle_unanswered(case.conversation_id)
    session.close()
    await context.hub.to_agents({"type": "queue"})
    await handoffs.tell(context.hub, summary["conversation_id"], agent.id, joined)
    # the borrower sees who joined; everyone waiting behind them moves up
    await handoffs.publish(context.hub, context.sessions, summary["conversation_id"],
                           queue_moved=True)
    return summary


@router.get("/api/agent/cases/{case_id}")
def case_detail(case_id: int, agent: CurrentAgent, session: DbSession) -> dict[str, Any]:
    case = readable_case(session, case_id, agent)
    messages = [service.message_dict(m, for_agent=True) for m in
                service.messages_after(session, case.conversation_id, 0)]
    notes = [{"id": n.id, "text": n.text, "at": n.created_at.isoformat(),
              "agent": service.agent_names(session).get(n.agent_id)}
             for n in session.execute(select(Note).where(Note.case_id == case_id)
                                      .order_by(Note.id)).scalars()]
    return {**service.case_summary(case, service.agent_names(session)),
            "context": case.context, "messages": messages, "notes": notes}


@router.post("/api/agent/cases/{case_id}/messages")
async def agent_reply(case_id: int, body: AgentText, agent: CurrentAgent, context: Context,
                      session: DbSession) -> dict[str, Any]:
    case = service.owned_case(session, case_id, agent.id)
    message, _ = service.add_message(session, case.conversation_id, "agent", body.text,
                                     utc_now(), agent_name=agent.name)
    payload = service.message_dict(message)
    conversation_id = case.conversation_id
    await context.hub.to_borrower(conversation_id, payload)
    await context.hub.to_agent(agent.id, {**payload, "text": mask_text(payload["text"])})
    try:  # keep the assistant's transcript complete for when it takes over again
        await context.rasa.append_events(conversation_id, [
            {"event": "bot", "text": mask_text(body.text), "metadata": {"agent": agent.name}}])
    except AssistantUnavailable as exc:
        log.warning("conversation %s: could not log the agent's message in the assistant's "
                    "tracker: %s", conversation_id, exc)
    return payload


@router.post("/api/agent/cases/{case_id}/notes")
def agent_note(case_id: int, body: AgentText, agent: CurrentAgent,
               session: DbSession) -> dict[str, Any]:
    case = readable_case(session, case_id, agent)
    if case.claimed_by != agent.id and not agent.supervisor:
        raise DeskError(409, "not_your_case", "Claim the case before adding notes.")
    note = service.add_note(session, case, agent.id, body.text, utc_now())
    return {"id": note.id, "text": note.text}


@router.post("/api/agent/cases/{case_id}/return")
async def return_to_bot(case_id: int, body: ReturnToBot, agent: CurrentAgent, context: Context,
                        session: DbSession) -> dict[str, Any]:
    conversation_id = service.owned_case(session, case_id, agent.id).conversation_id
    session.close()  # nothing held while the assistant answers; the case is read again after
    try:
        replies = await context.turns.resume_bot(conversation_id, body.note or None)
    except AssistantUnavailable as exc:
        log.warning("conversation %s: the assistant did not take it back from case %d: %s",
                    conversation_id, case_id, exc)
        raise DeskError(502, "assistant_unavailable",
                        "The assistant did not take the conversation back; the case is "
                        "still yours. Try again in a moment.") from exc
    case = service.owned_case(session, case_id, agent.id)
    left = handoffs.end(session, case, "returned", utc_now(), body.note)
    session.close()
    await context.hub.to_agents({"type": "queue"})
    await handoffs.tell(context.hub, conversation_id, agent.id, left)
    await handoffs.publish(context.hub, context.sessions, conversation_id)
    await context.turns.deliver_bot_messages(conversation_id, replies)
    return {"case_id": case_id, "status": "returned"}


@router.post("/api/agent/cases/{case_id}/close")
async def close_case(case_id: int, agent: CurrentAgent, context: Context,
                     session: DbSession) -> dict[str, Any]:
    case = service.owned_case(session, case_id, agent.id)
    conversation_id = case.conversation_id
    left = handoffs.end(session, case, "closed", utc_now())
    session.close()
    await context.hub.to_agents({"type": "queue"})
    await handoffs.tell(context.hub, conversation_id, agent.id, left)
    await handoffs.publish(context.hub, context.sessions, conversation_id)
    try:  # the bot answers again next time the borrower writes
        await context.rasa.append_events(conversation_id, [
            {"event": "resume"}, {"event": "slot", "name": "handoff_active", "value": False},
            {"event": "action", "name": "action_listen"}])
    except AssistantUnavailable as exc:
        log.warning("conversation %s: could not resume the assistant after closing case %d: %s",
                    conversation_id, case_id, exc)
    return {"case_id": case_id, "status": "closed"}


# ---- conversations ------------------------------------------------------------------------------
@router.get("/api/agent/conversations")
def find_conversations(agent: CurrentAgent, session: DbSession,
                       borrower_id: str = "") -> dict[str, Any]:
    """One borrower's conversations by id (the agent knows whom they look for); the list
    of everybody's recent conversations is for supervisors."""
    if not borrower_id and not agent.supervisor:
        raise DeskError(403, "forbidden", "Search by borrower id.")
    query = select(Conversation).order_by(Conversation.updated_at.desc()).limit(50)
    if borrower_id:
        query = query.where(Conversation.borrower_id == borrower_id)
    return {"conversations": [
        {"conversation_id": c.id, "borrower_id": c.borrower_id, "owner": c.owner,
         "locale": c.locale, "updated_at": c.updated_at.isoformat()}
        for c in session.execute(query).scalars()]}


@router.post("/api/agent/conversations/{conversation_id}/run-check")
async def run_check(conversation_id: str, agent: CurrentAgent, context: Context,
                    session: DbSession) -> dict[str, Any]:
    """Hand a borrower's conversation to the bot to run the eligibility check now."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise DeskError(404, "conversation_not_found", "No such conversation.")
    case = service.open_case_for(session, conversation_id)
    if case is not None and case.claimed_by != agent.id:
        raise DeskError(409, "not_your_case", "Claim the case before acting on it.")
    if case is None and not agent.supervisor:
        raise DeskError(403, "forbidden", "Only a supervisor can run a check outside a case.")
    # the note the bot reads out, in the borrower's language (their latest clear message,
    # else the app's locale: handoffs.conversation_language)
    note = catalog_text("desk.run_check_note",
                        handoffs.conversation_language(session, conversation_id))
    session.close()  # nothing held while the assistant answers; the case is read again after
    try:
        replies = await context.turns.resume_bot(conversation_id, note)
    except AssistantUnavailable as exc:
        log.warning("conversation %s: the assistant did not run the check: %s",
                    conversation_id, exc)
        raise DeskError(502, "assistant_unavailable", "The assistant did not answer.") from exc
    case = service.open_case_for(session, conversation_id)
    left = None
    if case is not None:
        left = handoffs.end(session, case, "returned", utc_now(), "eligibility check")
    else:
        session.get(Conversation, conversation_id).owner = "bot"
        session.commit()
    session.close()
    await context.hub.to_agents({"type": "queue"})
    await handoffs.tell(context.hub, conversation_id, agent.id, left)
    await handoffs.publish(context.hub, context.sessions, conversation_id)
    await context.turns.deliver_bot_messages(conversation_id, replies)
    return {"conversation_id": conversation_id, "owner": "bot"}


# ---- canned replies -----------------------------------------------------------------------------
@router.get("/api/agent/canned")
def canned_list(agent: CurrentAgent, session: DbSession) -> dict[str, Any]:
    return {"replies": [{"id": r.id, "title": r.title, "text_zh": r.text_zh,
                         "text_en": r.text_en}
                        for r in session.execute(select(CannedReply)
                                                 .order_by(CannedReply.id)).scalars()]}


@router.post("/api/agent/canned")
def canned_add(body: Canned, agent: Supervisor, session: DbSession) -> dict[str, Any]:
    reply = CannedReply(title=body.title, text_zh=body.text_zh, text_en=body.text_en)
    session.add(reply)
    session.commit()
    return {"id": reply.id}


def canned_reply(session: Session, reply_id: int) -> CannedReply:
    reply = session.get(CannedReply, reply_id)
    if reply is None:
        raise DeskError(404, "not_found", "No such canned reply.")
    return reply


@router.put("/api/agent/canned/{reply_id}")
def canned_edit(reply_id: int, body: Canned, agent: Supervisor,
                session: DbSession) -> dict[str, Any]:
    reply = canned_reply(session, reply_id)
    reply.title, reply.text_zh, reply.text_en = body.title, body.text_zh, body.text_en
    session.commit()
    return {"id": reply.id}


@router.delete("/api/agent/canned/{reply_id}")
def canned_delete(reply_id: int, agent: Supervisor, session: DbSession) -> dict[str, Any]:
    session.delete(canned_reply(session, reply_id))
    session.commit()
    return {"deleted": reply_id}


# ---- the console's socket -----------------------------------------------------------------------
@router.websocket("/ws/agent")
async def agent_socket(socket: WebSocket, context: Context) -> None:
    with context.sessions() as session:
        agent = agent_for_token(session, context.agent_keys, token_from_subprotocols(socket))
    await accept(socket)  # a close before accepting is an HTTP 403: no 4401 for the page
    if agent is None:
        await socket.close(code=4401)
        return
    context.hub.add_agent(agent.id, socket)
    try:
        while True:  # the console only listens; pings keep it alive; anything else is ignored
            await receive_frame(socket, context.settings.ws_max_bytes)
    except WebSocketDisconnect:
        pass
    finally:
        context.hub.remove_agent(socket)
