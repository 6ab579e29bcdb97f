"""Answer the eligibility family of questions from the borrower's own decision."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from .appeals import explain_knowing_appeals
from .clock import utc_now
from .conversation import (
    DecisionUnavailable,
    current_decision,
    lang_of,
    latest_intent,
    offer_events,
)
from .explanations import explain
from .settings import settings
from .texts import guarded, say, text

FOCUS_BY_INTENT = {
    "cannot_borrow_after_repayment": "explain",
    "ask_limit_restore_time": "restore_time",
    "ask_improve_eligibility": "improve",
    "limit_reduced_or_closed": "reduced_or_closed",
    "ask_repayment_status": "repayment_status",
    "disagree_with_decision": "disagree",
}
# other lenders' products a borrower may name (product.name.<code> in the catalog)
OTHER_PRODUCTS = ("jiebei", "huabei", "weilidai", "xinyongdai")


def product_note(tracker: Tracker, lang: str) -> tuple[str | None, list[EventType]]:
    """Once per conversation: say whose account we can see when they name another brand."""
    if tracker.get_slot("product_note_shown"):
        return None, []
    named = [e.get("value") for e in (tracker.latest_message or {}).get("entities", [])
             if e.get("entity") == "product" and e.get("value") in OTHER_PRODUCTS]
    if not named:
        return None, []
    config = settings()
    ours = config.product_name_zh if lang == "zh" else config.product_name_en
    note = text("product.note", lang, product=ours,
                other=text(f"product.name.{named[0]}", lang))
    return note, [SlotSet("product_note_shown", True)]


class AnswerFromDecision(Action, ABC):
    """An answer from the borrower's current decision (``answer``). When there is none, the
    borrower has already been told why and the action ends with the offer that went with it."""

    @guarded
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        try:
            decision, events = await current_decision(tracker, dispatcher)
        except DecisionUnavailable as failure:
            return failure.events
        return [*events, *await self.answer(dispatcher, tracker, decision)]

    @abstractmethod
    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker,
               decision: dict[str, Any]) -> list[EventType]:
        """Reply from ``decision``; the events to record besides the decision's own."""


class ExplainDecision(AnswerFromDecision):
    """The core answer: why this borrower can or cannot borrow now, and what to do next."""

    def name(self) -> str:
        return "action_explain_decision"

    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                     decision: dict[str, Any]) -> list[EventType]:
        lang = lang_of(tracker)
        focus = FOCUS_BY_INTENT.get(latest_intent(tracker), "explain")
        note, note_events = product_note(tracker, lang)
        explanation = await explain_knowing_appeals(tracker, decision, lang=lang,
                                                    now=utc_now(), focus=focus,
                                                    product_note=note)
        # the picture (if any) rides along as Rasa's custom payload; the text says it all too
        dispatcher.utter_message(text=explanation.text, buttons=explanation.buttons,
                                 json_message=explanation.attachment)
        return [*note_events, *offer_events(explanation.offer),
                SlotSet("primary_reason", explanation.primary_code),
                SlotSet("appealable", _appealable(decision))]


def _appealable(decision: dict[str, Any]) -> bool:
    return any(r.get("appealable") for r in decision.get("reasons", []))


class ReportAppError(AnswerFromDecision):
    """An app problem: say so if a known incident explains it; otherwise what to try."""

    def name(self) -> str:
        return "action_report_app_error"

    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                     decision: dict[str, Any]) -> list[EventType]:
        incident = next((r for r in decision.get("reasons", [])
                         if r.get("code") == "SYSTEM_INCIDENT"), None)
        if incident is not None:
            focused = {**decision, "reasons": [incident], "eligible": False}
            text = explain(focused, lang=lang_of(tracker), now=utc_now()).text
            dispatcher.utter_message(text=text)
            return offer_events(None)
        say(dispatcher, "app_troubleshooting", lang_of(tracker))
        return offer_events("human")
