"""The desk's HTTP and WebSocket API, and the two pages (in-app chat, agent console)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Header, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field, constr
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.db import make_engine, make_session_factory

from . import service
from .auth import InvalidToken, check_password, sign, verify
from .config import DeskSettings
from .hub import Hub
from .masking import mask_text
from .models import Agent, CannedReply, Case, Conversation, Note
from .rasa_client import AssistantUnavailable, RasaClient
from .service import DeskError

log = logging.getLogger("relend.desk")
STATIC = Path(__file__).resolve().parent / "static"
BORROWER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
LOCALE = re.compile(r"^(zh|en)(-[A-Za-z]{2})?$")
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

ASSISTANT_DOWN_ZH = "抱歉，助手暂时没有响应。您的消息已经保存，我们已请人工客服接手，请稍候。"
ASSISTANT_DOWN_EN = ("Sorry, the assistant isn't responding right now. Your message is saved and "
                     "a colleague will take over shortly.")

Text2000 = constr(strict=True, strip_whitespace=True, min_length=1, max_length=2000)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class DemoLogin(BaseModel):
    borrower_id: constr(strict=True, regex=BORROWER_ID.pattern)  # type: ignore[valid-type]
    locale: constr(strict=True, regex=LOCALE.pattern) = "zh-CN"  # type: ignore[valid-type]


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


def create_app(settings: DeskSettings | None = None) -> FastAPI:
    settings = settings or DeskSettings.from_env()
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    hub = Hub()
    rasa = RasaClient(settings.rasa_url, settings.rasa_token, settings.rasa_timeout)
    locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
    turns: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks
    app = FastAPI(title="Relend support desk", version="1.0.0", docs_url=None, redoc_url=None)
    app.state.settings, app.state.hub, app.state.rasa = settings, hub, rasa

    @contextmanager
    def db() -> Iterator[Session]:
        session = sessions()
        try:
            yield session
        finally:
            session.close()

    @app.on_event("shutdown")
    async def _close() -> None:
        await rasa.close()

    @app.exception_handler(DeskError)
    async def _desk_error(_request: Request, exc: DeskError) -> JSONResponse:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}},
                            status_code=exc.status)

    # ---- who is calling ---------------------------------------------------------------
    def agent_from(authorization: str = Header("")) -> dict[str, Any]:
        scheme, _, token = authorization.partition(" ")
        try:
            claims = verify(token, settings.agent_secret) if scheme.lower() == "bearer" else None
        except InvalidToken:
            claims = None
        if not claims or "agent_id" not in claims:
            raise DeskError(401, "unauthorized", "Log in to the console first.")
        return claims

    def internal(authorization: str = Header("")) -> None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.encode(), settings.internal_token.encode()):
            raise DeskError(401, "unauthorized", "A valid service token is required.")

    # ---- pages -----------------------------------------------------------------------
    @app.get("/health")
    def health() -> dict[str, str]:
        with db() as session:
            session.execute(select(1))
        return {"status": "ok"}

    @app.get("/")
    @app.get("/chat")
    def chat_page() -> FileResponse:
        return FileResponse(STATIC / "chat.html")

    @app.get("/console")
    def console_page() -> FileResponse:
        return FileResponse(STATIC / "console.html")

    @app.get("/static/{name}")
    def static_file(name: str) -> FileResponse:
        path = (STATIC / name).resolve()
        if path.parent != STATIC.resolve() or not path.is_file():
            raise DeskError(404, "not_found", "No such file.")
        return FileResponse(path)

    # ---- borrowers -------------------------------------------------------------------
    @app.get("/api/demo/borrowers")
    def demo_borrowers() -> dict[str, Any]:
        """The sandbox's demo borrowers, for the chat page's picker."""
        if not settings.demo_login:
            raise DeskError(404, "not_found", "Demo login is disabled.")
        from eligibility.seed import DEMO_BORROWERS, DEMO_NAMES

        return {"borrowers": [{"borrower_id": d.id, "name": DEMO_NAMES[d.id],
                               "situation": d.situation, "locale": d.locale}
                              for d in DEMO_BORROWERS]}

    @app.post("/api/demo/login")
    def demo_login(body: DemoLogin) -> dict[str, str]:
        """Sandbox only: stands in for the app, which signs tokens with RELEND_APP_SECRET."""
        if not settings.demo_login:
            raise DeskError(404, "not_found", "Demo login is disabled.")
        token = sign({"borrower_id": body.borrower_id, "locale": body.locale},
                     settings.app_secret, settings.token_ttl_seconds)
        return {"token": token}

    async def borrower_turn(conversation_id: str, message_id: int, text: str,
                            metadata: dict[str, Any]) -> None:
        """Forward one borrower message to the assistant and deliver what it says; then a
        ``turn_done`` frame tells clients (and test runners) that nothing more will follow."""
        try:
            await _borrower_turn(conversation_id, text, metadata)
        finally:
            await hub.to_borrower(conversation_id, {"type": "turn_done",
                                                    "message_id": message_id})

    async def _borrower_turn(conversation_id: str, text: str, metadata: dict[str, Any]) -> None:
        async with locks[conversation_id]:
            with db() as session:
                owner_before = session.get(Conversation, conversation_id).owner
            if owner_before == "bot":
                await hub.to_borrower(conversation_id, {"type": "typing", "on": True})
            try:
                replies = await rasa.send(conversation_id, text, metadata)
            except AssistantUnavailable:
                replies = None
            await hub.to_borrower(conversation_id, {"type": "typing", "on": False})
            if replies is None:
                if owner_before == "bot":  # with an agent in charge, nobody waits for the bot
                    await assistant_down(conversation_id)
                return
            if owner_before != "bot":
                if replies:
                    log.error("assistant replied while an agent owns %s; dropped %d message(s)",
                              conversation_id, len(replies))
                return
            await deliver_bot_messages(conversation_id, replies)

    async def deliver_bot_messages(conversation_id: str, replies: list[dict[str, Any]]) -> None:
        for reply in replies:
            text = reply.get("text")
            if not isinstance(text, str) or not text:
                continue
            buttons = [{"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
                       for b in reply.get("buttons") or [] if isinstance(b, dict)]
            with db() as session:
                message, _ = service.add_message(session, conversation_id, "bot", text,
                                                 utc_now(), buttons=buttons)
                payload = service.message_dict(message)
            await hub.to_borrower(conversation_id, payload)
            await hub.to_agents({**payload, "text": mask_text(payload["text"])})

    async def assistant_down(conversation_id: str) -> None:
        """The assistant did not answer: keep the message, tell the borrower, bring a person."""
        with db() as session:
            conversation = session.get(Conversation, conversation_id)
            lang = conversation.locale[:2] if conversation else "zh"
            transcript = [{"sender": m.sender, "text": m.text}
                          for m in service.messages_after(session, conversation_id, 0)[-50:]]
            if conversation is not None and conversation.owner == "bot":
                service.create_case(session, {"conversation_id": conversation_id,
                                              "language": lang, "reason": "assistant_unavailable",
                                              "transcript": transcript}, utc_now())
                await hub.to_agents({"type": "queue"})
            text = ASSISTANT_DOWN_ZH if lang == "zh" else ASSISTANT_DOWN_EN
            message, _ = service.add_message(session, conversation_id, "system", text, utc_now())
            payload = service.message_dict(message)
        await hub.to_borrower(conversation_id, payload)

    @app.websocket("/ws/chat")
    async def chat_socket(socket: WebSocket, token: str = "") -> None:
        try:
            claims = verify(token, settings.app_secret)
            borrower_id = str(claims["borrower_id"])
            locale = str(claims.get("locale") or "zh-CN")
            if not BORROWER_ID.match(borrower_id):
                raise InvalidToken("bad borrower id")
        except (InvalidToken, KeyError):
            await socket.accept()  # a close before accepting is an HTTP 403: no 4401 for the page
            await socket.close(code=4401)
            return
        await socket.accept()
        with db() as session:
            conversation = service.open_conversation(session, borrower_id, locale, utc_now())
            conversation_id = conversation.id
        hub.borrowers[conversation_id].add(socket)
        await socket.send_json({"type": "session", "conversation_id": conversation_id,
                                "borrower_id": borrower_id, "locale": locale})
        metadata = {"borrower_id": borrower_id, "locale": locale}
        try:
            while True:
                try:
                    data = await socket.receive_json()
                except KeyError:  # a binary frame: no "text" in it
                    await socket.close(code=4400)
                    return
                if not isinstance(data, dict):
                    await socket.send_json({"type": "error", "code": "bad_frame"})
                    continue
                if data.get("type") == "hello":
                    after = data.get("after") if isinstance(data.get("after"), int) else 0
                    with db() as session:
                        history = [service.message_dict(m) for m in
                                   service.messages_after(session, conversation_id, after)]
                    await socket.send_json({"type": "history", "messages": history})
                elif data.get("type") == "message":
                    await handle_borrower_message(socket, conversation_id, data, metadata)
                else:
                    await socket.send_json({"type": "error", "code": "unknown_type"})
        except WebSocketDisconnect:
            pass
        except ValueError:  # not JSON
            await socket.close(code=4400)
        finally:
            hub.borrowers[conversation_id].discard(socket)

    async def handle_borrower_message(socket: WebSocket, conversation_id: str,
                                      data: dict[str, Any], metadata: dict[str, Any]) -> None:
        text = data.get("text")
        client_id = data.get("client_id")
        if not isinstance(client_id, str) or not CLIENT_ID.match(client_id):
            await socket.send_json({"type": "error", "code": "bad_client_id"})
            return
        if not isinstance(text, str) or not text.strip():
            await socket.send_json({"type": "error", "code": "empty_message",
                                    "client_id": client_id})
            return
        if len(text) > settings.max_message_chars:
            await socket.send_json({"type": "error", "code": "message_too_long",
                                    "client_id": client_id, "limit": settings.max_message_chars})
            return
        with db() as session:
            message, created = service.add_message(session, conversation_id, "borrower",
                                                   text.strip(), utc_now(), client_id=client_id)
            payload = service.message_dict(message)
        await socket.send_json({"type": "ack", "client_id": client_id, "id": message.id})
        if not created:
            return  # a resend after reconnecting: already stored and forwarded
        await hub.to_borrower(conversation_id, payload)
        await hub.to_agents({**payload, "text": mask_text(payload["text"])})
        turn = asyncio.get_running_loop().create_task(
            borrower_turn(conversation_id, message.id, text.strip(), metadata))
        turns.add(turn)
        turn.add_done_callback(turns.discard)

    # ---- the assistant's side -----------------------------------------------------------
    @app.post("/internal/handoffs", dependencies=[Depends(internal)])
    async def handoff(body: HandoffRequest) -> dict[str, Any]:
        with db() as session:
            case = service.create_case(session, body.dict(), utc_now())
            case_id = case.id
        await hub.to_agents({"type": "queue"})
        return {"case_id": case_id}

    @app.get("/internal/conversations/{conversation_id}", dependencies=[Depends(internal)])
    def conversation_owner(conversation_id: str) -> dict[str, Any]:
        with db() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise DeskError(404, "conversation_not_found", "No such conversation.")
            case = service.open_case_for(session, conversation_id)
            return {"conversation_id": conversation_id, "owner": conversation.owner,
                    "case_id": case.id if case else None}

    # ---- agents ------------------------------------------------------------------------
    @app.post("/api/agent/login")
    def agent_login(body: AgentLogin) -> dict[str, Any]:
        with db() as session:
            agent = session.execute(select(Agent).where(Agent.username == body.username)
                                    ).scalar_one_or_none()
            if agent is None or not check_password(body.password, agent.password_hash):
                raise DeskError(401, "bad_credentials", "Wrong username or password.")
            token = sign({"agent_id": agent.id, "name": agent.display_name},
                         settings.agent_secret, settings.token_ttl_seconds)
            return {"token": token, "agent": {"id": agent.id, "name": agent.display_name}}

    @app.get("/api/agent/queue")
    def agent_queue(agent: dict = Depends(agent_from)) -> dict[str, Any]:
        with db() as session:
            names = service.agent_names(session)
            return {"cases": [service.case_summary(c, names) for c in service.queue(session)]}

    @app.post("/api/agent/cases/{case_id}/claim")
    async def claim_case(case_id: int, agent: dict = Depends(agent_from)) -> dict[str, Any]:
        with db() as session:
            case = service.claim(session, case_id, int(agent["agent_id"]), utc_now())
            summary = service.case_summary(case, service.agent_names(session))
        await hub.to_agents({"type": "queue"})
        return summary

    @app.get("/api/agent/cases/{case_id}")
    def case_detail(case_id: int, agent: dict = Depends(agent_from)) -> dict[str, Any]:
        with db() as session:
            case = session.get(Case, case_id)
            if case is None:
                raise DeskError(404, "case_not_found", "No such case.")
            messages = [service.message_dict(m, for_agent=True) for m in
                        service.messages_after(session, case.conversation_id, 0)]
            notes = [{"id": n.id, "text": n.text, "at": n.created_at.isoformat(),
                      "agent": service.agent_names(session).get(n.agent_id)}
                     for n in session.execute(select(Note).where(Note.case_id == case_id)
                                              .order_by(Note.id)).scalars()]
            return {**service.case_summary(case, service.agent_names(session)),
                    "context": case.context, "messages": messages, "notes": notes}

    @app.post("/api/agent/cases/{case_id}/messages")
    async def agent_reply(case_id: int, body: AgentText,
                          agent: dict = Depends(agent_from)) -> dict[str, Any]:
        with db() as session:
            case = service.owned_case(session, case_id, int(agent["agent_id"]))
            message, _ = service.add_message(session, case.conversation_id, "agent", body.text,
                                             utc_now(), agent_name=str(agent.get("name")))
            payload = service.message_dict(message)
            conversation_id = case.conversation_id
        await hub.to_borrower(conversation_id, payload)
        await hub.to_agents({**payload, "text": mask_text(payload["text"])})
        try:  # keep the assistant's transcript complete for when it takes over again
            await rasa.append_events(conversation_id, [
                {"event": "bot", "text": body.text, "metadata": {"agent": agent.get("name")}}])
        except AssistantUnavailable:
            log.warning("could not log agent message in the assistant's tracker for %s",
                        conversation_id)
        return payload

    @app.post("/api/agent/cases/{case_id}/notes")
    def agent_note(case_id: int, body: AgentText, agent: dict = Depends(agent_from)
                   ) -> dict[str, Any]:
        with db() as session:
            case = session.get(Case, case_id)
            if case is None:
                raise DeskError(404, "case_not_found", "No such case.")
            note = service.add_note(session, case, int(agent["agent_id"]), body.text, utc_now())
            return {"id": note.id, "text": note.text}

    async def resume_bot(conversation_id: str, note: str | None) -> list[dict[str, Any]]:
        """Un-pause the assistant (with the agent's note) and let it speak first; the caller
        changes ownership only once this worked, so a failure leaves the case as it was."""
        with db() as session:
            conversation = session.get(Conversation, conversation_id)
            borrower_id, locale = conversation.borrower_id, conversation.locale
        events = [{"event": "resume"},
                  {"event": "slot", "name": "handoff_active", "value": False},
                  {"event": "slot", "name": "borrower_id", "value": borrower_id},
                  {"event": "slot", "name": "language", "value": locale[:2]},
                  {"event": "slot", "name": "agent_note", "value": note}]
        async with locks[conversation_id]:
            await rasa.append_events(conversation_id, events)
            return await rasa.execute(conversation_id, "action_resume_after_handoff")

    @app.post("/api/agent/cases/{case_id}/return")
    async def return_to_bot(case_id: int, body: ReturnToBot,
                            agent: dict = Depends(agent_from)) -> dict[str, Any]:
        with db() as session:
            conversation_id = service.owned_case(session, case_id,
                                                 int(agent["agent_id"])).conversation_id
        try:
            replies = await resume_bot(conversation_id, body.note or None)
        except AssistantUnavailable as exc:
            raise DeskError(502, "assistant_unavailable",
                            "The assistant did not take the conversation back; the case is "
                            "still yours. Try again in a moment.") from exc
        with db() as session:
            case = service.owned_case(session, case_id, int(agent["agent_id"]))
            service.end_case(session, case, "returned", utc_now(), body.note)
        await hub.to_agents({"type": "queue"})
        await deliver_bot_messages(conversation_id, replies)
        return {"case_id": case_id, "status": "returned"}

    @app.post("/api/agent/cases/{case_id}/close")
    async def close_case(case_id: int, agent: dict = Depends(agent_from)) -> dict[str, Any]:
        with db() as session:
            case = service.owned_case(session, case_id, int(agent["agent_id"]))
            service.end_case(session, case, "closed", utc_now())
            conversation_id = case.conversation_id
        await hub.to_agents({"type": "queue"})
        try:  # the bot answers again next time the borrower writes
            await rasa.append_events(conversation_id, [
                {"event": "resume"}, {"event": "slot", "name": "handoff_active", "value": False},
                {"event": "action", "name": "action_listen"}])
        except AssistantUnavailable:
            log.warning("could not resume the assistant for %s", conversation_id)
        return {"case_id": case_id, "status": "closed"}

    @app.get("/api/agent/conversations")
    def find_conversations(borrower_id: str = "", agent: dict = Depends(agent_from)
                           ) -> dict[str, Any]:
        with db() as session:
            query = select(Conversation).order_by(Conversation.updated_at.desc()).limit(50)
            if borrower_id:
                query = query.where(Conversation.borrower_id == borrower_id)
            return {"conversations": [
                {"conversation_id": c.id, "borrower_id": c.borrower_id, "owner": c.owner,
                 "locale": c.locale, "updated_at": c.updated_at.isoformat()}
                for c in session.execute(query).scalars()]}

    @app.post("/api/agent/conversations/{conversation_id}/run-check")
    async def run_check(conversation_id: str, agent: dict = Depends(agent_from)
                        ) -> dict[str, Any]:
        """Hand a borrower's conversation to the bot to run the eligibility check now."""
        with db() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise DeskError(404, "conversation_not_found", "No such conversation.")
            case = service.open_case_for(session, conversation_id)
            if case is not None and case.claimed_by not in (None, int(agent["agent_id"])):
                raise DeskError(409, "not_your_case", "Another agent owns this case.")
        try:
            replies = await resume_bot(conversation_id, _check_note(agent))
        except AssistantUnavailable as exc:
            raise DeskError(502, "assistant_unavailable", "The assistant did not answer.") from exc
        with db() as session:
            case = service.open_case_for(session, conversation_id)
            if case is not None:
                service.end_case(session, case, "returned", utc_now(), "eligibility check")
            else:
                session.get(Conversation, conversation_id).owner = "bot"
                session.commit()
        await hub.to_agents({"type": "queue"})
        await deliver_bot_messages(conversation_id, replies)
        return {"conversation_id": conversation_id, "owner": "bot"}

    @app.get("/api/agent/canned")
    def canned_list(agent: dict = Depends(agent_from)) -> dict[str, Any]:
        with db() as session:
            return {"replies": [{"id": r.id, "title": r.title, "text_zh": r.text_zh,
                                 "text_en": r.text_en}
                                for r in session.execute(select(CannedReply)
                                                         .order_by(CannedReply.id)).scalars()]}

    @app.post("/api/agent/canned")
    def canned_add(body: Canned, agent: dict = Depends(agent_from)) -> dict[str, Any]:
        with db() as session:
            reply = CannedReply(title=body.title, text_zh=body.text_zh, text_en=body.text_en)
            session.add(reply)
            session.commit()
            return {"id": reply.id}

    @app.put("/api/agent/canned/{reply_id}")
    def canned_edit(reply_id: int, body: Canned, agent: dict = Depends(agent_from)
                    ) -> dict[str, Any]:
        with db() as session:
            reply = session.get(CannedReply, reply_id)
            if reply is None:
                raise DeskError(404, "not_found", "No such canned reply.")
            reply.title, reply.text_zh, reply.text_en = body.title, body.text_zh, body.text_en
            session.commit()
            return {"id": reply.id}

    @app.delete("/api/agent/canned/{reply_id}")
    def canned_delete(reply_id: int, agent: dict = Depends(agent_from)) -> dict[str, Any]:
        with db() as session:
            reply = session.get(CannedReply, reply_id)
            if reply is None:
                raise DeskError(404, "not_found", "No such canned reply.")
            session.delete(reply)
            session.commit()
            return {"deleted": reply_id}

    @app.websocket("/ws/agent")
    async def agent_socket(socket: WebSocket, token: str = "") -> None:
        try:
            verify(token, settings.agent_secret)
        except InvalidToken:
            await socket.accept()  # a close before accepting is an HTTP 403: no 4401 for the page
            await socket.close(code=4401)
            return
        await socket.accept()
        hub.agents.add(socket)
        try:
            while True:
                await socket.receive_text()  # the console only listens; pings keep it alive
        except WebSocketDisconnect:
            pass
        finally:
            hub.agents.discard(socket)

    return app


def _check_note(agent: dict[str, Any]) -> str:
    return f"{agent.get('name', 'An agent')} asked me to check your account again"
