"""When the assistant is not sure what the borrower means: ask with the likely topics as
buttons; after a second miss in a row, offer a person instead of guessing again."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from .conversation import lang_of, offer_events
from .texts import guarded, say, text

# the intents a clarifying button may name; each is called topic.<intent> in the catalog
TOPICS = ("cannot_borrow_after_repayment", "ask_limit_restore_time", "limit_reduced_or_closed",
          "ask_improve_eligibility", "ask_repayment_status", "request_appeal",
          "check_appeal_status", "report_app_error", "request_human", "ask_next_instalment",
          "ask_loan_balance", "ask_repayment_history")
DEFAULT_TOPICS = ("cannot_borrow_after_repayment", "ask_limit_restore_time", "request_human")
FALLBACK_INTENT = "nlu_fallback"


def topic_button(intent: str, lang: str) -> dict[str, str]:
    return {"title": text(f"topic.{intent}", lang), "payload": f"/{intent}"}


def _user_intents(tracker: Tracker) -> list[str]:
    return [e.get("parse_data", {}).get("intent", {}).get("name", "")
            for e in tracker.events if e.get("event") == "user"]


class Clarify(Action):
    def name(self) -> str:
        return "action_clarify"

    @guarded
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        lang = lang_of(tracker)
        intents = _user_intents(tracker)
        if len(intents) >= 2 and intents[-2] == FALLBACK_INTENT:
            say(dispatcher, "offer_human_after_misses", lang_of(tracker))
            return offer_events("human")
        ranking = (tracker.latest_message or {}).get("intent_ranking") or []
        likely = [r.get("name") for r in ranking if r.get("name") in TOPICS][:3]
        for topic in DEFAULT_TOPICS:
            if len(likely) >= 3:
                break
            if topic not in likely:
                likely.append(topic)
        buttons = [topic_button(name, lang) for name in likely]
        say(dispatcher, "clarify", lang, extra_buttons=buttons)
        return offer_events(None)


class DefaultFallback(Action):
    """Dialogue-level uncertainty (no rule or story fits): same clarifying question, and the
    unexpected message is not allowed to steer the next predictions."""

    def name(self) -> str:
        return "action_default_fallback"

    @guarded
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        buttons = [topic_button(name, lang_of(tracker)) for name in DEFAULT_TOPICS]
        say(dispatcher, "clarify", lang_of(tracker), extra_buttons=buttons)
        return [UserUtteranceReverted()]


class DeclineOffer(Action):
    """"No" / "never mind": drop whatever was offered and ask if there is anything else."""

    def name(self) -> str:
        return "action_decline_offer"

    @guarded
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        say(dispatcher, "anything_else", lang_of(tracker))
        return offer_events(None)
