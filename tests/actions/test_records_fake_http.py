"""Loans, repayments and reminders in the chat, against a faked eligibility service.

The loan and repayment lists are the backend's own (``eligibility.ledger`` over the seeded
demo borrowers at the conftest's ``NOW``, 2026-03-10 12:00 in Shanghai); the expected replies
were written from the seed as docs/backend.md describes it ("The demo's records": the first
unpaid instalment falls due in 12 days, i.e. 22 March 12:00 Shanghai, the others every 30 days).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests
from sqlalchemy.orm import Session

from actions.records import AnswerRecords
from actions.reminders import SetReminders, days_in
from eligibility import ledger


def loans_path(borrower_id: str) -> str:
    return f"/v1/borrowers/{borrower_id}/loans"


def repayments_path(borrower_id: str) -> str:
    return f"/v1/borrowers/{borrower_id}/repayments"


def reminders_path(borrower_id: str) -> str:
    return f"/v1/borrowers/{borrower_id}/reminders"


@pytest.fixture
def records(decision_db: Session, now: Any) -> Any:
    """``records(kind, borrower_id)``: the backend's JSON for ``loans`` or ``repayments``."""

    def _records(kind: str, borrower_id: str, limit: int = 20) -> dict[str, Any]:
        page = (ledger.loans_page if kind == "loans" else ledger.repayments_page)(
            decision_db, borrower_id, now=now, limit=limit, offset=0)
        return {"borrower_id": borrower_id, "currency": "CNY", "timezone": "Asia/Shanghai",
                **page}

    return _records


def ask(run: Any, make_tracker: Any, intent: str, borrower: str | None, lang: str = "en",
        text: str = "?", **tracker: Any) -> Any:
    action = SetReminders() if intent.startswith("turn_") else AnswerRecords()
    return run(action, make_tracker(text, intent, borrower=borrower, lang=lang, **tracker))


# --- the next instalment ----------------------------------------------------------------------


def test_next_instalment_with_amount_date_and_which_loan(run, make_tracker, backend, records):
    backend.on("GET", loans_path("demo-in-use"), (200, records("loans", "demo-in-use")))
    en = ask(run, make_tracker, "ask_next_instalment", "demo-in-use")
    assert en.text == ("Your next instalment is ¥416.67, due on 22 Mar "
                       "(instalment 2 of 12 of your ¥5,000 loan).")
    zh = ask(run, make_tracker, "ask_next_instalment", "demo-in-use", lang="zh")
    assert zh.text == "您下一期应还416.67元，3月22日到期（5,000元借款的第2/12期）。"
    assert "/turn_on_reminders" in en.payloads
    assert en.slots == {"pending_offer": None}


def test_next_instalment_includes_interest(run, make_tracker, backend, records):
    # demo-overdue-reduced: 6,000 with 3,600 interest over 12 (300 each); the first instalment
    # paid 200 principal, so the 5,800 outstanding is split over the other 11: 527.27 + 300
    backend.on("GET", loans_path("demo-overdue-reduced"),
               (200, records("loans", "demo-overdue-reduced")))
    out = ask(run, make_tracker, "ask_next_instalment", "demo-overdue-reduced")
    assert out.text.startswith("Your next instalment is ¥827.27, due on 22 Mar (instalment 2 of 12")


def test_a_posting_instalment_is_said_to_be_posting(run, make_tracker, backend, records):
    backend.on("GET", loans_path("demo-posting"), (200, records("loans", "demo-posting")))
    out = ask(run, make_tracker, "ask_next_instalment", "demo-posting")
    assert out.text == ("Your payment for instalment 1 of your ¥5,000 loan (¥5,000) has been "
                        "received and is still posting; it counts as paid once it posts.")


def test_an_overdue_instalment_comes_first_with_its_days(run, make_tracker, backend, records):
    body = records("loans", "demo-in-use")
    second = body["loans"][0]["instalments"][1]
    second.update(status="overdue", due_date="2026-03-05T04:00:00Z", days_late=5)
    backend.on("GET", loans_path("demo-in-use"), (200, body))
    out = ask(run, make_tracker, "ask_next_instalment", "demo-in-use", lang="zh")
    lines = out.text.split("\n")
    assert lines[0] == "5,000元借款的第2期416.67元，3月5日到期，目前已逾期5天。"
    assert lines[1].startswith("您下一期应还416.67元，")  # instalment 3, after 30 more days
    assert "第3/12期" in lines[1]


