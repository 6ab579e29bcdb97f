"""When the assistant is not sure what the borrower means: ask with the likely topics as
buttons; after a second miss in a row, offer a person instead of guessing again."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from .conversation import lang_of, offer_events
from .texts import say

# what each topic is called on a button, in both languages
TOPICS = {
    "cannot_borrow_after_repayment": ("为什么还款后借不了", "Why can't I borrow?"),
    "ask_limit_restore_time": ("额度什么时候恢复", "When is my limit back?"),
    "limit_reduced_or_closed": ("额度被降低或关闭", "Limit lowered or closed"),
    "ask_improve_eligibility": ("怎样才能再借款", "How can I qualify again?"),
    "ask_repayment_status": ("还款有没有到账", "Has my repayment arrived?"),
    "request_appeal": ("我要申诉", "I want to appeal"),
    "check_appeal_status": ("申诉进度", "Appeal status"),
    "report_app_error": ("App出错了", "The app shows an error"),
    "request_human": ("转人工客服", "Talk to a person"),
}
DEFAULT_TOPICS = ("cannot_borrow_after_repayment", "ask_limit_restore_time", "request_human")
FALLBACK_INTENT = "nlu_fallback"


def _user_intents(tracker: Tracker) -> list[str]:
    return [e.get("parse_data", {}).get("intent", {}).get("name", "")
            for e in tracker.events if e.get("event") == "user"]


class Clarify(Action):
    def name(self) -> str:
        return "action_clarify"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        lang = lang_of(tracker)
        index = 0 if lang == "zh" else 1
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
        buttons = [{"title": TOPICS[name][index], "payload": f"/{name}"} for name in likely]
        say(dispatcher, "clarify", lang, extra_buttons=buttons)
        return offer_events(None)


class DefaultFallback(Action):
    """Dialogue-level uncertainty (no rule or story fits): same clarifying question, and the
    unexpected message is not allowed to steer the next predictions."""

    def name(self) -> str:
        return "action_default_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        index = 0 if lang_of(tracker) == "zh" else 1
        buttons = [{"title": TOPICS[t][index], "payload": f"/{t}"} for t in DEFAULT_TOPICS]
        say(dispatcher, "clarify", lang_of(tracker), extra_buttons=buttons)
        return [UserUtteranceReverted()]


class DeclineOffer(Action):
    """"No" / "never mind": drop whatever was offered and ask if there is anything else."""

    def name(self) -> str:
        return "action_decline_offer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        say(dispatcher, "anything_else", lang_of(tracker))
        return offer_events(None)
