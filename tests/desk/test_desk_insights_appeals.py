"""Insights, issue 13 item 4's rest: appeal outcomes and time to decision per reason, the
reason codes in words (the console's one table), and the tracker read once per state of it.

The history (period 2026-11-02 .. 2026-11-04, UTC), tracker events and the desk's notices:

======  =================================================  ===================================
conv    tracker (appeal_reason_code, appeal_ids)           decision (appeal_decided notice)
======  =================================================  ===================================
a1      11-01 09:00 AP-0 filed (before the period);        AP-0 upheld 11-02 09:00 (not ours);
        11-02 08:00 [AP-0] again (a new session);          AP-1 upheld 11-03 10:05: 24.0 h
        10:00 OVERDUE_COOLING_OFF, 10:05 [AP-0, AP-1]
a2      11-02 12:00 OVERDUE_COOLING_OFF, [AP-2]            AP-2 rejected 11-02 18:00: 6.0 h
a3      11-03 09:00 OVERDUE_COOLING_OFF, [AP-3]            -- (pending)
a4      11-03 20:00 RISK_REVIEW_NOT_PASSED, [AP-4]         AP-4 upheld 11-05 08:00: 36.0 h
a5      11-04 07:00 [AP-5], no reason slot                 AP-5 rejected 11-04 10:30, reason
                                                           CREDIT_SCORE_DROPPED: 3.5 h
a6      11-04 23:00 [AP-6], no reason slot                 -- (pending, reason unknown)
a7      11-05 01:00 [AP-8] (after the period)              --
a8      11-01 [AP-9]; 11-03 primary_reason LIMIT_REDUCED,  a case 11-03 borrower_asked
        [AP-9] again (no new appeal); a desk message
--      --                                                 AP-7 rejected (filed in the app: no
                                                           filing in the tracker); a
                                                           hold_released notice
======  =================================================  ===================================

By hand: OVERDUE_COOLING_OFF 3 filed (1 upheld, 1 rejected, 1 pending; hours 6, 24: median
15.0, p90 by nearest rank the 2nd of 2 = 24.0); CREDIT_SCORE_DROPPED 1 (rejected, 3.5 h);
RISK_REVIEW_NOT_PASSED 1 (upheld, 36.0 h); unknown 1 (pending). All: 6 filed, 2 upheld,
2 rejected, 2 pending; hours 3.5, 6, 24, 36: median (6 + 24) / 2 = 15.0, p90 the 4th of 4 =
36.0.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from desk_support import AgentApi, on_every_database
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker
from test_desk_insights import EVENTS, at, slot, user

from desk import insights
from desk.models import Case, Conversation, Message, Notice

PERIOD = "/api/agent/insights?from=2026-11-02&to=2026-11-04"


def appeal(sender: str, stamp: str, ids: list[str], reason: str | None = None
           ) -> list[dict[str, Any]]:
    """What the tracker holds around a filing: the reason slot (action_begin_appeal), then
    the appeal ids with the new one (action_file_appeal)."""
    events = [slot(sender, stamp, "appeal_reason_code", reason)] if reason else []
    return [*events, slot(sender, stamp, "appeal_ids", ids),
            slot(sender, stamp, "appeal_reason_code", None)]


TRACKER = [
    *appeal("a1", "2026-11-01 09:00:00", ["AP-0"], "CREDIT_SCORE_DROPPED"),
    slot("a1", "2026-11-02 08:00:00", "appeal_ids", ["AP-0"]),  # carried over to a new session
    *appeal("a1", "2026-11-02 10:05:00", ["AP-0", "AP-1"], "OVERDUE_COOLING_OFF"),
    *appeal("a2", "2026-11-02 12:00:00", ["AP-2"], "OVERDUE_COOLING_OFF"),
    *appeal("a3", "2026-11-03 09:00:00", ["AP-3"], "OVERDUE_COOLING_OFF"),
    *appeal("a4", "2026-11-03 20:00:00", ["AP-4"], "RISK_REVIEW_NOT_PASSED"),
    *appeal("a5", "2026-11-04 07:00:00", ["AP-5"]),
    *appeal("a6", "2026-11-04 23:00:00", ["AP-6"]),
    *appeal("a7", "2026-11-05 01:00:00", ["AP-8"], "LIMIT_REDUCED"),
    slot("a8", "2026-11-01 10:00:00", "appeal_ids", ["AP-9"]),
    user("a8", "2026-11-03 11:00:01", "为什么借不了", "cannot_borrow_after_repayment", 0.9),
    slot("a8", "2026-11-03 11:00:02", "primary_reason", "LIMIT_REDUCED"),
    slot("a8", "2026-11-03 11:00:02", "appeal_ids", ["AP-9"]),
]


def decided(key: str, appeal_id: str, status: str, reason: str, stamp: str,
            kind: str = "appeal_decided") -> Notice:
    """The backend's appeal_decided change as the desk stores it (desk/notices.py)."""
    return Notice(key=key, borrower_id="b-x", kind=kind, state="delivered",
                  data={"appeal_id": appeal_id, "reason_code": reason, "status": status,
                        "resolution_note": None, "restored_limit": None},
                  occurred_at=at(stamp), received_at=at(stamp), state_at=at(stamp))


