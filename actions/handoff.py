"""Handing the conversation to a person and taking it back.

A handoff creates a case at the support desk carrying everything the bot knows (who, which
language, the topics so far, the latest decision with its figures, appeal ids and the
transcript) and pauses the bot. The desk is the source of truth for who owns a
conversation: after a session expiry or a /restart, Rasa would silently un-pause the bot,
so ``action_session_start`` and ``action_restart`` ask the desk and pause again.

When the bot checks the account again while a case is still open (an agent hands the
conversation back with a note, or runs the check), it sends the new decision to the desk,
which updates the case's context panel live (``report_decision``).
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from typing import Any

import requests
from rasa_sdk import Action, Tracker
from rasa_sdk.events import (
    ActionExecuted,
    ConversationPaused,
    EventType,
    Restarted,
    SessionStarted,
    SlotSet,
)
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from .clock import utc_now
from .conversation import (
    DecisionUnavailable,
    borrower_of,
    current_decision,
    lang_of,
    offer_events,
)
from .http import ServiceClient
from .settings import ActionSettings, settings
from .texts import say

log = logging.getLogger("relend.actions.handoff")

TRANSCRIPT_LIMIT = 200
NOT_TOPICS = {"affirm", "deny", "cancel", "greet", "goodbye", "thank", "nlu_fallback", None, ""}


class Desk(ServiceClient):
    """The support desk's internal API, under the shared HTTP policy (``actions.http``).

    Its POSTs are not repeated once sent: opening a case carries no idempotency key, and the
    desk's check for an open case is not atomic. A request that could not connect is."""

    def __init__(self, config: ActionSettings, session: requests.Session | None = None) -> None:
        super().__init__(config.desk_url, config.desk_token, config, session)

    def call(self, method: str, path: str, *, json: Any = None) -> Any:
        """The answer's JSON; ``requests.HTTPError`` for an error status, ``ValueError`` for
        an answer that is not JSON, any other ``requests.RequestException`` for no answer."""
        response = self.request(method, path, json=json)
        response.raise_for_status()
        return response.json()


@cache
def get_desk() -> Desk:
    return Desk(settings())


async def desk_says_agent_owns(conversation_id: str) -> bool | None:
    """True/False from the desk, or None when the desk cannot be asked."""
    try:
        body = await asyncio.to_thread(get_desk().call, "GET",
                                      f"/internal/conversations/{conversation_id}")
    except requests.HTTPError as exc:
        if exc.response is not None and exc.response.status_code == 404:
            return False
        log.warning("desk ownership check failed [conversation=%s]: %s", conversation_id, exc)
        return None
    except (requests.RequestException, ValueError) as exc:
        log.warning("desk ownership check failed [conversation=%s]: %s", conversation_id, exc)
        return None
    if not isinstance(body, dict):
        log.warning("desk ownership check gave no object [conversation=%s]", conversation_id)
        return None
    return body.get("owner") == "agent"


async def report_decision(conversation_id: str, decision: dict[str, Any] | None) -> None:
    """The account was checked again: the desk updates the conversation's open case, if any,
    with the new decision (None: the check failed, and the case says its decision may be
    stale). The agent's view is a convenience: a failure here is logged, never the borrower's
    problem."""
    if isinstance(decision, dict):
        decision = {k: v for k, v in decision.items() if not k.startswith("_")}
    body = {"decision": decision, "backend_failed": decision is None}
    try:
        await asyncio.to_thread(get_desk().call, "POST",
                                f"/internal/conversations/{conversation_id}/decision", json=body)
    except (requests.RequestException, ValueError) as exc:
        log.warning("could not update the case with the new decision [conversation=%s]: %s",
                    conversation_id, exc)


def transcript(tracker: Tracker) -> list[dict[str, Any]]:
    lines = []
    for event in tracker.events:
        kind = event.get("event")
        if kind == "user" and event.get("text"):
            lines.append({"sender": "borrower", "text": event["text"],
                          "intent": (event.get("parse_data") or {}).get("intent", {}).get("name"),
                          "at": event.get("timestamp")})
        elif kind == "bot" and event.get("text"):
            lines.append({"sender": "bot", "text": event["text"], "at": event.get("timestamp")})
    return lines[-TRANSCRIPT_LIMIT:]


def topics(tracker: Tracker) -> list[str]:
    seen: list[str] = []
    for line in transcript(tracker):
        intent = line.get("intent")
        if intent not in NOT_TOPICS and intent not in seen:
            seen.append(intent)
    return seen