def test_no_loan_and_all_repaid_say_so(run, make_tracker, backend, records):
    backend.on("GET", loans_path("demo-closed"), (200, records("loans", "demo-closed")))
    backend.on("GET", loans_path("demo-eligible"), (200, records("loans", "demo-eligible")))
    assert ask(run, make_tracker, "ask_next_instalment", "demo-closed").text == (
        "You don't have a loan with us, so there are no instalments or repayments to show.")
    assert ask(run, make_tracker, "ask_loan_balance", "demo-eligible", lang="zh").text == (
        "您的借款都已还清，目前没有需要还的款项。")


# --- what is left to repay -------------------------------------------------------------------


def test_balance_of_one_loan(run, make_tracker, backend, records):
    body = records("loans", "demo-in-use")
    backend.on("GET", loans_path("demo-in-use"), (200, body))
    out = ask(run, make_tracker, "ask_loan_balance", "demo-in-use")
    # 5,000 over 12: 416.67 paid once; the last of 12 falls due 300 days after 22 Mar 2026
    assert "¥4,583.33 left to repay, of which ¥4,583.33 is principal" in out.text
    assert "11 of 12 instalments left, the last one due 16 Jan 2027." in out.text
    assert "Total" not in out.text and "In total" not in out.text


def test_balance_with_interest_and_of_several_loans(run, make_tracker, backend, records):
    backend.on("GET", loans_path("demo-overdue-reduced"),
               (200, records("loans", "demo-overdue-reduced")))
    backend.on("GET", loans_path("demo-loan-cap"), (200, records("loans", "demo-loan-cap")))
    out = ask(run, make_tracker, "ask_loan_balance", "demo-overdue-reduced", lang="zh")
    # 6,000 + 3,600 interest; the paid first instalment was 200 principal + 300 interest:
    # 5,800 principal and 11 x 300 interest left
    assert "还剩9,100元未还，其中本金5,800元" in out.text
    cap = ask(run, make_tracker, "ask_loan_balance", "demo-loan-cap")
    assert cap.text.count("left to repay, of which") == 3
    assert cap.text.endswith("In total, ¥4,000 is left to repay.")


# --- repayment history -----------------------------------------------------------------------


def test_history_lists_the_latest_repayments(run, make_tracker, backend, records):
    backend.on("GET", repayments_path("demo-overdue"),
               (200, records("repayments", "demo-overdue", limit=5)))
    out = ask(run, make_tracker, "ask_repayment_history", "demo-overdue")
    lines = out.text.split("\n")
    assert lines[0] == "Your latest repayments:"
    assert len(lines) == 5
    assert all(" ¥1,000 for instalment " in line and line.endswith(", posted")
               for line in lines[1:])
    assert [line.split("instalment ")[1][0] for line in lines[1:]] == ["4", "3", "2", "1"]
    assert backend.calls[-1].path == repayments_path("demo-overdue")


def test_history_says_which_are_still_posting_and_when_there_are_more(run, make_tracker,
                                                                      backend, records):
    body = records("repayments", "demo-posting")
    body["total"] = 7  # more than this page shows
    backend.on("GET", repayments_path("demo-posting"), (200, body))
    out = ask(run, make_tracker, "ask_repayment_history", "demo-posting", lang="zh")
    assert out.text.startswith("您最近的1笔还款（共7笔）：\n• ")
    assert "5,000元，第1期，入账中（预计" in out.text


def test_no_repayments_yet(run, make_tracker, backend, records):
    backend.on("GET", repayments_path("demo-closed"), (200, records("repayments", "demo-closed")))
    assert ask(run, make_tracker, "ask_repayment_history", "demo-closed", lang="zh").text == \
        "您的账户暂时还没有还款记录。"


# --- failures: never a made-up figure ---------------------------------------------------------


@pytest.mark.parametrize("answer", [
    (500, {"error": {"code": "internal", "message": "boom", "details": {}}}),
    (200, "not json"),
    (200, {"loans": [{"loan_id": "l1", "principal": 5000}], "timezone": "Asia/Shanghai",
           "total": 1}),  # a loan without its figures
    (200, {"loans": "nope"}),
    requests.ConnectionError("refused"),
])
def test_unusable_records_get_an_apology_and_a_person(run, make_tracker, backend, caplog,
                                                      answer):
    backend.on("GET", loans_path("demo-in-use"), answer)
    with caplog.at_level(logging.ERROR, logger="relend.actions"):
        out = ask(run, make_tracker, "ask_loan_balance", "demo-in-use")
    assert out.text.startswith("Sorry, I can't reach your loan records right now")
    assert "¥" not in out.text
    assert out.payloads == ["/request_human"]
    assert out.slots == {"pending_offer": "human"}
    assert "conversation=conv-1 borrower=demo-in-use" in caplog.text


