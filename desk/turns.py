"""The assistant's turns: a borrower message goes to Rasa and its replies to the chat, the
assistant resumes after a handoff, a silent assistant brings in a person, and the bot takes a
conversation back when the assistant is back.

Plain code, no routes: the borrower socket starts a turn, the agents' routes resume the bot,
the desk's lifespan runs ``watch`` (stale turns, the assistant coming back). Each database use
is a short session of its own: none is held while Rasa is asked.

**A borrower message's turn state** (``Message.state``, an outbox on the message):

    pending --claim--> sending --> done      the assistant answered (or heard it while an
                                             agent owns the conversation)
                               \\-> failed    it did not answer: the borrower is told and a
                                             case is opened (reason assistant_unavailable)

A message is stored ``pending`` together with its ack. The turn *claims* it (one atomic
update, pending -> sending): of two tasks for one message (the socket's and a resend's, or a
recovery's) exactly one runs it; turns of a conversation run one at a time, in order, across
desk processes too (``ConversationLocks``: a lease on the conversation's row).
A message left ``pending``, or ``sending`` for longer than a call to Rasa may take, was
abandoned by a desk that stopped; it is run again when its borrower reconnects (pending) and
by ``sweep`` (both), which ``watch`` runs at start-up and every few seconds.

**Exactly once** means: each acknowledged message is handled by the assistant once, and what
the assistant said to it reaches the conversation once. When the desk stopped in the middle
of a turn, Rasa may already have handled the message. Before forwarding a message again, the
desk reads Rasa's tracker: if the message is there (same text, logged after the desk first
forwarded it) followed by the bot's replies, those replies are delivered and the message is
not sent again; replies are stored in the same transaction that marks the message done, so a
stop in between delivers them once. The one case left: a turn still running in Rasa when the
desk looks again (longer than ``RELEND_RASA_TIMEOUT`` after the desk first forwarded it) is
sent again, and Rasa handles it twice. The borrower sees the replies live if connected, or on
the next ``hello``; a message whose turn failed gets the assistant-down notice instead.

**Failures** (Rasa unreachable, timed out, an error, or an empty answer while the bot owns the
conversation -- Rasa answers ``200 []`` when a custom action fails) are failed turns: after
one, the desk makes sure Rasa's tracker ends with ``action_listen``, so that Rasa's circuit
breaker (ten actions since the last ``action_listen``) does not trip on every later message.
That reset comes after the turn's ``turn_done`` and is cut at ``LISTEN_RESET_TIMEOUT`` (it
holds the conversation); left undone, it is made before the next message is sent.
A conversation sent to agents only because the assistant failed goes back to the bot when the
assistant answers again and no agent has claimed the case: the oldest unanswered message is
sent again, and if that works, the case is closed, the borrower is told, and the rest are
answered in order. The background round tries that only for a conversation no desk holds at
that moment, so with several desks one try runs at a time.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from common import situation
from common.texts import text as catalog_text

from . import handoffs, service
from .hub import Hub
from .masking import mask_text
from .models import Case, Conversation, Message
from .notices import Notices
from .rasa_client import AssistantUnavailable, RasaClient
from .service import utc_now

log = logging.getLogger("relend.desk")

PENDING, SENDING, DONE, FAILED = "pending", "sending", "done", "failed"
UNAVAILABLE = "assistant_unavailable"  # the reason of a case the desk opened itself
# Rasa reads a message that starts with "/" as an intent ("/restart", "/request_human{...}");
# typed text gets the full-width solidus instead, which reads the same and means nothing
INTENT_PREFIX, NEUTRAL_PREFIX = "/", chr(0xFF0F)
# the cause logged when Rasa answers nothing at all (it does when a custom action fails)
EMPTY_ANSWER = "empty answer (custom action failed?)"
# after a failed try to hand a conversation back, wait this long before the next (seconds)
RETRY_BACK_FIRST, RETRY_BACK_MAX = 15.0, 300.0
# a conversation's turn lease across desks (ConversationLocks): renewed every third of this
# while held; a desk that died holding it blocks the conversation at most this long (seconds)
TURN_LEASE_SECONDS = 10.0
# the reset after a failed turn (``_listen_again``) holds the conversation: its calls to Rasa
# are cut at this, together (seconds); left undone, it is done before the next message is
# sent, or by a later background round (at most this many conversations a round)
LISTEN_RESET_TIMEOUT = 2.0
RESETS_PER_ROUND = 20


def forwarded_text(text: str, offered: set[str]) -> str:
    """What the assistant gets of a borrower message: a button payload the bot offered as it
    is; anything else masked (it never sees the raw numbers) and never read as an intent."""
    if text in offered:
        return text
    masked = mask_text(text)
    stripped = masked.lstrip()  # Rasa strips the text before looking for the "/"
    if stripped.startswith(INTENT_PREFIX):
        return NEUTRAL_PREFIX + stripped[len(INTENT_PREFIX):]
    return masked


def replies_in_tracker(events: list[dict[str, Any]], text: str, since: datetime
                       ) -> list[dict[str, Any]] | None:
    """The bot's replies to ``text`` if Rasa logged it at or after ``since`` and answered it;
    None when it did not (then the message must be sent again). Replies the desk logged for
    an agent (``metadata.agent``) and notices (``metadata.notice``, desk/notices.py) are not
    replies to it."""
    after = since.timestamp()
    for i, event in enumerate(events):
        if event.get("event") != "user" or event.get("text") != text \
                or float(event.get("timestamp") or 0) < after:
            continue
        replies = []
        for later in events[i + 1:]:
            if later.get("event") == "user":
                break
            metadata = later.get("metadata") or {}
            if later.get("event") == "bot" and later.get("text") \
                    and not metadata.get("agent") and not metadata.get("notice"):
                data = later.get("data") or {}
                replies.append({"text": later["text"], "buttons": data.get("buttons") or [],
                                "custom": data.get("custom")})
        if replies:
            return replies
    return None


def text_replies(replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bot's text replies. A ``custom`` payload of a known shape (a picture of the
    borrower's situation, common/situation.py) rides along with the text it came with --
    Rasa's channel sends it as the next message, the tracker keeps it on the same one -- as
    ``attachment``; any other payload, and one without a text before it, is dropped."""
    texts: list[dict[str, Any]] = []
    for reply in replies:
        if isinstance(reply.get("text"), str) and reply["text"]:
            texts.append({**reply, "attachment": None})
        attachment = situation.validated(reply.get("custom"))
        if attachment is not None and texts:
            texts[-1]["attachment"] = attachment
    return texts