def case_payload(tracker: Tracker, reason: str,
                 decision: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the agent gets: ``decision`` (else the one the bot last fetched) and the rest."""
    decision = decision if decision is not None else tracker.get_slot("decision")
    if isinstance(decision, dict):
        decision = {k: v for k, v in decision.items() if not k.startswith("_")}
    statement = tracker.get_slot("appeal_statement")
    return {
        "conversation_id": tracker.sender_id,
        "borrower_id": tracker.get_slot("borrower_id"),
        "language": lang_of(tracker),
        "reason": reason,
        "topics": topics(tracker),
        "decision": decision if isinstance(decision, dict) else None,
        "appeal_ids": list(tracker.get_slot("appeal_ids") or []),
        "unfiled_appeal_statement": statement if tracker.get_slot("appeal_reason_code")
        else tracker.get_slot("statement_draft"),
        "backend_failed": bool(tracker.get_slot("backend_failed")) or (
            decision is None and borrower_of(tracker) is not None),
        "transcript": transcript(tracker),
    }


def _handoff_reason(tracker: Tracker, default: str) -> str:
    preset = tracker.get_slot("handoff_reason")
    if preset:
        return str(preset)
    if tracker.get_slot("backend_failed"):
        return "backend_unavailable"
    if tracker.get_slot("pending_offer") == "human":
        return "offered_by_bot"
    return default


async def decision_for_case(tracker: Tracker) -> tuple[dict[str, Any] | None, list[EventType]]:
    """The decision the agent will see: the bot's if still fresh, else checked now (a borrower
    who asks for a person first has had no check yet). A failure is the case's to show
    (``backend_failed``), not a second message to the borrower, who is being handed off."""
    if borrower_of(tracker) is None:
        return None, []
    try:
        return await current_decision(tracker, CollectingDispatcher())
    except DecisionUnavailable:
        return None, []


async def hand_off(dispatcher: CollectingDispatcher, tracker: Tracker,
                   reason: str) -> list[EventType]:
    """Open a case for agents and pause the bot; shared by every handoff trigger."""
    decision, fetched = await decision_for_case(tracker)
    payload = case_payload(tracker, reason, decision)
    try:
        case = await asyncio.to_thread(get_desk().call, "POST", "/internal/handoffs",
                                      json=payload)
    except (requests.RequestException, ValueError) as exc:
        log.error("handoff failed [conversation=%s reason=%s]: %s",
                  tracker.sender_id, reason, exc)
        say(dispatcher, "handoff_failed", lang_of(tracker))
        return offer_events(None)
    log.info("handed off [conversation=%s case=%s reason=%s]",
             tracker.sender_id, case.get("case_id") if isinstance(case, dict) else None, reason)
    say(dispatcher, "handoff_started", lang_of(tracker))
    return [*fetched, *offer_events(None), SlotSet("handoff_active", True),
            SlotSet("handoff_reason", None),
            ConversationPaused(), ActionExecuted("action_listen")]


class HandoffToHuman(Action):
    def name(self) -> str:
        return "action_handoff_to_human"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        return await hand_off(dispatcher, tracker, _handoff_reason(tracker, "borrower_asked"))


class ResumeAfterHandoff(Action):
    """Run by the desk when an agent returns the conversation to the bot. The desk runs it
    through Rasa's execute API, outside a user turn, so it ends by listening: the borrower's
    next message then meets the rules exactly as after any other bot turn."""

    def name(self) -> str:
        return "action_resume_after_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        return [*await self._resume(dispatcher, tracker), ActionExecuted("action_listen")]

    async def _resume(self, dispatcher: CollectingDispatcher,
                      tracker: Tracker) -> list[EventType]:
        events: list[EventType] = [SlotSet("handoff_active", False), SlotSet("agent_note", None),
                                   SlotSet("backend_failed", False)]
        note = tracker.get_slot("agent_note")
        if not note:
            say(dispatcher, "back_from_agent", lang_of(tracker))
            return events
        say(dispatcher, "back_from_agent_with_note", lang_of(tracker), note=note)
        try:
            # the agent may have fixed something: look again rather than repeat the old answer
            decision, fetched = await current_decision(tracker, dispatcher, refresh=True)
        except DecisionUnavailable as failure:
            if any(e.get("name") == "backend_failed" and e.get("value") for e in failure.events):
                await report_decision(tracker.sender_id, None)  # the case's may be stale now
            return [*events, *failure.events]
        await report_decision(tracker.sender_id, decision)  # the case shows it (still open)
        # an appeal already filed against this decision is named, not offered again (appeals
        # imports this module: imported here)
        from .appeals import explain_knowing_appeals

        explanation = await explain_knowing_appeals(tracker, decision, lang=lang_of(tracker),
                                                    now=utc_now())
        dispatcher.utter_message(text=explanation.text, buttons=explanation.buttons)
        return [*events, *fetched, *offer_events(explanation.offer)]


class SessionStart(Action):
    """A new session keeps the slots and, if an agent owns the conversation, stays paused."""

    def name(self) -> str:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        carried = [SlotSet(name, value) for name, value in tracker.slots.items()
                   if value is not None and name != "session_started_metadata"]
        events: list[EventType] = [SessionStarted(), *carried]
        if await _agent_owns(tracker):
            events += [SlotSet("handoff_active", True), ConversationPaused()]
        elif tracker.get_slot("handoff_active"):
            events.append(SlotSet("handoff_active", False))  # the desk says the bot has it
        events.append(ActionExecuted("action_listen"))
        return events


class Restart(Action):
    """/restart clears the conversation, but never takes it away from an agent."""

    def name(self) -> str:
        return "action_restart"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        if await _agent_owns(tracker):
            return [Restarted(), SlotSet("handoff_active", True), ConversationPaused(),
                    ActionExecuted("action_listen")]
        return [Restarted()]


async def _agent_owns(tracker: Tracker) -> bool:
    owned = await desk_says_agent_owns(tracker.sender_id)
    if owned is None:  # desk unreachable: trust what this conversation last knew
        return bool(tracker.get_slot("handoff_active"))
    return owned
