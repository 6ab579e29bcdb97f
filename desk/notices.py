"""Proactive notices: a change the borrower was waiting for becomes a bot message in their chat.

The notifier (``notices/``, ``python -m notices``) reads the eligibility backend's outbox (a
repayment posted, a hold released, the cooling-off ended, a funding quota reopened, an
incident resolved, an appeal decided, a repayment reminder) and hands each change to the desk
(``POST /internal/notices``) with the borrower's time zone, the decision it checked just then
and, in quiet hours, the moment the notice may go out. Here the desk:

- **stores it once per change key**: ``notices.key`` is unique, and it is written in the same
  transaction as the chat message the notice became (or as the waiting notice). A change the
  broker delivers again, or the notifier replays after a restart, finds its key and is
  answered ``duplicate``: no second message, whatever moment the notifier died at;
- **delivers it as the bot's message** in the borrower's language (the reply-language rule:
  their latest clearly Chinese or English message, else the app's locale;
  ``handoffs.conversation_language``), rendered from the
  catalog (``notice.*`` in texts/*.yml) -- stored, so it is replayed on reconnect and agents
  see it in the transcript -- and logs it into the assistant's tracker as a bot event (with
  ``metadata.notice``: the key) when the assistant has a tracker for the conversation, so it
  knows what it told the borrower, and clears the ``decision`` slot it keeps for follow-ups
  (it no longer holds: asked next, the bot fetches the new decision instead of repeating the
  old one -- a live test caught it saying "still posting" right after the notice);
- **never while an agent owns the conversation**: then the open case gets it instead
  (``context.notices``, the text in the case's language) and the consoles hear
  ``case_context``; the borrower gets nothing from the bot meanwhile;
- **holds it** (``waiting``) until ``deliver_after`` (quiet hours, decided by the notifier in
  the borrower's time zone; unless the borrower is in the chat right now, on any desk: see
  below) --
  ``release`` sends what came due, the notifier calls it every round -- and while the
  borrower has no conversation yet: the first time they open the
  chat (``opened``, from the chat socket's start through ``Turns.resume_conversation``),
  everything waiting for them is delivered, quiet hours or not (they are looking).

A waiting notice is delivered by one atomic update of its state in the transaction that
stores its message: of two desks (or a release and an opening) exactly one stores it.

"In the chat right now" across several desks (behind a load balancer, sharing Redis): the desk
the notifier reached knows only its own sockets. When it holds a notice for quiet hours, it
signals the other desks on the hub's Redis channel (``SIGNAL``, with the conversation id);
each desk with a socket of that conversation runs ``opened`` -- the same path as opening the
chat, whose one-claim update keeps delivery exactly once however many desks hear the signal.
A signal lost (Redis away longer than the hub holds frames) costs only the wait: the notice
goes out when quiet hours end, or when the borrower next opens the chat.

Why the desk renders rather than a bot turn through Rasa's ``trigger_intent``: a
``trigger_intent`` turn that Rasa completed but the desk did not store (a crash, a timeout) is
either lost or said twice -- exactly once would need the desk's tracker reconciliation for a
second kind of turn -- and it would run the assistant's policies on a conversation nobody
typed in (with a new session for a borrower who never chatted, before their identity arrives
with their first message). Rendering here makes the message and its key one transaction; the
tracker still learns what was said.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from common.moments import parse_moment
from common.texts import text

from . import handoffs, service
from .hub import Hub
from .models import Conversation, Message, Notice
from .rasa_client import AssistantUnavailable, RasaClient
from .service import utc_now

log = logging.getLogger("relend.desk.notices")

KINDS = ("repayment_posted", "hold_released", "cooling_off_ended", "funding_quota_reopened",
         "incident_resolved", "appeal_decided", "reminder_due")
WAITING, DELIVERED, TO_AGENT = "waiting", "delivered", "to_agent"
# a decision checked longer ago than this is not told as "you can borrow X now": the notice
# then only invites the borrower to ask (it may have waited for quiet hours or a first chat)
FRESH_DECISION = timedelta(minutes=15)
# the hub signal "a notice waits for this conversation": desks with its socket deliver it
SIGNAL = "notice_waiting"
DEFAULT_ZONE = "Asia/Shanghai"  # when the notice names none (the notifier always does)


# --- rendering ---------------------------------------------------------------------------------


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def _money(amount: Any, lang: str) -> str:
    value = float(amount)
    whole = abs(value - round(value)) < 0.005
    figure = f"{value:,.0f}" if whole else f"{value:,.2f}"
    return text("fmt.money", lang, figure=figure)


def _day(value: Any, lang: str, tz: str | None, now: datetime) -> str:
    """'today', 'tomorrow', '3 Dec' (in the borrower's time zone)."""
    moment = parse_moment(value)
    if moment is None:
        return "—"
    local = moment.astimezone(_zone(tz))
    days = (local.date() - now.astimezone(local.tzinfo).date()).days
    relative = text(f"fmt.relative.{days}", lang) if -1 <= days <= 2 else ""
    if relative:
        return relative
    month = text(f"fmt.month.{local.month}", lang)
    if local.year != now.astimezone(local.tzinfo).year:
        return text("fmt.date_with_year", lang, day=local.day, month=month, year=local.year)
    return text("fmt.date", lang, day=local.day, month=month)


def _when(value: Any, lang: str, tz: str | None, now: datetime) -> str:
    """'today at 14:30' / '今天 14:30'."""
    moment = parse_moment(value)
    if moment is None:
        return "—"
    clock = moment.astimezone(_zone(tz)).strftime("%H:%M")
    return text("fmt.at_time", lang, day=_day(value, lang, tz, now), clock=clock)


def _on_day(value: Any, lang: str, tz: str | None, now: datetime) -> str:
    """'tomorrow' / 'on 3 Dec' (a date after a verb)."""
    moment = parse_moment(value)
    day = _day(value, lang, tz, now)
    if moment is None:
        return day
    local = moment.astimezone(_zone(tz))
    days = (local.date() - now.astimezone(local.tzinfo).date()).days
    relative = -1 <= days <= 2 and bool(text(f"fmt.relative.{days}", lang))
    return day if relative else text("fmt.on_day", lang, day=day)


def _change(kind: str, data: Mapping[str, Any], lang: str, tz: str | None,
            now: datetime) -> list[str]:
    """What changed, in the backend's figures only."""
    if kind == "repayment_posted":
        parts = [text("notice.repayment_posted", lang, amount=_money(data["amount"], lang),
                      paid=_day(data.get("paid_at") or data.get("posted_at"), lang, tz, now))]
        outstanding = data.get("outstanding_principal")
        if outstanding is not None:
            parts.append(text("notice.repayment_cleared", lang) if float(outstanding) <= 0
                         else text("notice.repayment_outstanding", lang,
                                   outstanding=_money(outstanding, lang)))
        return parts
    if kind == "hold_released":
        hold = "regulatory" if data.get("hold_kind") == "regulatory" else "security"
        return [text(f"notice.hold_released.{hold}", lang,
                     when=_when(data.get("released_at"), lang, tz, now))]
    if kind == "cooling_off_ended":
        return [text("notice.cooling_off_ended", lang,
                     due=_day(data.get("due_date"), lang, tz, now),
                     when=_when(data.get("cooling_off_until"), lang, tz, now))]
    if kind == "funding_quota_reopened":
        return [text("notice.funding_quota_reopened", lang,
                     when=_when(data.get("reopens_at"), lang, tz, now))]
    if kind == "incident_resolved":
        which = "maintenance" if data.get("incident_kind") == "maintenance" else "incident"
        return [text(f"notice.incident_resolved.{which}", lang, title=data.get("title") or "—",
                     when=_when(data.get("resolved_at"), lang, tz, now))]
    if kind == "appeal_decided":
        appeal_id = data.get("appeal_id") or "—"
        if data.get("status") == "upheld":
            if data.get("restored_limit") is not None:
                return [text("notice.appeal_upheld_limit", lang, appeal_id=appeal_id,
                             limit=_money(data["restored_limit"], lang))]
            return [text("notice.appeal_upheld", lang, appeal_id=appeal_id)]
        note = str(data.get("resolution_note") or "").strip()
        if note:
            return [text("notice.appeal_rejected", lang, appeal_id=appeal_id, note=note)]
        return [text("notice.appeal_rejected_no_note", lang, appeal_id=appeal_id)]
    if kind == "reminder_due":
        fields = {"number": data.get("instalment_number") or "—",
                  "amount": _money(data["amount"], lang)}
        if data.get("reminder") == "due_day":
            moment = parse_moment(data.get("due_date"))
            clock = moment.astimezone(_zone(tz)).strftime("%H:%M") if moment else "—"
            return [text("notice.reminder_due_day", lang, due=clock, **fields)]
        return [text("notice.reminder_before", lang,
                     due=_on_day(data.get("due_date"), lang, tz, now), **fields)]
    raise ValueError(f"unknown notice kind {kind!r}")


def _decision_line(decision: Mapping[str, Any] | None, lang: str, now: datetime) -> str:
    """What the decision checked with the change says now -- only while it is fresh; never
    more than it says (no reason guessed: the borrower can ask and hear it explained)."""
    checked = parse_moment((decision or {}).get("checked_at"))
    if not decision or checked is None or now - checked > FRESH_DECISION \
            or "eligible" not in decision:
        return text("notice.decision_unknown", lang)
    if decision["eligible"] and decision.get("available_limit") is not None:
        return text("notice.decision_eligible", lang,
                    available=_money(decision["available_limit"], lang))
    return text("notice.decision_blocked", lang)


def render(kind: str, data: Mapping[str, Any], lang: str, tz: str | None, now: datetime,
           decision: Mapping[str, Any] | None = None) -> str:
    """The notice's text in ``lang``: what changed, then (but for reminders) what the
    borrower can do now. ``ValueError`` for a kind it does not know, ``KeyError`` for data
    without the figure the text needs."""
    parts = _change(kind, data, lang, tz, now)
    if kind != "reminder_due":
        parts.append(_decision_line(decision, lang, now))
    return text("fmt.list.sentences", lang).join(parts)


# --- storing and delivering --------------------------------------------------------------------


class Notices:
    """The desk's side of the notifier (routes/internal.py; Turns.resume_conversation)."""

    def __init__(self, sessions: sessionmaker[Session], hub: Hub, rasa: RasaClient | None,
                 locks: Any) -> None:
        self.sessions = sessions
        self.hub = hub
        self.rasa = rasa
        self.locks = locks  # turns.ConversationLocks: a notice never lands inside a turn
        self._signalled_tasks: set[asyncio.Task[None]] = set()

    def listen(self) -> None:
        """Act on other desks' ``SIGNAL`` (create_app calls this once per desk)."""
        self.hub.on(SIGNAL, self._signalled)

    async def _signalled(self, event: Mapping[str, Any]) -> None:
        """Another desk held a notice for quiet hours: if the borrower is in the chat on this
        desk, deliver what waits for them (in a task: the hub's listener goes on at once)."""
        conversation_id = str(event.get("conversation_id") or "")
        if not self.hub.borrowers.get(conversation_id):
            return

        async def deliver() -> None:
            try:
                await self.opened(conversation_id)
            except Exception:  # they stay waiting: quiet hours' end or the next opening
                log.exception("conversation %s: a notice another desk held could not be "
                              "delivered here", conversation_id)

        task = asyncio.get_running_loop().create_task(deliver())
        self._signalled_tasks.add(task)
        task.add_done_callback(self._signalled_tasks.discard)

    async def receive(self, notice: Mapping[str, Any], now: datetime | None = None
                      ) -> dict[str, Any]:
        """Store a change once (its key), delivering it now when it may go out now.
        ``notice``: the outbox message (``key``, ``kind``, ``borrower_id``, ``data``, ``id``,
        ``occurred_at``) with ``timezone``, ``decision`` and ``deliver_after`` from the
        notifier. Answers ``{"status": delivered|waiting|to_agent|duplicate, ...}``."""
        now = now or utc_now()
        render(notice["kind"], notice["data"], "zh", notice.get("timezone"), now,
               notice.get("decision"))  # refuse what cannot be rendered before storing it
        with self.sessions() as session:
            known = self._by_key(session, notice["key"])
            if known is not None:
                return self._answer(known, duplicate=True)
            conversation_id = session.execute(select(Conversation.id).where(
                Conversation.borrower_id == notice["borrower_id"])).scalar()
        deliver_after = parse_moment(notice.get("deliver_after"))
        # quiet hours hold back a push, not a message to someone in the chat right now: on
        # this desk it goes out at once; a desk with their socket hears SIGNAL and sends it
        looking = conversation_id is not None and bool(self.hub.borrowers.get(conversation_id))
        due = conversation_id is not None and (
            deliver_after is None or deliver_after <= now or looking)
        if not due:
            answer = await self._store(notice, conversation_id, deliver_after, now,
                                       deliver=False)
            if conversation_id is not None and answer["status"] == WAITING:
                await self.hub.to_desks(SIGNAL, conversation_id=conversation_id)
            return answer
        if looking:  # what was held for them comes first, in order
            await self.opened(conversation_id, now)
        async with self.locks(conversation_id):
            return await self._store(notice, conversation_id, deliver_after, now, deliver=True)

    async def _store(self, notice: Mapping[str, Any], conversation_id: str | None,
                     deliver_after: datetime | None, now: datetime, *, deliver: bool
                     ) -> dict[str, Any]:
        with self.sessions() as session:
            row = Notice(key=notice["key"], outbox_id=notice.get("id"),
                         borrower_id=notice["borrower_id"], kind=notice["kind"],
                         data=dict(notice["data"]), timezone=notice.get("timezone"),
                         decision=notice.get("decision"),
                         occurred_at=parse_moment(notice.get("occurred_at")), received_at=now,
                         deliver_after=deliver_after, state=WAITING, state_at=now,
                         conversation_id=conversation_id)
            session.add(row)
            try:
                session.flush()  # the unique key decides here: a second copy stops now
                outcome = self._deliver(session, row, now) if deliver else None
                session.commit()
            except IntegrityError:
                session.rollback()
                known = self._by_key(session, notice["key"])
                if known is None:  # not the key's unique constraint: a real error
                    raise
                return self._answer(known, duplicate=True)
            answer = self._answer(row)
        if outcome is not None:
            await self._announce(outcome)
        return answer

    async def release(self, now: datetime | None = None) -> int:
        """Deliver the waiting notices whose moment has come and whose borrower has a
        conversation (the notifier calls this every round). Returns how many went out."""
        now = now or utc_now()
        with self.sessions() as session:
            rows = session.execute(
                select(Notice.id, Conversation.id).join(
                    Conversation, Conversation.borrower_id == Notice.borrower_id)
                .where(Notice.state == WAITING,
                       or_(Notice.deliver_after.is_(None), Notice.deliver_after <= now))
                .order_by(Notice.id)).all()
        return await self._deliver_waiting(rows, now)

    async def opened(self, conversation_id: str, now: datetime | None = None) -> int:
        """The borrower opened the chat: whatever waits for them goes out now (quiet hours
        are for pushing to someone who is not looking)."""
        now = now or utc_now()
        with self.sessions() as session:
            rows = session.execute(
                select(Notice.id, Conversation.id).join(
                    Conversation, Conversation.borrower_id == Notice.borrower_id)
                .where(Conversation.id == conversation_id, Notice.state == WAITING)
                .order_by(Notice.id)).all()
        return await self._deliver_waiting(rows, now)

    async def _deliver_waiting(self, rows: list[Any], now: datetime) -> int:
        sent = 0
        for notice_id, conversation_id in rows:
            async with self.locks(conversation_id):
                with self.sessions() as session:
                    # the claim: one atomic update, in the transaction that stores the message
                    claimed = session.execute(
                        update(Notice).where(Notice.id == notice_id, Notice.state == WAITING)
                        .values(state_at=now, conversation_id=conversation_id)
                        .execution_options(synchronize_session=False)).rowcount
                    if claimed != 1:  # delivered meanwhile (another desk, an opening)
                        session.rollback()
                        continue
                    row = session.get(Notice, notice_id)
                    outcome = self._deliver(session, row, now, conversation_id=conversation_id)
                    session.commit()
                await self._announce(outcome)
                sent += 1
        return sent

    def _deliver(self, session: Session, row: Notice, now: datetime, *,
                 conversation_id: str | None = None) -> dict[str, Any]:
        """(In the caller's transaction.) The notice as the bot's message, or on the open
        case when an agent owns the conversation. Sets ``row.state``."""
        conversation = session.get(Conversation, conversation_id or row.conversation_id)
        case = service.open_case_for(session, conversation.id) \
            if conversation.owner == "agent" else None
        if case is not None:
            message = render(row.kind, row.data, case.language, row.timezone, now, row.decision)
            context = dict(case.context or {})
            context["notices"] = [*context.get("notices", []), {
                "key": row.key, "kind": row.kind, "at": now.isoformat().replace("+00:00", "Z"),
                "text": text("notice.agent_note", case.language, text=message)}]
            case.context = context
            row.state, row.case_id = TO_AGENT, case.id
            session.flush()
            return {"case_id": case.id}
        # the borrower's language: that of their latest clear message, else the app's locale
        # (a borrower who never chatted has no messages: the locale decides)
        lang = handoffs.conversation_language(session, conversation.id)
        message = Message(conversation_id=conversation.id, sender="bot",
                          text=render(row.kind, row.data, lang, row.timezone, now, row.decision),
                          notice=row.kind, created_at=now)
        session.add(message)
        session.flush()
        conversation.updated_at = now
        row.state, row.message_id = DELIVERED, message.id
        told_rasa = session.execute(select(Message.id).where(
            Message.conversation_id == conversation.id, Message.sender == "borrower",
            Message.state == "done").limit(1)).first() is not None
        return {"conversation_id": conversation.id, "message": service.message_dict(message),
                "key": row.key, "kind": row.kind, "tracker": told_rasa}

    async def _announce(self, outcome: dict[str, Any]) -> None:
        """After the commit: live frames, and the assistant's tracker (best effort)."""
        if "case_id" in outcome:
            await self.hub.to_agents(handoffs.context_frame(outcome["case_id"]))
            return
        conversation_id, payload = outcome["conversation_id"], outcome["message"]
        await self.hub.to_borrower(conversation_id, payload)
        if outcome["tracker"] and self.rasa is not None:
            # only where the assistant has a tracker already: a first event appended by the
            # desk would start it without action_session_start (identity, language, pause)
            events: list[dict[str, Any]] = [{"event": "bot", "text": payload["text"],
                                             "metadata": {"notice": outcome["key"]}}]
            if outcome["kind"] != "reminder_due":
                # the decision the assistant keeps for follow-ups no longer holds: the next
                # question fetches the new one (or the bot would contradict the notice)
                events.append({"event": "slot", "name": "decision", "value": None})
            try:
                await self.rasa.append_events(conversation_id, events)
            except AssistantUnavailable as exc:
                log.warning("conversation %s: notice %s delivered, but not logged into the "
                            "assistant's tracker: %s", conversation_id, outcome["key"], exc)

    @staticmethod
    def _by_key(session: Session, key: str) -> Notice | None:
        return session.execute(select(Notice).where(Notice.key == key)).scalar_one_or_none()

    @staticmethod
    def _answer(row: Notice, *, duplicate: bool = False) -> dict[str, Any]:
        return {"status": "duplicate" if duplicate else row.state, "state": row.state,
                "notice_id": row.id, "key": row.key, "message_id": row.message_id,
                "case_id": row.case_id}

    def cursor(self) -> int:
        """The outbox id of the newest change stored: where a feed consumer goes on from."""
        with self.sessions() as session:
            return session.execute(select(Notice.outbox_id).where(
                Notice.outbox_id.is_not(None)).order_by(Notice.outbox_id.desc()).limit(1)
            ).scalar() or 0