def write_desk(session: Session) -> None:
    session.add(Conversation(id="a8", borrower_id="b-a8", locale="zh-CN", owner="bot",
                             created_at=at("2026-11-01 08:00:00"),
                             updated_at=at("2026-11-01 08:00:00")))
    session.flush()
    session.add(Message(conversation_id="a8", sender="borrower", text="为什么借不了",
                        created_at=at("2026-11-03 11:00:00"), state="done"))
    session.add(Case(conversation_id="a8", borrower_id="b-a8", language="zh",
                     reason="borrower_asked", status="waiting",
                     created_at=at("2026-11-03 11:05:00"),
                     context={"topics": [], "appeal_ids": [], "transcript": []}))
    session.add_all([
        decided("appeal_decided:AP-0", "AP-0", "upheld", "CREDIT_SCORE_DROPPED",
                "2026-11-02 09:00:00"),
        decided("appeal_decided:AP-1", "AP-1", "upheld", "OVERDUE_COOLING_OFF",
                "2026-11-03 10:05:00"),
        decided("appeal_decided:AP-2", "AP-2", "rejected", "OVERDUE_COOLING_OFF",
                "2026-11-02 18:00:00"),
        decided("appeal_decided:AP-4", "AP-4", "upheld", "RISK_REVIEW_NOT_PASSED",
                "2026-11-05 08:00:00"),
        decided("appeal_decided:AP-5", "AP-5", "rejected", "CREDIT_SCORE_DROPPED",
                "2026-11-04 10:30:00"),
        decided("appeal_decided:AP-7", "AP-7", "rejected", "LIMIT_REDUCED",
                "2026-11-03 12:00:00"),
        decided("hold_released:H-1", "AP-3", "upheld", "OVERDUE_COOLING_OFF",
                "2026-11-03 12:00:00", kind="hold_released"),  # not an appeal's decision
    ])
    session.commit()


