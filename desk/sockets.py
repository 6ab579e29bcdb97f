"""What the borrower's chat socket and the agent console's socket share: the handshake (the
token rides in a subprotocol, never in a URL) and reading one JSON frame.

A frame that is not a JSON object is never a reason to close a socket: ``receive_frame``
returns a ``BadFrame`` (with the message's client id when one can be read in it), the socket
answers it with an error frame and goes on. Only the WebSocket layer itself closes on frames
it cannot carry: a text frame that is not UTF-8 (1007) or one over ``RELEND_DESK_WS_MAX_BYTES``
(1009), before the desk sees them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

SUBPROTOCOL = "relend.v1"  # a page offers it with "auth.<token>": no token in any URL
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
# a client id in a frame that does not parse: enough for the page to know which message
_CLIENT_ID_IN_TEXT = re.compile(r'"client_id"\s*:\s*"([A-Za-z0-9_-]{1,64})"')


@dataclass(frozen=True)
class BadFrame:
    """A frame that is not a JSON object: ``not_json`` (not JSON, or nested too deeply),
    ``binary_frame``, ``frame_too_large``, ``bad_frame`` (JSON, but not an object)."""

    code: str
    client_id: str | None = None

    def error(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "error", "code": self.code}
        if self.client_id:
            frame["client_id"] = self.client_id
        return frame


def token_from_subprotocols(socket: WebSocket) -> str:
    for offered in socket.scope.get("subprotocols") or []:
        if offered.startswith("auth."):
            return offered[len("auth."):]
    return ""


async def accept(socket: WebSocket) -> None:
    offered = socket.scope.get("subprotocols") or []
    await socket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)


def valid_client_id(value: Any) -> str | None:
    """``value`` if it is a client id the desk would accept (safe to echo), else None."""
    return value if isinstance(value, str) and CLIENT_ID.match(value) else None


def _client_id_in(text: str) -> str | None:
    found = _CLIENT_ID_IN_TEXT.search(text)
    return found.group(1) if found else None


async def receive_frame(socket: WebSocket, max_bytes: int) -> dict[str, Any] | BadFrame:
    """The next JSON object, or a ``BadFrame`` for a frame that is not one. Raises
    WebSocketDisconnect."""
    message = await socket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if text is None:
        raw = message.get("bytes") or b""
        return BadFrame("binary_frame", _client_id_in(raw[:max_bytes].decode("utf-8", "replace")))
    if len(text) > max_bytes:
        return BadFrame("frame_too_large", _client_id_in(text[:max_bytes]))
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, a huge number, nested too deeply
        return BadFrame("not_json", _client_id_in(text))
    return data if isinstance(data, dict) else BadFrame("bad_frame")
