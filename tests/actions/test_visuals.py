"""The picture attached to an answer about *when* (actions/visuals.py, common/situation.py).

Decisions are the demo borrowers' (conftest: seeded at NOW = Tue 10 Mar 2026, 12:00 in
Shanghai = 04:00 UTC). Every expected moment and figure below was read off those decisions
by hand (the seed: "paid ten minutes ago, posts in two hours", "cleared 28 days ago, 90-day
cooling-off", ...), never computed by the code under test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from actions.eligibility import ExplainDecision
from actions.explanations import explain
from actions.visuals import situation
from common.situation import validated
from eligibility.models import OverdueRecord

NOW_ISO = "2026-03-10T04:00:00Z"
# borrower -> (kind, start, end) of the window the "when" answer shows; None: no window
TIMELINES: dict[str, tuple[str, str, str] | None] = {
    "demo-posting": ("posting", "2026-03-10T03:50:00Z", "2026-03-10T06:00:00Z"),
    "demo-overdue": ("cooling_off", "2026-02-10T04:00:00Z", "2026-05-11T04:00:00Z"),
    "demo-risk-review": ("review", "2026-03-05T04:00:00Z", "2026-04-03T16:00:00Z"),
    "demo-score-drop": ("score", "2026-03-04T04:00:00Z", "2026-04-03T04:00:00Z"),
    "demo-policy": ("policy", "2026-02-26T04:00:00Z", "2026-04-11T16:00:00Z"),
    "demo-compliance": ("hold", "2026-03-08T04:00:00Z", "2026-03-13T04:00:00Z"),
    "demo-funding": ("funding", "2026-03-10T03:00:00Z", "2026-03-11T02:00:00Z"),
    "demo-incident": ("incident", "2026-03-10T03:20:00Z", "2026-03-10T07:00:00Z"),
    "demo-posting-incident": ("incident", "2026-03-10T03:20:00Z", "2026-03-10T07:00:00Z"),
    "demo-overdue-reduced": ("cooling_off", "2026-02-18T04:00:00Z", "2026-05-19T04:00:00Z"),
    "demo-in-use": None,           # the limit in use has no end date
    "demo-loan-cap": None,
    "demo-id-expired": None,       # re-verifying has no window
    "demo-id-score-funding": None,  # the main reason is the ID
    "demo-closed": None,
}
# borrower -> (total, available, in use) when part of the limit is not available
LIMITS: dict[str, tuple[float, float, float]] = {
    "demo-posting": (5000.0, 0.0, 5000.0),
    "demo-in-use": (5000.0, 416.67, 4583.33),
    "demo-loan-cap": (30000.0, 26000.0, 4000.0),
    "demo-posting-incident": (5000.0, 0.0, 5000.0),
    "demo-overdue-reduced": (6000.0, 200.0, 5800.0),
}
REASON = {"posting": "REPAYMENT_POSTING", "cooling_off": "OVERDUE_COOLING_OFF",
          "review": "RISK_REVIEW_NOT_PASSED", "score": "CREDIT_SCORE_DROPPED",
          "policy": "RISK_POLICY_TIGHTENED", "hold": "COMPLIANCE_HOLD",
          "funding": "FUNDING_QUOTA_EXHAUSTED", "incident": "SYSTEM_INCIDENT"}


def expected(borrower_id: str, lang: str) -> dict[str, Any] | None:
    window, limit = TIMELINES.get(borrower_id), LIMITS.get(borrower_id)
    if window is None and limit is None:
        return None
    return {
        "type": "relend.situation", "version": 1, "lang": lang, "timezone": "Asia/Shanghai",
        "now": NOW_ISO,
        "timeline": None if window is None else {
            "kind": window[0], "reason": REASON[window[0]], "start": window[1], "end": window[2]},
        "limit": None if limit is None else {
            "total": limit[0], "available": limit[1], "in_use": limit[2], "min_drawdown": 500.0,
            "currency": "CNY"},
    }


@pytest.mark.parametrize("borrower_id", sorted(TIMELINES))
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_when_answer_carries_the_window_and_the_limit(decisions: dict[str, Any],
                                                          now: datetime, borrower_id: str,
                                                          lang: str) -> None:
    answer = explain(decisions[borrower_id], lang=lang, now=now, focus="restore_time")

    assert answer.attachment == expected(borrower_id, lang)
    if answer.attachment is not None:
        assert validated(answer.attachment) == answer.attachment  # the desk will keep it


def test_nothing_is_attached_when_there_is_nothing_to_draw(decisions: dict[str, Any],
                                                           now: datetime) -> None:
    for borrower_id in ("demo-eligible", "demo-reduced", "demo-closed", "demo-id-expired"):
        answer = explain(decisions[borrower_id], lang="zh", now=now, focus="restore_time")
        assert answer.attachment is None, borrower_id


def test_only_answers_about_when_carry_it(decisions: dict[str, Any], now: datetime) -> None:
    decision = decisions["demo-posting"]
    carried = {focus: explain(decision, lang="zh", now=now, focus=focus).attachment is not None
               for focus in ("explain", "restore_time", "improve", "reduced_or_closed",
                             "repayment_status", "disagree")}
    # "why can't I borrow" too: its main reason (the posting) has both ends of its window
    assert carried == {"explain": True, "restore_time": True, "improve": False,
                       "reduced_or_closed": False, "repayment_status": True, "disagree": False}


@pytest.mark.parametrize("borrower_id", sorted(TIMELINES))
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_why_answer_carries_the_picture_only_when_its_reason_has_a_window(
        decisions: dict[str, Any], now: datetime, borrower_id: str, lang: str) -> None:
    """Issue 12: the first "why can't I borrow" explanation shows the window it waits out;
    a main reason without a window (the ID, the limit in use, a closed line) gets no
    picture, even when part of the limit is in use -- the text alone answers "why"."""
    answer = explain(decisions[borrower_id], lang=lang, now=now, focus="explain")

    assert answer.attachment == (expected(borrower_id, lang) if TIMELINES[borrower_id]
                                 else None)


def test_an_eligible_borrower_asking_why_gets_no_picture(decisions: dict[str, Any],
                                                         now: datetime) -> None:
    for borrower_id in ("demo-eligible", "demo-reduced"):
        assert explain(decisions[borrower_id], lang="zh", now=now,
                       focus="explain").attachment is None, borrower_id


def test_asking_about_the_repayment_shows_its_posting_window(decisions: dict[str, Any],
                                                             now: datetime) -> None:
    # the incident leads the "when" answer; the repayment question leads with the posting
    answer = explain(decisions["demo-posting-incident"], lang="zh", now=now,
                     focus="repayment_status")
    assert answer.attachment["timeline"] == {
        "kind": "posting", "reason": "REPAYMENT_POSTING",
        "start": "2026-03-10T03:50:00Z", "end": "2026-03-10T06:00:00Z"}


def test_a_window_without_both_ends_is_not_drawn(decisions: dict[str, Any],
                                                 decide: Callable[..., dict[str, Any]],
                                                 now: datetime) -> None:
    # a review with no next review date: the decision gives no end, so no timeline (and the
    # whole limit is available, so no picture at all)
    review = decisions["demo-risk-review"]
    review["reasons"][0]["next_review_at"] = None
    assert situation(review, review["reasons"][0], lang="zh", now=now) is None

    # an unpaid overdue has no cooling-off end yet
    def unpaid(b: Any) -> None:  # 800 due 6 days ago, still unpaid
        b.line(20000)
        loan = b.loan(800, 800)
        b.add(OverdueRecord(borrower_id=b.borrower.id, loan_id=loan.id,
                            due_date=b.now - timedelta(days=6), amount_cents=80000,
                            days_overdue=6, cleared_at=None))

    decision = decide("t-visual-unpaid", unpaid)
    [reason] = [r for r in decision["reasons"] if r["code"] == "OVERDUE_COOLING_OFF"]
    assert reason["details"]["cleared"] is False
    answer = explain(decision, lang="en", now=now, focus="restore_time")
    assert answer.attachment is None or answer.attachment["timeline"] is None

    # a window the backend got backwards is not drawn either
    backwards = decisions["demo-posting"]
    details = backwards["reasons"][0]["details"]
    details["expected_post_at"] = "2026-03-10T03:00:00Z"  # before paid_at (03:50)
    drawn = situation(backwards, backwards["reasons"][0], lang="zh", now=now)
    assert drawn is not None and drawn["timeline"] is None and drawn["limit"] is not None


def test_the_action_sends_it_with_the_text(make_tracker, run, backend,
                                           decisions: dict[str, Any]) -> None:
    backend.on("GET", "/v1/borrowers/demo-posting/eligibility", (200, decisions["demo-posting"]))
    outcome = run(ExplainDecision(), make_tracker("额度什么时候恢复", "ask_limit_restore_time",
                                                  borrower="demo-posting", lang="zh"))

    [message] = outcome.messages
    assert "今天 14:00" in message["text"]  # the words say it all without the picture
    assert message["custom"] == expected("demo-posting", "zh")

    # the first "why can't I borrow" answer carries it too (issue 12): the posting window
    why = run(ExplainDecision(), make_tracker("为什么借不了", "cannot_borrow_after_repayment",
                                              borrower="demo-posting", lang="zh"))
    assert why.messages[0]["custom"] == expected("demo-posting", "zh")

    # a reason with no window (the ID to re-verify): the why answer comes without a picture
    backend.on("GET", "/v1/borrowers/demo-id-expired/eligibility",
               (200, decisions["demo-id-expired"]))
    plain = run(ExplainDecision(), make_tracker("为什么借不了", "cannot_borrow_after_repayment",
                                                borrower="demo-id-expired", lang="zh"))
    assert not plain.messages[0].get("custom")
