"""The desk's records: conversations, every message in them, handoff cases, agents."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import declarative_base
from sqlalchemy.sql import text

from common.types import UTCDateTime

Base = declarative_base()

# a case is open while it waits for an agent or an agent has it (desk/service.py: OPEN_CASE)
OPEN_CASE_WHERE = text("status IN ('waiting', 'claimed')")


class Conversation(Base):
    """A borrower's one thread with the desk: it goes on across reconnects, handoffs and
    closed cases (an agent closing a case hands the same conversation back to the bot)."""

    __tablename__ = "conversations"

    id = Column(String(40), primary_key=True)  # the Rasa sender id
    # one conversation per borrower, enforced by the database (two sockets at once, on one
    # desk or two, must not open two)
    borrower_id = Column(String(64), nullable=False, index=True, unique=True)
    locale = Column(String(10), nullable=False, default="zh-CN")
    owner = Column(String(10), nullable=False, default="bot")  # bot | agent
    created_at = Column(UTCDateTime, nullable=False)
    updated_at = Column(UTCDateTime, nullable=False)
    # the turn lease (desk/turns.py): which desk process runs this conversation's turns now,
    # and until when, unless it renews the lease (null: nobody)
    turn_owner = Column(String(40), nullable=True)
    turn_lease_until = Column(UTCDateTime, nullable=True)


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
    # a bot reply's picture of the borrower's situation (common/situation.py), validated
    attachment = Column(JSON, nullable=True)
    # a proactive notice (desk/notices.py): the kind of change it told, so the app can show
    # it as a notice; null for every other message
    notice = Column(String(40), nullable=True)
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
    """A handoff: what the bot knew, who has it, and where it stands. At most one open case
    per conversation, enforced by the database (a partial unique index)."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("uq_cases_open_conversation", "conversation_id", unique=True,
              sqlite_where=OPEN_CASE_WHERE, postgresql_where=OPEN_CASE_WHERE),
    )

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


class Notice(Base):
    """A change the borrower was waiting for (the backend's outbox, through the notifier,
    ``notices/``), once per change ``key``: the unique key is the notifier's exactly-once --
    it is stored in the transaction that stores the chat message it became (desk/notices.py).

    ``state``: ``waiting`` (no conversation yet, or held until ``deliver_after``: quiet
    hours), ``delivered`` (``message_id``: the bot's message in the chat), ``to_agent`` (an
    agent had the conversation: shown on the case instead, ``case_id``)."""

    __tablename__ = "notices"

    id = Column(Integer, primary_key=True, autoincrement=True)
    key = Column(String(200), nullable=False, unique=True)
    outbox_id = Column(Integer, nullable=True, index=True)  # the feed's cursor
    borrower_id = Column(String(64), nullable=False, index=True)
    kind = Column(String(40), nullable=False)
    data = Column(JSON, nullable=False)
    # the borrower's time zone (or the lender's) and a decision checked when it arrived
    timezone = Column(String(64), nullable=True)
    decision = Column(JSON, nullable=True)
    occurred_at = Column(UTCDateTime, nullable=True)
    received_at = Column(UTCDateTime, nullable=False)
    deliver_after = Column(UTCDateTime, nullable=True)
    state = Column(String(10), nullable=False, index=True)
    state_at = Column(UTCDateTime, nullable=False)
    conversation_id = Column(String(40), ForeignKey("conversations.id"), nullable=True)
    message_id = Column(Integer, ForeignKey("messages.id"), nullable=True)
    case_id = Column(Integer, ForeignKey("cases.id"), nullable=True)
