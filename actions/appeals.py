"""Appeals in the conversation: start one against the decision just explained, collect the
borrower's statement (a form they can cancel at any step), confirm, file it exactly once,
and report the status of appeals already filed."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from .backend import BackendError, BackendRejected
from .clock import utc_now
from .conversation import (
    DecisionUnavailable,
    borrower_of,
    current_decision,
    get_backend,
    lang_of,
    latest_intent,
    offer_events,
)
from .explanations import Explanation, appeal_on, appealable_reason, describe_reason, explain
from .formatting import money, when
from .handoff import hand_off
from .texts import button, guarded, say, text

log = logging.getLogger("relend.actions.appeals")

STATEMENT_MIN_CHARS = 4
STATEMENT_MAX_CHARS = 2000
# Insults on their own are not a statement; a statement that also vents is still a statement.
_ABUSE = re.compile(r"(傻[逼b比]|sb|操你|草你|妈的|他妈|滚|fuck\w*|shit|idiot|stupid|bastard)",
                    re.IGNORECASE)
# Words that only say "I disagree". What a message says beyond them is its statement:
# "我不服，我从来没逾期过" carries one, "凭什么不让我借" does not.
_DISAGREEMENT_ZH = re.compile(
    r"不服气?|不认可?|不接受|不同意|不公平|不公正|不合理|不对劲?|不准确?|有误|有问题|搞错了?|弄错了?|错了|"
    r"凭什么|为什么|为啥|什么鬼|离谱|过分|坑人?|无语|气死|不让|不能|不行|借|"
    r"我们|你们|我|这个|这|那|结果|决定|评估|系统|真的|根本|简直|完全|就是|太|很|都|也|了|的|啊|吧|呢|吗|呀")
_DISAGREEMENT_EN = re.compile(
    r"\b(i|we|you|this|that|it|is|was|s|the|decision|result|totally|completely|so|just|"
    r"really|disagree|don'?t|do not|agree|wrong|unfair|not fair|ridiculous|nonsense|bs|why|"
    r"how|can'?t|cannot|borrow|me|my)\b", re.IGNORECASE)
STATEMENT_IN_MESSAGE_MIN = 6  # letters or ideographs left after the disagreement words


def idempotency_key(conversation_id: str, decision_id: str, reason_code: str,
                    attempt: int = 0) -> str:
    """Same conversation, decision, reason and attempt -> same key: a retry or a double-click
    never files twice. ``attempt`` counts appeals on this reason already decided, so a new
    appeal after a rejection is a new request rather than a replay of the old one."""
    seed = f"{conversation_id}|{decision_id}|{reason_code}" + (f"|{attempt}" if attempt else "")
    return f"chat-{hashlib.sha256(seed.encode()).hexdigest()[:40]}"


def _reset_form(statement: str | None = None) -> list[EventType]:
    """Clear the form's slots; a statement the borrower already wrote fills its slot, so the
    form goes straight to the confirmation."""
    return [SlotSet("appeal_statement", statement), SlotSet("appeal_confirmed", None)]


def statement_in(text: str) -> str | None:
    """The appeal statement a borrower wrote into their disagreement, if it says more than
    "I disagree" (the whole message is kept: it is the borrower's own wording)."""
    text = (text or "").strip()
    if text.startswith("/") or _ABUSE.sub("", text).strip() == "":
        return None
    rest = _DISAGREEMENT_EN.sub(" ", _DISAGREEMENT_ZH.sub(" ", _ABUSE.sub(" ", text)))
    substance = re.findall(r"[a-z]+|[\u4e00-\u9fff]", rest, flags=re.IGNORECASE)
    letters = sum(len(part) if part.isascii() else 1 for part in substance)
    words = sum(part.isascii() for part in substance)
    enough = words >= 3 if text.isascii() else letters >= STATEMENT_IN_MESSAGE_MIN
    return text[:STATEMENT_MAX_CHARS] if enough else None


def _draft_statement(tracker: Tracker) -> str | None:
    """A statement written with the disagreement now, or with the one before the explanation."""
    if latest_intent(tracker) == "disagree_with_decision":
        found = statement_in((tracker.latest_message or {}).get("text") or "")
        if found:
            return found
    return tracker.get_slot("statement_draft")


def _not_ready() -> list[EventType]:
    """No appeal form follows (the rules branch on this slot)."""
    return [SlotSet("appeal_ready", False)]


async def borrower_appeals(tracker: Tracker) -> list[dict[str, Any]] | None:
    """Every appeal the borrower has filed, in any conversation or channel (one call to the
    backend, bounded by the client's connect and read timeouts, ``RELEND_BACKEND_*_TIMEOUT``);
    None when it could not be read: the caller then answers without them."""
    borrower_id = borrower_of(tracker)
    if not borrower_id:
        return None
    context = f"conversation={tracker.sender_id} borrower={borrower_id}"
    try:
        appeals = await asyncio.to_thread(get_backend().appeals, borrower_id, context=context)
    except BackendError as exc:
        log.warning("appeal list unavailable, answering without it [%s]: %s", context, exc)
        return None
    return [a for a in appeals if isinstance(a, dict)]


async def explain_knowing_appeals(tracker: Tracker, decision: dict[str, Any], **how: Any
                                  ) -> Explanation:
    """``explain``, naming the appeal the borrower already filed against this decision (in
    this conversation or any other) instead of offering a new one. The appeal list is asked
    for only when the answer would offer an appeal: an answer without one makes no call."""
    explanation = explain(decision, **how)
    if explanation.offer != "appeal":
        return explanation
    appeals = await borrower_appeals(tracker)
    return explain(decision, **how, appeals=appeals) if appeals else explanation


def _earlier_appeals(decision: dict[str, Any], reason: dict[str, Any],
                     appeals: list[dict[str, Any]] | None
                     ) -> tuple[dict[str, Any] | None, int]:
    """The appeal that already covers this reason of this decision (``appeal_on``), if any,
    and how many on this reason were already decided."""
    appeals = appeals or []  # unreadable: filing will tell us if one is open
    decided = sum(a.get("reason_code") == reason["code"]
                  and a.get("status") in ("upheld", "rejected") for a in appeals)
    return appeal_on(decision, reason, appeals), decided


class BeginAppeal(Action):
    """Confirm which decision is being appealed, then hand over to the statement form."""

    def name(self) -> str:
        return "action_begin_appeal"

    @guarded
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        explained_before = isinstance(tracker.get_slot("decision"), dict)
        try:
            decision, events = await current_decision(tracker, dispatcher)
        except DecisionUnavailable as failure:
            return [*failure.events, *_not_ready()]
        lang = lang_of(tracker)
        now = utc_now()
        intent = latest_intent(tracker)
        draft = _draft_statement(tracker)
        if intent == "disagree_with_decision" and not explained_before:
            # they disagree with something we have not explained yet: explain first (with the
            # offer of an appeal where the reason allows one); what they wrote is kept for it
            explanation = await explain_knowing_appeals(tracker, decision, lang=lang,
                                                        now=now, focus="disagree")
            dispatcher.utter_message(text=explanation.text, buttons=explanation.buttons)
            if explanation.offer == "appeal" and draft:
                say(dispatcher, "statement_kept", lang)
            return [*events, *offer_events(explanation.offer), *_not_ready(),
                    SlotSet("primary_reason", explanation.primary_code),
                    SlotSet("statement_draft", draft)]
        reason = appealable_reason(decision)
        if reason is None:
            if decision.get("eligible"):
                say(dispatcher, "nothing_to_appeal", lang_of(tracker))
                return [*events, *offer_events(None), *_not_ready()]
            if intent == "disagree_with_decision":
                # still disagrees after the explanation, and it cannot be appealed: a person
                tracker.slots["decision"] = decision
                handoff = await hand_off(dispatcher, tracker, "disagrees_not_appealable")
                return [*events, *handoff, *_not_ready()]
            primary = next((r for r in decision.get("reasons", []) if r.get("blocking")), None)
            summary = describe_reason(primary, decision, lang=lang, now=now) if primary else ""
            say(dispatcher, "not_appealable", lang_of(tracker), reason=summary)
            helpful = explain(decision, lang=lang, now=now, focus="improve").text
            dispatcher.utter_message(text=helpful)
            say(dispatcher, "offer_human", lang_of(tracker))
            return [*events, *offer_events("human"), *_not_ready()]
        already, decided = _earlier_appeals(decision, reason, await borrower_appeals(tracker))
        if already is not None:
            # filed before, here or elsewhere: its status, not a second appeal (a person
            # after a rejection, as the status text says)
            rejected = already.get("status") == "rejected"
            dispatcher.utter_message(
                text=_status_text(already, decision, lang),
                buttons=[button("human", "/request_human", lang)] if rejected else [])
            return [*events, *offer_events("human" if rejected else None), *_not_ready()]
        summary = describe_reason(reason, decision, lang=lang, now=now)
        say(dispatcher, "appeal_which_decision", lang_of(tracker), reason=summary,
                                 checked=when(decision.get("checked_at"), lang,
                                              decision.get("timezone"), now))
        # pending_offer is left as it is: the rules that start the form match on it, and
        # filing or cancelling the appeal clears it
        return [*events, *_reset_form(draft), SlotSet("statement_draft", None),
                SlotSet("appeal_reason_code", reason["code"]),
                SlotSet("appeal_decision_id", decision.get("decision_id")),
                SlotSet("appeal_key", idempotency_key(tracker.sender_id,
                                                      str(decision.get("decision_id")),
                                                      reason["code"], decided)),
                SlotSet("appeal_ready", True)]


class ValidateAppealForm(FormValidationAction):
    def name(self) -> str:
        return "validate_appeal_form"

    async def validate_appeal_statement(self, value: Any, dispatcher: CollectingDispatcher,
                                        tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        if value is None:
            # the form also validates slots cleared when it starts: nothing was said yet
            return {"appeal_statement": None}
        text = (value if isinstance(value, str) else "").strip()
        if text.startswith("/"):
            text = ""  # a button payload is not a statement
        meaningful = _ABUSE.sub("", text).strip(" ，。！!?？.~…")
        if len(meaningful) < STATEMENT_MIN_CHARS:
            # these texts live in the catalog, texts/*.yml (the domain has no such responses)
            key = "appeal_statement_abusive" if _ABUSE.search(text) \
                else "appeal_statement_too_short"
            say(dispatcher, key, lang_of(tracker))
            return {"appeal_statement": None}
        return {"appeal_statement": text[:STATEMENT_MAX_CHARS]}


class AskAppealStatement(Action):
    def name(self) -> str:
        return "action_ask_appeal_statement"

    @guarded
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        say(dispatcher, "ask_appeal_statement", lang_of(tracker))
        return []


class AskAppealConfirmed(Action):
    """Read back what will be filed, with buttons to confirm or cancel."""

    def name(self) -> str:
        return "action_ask_appeal_confirmed"

    @guarded
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        lang = lang_of(tracker)
        decision = tracker.get_slot("decision") or {}
        code = tracker.get_slot("appeal_reason_code")
        reason = next((r for r in decision.get("reasons", []) if r.get("code") == code),
                      {"code": code, "details": {}})
        summary = describe_reason(reason, decision, lang=lang, now=utc_now())
        statement = tracker.get_slot("appeal_statement") or ""
        shown = statement if len(statement) <= 200 else statement[:200] + "…"
        say(dispatcher, "ask_appeal_confirmed", lang_of(tracker), reason=summary,
                                 statement=shown)
        return []


class FileAppeal(Action):
    def name(self) -> str:
        return "action_file_appeal"

    @guarded
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        lang = lang_of(tracker)
        if tracker.get_slot("appeal_confirmed") is not True:
            dispatcher.utter_message(response="utter_appeal_cancelled")
            return [*_reset_form(), *offer_events(None)]
        borrower_id = borrower_of(tracker)
        decision_id = tracker.get_slot("appeal_decision_id")
        code = tracker.get_slot("appeal_reason_code")
        statement = tracker.get_slot("appeal_statement")
        if not (borrower_id and decision_id and code and statement):
            dispatcher.utter_message(response="utter_appeal_cancelled")
            return [*_reset_form(), *offer_events(None)]
        context = f"conversation={tracker.sender_id} borrower={borrower_id}"
        try:
            appeal = await asyncio.to_thread(
                get_backend().file_appeal, borrower_id=borrower_id, decision_id=decision_id,
                reason_code=code, statement=statement,
                idempotency_key=tracker.get_slot("appeal_key")
                or idempotency_key(tracker.sender_id, decision_id, code),
                context=context)
        except BackendRejected as exc:
            log.warning("appeal refused [%s]: %s", context, exc)
            if exc.code == "appeal_already_open":
                say(dispatcher, "appeal_already_open", lang,
                    appeal_id=exc.details.get("appeal_id", ""))
                return [*_reset_form(), *offer_events(None)]
            say(dispatcher, "appeal_failed", lang_of(tracker))
            return [*offer_events("human"), SlotSet("handoff_reason", "appeal_refused")]
        except BackendError as exc:
            # keep the statement: the person who takes over sees it in the case
            log.error("appeal could not be filed [%s]: %s", context, exc)
            say(dispatcher, "appeal_failed", lang_of(tracker))
            return [*offer_events("human"), SlotSet("backend_failed", True),
                    SlotSet("handoff_reason", "appeal_not_filed")]
        ids = list(tracker.get_slot("appeal_ids") or [])
        if appeal.get("appeal_id") not in ids:
            ids.append(appeal.get("appeal_id"))
        tz = (tracker.get_slot("decision") or {}).get("timezone")
        say(dispatcher, "appeal_filed", lang_of(tracker), appeal_id=appeal.get("appeal_id"),
                                 respond_by=when(appeal.get("respond_by"), lang, tz, utc_now()))
        return [*_reset_form(), *offer_events(None), SlotSet("appeal_ids", ids),
                SlotSet("statement_draft", None),
                SlotSet("appeal_reason_code", None), SlotSet("appeal_ready", False)]


def _status_text(appeal: dict[str, Any], decision: dict[str, Any] | None, lang: str) -> str:
    now = utc_now()
    tz = (decision or {}).get("timezone")
    appeal_id = appeal.get("appeal_id")
    status = appeal.get("status")
    if status in ("submitted", "in_review"):
        return text(f"appeal.status.{status}", lang, appeal_id=appeal_id,
                    submitted=when(appeal.get("submitted_at"), lang, tz, now),
                    respond_by=when(appeal.get("respond_by"), lang, tz, now))
    if status == "upheld":
        restored = appeal.get("restored_limit")
        limit = text("appeal.status.upheld_restored", lang, limit=money(restored, lang)) \
            if restored else ""
        return text("appeal.status.upheld", lang, appeal_id=appeal_id, restored=limit)
    if status == "rejected":
        note = appeal.get("resolution_note") or text("appeal.status.rejected_no_note", lang)
        return text("appeal.status.rejected", lang, appeal_id=appeal_id, note=note)
    return text("appeal.status.unknown", lang, appeal_id=appeal_id, status=status)


STATUS_NAMES = ("submitted", "in_review", "upheld", "rejected")  # appeal.status_name.*


def _status_name(status: Any, lang: str) -> str:
    return text(f"appeal.status_name.{status}", lang) if status in STATUS_NAMES else str(status)


class ReportAppealStatus(Action):
    def name(self) -> str:
        return "action_report_appeal_status"

    @guarded
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        lang = lang_of(tracker)
        borrower_id = borrower_of(tracker)
        if borrower_id is None:
            say(dispatcher, "no_identity", lang_of(tracker))
            return []
        context = f"conversation={tracker.sender_id} borrower={borrower_id}"
        try:
            appeals = await asyncio.to_thread(get_backend().appeals, borrower_id,
                                              context=context)
        except BackendError as exc:
            log.error("appeal status unavailable [%s]: %s", context, exc)
            say(dispatcher, "backend_unavailable", lang_of(tracker))
            return [*offer_events("human"), SlotSet("backend_failed", True)]
        if not appeals:
            say(dispatcher, "no_appeals", lang_of(tracker))
            return offer_events(None)
        latest = appeals[0]
        lines = [_status_text(latest, tracker.get_slot("decision"), lang)]
        if len(appeals) > 1:
            others = ", ".join(f"{a.get('appeal_id')} ({_status_name(a.get('status'), lang)})"
                               for a in appeals[1:4])
            lines.append(text("appeal.others", lang, others=others))
        rejected = latest.get("status") == "rejected"
        buttons = [button("human", "/request_human", lang)] if rejected else []
        dispatcher.utter_message(text="\n".join(lines), buttons=buttons)
        events = offer_events("human" if rejected else None)
        if latest.get("status") == "upheld":
            events.append(SlotSet("decision", None))  # the old decision no longer holds
        return events