@pytest.fixture
def tracker_url(db_kind: str, database_url: str, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tracker.db'}" if db_kind == "sqlite" else database_url


def add_events(url: str, rows: list[dict[str, Any]], create: bool = False) -> None:
    engine = create_engine(url, future=True)
    try:
        if create:
            EVENTS.create(engine)
        with engine.begin() as connection:
            connection.execute(EVENTS.insert(), rows)
    finally:
        engine.dispose()


@pytest.fixture
def history(sessions: sessionmaker[Session], tracker_url: str,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with sessions() as session:
        write_desk(session)
    add_events(tracker_url, TRACKER, create=True)
    monkeypatch.setenv("RELEND_INSIGHTS_TRACKER_URL", tracker_url)
    insights._cache.clear()
    yield tracker_url
    insights._cache.clear()


def figures(agent: AgentApi, path: str = PERIOD) -> dict[str, Any]:
    response = agent.get(path)
    assert response.status_code == 200, response.text
    return response.json()


@on_every_database
def test_appeal_outcomes_and_time_to_decision(history: str, agents: list[AgentApi]) -> None:
    appeals = figures(agents[0])["appeals"]
    assert appeals == {
        "filed": 6, "upheld": 2, "rejected": 2, "pending": 2,
        "median_hours": 15.0, "p90_hours": 36.0,
        "reasons": [
            {"code": "OVERDUE_COOLING_OFF", "filed": 3, "upheld": 1, "rejected": 1,
             "pending": 1, "median_hours": 15.0, "p90_hours": 24.0},
            {"code": "CREDIT_SCORE_DROPPED", "filed": 1, "upheld": 0, "rejected": 1,
             "pending": 0, "median_hours": 3.5, "p90_hours": 3.5},
            {"code": "RISK_REVIEW_NOT_PASSED", "filed": 1, "upheld": 1, "rejected": 0,
             "pending": 0, "median_hours": 36.0, "p90_hours": 36.0},
            {"code": "unknown", "filed": 1, "upheld": 0, "rejected": 0, "pending": 1,
             "median_hours": None, "p90_hours": None},
        ]}


def test_an_appeal_id_carried_into_a_new_session_is_not_a_new_appeal(
        history: str, agents: list[AgentApi]) -> None:
    """a8 had AP-9 before the period; the slot set again in the period is no appeal, so its
    blocking reason was not appealed."""
    blocked = figures(agents[0])["blocked"]
    assert blocked["reasons"] == [{"code": "LIMIT_REDUCED", "conversations": 1, "share": 1.0,
                                   "appealed": 0, "handed_off": 1}]


def test_codes_come_with_the_consoles_words(history: str, agents: list[AgentApi]) -> None:
    labels = figures(agents[0])["labels"]
    assert labels["en"]["code"] == {
        "CREDIT_SCORE_DROPPED": "Credit score dropped",
        "LIMIT_REDUCED": "Limit reduced",
        "OVERDUE_COOLING_OFF": "Cooling-off after a late payment",
        "RISK_REVIEW_NOT_PASSED": "Risk review not passed"}  # no words for "unknown"
    assert labels["zh"]["code"]["OVERDUE_COOLING_OFF"] == "逾期后冷静期"
    assert labels["zh"]["code"]["LIMIT_REDUCED"] == "额度已下调"
    assert labels["en"]["reason"] == {"borrower_asked": "Borrower asked for a person"}
    assert labels["zh"]["reason"] == {"borrower_asked": "用户要求转人工"}


def test_the_csv_has_the_appeal_figures(history: str, agents: list[AgentApi]) -> None:
    response = agents[0].get(PERIOD.replace("insights?", "insights.csv?"))
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8")[1:])))
    appeal_rows = [r for r in rows if r[0].startswith("appeal")]
    assert appeal_rows[:6] == [
        ["appeals_filed", "all", "6", "", "", "", ""],
        ["appeals_upheld", "all", "2", "0.3333", "", "", ""],
        ["appeals_rejected", "all", "2", "0.3333", "", "", ""],
        ["appeals_pending", "all", "2", "0.3333", "", "", ""],
        ["appeal_hours_median", "all", "15.0", "", "", "", ""],
        ["appeal_hours_p90", "all", "36.0", "", "", "", ""]]
    assert ["appeals_upheld", "OVERDUE_COOLING_OFF", "1", "0.3333", "", "", ""] in appeal_rows
    assert ["appeal_hours_p90", "OVERDUE_COOLING_OFF", "24.0", "", "", "", ""] in appeal_rows
    assert ["appeal_hours_median", "unknown", "", "", "", "", ""] in appeal_rows
    assert len(appeal_rows) == 6 * 5  # all, and four reasons


def test_no_tracker_no_appeals(sessions: sessionmaker[Session], agents: list[AgentApi],
                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The filings are in the tracker: without it the page says so, and a decision alone
    (AP-7 was filed in the app) is not counted as an appeal of the period."""
    with sessions() as session:
        write_desk(session)
    monkeypatch.setenv("RELEND_INSIGHTS_TRACKER_URL", "")
    monkeypatch.setenv("RELEND_TRACKER_DB", str(tmp_path / "none.db"))
    body = figures(agents[0])
    assert body["tracker_available"] is False
    assert body["appeals"] == {"filed": 0, "upheld": 0, "rejected": 0, "pending": 0,
                               "median_hours": None, "p90_hours": None, "reasons": []}


def test_percentile_by_nearest_rank() -> None:
    assert insights.percentile([1.0], 0.9) == 1.0
    assert insights.percentile([1.0, 2.0], 0.9) == 2.0
    values = [float(n) for n in range(1, 11)]  # 1 .. 10: the 9th
    assert insights.percentile(values, 0.9) == 9.0
    assert insights.percentile([float(n) for n in range(1, 12)], 0.9) == 10.0  # ceil(9.9)


# --- the tracker read once per state of it --------------------------------------------------------

@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every scan of the tracker store: (period from, to)."""
    seen: list[tuple[str, str]] = []
    real = insights.read_tracker

    def counting(url: str | None, period: insights.Period) -> insights.TrackerFacts:
        seen.append((period.first.isoformat(), period.last.isoformat()))
        return real(url, period)

    monkeypatch.setattr(insights, "read_tracker", counting)
    return seen


def test_repeated_requests_read_the_tracker_once(history: str, agents: list[AgentApi],
                                                 reads: list[tuple[str, str]]) -> None:
    first = figures(agents[0])
    assert figures(agents[0]) == first
    agents[0].get(PERIOD.replace("insights?", "insights.csv?"))
    assert reads == [("2026-11-02", "2026-11-04")]
    figures(agents[0], "/api/agent/insights?from=2026-11-03&to=2026-11-04")  # another period
    assert len(reads) == 2


def test_a_new_event_is_read(history: str, agents: list[AgentApi],
                             reads: list[tuple[str, str]]) -> None:
    assert figures(agents[0])["appeals"]["filed"] == 6
    add_events(history, appeal("a9", "2026-11-04 12:00:00", ["AP-10"], "LIMIT_REDUCED"))
    after = figures(agents[0])["appeals"]
    assert len(reads) == 2
    assert after["filed"] == 7
    assert {"code": "LIMIT_REDUCED", "filed": 1, "upheld": 0, "rejected": 0, "pending": 1,
            "median_hours": None, "p90_hours": None} in after["reasons"]


def test_a_decision_shows_without_a_new_tracker_event(
        history: str, agents: list[AgentApi], sessions: sessionmaker[Session],
        reads: list[tuple[str, str]]) -> None:
    """The desk's records are read on every request: AP-3's decision (6 h after filing at
    11-03 09:00) counts at once, while the tracker is not scanned again."""
    figures(agents[0])
    with sessions() as session:
        session.add(decided("appeal_decided:AP-3", "AP-3", "rejected", "OVERDUE_COOLING_OFF",
                            "2026-11-03 15:00:00"))
        session.commit()
    appeals = figures(agents[0])["appeals"]
    assert reads == [("2026-11-02", "2026-11-04")]
    assert (appeals["rejected"], appeals["pending"]) == (3, 1)
    cooling = appeals["reasons"][0]
    assert cooling["code"] == "OVERDUE_COOLING_OFF"
    # hours 6, 6, 24: median 6.0; p90 the 3rd of 3 (ceil(2.7))
    assert (cooling["pending"], cooling["median_hours"], cooling["p90_hours"]) == (0, 6.0, 24.0)


def test_an_unreadable_store_is_not_kept(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    create_engine(url).connect().close()  # a file without the events table
    insights._cache.clear()
    period = insights.Period(at("2026-11-02 00:00:00").date(), at("2026-11-04 00:00:00").date())
    assert insights.tracker_facts(url, period).available is False
    assert insights._cache == {}
