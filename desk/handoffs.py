"""What the borrower's chat shows of a handoff, and the case's context as the bot learns more.

**The handoff state** of a conversation, as the chat page reads it:

- ``{"state": "bot"}``: no open case, the assistant answers;
- ``{"state": "waiting", "position": n}``: a case waits for a person; ``n`` is its place
  among the waiting cases, oldest first (1: the next one an agent takes);
- ``{"state": "agent", "agent_name": name}``: an agent has claimed the case.

The desk pushes it as a ``handoff`` frame (``{"type": "handoff", ...}``) whenever it changes
-- a case opens, an agent claims it (and every waiting borrower behind it moves up), the case
is returned, closed or handed back when the assistant is back -- and puts it in the
``history`` frame that answers every ``hello``, so a reloaded or reconnected page starts from
the current state, not from the last live frame it happened to see.

``waiting`` carries ``expected_minutes`` only when the desk can estimate honestly: the median
time from a case opening to an agent claiming it, over the last ``ESTIMATE_CASES`` cases
claimed in the last ``ESTIMATE_HOURS`` hours, and only when there are at least
``ESTIMATE_MIN_CASES`` of them; minus what this case has waited already. No figure at all
otherwise (too few recent cases, or this case has waited longer than the median).

**A person joining or leaving** is stored as a system message in the conversation, in the
language of the borrower's latest message that is clearly Chinese or English, else the app's
locale (the assistant's reply-language rule, docs/nlu-labelling.md; one detection shared with
it, ``common.language``), in the transaction that claims or ends the case: it is replayed with the
history on any device, and agents read it in the transcript.

**The case's context** is what the bot knew at handoff. When the assistant checks the
account again while the case is open (an agent hands the conversation back with a note, or
runs the check), the action server sends the new decision (``POST
/internal/conversations/{id}/decision``); the case keeps it, masked, and every console hears
``{"type": "case_context", "case_id": n}`` (no content: a console that shows the case reads it
again through the API, which checks who may read it).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from common.language import reply_language
from common.texts import languages
from common.texts import text as catalog_text

from . import service
from .hub import Hub
from .masking import mask, mask_text
from .models import Agent, Case, Conversation, Message

BOT, WAITING, AGENT = "bot", "waiting", "agent"

# the waiting estimate (see the module's docstring): the last cases claimed, how recent they
# must be, and how many there must be at least; fewer, and the borrower sees only the place
ESTIMATE_CASES = 20
ESTIMATE_HOURS = 3
ESTIMATE_MIN_CASES = 5
# how far back the desk looks for a message of the borrower's that is clearly in a language
LANGUAGE_MESSAGES = 20

# an agent's display name "李娜 Li Na": the Chinese name, then the Latin one (chat.js does
# the same for the page)
_TWO_NAMES = re.compile(r"^([\u3400-\u9fff·]+)\s+([A-Za-z].*)$")


def waiting_positions(session: Session) -> dict[str, int]:
    """Each waiting case's conversation and its place in the queue (1: next)."""
    rows = session.execute(select(Case.conversation_id).where(Case.status == "waiting")
                           .order_by(Case.created_at, Case.id)).scalars()
    return {conversation_id: n for n, conversation_id in enumerate(rows, 1)}


def typical_wait(session: Session, now: datetime) -> float | None:
    """The median seconds from a case opening to its claim, over the last ``ESTIMATE_CASES``
    cases claimed in the last ``ESTIMATE_HOURS`` hours; None with fewer than
    ``ESTIMATE_MIN_CASES`` of them (no basis for a figure)."""
    rows = session.execute(
        select(Case.created_at, Case.claimed_at)
        .where(Case.claimed_at.is_not(None),
               Case.claimed_at >= now - timedelta(hours=ESTIMATE_HOURS))
        .order_by(Case.claimed_at.desc()).limit(ESTIMATE_CASES)).all()
    waits = [(claimed - opened).total_seconds() for opened, claimed in rows
             if claimed >= opened]
    return median(waits) if len(waits) >= ESTIMATE_MIN_CASES else None


def expected_minutes(typical: float | None, opened: datetime, now: datetime) -> int | None:
    """Minutes left for a case opened at ``opened`` (at least 1), or None: no estimate, or
    it has waited longer than the typical case already (a figure then would be a guess)."""
    if typical is None:
        return None
    left = typical - (now - opened).total_seconds()
    return max(1, math.ceil(left / 60)) if left > 0 else None


def _waiting(position: int | None, minutes: int | None) -> dict[str, Any]:
    state: dict[str, Any] = {"state": WAITING, "position": position}
    if minutes is not None:
        state["expected_minutes"] = minutes
    return state


def handoff_state(session: Session, conversation_id: str,
                  now: datetime | None = None) -> dict[str, Any]:
    """The conversation's handoff state (see the module's docstring)."""
    case = service.open_case_for(session, conversation_id)
    if case is None:
        return {"state": BOT}
    if case.status == "claimed":
        agent = session.get(Agent, case.claimed_by) if case.claimed_by else None
        return {"state": AGENT, "agent_name": agent.display_name if agent else None}
    now = now or service.utc_now()
    return _waiting(waiting_positions(session).get(conversation_id),
                    expected_minutes(typical_wait(session, now), case.created_at, now))


