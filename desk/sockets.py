"""What the borrower's chat socket and the agent console's socket share: the handshake (the
token rides in a subprotocol, never in a URL) and reading one JSON frame."""

from __future__ import annotations

import json
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

SUBPROTOCOL = "relend.v1"  # a page offers it with "auth.<token>": no token in any URL


def token_from_subprotocols(socket: WebSocket) -> str:
    for offered in socket.scope.get("subprotocols") or []:
        if offered.startswith("auth."):
            return offered[len("auth."):]
    return ""


async def accept(socket: WebSocket) -> None:
    offered = socket.scope.get("subprotocols") or []
    await socket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)


async def receive_frame(socket: WebSocket, max_bytes: int) -> dict[str, Any] | str:
    """The next JSON object, or an error code for a frame that is not one. Raises
    WebSocketDisconnect; ``"binary"`` and ``"not_json"`` close the socket."""
    message = await socket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if text is None:
        return "binary"
    if len(text) > max_bytes:
        return "frame_too_large"
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return "not_json"
    return data if isinstance(data, dict) else "bad_frame"
