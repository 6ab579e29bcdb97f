"""Rendering notices (desk/notices.py) and quiet hours (notices/quiet.py): the expected texts
are written out by hand, read against texts/zh.yml and texts/en.yml and the outbox's data
(docs/backend.md, "Outbox")."""

from __future__ import annotations

from datetime import datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from desk.notices import render
from notices.quiet import parse_quiet_hours, quiet_until

NOW = datetime(2026, 11, 30, 4, 0, tzinfo=timezone.utc)  # 12:00 in Shanghai
TZ = "Asia/Shanghai"
FRESH_ELIGIBLE = {"eligible": True, "available_limit": 20000, "currency": "CNY",
                  "checked_at": "2026-11-30T03:58:00Z"}
FRESH_BLOCKED = {"eligible": False, "available_limit": 0, "checked_at": "2026-11-30T03:58:00Z"}
STALE_ELIGIBLE = {**FRESH_ELIGIBLE, "checked_at": "2026-11-29T14:00:00Z"}

ELIGIBLE = {"zh": "您现在可以借款了，可用额度20,000元。",
            "en": "You can borrow again: ¥20,000 is available now."}
ASK = {"zh": "想知道现在能借多少，随时问我就好。",
       "en": "Ask me any time to check what you can borrow now."}

CASES = [
    ("repayment_posted",
     {"repayment_id": "RP-1", "loan_id": "L-1", "amount": 5000, "paid_at": "2026-11-28T02:00:00Z",
      "posted_at": "2026-11-30T03:00:00Z", "instalment_number": 1,
      "outstanding_principal": 0},
     "您11月28日还的5,000元已经入账。这笔借款的本金已全部还清。",
     "Your repayment of ¥5,000, paid 28 Nov, has posted. This loan's principal is now fully "
     "repaid."),
    ("repayment_posted",
     {"repayment_id": "RP-2", "loan_id": "L-1", "amount": 416.67,
      "paid_at": "2026-11-30T01:00:00Z", "posted_at": "2026-11-30T03:00:00Z",
      "instalment_number": 2, "outstanding_principal": 4583.33},
     "您今天还的416.67元已经入账。这笔借款还剩本金4,583.33元。",
     "Your repayment of ¥416.67, paid today, has posted. This loan has ¥4,583.33 of principal "
     "left."),
    ("hold_released", {"hold_id": "H-1", "hold_kind": "security",
                       "released_at": "2026-11-30T03:30:00Z"},
     "您账户的安全核查已经结束（今天 11:30）。",
     "The security check on your account has ended (today at 11:30)."),
    ("hold_released", {"hold_id": "H-2", "hold_kind": "regulatory",
                       "released_at": "2026-11-29T09:05:00Z"},
     "您账户的合规核查已经结束（昨天 17:05）。",
     "The regulatory check on your account has ended (yesterday at 17:05)."),
    ("cooling_off_ended", {"loan_id": "L-2", "due_date": "2026-08-01T15:59:59Z",
                           "amount": 500, "cooling_off_until": "2026-11-29T16:00:00Z"},
     "8月1日到期那笔还款逾期后的借款暂停期已经结束（今天 00:00）。",
     "The pause on borrowing after the late repayment due 1 Aug has ended (today at 00:00)."),
    ("funding_quota_reopened", {"funding_partner": "FP-1",
                                "reopens_at": "2026-11-30T01:00:00Z"},
     "放款资金已经重新开放（今天 09:00）。",
     "Lending funds are available again (today at 09:00)."),
    ("incident_resolved", {"incident_id": "I-1", "incident_kind": "incident",
                           "title": "放款通道故障", "resolved_at": "2026-11-30T02:15:00Z"},
     "影响借款的系统问题“放款通道故障”已经解决（今天 10:15）。",
     "The system issue that affected borrowing, “放款通道故障”, is resolved (today at 10:15)."),
    ("incident_resolved", {"incident_id": "I-2", "incident_kind": "maintenance",
                           "title": "Core upgrade", "resolved_at": "2026-11-30T02:00:00Z"},
     "系统维护“Core upgrade”已经结束（今天 10:00）。",
     "The maintenance “Core upgrade” has finished (today at 10:00)."),
    ("appeal_decided", {"appeal_id": "AP-7", "reason_code": "LIMIT_REDUCED", "status": "upheld",
                        "resolution_note": None, "restored_limit": 30000},
     "您的申诉（编号 AP-7）已通过，总额度已恢复为30,000元。",
     "Your appeal AP-7 was upheld and your total limit is restored to ¥30,000."),
    ("appeal_decided", {"appeal_id": "AP-8", "reason_code": "RISK_REVIEW_NOT_PASSED",
                        "status": "upheld", "resolution_note": None, "restored_limit": None},
     "您的申诉（编号 AP-8）已通过。",
     "Your appeal AP-8 was upheld."),
    ("appeal_decided", {"appeal_id": "AP-9", "reason_code": "OVERDUE_COOLING_OFF",
                        "status": "rejected", "resolution_note": "逾期记录核实无误",
                        "restored_limit": None},
     "您的申诉（编号 AP-9）未通过。审核说明：“逾期记录核实无误”",
     "Your appeal AP-9 was not upheld. The reviewer's note: “逾期记录核实无误”"),
]


