"""The borrower's chat socket: who is chatting comes from the app's signed token; every message
is stored, acknowledged and echoed, then the assistant's turn runs (desk/turns.py)."""

import re
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from .. import auth, service
from ..auth import InvalidToken, verify
from ..context import DeskContext
from ..deps import Context
from ..masking import mask_text
from ..service import utc_now
from ..sockets import accept, receive_frame, token_from_subprotocols

CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
SOCKETS_PER_BORROWER = 5

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
    hub.add_borrower(conversation_id, socket)
    await socket.send_json({"type": "session", "conversation_id": conversation_id,
                            "borrower_id": borrower_id, "locale": locale})
    metadata = {"borrower_id": borrower_id, "locale": locale}
    try:
        while True:
            data = await receive_frame(socket, context.settings.ws_max_bytes)
            if data in ("binary", "not_json"):
                await socket.close(code=4400)
                return
            wait = context.frame_rate.take(borrower_id)
            if isinstance(data, str) or wait:
                await socket.send_json(refusal(data, wait))
                continue
            if data.get("type") == "hello":
                after = data.get("after") if isinstance(data.get("after"), int) else 0
                with context.sessions() as session:
                    history = [service.message_dict(m) for m in
                               service.messages_after(session, conversation_id, after)]
                await socket.send_json({"type": "history", "messages": history})
            elif data.get("type") == "message":
                await handle_borrower_message(context, socket, conversation_id, data, metadata)
            else:
                await socket.send_json({"type": "error", "code": "unknown_type"})
    except WebSocketDisconnect:
        pass
    finally:
        hub.remove_borrower(conversation_id, socket)


def refusal(data: dict[str, Any] | str, wait: float) -> dict[str, Any]:
    """The error frame for a frame refused before it is read as a message."""
    if isinstance(data, str):
        return {"type": "error", "code": data}
    frame: dict[str, Any] = {"type": "error", "code": "rate_limited",
                             "retry_after": round(wait, 1)}
    if isinstance(data.get("client_id"), str):
        frame["client_id"] = data["client_id"]
    return frame


async def handle_borrower_message(context: DeskContext, socket: WebSocket, conversation_id: str,
                                  data: dict[str, Any], metadata: dict[str, Any]) -> None:
    text = data.get("text")
    client_id = data.get("client_id")
    if not isinstance(client_id, str) or not CLIENT_ID.match(client_id):
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
    with context.sessions() as session:
        if service.has_message(session, conversation_id, client_id):
            message, created = service.add_message(session, conversation_id, "borrower",
                                                   text, utc_now(), client_id=client_id)
            await socket.send_json({"type": "ack", "client_id": client_id, "id": message.id})
            return  # a resend after reconnecting: already stored and forwarded
    wait = context.borrower_rate.take(metadata["borrower_id"])
    if wait:
        await socket.send_json({"type": "error", "code": "rate_limited",
                                "client_id": client_id, "retry_after": round(wait, 1)})
        return
    with context.sessions() as session:
        message, created = service.add_message(session, conversation_id, "borrower",
                                               text, utc_now(), client_id=client_id)
        payload = service.message_dict(message)
    await socket.send_json({"type": "ack", "client_id": client_id, "id": message.id})
    if not created:
        return  # a resend after reconnecting: already stored and forwarded
    await context.hub.to_borrower(conversation_id, payload)
    await context.turns.to_case_agent(conversation_id, payload)
    # the assistant (its tracker, the event broker) never sees the raw numbers
    context.turns.start(conversation_id, message.id, mask_text(text), metadata)
