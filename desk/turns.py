"""The assistant's turns: a borrower message goes to Rasa and its replies to the chat, the
assistant resumes after a handoff, and a silent assistant brings in a person.

Plain code, no routes: the borrower socket starts a turn, the agents' routes resume the bot.
Each database use is a short session of its own: none is held while Rasa is asked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from . import service
from .hub import Hub
from .masking import mask_text
from .models import Conversation
from .rasa_client import AssistantUnavailable, RasaClient
from .service import utc_now

log = logging.getLogger("relend.desk")

ASSISTANT_DOWN_ZH = "抱歉，助手暂时没有响应。您的消息已经保存，我们已请人工客服接手，请稍候。"
ASSISTANT_DOWN_EN = ("Sorry, the assistant isn't responding right now. Your message is saved and "
                     "a colleague will take over shortly.")


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


class Turns:
    def __init__(self, sessions: sessionmaker[Session], hub: Hub, rasa: RasaClient,
                 locks: ConversationLocks) -> None:
        self.sessions = sessions
        self.hub = hub
        self.rasa = rasa
        self.locks = locks
        self._running: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    def start(self, conversation_id: str, message_id: int, text: str,
              metadata: dict[str, Any]) -> None:
        """Run the borrower's turn in the background (the socket goes on reading frames)."""
        turn = asyncio.get_running_loop().create_task(
            self.borrower_turn(conversation_id, message_id, text, metadata))
        self._running.add(turn)
        turn.add_done_callback(self._running.discard)

    async def borrower_turn(self, conversation_id: str, message_id: int, text: str,
                            metadata: dict[str, Any]) -> None:
        """Forward one borrower message to the assistant and deliver what it says; then a
        ``turn_done`` frame tells clients (and test runners) that nothing more will follow."""
        try:
            await self._borrower_turn(conversation_id, text, metadata)
        finally:
            await self.hub.to_borrower(conversation_id, {"type": "turn_done",
                                                         "message_id": message_id})

    async def _borrower_turn(self, conversation_id: str, text: str,
                             metadata: dict[str, Any]) -> None:
        async with self.locks(conversation_id):
            with self.sessions() as session:
                owner_before = session.get(Conversation, conversation_id).owner
            if owner_before == "bot":
                await self.hub.to_borrower(conversation_id, {"type": "typing", "on": True})
            try:
                replies = await self.rasa.send(conversation_id, text, metadata)
            except AssistantUnavailable:
                replies = None
            await self.hub.to_borrower(conversation_id, {"type": "typing", "on": False})
            if replies is None:
                if owner_before == "bot":  # with an agent in charge, nobody waits for the bot
                    await self.assistant_down(conversation_id)
                return
            if owner_before != "bot":
                if replies:
                    log.error("assistant replied while an agent owns %s; dropped %d message(s)",
                              conversation_id, len(replies))
                return
            await self.deliver_bot_messages(conversation_id, replies)

    async def deliver_bot_messages(self, conversation_id: str,
                                   replies: list[dict[str, Any]]) -> None:
        for reply in replies:
            text = reply.get("text")
            if not isinstance(text, str) or not text:
                continue
            buttons = [{"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
                       for b in reply.get("buttons") or [] if isinstance(b, dict)]
            with self.sessions() as session:
                message, _ = service.add_message(session, conversation_id, "bot", text,
                                                 utc_now(), buttons=buttons)
                payload = service.message_dict(message)
            await self.hub.to_borrower(conversation_id, payload)
            await self.to_case_agent(conversation_id, payload)

    async def to_case_agent(self, conversation_id: str, payload: dict[str, Any]) -> None:
        """A live message goes, masked, to the agent who took the conversation's case, if any."""
        with self.sessions() as session:
            case = service.open_case_for(session, conversation_id)
            claimer = case.claimed_by if case is not None else None
        if claimer is not None:
            await self.hub.to_agent(claimer, {**payload, "text": mask_text(payload["text"])})

    async def assistant_down(self, conversation_id: str) -> None:
        """The assistant did not answer: keep the message, tell the borrower, bring a person."""
        with self.sessions() as session:
            conversation = session.get(Conversation, conversation_id)
            lang = conversation.locale[:2] if conversation else "zh"
            transcript = [{"sender": m.sender, "text": m.text}
                          for m in service.messages_after(session, conversation_id, 0)[-50:]]
            if conversation is not None and conversation.owner == "bot":
                service.create_case(session, {"conversation_id": conversation_id,
                                              "language": lang, "reason": "assistant_unavailable",
                                              "transcript": transcript}, utc_now())
                await self.hub.to_agents({"type": "queue"})
            text = ASSISTANT_DOWN_ZH if lang == "zh" else ASSISTANT_DOWN_EN
            message, _ = service.add_message(session, conversation_id, "system", text, utc_now())
            payload = service.message_dict(message)
        await self.hub.to_borrower(conversation_id, payload)

    async def resume_bot(self, conversation_id: str, note: str | None) -> list[dict[str, Any]]:
        """Un-pause the assistant (with the agent's note) and let it speak first; the caller
        changes ownership only once this worked, so a failure leaves the case as it was."""
        with self.sessions() as session:
            conversation = session.get(Conversation, conversation_id)
            borrower_id, locale = conversation.borrower_id, conversation.locale
        events = [{"event": "resume"},
                  {"event": "slot", "name": "handoff_active", "value": False},
                  {"event": "slot", "name": "borrower_id", "value": borrower_id},
                  {"event": "slot", "name": "language", "value": locale[:2]},
                  {"event": "slot", "name": "agent_note", "value": note}]
        async with self.locks(conversation_id):
            await self.rasa.append_events(conversation_id, events)
            return await self.rasa.execute(conversation_id, "action_resume_after_handoff")