def test_no_identity_and_unknown_borrower(run, make_tracker, backend):
    backend.on("GET", loans_path("ghost"),
               (404, {"error": {"code": "borrower_not_found", "message": "", "details": {}}}))
    out = ask(run, make_tracker, "ask_next_instalment", None)
    assert out.text.startswith("I can't see which account you're signed in with")
    assert backend.calls == []
    out = ask(run, make_tracker, "ask_next_instalment", "ghost")
    assert out.text.startswith("I couldn't find lending details")
    assert out.slots == {"pending_offer": "human"}


# --- reminders ------------------------------------------------------------------------------


def stored(enabled: bool, days: int) -> tuple[int, dict[str, Any]]:
    return (200, {"borrower_id": "demo-in-use", "enabled": enabled, "days_before": days,
                  "updated_at": "2026-03-10T04:00:00Z"})


def test_turning_reminders_on_sends_only_what_was_asked(run, make_tracker, backend):
    backend.on("PUT", reminders_path("demo-in-use"), stored(True, 3))
    out = ask(run, make_tracker, "turn_on_reminders", "demo-in-use", lang="zh", text="提醒我还款")
    assert backend.calls[-1].json == {"enabled": True}
    assert out.text == ("好的，已开启还款提醒：每期到期前3天和到期当天，"
                        "我会在这个聊天里给您发消息提醒。")
    assert out.payloads == ["/turn_off_reminders"]


def test_days_before_from_the_message_and_the_confirmation_from_the_backend(run, make_tracker,
                                                                          backend):
    backend.on("PUT", reminders_path("demo-in-use"), stored(True, 5))
    out = ask(run, make_tracker, "turn_on_reminders", "demo-in-use",
              text="remind me 5 days before")
    assert backend.calls[-1].json == {"enabled": True, "days_before": 5}
    assert out.text.startswith("Done: I'll remind you 5 days before each due date, and again on "
                               "the due date itself, with a message here in this chat.")


def test_a_button_sets_the_days(run, make_tracker, backend):
    backend.on("PUT", reminders_path("demo-in-use"), stored(True, 1))
    out = ask(run, make_tracker, "turn_on_reminders", "demo-in-use",
              text='/turn_on_reminders{"days_before": "1"}',
              entities=[{"entity": "days_before", "value": "1"}])
    assert backend.calls[-1].json == {"enabled": True, "days_before": 1}
    assert "1 day before each due date" in out.text


def test_too_many_days_ask_again_without_storing_anything(run, make_tracker, backend):
    out = ask(run, make_tracker, "turn_on_reminders", "demo-in-use", lang="zh",
              text="提前二十天提醒我")
    assert backend.calls == []
    assert out.text == "还款提醒可以设在到期前1到14天。您希望提前几天提醒？"
    assert out.payloads == ['/turn_on_reminders{"days_before": "1"}',
                            '/turn_on_reminders{"days_before": "3"}',
                            '/turn_on_reminders{"days_before": "7"}']


def test_turning_reminders_off(run, make_tracker, backend):
    backend.on("PUT", reminders_path("demo-in-use"), stored(False, 3))
    out = ask(run, make_tracker, "turn_off_reminders", "demo-in-use", lang="zh",
              text="别再提醒我了，提前3天也不要")
    assert backend.calls[-1].json == {"enabled": False}
    assert out.text.startswith("已关闭还款提醒")
    assert out.payloads == ["/turn_on_reminders"]


def test_a_failed_change_says_nothing_changed(run, make_tracker, backend):
    backend.on("PUT", reminders_path("demo-in-use"), (503, {"error": {"code": "x"}}),
               (503, {"error": {"code": "x"}}))
    out = ask(run, make_tracker, "turn_off_reminders", "demo-in-use")
    assert out.text.startswith("Sorry, I couldn't change your reminder setting just now, "
                               "so nothing has changed.")
    assert out.slots == {"pending_offer": "human"}
    assert len(backend.calls) == 2  # a PUT is idempotent: retried once (RETRIES=1)


@pytest.mark.parametrize(("message", "days"), [
    ("提醒我还款", None), ("提前5天提醒我", 5), ("提前三天提醒我还款", 3),
    ("还款日前一天提醒我", 1),
    ("提前一周提醒我", 7), ("提前十四天", 14), ("提前二十天", 20), ("remind me 5 days before", 5),
    ("remind me a day before", 1), ("two weeks ahead please", 14), ("fourteen days", 14),
    ("每个月10日还款提醒我", None), ("借了5000提醒我", None),
])
def test_days_in_a_message(message, days):
    assert days_in(message) == days
