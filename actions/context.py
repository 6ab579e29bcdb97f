"""Read who is chatting and in which language from the channel and the message.

Identity comes only from the channel's message metadata (the in-app chat knows who is
logged in and the desk signs it into every message), never from what the borrower types.

Where it runs: the action server applies :func:`channel_slots` to every action call before
the action runs (``actions/server.py``), and sends the slot changes back with the action's
events. At session start (``action_session_start``, once per session) it reads the metadata
Rasa keeps for the session (``session_started_metadata``), so Rasa's own responses
(greeting, thanks, small talk) are in the right language from the first message; every
custom action after that reads the message it answers. It used to run as
``action_validate_slot_mappings``, which Rasa calls after *every* user message: an extra
action round trip per message (docs/performance.md). ``ReadChannelContext`` keeps that
action's rules for the tests that drive actions one by one; the domain no longer lists it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import ValidationAction
from rasa_sdk.types import DomainDict

from . import language

BORROWER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
# a different account on this channel: nothing learnt about the previous one applies
FORGET_ON_NEW_ACCOUNT = ("decision", "pending_offer", "primary_reason", "appealable",
                         "appeal_ids", "appeal_reason_code", "appeal_decision_id")
SESSION_START = "action_session_start"
SESSION_METADATA_SLOT = "session_started_metadata"
# events after which slots start again from their initial values
RESETS = frozenset({"session_started", "restart", "reset_slots"})


def _metadata(tracker: Tracker) -> dict[str, Any]:
    metadata = (tracker.latest_message or {}).get("metadata") or {}
    return metadata if isinstance(metadata, dict) else {}


def identity_slots(metadata: Any, slots: Mapping[str, Any]) -> dict[str, Any]:
    """``borrower_id`` from the metadata when it is a valid id and a change; a new account
    also forgets what was learnt about the previous one."""
    claimed = metadata.get("borrower_id") if isinstance(metadata, dict) else None
    if not isinstance(claimed, str) or not BORROWER_ID.match(claimed):
        return {}  # no identity in this message: keep what the channel said before
    if claimed == slots.get("borrower_id"):
        return {}
    return {"borrower_id": claimed, **dict.fromkeys(FORGET_ON_NEW_ACCOUNT)}


def language_slots(metadata: Any, text: Any, slots: Mapping[str, Any],
                   session_start: bool = False) -> dict[str, Any]:
    """``language``: the message's language when it is clear, else as before, else the app's
    locale (``actions.language.choose``: the one rule). A new session starts from the locale:
    what the borrower wrote in an earlier session does not count."""
    locale = metadata.get("locale") if isinstance(metadata, dict) else None
    previous = None if session_start else slots.get("language")
    chosen = language.choose(locale, text, previous)
    return {} if chosen == slots.get("language") else {"language": chosen}


def channel_slots(action_call: Mapping[str, Any]) -> dict[str, Any]:
    """The slot changes the channel's context calls for, for one action call (Rasa's request
    to the action server): the latest message's metadata and text, or at session start the
    session's metadata (the message that opens the session is not in the tracker yet)."""
    tracker = action_call.get("tracker")
    if not isinstance(tracker, dict):
        return {}
    slots = tracker.get("slots") if isinstance(tracker.get("slots"), dict) else {}
    if action_call.get("next_action") == SESSION_START:
        metadata, text = slots.get(SESSION_METADATA_SLOT), None
    else:
        latest = tracker.get("latest_message") if isinstance(tracker.get("latest_message"),
                                                             dict) else {}
        metadata, text = latest.get("metadata"), latest.get("text")
    return {**identity_slots(metadata, slots),
            **language_slots(metadata, text, slots,
                             session_start=action_call.get("next_action") == SESSION_START)}


def with_channel_slots(events: list[dict[str, Any]], changes: Mapping[str, Any]
                       ) -> list[dict[str, Any]]:
    """The action's events with the context's slot events in front of them (the action's own
    slot events win), or right after its last reset (a new session, a restart), which would
    otherwise wipe them."""
    context = [{"event": "slot", "name": name, "value": value, "timestamp": None}
               for name, value in changes.items()]
    after = max((i + 1 for i, e in enumerate(events)
                 if isinstance(e, dict) and e.get("event") in RESETS), default=0)
    return [*events[:after], *context, *events[after:]]


class ReadChannelContext(ValidationAction):
    """The same rules as ``action_validate_slot_mappings`` (no longer in the domain: the
    action server applies them to every action call, see the module's docstring)."""

    async def extract_borrower_id(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                  domain: DomainDict) -> dict[str, Any]:
        return identity_slots(_metadata(tracker), tracker.slots)

    async def extract_language(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                               domain: DomainDict) -> dict[str, Any]:
        return language_slots(_metadata(tracker), (tracker.latest_message or {}).get("text"),
                              tracker.slots)
