"""Live connections: borrowers' chat sockets by conversation, and agents' console sockets.

In-process only: one desk instance holds a conversation's sockets (see docs/desk.md for
running several instances).
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from typing import Any

from fastapi import WebSocket

log = logging.getLogger("relend.desk.hub")


class Hub:
    def __init__(self) -> None:
        self.borrowers: dict[str, set[WebSocket]] = defaultdict(set)
        self.agents: set[WebSocket] = set()

    async def _send(self, sockets: set[WebSocket], payload: dict[str, Any]) -> None:
        for socket in list(sockets):
            try:
                await socket.send_json(payload)
            except Exception:
                sockets.discard(socket)
                with contextlib.suppress(Exception):
                    await socket.close()

    async def to_borrower(self, conversation_id: str, payload: dict[str, Any]) -> None:
        await self._send(self.borrowers[conversation_id], payload)

    async def to_agents(self, payload: dict[str, Any]) -> None:
        await self._send(self.agents, payload)
