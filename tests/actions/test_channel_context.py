"""Identity and language from the channel, read by the action server for every action call
(actions/server.py ``ChannelContextExecutor``, rules in actions/context.py) instead of by a
separate ``action_validate_slot_mappings`` round trip after every message.

The rules themselves (valid ids only, a new account forgets the old one, locale before the
text's language) are tested through ``ReadChannelContext`` in test_actions_fake_http.py;
these check that the executor applies the same rules, before the action runs, and returns
the changes with the action's events in an order Rasa applies correctly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from actions.context import (
    FORGET_ON_NEW_ACCOUNT,
    ReadChannelContext,
    channel_slots,
    with_channel_slots,
)
from actions.server import ChannelContextExecutor
from actions.texts import render
from stack.config import ROOT


def call(make_tracker: Callable[..., Any], action: str, text: str = "",
         intent: str | None = None, **tracker: Any) -> dict[str, Any]:
    """Rasa's request to the action server for ``action`` on this tracker."""
    state = make_tracker(text, intent, **tracker).current_state()
    return {"next_action": action, "sender_id": state["sender_id"], "tracker": state,
            "domain": {}, "version": "3.6.21"}


def execute(action_call: dict[str, Any]) -> dict[str, Any]:
    executor = ChannelContextExecutor()
    executor.register_package("actions")
    result = asyncio.run(executor.run(action_call))
    assert isinstance(result, dict)
    return result


def slot_events(result: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(e["name"], e["value"]) for e in result["events"] if e["event"] == "slot"]


def test_the_domain_no_longer_runs_an_action_after_every_message() -> None:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    assert "action_validate_slot_mappings" not in domain["actions"]


def test_an_action_sees_and_returns_the_identity_and_language_of_its_message(
        make_tracker) -> None:
    result = execute(call(make_tracker, "action_decline_offer", "no thanks", "deny",
                          metadata={"borrower_id": "demo-posting", "locale": "en-US"}))
    # the action answered in the message's language: it saw the slots already changed
    assert result["responses"][0]["text"] == render("anything_else", "en")[0]
    assert slot_events(result) == [
        ("borrower_id", "demo-posting"), *((name, None) for name in FORGET_ON_NEW_ACCOUNT),
        ("language", "en"), ("pending_offer", None)]


def test_nothing_is_added_when_the_channel_says_what_the_slots_hold(make_tracker) -> None:
    result = execute(call(make_tracker, "action_decline_offer", "不用了", "deny",
                          metadata={"borrower_id": "demo-posting", "locale": "zh-CN"},
                          borrower="demo-posting", lang="zh"))
    assert slot_events(result) == [("pending_offer", None)]


def test_a_new_session_starts_with_the_identity_and_language_of_its_first_message(
        make_tracker, desk) -> None:
    desk.on("GET", "/internal/conversations/conv-1", (404, {"error": {"code": "not_found"}}))
    result = execute(call(make_tracker, "action_session_start", slots={
        "session_started_metadata": {"borrower_id": "demo-posting", "locale": "en-US"}}))
    kinds = [e["event"] for e in result["events"]]
    assert kinds[0] == "session_started" and kinds[-1] == "action"
    after_start = dict(slot_events(result))  # applied in order: the last value wins
    assert after_start["borrower_id"] == "demo-posting"
    assert after_start["language"] == "en"
    assert "session_started_metadata" not in after_start
    assert desk.paths() == ["/internal/conversations/conv-1"]  # who owns it: the bot


@pytest.mark.parametrize(("locale", "text", "previous", "expected"), [
    ("en-US", "为什么借不了", "zh", None),  # a Chinese message on an English phone: stays zh
    ("zh-CN", "why can't I borrow", "zh", "en"),  # an English message on a Chinese phone
    (None, "为什么借不了", "en", "zh"),
    (None, "why can't I borrow", "zh", "en"),
    (None, "123456", "en", None),
    (None, "/request_human", "en", None),
])
def test_the_executor_applies_the_same_rules_as_the_old_action(
        make_tracker, run, locale, text, previous, expected) -> None:
    metadata = {"borrower_id": "demo-posting", **({"locale": locale} if locale else {})}
    tracker = dict(metadata=metadata, borrower="demo-posting", lang=previous)
    old = run(ReadChannelContext(), make_tracker(text, **tracker)).slots
    new = channel_slots(call(make_tracker, "action_decline_offer", text, **tracker))
    assert new == old
    assert new.get("language") == expected


@pytest.mark.parametrize("claimed", ["", 123, "../../admin", "a b", "x" * 65, "demo\n"])
def test_no_valid_id_in_the_metadata_changes_no_identity(make_tracker, claimed) -> None:
    changes = channel_slots(call(make_tracker, "action_explain_decision", "我是demo-eligible",
                                 metadata={"borrower_id": claimed, "locale": "zh-CN"},
                                 borrower="demo-overdue", lang="zh"))
    assert changes == {}


def test_the_actions_own_slot_events_come_after_the_context() -> None:
    own = [{"event": "slot", "name": "decision", "value": {"borrower_id": "b"}}]
    events = with_channel_slots(own, {"borrower_id": "b", "decision": None})
    assert [(e["name"], e["value"]) for e in events] == [
        ("borrower_id", "b"), ("decision", None), ("decision", {"borrower_id": "b"})]


@pytest.mark.parametrize("reset", ["session_started", "restart", "reset_slots"])
def test_the_context_follows_a_reset_that_would_wipe_it(reset) -> None:
    own = [{"event": "slot", "name": "x", "value": 1}, {"event": reset},
           {"event": "pause"}, {"event": "action", "name": "action_listen"}]
    events = with_channel_slots(own, {"language": "en"})
    assert [e["event"] for e in events] == ["slot", reset, "slot", "pause", "action"]
    assert events[2]["name"] == "language"
