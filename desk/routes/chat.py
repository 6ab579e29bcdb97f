"""The borrower's chat socket: who is chatting comes from the app's signed token; every message
is stored (with its turn ``pending``), acknowledged and echoed, then the assistant's turn runs
(desk/turns.py). A frame the desk cannot use gets an error frame, and the socket goes on.
The answer to every ``hello`` carries the conversation's handoff state (desk/handoffs.py)."""

import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlalchemy import select

from .. import auth, handoffs, service
from ..auth import InvalidToken, verify
from ..context import DeskContext
from ..deps import Context
from ..models import Message
from ..service import utc_now
from ..sockets import (
    BadFrame,
    accept,
    receive_frame,
    token_from_subprotocols,
    valid_client_id,
)
from ..turns import PENDING, SENDING

log = logging.getLogger("relend.desk")

SOCKETS_PER_BORROWER = 5
MAX_ID = 2**63 - 1  # the largest message id any database here stores
RETRY_AFTER_ERROR = 5  # seconds: a frame the desk failed to handle may be sent again then

router = APIRouter()


@router.websocket("/ws/chat")
async def chat_socket(socket: WebSocket, context: Context) -> None:
    try:
        claims = verify(token_from_subprotocols(socket), context.app_keys, auth.BORROWER)
        borrower_id = str(claims["borrower_id"])
        locale = str(claims.get("locale") or "zh-CN")
        if not auth.BORROWER_ID.match(borrower_id) or not auth.LOCALE.match(locale):
            raise InvalidToken("bad borrower id or locale")
    except (InvalidToken, KeyError):
        await accept(socket)  # a close before accepting is an HTTP 403: no 4401 for the page
        await socket.close(code=4401)
        return
    await accept(socket)
    with context.sessions() as session:
        conversation = service.open_conversation(session, borrower_id, locale, utc_now())
        conversation_id = conversation.id
    hub = context.hub
    if len(hub.borrowers.get(conversation_id, ())) >= SOCKETS_PER_BORROWER:
        await socket.close(code=4429)  # too many open chats for one borrower
        return
    try:
        await socket.send_json({"type": "session", "conversation_id": conversation_id,
                                "borrower_id": borrower_id, "locale": locale,
                                "max_chars": context.settings.max_message_chars})
        # registered only now, so that no live frame reaches the page before its session frame
        # (what it missed in between comes with the history that answers its ``hello``)
        hub.add_borrower(conversation_id, socket)
        # turns a desk that stopped left behind run now, not only when the page resends
        context.turns.resume_conversation(conversation_id)
        while True:
            data = await receive_frame(socket, context.settings.ws_max_bytes)
            try:
                await handle_frame(context, socket, conversation_id, borrower_id, data)
            except WebSocketDisconnect:
                raise
            except Exception:
                log.exception("conversation %s: a chat frame could not be handled",
                              conversation_id)
                client_id = valid_client_id(data.get("client_id")) \
                    if isinstance(data, dict) else None
                await socket.send_json({"type": "error", "code": "unavailable",
                                        "retry_after": RETRY_AFTER_ERROR,
                                        **({"client_id": client_id} if client_id else {})})
    except WebSocketDisconnect:
        pass
    finally:
        hub.remove_borrower(conversation_id, socket)


async def handle_frame(context: DeskContext, socket: WebSocket, conversation_id: str,
                       borrower_id: str, data: dict[str, Any] | BadFrame) -> None:
    wait = context.frame_rate.take(borrower_id)
    if isinstance(data, BadFrame) or wait:
        await socket.send_json(refusal(data, wait))
        return
    if data.get("type") == "hello":
        after = data.get("after", 0)
        after = 0 if after is None else after
        if type(after) is not int or not 0 <= after <= MAX_ID:  # a bool is no id either
            await socket.send_json({"type": "error", "code": "bad_frame"})
            return
        with context.sessions() as session:
            history = [service.message_dict(m) for m in
                       service.messages_after(session, conversation_id, after)]
            # where the handoff stands now: a reloaded page must not rely on live frames
            state = handoffs.handoff_state(session, conversation_id)
        await socket.send_json({"type": "history", "messages": history, "handoff": state})
    elif data.get("type") == "message":
        await handle_borrower_message(context, socket, conversation_id, data, borrower_id)
    else:
        await socket.send_json({"type": "error", "code": "unknown_type"})


def refusal(data: dict[str, Any] | BadFrame, wait: float) -> dict[str, Any]:
    """The error frame for a frame refused before it is read as a message."""
    if isinstance(data, BadFrame):
        return data.error()
    frame: dict[str, Any] = {"type": "error", "code": "rate_limited",
                             "retry_after": round(wait, 1)}
    client_id = valid_client_id(data.get("client_id"))
    if client_id:
        frame["client_id"] = client_id
    return frame


async def handle_borrower_message(context: DeskContext, socket: WebSocket, conversation_id: str,
                                  data: dict[str, Any], borrower_id: str) -> None:
    text = data.get("text")
    client_id = valid_client_id(data.get("client_id"))
    if client_id is None:
        await socket.send_json({"type": "error", "code": "bad_client_id"})
        return
    limit = context.settings.max_message_chars
    if isinstance(text, str) and len(text) > limit:
        await socket.send_json({"type": "error", "code": "message_too_long",
                                "client_id": client_id, "limit": limit})
        return
    text = service.clean_text(text) if isinstance(text, str) else ""
    if not text:  # nothing left once control characters and spaces are gone
        await socket.send_json({"type": "error", "code": "empty_message",
                                "client_id": client_id})
        return
    if await acknowledge_resend(context, socket, conversation_id, client_id):
        return
    wait = context.borrower_rate.take(borrower_id)
    if wait:
        await socket.send_json({"type": "error", "code": "rate_limited",
                                "client_id": client_id, "retry_after": round(wait, 1)})
        return
    with context.sessions() as session:
        message, created = service.add_message(session, conversation_id, "borrower",
                                               text, utc_now(), client_id=client_id,
                                               state=PENDING)
        payload = service.message_dict(message)
        message_id, state = message.id, message.state
    if not created:  # stored a moment ago by another socket of the borrower
        await socket.send_json({"type": "ack", "client_id": client_id, "id": message_id})
        if state in (PENDING, SENDING):
            context.turns.start(conversation_id, message_id)  # a no-op if it runs already
        return
    context.turns.hold(message_id)  # its turn starts after the ack, whatever happens to it
    try:
        await socket.send_json({"type": "ack", "client_id": client_id, "id": message_id})
        await context.hub.to_borrower(conversation_id, payload)
        await context.turns.to_case_agent(conversation_id, payload)
    finally:
        context.turns.start(conversation_id, message_id, held=True)


async def acknowledge_resend(context: DeskContext, socket: WebSocket, conversation_id: str,
                             client_id: str) -> bool:
    """A message sent again (the page reconnected before its ack): acknowledged again, and
    its turn started if a stopped desk left it undone (the turn's claim makes sure it runs
    once). False for a new message."""
    with context.sessions() as session:
        stored = session.execute(select(Message.id, Message.state).where(
            Message.conversation_id == conversation_id,
            Message.client_message_id == client_id)).first()
    if stored is None:
        return False
    await socket.send_json({"type": "ack", "client_id": client_id, "id": stored.id})
    if stored.state in (PENDING, SENDING):
        context.turns.start(conversation_id, stored.id)
    return True
