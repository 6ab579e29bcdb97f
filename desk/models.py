"""The desk's records: conversations, every message in them, handoff cases, agents."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import declarative_base

from common.types import UTCDateTime

Base = declarative_base()


class Conversation(Base):
    """A borrower's one thread with the desk: it goes on across reconnects, handoffs and
    closed cases (an agent closing a case hands the same conversation back to the bot)."""

    __tablename__ = "conversations"

    id = Column(String(40), primary_key=True)  # the Rasa sender id
    borrower_id = Column(String(64), nullable=False, index=True)
    locale = Column(String(10), nullable=False, default="zh-CN")
    owner = Column(String(10), nullable=False, default="bot")  # bot | agent
    created_at = Column(UTCDateTime, nullable=False)
    updated_at = Column(UTCDateTime, nullable=False)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "client_message_id", name="uq_messages_client_id"),
    )

    id = Column(Integer, primary_key=True, autoincrement=True)  # also the replay cursor
    conversation_id = Column(String(40), ForeignKey("conversations.id"), nullable=False,
                             index=True)
    sender = Column(String(10), nullable=False)  # borrower | bot | agent | system
    agent_name = Column(String(80), nullable=True)
    text = Column(Text, nullable=False)
    buttons = Column(JSON, nullable=True)
    client_message_id = Column(String(64), nullable=True)
    created_at = Column(UTCDateTime, nullable=False)
    # set when retention replaced the raw text with its masked form (RELEND_DESK_RAW_TEXT_DAYS)
    masked_at = Column(UTCDateTime, nullable=True)
    # a borrower message's turn (desk/turns.py): pending (stored and acked) -> sending (with
    # the assistant) -> done, or failed (the assistant did not answer; replayed when it is
    # back). Null for the other senders and for messages stored before migration 0004.
    state = Column(String(10), nullable=True, index=True)
    state_at = Column(UTCDateTime, nullable=True)  # when ``state`` last changed
    # when the desk first forwarded it to the assistant: where to look in Rasa's tracker
    forwarded_at = Column(UTCDateTime, nullable=True)


class Case(Base):
    """A handoff: what the bot knew, who has it, and where it stands."""

    __tablename__ = "cases"

    id = Column(Integer, primary_key=True, autoincrement=True)
    conversation_id = Column(String(40), ForeignKey("conversations.id"), nullable=False,
                             index=True)
    borrower_id = Column(String(64), nullable=False)
    language = Column(String(5), nullable=False)
    reason = Column(String(60), nullable=False)
    # masked context from the bot: topics, decision, appeal ids, transcript
    context = Column(JSON, nullable=False)
    # waiting | claimed | returned | closed
    status = Column(String(10), nullable=False, default="waiting")
    claimed_by = Column(Integer, ForeignKey("agents.id"), nullable=True)
    created_at = Column(UTCDateTime, nullable=False)
    claimed_at = Column(UTCDateTime, nullable=True)
    ended_at = Column(UTCDateTime, nullable=True)
    return_note = Column(Text, nullable=True)


class Note(Base):
    """An internal note on a case: agents only, never shown to the borrower."""

    __tablename__ = "notes"

    id = Column(Integer, primary_key=True, autoincrement=True)
    case_id = Column(Integer, ForeignKey("cases.id"), nullable=False, index=True)
    agent_id = Column(Integer, ForeignKey("agents.id"), nullable=False)
    text = Column(Text, nullable=False)
    created_at = Column(UTCDateTime, nullable=False)


class Agent(Base):
    __tablename__ = "agents"

    id = Column(Integer, primary_key=True, autoincrement=True)
    username = Column(String(40), nullable=False, unique=True)
    display_name = Column(String(80), nullable=False)
    password_hash = Column(String(200), nullable=False)
    role = Column(String(12), nullable=False, default="agent")  # agent | supervisor
    # in every token the agent holds; logout bumps it, which revokes them all
    token_version = Column(Integer, nullable=False, default=0)
    active = Column(Boolean, nullable=False, default=True)


class CannedReply(Base):
    __tablename__ = "canned_replies"

    id = Column(Integer, primary_key=True, autoincrement=True)
    title = Column(String(80), nullable=False)
    text_zh = Column(Text, nullable=False)
    text_en = Column(Text, nullable=False)
