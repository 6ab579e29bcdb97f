"""The core actions against the real eligibility service.

``python -m eligibility seed`` fills a temporary SQLite file with the demo borrowers, then
``uvicorn eligibility.asgi:app`` serves it on 127.0.0.1 (a socket bound here and handed over
with ``--fd``: no port race, no polling). The backend runs on its real clock, so the demo
dates are relative to the moment of seeding (read back from the database); the actions' clock
is frozen at that moment, so "today", "in about 2 hours" read as the seed means them. The
expected figures and dates are the seed's own offsets (eligibility/seed.py), spelled here:
never rendered by the code under test.

Each user turn runs ``action_validate_slot_mappings`` first, as Rasa does, so identity and
language come from the channel metadata exactly as in production.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from rasa_sdk import Action
from rasa_sdk.executor import CollectingDispatcher

from actions.appeals import BeginAppeal, FileAppeal, ReportAppealStatus, ValidateAppealForm
from actions.clock import use_clock
from actions.context import ReadChannelContext
from actions.eligibility import ExplainDecision, ReportAppError
from actions.handoff import HandoffToHuman
from common.db import make_engine, make_session_factory
from eligibility.models import Borrower
from tests.conftest import serve_asgi

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SERVICE_TOKEN = "actions-test-service-token"
BACKOFFICE_TOKEN = "actions-test-backoffice-token"
APPEAL_ID = re.compile(r"AP\d{8}-[A-Z0-9]{6}")
SHANGHAI = ZoneInfo("Asia/Shanghai")  # every demo borrower's time zone
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("backend") / "eligibility.db"


@pytest.fixture(scope="module")
def live_backend(database: Path) -> Iterator[str]:
    """The eligibility service on a loopback port, seeded with the demo borrowers."""
    env = {**os.environ, "RELEND_BACKEND_DB_URL": f"sqlite:///{database}",
           "RELEND_BACKEND_TOKEN": SERVICE_TOKEN, "RELEND_BACKOFFICE_TOKEN": BACKOFFICE_TOKEN,
           "RELEND_APPEAL_RESPONSE_HOURS": "72", "RELEND_MIN_DRAWDOWN": "500",
           "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    seeded = subprocess.run([sys.executable, "-m", "eligibility", "seed"], cwd=PROJECT_ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    with serve_asgi("eligibility.asgi:app", env) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def seeded_at(live_backend: str, database: Path) -> datetime:
    """The moment the seed ran: it creates every demo borrower 900 days before it."""
    engine = make_engine(f"sqlite:///{database}")
    try:
        with make_session_factory(engine)() as session:
            created = session.get(Borrower, "demo-eligible").created_at
    finally:
        engine.dispose()
    return created + timedelta(days=900)


@pytest.fixture
def now(live_backend: str, seeded_at: datetime, configure_actions: Callable[..., None],
        monkeypatch: pytest.MonkeyPatch) -> Iterator[datetime]:
    """Point the actions at the live service; their clock stops at the moment of seeding."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    configure_actions(RELEND_BACKEND_URL=live_backend, RELEND_BACKEND_TOKEN=SERVICE_TOKEN,
                      RELEND_BACKEND_CONNECT_TIMEOUT="2", RELEND_BACKEND_READ_TIMEOUT="10")
    with use_clock(lambda: seeded_at):
        yield seeded_at


def on_day(moment: datetime, lang: str, today: datetime) -> str:
    """A day as the borrower reads it in Shanghai: 5月11日 / 11 May, with the year when it is
    not this year's (the days used here are never close enough to read "tomorrow")."""
    local, this_year = moment.astimezone(SHANGHAI), today.astimezone(SHANGHAI).year
    if lang == "zh":
        return (f"{local.year}年" if local.year != this_year else "") + \
            f"{local.month}月{local.day}日"
    return f"{local.day} {MONTHS[local.month - 1]}" + \
        (f" {local.year}" if local.year != this_year else "")


