"""What the desk does with its records, independent of HTTP and sockets."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy import text as sql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .auth import hash_password
from .masking import mask, mask_text
from .models import Agent, CannedReply, Case, Conversation, Message, Note

OPEN_CASE = ("waiting", "claimed")
DEMO_DATA_LOCK = 7_246_002  # PostgreSQL advisory lock key (desk/migrations/env.py: the one before)

# sandbox only (RELEND_DESK_DEMO_AGENTS): username, display name, role
DEMO_AGENTS = (("agent1", "李娜 Li Na", "supervisor"), ("agent2", "王磊 Wang Lei", "agent"))
DEFAULT_CANNED = (
    ("问候 Greeting", "您好，我是人工客服，已经看到了您和助手的对话，我来帮您处理。",
     "Hi, I'm a member of the support team. I've read your conversation with the assistant "
     "and I'll take it from here."),
    ("正在核查 Checking", "我正在核查您的账户情况，请稍等几分钟。",
     "I'm checking your account now; this will take a few minutes."),
    ("身份已更新 ID updated", "您的身份信息已经更新完成，我把对话交还给助手，它会重新为您查询。",
     "Your ID details are updated. I'll hand you back to the assistant to check again."),
    ("结束 Closing", "还有其他问题吗？如果没有，我先结束这次对话，祝您生活愉快。",
     "Is there anything else? If not, I'll close this conversation. Take care."),
)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class DeskError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def ensure_demo_data(session: Session, password: str, *, demo_agents: bool) -> None:
    """Canned replies to start from, and in the sandbox the demo agents (idempotent; on
    PostgreSQL under a transaction's advisory lock, so desks started at once add them once)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sql("SELECT pg_advisory_xact_lock(:key)"), {"key": DEMO_DATA_LOCK})
    for username, name, role in DEMO_AGENTS if demo_agents else ():
        if session.execute(select(Agent).where(Agent.username == username)).first() is None:
            session.add(Agent(username=username, display_name=name, role=role,
                              password_hash=hash_password(password)))
    if session.execute(select(CannedReply).limit(1)).first() is None:
        for title, zh, en in DEFAULT_CANNED:
            session.add(CannedReply(title=title, text_zh=zh, text_en=en))
    session.commit()


def open_conversation(session: Session, borrower_id: str, locale: str, now: datetime
                      ) -> Conversation:
    """The borrower's conversation (there is one per borrower, a unique index says so), or a
    new one. Two sockets creating it at once, on one desk or two: one insert wins, the other
    gets the unique index's IntegrityError and takes the winner's."""
    conversation = _conversation_of(session, borrower_id)
    if conversation is None:
        conversation = Conversation(id="c-" + uuid.uuid4().hex[:24], borrower_id=borrower_id,
                                    locale=locale, owner="bot", created_at=now, updated_at=now)
        session.add(conversation)
        try:
            session.commit()
            return conversation
        except IntegrityError:
            session.rollback()
            conversation = _conversation_of(session, borrower_id)
            if conversation is None:  # not the borrower's unique index: a real error
                raise
    if conversation.locale != locale:
        conversation.locale = locale
        session.commit()
    return conversation


def _conversation_of(session: Session, borrower_id: str) -> Conversation | None:
    return session.execute(
        select(Conversation).where(Conversation.borrower_id == borrower_id)
    ).scalars().first()


# C0 and C1 controls but tab and newlines; bidirectional overrides and isolates, which could
# make a message read differently in the agent's console than what was typed
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """What is stored of a borrower's message: no control characters, no lone surrogates
    (which no database can store), no surrounding whitespace."""
    return _SURROGATE.sub("\ufffd", _CONTROL.sub("", text)).strip()


def mask_old_messages(session: Session, raw_text_days: int, now: datetime) -> int:
    """Retention: messages older than ``raw_text_days`` keep only their masked text (ID,
    phone and card numbers masked as agents see them). Returns how many were masked."""
    cutoff = now - timedelta(days=raw_text_days)
    masked = 0
    while True:
        batch = list(session.execute(
            select(Message).where(Message.created_at < cutoff, Message.masked_at.is_(None))
            .order_by(Message.id).limit(500)).scalars())
        if not batch:
            return masked
        for message in batch:
            message.text = mask_text(message.text)
            message.masked_at = now
        session.commit()
        masked += len(batch)


def add_message(session: Session, conversation_id: str, sender: str, text: str, now: datetime,
                *, buttons: list[dict[str, Any]] | None = None, client_id: str | None = None,
                agent_name: str | None = None, state: str | None = None
                ) -> tuple[Message, bool]:
    """Store a message once; a repeated client id returns the stored one (created=False).
    ``state``: a borrower message's turn state (``pending``: stored with it, so no
    acknowledged message is ever without one; desk/turns.py)."""
    # no look-up first: a repeated client id is refused by uq_messages_client_id (the socket
    # has just looked for it, acknowledge_resend), and the stored one is read then
    message = Message(conversation_id=conversation_id, sender=sender, text=text,
                      buttons=buttons or None, client_message_id=client_id,
                      agent_name=agent_name, created_at=now, state=state,
                      state_at=now if state else None)
    session.add(message)
    try:  # the insert is flushed by the update: a duplicate client id fails there
        session.execute(update(Conversation).where(Conversation.id == conversation_id)
                        .values(updated_at=now))
        session.commit()
    except IntegrityError:
        session.rollback()
        if not client_id:
            raise
        existing = session.execute(select(Message).where(
            Message.conversation_id == conversation_id,
            Message.client_message_id == client_id)).scalar_one()
        return existing, False
    return message, True


def message_dict(message: Message, *, for_agent: bool = False) -> dict[str, Any]:
    text = mask_text(message.text) if for_agent else message.text
    return {"type": "message", "id": message.id, "conversation_id": message.conversation_id,
            "sender": message.sender, "agent_name": message.agent_name, "text": text,
            "buttons": message.buttons or [], "client_id": message.client_message_id,
            "attachment": message.attachment, "notice": message.notice,
            "at": message.created_at.isoformat().replace("+00:00", "Z")}


def messages_after(session: Session, conversation_id: str, after_id: int) -> list[Message]:
    return list(session.execute(
        select(Message).where(Message.conversation_id == conversation_id, Message.id > after_id)
        .order_by(Message.id)).scalars())


def open_case_for(session: Session, conversation_id: str) -> Case | None:
    return session.execute(select(Case).where(Case.conversation_id == conversation_id,
                                              Case.status.in_(OPEN_CASE))).scalars().first()


def create_case(session: Session, payload: dict[str, Any], now: datetime) -> Case:
    """A handoff from the bot (or from the desk when the bot cannot answer). Asking twice
    never opens two cases, even from two desks at once: a partial unique index allows one
    open case per conversation, and the loser of the race gets the winner's case."""
    conversation_id = str(payload.get("conversation_id") or "")
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise DeskError(404, "conversation_not_found", "No such conversation.")
    existing = open_case_for(session, conversation_id)
    if existing is not None:
        return existing
    context = mask({k: payload.get(k) for k in (
        "topics", "decision", "appeal_ids", "transcript", "unfiled_appeal_statement",
        "backend_failed")})
    case = Case(conversation_id=conversation_id, borrower_id=conversation.borrower_id,
                language=str(payload.get("language") or conversation.locale[:2]),
                reason=str(payload.get("reason") or "borrower_asked")[:60], context=context,
                status="waiting", created_at=now)
    session.add(case)
    try:
        session.flush()  # the unique index decides here, before the owner changes
    except IntegrityError:
        session.rollback()
        existing = open_case_for(session, conversation_id)
        if existing is None:  # not the open-case index: a real error
            raise
        return existing
    conversation.owner = "agent"
    session.commit()
    return case


def case_summary(case: Case, agents: dict[int, str]) -> dict[str, Any]:
    decision = (case.context or {}).get("decision") or {}
    return {
        "case_id": case.id, "conversation_id": case.conversation_id,
        "borrower_id": case.borrower_id, "language": case.language, "reason": case.reason,
        "status": case.status, "claimed_by": agents.get(case.claimed_by or 0),
        "waiting_since": case.created_at.isoformat().replace("+00:00", "Z"),
        "primary_reason": next((r.get("code") for r in decision.get("reasons", [])
                                if r.get("blocking")), None) if decision else None,
    }


def agent_names(session: Session) -> dict[int, str]:
    return {a.id: a.display_name for a in session.execute(select(Agent)).scalars()}


def queue(session: Session) -> list[Case]:
    return list(session.execute(select(Case).where(Case.status.in_(OPEN_CASE))
                                .order_by(Case.created_at)).scalars())


def claim(session: Session, case_id: int, agent_id: int, now: datetime) -> Case:
    """Atomic: of two agents claiming at once, exactly one wins."""
    result = session.execute(update(Case).where(Case.id == case_id, Case.status == "waiting")
                             .values(status="claimed", claimed_by=agent_id, claimed_at=now))
    session.commit()
    case = session.get(Case, case_id)
    if case is None:
        raise DeskError(404, "case_not_found", "No such case.")
    if result.rowcount != 1 and (case.status != "claimed" or case.claimed_by != agent_id):
        raise DeskError(409, "already_claimed", "Another agent has already claimed this case.")
    return case


def owned_case(session: Session, case_id: int, agent_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise DeskError(404, "case_not_found", "No such case.")
    if case.status != "claimed" or case.claimed_by != agent_id:
        raise DeskError(409, "not_your_case", "Claim the case before acting on it.")
    return case


def end_case(session: Session, case: Case, status: str, now: datetime,
             note: str | None = None) -> None:
    case.status = status
    case.ended_at = now
    case.return_note = note
    conversation = session.get(Conversation, case.conversation_id)
    if conversation is not None:
        conversation.owner = "bot"
    session.commit()


def add_note(session: Session, case: Case, agent_id: int, text: str, now: datetime) -> Note:
    note = Note(case_id=case.id, agent_id=agent_id, text=text, created_at=now)
    session.add(note)
    session.commit()
    return note
