"""The desk's HTTP and WebSocket API, and the two pages (in-app chat, agent console)."""


import asyncio
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field, constr
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.db import make_engine, make_session_factory

from . import auth, service
from .auth import InvalidToken, check_password, sign, verify
from .config import DeskSettings
from .guards import GuardMiddleware, LoginThrottle, RateLimiter
from .hub import Hub
from .masking import mask_text
from .models import Agent, CannedReply, Case, Conversation, Note
from .rasa_client import AssistantUnavailable, RasaClient
from .service import DeskError

log = logging.getLogger("relend.desk")
STATIC = Path(__file__).resolve().parent / "static"
# \Z, not $: "$" also matches before a final newline, which must not pass as an id
BORROWER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
LOCALE = re.compile(r"^(zh|en)(-[A-Za-z]{2})?\Z")
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
SOCKETS_PER_BORROWER = 5
SUBPROTOCOL = "relend.v1"  # a page offers it with "auth.<token>": no token in any URL
RETENTION_EVERY_SECONDS = 3600

ASSISTANT_DOWN_ZH = "抱歉，助手暂时没有响应。您的消息已经保存，我们已请人工客服接手，请稍候。"
ASSISTANT_DOWN_EN = ("Sorry, the assistant isn't responding right now. Your message is saved and "
                     "a colleague will take over shortly.")

Text2000 = constr(strict=True, strip_whitespace=True, min_length=1, max_length=2000)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class AgentIdentity:
    """An agent as the agents table says now (not as an old token remembers)."""

    id: int
    name: str
    role: str

    @property
    def supervisor(self) -> bool:
        return self.role == "supervisor"