@pytest.mark.parametrize(("kind", "data", "zh", "en"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_each_change_in_both_languages_with_a_fresh_decision(kind: str, data: dict, zh: str,
                                                              en: str) -> None:
    assert render(kind, data, "zh", TZ, NOW, FRESH_ELIGIBLE) == zh + ELIGIBLE["zh"]
    assert render(kind, data, "en", TZ, NOW, FRESH_ELIGIBLE) == en + " " + ELIGIBLE["en"]


def test_without_a_fresh_decision_it_promises_nothing_and_invites_a_question() -> None:
    data = CASES[2][1]
    for decision in (None, STALE_ELIGIBLE, {"checked_at": "2026-11-30T03:58:00Z"}):
        assert render("hold_released", data, "en", TZ, NOW, decision) == (
            "The security check on your account has ended (today at 11:30). " + ASK["en"])
        assert render("hold_released", data, "zh", TZ, NOW, decision) == (
            "您账户的安全核查已经结束（今天 11:30）。" + ASK["zh"])


def test_a_decision_that_still_blocks_is_said_without_guessing_a_reason() -> None:
    assert render("funding_quota_reopened", CASES[5][1], "en", TZ, NOW, FRESH_BLOCKED) == (
        "Lending funds are available again (today at 09:00). Borrowing is still paused for "
        "now; ask me why and I'll explain.")
    assert render("funding_quota_reopened", CASES[5][1], "zh", TZ, NOW, FRESH_BLOCKED) == (
        "放款资金已经重新开放（今天 09:00）。目前还暂时不能借款，问我原因，我会为您详细说明。")


def test_reminders_name_the_instalment_and_carry_no_decision() -> None:
    before = {"reminder": "before", "loan_id": "L-1", "instalment_number": 3,
              "due_date": "2026-12-03T15:59:59Z", "amount": 516.67, "days_before": 3}
    assert render("reminder_due", before, "zh", TZ, NOW, FRESH_ELIGIBLE) == \
        "温馨提醒：您第3期还款516.67元将于12月3日到期。"
    assert render("reminder_due", before, "en", TZ, NOW, FRESH_ELIGIBLE) == \
        "A friendly reminder: instalment 3, ¥516.67, is due on 3 Dec."
    tomorrow = {**before, "due_date": "2026-12-01T15:59:59Z"}
    assert render("reminder_due", tomorrow, "en", TZ, NOW) == \
        "A friendly reminder: instalment 3, ¥516.67, is due tomorrow."
    due_day = {**before, "reminder": "due_day", "due_date": "2026-11-30T15:59:59Z",
               "days_before": 0}
    assert render("reminder_due", due_day, "zh", TZ, NOW) == \
        "温馨提醒：今天是您第3期还款（516.67元）的到期日，请在23:59前还款。"
    assert render("reminder_due", due_day, "en", TZ, NOW) == \
        "A friendly reminder: instalment 3, ¥516.67, is due today, by 23:59."


def test_dates_are_in_the_borrowers_time_zone() -> None:
    data = {"hold_id": "H-1", "hold_kind": "security", "released_at": "2026-11-30T03:30:00Z"}
    assert render("hold_released", data, "en", "Europe/London", NOW) == (
        "The security check on your account has ended (today at 03:30). " + ASK["en"])


def test_an_unknown_kind_or_missing_figure_is_refused() -> None:
    with pytest.raises(ValueError):
        render("limit_raised", {}, "zh", TZ, NOW)
    with pytest.raises(KeyError):
        render("repayment_posted", {"paid_at": "2026-11-30T01:00:00Z"}, "zh", TZ, NOW)


# --- quiet hours ---------------------------------------------------------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")
NIGHT = (time(22, 0), time(8, 0))


@pytest.mark.parametrize(("utc", "expected"), [
    # 21:59 in Shanghai: not yet quiet
    (datetime(2026, 11, 30, 13, 59, tzinfo=timezone.utc), None),
    # 22:00: quiet until 08:00 the next morning (00:00 UTC)
    (datetime(2026, 11, 30, 14, 0, tzinfo=timezone.utc),
     datetime(2026, 12, 1, 0, 0, tzinfo=timezone.utc)),
    # 03:00 after midnight: until 08:00 the same day
    (datetime(2026, 11, 30, 19, 0, tzinfo=timezone.utc),
     datetime(2026, 12, 1, 0, 0, tzinfo=timezone.utc)),
    # 08:00 sharp: over
    (datetime(2026, 12, 1, 0, 0, tzinfo=timezone.utc), None),
])
def test_quiet_hours_wrap_midnight_in_the_borrowers_zone(utc: datetime,
                                                          expected: datetime | None) -> None:
    assert quiet_until(utc, SHANGHAI, NIGHT) == expected


def test_quiet_hours_follow_the_zone_and_can_be_switched_off() -> None:
    # 14:00 UTC is 22:00 in Shanghai but 14:00 in London
    moment = datetime(2026, 11, 30, 14, 0, tzinfo=timezone.utc)
    assert quiet_until(moment, ZoneInfo("Europe/London"), NIGHT) is None
    assert parse_quiet_hours("off") is None and parse_quiet_hours("") is None
    assert parse_quiet_hours("13:00-14:30") == (time(13, 0), time(14, 30))
    assert quiet_until(datetime(2026, 11, 30, 5, 10, tzinfo=timezone.utc), SHANGHAI,
                       (time(13, 0), time(14, 30))) == datetime(2026, 11, 30, 6, 30,
                                                                tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        parse_quiet_hours("22-8")