async def publish(hub: Hub, sessions: sessionmaker[Session], conversation_id: str | None,
                  *, queue_moved: bool = False) -> None:
    """Tell a conversation's borrower its handoff state; with ``queue_moved`` (a waiting case
    was claimed or closed), also every waiting borrower their new place in the queue."""
    states: dict[str, dict[str, Any]] = {}
    now = service.utc_now()
    with sessions() as session:
        if queue_moved:
            typical = typical_wait(session, now)
            rows = session.execute(select(Case.conversation_id, Case.created_at)
                                   .where(Case.status == "waiting")
                                   .order_by(Case.created_at, Case.id)).all()
            for position, (waiting, opened) in enumerate(rows, 1):
                states[waiting] = _waiting(position, expected_minutes(typical, opened, now))
        if conversation_id is not None:
            states[conversation_id] = handoff_state(session, conversation_id, now)
    for target, state in states.items():
        await hub.to_borrower(target, {"type": "handoff", **state})


def update_decision(session: Session, case: Case, decision: dict[str, Any] | None,
                    backend_failed: bool) -> None:
    """The assistant checked the account again while the case is open: the case shows the new
    decision (masked, like everything agents see); a failed check keeps the last decision and
    says that it may be stale."""
    context = dict(case.context or {})
    if decision is not None:
        context["decision"] = mask({k: v for k, v in decision.items()
                                    if not str(k).startswith("_")})
    context["backend_failed"] = bool(backend_failed)
    case.context = context  # a new dict: the JSON column sees the change
    session.commit()


def context_frame(case_id: int) -> dict[str, Any]:
    """What every console hears when a case's context changed (no content)."""
    return {"type": "case_context", "case_id": case_id}


# ---- a person joins or leaves: a system message in the conversation ---------------------------


def name_in(display_name: str | None, lang: str) -> str | None:
    """An agent's name as the borrower reads it in ``lang`` ("李娜 Li Na": 李娜 / Li Na)."""
    name = (display_name or "").strip()
    two = _TWO_NAMES.match(name)
    if two is None:
        return name or None
    return two.group(2) if lang == "en" else two.group(1)


def conversation_language(session: Session, conversation_id: str) -> str:
    """The language the desk writes its own lines to this borrower in: the reply-language
    rule (``common.language.reply_language``, the same detection as the assistant's) over
    the borrower's latest ``LANGUAGE_MESSAGES`` messages in this conversation, else the
    conversation's locale (the app's), else Chinese."""
    conversation = session.get(Conversation, conversation_id)
    written = session.execute(
        select(Message.text).where(Message.conversation_id == conversation_id,
                                   Message.sender == "borrower",
                                   Message.masked_at.is_(None))
        .order_by(Message.id.desc()).limit(LANGUAGE_MESSAGES)).scalars()
    lang = reply_language(conversation.locale if conversation is not None else None, written)
    return lang if lang in languages() else "zh"


def _system_message(session: Session, conversation_id: str, text: str, now: datetime
                    ) -> Message:
    """A system message added to the session (committed by the caller, with the case)."""
    message = Message(conversation_id=conversation_id, sender="system", text=text,
                      created_at=now)
    session.add(message)
    session.execute(update(Conversation).where(Conversation.id == conversation_id)
                    .values(updated_at=now))
    return message


def claim(session: Session, case_id: int, agent_id: int, now: datetime
          ) -> tuple[Case, dict[str, Any] | None]:
    """``service.claim`` (atomic: of two agents, exactly one wins), and in the same
    transaction, for the winner, the line "a person joined" in the conversation. Returns the
    case and that message's frame (None when this agent had the case already)."""
    won = session.execute(update(Case).where(Case.id == case_id, Case.status == "waiting")
                          .values(status="claimed", claimed_by=agent_id, claimed_at=now)
                          .execution_options(synchronize_session=False)).rowcount == 1
    message = None
    if won:
        case = session.get(Case, case_id)
        lang = conversation_language(session, case.conversation_id)
        name = name_in((session.get(Agent, agent_id) or Agent()).display_name, lang)
        text = (catalog_text("desk.agent_joined", lang, name=name) if name
                else catalog_text("desk.agent_joined_anon", lang))
        message = _system_message(session, case.conversation_id, text, now)
    session.commit()
    case = session.get(Case, case_id)
    if case is None:
        raise service.DeskError(404, "case_not_found", "No such case.")
    if not won and (case.status != "claimed" or case.claimed_by != agent_id):
        raise service.DeskError(409, "already_claimed",
                                "Another agent has already claimed this case.")
    return case, service.message_dict(message) if message is not None else None


def end(session: Session, case: Case, status: str, now: datetime, note: str | None = None
        ) -> dict[str, Any] | None:
    """``service.end_case``, and when a person had the case, in the same transaction the line
    "the person left, the assistant is back" in the conversation (its frame; else None)."""
    message = None
    if case.status == "claimed":
        lang = conversation_language(session, case.conversation_id)
        message = _system_message(session, case.conversation_id,
                                  catalog_text("desk.agent_left", lang), now)
    service.end_case(session, case, status, now, note)  # commits the line with the case
    return service.message_dict(message) if message is not None else None


async def tell(hub: Hub, conversation_id: str, agent_id: int | None,
               frame: dict[str, Any] | None) -> None:
    """A join/leave line to the borrower's chat and to the agent's console (masked there,
    like every message agents see)."""
    if frame is None:
        return
    await hub.to_borrower(conversation_id, frame)
    if agent_id is not None:
        await hub.to_agent(agent_id, {**frame, "text": mask_text(frame["text"])})
