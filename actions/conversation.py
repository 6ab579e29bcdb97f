"""What every action needs from the conversation: who, which language, the current decision.

The decision is fetched once and kept in the ``decision`` slot; follow-up questions within
``RELEND_DECISION_MAX_AGE_SECONDS`` reuse it instead of calling the backend again.
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from . import language
from .backend import BackendError, BorrowerUnknown, EligibilityBackend
from .clock import timestamp
from .settings import settings
from .texts import TextError, say, text_failed

log = logging.getLogger("relend.actions")


@cache
def get_backend() -> EligibilityBackend:
    return EligibilityBackend(settings())


def lang_of(tracker: Tracker) -> str:
    value = tracker.get_slot("language")
    return value if value in language.SUPPORTED else language.DEFAULT


def borrower_of(tracker: Tracker) -> str | None:
    value = tracker.get_slot("borrower_id")
    return value if isinstance(value, str) and value else None


def latest_intent(tracker: Tracker) -> str:
    return (tracker.latest_message or {}).get("intent", {}).get("name") or ""


def _fresh(decision: Any, borrower_id: str) -> bool:
    if not isinstance(decision, dict) or decision.get("borrower_id") != borrower_id:
        return False
    fetched = decision.get("_fetched_at", 0)
    return isinstance(fetched, (int, float)) and timestamp() - fetched < settings().decision_max_age


class DecisionUnavailable(Exception):
    """No decision could be had. The borrower has already been told; ``events`` record the
    offer that went with it (a human, where one can help)."""

    def __init__(self, why: str, events: list[EventType]) -> None:
        super().__init__(why)
        self.events = events


async def current_decision(tracker: Tracker, dispatcher: CollectingDispatcher,
                           *, refresh: bool = False) -> tuple[dict[str, Any], list[EventType]]:
    """The borrower's decision (cached or fetched), or DecisionUnavailable after telling them."""
    borrower_id = borrower_of(tracker)
    if borrower_id is None:
        say(dispatcher, "no_identity", lang_of(tracker))
        raise DecisionUnavailable("no identity", offer_events(None))
    cached = tracker.get_slot("decision")
    if not refresh and _fresh(cached, borrower_id):
        return cached, []
    context = f"conversation={tracker.sender_id} borrower={borrower_id}"
    try:
        decision = await asyncio.to_thread(get_backend().eligibility, borrower_id,
                                           context=context)
    except BorrowerUnknown:
        log.warning("borrower unknown to the backend [%s]", context)
        say(dispatcher, "account_not_found", lang_of(tracker))
        raise DecisionUnavailable("unknown borrower", offer_events("human")) from None
    except TextError as exc:
        # the decision is fine, a text to explain it is broken: not a backend failure
        events = text_failed(dispatcher, lang_of(tracker), exc, f"decision check [{context}]")
        raise DecisionUnavailable("text", events) from exc
    except BackendError as exc:
        log.error("eligibility unavailable [%s]: %s", context, exc)
        say(dispatcher, "backend_unavailable", lang_of(tracker))
        raise DecisionUnavailable("backend", [*offer_events("human"),
                                              SlotSet("backend_failed", True)]) from exc
    decision["_fetched_at"] = timestamp()
    return decision, [SlotSet("decision", decision)]


def offer_events(offer: str | None) -> list[EventType]:
    return [SlotSet("pending_offer", offer)]