class ConversationLocks:
    """A conversation's turns one at a time: in this process an ``asyncio.Lock`` per
    conversation (FIFO, dropped when nobody holds it, so the map holds only live
    conversations); across desk processes, with ``sessions``, a lease on the conversation's
    row (``turn_owner``, ``turn_lease_until``).

    The lease is taken with one atomic update (free, or run out: one winner), renewed every
    third of ``lease_seconds`` while held, and given back at the end. A desk that dies
    holding it blocks the conversation for at most ``lease_seconds``. A desk waiting for it
    polls (every 20 ms at first, then up to every 250 ms): contention is rare, since a
    borrower's socket is on one desk and its turns start there. No database connection is
    held while waiting or while the turn talks to Rasa."""

    def __init__(self, sessions: sessionmaker[Session] | None = None, owner: str = "",
                 *, lease_seconds: float = TURN_LEASE_SECONDS) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self.sessions = sessions
        self.owner = owner or f"desk-{uuid.uuid4().hex[:12]}"
        self.lease_seconds = lease_seconds

    @asynccontextmanager
    async def __call__(self, conversation_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(conversation_id, (asyncio.Lock(), 0))
        self._locks[conversation_id] = (lock, users + 1)
        try:
            async with lock:
                if self.sessions is None:
                    yield
                else:
                    async with self._lease(conversation_id):
                        yield
        finally:
            self._leave_lock(conversation_id)

    def _leave_lock(self, conversation_id: str) -> None:
        """One user fewer of the conversation's lock; the last one drops it."""
        lock, users = self._locks[conversation_id]
        if users <= 1:
            del self._locks[conversation_id]
        else:
            self._locks[conversation_id] = (lock, users - 1)

    @asynccontextmanager
    async def try_hold(self, conversation_id: str) -> AsyncIterator[bool]:
        """The conversation's lock if nobody holds it, in this process or on another desk,
        right now (yields True, held until the block ends); else yields False at once."""
        lock, users = self._locks.get(conversation_id, (asyncio.Lock(), 0))
        if lock.locked():
            yield False
            return
        self._locks[conversation_id] = (lock, users + 1)
        try:
            async with lock:
                if self.sessions is None:
                    yield True
                elif not self._write_lease(conversation_id):
                    yield False
                else:
                    async with self._lease(conversation_id, taken=True):
                        yield True
        finally:
            self._leave_lock(conversation_id)

    @asynccontextmanager
    async def _lease(self, conversation_id: str, *, taken: bool = False
                     ) -> AsyncIterator[None]:
        if not taken:
            await self._acquire(conversation_id)
        renewing = asyncio.get_running_loop().create_task(self._renew(conversation_id))
        try:
            yield
        finally:
            renewing.cancel()
            try:
                self._write_lease(conversation_id, release=True)
            except Exception:  # it runs out by itself
                log.exception("conversation %s: could not give back the turn lease; it runs "
                              "out in %.0f s", conversation_id, self.lease_seconds)

    def _write_lease(self, conversation_id: str, *, release: bool = False,
                     renew: bool = False) -> bool:
        """Take (free or run out), renew (ours) or give back (ours) the lease: one update."""
        now = utc_now()
        mine = Conversation.turn_owner == self.owner
        where = [Conversation.id == conversation_id]
        if release or renew:
            where.append(mine)
        else:
            where.append(or_(Conversation.turn_owner.is_(None), mine,
                             Conversation.turn_lease_until < now))
        values: dict[str, Any] = {"turn_owner": None, "turn_lease_until": None} if release \
            else {"turn_owner": self.owner,
                  "turn_lease_until": now + timedelta(seconds=self.lease_seconds)}
        with self.sessions() as session:  # type: ignore[misc]
            result = session.execute(update(Conversation).where(*where).values(**values)
                                     .execution_options(synchronize_session=False))
            if result.rowcount != 1 and not release and not renew and session.execute(
                    select(Conversation.id).where(Conversation.id == conversation_id)
            ).first() is None:
                return True  # no such conversation: nothing to hold (the turn finds out)
            session.commit()
            return result.rowcount == 1

    async def _acquire(self, conversation_id: str) -> None:
        wait, waited, told = 0.02, 0.0, False
        while not self._write_lease(conversation_id):
            if not told and waited > self.lease_seconds:
                told = True
                log.warning("conversation %s: still waiting for another desk's turn lease "
                            "after %.0f s", conversation_id, waited)
            await asyncio.sleep(wait)
            waited += wait
            wait = min(0.25, wait * 1.5)

    async def _renew(self, conversation_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                if not self._write_lease(conversation_id, renew=True):
                    log.error("conversation %s: this desk lost its turn lease mid-turn (it "
                              "stalled for over %.0f s); another desk may run the next turn",
                              conversation_id, self.lease_seconds)
                    return
            except Exception:
                log.exception("conversation %s: could not renew the turn lease",
                              conversation_id)

    def __len__(self) -> int:
        return len(self._locks)


@dataclass
class Claimed:
    """A borrower message this task now runs the turn of."""

    id: int
    conversation_id: str
    text: str
    forwarded_at: datetime | None  # set: forwarded before (a failed or interrupted turn)


class Turns:
    def __init__(self, sessions: sessionmaker[Session], hub: Hub, rasa: RasaClient,
                 locks: ConversationLocks, *, stale_after: float | None = None) -> None:
        self.sessions = sessions
        self.hub = hub
        self.rasa = rasa
        self.locks = locks
        # a turn "sending" for longer than this was left by a desk that stopped: each step of
        # a turn (reading the tracker, forwarding) is one call to Rasa, cut at its timeout
        self.stale_after = rasa.timeout + 5 if stale_after is None else stale_after
        self._running: set[asyncio.Task[None]] = set()  # the loop keeps only weak references
        self.in_flight: set[int] = set()  # message ids with a turn task in this process
        self._retry_back: dict[str, tuple[float, float]] = {}  # conversation -> (when, wait)
        # conversations whose tracker may not end with action_listen after a failed turn
        self.reset_due: set[str] = set()

    # --- starting turns ------------------------------------------------------------------------

    def hold(self, message_id: int) -> None:
        """A message just stored, whose turn the caller starts (``start(..., held=True)``)
        once it has acknowledged it: nothing else starts it meanwhile."""
        self.in_flight.add(message_id)

    def start(self, conversation_id: str, message_id: int, *, held: bool = False) -> None:
        """Run a borrower message's turn in the background (the socket goes on reading
        frames); nothing when this process already has a task for it."""
        if message_id in self.in_flight and not held:
            return
        self.in_flight.add(message_id)
        turn = asyncio.get_running_loop().create_task(
            self.borrower_turn(conversation_id, message_id))
        self._running.add(turn)

        def finished(task: asyncio.Task[None]) -> None:
            self._running.discard(task)
            self.in_flight.discard(message_id)

        turn.add_done_callback(finished)

    def resume_conversation(self, conversation_id: str) -> int:
        """A borrower (re)connected: run what a stopped desk left of their turns -- at once
        when pending, once stale when sending. Returns how many turns were started. Notices
        waiting for the borrower (desk/notices.py) go out too."""
        self._open_notices(conversation_id)
        cutoff = utc_now() - timedelta(seconds=self.stale_after)
        with self.sessions() as session:
            rows = session.execute(
                select(Message.id, Message.state, Message.state_at)
                .where(Message.conversation_id == conversation_id,
                       Message.state.in_((PENDING, SENDING)))
                .order_by(Message.id)).all()
        started = 0
        for message_id, state, state_at in rows:
            if message_id in self.in_flight or (state == SENDING and state_at >= cutoff):
                continue
            log.warning("conversation %s: message %d was left %s by a desk that stopped; "
                        "running its turn now", conversation_id, message_id, state)
            self.start(conversation_id, message_id)
            started += 1
        return started

    def _open_notices(self, conversation_id: str) -> None:
        async def deliver() -> None:
            try:
                await Notices(self.sessions, self.hub, self.rasa, self.locks).opened(
                    conversation_id)
            except Exception:  # they stay waiting: the next opening or release sends them
                log.exception("conversation %s: waiting notices could not be delivered",
                              conversation_id)

        task = asyncio.get_running_loop().create_task(deliver())
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def borrower_turn(self, conversation_id: str, message_id: int) -> None:
        """One borrower message's turn; then a ``turn_done`` frame tells clients (and test
        runners) that nothing more will follow for it. A task that finds the message taken
        (already answered, or run by another task) does nothing.

        In order: holding the conversation's lock, it first runs the conversation's earlier
        messages still waiting for a turn (another desk's socket may have stored one a moment
        before and not got the lock yet); their own tasks then find them taken."""
        try:
            async with self.locks(conversation_id):
                for earlier in self._waiting_before(conversation_id, message_id):
                    await self._run(conversation_id, earlier)
                await self._run(conversation_id, message_id)
        except Exception:  # the lock's database lease: the message waits for the next round
            log.exception("conversation %s: the turn of message %d could not start; it is run "
                          "again later", conversation_id, message_id)

    def _waiting_before(self, conversation_id: str, message_id: int) -> list[int]:
        with self.sessions() as session:
            return list(session.execute(
                select(Message.id).where(Message.conversation_id == conversation_id,
                                         Message.id < message_id,
                                         Message.state.in_((PENDING, SENDING)))
                .order_by(Message.id)).scalars())

    async def _run(self, conversation_id: str, message_id: int) -> None:
        """(The conversation's lock held.) The message's turn, if this task can claim it."""
        claimed = self._claim(message_id, (PENDING, SENDING))
        if claimed is None:
            return
        try:
            await self._turn(claimed)
        except Exception:
            log.exception("conversation %s: the turn of message %d failed in the desk; "
                          "it is run again later", conversation_id, message_id)
        finally:
            await self._done(conversation_id, message_id)
        # after turn_done (the borrower has the notice already) and bounded: the borrower's
        # next message waits at most LISTEN_RESET_TIMEOUT for it
        await self._reset_if_due(conversation_id)

    async def _done(self, conversation_id: str, message_id: int) -> None:
        await self.hub.to_borrower(conversation_id, {"type": "turn_done",
                                                     "message_id": message_id})

    # --- the message's state -------------------------------------------------------------------

    def _claim(self, message_id: int, states: tuple[str, ...]) -> Claimed | None:
        """Take the message's turn: ``pending`` (or ``failed``, to send again) at once,
        ``sending`` only once it is stale. One atomic update: one winner."""
        now = utc_now()
        stale = now - timedelta(seconds=self.stale_after)
        takeable = [Message.state == s for s in states if s != SENDING]
        if SENDING in states:
            takeable.append((Message.state == SENDING) & (Message.state_at < stale))
        with self.sessions() as session:
            result = session.execute(update(Message).where(Message.id == message_id,
                                                           or_(*takeable))
                                     .values(state=SENDING, state_at=now)
                                     .execution_options(synchronize_session=False))
            session.commit()
            if result.rowcount != 1:
                return None
            message = session.get(Message, message_id)
            return Claimed(message.id, message.conversation_id, message.text,
                           message.forwarded_at)

    def _set_state(self, message_id: int, state: str, *, forwarded: bool = False,
                   session: Session | None = None) -> None:
        """(``session``: in that session, committed; else in a session of its own.)"""
        now = utc_now()
        values: dict[str, Any] = {"state": state, "state_at": now}
        if forwarded:  # kept from the first time: where to look for it in the tracker
            values["forwarded_at"] = func.coalesce(Message.forwarded_at, now)
        with self.sessions() if session is None else nullcontext(session) as session:
            session.execute(update(Message).where(Message.id == message_id).values(**values)
                            .execution_options(synchronize_session=False))
            session.commit()

    def _offered_payloads(self, session: Session, message: Claimed) -> set[str]:
        """The payloads of the buttons the bot offered since the borrower's previous message
        (the chat page disables older ones): the only texts that go to Rasa as intents."""
        previous = select(func.coalesce(func.max(Message.id), 0)).where(
            Message.conversation_id == message.conversation_id, Message.sender == "borrower",
            Message.id < message.id).scalar_subquery()
        offered: set[str] = set()
        for buttons in session.execute(  # one statement: the previous message as a subquery
                select(Message.buttons).where(Message.conversation_id == message.conversation_id,
                                              Message.sender == "bot", Message.id > previous,
                                              Message.id < message.id)).scalars():
            offered.update(str(b.get("payload")) for b in buttons or [] if isinstance(b, dict))
        return offered

    # --- one turn ------------------------------------------------------------------------------

    async def _turn(self, message: Claimed) -> None:
        conversation_id = message.conversation_id
        with self.sessions() as session:  # the conversation and its open case, if any
            conversation, case = session.execute(
                select(Conversation, Case).outerjoin(Case, and_(
                    Case.conversation_id == Conversation.id, Case.status.in_(service.OPEN_CASE)))
                .where(Conversation.id == conversation_id)).one()
            owner = conversation.owner
            metadata = {"borrower_id": conversation.borrower_id, "locale": conversation.locale}
            waiting_for_assistant = case is not None and case.status == "waiting" \
                and case.reason == UNAVAILABLE
        if owner != "bot" and waiting_for_assistant:
            # sent to agents only because the assistant was down, and nobody took the case:
            # this message waits with the others; if the assistant is back, the bot answers
            self._set_state(message.id, FAILED)
            await self._hand_back(conversation_id, current=message.id)
            return
        if owner == "bot":
            await self.hub.to_borrower(conversation_id, {"type": "typing", "on": True})
        try:
            replies: list[dict[str, Any]] | None = await self._forward(message, metadata)
            cause = ""
        except AssistantUnavailable as exc:
            replies, cause = None, str(exc)
        await self.hub.to_borrower(conversation_id, {"type": "typing", "on": False})
        if owner != "bot":
            self._set_state(message.id, DONE)  # an agent has the conversation
            if replies is None:
                log.warning("conversation %s: message %d did not reach the assistant's "
                            "transcript (an agent owns the conversation): %s",
                            conversation_id, message.id, cause)
            elif text_replies(replies):
                log.error("conversation %s: the assistant replied to message %d while an agent "
                          "owns the conversation; dropped %d message(s)", conversation_id,
                          message.id, len(replies))
            return
        if replies is not None and not text_replies(replies) \
                and self._owner(conversation_id) == "bot":  # still the bot's: read it now
            replies, cause = None, EMPTY_ANSWER
        if replies is None:
            log.error("conversation %s: turn of message %d failed: %s; the borrower is told "
                      "and a person is brought in", conversation_id, message.id, cause)
            self.reset_due.add(conversation_id)
            await self.assistant_down(conversation_id, message.id)
            return
        await self._finish(message.id, conversation_id, replies)

    def _owner(self, conversation_id: str) -> str:
        with self.sessions() as session:
            return session.get(Conversation, conversation_id).owner

    async def _forward(self, message: Claimed, metadata: dict[str, Any] | None = None
                       ) -> list[dict[str, Any]]:
        """The assistant's replies to the message. One forwarded before (its turn failed or
        was interrupted) is first looked for in Rasa's tracker: if Rasa answered it, those
        replies are the answer and it is not sent again. ``metadata``: the conversation's
        ``borrower_id`` and ``locale``, when the caller has just read them."""
        with self.sessions() as session:
            if metadata is None:
                conversation = session.get(Conversation, message.conversation_id)
                metadata = {"borrower_id": conversation.borrower_id,
                            "locale": conversation.locale}
            text = forwarded_text(message.text, self._offered_payloads(session, message))
            if message.forwarded_at is None:  # the first time: sent right after this
                self._set_state(message.id, SENDING, forwarded=True, session=session)
        if message.forwarded_at is not None:
            self._set_state(message.id, SENDING)  # a fresh state_at: this turn is alive
            tracker = await self.rasa.tracker(message.conversation_id)
            found = replies_in_tracker(tracker.get("events") or [], text, message.forwarded_at)
            if found is not None:
                log.info("conversation %s: the assistant had answered message %d before the "
                         "desk stopped or gave up; delivering its replies", message.conversation_id,
                         message.id)
                return found
            self._set_state(message.id, SENDING, forwarded=True)  # and a fresh state_at
        return await self.rasa.send(message.conversation_id, text, metadata)

    async def _reset_if_due(self, conversation_id: str) -> None:
        """(The conversation's lock held.) The reset after a failed turn, if one is due."""
        if conversation_id in self.reset_due and await self._listen_again(conversation_id):
            self.reset_due.discard(conversation_id)

    async def _listen_again(self, conversation_id: str) -> bool:
        """After a failed turn, the tracker must end with ``action_listen``: a failed
        ``action_session_start`` on a session's first message leaves it without one, and
        Rasa's circuit breaker would then trip on every later message.

        Bounded by ``LISTEN_RESET_TIMEOUT`` (the conversation's lock is held: a Rasa still
        busy with the failed turn, e.g. waiting for a hung action server, makes the append
        wait for its own conversation lock). False when not done: it stays due, and is done
        before the conversation's next message is sent (``_wake``, ``resume_bot``) or by a
        later round of ``sweep``."""
        async def reset() -> None:
            tracker = await self.rasa.tracker(conversation_id, events=False)
            if tracker.get("latest_action_name") not in (None, "action_listen"):
                await self.rasa.append_events(conversation_id, [
                    {"event": "action", "name": "action_listen"}])

        try:
            await asyncio.wait_for(reset(), LISTEN_RESET_TIMEOUT)
            return True
        except (AssistantUnavailable, asyncio.TimeoutError) as exc:
            cause = str(exc) or f"no answer within {LISTEN_RESET_TIMEOUT:g} s"
            log.warning("conversation %s: could not reset the assistant's tracker after a "
                        "failed turn (%s); done before its next message instead",
                        conversation_id, cause)
            return False

    async def _finish(self, message_id: int | None, conversation_id: str,
                      replies: list[dict[str, Any]]) -> None:
        """Store the bot's replies and mark the message done in one transaction, then
        deliver them."""
        payloads = []
        now = utc_now()
        with self.sessions() as session:
            stored = []
            for reply in text_replies(replies):
                buttons = [{"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
                           for b in reply.get("buttons") or [] if isinstance(b, dict)]
                message = Message(conversation_id=conversation_id, sender="bot",
                                  text=reply["text"], buttons=buttons or None,
                                  attachment=reply.get("attachment"), created_at=now)
                session.add(message)
                stored.append(message)
            if message_id is not None:
                session.execute(update(Message).where(Message.id == message_id)
                                .values(state=DONE, state_at=now)
                                .execution_options(synchronize_session=False))
            session.execute(update(Conversation).where(Conversation.id == conversation_id)
                            .values(updated_at=now))
            session.commit()
            payloads = [service.message_dict(m) for m in stored]
            case = service.open_case_for(session, conversation_id) if payloads else None
            claimer = case.claimed_by if case is not None else None
        for payload in payloads:
            await self.hub.to_borrower(conversation_id, payload)
            await self._to_agent(claimer, payload)

    async def deliver_bot_messages(self, conversation_id: str,
                                   replies: list[dict[str, Any]]) -> None:
        await self._finish(None, conversation_id, replies)

    async def to_case_agent(self, conversation_id: str, payload: dict[str, Any]) -> None:
        """A live message goes, masked, to the agent who took the conversation's case, if any."""
        with self.sessions() as session:
            case = service.open_case_for(session, conversation_id)
            claimer = case.claimed_by if case is not None else None
        await self._to_agent(claimer, payload)

    async def _to_agent(self, claimer: int | None, payload: dict[str, Any]) -> None:
        if claimer is not None:
            await self.hub.to_agent(claimer, {**payload, "text": mask_text(payload["text"])})

    async def assistant_down(self, conversation_id: str, message_id: int | None = None) -> None:
        """The assistant did not answer: keep the message, tell the borrower, bring a person."""
        with self.sessions() as session:
            conversation = session.get(Conversation, conversation_id)
            # the borrower's language (the reply-language rule), as the bot would have answered
            lang = handoffs.conversation_language(session, conversation_id)
            transcript = [{"sender": m.sender, "text": m.text}
                          for m in service.messages_after(session, conversation_id, 0)[-50:]]
            if conversation is not None and conversation.owner == "bot":
                service.create_case(session, {"conversation_id": conversation_id,
                                              "language": lang, "reason": UNAVAILABLE,
                                              "transcript": transcript}, utc_now())
                await self.hub.to_agents({"type": "queue"})
            text = catalog_text("desk.assistant_down", lang)
            message, _ = service.add_message(session, conversation_id, "system", text, utc_now())
            payload = service.message_dict(message)
        if message_id is not None:
            self._set_state(message_id, FAILED)
        await self.hub.to_borrower(conversation_id, payload)
        await handoffs.publish(self.hub, self.sessions, conversation_id)  # waiting for a person

    # --- the assistant is back -----------------------------------------------------------------

    async def hand_back(self, conversation_id: str, *, wait: bool = True) -> bool:
        """If the conversation waits for agents only because the assistant was down, and the
        assistant answers its oldest unanswered message now, the bot takes it back.

        ``wait=False`` (the background round): only if nobody holds the conversation right
        now, on this desk or another; else nothing (False): the desk holding it is running a
        turn, which tries the hand-back itself, or another desk's round is trying it. So with
        N desks one try runs at a time, not N one after the other."""
        async with self.locks(conversation_id) if wait \
                else self.locks.try_hold(conversation_id) as held:
            if held is False:
                return False
            back = await self._hand_back(conversation_id)
            await self._reset_if_due(conversation_id)
            return back

    async def _hand_back(self, conversation_id: str, current: int | None = None) -> bool:
        """(The conversation's lock held.) ``current``: the message whose turn called this
        (its ``turn_done`` is the caller's)."""
        with self.sessions() as session:
            case = service.open_case_for(session, conversation_id)
            if case is None or case.status != "waiting" or case.reason != UNAVAILABLE:
                return False
            case_id = case.id
            unanswered = list(session.execute(
                select(Message.id).where(Message.conversation_id == conversation_id,
                                         Message.state == FAILED).order_by(Message.id)
            ).scalars())
            lang = handoffs.conversation_language(session, conversation_id)
        first = self._claim(unanswered[0], (FAILED,)) if unanswered else None
        if unanswered and first is None:
            return False  # another task is sending it again right now
        replies: list[dict[str, Any]] = []
        try:
            await self._wake(conversation_id)
            if first is not None:
                replies = text_replies(await self._forward(first))
            cause = "" if replies or first is None else EMPTY_ANSWER
        except AssistantUnavailable as exc:
            cause = str(exc)
        if cause:
            if first is not None:
                self._set_state(first.id, FAILED)
                self.reset_due.add(conversation_id)
            wait = self._retry_back.get(conversation_id, (0.0, RETRY_BACK_FIRST / 2))[1]
            wait = min(RETRY_BACK_MAX, wait * 2)
            self._retry_back[conversation_id] = (time.monotonic() + wait, wait)
            log.warning("conversation %s: the assistant does not answer yet (%s); case %d "
                        "stays with agents; next round's try in %.0f s", conversation_id, cause,
                        case_id, wait)
            return False
        self._retry_back.pop(conversation_id, None)
        now = utc_now()
        with self.sessions() as session:  # unless an agent took the case meanwhile
            closed = session.execute(update(Case).where(Case.id == case_id,
                                                        Case.status == "waiting")
                                     .values(status="closed", ended_at=now)
                                     .execution_options(synchronize_session=False)).rowcount
            if closed:
                session.execute(update(Conversation).where(Conversation.id == conversation_id)
                                .values(owner="bot", updated_at=now))
            session.commit()
        if not closed:
            if first is not None:
                self._set_state(first.id, DONE)
                log.warning("conversation %s: an agent took the case while the assistant "
                            "answered message %d; its %d reply(ies) dropped", conversation_id,
                            first.id, len(replies))
            return False
        log.info("conversation %s: the assistant is back; case %d closed, the bot answers "
                 "%d unanswered message(s)", conversation_id, case_id, len(unanswered))
        await self.hub.to_agents({"type": "queue"})
        with self.sessions() as session:
            notice, _ = service.add_message(session, conversation_id, "system",
                                            catalog_text("desk.assistant_back", lang), now)
            notice_payload = service.message_dict(notice)
        await self.hub.to_borrower(conversation_id, notice_payload)
        # the bot has it again; whoever waited behind it moves up
        await handoffs.publish(self.hub, self.sessions, conversation_id, queue_moved=True)
        if first is not None:
            await self._finish(first.id, conversation_id, replies)
            if first.id != current:
                await self._done(conversation_id, first.id)
        for message_id in unanswered[1:]:
            claimed = self._claim(message_id, (FAILED,))
            if claimed is None:
                continue
            try:
                await self._turn(claimed)
            finally:
                if message_id != current:
                    await self._done(conversation_id, message_id)
        return True

    async def _wake(self, conversation_id: str) -> None:
        """Before sending a message again: the tracker un-paused and listening."""
        tracker = await self.rasa.tracker(conversation_id, events=False)
        events = []
        if tracker.get("paused"):
            events.append({"event": "resume"})
        if tracker.get("latest_action_name") not in (None, "action_listen"):
            events.append({"event": "action", "name": "action_listen"})
        if events:
            await self.rasa.append_events(conversation_id, events)
        self.reset_due.discard(conversation_id)

    def settle_unanswered(self, conversation_id: str) -> None:
        """An agent took the conversation's case: its unanswered messages are theirs now and
        are never sent to the assistant again."""
        with self.sessions() as session:
            session.execute(update(Message).where(Message.conversation_id == conversation_id,
                                                  Message.state == FAILED)
                            .values(state=DONE, state_at=utc_now())
                            .execution_options(synchronize_session=False))
            session.commit()

    # --- in the background ---------------------------------------------------------------------

    async def sweep(self) -> None:
        """One round: turns a stopped desk left behind, then conversations that wait for
        agents only because the assistant was down, if the assistant answers ``/status``."""
        cutoff = utc_now() - timedelta(seconds=self.stale_after)
        with self.sessions() as session:
            stale = session.execute(
                select(Message.id, Message.conversation_id, Message.state)
                .where(Message.state.in_((PENDING, SENDING)), Message.state_at < cutoff)
                .order_by(Message.id)).all()
            waiting = list(session.execute(
                select(Case.conversation_id).where(Case.status == "waiting",
                                                   Case.reason == UNAVAILABLE)
                .order_by(Case.created_at)).scalars())
        for message_id, conversation_id, state in stale:
            if message_id not in self.in_flight:
                log.warning("conversation %s: message %d was left %s by a desk that stopped; "
                            "running its turn now", conversation_id, message_id, state)
                self.start(conversation_id, message_id)
        now = time.monotonic()
        due = [c for c in waiting if self._retry_back.get(c, (0.0, 0.0))[0] <= now]
        for conversation_id in list(self._retry_back):
            if conversation_id not in waiting:
                del self._retry_back[conversation_id]
        if (due or self.reset_due) and await self.rasa.ready():
            for conversation_id in due:
                await self.hand_back(conversation_id, wait=False)
            for conversation_id in list(self.reset_due)[:RESETS_PER_ROUND]:
                async with self.locks.try_hold(conversation_id) as held:
                    if held:
                        await self._reset_if_due(conversation_id)

    async def watch(self, every: float) -> None:
        """``sweep`` now and every ``every`` seconds (the desk's lifespan runs this)."""
        while True:
            try:
                await self.sweep()
            except Exception:  # a busy database must not stop the desk; next round retries
                log.exception("the desk's round over stale turns and waiting cases failed")
            await asyncio.sleep(every)

    # --- agents hand back ----------------------------------------------------------------------

    async def resume_bot(self, conversation_id: str, note: str | None) -> list[dict[str, Any]]:
        """Un-pause the assistant (with the agent's note) and let it speak first; the caller
        changes ownership only once this worked, so a failure leaves the case as it was."""
        with self.sessions() as session:
            conversation = session.get(Conversation, conversation_id)
            borrower_id, locale = conversation.borrower_id, conversation.locale
        events = [{"event": "resume"},
                  {"event": "slot", "name": "handoff_active", "value": False},
                  {"event": "slot", "name": "borrower_id", "value": borrower_id},
                  {"event": "slot", "name": "agent_note", "value": note}]
        async with self.locks(conversation_id):
            # the language the borrower writes in stays (docs/nlu-labelling.md, "Reply
            # language"); the app's locale only when the assistant has none yet
            tracker = await self.rasa.tracker(conversation_id, events=False)
            slots = tracker.get("slots")
            if not isinstance(slots, dict) or slots.get("language") not in ("zh", "en"):
                events.insert(3, {"event": "slot", "name": "language", "value": locale[:2]})
            if conversation_id in self.reset_due \
                    and tracker.get("latest_action_name") not in (None, "action_listen"):
                # the reset left undone after a failed turn (``_listen_again``)
                events.insert(0, {"event": "action", "name": "action_listen"})
            await self.rasa.append_events(conversation_id, events)
            self.reset_due.discard(conversation_id)
            return await self.rasa.execute(conversation_id, "action_resume_after_handoff")