def clock(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%H:%M")


class Chat:
    """One conversation: slots carried from turn to turn, identity from the channel."""

    def __init__(self, make_tracker: Callable[..., Any], run: Callable[..., Any],
                 sender_id: str, borrower_id: str | None, locale: str | None) -> None:
        self.make_tracker, self.run = make_tracker, run
        self.sender_id = sender_id
        self.metadata = {**({"locale": locale} if locale else {}),
                         **({"borrower_id": borrower_id} if borrower_id else {})}
        self.slots: dict[str, Any] = {}

    @property
    def language(self) -> str:
        return self.slots.get("language") or "zh"  # the domain's initial value

    def turn(self, text: str, intent: str, action: Action, **slots: Any) -> Any:
        """The borrower says ``text``; Rasa reads the channel context, then runs ``action``."""
        self.slots.update(slots)
        for step in (ReadChannelContext(), action):
            tracker = self.make_tracker(text, intent, metadata=self.metadata, slots=self.slots,
                                        sender_id=self.sender_id)
            outcome = self.run(step, tracker)
            self.slots.update(outcome.slots)
        return outcome

    def give_statement(self, statement: str) -> None:
        """The appeal form's statement, validated as the form would."""
        tracker = self.make_tracker(statement, None, metadata=self.metadata, slots=self.slots,
                                    sender_id=self.sender_id)
        result = asyncio.run(ValidateAppealForm().validate_appeal_statement(
            statement, CollectingDispatcher(), tracker, {}))
        assert result == {"appeal_statement": statement}
        self.slots.update(result, appeal_confirmed=True)


@pytest.fixture
def chat(make_tracker: Callable[..., Any], run: Callable[..., Any],
         now: datetime) -> Callable[..., Chat]:
    def _chat(borrower_id: str | None, *, sender_id: str = "conv-real",
              locale: str | None = "zh-CN") -> Chat:
        return Chat(make_tracker, run, sender_id, borrower_id, locale)

    return _chat


def backend_get(base_url: str, path: str) -> Any:
    response = requests.get(f"{base_url}{path}", timeout=10,
                            headers={"Authorization": f"Bearer {SERVICE_TOKEN}"})
    assert response.status_code == 200, response.text
    return response.json()


def backoffice(base_url: str, appeal_id: str, status: str, **fields: Any) -> None:
    response = requests.post(f"{base_url}/v1/backoffice/appeals/{appeal_id}/transitions",
                             json={"status": status, **fields}, timeout=10,
                             headers={"Authorization": f"Bearer {BACKOFFICE_TOKEN}"})
    assert response.status_code == 200, response.text


# --- explaining real decisions -------------------------------------------------------------------


def figures(borrower_id: str, lang: str, seeded: datetime) -> list[str]:
    """What the explanation must say, from the seed's offsets (eligibility/seed.py)."""
    def on(days: int) -> str:
        return on_day(seeded + timedelta(days=days), lang, seeded)

    zh = lang == "zh"
    return {
        "demo-eligible": ["好消息", "可借额度20,000元"] if zh else
        ["Good news", "¥20,000 is available"],
        # 5,000 repaid ten minutes before seeding, posting two hours after it
        "demo-posting": [f"{clock(seeded - timedelta(minutes=10))}的还款5,000元",
                         f"{clock(seeded + timedelta(hours=2))}（约2小时后）"] if zh else
        ["repayment of ¥5,000", f"{clock(seeded - timedelta(minutes=10))})",
         f"{clock(seeded + timedelta(hours=2))} (in about 2 hours)"],
        # due 40 days before, 12 days late, cleared 28 days before: + 90 days
        "demo-overdue": [f"{on(-40)}到期", "逾期了12天", f"已于{on(-28)}还清", "90天的观察期",
                         f"{on(62)}之后可以重新借款"] if zh else
        [f"due on {on(-40)}", "12 days late", f"settled on {on(-28)}", "90-day cooling-off",
         f"borrow again after {on(62)}"],
        # 712 -> 598 six days before (rescored 30 days later); late elsewhere 20 days before
        "demo-score-drop": ["从712降到了598", f"{on(-20)}在其他机构有1笔逾期记录", "近30天有9次",
                            f"评分预计{on(24)}更新"] if zh else
        ["from 712 to 598", f"late payment with another lender ({on(-20)})",
         "9 credit applications", f"next updated on {on(24)}"],
        # over three hours after seeding
        "demo-incident": ["DEMO-INC-0001", f"{clock(seeded + timedelta(hours=3))}恢复",
                          "不是您账户的问题"] if zh else
        ["DEMO-INC-0001", f"at {clock(seeded + timedelta(hours=3))}", "not by your account"],
        "demo-in-use": ["1/12期", "4,583.33元", "可借只有416.67元", "500元"] if zh else
        ["1 of 12", "¥4,583.33", "¥416.67 is available", "¥500"],
        # expired ID (10 days before) first, then the score and the funding quota in one line
        "demo-id-score-funding": [f"已于{on(-10)}过期", "另外：信用评分为572，低于借款所需的600分",
                                  "明天 10:00开放"] if zh else
        [f"expired on {on(-10)}", "Also: your credit score (572) is below the 600 needed",
         "tomorrow at 10:00"],
    }[borrower_id]


OFFERS = {"demo-overdue": "appeal", "demo-score-drop": "appeal"}  # the others offer nothing


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("borrower_id", ["demo-eligible", "demo-id-score-funding", "demo-in-use",
                                         "demo-incident", "demo-overdue", "demo-posting",
                                         "demo-score-drop"])
def test_explain_a_real_decision(chat, now, borrower_id, lang) -> None:
    conversation = chat(borrower_id, locale="zh-CN" if lang == "zh" else "en-US")
    question = "为什么还款了还借不了" if lang == "zh" else "why can't I borrow after repaying"
    outcome = conversation.turn(question, "cannot_borrow_after_repayment", ExplainDecision())
    decision = conversation.slots["decision"]
    assert decision["borrower_id"] == borrower_id and conversation.language == lang
    for figure in figures(borrower_id, lang, now):
        assert figure in outcome.text, f"{figure!r} missing from:\n{outcome.text}"
    offer = OFFERS.get(borrower_id)
    assert conversation.slots["pending_offer"] == offer
    assert outcome.payloads == (["/request_appeal", "/request_human"] if offer else [])


def test_dates_are_the_decisions_own_in_the_borrowers_zone(chat, now) -> None:
    # cleared 28 days before seeding, at the seeding's time of day: 90 days on, same time
    conversation = chat("demo-overdue", locale="en-US")
    outcome = conversation.turn("when can I borrow", "ask_limit_restore_time", ExplainDecision())
    until = on_day(now + timedelta(days=62), "en", now)
    assert outcome.text.splitlines()[0] == (
        f"The earliest you can borrow again is after {until} at {clock(now)}.")
    assert f"you can borrow again after {until}" in outcome.text
    assert f"due on {on_day(now - timedelta(days=40), 'en', now)}" in outcome.text


def test_identity_is_the_channels_not_the_messages(chat, live_backend) -> None:
    conversation = chat("demo-posting", sender_id="conv-real-identity")
    outcome = conversation.turn("我的账号是demo-eligible，查demo-eligible",
                                "cannot_borrow_after_repayment", ExplainDecision())
    assert conversation.slots["borrower_id"] == "demo-posting"
    assert conversation.slots["decision"]["borrower_id"] == "demo-posting"
    assert "5,000元" in outcome.text and "好消息" not in outcome.text
    # no identity from the channel at all: the claim in the text is not used
    anonymous = chat(None, sender_id="conv-real-anonymous", locale="en-GB")
    outcome = anonymous.turn("I am demo-eligible", "cannot_borrow_after_repayment",
                             ExplainDecision())
    assert outcome.text.startswith("I can't see which account you're signed in with")
    assert "borrower_id" not in anonymous.slots or anonymous.slots["borrower_id"] is None


def test_an_app_error_during_a_real_incident(chat) -> None:
    outcome = chat("demo-incident", locale="en-US").turn("the app fails", "report_app_error",
                                                         ReportAppError())
    assert "DEMO-INC-0001" in outcome.text and outcome.slots["pending_offer"] is None


def test_a_handoff_carries_the_real_decision(chat, desk) -> None:
    desk.on("POST", "/internal/handoffs", (200, {"case_id": 6}))
    conversation = chat("demo-compliance", sender_id="conv-real-handoff")
    explained = conversation.turn("为什么借不了", "cannot_borrow_after_repayment",
                                  ExplainDecision())
    assert explained.payloads == ["/request_human"]  # a security hold needs a person
    handed = conversation.turn("好的", "affirm", HandoffToHuman())
    case = desk.calls[0].json
    assert case["borrower_id"] == "demo-compliance" and case["reason"] == "offered_by_bot"
    assert case["decision"]["reasons"][0]["details"]["hold_id"] == "HOLD-demo-compliance"
    assert "_fetched_at" not in case["decision"]
    assert handed.paused


# --- appeals, from filing to the outcome ---------------------------------------------------------


def test_file_an_appeal_then_follow_it_to_the_end(chat, live_backend, now) -> None:
    # no locale from the channel: the language follows what the borrower writes
    conversation = chat("demo-overdue", sender_id="conv-real-appeal", locale=None)
    conversation.turn("为什么借不了", "cannot_borrow_after_repayment", ExplainDecision())
    decision_id = conversation.slots["decision"]["decision_id"]
    assert conversation.slots["pending_offer"] == "appeal"

    began = conversation.turn("好的", "affirm", BeginAppeal())
    assert began.slots["appeal_ready"] is True
    assert conversation.slots["appeal_reason_code"] == "OVERDUE_COOLING_OFF"
    assert conversation.slots["appeal_decision_id"] == decision_id

    conversation.give_statement("逾期是因为银行扣款失败，不是我没还")
    filing = datetime.now(timezone.utc)
    filed = conversation.turn("/affirm", "affirm", FileAppeal())
    filed_by = datetime.now(timezone.utc)
    [appeal_id] = APPEAL_ID.findall(filed.text)
    assert conversation.slots["appeal_ids"] == [appeal_id]
    stored = backend_get(live_backend, f"/v1/borrowers/demo-overdue/appeals/{appeal_id}")
    assert stored["decision_id"] == decision_id and stored["channel"] == "chat"
    assert stored["statement"] == "逾期是因为银行扣款失败，不是我没还"
    # an answer within 72 hours of filing (RELEND_APPEAL_RESPONSE_HOURS), told as a day and time
    respond_by = datetime.fromisoformat(stored["respond_by"].replace("Z", "+00:00"))
    hours_72 = timedelta(hours=72)
    assert filing.replace(microsecond=0) + hours_72 <= respond_by <= filed_by + hours_72
    assert f"{on_day(respond_by, 'zh', now)} {clock(respond_by)}" in filed.text

    # the form's slots again, as after a retry: the same key files nothing new
    conversation.slots.update(appeal_reason_code="OVERDUE_COOLING_OFF", appeal_ready=True)
    conversation.give_statement("逾期是因为银行扣款失败，不是我没还")
    refiled = conversation.turn("/affirm", "affirm", FileAppeal())
    assert APPEAL_ID.findall(refiled.text) == [appeal_id]
    assert conversation.slots["appeal_ids"] == [appeal_id]
    appeals = backend_get(live_backend, "/v1/borrowers/demo-overdue/appeals")["appeals"]
    assert [a["appeal_id"] for a in appeals] == [appeal_id]

    status = conversation.turn("申诉进度", "check_appeal_status", ReportAppealStatus())
    assert appeal_id in status.text and "排队" in status.text

    # asking to appeal again while it is open: its status, not a second appeal
    again = conversation.turn("我要申诉", "request_appeal", BeginAppeal())
    assert again.slots["appeal_ready"] is False and appeal_id in again.text
    # another conversation (another key) filing the same reason: already open
    other = chat("demo-overdue", sender_id="conv-real-appeal-2")
    why = other.turn("为什么借不了", "cannot_borrow_after_repayment", ExplainDecision())
    # ... which already knows the appeal filed in the first one, against the same decision
    assert other.slots["decision"]["decision_id"] == decision_id
    assert f"您已经就这个结果提交了申诉（编号 {appeal_id}）" in why.text
    assert "提交申诉" not in why.text and why.payloads == []
    assert other.slots["pending_offer"] is None
    other.slots.update(appeal_reason_code="OVERDUE_COOLING_OFF", appeal_ready=True,
                       appeal_decision_id=decision_id)
    other.give_statement("银行扣款失败导致的逾期")
    duplicate = other.turn("/affirm", "affirm", FileAppeal())
    assert duplicate.text.startswith(f"这个问题您已经有一个正在处理的申诉（{appeal_id}）")
    assert "没有重复提交" in duplicate.text

    backoffice(live_backend, appeal_id, "in_review")
    status = conversation.turn("how's my appeal", "check_appeal_status", ReportAppealStatus())
    assert appeal_id in status.text and "being reviewed" in status.text  # they wrote in English

    backoffice(live_backend, appeal_id, "upheld", restored_limit=12000)
    status = conversation.turn("any news on my appeal?", "check_appeal_status",
                               ReportAppealStatus())
    assert "upheld" in status.text and "¥12,000" in status.text
    assert conversation.slots["decision"] is None  # the old decision no longer holds

    # the next question fetches the decision again: the cooling-off is waived
    answer = conversation.turn("can I borrow now?", "cannot_borrow_after_repayment",
                               ExplainDecision())
    assert answer.text.startswith("Good news") and "¥12,000" in answer.text


def test_a_rejected_appeal_gives_the_reviewers_note(chat, live_backend) -> None:
    conversation = chat("demo-score-drop", sender_id="conv-real-rejected", locale="en-US")
    conversation.turn("I want to appeal", "request_appeal", BeginAppeal())
    assert conversation.slots["appeal_reason_code"] == "CREDIT_SCORE_DROPPED"
    conversation.give_statement("The late payment elsewhere was a reporting error.")
    [appeal_id] = APPEAL_ID.findall(conversation.turn("/affirm", "affirm", FileAppeal()).text)
    backoffice(live_backend, appeal_id, "rejected", note="The bureau confirmed the record.")
    status = conversation.turn("appeal status", "check_appeal_status", ReportAppealStatus())
    assert "not upheld" in status.text and "The bureau confirmed the record." in status.text
    assert status.payloads == ["/request_human"]
    # the next day, a new conversation about the same decision: the rejected appeal is named,
    # with the reviewer's note, and a person is offered rather than the same appeal again
    later = chat("demo-score-drop", sender_id="conv-real-rejected-2", locale="en-US")
    why = later.turn("why can't I borrow", "cannot_borrow_after_repayment", ExplainDecision())
    assert later.slots["decision"]["decision_id"] == conversation.slots["appeal_decision_id"]
    assert (f"You have already appealed this (ref. {appeal_id}) and it was not upheld: "
            "The bureau confirmed the record.") in why.text
    assert "file an appeal" not in why.text and why.payloads == ["/request_human"]
    again = later.turn("I want to appeal", "request_appeal", BeginAppeal())
    assert again.slots["appeal_ready"] is False and appeal_id in again.text
    assert again.payloads == ["/request_human"]


def test_what_cannot_be_appealed(chat) -> None:
    conversation = chat("demo-funding", sender_id="conv-real-funding", locale="en-US")
    outcome = conversation.turn("I want to appeal", "request_appeal", BeginAppeal())
    assert outcome.slots["appeal_ready"] is False and outcome.slots["pending_offer"] == "human"
    assert outcome.messages[0]["text"].startswith("This one can't be appealed")
    # filed anyway (a stale form): the service refuses, and the statement is kept
    conversation.slots.update(appeal_reason_code="FUNDING_QUOTA_EXHAUSTED",
                              appeal_decision_id=conversation.slots["decision"]["decision_id"])
    conversation.give_statement("I need the money today, please.")
    refused = conversation.turn("/affirm", "affirm", FileAppeal())
    assert refused.text.startswith("Sorry, I couldn't file the appeal just now.")
    assert "I've kept what you wrote" in refused.text
    assert conversation.slots["appeal_statement"] == "I need the money today, please."
    assert conversation.slots["handoff_reason"] == "appeal_refused"


# --- the real service failing --------------------------------------------------------------------


def test_an_unknown_borrower(chat) -> None:
    outcome = chat("demo-nobody", locale="en-US").turn("why", "cannot_borrow_after_repayment",
                                                       ExplainDecision())
    assert outcome.text.startswith("I couldn't find lending details for the account")
    assert outcome.slots["pending_offer"] == "human"


def test_a_wrong_token_is_a_clear_failure(chat, configure_actions, caplog) -> None:
    configure_actions(RELEND_BACKEND_TOKEN="not-the-token")
    caplog.set_level(logging.WARNING)
    outcome = chat("demo-posting", sender_id="conv-real-401").turn(
        "为什么", "cannot_borrow_after_repayment", ExplainDecision())
    assert outcome.text.startswith("抱歉，我暂时查不到您的账户信息")
    assert outcome.slots["backend_failed"] is True
    assert any("conv-real-401" in r.getMessage() for r in caplog.records)


def test_a_service_that_is_down(chat, configure_actions, caplog) -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: connections are refused at once
    configure_actions(RELEND_BACKEND_URL=f"http://127.0.0.1:{port}")
    caplog.set_level(logging.WARNING)
    outcome = chat("demo-posting", sender_id="conv-real-down").turn(
        "为什么", "cannot_borrow_after_repayment", ExplainDecision())
    assert outcome.text.startswith("抱歉，我暂时查不到您的账户信息")
    assert outcome.payloads == ["/request_human"]
    assert any("conv-real-down" in r.getMessage() for r in caplog.records)
