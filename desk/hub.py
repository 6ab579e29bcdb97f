"""Live connections: borrowers' chat sockets by conversation, and agents' console sockets by
agent (so a live message reaches only the agent working on it).

In-process only: one desk instance holds a conversation's sockets (see docs/desk.md for
running several instances). Empty entries are removed, so the maps hold only live sockets.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from fastapi import WebSocket

log = logging.getLogger("relend.desk.hub")


class Hub:
    def __init__(self) -> None:
        self.borrowers: dict[str, set[WebSocket]] = {}
        self.agents: dict[WebSocket, int] = {}

    def add_borrower(self, conversation_id: str, socket: WebSocket) -> None:
        self.borrowers.setdefault(conversation_id, set()).add(socket)

    def remove_borrower(self, conversation_id: str, socket: WebSocket) -> None:
        sockets = self.borrowers.get(conversation_id)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self.borrowers[conversation_id]

    def add_agent(self, agent_id: int, socket: WebSocket) -> None:
        self.agents[socket] = agent_id

    def remove_agent(self, socket: WebSocket) -> None:
        self.agents.pop(socket, None)

    async def _send(self, sockets: list[WebSocket], payload: dict[str, Any]) -> list[WebSocket]:
        """Send to each; returns the sockets that failed (closed here)."""
        failed = []
        for socket in sockets:
            try:
                await socket.send_json(payload)
            except Exception:
                failed.append(socket)
                with contextlib.suppress(Exception):
                    await socket.close()
        return failed

    async def to_borrower(self, conversation_id: str, payload: dict[str, Any]) -> None:
        for socket in await self._send(list(self.borrowers.get(conversation_id, ())), payload):
            self.remove_borrower(conversation_id, socket)

    async def to_agent(self, agent_id: int, payload: dict[str, Any]) -> None:
        sockets = [s for s, owner in list(self.agents.items()) if owner == agent_id]
        for socket in await self._send(sockets, payload):
            self.remove_agent(socket)

    async def to_agents(self, payload: dict[str, Any]) -> None:
        """Queue updates (no content) go to every agent."""
        for socket in await self._send(list(self.agents), payload):
            self.remove_agent(socket)

    async def disconnect_agent(self, agent_id: int) -> None:
        """After logout: the revoked tokens' sockets are closed (4401: sign in again)."""
        for socket in [s for s, owner in list(self.agents.items()) if owner == agent_id]:
            self.remove_agent(socket)
            with contextlib.suppress(Exception):
                await socket.close(code=4401)
