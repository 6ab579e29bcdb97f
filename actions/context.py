"""Read who is chatting and in which language from the channel, on every user message.

Identity comes only from the channel's message metadata (the in-app chat knows who is
logged in), never from what the borrower types. Runs as ``action_validate_slot_mappings``,
which Rasa calls after each user message.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import ValidationAction
from rasa_sdk.types import DomainDict

from . import language

BORROWER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")


def _metadata(tracker: Tracker) -> dict[str, Any]:
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    return metadata if isinstance(metadata, dict) else {}


class ReadChannelContext(ValidationAction):
    async def extract_borrower_id(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                  domain: DomainDict) -> dict[str, Any]:
        claimed = _metadata(tracker).get("borrower_id")
        if not isinstance(claimed, str) or not BORROWER_ID.match(claimed):
            return {}  # no identity in this message: keep what the channel said before
        if claimed == tracker.get_slot("borrower_id"):
            return {}
        # a different account on this channel: nothing learnt about the previous one applies
        return {"borrower_id": claimed, "decision": None, "pending_offer": None,
                "primary_reason": None, "appealable": None, "appeal_ids": None,
                "appeal_reason_code": None, "appeal_decision_id": None}

    async def extract_language(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                               domain: DomainDict) -> dict[str, Any]:
        metadata = _metadata(tracker)
        chosen = language.choose(metadata.get("locale"), (tracker.latest_message or {}).get("text"),
                                 tracker.get_slot("language"))
        return {} if chosen == tracker.get_slot("language") else {"language": chosen}
