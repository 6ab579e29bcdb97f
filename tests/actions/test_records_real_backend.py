"""Loans, repayments and reminders in the chat against the real eligibility service.

The same live backend as ``test_actions_real_backend.py`` (its fixtures: a seeded SQLite file
served on a loopback socket, the actions' clock stopped at the moment of seeding). Expected
figures and dates are the seed's, as docs/backend.md describes them ("The demo's records": the
first unpaid instalment falls due 12 days after seeding, the next ones every 30 days;
``demo-in-use`` has 5,000 over 12 instalments, one paid), spelled here, never rendered by the
code under test.
"""
# the fixtures are imported from the other module, and tests name them as parameters
# ruff: noqa: F811

from __future__ import annotations

from datetime import datetime, timedelta

from actions.records import AnswerRecords
from actions.reminders import SetReminders
from tests.actions.test_actions_real_backend import (  # noqa: F401  (fixtures)
    backend_get,
    chat,
    database,
    live_backend,
    now,
    on_day,
    seeded_at,
)


def test_next_instalment_and_balance_from_the_real_schedule(chat, now: datetime) -> None:
    borrower = chat("demo-in-use", locale="zh-CN")
    reply = borrower.turn("下期还多少、哪天还", "ask_next_instalment", AnswerRecords())
    due = on_day(now + timedelta(days=12), "zh", now)
    assert reply.text == f"您下一期应还416.67元，{due}到期（5,000元借款的第2/12期）。"
    reply = borrower.turn("how much do I still owe", "ask_loan_balance", AnswerRecords())
    last = on_day(now + timedelta(days=12 + 30 * 10), "en", now)
    assert "¥4,583.33 left to repay, of which ¥4,583.33 is principal" in reply.text
    assert reply.text.endswith(f"11 of 12 instalments left, the last one due {last}.")


def test_repayment_history_from_the_real_records(chat) -> None:
    borrower = chat("demo-overdue", locale="en-US")
    reply = borrower.turn("my repayment history", "ask_repayment_history", AnswerRecords())
    lines = reply.text.split("\n")
    assert lines[0] == "Your latest repayments:"
    assert len(lines) == 5
    for line, number in zip(lines[1:], "4321", strict=True):  # newest first
        assert line.startswith("• ") and line.endswith(f": ¥1,000 for instalment {number}, posted")


def test_reminders_on_with_days_then_off_are_stored(chat, live_backend: str) -> None:
    borrower = chat("demo-in-use", locale="zh-CN")
    reply = borrower.turn("提前5天提醒我还款", "turn_on_reminders", SetReminders())
    assert reply.text.startswith("好的，已开启还款提醒：每期到期前5天和到期当天")
    stored = backend_get(live_backend, "/v1/borrowers/demo-in-use/reminders")
    assert (stored["enabled"], stored["days_before"]) == (True, 5)
    reply = borrower.turn("别再提醒我了", "turn_off_reminders", SetReminders())
    assert reply.text.startswith("已关闭还款提醒")
    stored = backend_get(live_backend, "/v1/borrowers/demo-in-use/reminders")
    assert (stored["enabled"], stored["days_before"]) == (False, 5)  # off keeps the days
    reply = borrower.turn("提醒我还款", "turn_on_reminders", SetReminders())
    assert "到期前5天" in reply.text  # the earlier choice, as the backend kept it
