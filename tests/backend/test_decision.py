"""``eligibility.decision.evaluate``: every reason code and its edges.

The ``records`` fixture builds a borrower's records as ORM objects; ``decide`` stores them as
rows (on SQLite and on PostgreSQL), loads them back with ``load_decision_inputs`` exactly as the
service does, evaluates at ``now`` and rolls back. So each case also checks the loading: a
record the load query drops, mis-orders or mis-reads fails here. Amounts in the builders are
yuan; the evaluation reports cents.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from eligibility.decision import Evaluation, Reason, evaluate
from eligibility.reasons import REASONS, SCORE_FACTORS, sort_key
from eligibility.records import load_decision_inputs

from .support import Records, store

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)
MIN_DRAWDOWN_CENTS = 50_000  # 500 yuan, as the service is configured


@pytest.fixture
def now(records) -> datetime:  # type: ignore[no-untyped-def]
    return records.now


Decide = Callable[..., Evaluation]


@pytest.fixture
def decide(module_engine: Engine, records: Records) -> Decide:
    """``decide(borrower, now, policies=..., quota_windows=..., incidents=...)``: the decision
    on the records as they are now (each call stores them afresh, and rolls back after)."""
    def decide(borrower: Any, now: datetime, *, policies: Sequence[Any] = (),
               quota_windows: Sequence[Any] = (), incidents: Sequence[Any] = ()) -> Evaluation:
        with module_engine.connect() as connection:  # closed without a commit: rolled back
            store(connection, borrower, *records.supporting, *policies, *quota_windows,
                  *incidents)
            inputs = load_decision_inputs(connection, borrower.id, now)
        assert inputs is not None
        return evaluate(inputs, now=now, min_drawdown_cents=MIN_DRAWDOWN_CENTS)

    return decide


def codes(result: Evaluation) -> list[str]:
    return [r.code for r in result.reasons]


def only(result: Evaluation, code: str) -> Reason:
    found = [r for r in result.reasons if r.code == code]
    assert len(found) == 1, f"expected one {code} in {codes(result)}"
    return found[0]


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# --- the baseline --------------------------------------------------------------------------


def test_healthy_borrower_is_eligible_with_no_reasons(records, now, decide):
    result = decide(records.borrower(limit=20_000), now)
    assert result.eligible is True
    assert result.reasons == []
    assert result.total_limit_cents == result.available_limit_cents == 2_000_000


def test_catalogue_flags_match_the_issue():
    appealable = {code for code, spec in REASONS.items() if spec.appealable}
    limiting = {code for code, spec in REASONS.items() if spec.limiting}
    assert appealable == {"CREDIT_LINE_CLOSED", "OVERDUE_COOLING_OFF", "RISK_REVIEW_NOT_PASSED",
                          "RISK_POLICY_TIGHTENED", "CREDIT_SCORE_DROPPED", "LIMIT_REDUCED"}
    assert limiting == {"REPAYMENT_POSTING", "LIMIT_IN_USE", "LIMIT_REDUCED"}
    assert [spec.rank for spec in REASONS.values()] == sorted(
        spec.rank for spec in REASONS.values())


# --- CREDIT_LINE_CLOSED ---------------------------------------------------------------------


def test_closed_line_blocks_and_is_appealable(records, now, decide):
    borrower = records.borrower(limit=15_000)
    borrower.credit_line.status = "closed"
    borrower.credit_line.closed_at = now - 14 * DAY
    borrower.credit_line.closed_reason = "long_inactivity"
    records.loan(borrower, 3000, 2000)  # limit questions are moot on a closed line

    result = decide(borrower, now)

    assert result.eligible is False
    assert codes(result) == ["CREDIT_LINE_CLOSED"]
    reason = only(result, "CREDIT_LINE_CLOSED")
    assert reason.blocking and reason.appealable
    assert reason.details == {"closed_at": iso(now - 14 * DAY), "closed_reason": "long_inactivity",
                              "limit_before_closing": 15_000.0}
    assert (result.total_limit_cents, result.available_limit_cents) == (0, 0)


def test_line_closed_at_the_borrowers_request_is_not_appealable(records, now, decide):
    borrower = records.borrower()
    borrower.credit_line.status = "closed"
    borrower.credit_line.closed_at = now - DAY
    borrower.credit_line.closed_reason = "borrower_request"

    reason = only(decide(borrower, now), "CREDIT_LINE_CLOSED")

    assert reason.appealable is False
    assert REASONS["CREDIT_LINE_CLOSED"].appealable is True  # only this closing reason


def test_no_credit_line_at_all_reads_as_closed(records, now, decide):
    result = decide(records.borrower(limit=None), now)
    assert result.eligible is False
    assert only(result, "CREDIT_LINE_CLOSED").details["closed_reason"] == "no_line"


# --- COMPLIANCE_HOLD --------------------------------------------------------------------------


def test_active_compliance_hold_blocks_and_is_not_appealable(records, now, decide):
    borrower = records.borrower()
    hold = records.hold(borrower, placed_at=now - 2 * DAY, expected_review_at=now + 3 * DAY,
                        kind="regulatory")

    result = decide(borrower, now)

    reason = only(result, "COMPLIANCE_HOLD")
    assert result.eligible is False
    assert reason.blocking and not reason.appealable
    assert reason.details == {"hold_id": hold.id, "kind": "regulatory",
                              "placed_at": iso(now - 2 * DAY)}
    assert reason.next_review_at == now + 3 * DAY


@pytest.mark.parametrize("placed, released, applies", [
    (-2 * DAY, None, True),
    (-2 * DAY, -SECOND, False),    # released a moment ago
    (-2 * DAY, timedelta(0), False),  # released exactly now
    (-2 * DAY, +SECOND, True),     # release scheduled, not yet
    (+SECOND, None, False),        # placed in the future
    (timedelta(0), None, True),    # placed exactly now
])
def test_compliance_hold_window(records, now, placed, released, applies, decide):
    borrower = records.borrower()
    records.hold(borrower, placed_at=now + placed,
                 released_at=None if released is None else now + released)
    assert ("COMPLIANCE_HOLD" in codes(decide(borrower, now))) is applies


@pytest.mark.parametrize("microseconds", [120_000, 123_400, 500_000, 1, 999_999])
def test_times_load_exactly_whatever_their_fraction_of_a_second(records, now, decide,
                                                               microseconds):
    """PostgreSQL's JSON drops trailing zeros (120000 us is written ".12"), which Python 3.10's
    ``fromisoformat`` refuses: the load must read every fraction (the service's clock has
    microseconds, and it dates upheld appeals' waivers)."""
    borrower = records.borrower()
    placed_at = now - DAY + timedelta(microseconds=microseconds)
    records.hold(borrower, placed_at=placed_at)

    reason = only(decide(borrower, now), "COMPLIANCE_HOLD")

    assert reason.evidence_at == placed_at
    assert reason.details["placed_at"] == iso(placed_at)


# --- OVERDUE_COOLING_OFF ----------------------------------------------------------------------


@pytest.mark.parametrize("days_overdue, cooling_days", [
    (1, 7), (3, 7), (4, 90), (30, 90), (31, 180), (120, 180),
])
def test_cooling_off_tiers(records, now, days_overdue, cooling_days, decide):
    borrower = records.borrower()
    cleared_at = now - DAY
    record = records.overdue(borrower, due_date=now - 40 * DAY, days_overdue=days_overdue,
                             cleared_at=cleared_at, amount=1000)

    reason = only(decide(borrower, now), "OVERDUE_COOLING_OFF")

    until = cleared_at + cooling_days * DAY
    assert reason.blocking and reason.appealable
    assert reason.retry_after == until
    assert reason.details == {
        "loan_id": record.loan_id, "due_date": iso(now - 40 * DAY),
        "days_overdue": days_overdue, "amount": 1000.0, "cleared": True,
        "cleared_at": iso(cleared_at), "cooling_off_days": cooling_days,
        "cooling_off_until": iso(until),
    }
    assert reason.self_service == []


@pytest.mark.parametrize("cleared_ago, applies", [
    (7 * DAY - SECOND, True),   # cooling-off ends one second from now
    (7 * DAY, False),           # ends exactly now: no longer applies
    (7 * DAY + SECOND, False),
])
def test_cooling_off_ends_exactly_at_its_until_date(records, now, cleared_ago, applies, decide):
    borrower = records.borrower()
    records.overdue(borrower, due_date=now - 30 * DAY, days_overdue=3,
                    cleared_at=now - cleared_ago)
    assert ("OVERDUE_COOLING_OFF" in codes(decide(borrower, now))) is applies


@pytest.mark.parametrize("cleared_at_offset", [None, +DAY])  # never / only in the future
def test_unpaid_overdue_blocks_without_an_end_date(records, now, cleared_at_offset, decide):
    borrower = records.borrower()
    record = records.overdue(
        borrower, due_date=now - 5 * DAY, days_overdue=5,
        cleared_at=None if cleared_at_offset is None else now + cleared_at_offset)

    reason = only(decide(borrower, now), "OVERDUE_COOLING_OFF")

    assert reason.details["cleared"] is False
    assert reason.details["cleared_at"] is None
    assert reason.details["cooling_off_until"] is None
    assert reason.retry_after is None
    assert reason.self_service == [{"action": "repay_overdue", "loan_id": record.loan_id}]


def test_overdue_not_yet_due_is_ignored(records, now, decide):
    borrower = records.borrower()
    records.overdue(borrower, due_date=now + SECOND, days_overdue=10, cleared_at=None)
    assert decide(borrower, now).reasons == []


def test_overdue_reports_the_record_that_pauses_longest(records, now, decide):
    borrower = records.borrower()
    records.overdue(borrower, due_date=now - 60 * DAY, days_overdue=2, cleared_at=now - DAY)
    longest = records.overdue(borrower, due_date=now - 50 * DAY, days_overdue=40,
                              cleared_at=now - 10 * DAY)
    records.overdue(borrower, due_date=now - 40 * DAY, days_overdue=10, cleared_at=now - 5 * DAY)

    reason = only(decide(borrower, now), "OVERDUE_COOLING_OFF")

    assert reason.details["loan_id"] == longest.loan_id
    assert reason.retry_after == now - 10 * DAY + 180 * DAY


def test_unpaid_overdue_outranks_any_cleared_one(records, now, decide):
    borrower = records.borrower()
    unpaid = records.overdue(borrower, due_date=now - 3 * DAY, days_overdue=3, cleared_at=None)
    records.overdue(borrower, due_date=now - 50 * DAY, days_overdue=40, cleared_at=now - DAY)

    reason = only(decide(borrower, now), "OVERDUE_COOLING_OFF")

    assert reason.details["loan_id"] == unpaid.loan_id
    assert reason.retry_after is None


# --- IDENTITY_VERIFICATION_REQUIRED -----------------------------------------------------------


@pytest.mark.parametrize("expires_offset, problem", [
    (-DAY, "expired"),
    (timedelta(0), "expired"),   # expiring exactly now counts as expired
    (+SECOND, None),
])
def test_identity_document_expiry(records, now, expires_offset, problem, decide):
    borrower = records.borrower(identity=False)
    records.identity(borrower, expires_at=now + expires_offset, verified_at=now - 100 * DAY)

    result = decide(borrower, now)

    if problem is None:
        assert result.reasons == []
        return
    reason = only(result, "IDENTITY_VERIFICATION_REQUIRED")
    assert reason.blocking and not reason.appealable
    assert reason.details == {"problem": "expired", "document_type": "national_id",
                              "expired_on": iso(now + expires_offset),
                              "verified_at": iso(now - 100 * DAY)}
    assert reason.self_service == [{"action": "reverify_identity"}]


@pytest.mark.parametrize("verified_ago, stale", [
    (3 * 365 * DAY, True),            # exactly three years: stale
    (3 * 365 * DAY - SECOND, False),
    (3 * 365 * DAY + DAY, True),
])
def test_real_name_data_goes_stale_after_three_years(records, now, verified_ago, stale, decide):
    borrower = records.borrower(identity=False)
    records.identity(borrower, verified_at=now - verified_ago, expires_at=None)

    result = decide(borrower, now)

    if not stale:
        assert result.reasons == []
        return
    reason = only(result, "IDENTITY_VERIFICATION_REQUIRED")
    assert reason.details["problem"] == "stale"
    assert reason.details["expired_on"] is None


def test_missing_identity_document(records, now, decide):
    result = decide(records.borrower(identity=False), now)
    reason = only(result, "IDENTITY_VERIFICATION_REQUIRED")
    assert result.eligible is False
    assert reason.details == {"problem": "missing", "document_type": "national_id"}


def test_identity_uses_the_latest_verification(records, now, decide):
    borrower = records.borrower(identity=False)
    records.identity(borrower, verified_at=now - 2000 * DAY, expires_at=now - 10 * DAY)
    records.identity(borrower, verified_at=now - DAY, expires_at=now + 3000 * DAY)
    assert decide(borrower, now).reasons == []


# --- RISK_REVIEW_NOT_PASSED -------------------------------------------------------------------


def test_latest_failed_risk_review_blocks(records, now, decide):
    borrower = records.borrower()
    records.review(borrower, at=now - 200 * DAY, passed=True)
    records.review(borrower, at=now - 5 * DAY, passed=False, next_review_at=now + 25 * DAY)

    reason = only(decide(borrower, now), "RISK_REVIEW_NOT_PASSED")

    assert reason.blocking and reason.appealable
    assert reason.details == {"reviewed_at": iso(now - 5 * DAY)}
    assert reason.next_review_at == now + 25 * DAY


def test_failed_review_followed_by_a_passed_one_no_longer_applies(records, now, decide):
    borrower = records.borrower()
    records.review(borrower, at=now - 50 * DAY, passed=False)
    records.review(borrower, at=now - DAY, passed=True)
    assert decide(borrower, now).reasons == []


def test_future_review_results_are_not_yet_known(records, now, decide):
    borrower = records.borrower()
    records.review(borrower, at=now - 50 * DAY, passed=True)
    records.review(borrower, at=now + SECOND, passed=False)
    assert decide(borrower, now).reasons == []


def test_next_review_in_the_past_is_not_reported(records, now, decide):
    borrower = records.borrower()
    records.review(borrower, at=now - 50 * DAY, passed=False, next_review_at=now - DAY)
    assert only(decide(borrower, now), "RISK_REVIEW_NOT_PASSED").next_review_at is None


# --- RISK_POLICY_TIGHTENED --------------------------------------------------------------------


@pytest.mark.parametrize("segment, starts, ends, applies", [
    ("tight", -DAY, None, True),
    ("other", -DAY, None, False),            # another segment's policy
    ("tight", timedelta(0), None, True),     # effective from exactly now
    ("tight", +SECOND, None, False),         # not effective yet
    ("tight", -DAY, +SECOND, True),
    ("tight", -DAY, timedelta(0), False),    # ended exactly now
    ("tight", -DAY, -SECOND, False),
])
def test_risk_policy_segment_and_window(records, now, segment, starts, ends, applies, decide):
    borrower = records.borrower(segment="tight")
    policy = records.policy(segment=segment, effective_from=now + starts,
                            effective_until=None if ends is None else now + ends)
    assert ("RISK_POLICY_TIGHTENED" in codes(decide(borrower, now, policies=[policy]))) is applies


def test_risk_policy_details_and_dates(records, now, decide):
    borrower = records.borrower(segment="tight")
    policies = [
        records.policy(segment="tight", effective_from=now - 30 * DAY,
                       effective_until=now + 10 * DAY),
        records.policy(segment="tight", effective_from=now - 12 * DAY,
                       effective_until=now + 33 * DAY, next_review_at=now + 18 * DAY),
    ]

    reason = only(decide(borrower, now, policies=policies), "RISK_POLICY_TIGHTENED")

    assert reason.blocking and reason.appealable
    assert reason.details == {  # the most recent of the policies in force
        "policy_id": policies[1].id, "segment": "tight",
        "effective_from": iso(now - 12 * DAY), "effective_until": iso(now + 33 * DAY),
    }
    assert reason.retry_after == now + 33 * DAY
    assert reason.next_review_at == now + 18 * DAY


# --- CREDIT_SCORE_DROPPED ---------------------------------------------------------------------


@pytest.mark.parametrize("score, dropped", [(600, False), (599, True), (601, False), (350, True)])
def test_score_threshold(records, now, score, dropped, decide):
    borrower = records.borrower(score=None)
    records.score(borrower, 700, at=now - 40 * DAY)
    records.score(borrower, score, at=now - 3 * DAY)

    result = decide(borrower, now)

    assert ("CREDIT_SCORE_DROPPED" in codes(result)) is dropped
    assert result.eligible is not dropped


def test_score_drop_details_with_no_factor(records, now, decide):
    borrower = records.borrower(score=None)
    records.score(borrower, 712, at=now - 45 * DAY)
    records.score(borrower, 598, at=now - 6 * DAY)

    reason = only(decide(borrower, now), "CREDIT_SCORE_DROPPED")

    assert reason.blocking and reason.appealable
    assert reason.details == {"score_before": 712, "score_after": 598, "threshold": 600,
                              "recorded_at": iso(now - 6 * DAY), "factors": []}
    assert reason.next_review_at == now - 6 * DAY + 30 * DAY
    assert reason.self_service == []


def test_first_score_below_threshold_has_no_score_before(records, now, decide):
    borrower = records.borrower(score=None)
    records.score(borrower, 550, at=now - DAY)
    assert only(decide(borrower, now), "CREDIT_SCORE_DROPPED").details["score_before"] is None


def test_future_score_snapshot_is_ignored(records, now, decide):
    borrower = records.borrower(score=None)
    records.score(borrower, 700, at=now - DAY)
    records.score(borrower, 500, at=now + SECOND)
    assert decide(borrower, now).reasons == []


def test_recent_overdue_elsewhere_factor(records, now, decide):
    borrower = records.borrower(score=None)
    records.score(borrower, 580, at=now - DAY, overdue_elsewhere_count=1,
                  overdue_elsewhere_last_at=now - 20 * DAY)
    reason = only(decide(borrower, now), "CREDIT_SCORE_DROPPED")
    assert reason.details["factors"] == [
        {"factor": "RECENT_OVERDUE_ELSEWHERE", "count": 1, "last_at": iso(now - 20 * DAY)}]


@pytest.mark.parametrize("factors, expected", [
    ({"overdue_elsewhere_count": 0}, None),
    ({"inquiries_count": 5}, None),
    ({"inquiries_count": 6, "inquiries_window_days": 30},
     {"factor": "FREQUENT_APPLICATIONS", "count": 6, "window_days": 30}),
    ({"debt_ratio": 0.69}, None),
    ({"debt_ratio": 0.70}, {"factor": "HIGH_DEBT_RATIO", "ratio": 0.7}),
    ({"debt_ratio": None}, None),
])
def test_score_factor_thresholds(records, now, factors, expected, decide):
    borrower = records.borrower(score=None)
    records.score(borrower, 580, at=now - DAY, **factors)

    reason = only(decide(borrower, now), "CREDIT_SCORE_DROPPED")

    assert reason.details["factors"] == ([expected] if expected else [])


@pytest.mark.parametrize("inactive_days, reported", [(364, False), (365, True), (420, True)])
def test_long_inactivity_factor(records, now, inactive_days, reported, decide):
    borrower = records.borrower(score=None, last_drawdown_at=now - inactive_days * DAY)
    records.score(borrower, 580, at=now - DAY)

    reason = only(decide(borrower, now), "CREDIT_SCORE_DROPPED")

    expected = [{"factor": "LONG_INACTIVITY", "inactive_days": inactive_days}] if reported else []
    assert reason.details["factors"] == expected
    assert ({"action": "use_line_regularly"} in reason.self_service) is reported


def test_inactivity_counts_from_creation_when_the_borrower_never_drew_down(records, now, decide):
    borrower = records.borrower(score=None, last_drawdown_at=None, created_at=now - 400 * DAY)
    records.score(borrower, 580, at=now - DAY)
    factors = only(decide(borrower, now), "CREDIT_SCORE_DROPPED").details["factors"]
    assert factors == [{"factor": "LONG_INACTIVITY", "inactive_days": 400}]


def test_all_score_factors_in_catalogue_order_with_their_steps(records, now, decide):
    borrower = records.borrower(score=None, last_drawdown_at=now - 500 * DAY)
    records.score(borrower, 560, at=now - DAY, overdue_elsewhere_count=2,
                  overdue_elsewhere_last_at=now - 9 * DAY, inquiries_count=11,
                  inquiries_window_days=14, debt_ratio=0.8234)

    reason = only(decide(borrower, now), "CREDIT_SCORE_DROPPED")

    assert [f["factor"] for f in reason.details["factors"]] == list(SCORE_FACTORS)
    assert reason.details["factors"][2] == {"factor": "HIGH_DEBT_RATIO", "ratio": 0.82}
    assert reason.self_service == [
        {"action": "avoid_new_credit_applications", "days": 14},
        {"action": "reduce_debt"},
        {"action": "use_line_regularly"},
    ]


# --- SYSTEM_INCIDENT -----------------------------------------------------------------------


@pytest.mark.parametrize("partner, applies", [
    (None, True),            # global: everyone
    ("partner-a", True),     # the borrower's funding partner
    ("partner-z", False),    # someone else's partner
])
def test_incident_scope(records, now, partner, applies, decide):
    incident = records.incident(started_at=now - DAY, partner=partner)
    result = decide(records.borrower(funding_partner="partner-a"), now, incidents=[incident])
    assert ("SYSTEM_INCIDENT" in codes(result)) is applies


def test_incident_details_and_retry(records, now, decide):
    first = records.incident(started_at=now - 40 * 60 * SECOND, partner="partner-a",
                             expected_end_at=now + 3 * 3600 * SECOND)
    second = records.incident(started_at=now - 10 * 60 * SECOND)

    result = decide(records.borrower(), now, incidents=[second, first])

    reason = only(result, "SYSTEM_INCIDENT")
    assert result.eligible is False
    assert reason.blocking and not reason.appealable
    assert reason.details["incident_id"] == first.id  # the earliest one leads
    assert reason.details["other_incidents"] == [second.id]
    assert reason.details["kind"] == "incident"
    assert reason.retry_after == now + 3 * 3600 * SECOND
    assert reason.self_service == [{"action": "retry_later"}]


@pytest.mark.parametrize("kind, started, expected_end, resolved, applies", [
    ("incident", -DAY, None, -SECOND, False),               # resolved
    ("incident", -DAY, None, timedelta(0), False),          # resolved exactly now
    ("incident", -DAY, None, +DAY, True),                   # resolution recorded for later
    ("incident", +SECOND, None, None, False),               # not started yet
    ("incident", -DAY, -SECOND, None, True),                # overran its estimate: still on
    ("maintenance", -DAY, +SECOND, None, True),
    ("maintenance", -DAY, timedelta(0), None, False),       # maintenance window ended
    ("maintenance", -DAY, -DAY / 2, None, False),
    ("maintenance", -DAY, None, None, True),                # open-ended maintenance
])
def test_incident_and_maintenance_windows(records, now, kind, started, expected_end, resolved,
                                          applies, decide):
    incident = records.incident(
        kind=kind, started_at=now + started,
        expected_end_at=None if expected_end is None else now + expected_end,
        resolved_at=None if resolved is None else now + resolved)
    result = decide(records.borrower(), now, incidents=[incident])
    assert ("SYSTEM_INCIDENT" in codes(result)) is applies


# --- FUNDING_QUOTA_EXHAUSTED ------------------------------------------------------------------


@pytest.mark.parametrize("exhausted, reopens, partner, applies", [
    (-3600 * SECOND, +DAY, "partner-a", True),
    (timedelta(0), +DAY, "partner-a", True),      # exhausted exactly now
    (+SECOND, +DAY, "partner-a", False),          # not yet exhausted
    (-DAY, +SECOND, "partner-a", True),
    (-DAY, timedelta(0), "partner-a", False),     # reopens exactly now
    (-DAY, -SECOND, "partner-a", False),
    (-3600 * SECOND, +DAY, "partner-c", False),   # another partner's quota
])
def test_funding_quota_window(records, now, exhausted, reopens, partner, applies, decide):
    window = records.quota(partner=partner, exhausted_at=now + exhausted,
                           reopens_at=now + reopens)
    result = decide(records.borrower(funding_partner="partner-a"), now, quota_windows=[window])
    assert ("FUNDING_QUOTA_EXHAUSTED" in codes(result)) is applies
    if applies:
        reason = only(result, "FUNDING_QUOTA_EXHAUSTED")
        assert reason.blocking and not reason.appealable
        assert reason.retry_after == now + reopens
        assert reason.details == {"exhausted_at": iso(now + exhausted),
                                  "reopens_at": iso(now + reopens)}


# --- OPEN_LOANS_CAP_REACHED -------------------------------------------------------------------


@pytest.mark.parametrize("open_loans, repaid_loans, cap, applies", [
    (3, 0, 3, True),
    (4, 0, 3, True),
    (2, 5, 3, False),   # fully repaid loans do not count
    (2, 0, 3, False),
])
def test_open_loans_cap(records, now, open_loans, repaid_loans, cap, applies, decide):
    borrower = records.borrower(limit=100_000)
    borrower.credit_line.max_open_loans = cap
    loans = [records.loan(borrower, 1000, 500) for _ in range(open_loans)]
    for _ in range(repaid_loans):
        records.loan(borrower, 1000, 0)

    result = decide(borrower, now)

    assert ("OPEN_LOANS_CAP_REACHED" in codes(result)) is applies
    if applies:
        reason = only(result, "OPEN_LOANS_CAP_REACHED")
        assert reason.blocking and not reason.appealable
        assert reason.details == {"open_loans": open_loans, "max_open_loans": cap}
        assert reason.self_service == [{"action": "repay_loan_early", "loan_id": loans[0].id}]


# --- REPAYMENT_POSTING ------------------------------------------------------------------------


def test_posting_repayment_blocks_when_too_little_limit_is_left(records, now, decide):
    borrower = records.borrower(limit=5000)
    loan = records.loan(borrower, 5000, 5000)
    payment = records.repayment(borrower, loan, 5000, paid_at=now - 600 * SECOND,
                                expected_post_at=now + 7200 * SECOND)

    result = decide(borrower, now)

    assert result.eligible is False
    assert result.available_limit_cents == 0
    assert codes(result) == ["REPAYMENT_POSTING"]  # all of the use is being repaid
    reason = only(result, "REPAYMENT_POSTING")
    assert reason.blocking and not reason.appealable
    assert reason.retry_after == now + 7200 * SECOND
    assert reason.details == {
        "amount": 5000.0,
        "repayments": [{"repayment_id": payment.id, "loan_id": loan.id, "amount": 5000.0,
                        "paid_at": iso(now - 600 * SECOND),
                        "expected_post_at": iso(now + 7200 * SECOND)}],
        "paid_at": iso(now - 600 * SECOND),
        "expected_post_at": iso(now + 7200 * SECOND),
        "delayed": False,
    }
    assert reason.self_service == [{"action": "wait_for_posting"}]


def test_posting_repayment_does_not_block_when_enough_limit_is_left(records, now, decide):
    borrower = records.borrower(limit=20_000)
    loan = records.loan(borrower, 5000, 5000)
    records.repayment(borrower, loan, 5000, paid_at=now - 600 * SECOND,
                      expected_post_at=now + 7200 * SECOND)

    result = decide(borrower, now)

    assert result.eligible is True
    assert result.available_limit_cents == 1_500_000
    assert only(result, "REPAYMENT_POSTING").blocking is False


def test_overdue_posting_is_flagged_delayed(records, now, decide):
    borrower = records.borrower(limit=5000)
    loan = records.loan(borrower, 5000, 5000)
    records.repayment(borrower, loan, 5000, paid_at=now - DAY, expected_post_at=now - 3600 * SECOND)

    reason = only(decide(borrower, now), "REPAYMENT_POSTING")

    assert reason.details["delayed"] is True
    assert reason.retry_after is None  # the expected time has passed: no promise to make


def test_delayed_flag_boundary_at_expected_post_time(records, now, decide):
    borrower = records.borrower(limit=5000)
    loan = records.loan(borrower, 5000, 5000)
    records.repayment(borrower, loan, 5000, paid_at=now - DAY, expected_post_at=now)
    assert only(decide(borrower, now), "REPAYMENT_POSTING").details["delayed"] is True


@pytest.mark.parametrize("paid, posted, posting", [
    (-DAY, None, True),
    (-DAY, +SECOND, True),        # posts a moment from now
    (-DAY, timedelta(0), False),  # posted exactly now
    (-DAY, -3600 * SECOND, False),
    (+SECOND, None, False),       # not paid yet
])
def test_which_repayments_are_posting(records, now, paid, posted, posting, decide):
    borrower = records.borrower(limit=20_000)
    loan = records.loan(borrower, 5000, 5000)
    records.repayment(borrower, loan, 1000, paid_at=now + paid,
                      expected_post_at=now + 3600 * SECOND,
                      posted_at=None if posted is None else now + posted)
    assert ("REPAYMENT_POSTING" in codes(decide(borrower, now))) is posting


@pytest.mark.parametrize("limit, blocking", [(5500, False), (5499, True)])
def test_minimum_drawdown_boundary(records, now, limit, blocking, decide):
    """Exactly the minimum drawdown (500) left is enough; a yuan less is not."""
    borrower = records.borrower(limit=limit)
    records.loan(borrower, 5000, 5000)

    result = decide(borrower, now)

    assert result.available_limit_cents == (limit - 5000) * 100
    assert result.eligible is not blocking
    assert only(result, "LIMIT_IN_USE").blocking is blocking


# --- LIMIT_IN_USE -----------------------------------------------------------------------------


def test_limit_in_use_blocks_below_the_minimum_drawdown(records, now, decide):
    borrower = records.borrower(limit=5000)
    loan = records.loan(borrower, 5000, 4583.33, instalments_paid=1, instalments_total=12)

    result = decide(borrower, now)

    assert result.eligible is False
    assert result.available_limit_cents == 41_667
    reason = only(result, "LIMIT_IN_USE")
    assert reason.blocking and not reason.appealable
    assert reason.details == {
        "amount_in_use": 4583.33,
        "loans": [{"loan_id": loan.id, "principal": 5000.0, "outstanding": 4583.33,
                   "instalments_paid": 1, "instalments_total": 12,
                   "next_due_date": iso(now + 12 * DAY)}],
    }
    assert reason.self_service == [{"action": "repay_loan_early", "loan_id": loan.id}]


def test_limit_in_use_excludes_what_is_being_repaid(records, now, decide):
    borrower = records.borrower(limit=20_000)
    loan = records.loan(borrower, 8000, 8000)
    records.repayment(borrower, loan, 3000, paid_at=now - 60 * SECOND,
                      expected_post_at=now + 3600 * SECOND)

    result = decide(borrower, now)

    assert codes(result) == ["REPAYMENT_POSTING", "LIMIT_IN_USE"]
    assert only(result, "LIMIT_IN_USE").details["amount_in_use"] == 5000.0
    assert only(result, "REPAYMENT_POSTING").details["amount"] == 3000.0
    assert result.eligible is True


def test_fully_repaid_loans_use_no_limit(records, now, decide):
    borrower = records.borrower(limit=20_000)
    records.loan(borrower, 3000, 0, instalments_paid=3, instalments_total=3)
    assert decide(borrower, now).reasons == []


# --- LIMIT_REDUCED ----------------------------------------------------------------------------


@pytest.mark.parametrize("changed_ago, reported", [
    (9 * DAY, True),
    (90 * DAY, True),              # reported for 90 days, inclusive
    (90 * DAY + SECOND, False),
])
def test_limit_reduction_is_reported_for_ninety_days(records, now, changed_ago, reported, decide):
    borrower = records.borrower(limit=20_000)
    borrower.credit_line.previous_limit_cents = 5_000_000
    borrower.credit_line.limit_changed_at = now - changed_ago
    borrower.credit_line.limit_change_reason = "periodic_review"

    result = decide(borrower, now)

    assert result.eligible is True  # 20,000 is still available
    assert ("LIMIT_REDUCED" in codes(result)) is reported
    if reported:
        reason = only(result, "LIMIT_REDUCED")
        assert reason.appealable and not reason.blocking
        assert reason.details == {"previous_limit": 50_000.0, "new_limit": 20_000.0,
                                  "reduced_at": iso(now - changed_ago),
                                  "change_reason": "periodic_review"}


@pytest.mark.parametrize("previous", [20_000, 10_000])  # unchanged / raised
def test_limit_increase_is_not_a_reduction(records, now, previous, decide):
    borrower = records.borrower(limit=20_000)
    borrower.credit_line.previous_limit_cents = previous * 100
    borrower.credit_line.limit_changed_at = now - DAY
    assert decide(borrower, now).reasons == []


def test_limit_reduced_blocks_when_nothing_usable_is_left(records, now, decide):
    borrower = records.borrower(limit=6000)
    borrower.credit_line.previous_limit_cents = 1_500_000
    borrower.credit_line.limit_changed_at = now - 20 * DAY
    records.loan(borrower, 6000, 5800)

    result = decide(borrower, now)

    assert result.eligible is False
    assert [(r.code, r.blocking) for r in result.reasons] == [
        ("LIMIT_IN_USE", True), ("LIMIT_REDUCED", True)]


# --- combinations and order ---------------------------------------------------------------


def test_every_reason_but_closed_at_once_in_catalogue_order(records, now, decide):
    borrower = records.borrower(limit=6000, segment="tight", score=None,
                                last_drawdown_at=now - 400 * DAY, identity=False)
    line = borrower.credit_line
    line.max_open_loans = 2
    line.previous_limit_cents = 5_000_000
    line.limit_changed_at = now - 5 * DAY
    # records are added in reverse catalogue order: the output order must not follow them
    first = records.loan(borrower, 3000, 3000)
    records.loan(borrower, 3000, 2800)
    records.repayment(borrower, first, 1000, paid_at=now - 60 * SECOND,
                      expected_post_at=now + 3600 * SECOND)
    records.score(borrower, 590, at=now - DAY)
    records.review(borrower, at=now - DAY, passed=False)
    records.overdue(borrower, due_date=now - 5 * DAY, days_overdue=5, cleared_at=None)
    records.hold(borrower, placed_at=now - DAY)
    shared = {
        "incidents": [records.incident(started_at=now - DAY)],
        "quota_windows": [records.quota(partner="partner-a", exhausted_at=now - DAY,
                                        reopens_at=now + DAY)],
        "policies": [records.policy(segment="tight", effective_from=now - DAY)],
    }

    result = decide(borrower, now, **shared)

    expected = sorted(set(REASONS) - {"CREDIT_LINE_CLOSED"}, key=lambda c: REASONS[c].rank)
    assert codes(result) == expected
    assert all(r.blocking for r in result.reasons)
    assert result.eligible is False


def test_closed_line_with_other_reasons(records, now, decide):
    borrower = records.borrower(identity=False)
    borrower.credit_line.status = "closed"
    borrower.credit_line.closed_reason = "risk_review"
    records.review(borrower, at=now - DAY, passed=False)
    records.hold(borrower, placed_at=now - DAY)

    assert codes(decide(borrower, now)) == [
        "CREDIT_LINE_CLOSED", "COMPLIANCE_HOLD", "IDENTITY_VERIFICATION_REQUIRED",
        "RISK_REVIEW_NOT_PASSED"]


def test_blocking_reasons_come_before_non_blocking_ones(records, now, decide):
    """Blocking first, then rank: a non-blocking limit note follows any blocking reason."""
    borrower = records.borrower(limit=20_000)
    borrower.credit_line.previous_limit_cents = 5_000_000
    borrower.credit_line.limit_changed_at = now - DAY
    loan = records.loan(borrower, 2000, 2000)
    records.repayment(borrower, loan, 500, paid_at=now - 60 * SECOND,
                      expected_post_at=now + 60 * SECOND)
    records.score(borrower, 500, at=now - SECOND)

    result = decide(borrower, now)

    assert [(r.code, r.blocking) for r in result.reasons] == [
        ("CREDIT_SCORE_DROPPED", True),
        ("REPAYMENT_POSTING", False), ("LIMIT_IN_USE", False), ("LIMIT_REDUCED", False)]
    # the rule itself: a blocking reason sorts before a non-blocking one of better rank
    assert sort_key("LIMIT_REDUCED", True) < sort_key("REPAYMENT_POSTING", False)


def test_the_answer_holds_still_between_the_moments_its_records_name(records, now, decide):
    """The service reuses a decision id while the answer is unchanged (test_api): so an answer
    must not drift with the clock while nothing starts or ends, and must change when
    something does (here the hold's expected review time passes)."""
    borrower = records.borrower(identity=False, score=None, last_drawdown_at=now - 400 * DAY)
    records.hold(borrower, placed_at=now - DAY, expected_review_at=now + 3 * DAY)
    records.review(borrower, at=now - DAY, passed=False, next_review_at=now + 20 * DAY)
    records.overdue(borrower, due_date=now - 40 * DAY, days_overdue=12, cleared_at=now - 28 * DAY)
    records.score(borrower, 700, at=now - 40 * DAY)
    records.score(borrower, 590, at=now - 2 * DAY)
    loan = records.loan(borrower, 20_000, 19_800)
    records.repayment(borrower, loan, 300, paid_at=now - 10 * MINUTE,
                      expected_post_at=now + 2 * HOUR)

    answer = decide(borrower, now)

    assert [(r.code, r.blocking) for r in answer.reasons] == [
        ("COMPLIANCE_HOLD", True), ("OVERDUE_COOLING_OFF", True),
        ("IDENTITY_VERIFICATION_REQUIRED", True), ("RISK_REVIEW_NOT_PASSED", True),
        ("CREDIT_SCORE_DROPPED", True), ("REPAYMENT_POSTING", True), ("LIMIT_IN_USE", True)]
    assert only(answer, "CREDIT_SCORE_DROPPED").details["factors"] == [
        {"factor": "LONG_INACTIVITY", "inactive_days": 400}]
    for later in (now + SECOND, now + MINUTE, now + HOUR):
        assert decide(borrower, later) == answer, later
    after_review_time = decide(borrower, now + 3 * DAY + SECOND)
    assert only(answer, "COMPLIANCE_HOLD").next_review_at == now + 3 * DAY
    assert only(after_review_time, "COMPLIANCE_HOLD").next_review_at is None


# --- waivers (upheld appeals) -------------------------------------------------------------------


@pytest.mark.parametrize("reviewed, waived", [
    (-5 * DAY, True),    # evidence older than the waiver
    (-DAY, True),        # recorded exactly when the waiver was granted
    (-DAY + SECOND, False),  # newer evidence: the reason applies again
])
def test_waiver_voids_evidence_recorded_up_to_its_grant(records, now, reviewed, waived, decide):
    borrower = records.borrower()
    records.review(borrower, at=now + reviewed, passed=False)
    records.waiver(borrower, "RISK_REVIEW_NOT_PASSED", granted_at=now - DAY)

    result = decide(borrower, now)

    assert ("RISK_REVIEW_NOT_PASSED" in codes(result)) is not waived
    assert result.eligible is waived


def test_waiver_for_another_reason_changes_nothing(records, now, decide):
    borrower = records.borrower()
    records.review(borrower, at=now - 5 * DAY, passed=False)
    records.waiver(borrower, "CREDIT_SCORE_DROPPED", granted_at=now - DAY)
    assert codes(decide(borrower, now)) == ["RISK_REVIEW_NOT_PASSED"]


def test_waived_score_drop_returns_with_a_newer_snapshot(records, now, decide):
    borrower = records.borrower(score=None)
    records.score(borrower, 590, at=now - 20 * DAY)
    records.waiver(borrower, "CREDIT_SCORE_DROPPED", granted_at=now - 10 * DAY)
    assert decide(borrower, now).reasons == []

    records.score(borrower, 585, at=now - DAY)
    assert codes(decide(borrower, now)) == ["CREDIT_SCORE_DROPPED"]


def test_reasons_without_dated_evidence_cannot_be_waived(records, now, decide):
    borrower = records.borrower(identity=False)
    records.waiver(borrower, "IDENTITY_VERIFICATION_REQUIRED", granted_at=now)
    assert codes(decide(borrower, now)) == ["IDENTITY_VERIFICATION_REQUIRED"]