class ConversationLocks:
    """One lock per conversation with a turn in progress; dropped when nobody holds it,
    so the map holds only live conversations."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def __call__(self, conversation_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(conversation_id, (asyncio.Lock(), 0))
        self._locks[conversation_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[conversation_id]
            if users <= 1:
                del self._locks[conversation_id]
            else:
                self._locks[conversation_id] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


def token_from_subprotocols(socket: WebSocket) -> str:
    for offered in socket.scope.get("subprotocols") or []:
        if offered.startswith("auth."):
            return offered[len("auth."):]
    return ""


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
    settings.check()
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    hub = Hub()
    rasa = RasaClient(settings.rasa_url, settings.rasa_jwt_secret, settings.channel_secret,
                      settings.rasa_timeout)
    locks = ConversationLocks()
    turns: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks
    app_keys = [settings.app_secret, settings.app_secret_previous]
    agent_keys = [settings.agent_secret, settings.agent_secret_previous]
    # a burst of 10 messages, then one every 3 s (by default) per borrower, whatever the socket
    borrower_rate = RateLimiter(settings.messages_per_minute, 10)
    # any frame (hello, message, junk) per borrower, whatever the socket: generous, stops floods
    frame_rate = RateLimiter(max(120, settings.messages_per_minute * 6), 60)
    login_by_name = LoginThrottle(settings.login_failures_allowed, settings.login_lockout_seconds)
    login_by_address = LoginThrottle(settings.login_failures_allowed * 10,
                                     settings.login_lockout_seconds)
    demo_ids: set[str] = set()
    if settings.demo_login:
        from eligibility.seed import DEMO_BORROWERS

        demo_ids = {d.id for d in DEMO_BORROWERS}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        retention = asyncio.get_running_loop().create_task(keep_retention())
        try:
            yield
        finally:
            retention.cancel()
            await rasa.close()

    app = FastAPI(title="Relend support desk", version="1.0.0", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.add_middleware(GuardMiddleware, max_body_bytes=settings.max_body_bytes)
    app.state.settings, app.state.hub, app.state.rasa = settings, hub, rasa
    app.state.locks, app.state.borrower_rate = locks, borrower_rate

    @contextmanager
    def db() -> Iterator[Session]:
        session = sessions()
        try:
            yield session
        finally:
            session.close()

    async def keep_retention() -> None:
        """Raw borrower text is kept RELEND_DESK_RAW_TEXT_DAYS, then only its masked form."""
        while True:
            try:
                with db() as session:
                    service.mask_old_messages(session, settings.raw_text_days, utc_now())
            except Exception:  # a busy database must not stop the desk; next round retries
                log.exception("retention round failed")
            await asyncio.sleep(RETENTION_EVERY_SECONDS)

    @app.exception_handler(DeskError)
    async def _desk_error(_request: Request, exc: DeskError) -> JSONResponse:
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}},
                            status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RecursionError)
    async def _too_deep(_request: Request, _exc: RecursionError) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": "bad_request", "message": "Body nested too deeply."}}, 400)

    # ---- who is calling ---------------------------------------------------------------
    def current_agent(token: str, audience: str = auth.AGENT) -> AgentIdentity | None:
        """The agent a token belongs to, if the token is valid and not revoked."""
        try:
            claims = verify(token, agent_keys, audience)
            agent_id = int(claims["sub"])
        except (InvalidToken, KeyError, TypeError, ValueError):
            return None
        with db() as session:
            agent = session.get(Agent, agent_id)
            if agent is None or not agent.active or agent.token_version != claims.get("ver"):
                return None
            return AgentIdentity(agent.id, agent.display_name, agent.role)

    def bearer_token(authorization: str) -> str:
        scheme, _, token = authorization.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""

    def agent_from(authorization: str = Header("")) -> AgentIdentity:
        agent = current_agent(bearer_token(authorization))
        if agent is None:
            raise DeskError(401, "unauthorized", "Log in to the console first.")
        return agent

    CurrentAgent = Annotated[AgentIdentity, Depends(agent_from)]

    def supervisor_from(agent: CurrentAgent) -> AgentIdentity:
        if not agent.supervisor:
            raise DeskError(403, "forbidden", "Only a supervisor can do this.")
        return agent

    Supervisor = Annotated[AgentIdentity, Depends(supervisor_from)]

    def internal(authorization: str = Header("")) -> None:
        token = bearer_token(authorization)
        if not token or not hmac.compare_digest(token.encode(), settings.internal_token.encode()):
            raise DeskError(401, "unauthorized", "A valid service token is required.")

    def readable_case(session: Session, case_id: int, agent: AgentIdentity) -> Case:
        """A waiting case is open to every agent (to decide whether to take it); after that,
        only to the agent who took it, and to supervisors."""
        case = session.get(Case, case_id)
        if case is None:
            raise DeskError(404, "case_not_found", "No such case.")
        if case.status != "waiting" and case.claimed_by != agent.id and not agent.supervisor:
            raise DeskError(403, "forbidden", "This case belongs to another agent.")
        return case

    def agent_tokens(agent: Agent) -> dict[str, Any]:
        claims = {"sub": str(agent.id), "ver": agent.token_version}
        return {"token": sign(claims, settings.agent_secret, auth.AGENT,
                              settings.agent_token_ttl_seconds),
                "refresh_token": sign(claims, settings.agent_secret, auth.AGENT_REFRESH,
                                      settings.agent_refresh_ttl_seconds),
                "expires_in": settings.agent_token_ttl_seconds,
                "agent": {"id": agent.id, "name": agent.display_name, "role": agent.role}}

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
        """Sandbox only: stands in for the app, which signs tokens with RELEND_APP_SECRET —
        and only for the seeded demo borrowers, never for an id someone makes up."""
        if not settings.demo_login:
            raise DeskError(404, "not_found", "Demo login is disabled.")
        if body.borrower_id not in demo_ids:
            raise DeskError(403, "not_a_demo_borrower",
                            "Demo login is only for the sandbox's demo borrowers.")
        token = sign({"borrower_id": body.borrower_id, "locale": body.locale},
                     settings.app_secret, auth.BORROWER, settings.borrower_token_ttl_seconds)
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
        async with locks(conversation_id):
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
            await to_case_agent(conversation_id, payload)

    async def to_case_agent(conversation_id: str, payload: dict[str, Any]) -> None:
        """A live message goes, masked, to the agent who took the conversation's case, if any."""
        with db() as session:
            case = service.open_case_for(session, conversation_id)
            claimer = case.claimed_by if case is not None else None
        if claimer is not None:
            await hub.to_agent(claimer, {**payload, "text": mask_text(payload["text"])})

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

    async def accept(socket: WebSocket) -> None:
        offered = socket.scope.get("subprotocols") or []
        await socket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)

    async def receive_frame(socket: WebSocket) -> dict[str, Any] | str:
        """The next JSON object, or an error code for a frame that is not one. Raises
        WebSocketDisconnect; ``"binary"`` and ``"not_json"`` close the socket."""
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        if text is None:
            return "binary"
        if len(text) > settings.ws_max_bytes:
            return "frame_too_large"
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return "not_json"
        return data if isinstance(data, dict) else "bad_frame"

    def refusal(data: dict[str, Any] | str, wait: float) -> dict[str, Any]:
        """The error frame for a frame refused before it is read as a message."""
        if isinstance(data, str):
            return {"type": "error", "code": data}
        frame: dict[str, Any] = {"type": "error", "code": "rate_limited",
                                 "retry_after": round(wait, 1)}
        if isinstance(data.get("client_id"), str):
            frame["client_id"] = data["client_id"]
        return frame

    @app.websocket("/ws/chat")
    async def chat_socket(socket: WebSocket) -> None:
        try:
            claims = verify(token_from_subprotocols(socket), app_keys, auth.BORROWER)
            borrower_id = str(claims["borrower_id"])
            locale = str(claims.get("locale") or "zh-CN")
            if not BORROWER_ID.match(borrower_id) or not LOCALE.match(locale):
                raise InvalidToken("bad borrower id or locale")
        except (InvalidToken, KeyError):
            await accept(socket)  # a close before accepting is an HTTP 403: no 4401 for the page
            await socket.close(code=4401)
            return
        await accept(socket)
        with db() as session:
            conversation = service.open_conversation(session, borrower_id, locale, utc_now())
            conversation_id = conversation.id
        if len(hub.borrowers.get(conversation_id, ())) >= SOCKETS_PER_BORROWER:
            await socket.close(code=4429)  # too many open chats for one borrower
            return
        hub.add_borrower(conversation_id, socket)
        await socket.send_json({"type": "session", "conversation_id": conversation_id,
                                "borrower_id": borrower_id, "locale": locale})
        metadata = {"borrower_id": borrower_id, "locale": locale}
        try:
            while True:
                data = await receive_frame(socket)
                if data in ("binary", "not_json"):
                    await socket.close(code=4400)
                    return
                wait = frame_rate.take(borrower_id)
                if isinstance(data, str) or wait:
                    await socket.send_json(refusal(data, wait))
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
        finally:
            hub.remove_borrower(conversation_id, socket)

    async def handle_borrower_message(socket: WebSocket, conversation_id: str,
                                      data: dict[str, Any], metadata: dict[str, Any]) -> None:
        text = data.get("text")
        client_id = data.get("client_id")
        if not isinstance(client_id, str) or not CLIENT_ID.match(client_id):
            await socket.send_json({"type": "error", "code": "bad_client_id"})
            return
        if isinstance(text, str) and len(text) > settings.max_message_chars:
            await socket.send_json({"type": "error", "code": "message_too_long",
                                    "client_id": client_id, "limit": settings.max_message_chars})
            return
        text = service.clean_text(text) if isinstance(text, str) else ""
        if not text:  # nothing left once control characters and spaces are gone
            await socket.send_json({"type": "error", "code": "empty_message",
                                    "client_id": client_id})
            return
        with db() as session:
            if service.has_message(session, conversation_id, client_id):
                message, created = service.add_message(session, conversation_id, "borrower",
                                                       text, utc_now(), client_id=client_id)
                await socket.send_json({"type": "ack", "client_id": client_id, "id": message.id})
                return  # a resend after reconnecting: already stored and forwarded
        wait = borrower_rate.take(metadata["borrower_id"])
        if wait:
            await socket.send_json({"type": "error", "code": "rate_limited",
                                    "client_id": client_id, "retry_after": round(wait, 1)})
            return
        with db() as session:
            message, created = service.add_message(session, conversation_id, "borrower",
                                                   text, utc_now(), client_id=client_id)
            payload = service.message_dict(message)
        await socket.send_json({"type": "ack", "client_id": client_id, "id": message.id})
        if not created:
            return  # a resend after reconnecting: already stored and forwarded
        await hub.to_borrower(conversation_id, payload)
        await to_case_agent(conversation_id, payload)
        # the assistant (its tracker, the event broker) never sees the raw numbers
        turn = asyncio.get_running_loop().create_task(
            borrower_turn(conversation_id, message.id, mask_text(text), metadata))
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
    async def agent_login(body: AgentLogin, request: Request) -> dict[str, Any]:
        """Same answer and about the same time for a wrong password and an unknown name;
        repeated failures for a name (or from an address) are refused for a while."""
        name_key = [body.username.casefold()]
        address_key = [request.client.host if request.client else "unknown"]
        wait = max(login_by_name.retry_after(name_key), login_by_address.retry_after(address_key))
        if wait:
            raise DeskError(429, "too_many_attempts",
                            "Too many failed sign-ins. Wait a few minutes and try again.",
                            headers={"Retry-After": str(int(wait) + 1)})
        with db() as session:
            agent = session.execute(select(Agent).where(Agent.username == body.username)
                                    ).scalar_one_or_none()
        stored = agent.password_hash if agent is not None else auth.UNKNOWN_USER_HASH
        matches = await asyncio.to_thread(check_password, body.password, stored)
        if agent is None or not agent.active or not matches:
            login_by_name.failed(name_key)
            login_by_address.failed(address_key)
            raise DeskError(401, "bad_credentials", "Wrong username or password.")
        login_by_name.succeeded(name_key)
        return agent_tokens(agent)

    @app.post("/api/agent/refresh")
    def agent_refresh(authorization: str = Header("")) -> dict[str, Any]:
        """A new access token for a console whose refresh token is still valid."""
        identity = current_agent(bearer_token(authorization), auth.AGENT_REFRESH)
        if identity is None:
            raise DeskError(401, "unauthorized", "Sign in again.")
        with db() as session:
            tokens = agent_tokens(session.get(Agent, identity.id))
        return {"token": tokens["token"], "expires_in": tokens["expires_in"]}

    @app.post("/api/agent/logout", status_code=204)
    async def agent_logout(agent: CurrentAgent) -> Response:
        """Revokes every token the agent holds and closes their console sockets."""
        with db() as session:
            row = session.get(Agent, agent.id)
            row.token_version += 1
            session.commit()
        await hub.disconnect_agent(agent.id)
        return Response(status_code=204)

    @app.get("/api/agent/queue")
    def agent_queue(agent: CurrentAgent) -> dict[str, Any]:
        with db() as session:
            names = service.agent_names(session)
            return {"cases": [service.case_summary(c, names) for c in service.queue(session)]}

    @app.post("/api/agent/cases/{case_id}/claim")
    async def claim_case(case_id: int, agent: CurrentAgent) -> dict[str, Any]:
        with db() as session:
            case = service.claim(session, case_id, agent.id, utc_now())
            summary = service.case_summary(case, service.agent_names(session))
        await hub.to_agents({"type": "queue"})
        return summary

    @app.get("/api/agent/cases/{case_id}")
    def case_detail(case_id: int, agent: CurrentAgent) -> dict[str, Any]:
        with db() as session:
            case = readable_case(session, case_id, agent)
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
                          agent: CurrentAgent) -> dict[str, Any]:
        with db() as session:
            case = service.owned_case(session, case_id, agent.id)
            message, _ = service.add_message(session, case.conversation_id, "agent", body.text,
                                             utc_now(), agent_name=agent.name)
            payload = service.message_dict(message)
            conversation_id = case.conversation_id
        await hub.to_borrower(conversation_id, payload)
        await hub.to_agent(agent.id, {**payload, "text": mask_text(payload["text"])})
        try:  # keep the assistant's transcript complete for when it takes over again
            await rasa.append_events(conversation_id, [
                {"event": "bot", "text": mask_text(body.text), "metadata": {"agent": agent.name}}])
        except AssistantUnavailable:
            log.warning("could not log agent message in the assistant's tracker for %s",
                        conversation_id)
        return payload

    @app.post("/api/agent/cases/{case_id}/notes")
    def agent_note(case_id: int, body: AgentText, agent: CurrentAgent
                   ) -> dict[str, Any]:
        with db() as session:
            case = readable_case(session, case_id, agent)
            if case.claimed_by != agent.id and not agent.supervisor:
                raise DeskError(409, "not_your_case", "Claim the case before adding notes.")
            note = service.add_note(session, case, agent.id, body.text, utc_now())
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
        async with locks(conversation_id):
            await rasa.append_events(conversation_id, events)
            return await rasa.execute(conversation_id, "action_resume_after_handoff")

    @app.post("/api/agent/cases/{case_id}/return")
    async def return_to_bot(case_id: int, body: ReturnToBot,
                            agent: CurrentAgent) -> dict[str, Any]:
        with db() as session:
            conversation_id = service.owned_case(session, case_id,
                                                 agent.id).conversation_id
        try:
            replies = await resume_bot(conversation_id, body.note or None)
        except AssistantUnavailable as exc:
            raise DeskError(502, "assistant_unavailable",
                            "The assistant did not take the conversation back; the case is "
                            "still yours. Try again in a moment.") from exc
        with db() as session:
            case = service.owned_case(session, case_id, agent.id)
            service.end_case(session, case, "returned", utc_now(), body.note)
        await hub.to_agents({"type": "queue"})
        await deliver_bot_messages(conversation_id, replies)
        return {"case_id": case_id, "status": "returned"}

    @app.post("/api/agent/cases/{case_id}/close")
    async def close_case(case_id: int, agent: CurrentAgent) -> dict[str, Any]:
        with db() as session:
            case = service.owned_case(session, case_id, agent.id)
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
    def find_conversations(agent: CurrentAgent, borrower_id: str = "") -> dict[str, Any]:
        """One borrower's conversations by id (the agent knows whom they look for); the list
        of everybody's recent conversations is for supervisors."""
        if not borrower_id and not agent.supervisor:
            raise DeskError(403, "forbidden", "Search by borrower id.")
        with db() as session:
            query = select(Conversation).order_by(Conversation.updated_at.desc()).limit(50)
            if borrower_id:
                query = query.where(Conversation.borrower_id == borrower_id)
            return {"conversations": [
                {"conversation_id": c.id, "borrower_id": c.borrower_id, "owner": c.owner,
                 "locale": c.locale, "updated_at": c.updated_at.isoformat()}
                for c in session.execute(query).scalars()]}

    @app.post("/api/agent/conversations/{conversation_id}/run-check")
    async def run_check(conversation_id: str, agent: CurrentAgent
                        ) -> dict[str, Any]:
        """Hand a borrower's conversation to the bot to run the eligibility check now."""
        with db() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise DeskError(404, "conversation_not_found", "No such conversation.")
            case = service.open_case_for(session, conversation_id)
            if case is not None and case.claimed_by != agent.id:
                raise DeskError(409, "not_your_case", "Claim the case before acting on it.")
            if case is None and not agent.supervisor:
                raise DeskError(403, "forbidden",
                                "Only a supervisor can run a check outside a case.")
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
    def canned_list(agent: CurrentAgent) -> dict[str, Any]:
        with db() as session:
            return {"replies": [{"id": r.id, "title": r.title, "text_zh": r.text_zh,
                                 "text_en": r.text_en}
                                for r in session.execute(select(CannedReply)
                                                         .order_by(CannedReply.id)).scalars()]}

    @app.post("/api/agent/canned")
    def canned_add(body: Canned, agent: Supervisor
                   ) -> dict[str, Any]:
        with db() as session:
            reply = CannedReply(title=body.title, text_zh=body.text_zh, text_en=body.text_en)
            session.add(reply)
            session.commit()
            return {"id": reply.id}

    @app.put("/api/agent/canned/{reply_id}")
    def canned_edit(reply_id: int, body: Canned, agent: Supervisor
                    ) -> dict[str, Any]:
        with db() as session:
            reply = session.get(CannedReply, reply_id)
            if reply is None:
                raise DeskError(404, "not_found", "No such canned reply.")
            reply.title, reply.text_zh, reply.text_en = body.title, body.text_zh, body.text_en
            session.commit()
            return {"id": reply.id}

    @app.delete("/api/agent/canned/{reply_id}")
    def canned_delete(reply_id: int, agent: Supervisor) -> dict[str, Any]:
        with db() as session:
            reply = session.get(CannedReply, reply_id)
            if reply is None:
                raise DeskError(404, "not_found", "No such canned reply.")
            session.delete(reply)
            session.commit()
            return {"deleted": reply_id}

    @app.websocket("/ws/agent")
    async def agent_socket(socket: WebSocket) -> None:
        agent = current_agent(token_from_subprotocols(socket))
        await accept(socket)  # a close before accepting is an HTTP 403: no 4401 for the page
        if agent is None:
            await socket.close(code=4401)
            return
        hub.add_agent(agent.id, socket)
        try:
            while True:  # the console only listens; pings keep it alive
                if await receive_frame(socket) in ("binary", "not_json", "frame_too_large"):
                    continue
        except WebSocketDisconnect:
            pass
        finally:
            hub.remove_agent(socket)

    return app


def _check_note(agent: AgentIdentity) -> str:
    return f"{agent.name} asked me to check your account again"
