"""Turn repayment reminders on or off from the chat ("提醒我还款", "别再提醒我了").

The choice is stored by the backend (``PUT /v1/borrowers/{id}/reminders``, docs/backend.md,
"Repayment reminders"); the reminders themselves arrive later as messages in this chat, sent
through the same path as the proactive notices. The reply confirms what the backend stored
(its ``days_before``), never what was asked for. How many days ahead: a button's
``days_before`` entity, else a number of days in the message ("提前5天", "remind me 5 days
before", "一周"); with neither, the backend keeps the borrower's earlier choice or its default.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from .conversation import get_backend, lang_of, latest_intent, offer_events
from .records import RecordsUnavailable, call_backend
from .texts import button, guarded, text

MIN_DAYS, MAX_DAYS = 1, 14  # what the backend accepts (days_before 1-14)

_EN_NUMBERS = {"one": 1, "a": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
               "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
               "thirteen": 13, "fourteen": 14}
_DIGITS_DAYS = re.compile(r"(\d{1,3})\s*(?:个)?\s*(?:天|days?\b)", re.IGNORECASE)
_ZH_DAYS = re.compile(r"([一二两三四五六七八九十]{1,3})\s*(?:个)?\s*天")
_EN_DAYS = re.compile(r"\b(" + "|".join(_EN_NUMBERS) + r")\s+days?\b", re.IGNORECASE)
_WEEKS = re.compile(r"(一|1|one|a|两|2|two)\s*(?:个)?\s*(?:周|星期|礼拜|weeks?\b)",
                    re.IGNORECASE)


def _zh_number(word: str) -> int | None:
    """一..九十九 as an int ('十四' 14, '二十' 20), None when it is not one. The digits' values
    are Unicode's (``unicodedata.numeric``: 三 3, 两 2, 十 10)."""
    values = [int(unicodedata.numeric(char, -1)) for char in word]
    if any(v < 0 for v in values) or values.count(10) > 1 or len(values) > 3:
        return None
    if 10 not in values:
        return values[0] if len(values) == 1 else None
    at = values.index(10)
    tens, ones = values[:at], values[at + 1:]
    if len(tens) > 1 or len(ones) > 1:
        return None
    return (tens[0] if tens else 1) * 10 + (ones[0] if ones else 0)


def days_in(message: str) -> int | None:
    """The number of days ahead a message asks for, or None when it names none."""
    if match := _DIGITS_DAYS.search(message):
        return int(match.group(1))
    if match := _ZH_DAYS.search(message):
        return _zh_number(match.group(1))
    if match := _EN_DAYS.search(message):
        return _EN_NUMBERS[match.group(1).lower()]
    if match := _WEEKS.search(message):
        count = match.group(1).lower()
        return 14 if count in ("2", "two") or _zh_number(count) == 2 else 7
    return None


def requested_days(latest: dict[str, Any]) -> int | None:
    """Days ahead from the ``days_before`` entity (a button), else from the message's text."""
    for entity in latest.get("entities") or []:
        if entity.get("entity") == "days_before":
            try:
                return int(str(entity.get("value")))
            except ValueError:
                continue
    message = latest.get("text")
    return days_in(message) if isinstance(message, str) and not message.startswith("/") \
        else None


class SetReminders(Action):
    """``turn_on_reminders`` / ``turn_off_reminders``: store the choice and confirm it."""

    def name(self) -> str:
        return "action_set_reminders"

    @guarded
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        lang = lang_of(tracker)
        enabled = latest_intent(tracker) != "turn_off_reminders"
        days = requested_days(tracker.latest_message or {}) if enabled else None
        if days is not None and not MIN_DAYS <= days <= MAX_DAYS:
            dispatcher.utter_message(text=text("reminders.out_of_range", lang), buttons=[
                button("reminders_days_1", '/turn_on_reminders{"days_before": "1"}', lang),
                button("reminders_days_3", '/turn_on_reminders{"days_before": "3"}', lang),
                button("reminders_days_7", '/turn_on_reminders{"days_before": "7"}', lang)])
            return offer_events(None)
        try:
            stored = await call_backend(tracker, dispatcher, "reminder setting",
                                        get_backend().set_reminders, "reminders.failed",
                                        enabled=enabled, days_before=days)
        except RecordsUnavailable as failure:
            return failure.events
        if not stored["enabled"]:
            dispatcher.utter_message(text=text("reminders.turned_off", lang),
                                     buttons=[button("reminders_on", "/turn_on_reminders", lang)])
        elif stored["days_before"] == 1:
            dispatcher.utter_message(text=text("reminders.turned_on_one", lang),
                                     buttons=[button("reminders_off", "/turn_off_reminders",
                                                     lang)])
        else:
            dispatcher.utter_message(text=text("reminders.turned_on", lang,
                                               days=stored["days_before"]),
                                     buttons=[button("reminders_off", "/turn_off_reminders",
                                                     lang)])
        return offer_events(None)
