"""Issue 12: the agent's context panel follows the bot's later checks of the account.

When an agent hands a conversation back with a note (or runs the check), the bot checks the
account again while the case is still open; the new decision goes to the desk, which updates
the case. Against the faked eligibility service and desk of conftest.
"""

from __future__ import annotations

import logging

import requests

from actions.handoff import ResumeAfterHandoff

DECISION_PATH = "/internal/conversations/conv-1/decision"


def test_a_recheck_while_the_case_is_open_sends_the_new_decision_to_the_desk(
        make_tracker, run, backend, desk, decisions) -> None:
    fresh = decisions["demo-eligible"] | {"borrower_id": "demo-overdue"}
    backend.on("GET", "/v1/borrowers/demo-overdue/eligibility", (200, fresh))
    desk.on("POST", DECISION_PATH, (200, {"case_id": 7}))
    stale = {**decisions["demo-overdue"], "_fetched_at": 9e12}  # what the case got at handoff

    outcome = run(ResumeAfterHandoff(), make_tracker(
        borrower="demo-overdue", slots={"agent_note": "已豁免逾期记录", "decision": stale}))

    [call] = desk.calls
    assert (call.method, call.path) == ("POST", DECISION_PATH)
    assert call.headers["Authorization"] == "Bearer test-desk-token"
    # the backend's answer as it came (the bot's own bookkeeping, "_fetched_at", stays home)
    assert call.json == {"decision": fresh, "backend_failed": False}
    assert call.json["decision"]["eligible"] is True
    assert outcome.slots["decision"]["eligible"] is True  # the bot answers from it too


def test_a_failed_recheck_tells_the_desk_the_case_may_be_stale(make_tracker, run, backend,
                                                                desk) -> None:
    backend.on("GET", "/v1/borrowers/demo-overdue/eligibility", requests.ConnectionError("down"))
    desk.on("POST", DECISION_PATH, (200, {"case_id": 7}))

    outcome = run(ResumeAfterHandoff(), make_tracker(
        lang="en", borrower="demo-overdue", slots={"agent_note": "waived"}))

    assert [c.json for c in desk.calls] == [{"decision": None, "backend_failed": True}]
    assert outcome.slots["backend_failed"] is True


def test_no_recheck_no_call(make_tracker, run, backend, desk) -> None:
    run(ResumeAfterHandoff(), make_tracker(borrower="demo-overdue"))  # no note: no check

    assert desk.calls == [] and backend.calls == []


def test_a_desk_that_cannot_take_the_update_changes_nothing_for_the_borrower(
        make_tracker, run, backend, desk, decisions, caplog) -> None:
    backend.on("GET", "/v1/borrowers/demo-eligible/eligibility",
               (200, decisions["demo-eligible"]))
    desk.on("POST", DECISION_PATH, (503, {"error": "busy"}))
    caplog.set_level(logging.WARNING)

    outcome = run(ResumeAfterHandoff(), make_tracker(
        borrower="demo-eligible", slots={"agent_note": "已处理"}))

    assert len(outcome.messages) == 2  # the note, then the explanation, as without a desk
    assert outcome.slots["decision"]["eligible"] is True
    assert len(desk.calls) == 1  # a POST that reached the desk is not repeated
    assert any("conv-1" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
