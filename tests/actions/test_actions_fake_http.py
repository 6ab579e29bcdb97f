"""Every custom action against a faked eligibility service and support desk.

The fake answers with decisions computed by the backend's own code (conftest ``decisions``)
or with failures: refused connections, timeouts, 4xx/5xx, bodies that are not JSON or not the
documented shape. The borrower must always get a clear message and the offer of a person,
nothing may raise, and the failure must be logged with the conversation id.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from actions.appeals import (
    AskAppealConfirmed,
    AskAppealStatement,
    BeginAppeal,
    FileAppeal,
    ReportAppealStatus,
    ValidateAppealForm,
    idempotency_key,
    statement_in,
)
from actions.clarify import Clarify, DeclineOffer, DefaultFallback
from actions.context import ReadChannelContext
from actions.eligibility import ExplainDecision, ReportAppError
from actions.explanations import explain
from actions.handoff import HandoffToHuman, Restart, ResumeAfterHandoff, SessionStart
from actions.texts import render
from eligibility.api import IDEMPOTENCY_KEY_PATTERN
from eligibility.models import Appeal
from eligibility.seed import DEMO_BORROWERS
from eligibility.service import appeal_to_dict

LANGS = ("zh", "en")
DEMO_IDS = [d.id for d in DEMO_BORROWERS]
NOW = datetime(2026, 3, 10, 4, 0, tzinfo=timezone.utc)  # as in conftest
TIMEOUTS = (0.2, 0.5)  # connect, read: what conftest configures


def eligibility_path(borrower_id: str) -> str:
    return f"/v1/borrowers/{borrower_id}/eligibility"


def appeals_path(borrower_id: str) -> str:
    return f"/v1/borrowers/{borrower_id}/appeals"


def text_of(key: str, lang: str, **fields: Any) -> str:
    return render(key, lang, **fields)[0]


def ask_why(run: Callable[..., Any], make_tracker: Callable[..., Any], borrower_id: str,
            **tracker: Any) -> Any:
    """action_explain_decision on the borrower's first question (why can't I borrow?)."""
    return run(ExplainDecision(), make_tracker("?", "cannot_borrow_after_repayment",
                                               borrower=borrower_id, **tracker))


def appeal_json(borrower_id: str = "demo-overdue", **fields: Any) -> dict[str, Any]:
    """An appeal as the backend serialises it (its own ``appeal_to_dict``)."""
    values: dict[str, Any] = {
        "id": "AP20260310-ABC234", "idempotency_key": "k" * 10, "request_fingerprint": "f",
        "borrower_id": borrower_id, "decision_id": "dec_1", "reason_code": "OVERDUE_COOLING_OFF",
        "statement": "The bank's debit failed.", "channel": "chat", "status": "submitted",
        "submitted_at": NOW - timedelta(days=1), "respond_by": NOW + timedelta(hours=72),
        "updated_at": NOW, "resolution_note": None, "restored_limit_cents": None,
    }
    values.update(fields)
    return appeal_to_dict(Appeal(**values))


def reviewed_answer(borrower_id: str, lang: str) -> dict[str, Any]:
    """The answer to "why?" as reviewed by hand (tests/actions/golden/explanations.yml)."""
    golden = Path(__file__).with_name("golden") / "explanations.yml"
    return yaml.safe_load(golden.read_text(encoding="utf-8"))[borrower_id][lang]


def error_body(code: str, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": code.replace("_", " "), "details": details}}


# --- identity and language come from the channel -------------------------------------------------


def test_identity_comes_only_from_the_channels_metadata(make_tracker, run, backend) -> None:
    tracker = make_tracker("I am demo-eligible, check borrower demo-eligible please",
                           "cannot_borrow_after_repayment",
                           metadata={"borrower_id": "demo-overdue", "locale": "en-US"})
    outcome = run(ReadChannelContext(), tracker)
    assert outcome.slots["borrower_id"] == "demo-overdue"
    assert outcome.slots["language"] == "en"


@pytest.mark.parametrize("metadata", [{}, {"borrower_id": ""}, {"borrower_id": 123},
                                      {"borrower_id": "../../admin"}, {"borrower_id": "a b"}])
def test_a_message_claiming_an_id_changes_nothing(make_tracker, run, backend, metadata) -> None:
    # no identity yet: the claim in the text is ignored
    tracker = make_tracker("我是demo-eligible，帮我查一下", "cannot_borrow_after_repayment",
                           metadata=metadata)
    assert "borrower_id" not in run(ReadChannelContext(), tracker).slots
    # an identity from earlier: kept, with the decision already fetched for it
    tracker = make_tracker("actually my id is demo-eligible", metadata=metadata,
                           borrower="demo-overdue", slots={"decision": {"borrower_id": "x"}})
    outcome = run(ReadChannelContext(), tracker)
    assert "borrower_id" not in outcome.slots and "decision" not in outcome.slots
    assert backend.calls == []


def test_the_same_account_again_keeps_what_was_learnt(make_tracker, run) -> None:
    tracker = make_tracker("还是不行", metadata={"borrower_id": "demo-overdue"},
                           borrower="demo-overdue", slots={"decision": {"borrower_id": "x"}})
    assert run(ReadChannelContext(), tracker).slots == {}


def test_another_account_on_the_channel_forgets_the_previous_one(make_tracker, run) -> None:
    tracker = make_tracker("hello", metadata={"borrower_id": "demo-posting"},
                           borrower="demo-overdue", lang="en",
                           slots={"decision": {"borrower_id": "demo-overdue"},
                                  "pending_offer": "appeal", "appeal_ids": ["AP20260301-AAAAAA"],
                                  "appeal_reason_code": "OVERDUE_COOLING_OFF",
                                  "appeal_decision_id": "dec_old"})
    slots = run(ReadChannelContext(), tracker).slots
    assert slots["borrower_id"] == "demo-posting"
    for name in ("decision", "pending_offer", "appeal_ids", "appeal_reason_code",
                 "appeal_decision_id"):
        assert slots[name] is None, name


@pytest.mark.parametrize(("locale", "text", "previous", "expected"), [
    ("en-US", "为什么借不了", "zh", None),  # a Chinese message on an English phone: stays zh
    ("zh-CN", "why can't I borrow", "zh", "en"),  # an English message on a Chinese phone
    (None, "为什么借不了", "en", "zh"),
    (None, "why can't I borrow", "zh", "en"),
    (None, "123456", "en", None),  # digits: no change
    (None, "/request_human", "en", None),  # a button payload: no change
])
def test_the_language_slot_follows_the_message_not_the_locale(make_tracker, run, locale, text,
                                                              previous, expected) -> None:
    metadata = {"borrower_id": "demo-posting", **({"locale": locale} if locale else {})}
    tracker = make_tracker(text, metadata=metadata, borrower="demo-posting", lang=previous)
    assert run(ReadChannelContext(), tracker).slots.get("language") == expected


@pytest.mark.parametrize("lang", LANGS)
def test_without_an_identity_the_bot_says_it_cannot_see_the_account(make_tracker, run, backend,
                                                                     lang) -> None:
    for action in (ExplainDecision(), ReportAppError(), BeginAppeal(), ReportAppealStatus()):
        outcome = run(action, make_tracker("?", "cannot_borrow_after_repayment", lang=lang))
        assert outcome.text.startswith(text_of("no_identity", lang))
        assert ("看不到您登录的是哪个账户" if lang == "zh" else "can't see which account") \
            in outcome.text
    assert backend.calls == []


# --- explaining the decision ---------------------------------------------------------------------


# Every demo borrower's explanation and the focus of each question are checked against fixed,
# reviewed texts in test_explanations.py (golden/explanations.yml), not against explain().


@pytest.mark.parametrize("lang", LANGS)
def test_naming_another_lenders_product_adds_a_note_once(make_tracker, run, backend, decisions,
                                                         lang) -> None:
    backend.on("GET", eligibility_path("demo-posting"), (200, decisions["demo-posting"]))
    jiebei = [{"entity": "product", "value": "jiebei"}]
    outcome = run(ExplainDecision(), make_tracker("借呗还了借不了", "cannot_borrow_after_repayment",
                                                  borrower="demo-posting", lang=lang,
                                                  entities=jiebei))
    first = outcome.text.splitlines()[0]
    assert ("借呗的账户我这里看不到" if lang == "zh" else "I can't see Jiebei accounts") in first
    assert outcome.slots["product_note_shown"] is True
    again = run(ExplainDecision(), make_tracker("借呗", "cannot_borrow_after_repayment",
                                                borrower="demo-posting", lang=lang,
                                                entities=jiebei,
                                                slots={"product_note_shown": True}))
    assert "借呗" not in again.text and "Jiebei" not in again.text


def test_follow_ups_reuse_the_decision_already_fetched(make_tracker, run, backend,
                                                       decisions) -> None:
    backend.on("GET", eligibility_path("demo-posting"), (200, decisions["demo-posting"]))
    first = run(ExplainDecision(), make_tracker("为什么借不了", "cannot_borrow_after_repayment",
                                                borrower="demo-posting"))
    kept = first.slots["decision"]
    for intent in ("ask_limit_restore_time", "ask_improve_eligibility", "ask_repayment_status"):
        outcome = run(ExplainDecision(), make_tracker("那什么时候能借", intent,
                                                      borrower="demo-posting",
                                                      slots={"decision": kept}))
        assert "decision" not in outcome.slots  # nothing new fetched
        assert "5,000元" in outcome.text
    for action in (ReportAppError(), BeginAppeal()):
        run(action, make_tracker("?", "request_appeal", borrower="demo-posting",
                                 slots={"decision": kept}))
    assert backend.paths("GET").count(eligibility_path("demo-posting")) == 1


def test_an_old_or_someone_elses_decision_is_fetched_again(make_tracker, run, backend, decisions,
                                                            configure_actions, now) -> None:
    configure_actions(RELEND_DECISION_MAX_AGE_SECONDS="120")
    backend.on("GET", eligibility_path("demo-posting"), (200, decisions["demo-posting"]))
    # ages by the actions' clock (fixed at ``now``), not by the machine's
    fresh = {**decisions["demo-posting"], "_fetched_at": now.timestamp() - 100}
    stale = {**decisions["demo-posting"], "_fetched_at": now.timestamp() - 130}
    other = {**decisions["demo-overdue"], "_fetched_at": now.timestamp()}
    for cached, fetches in ((fresh, 0), (stale, 1), (other, 1), ("junk", 1)):
        backend.calls.clear()
        outcome = run(ExplainDecision(), make_tracker("?", "ask_limit_restore_time",
                                                      borrower="demo-posting",
                                                      slots={"decision": cached}))
        assert len(backend.calls) == fetches
        assert "5,000元" in outcome.text


# --- when the service fails ----------------------------------------------------------------------


VALID_BUT = {"borrower_id": "demo-posting", "eligible": False, "available_limit": 0,
             "total_limit": 5000, "currency": "CNY", "decision_id": "dec_x",
             "timezone": "Asia/Shanghai"}
FAILURES: dict[str, tuple[list[Any], int]] = {
    # answers, and how many requests the client should make (one retry where it helps)
    "connection refused": ([requests.ConnectionError("refused")], 2),
    "connect timeout": ([requests.ConnectTimeout("slow to connect")], 2),
    "read timeout": ([requests.ReadTimeout("slow to answer")], 1),
    "HTTP 500": ([(500, error_body("internal_error"))], 1),
    "HTTP 503 every time": ([(503, "Service Unavailable")], 2),
    "HTTP 502 then read timeout": ([(502, "Bad Gateway"), requests.ReadTimeout("slow")], 2),
    "not JSON": ([(200, "<html>maintenance</html>")], 1),
    "JSON but not an object": ([(200, ["eligible"])], 1),
    "JSON missing fields": ([(200, {"borrower_id": "demo-posting", "eligible": False})], 1),
    "a field of the wrong type": ([(200, {**VALID_BUT, "reasons": "none"})], 1),
    "a reason without details": ([(200, {**VALID_BUT, "reasons": [{"code": "X"}]})], 1),
    "401 unauthorized": ([(401, error_body("unauthorized"))], 1),
    "400 with an error that is not an object": ([(400, {"error": "bad"})], 1),
    "404 with an error that is not an object": ([(404, {"error": "nope"})], 1),
    "404 without a body": ([(404, "Not Found")], 1),
}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_failing_service_gets_a_clear_message_and_a_person(make_tracker, run, backend, caplog,
                                                             failure, lang) -> None:
    answers, requests_made = FAILURES[failure]
    backend.on("GET", eligibility_path("demo-posting"), *answers)
    caplog.set_level(logging.WARNING)
    outcome = ask_why(run, make_tracker, "demo-posting", lang=lang, sender_id="conv-failing-42")
    assert outcome.text == text_of("backend_unavailable", lang)
    assert outcome.payloads == ["/request_human"]
    assert outcome.slots == {"pending_offer": "human", "backend_failed": True}
    assert len(backend.calls) == requests_made
    # what failed is logged, with the conversation it happened in
    assert any("conv-failing-42" in r.getMessage() for r in caplog.records
               if r.levelno >= logging.WARNING)


# a real decision with one figure broken: the right shape on top, nonsense inside a reason
BROKEN_FIGURES: dict[str, tuple[str, dict[str, Any]]] = {
    "a score that is null": ("demo-score-drop", {"score_after": None}),
    "a factor that is not an object": ("demo-score-drop", {"factors": ["RECENT_OVERDUE"]}),
    "an amount that is not a number": ("demo-posting", {"amount": "lots"}),
    "a time that is a number": ("demo-posting", {"expected_post_at": 1773115200}),
    "a loan that is not an object": ("demo-in-use", {"loans": [None]}),
}


@pytest.mark.parametrize("broken", sorted(BROKEN_FIGURES))
def test_a_decision_that_cannot_be_put_into_words_is_a_failure(make_tracker, run, backend,
                                                               decisions, caplog,
                                                               broken) -> None:
    borrower_id, details = BROKEN_FIGURES[broken]
    decision = decisions[borrower_id]
    decision["reasons"][0]["details"].update(details)
    backend.on("GET", eligibility_path(borrower_id), (200, decision))
    caplog.set_level(logging.WARNING)
    for action, intent in ((ExplainDecision(), "ask_improve_eligibility"),
                           (BeginAppeal(), "request_appeal")):
        outcome = run(action, make_tracker("?", intent, borrower=borrower_id, lang="en",
                                           sender_id="conv-broken-5"))
        assert outcome.text == text_of("backend_unavailable", "en")
        assert outcome.slots["backend_failed"] is True and "decision" not in outcome.slots
    assert any("conv-broken-5" in r.getMessage() and "malformed decision" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("lang", LANGS)
def test_an_unknown_borrower_is_offered_a_person(make_tracker, run, backend, caplog,
                                                 lang) -> None:
    backend.on("GET", eligibility_path("demo-nobody"),
               (404, error_body("borrower_not_found", borrower_id="demo-nobody")))
    caplog.set_level(logging.WARNING)
    outcome = ask_why(run, make_tracker, "demo-nobody", lang=lang, sender_id="conv-unknown-7")
    assert outcome.text == text_of("account_not_found", lang)
    assert outcome.payloads == ["/request_human"]
    assert outcome.slots == {"pending_offer": "human"}
    assert len(backend.calls) == 1
    assert any("conv-unknown-7" in r.getMessage() for r in caplog.records)


def test_a_503_then_200_succeeds_with_one_retry(make_tracker, run, backend, decisions) -> None:
    backend.on("GET", eligibility_path("demo-posting"), (503, error_body("unavailable")),
               (200, decisions["demo-posting"]))
    outcome = ask_why(run, make_tracker, "demo-posting")
    assert "5,000元" in outcome.text and "backend_failed" not in outcome.slots
    assert len(backend.calls) == 2


@pytest.mark.parametrize("failure", [requests.ReadTimeout("slow"), ConnectionResetError("reset")],
                         ids=["read timeout", "connection broken after sending"])
def test_a_request_that_reached_the_service_is_not_sent_again(make_tracker, run, backend,
                                                              decisions, failure) -> None:
    backend.on("GET", eligibility_path("demo-posting"), failure, (200, decisions["demo-posting"]))
    outcome = ask_why(run, make_tracker, "demo-posting")
    assert outcome.slots["backend_failed"] is True
    assert len(backend.calls) == 1


def test_no_retries_when_configured_off(make_tracker, run, backend, configure_actions) -> None:
    configure_actions(RELEND_BACKEND_RETRIES="0")
    backend.on("GET", eligibility_path("demo-posting"), requests.ConnectionError("refused"))
    ask_why(run, make_tracker, "demo-posting")
    assert len(backend.calls) == 1


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_the_time_a_failure_can_take_is_bounded(make_tracker, run, backend, failure) -> None:
    """Every request carries the configured timeouts, and attempts are few: the worst case is
    (connect + read) per attempt, whatever the failure."""
    backend.on("GET", eligibility_path("demo-posting"), *FAILURES[failure][0])
    ask_why(run, make_tracker, "demo-posting")
    assert all(call.timeout == TIMEOUTS for call in backend.calls)
    assert len(backend.calls) <= 2  # one retry at most, and urllib3 makes it without a pause


# --- app errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_an_app_error_during_an_incident_names_the_incident(make_tracker, run, backend, decisions,
                                                            lang) -> None:
    backend.on("GET", eligibility_path("demo-posting-incident"),
               (200, decisions["demo-posting-incident"]))
    outcome = run(ReportAppError(), make_tracker("app报错", "report_app_error", lang=lang,
                                                 borrower="demo-posting-incident"))
    assert "DEMO-INC-0001" in outcome.text
    assert ("今天 15:00" if lang == "zh" else "today at 15:00") in outcome.text
    assert "5,000" not in outcome.text  # only the incident: the posting is another matter
    assert outcome.slots["pending_offer"] is None


@pytest.mark.parametrize("lang", LANGS)
def test_an_app_error_without_an_incident_gets_troubleshooting(make_tracker, run, backend,
                                                               decisions, lang) -> None:
    backend.on("GET", eligibility_path("demo-eligible"), (200, decisions["demo-eligible"]))
    outcome = run(ReportAppError(), make_tracker("app error", "report_app_error", lang=lang,
                                                 borrower="demo-eligible"))
    assert outcome.text == text_of("app_troubleshooting", lang)
    assert outcome.payloads == ["/request_human"] and outcome.slots["pending_offer"] == "human"


def test_an_app_error_when_the_service_is_down(make_tracker, run, backend) -> None:
    backend.on("GET", eligibility_path("demo-eligible"), requests.ConnectionError("down"))
    outcome = run(ReportAppError(), make_tracker("app error", "report_app_error", lang="en",
                                                 borrower="demo-eligible"))
    assert outcome.text == text_of("backend_unavailable", "en")
    assert outcome.slots["pending_offer"] == "human"


# --- appeals: starting one -----------------------------------------------------------------------


def test_the_idempotency_key_comes_from_conversation_decision_and_reason() -> None:
    key = idempotency_key("conv-1", "dec_abc", "OVERDUE_COOLING_OFF")
    assert key == idempotency_key("conv-1", "dec_abc", "OVERDUE_COOLING_OFF")
    assert IDEMPOTENCY_KEY_PATTERN.match(key)  # the backend accepts it
    others = {idempotency_key("conv-2", "dec_abc", "OVERDUE_COOLING_OFF"),
              idempotency_key("conv-1", "dec_xyz", "OVERDUE_COOLING_OFF"),
              idempotency_key("conv-1", "dec_abc", "CREDIT_SCORE_DROPPED")}
    assert key not in others and len(others) == 3


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("borrower_id", DEMO_IDS)
def test_begin_appeal_for_every_demo_borrower(make_tracker, run, backend, decisions,
                                              borrower_id, lang) -> None:
    decision = decisions[borrower_id]
    backend.on("GET", eligibility_path(borrower_id), (200, decision))
    backend.on("GET", appeals_path(borrower_id), (200, {"borrower_id": borrower_id,
                                                        "appeals": []}))
    outcome = run(BeginAppeal(), make_tracker("我要申诉", "request_appeal", borrower=borrower_id,
                                              lang=lang))
    appealable = [r for r in decision["reasons"] if r["appealable"]]
    if appealable:
        code = appealable[0]["code"]
        assert outcome.slots["appeal_ready"] is True
        assert outcome.slots["appeal_reason_code"] == code
        assert outcome.slots["appeal_decision_id"] == decision["decision_id"]
        assert outcome.slots["appeal_statement"] is None  # a fresh form
        assert ("今天 12:00" if lang == "zh" else "today at 12:00") in outcome.text  # checked
        assert ("申诉" if lang == "zh" else "appeal") in outcome.text
    elif decision["eligible"]:
        assert outcome.slots["appeal_ready"] is False
        assert outcome.text == text_of("nothing_to_appeal", lang)
    else:
        assert outcome.slots["appeal_ready"] is False
        assert outcome.slots["pending_offer"] == "human"
        assert outcome.messages[0]["text"].startswith(
            text_of("not_appealable", lang, reason="").split("（")[0].split("(")[0])
        assert outcome.messages[-1]["text"] == text_of("offer_human", lang)
        assert "/request_appeal" not in outcome.payloads


@pytest.mark.parametrize("lang", LANGS)
def test_not_appealable_says_why_and_what_helps(make_tracker, run, backend, decisions,
                                                lang) -> None:
    backend.on("GET", eligibility_path("demo-funding"), (200, decisions["demo-funding"]))
    outcome = run(BeginAppeal(), make_tracker("申诉", "request_appeal", borrower="demo-funding",
                                              lang=lang))
    said, helpful, offer = (m["text"] for m in outcome.messages)
    assert ("明天 10:00" if lang == "zh" else "tomorrow at 10:00") in said  # the reason named
    assert ("可以这样做" if lang == "zh" else "What you can do") in helpful
    assert offer == text_of("offer_human", lang)
    assert backend.paths() == [eligibility_path("demo-funding")]  # no appeal list needed


@pytest.mark.parametrize("lang", LANGS)
def test_an_open_appeal_is_reported_instead_of_a_second_one(make_tracker, run, backend, decisions,
                                                            lang) -> None:
    backend.on("GET", eligibility_path("demo-overdue"), (200, decisions["demo-overdue"]))
    backend.on("GET", appeals_path("demo-overdue"),
               (200, {"appeals": [appeal_json(status="in_review")]}))
    outcome = run(BeginAppeal(), make_tracker("申诉", "request_appeal", borrower="demo-overdue",
                                              lang=lang))
    assert outcome.slots["appeal_ready"] is False
    assert "AP20260310-ABC234" in outcome.text
    assert ("复核中" if lang == "zh" else "being reviewed") in outcome.text


@pytest.mark.parametrize("lang", LANGS)
def test_an_appeal_rejected_on_this_decision_brings_a_person_not_a_second_form(
        make_tracker, run, backend, decisions, lang) -> None:
    decision = decisions["demo-overdue"]
    backend.on("GET", eligibility_path("demo-overdue"), (200, decision))
    backend.on("GET", appeals_path("demo-overdue"), (200, {"appeals": [appeal_json(
        decision_id=decision["decision_id"], status="rejected", channel="app",
        resolution_note="逾期记录属实")]}))
    outcome = run(BeginAppeal(), make_tracker("申诉", "request_appeal", borrower="demo-overdue",
                                              lang=lang))
    assert outcome.text == {
        "zh": "您的申诉 AP20260310-ABC234 经复核未通过，原因：逾期记录属实。如果还有疑问，"
              "我可以为您转人工客服。",
        "en": "Your appeal AP20260310-ABC234 was reviewed and not upheld: 逾期记录属实. If you "
              "still have questions, I can connect you with a person."}[lang]
    assert outcome.payloads == ["/request_human"]
    assert outcome.slots["appeal_ready"] is False and outcome.slots["pending_offer"] == "human"
    assert "appeal_key" not in outcome.slots
    assert backend.paths() == [eligibility_path("demo-overdue"), appeals_path("demo-overdue")]


def test_an_appeal_rejected_on_an_older_decision_lets_this_one_be_appealed(
        make_tracker, run, backend, decisions) -> None:
    decision = decisions["demo-overdue"]
    backend.on("GET", eligibility_path("demo-overdue"), (200, decision))
    backend.on("GET", appeals_path("demo-overdue"), (200, {"appeals": [appeal_json(
        decision_id="dec_older0000000000000000", status="rejected")]}))
    outcome = run(BeginAppeal(), make_tracker("申诉", "request_appeal", borrower="demo-overdue"))
    assert outcome.slots["appeal_ready"] is True
    assert outcome.slots["appeal_decision_id"] == decision["decision_id"]
    # one decided already on this reason: attempt 1 in the key (conversation|decision|reason|1)
    seed = f"conv-1|{decision['decision_id']}|OVERDUE_COOLING_OFF|1"
    assert outcome.slots["appeal_key"] == f"chat-{hashlib.sha256(seed.encode()).hexdigest()[:40]}"


UNDER_REVIEW = {  # AP20260310-ABC234, respond_by NOW + 72 h = 13 Mar 12:00 in Shanghai
    "zh": "您已经就这个结果提交了申诉（编号 AP20260310-ABC234），专人正在复核，我们会在3月13日 "
          "12:00前给您答复，不需要重复提交。",
    "en": "You have already appealed this (ref. AP20260310-ABC234): a person is reviewing it and "
          "you will hear back by 13 Mar at 12:00, so there is no need to file it again."}


@pytest.mark.parametrize("lang", LANGS)
def test_asking_again_after_filing_names_the_appeal_instead_of_offering_one(
        make_tracker, run, backend, decisions, lang) -> None:
    backend.on("GET", eligibility_path("demo-overdue"), (200, decisions["demo-overdue"]))
    backend.on("GET", appeals_path("demo-overdue"), (200, {"appeals": [appeal_json()]}))
    outcome = ask_why(run, make_tracker, "demo-overdue", lang=lang,
                      slots={"appeal_ids": ["AP20260310-ABC234"]})
    assert outcome.text.splitlines()[-1] == UNDER_REVIEW[lang]
    assert ("提交申诉" if lang == "zh" else "I can file an appeal") not in outcome.text
    assert outcome.messages[0]["buttons"] == []
    assert outcome.slots["pending_offer"] is None


@pytest.mark.parametrize("status", ["upheld", "rejected"])
def test_an_appeal_already_decided_leaves_the_offer(make_tracker, run, backend, decisions,
                                                     status) -> None:
    backend.on("GET", eligibility_path("demo-overdue"), (200, decisions["demo-overdue"]))
    backend.on("GET", appeals_path("demo-overdue"),
               (200, {"appeals": [appeal_json(status=status)]}))
    outcome = ask_why(run, make_tracker, "demo-overdue",
                      slots={"appeal_ids": ["AP20260310-ABC234"]})
    assert outcome.text.splitlines()[-1] == ("如果您认为这个结果有误，我可以帮您提交申诉，"
                                             "由专人复核。")
    assert outcome.slots["pending_offer"] == "appeal"


def test_an_answer_offering_an_appeal_reads_the_appeal_list_once(make_tracker, run, backend,
                                                                 decisions) -> None:
    # a new conversation (no appeal filed here): appeals filed elsewhere count too
    backend.on("GET", eligibility_path("demo-overdue"), (200, decisions["demo-overdue"]))
    backend.on("GET", appeals_path("demo-overdue"), (200, {"appeals": []}))
    outcome = ask_why(run, make_tracker, "demo-overdue")
    assert backend.paths() == [eligibility_path("demo-overdue"), appeals_path("demo-overdue")]
    assert outcome.slots["pending_offer"] == "appeal"
    assert [b["title"] for b in outcome.buttons] == ["提交申诉", "转人工客服"]


@pytest.mark.parametrize("borrower_id", ["demo-funding", "demo-compliance", "demo-posting",
                                         "demo-reduced"])
def test_an_answer_without_an_appeal_offer_reads_no_appeal_list(make_tracker, run, backend,
                                                                decisions, borrower_id) -> None:
    # funding: nothing appealable; compliance: a person, not an appeal; posting: eligible;
    # reduced: its LIMIT_REDUCED is appealable but the borrower can borrow (nothing offered)
    backend.on("GET", eligibility_path(borrower_id), (200, decisions[borrower_id]))
    outcome = ask_why(run, make_tracker, borrower_id)
    assert backend.paths() == [eligibility_path(borrower_id)]
    assert outcome.slots["pending_offer"] != "appeal"


NOTE = {"zh": "逾期记录属实", "en": "the late payment is on record"}  # the reviewer's words
# an appeal the borrower filed from the app yesterday, against the very decision explained now
# (AP20260310-ABC234: filed 9 Mar 12:00 Shanghai, respond by NOW + 72 h = 13 Mar 12:00)
FILED_ELSEWHERE = {
    ("submitted", "zh"): UNDER_REVIEW["zh"],
    ("submitted", "en"): UNDER_REVIEW["en"],
    ("in_review", "zh"): UNDER_REVIEW["zh"],
    ("in_review", "en"): UNDER_REVIEW["en"],
    ("upheld", "zh"): "您已经就这个结果提交过申诉（编号 AP20260310-ABC234，已通过），"
                      "不需要重复提交。如果还有问题，可以问我“申诉进度”。",
    ("upheld", "en"): "You have already appealed this (ref. AP20260310-ABC234, upheld), so there "
                      "is no need to file it again. Ask me about your appeal status any time.",
    ("rejected", "zh"): "您已经就这个结果提交过申诉（编号 AP20260310-ABC234），经复核未通过，原因："
                        "逾期记录属实。同一个结果不能重复申诉；如果还有疑问，我可以为您转人工客服。",
    ("rejected", "en"): "You have already appealed this (ref. AP20260310-ABC234) and it was not "
                        "upheld: the late payment is on record. The same decision cannot be "
                        "appealed again; if you still have questions, I can connect you with "
                        "a person.",
}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("status", ["submitted", "in_review", "upheld", "rejected"])
def test_an_appeal_filed_elsewhere_for_this_decision_is_named_instead_of_offering_one(
        make_tracker, run, backend, decisions, status, lang) -> None:
    decision = decisions["demo-overdue"]
    backend.on("GET", eligibility_path("demo-overdue"), (200, decision))
    filed = appeal_json(decision_id=decision["decision_id"], channel="app", status=status,
                        resolution_note=NOTE[lang] if status == "rejected" else None)
    backend.on("GET", appeals_path("demo-overdue"), (200, {"appeals": [filed]}))
    # a new conversation: nothing filed in this one (no appeal_ids)
    outcome = ask_why(run, make_tracker, "demo-overdue", lang=lang, sender_id="conv-new-day")
    lines = outcome.text.splitlines()
    assert lines[0].startswith("您在1月29日到期" if lang == "zh" else "An instalment due on 29 Jan")
    assert lines[-1] == FILED_ELSEWHERE[status, lang]
    assert ("提交申诉" if lang == "zh" else "file an appeal") not in outcome.text
    assert "/request_appeal" not in outcome.payloads
    rejected = status == "rejected"
    assert outcome.payloads == (["/request_human"] if rejected else [])
    assert outcome.slots["pending_offer"] == ("human" if rejected else None)
    assert backend.paths() == [eligibility_path("demo-overdue"), appeals_path("demo-overdue")]


@pytest.mark.parametrize("status", ["upheld", "rejected"])
def test_an_appeal_decided_on_an_older_decision_leaves_the_offer(make_tracker, run, backend,
                                                                 decisions, status) -> None:
    decision = decisions["demo-overdue"]
    backend.on("GET", eligibility_path("demo-overdue"), (200, decision))
    older = appeal_json(decision_id="dec_older0000000000000000", status=status,
                        submitted_at=NOW - timedelta(days=60))
    other_reason = appeal_json(id="AP20260310-XYZ999", decision_id=decision["decision_id"],
                               reason_code="CREDIT_SCORE_DROPPED")  # not this reason
    backend.on("GET", appeals_path("demo-overdue"), (200, {"appeals": [other_reason, older]}))
    outcome = ask_why(run, make_tracker, "demo-overdue")
    assert outcome.text.splitlines()[-1] == ("如果您认为这个结果有误，我可以帮您提交申诉，"
                                             "由专人复核。")
    assert [b["title"] for b in outcome.buttons] == ["提交申诉", "转人工客服"]
    assert "AP20260310" not in outcome.text
    assert outcome.slots["pending_offer"] == "appeal"


def test_an_appeal_still_open_on_an_older_decision_is_named(make_tracker, run, backend,
                                                            decisions) -> None:
    # the backend keeps one open appeal per reason: a second would be refused, so say so
    backend.on("GET", eligibility_path("demo-overdue"), (200, decisions["demo-overdue"]))
    older = appeal_json(decision_id="dec_older0000000000000000", status="in_review")
    backend.on("GET", appeals_path("demo-overdue"), (200, {"appeals": [older]}))
    outcome = ask_why(run, make_tracker, "demo-overdue", lang="en")
    assert outcome.text.splitlines()[-1] == UNDER_REVIEW["en"]
    assert outcome.buttons == []


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_the_explanation_is_given_when_the_appeal_list_fails(make_tracker, run, backend, caplog,
                                                             decisions, failure) -> None:
    answers, requests_made = FAILURES[failure]
    backend.on("GET", eligibility_path("demo-overdue"), (200, decisions["demo-overdue"]))
    backend.on("GET", appeals_path("demo-overdue"), *answers)
    caplog.set_level(logging.WARNING)
    outcome = ask_why(run, make_tracker, "demo-overdue", sender_id="conv-appeals-down")
    golden = reviewed_answer("demo-overdue", "zh")  # the answer as reviewed, with the offer
    assert outcome.text == golden["text"]
    assert outcome.messages[0]["buttons"] == golden["buttons"]
    assert outcome.slots["pending_offer"] == "appeal" and "backend_failed" not in outcome.slots
    assert backend.paths().count(appeals_path("demo-overdue")) == requests_made
    assert all(call.timeout == TIMEOUTS for call in backend.calls)
    assert any("conv-appeals-down" in r.getMessage() for r in caplog.records
               if r.levelno >= logging.WARNING)


def test_an_unreadable_appeal_list_leaves_the_offer(make_tracker, run, backend,
                                                    decisions) -> None:
    backend.on("GET", eligibility_path("demo-overdue"), (200, decisions["demo-overdue"]))
    backend.on("GET", appeals_path("demo-overdue"), (500, "oops"))
    outcome = ask_why(run, make_tracker, "demo-overdue",
                      slots={"appeal_ids": ["AP20260310-ABC234"]})
    assert outcome.slots["pending_offer"] == "appeal"


def test_an_unreadable_appeal_list_does_not_stop_the_appeal(make_tracker, run, backend,
                                                            decisions) -> None:
    backend.on("GET", eligibility_path("demo-overdue"), (200, decisions["demo-overdue"]))
    backend.on("GET", appeals_path("demo-overdue"), (500, "oops"))
    outcome = run(BeginAppeal(), make_tracker("申诉", "request_appeal", borrower="demo-overdue"))
    assert outcome.slots["appeal_ready"] is True  # filing will find an open appeal if any


def test_disagreeing_before_any_explanation_explains_first(make_tracker, run, backend, decisions,
                                                           now) -> None:
    decision = decisions["demo-overdue"]
    backend.on("GET", eligibility_path("demo-overdue"), (200, decision))
    backend.on("GET", appeals_path("demo-overdue"), (200, {"appeals": []}))
    outcome = run(BeginAppeal(), make_tracker("这不对", "disagree_with_decision",
                                              borrower="demo-overdue"))
    assert outcome.text == explain(decision, lang="zh", now=now, focus="disagree").text
    assert outcome.slots["appeal_ready"] is False
    assert outcome.slots["pending_offer"] == "appeal"
    # the explanation offers an appeal: the list was read to name one already filed
    assert backend.paths() == [eligibility_path("demo-overdue"), appeals_path("demo-overdue")]
    # still disagreeing after the explanation: the appeal form starts
    again = run(BeginAppeal(), make_tracker("就是不对", "disagree_with_decision",
                                            borrower="demo-overdue",
                                            slots={"decision": outcome.slots["decision"]}))
    assert again.slots["appeal_ready"] is True
    assert backend.paths()[2:] == [appeals_path("demo-overdue")]  # decision still fresh


def test_disagreeing_before_any_explanation_names_an_appeal_filed_elsewhere(
        make_tracker, run, backend, decisions) -> None:
    decision = decisions["demo-overdue"]
    backend.on("GET", eligibility_path("demo-overdue"), (200, decision))
    backend.on("GET", appeals_path("demo-overdue"), (200, {"appeals": [
        appeal_json(decision_id=decision["decision_id"], channel="app")]}))
    said = "我不服，我从来没逾期过，那次是银行卡扣款失败"
    outcome = run(BeginAppeal(), make_tracker(said, "disagree_with_decision",
                                              borrower="demo-overdue"))
    assert outcome.text.splitlines()[-1] == UNDER_REVIEW["zh"]
    assert "提交申诉" not in outcome.text and outcome.buttons == []
    assert "不用再写一遍" not in outcome.text  # no appeal to keep the statement for
    assert outcome.slots["pending_offer"] is None and outcome.slots["appeal_ready"] is False


@pytest.mark.parametrize(("message", "statement"), [
    ("我不服，我从来没逾期过", True),
    ("这个结果我不认，我每个月都按时还款", True),
    ("I disagree, I have never missed a payment", True),
    ("this is so unfair i paid everything on time", True),
    ("凭什么不让我借", False),          # only "I disagree": nothing a reviewer could use
    ("你们这个评估根本不准", False),
    ("这不对", False),
    ("why cant i borrow this is unfair", False),
    ("傻逼", False),
    ("/disagree_with_decision", False),
])
def test_a_statement_written_into_the_disagreement_is_recognised(message, statement) -> None:
    assert (statement_in(message) == message) is statement


def test_disagreement_with_a_statement_is_explained_then_filed_without_asking_again(
        make_tracker, run, backend, decisions) -> None:
    decision = decisions["demo-overdue"]
    backend.on("GET", eligibility_path("demo-overdue"), (200, decision))
    backend.on("GET", appeals_path("demo-overdue"), (200, {"appeals": []}))
    said = "我不服，我从来没逾期过，那次是银行卡扣款失败"
    first = run(BeginAppeal(), make_tracker(said, "disagree_with_decision",
                                            borrower="demo-overdue"))
    # explained first, with the appeal offered and what they wrote kept for it
    assert "提交申诉" in [b["title"] for b in first.buttons]
    assert "不用再写一遍" in first.text
    assert first.slots["statement_draft"] == said and first.slots["pending_offer"] == "appeal"
    # they press "提交申诉": the form starts with the statement already filled in
    second = run(BeginAppeal(), make_tracker("/request_appeal", "request_appeal",
                                             borrower="demo-overdue",
                                             slots={"decision": first.slots["decision"],
                                                    "statement_draft": said}))
    assert second.slots["appeal_ready"] is True
    assert second.slots["appeal_statement"] == said
    assert second.slots["statement_draft"] is None


def test_disagreeing_again_with_a_statement_fills_the_form(make_tracker, run, backend,
                                                           decisions) -> None:
    decision = {**decisions["demo-overdue"], "_fetched_at": 9e12}  # explained, still fresh
    backend.on("GET", appeals_path("demo-overdue"), (200, {"appeals": []}))
    said = "I disagree, the late payment was my bank's failed debit, not me"
    outcome = run(BeginAppeal(), make_tracker(said, "disagree_with_decision", lang="en",
                                              borrower="demo-overdue",
                                              slots={"decision": decision}))
    assert outcome.slots["appeal_ready"] is True
    assert outcome.slots["appeal_statement"] == said


def test_disagreeing_with_what_cannot_be_appealed_brings_a_person(make_tracker, run, backend, desk,
                                                                  decisions) -> None:
    decision = {**decisions["demo-funding"], "_fetched_at": 9e12}  # fresh: no fetch
    desk.on("POST", "/internal/handoffs", (200, {"case_id": 1}))
    outcome = run(BeginAppeal(), make_tracker("I disagree", "disagree_with_decision", lang="en",
                                              borrower="demo-funding",
                                              slots={"decision": decision}))
    [case] = desk.calls
    assert case.json["reason"] == "disagrees_not_appealable"
    assert case.json["decision"]["decision_id"] == decision["decision_id"]
    assert outcome.paused and outcome.slots["appeal_ready"] is False
    assert backend.calls == []


def test_begin_appeal_when_the_service_is_down(make_tracker, run, backend) -> None:
    backend.on("GET", eligibility_path("demo-overdue"), (503, "down"))
    outcome = run(BeginAppeal(), make_tracker("申诉", "request_appeal", borrower="demo-overdue"))
    assert outcome.text == text_of("backend_unavailable", "zh")
    assert outcome.slots["appeal_ready"] is False and outcome.slots["pending_offer"] == "human"


# --- appeals: the statement and the confirmation -------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(("statement", "problem"), [
    ("", "appeal_statement_too_short"),
    ("   ", "appeal_statement_too_short"),
    ("ok", "appeal_statement_too_short"),
    ("有误", "appeal_statement_too_short"),
    ("/affirm", "appeal_statement_too_short"),  # a button payload is no statement
    ("傻逼！！", "appeal_statement_abusive"),
    ("fuck you", "appeal_statement_abusive"),
    ("stupid idiots!!!", "appeal_statement_abusive"),
])
def test_a_statement_that_says_nothing_is_asked_again(make_tracker, run, statement, problem,
                                                      lang) -> None:
    dispatcher_messages: list[dict[str, Any]] = []
    result = _validate(make_tracker, statement, lang, dispatcher_messages)
    assert result == {"appeal_statement": None}
    assert [m["text"] for m in dispatcher_messages] == [text_of(problem, lang)]


@pytest.mark.parametrize("lang", LANGS)
def test_the_form_starting_with_no_statement_yet_says_nothing(make_tracker, lang) -> None:
    """When the form starts it validates the slots it cleared: that is not a bad statement."""
    messages: list[dict[str, Any]] = []
    assert _validate(make_tracker, None, lang, messages) == {"appeal_statement": None}
    assert messages == []


@pytest.mark.parametrize("statement", [
    "扣款失败是银行的问题",
    "My bank's debit failed on the due date, you idiots",  # venting, but a statement
    "The late payment was the bank's failed debit.",
])
def test_a_real_statement_is_kept_as_written(make_tracker, statement) -> None:
    messages: list[dict[str, Any]] = []
    assert _validate(make_tracker, statement, "en", messages) == {"appeal_statement": statement}
    assert messages == []


def test_a_very_long_statement_is_cut_to_what_the_backend_accepts(make_tracker) -> None:
    result = _validate(make_tracker, "银行扣款失败。" * 500, "zh", [])
    assert len(result["appeal_statement"]) == 2000


def _validate(make_tracker: Callable[..., Any], statement: Any, lang: str,
              messages: list[dict[str, Any]]) -> dict[str, Any]:
    import asyncio

    from rasa_sdk.executor import CollectingDispatcher

    dispatcher = CollectingDispatcher()
    tracker = make_tracker(statement if isinstance(statement, str) else "", lang=lang)
    result = asyncio.run(ValidateAppealForm().validate_appeal_statement(
        statement, dispatcher, tracker, {}))
    messages.extend(dispatcher.messages)
    return result


@pytest.mark.parametrize("lang", LANGS)
def test_the_form_asks_for_the_statement_then_reads_it_back(make_tracker, run, decisions,
                                                            lang) -> None:
    asked = run(AskAppealStatement(), make_tracker(lang=lang))
    assert asked.text == text_of("ask_appeal_statement", lang)
    slots = {"decision": decisions["demo-overdue"], "appeal_reason_code": "OVERDUE_COOLING_OFF",
             "appeal_statement": "扣款失败" * 100}
    confirm = run(AskAppealConfirmed(), make_tracker(lang=lang, slots=slots))
    assert ("5月11日" if lang == "zh" else "11 May") in confirm.text  # which reason
    assert ("扣款失败" * 50)[:200] + "…" in confirm.text  # the statement, shortened
    assert confirm.payloads == ["/affirm", "/deny"]


# --- appeals: filing -----------------------------------------------------------------------------


def form_slots(decisions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    decision = decisions["demo-overdue"]
    return {"decision": decision, "appeal_decision_id": decision["decision_id"],
            "appeal_reason_code": "OVERDUE_COOLING_OFF", "appeal_ready": True,
            "appeal_statement": "The bank's debit failed on the due date.",
            "appeal_confirmed": True, **extra}


@pytest.mark.parametrize("lang", LANGS)
def test_filing_an_appeal(make_tracker, run, backend, decisions, lang) -> None:
    backend.on("POST", "/v1/appeals", (201, appeal_json()))
    slots = form_slots(decisions, appeal_ids=["AP20260201-OLDOLD"])
    outcome = run(FileAppeal(), make_tracker("/affirm", "affirm", borrower="demo-overdue",
                                             lang=lang, slots=slots, sender_id="conv-appeal"))
    [call] = backend.calls
    decision_id = decisions["demo-overdue"]["decision_id"]
    assert call.json == {"borrower_id": "demo-overdue", "decision_id": decision_id,
                         "reason_code": "OVERDUE_COOLING_OFF", "channel": "chat",
                         "statement": "The bank's debit failed on the due date."}
    assert call.headers["Idempotency-Key"] == idempotency_key("conv-appeal", decision_id,
                                                              "OVERDUE_COOLING_OFF")
    assert "AP20260310-ABC234" in outcome.text
    assert ("3月13日 12:00" if lang == "zh" else "13 Mar at 12:00") in outcome.text  # respond by
    assert outcome.slots["appeal_ids"] == ["AP20260201-OLDOLD", "AP20260310-ABC234"]
    assert outcome.slots["appeal_statement"] is None and outcome.slots["appeal_ready"] is False


@pytest.mark.parametrize("first", [requests.ConnectionError("refused"), (503, "busy")],
                         ids=["connection refused", "HTTP 503"])
def test_a_retried_filing_carries_the_same_key(make_tracker, run, backend, decisions,
                                               first) -> None:
    backend.on("POST", "/v1/appeals", first, (201, appeal_json()))
    outcome = run(FileAppeal(), make_tracker("/affirm", "affirm", borrower="demo-overdue",
                                             slots=form_slots(decisions)))
    first, second = backend.calls
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert first.json == second.json
    assert "AP20260310-ABC234" in outcome.text


@pytest.mark.parametrize("confirmed", [False, None])
def test_not_confirming_files_nothing(make_tracker, run, backend, decisions, confirmed) -> None:
    outcome = run(FileAppeal(), make_tracker("/deny", "deny", borrower="demo-overdue",
                                             slots=form_slots(decisions,
                                                              appeal_confirmed=confirmed)))
    assert outcome.responses == ["utter_appeal_cancelled"]
    assert outcome.slots["appeal_statement"] is None
    assert backend.calls == []


@pytest.mark.parametrize("missing", ["appeal_decision_id", "appeal_reason_code",
                                     "appeal_statement"])
def test_an_incomplete_form_files_nothing(make_tracker, run, backend, decisions, missing) -> None:
    outcome = run(FileAppeal(), make_tracker("/affirm", "affirm", borrower="demo-overdue",
                                             slots=form_slots(decisions, **{missing: None})))
    assert outcome.responses == ["utter_appeal_cancelled"] and backend.calls == []


@pytest.mark.parametrize("lang", LANGS)
def test_an_appeal_already_open(make_tracker, run, backend, decisions, lang) -> None:
    backend.on("POST", "/v1/appeals", (409, error_body("appeal_already_open",
                                                       appeal_id="AP20260301-OPEN22",
                                                       status="in_review")))
    outcome = run(FileAppeal(), make_tracker("/affirm", "affirm", borrower="demo-overdue",
                                             lang=lang, slots=form_slots(decisions)))
    assert outcome.text == text_of("appeal_already_open", lang, appeal_id="AP20260301-OPEN22")
    assert outcome.slots["appeal_statement"] is None


APPEAL_FAILURES = {
    "refused by the service": ([(422, error_body("reason_not_appealable"))], "appeal_refused"),
    "connection refused": ([requests.ConnectionError("down")], "appeal_not_filed"),
    "read timeout": ([requests.ReadTimeout("slow")], "appeal_not_filed"),
    "HTTP 500": ([(500, error_body("internal_error"))], "appeal_not_filed"),
    "not JSON": ([(201, "created!")], "appeal_not_filed"),
    "JSON without an appeal id": ([(201, {"status": "submitted"})], "appeal_not_filed"),
    "JSON that is not an object": ([(201, ["AP20260310-ABC234"])], "appeal_not_filed"),
}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("failure", sorted(APPEAL_FAILURES))
def test_a_failed_filing_keeps_the_statement_and_offers_a_person(
        make_tracker, run, backend, desk, decisions, caplog, failure, lang) -> None:
    answers, handoff_reason = APPEAL_FAILURES[failure]
    backend.on("POST", "/v1/appeals", *answers)
    caplog.set_level(logging.WARNING)
    slots = form_slots(decisions)
    outcome = run(FileAppeal(), make_tracker("/affirm", "affirm", borrower="demo-overdue",
                                             lang=lang, slots=slots, sender_id="conv-file-9"))
    assert outcome.text == text_of("appeal_failed", lang)
    assert outcome.payloads == ["/request_human"]
    assert outcome.slots["pending_offer"] == "human"
    assert outcome.slots["handoff_reason"] == handoff_reason
    assert "appeal_statement" not in outcome.slots  # nothing is lost
    assert any("conv-file-9" in r.getMessage() for r in caplog.records)
    # the person who takes over sees the statement (and a decision checked for the case)
    desk.on("POST", "/internal/handoffs", (200, {"case_id": 2}))
    backend.on("GET", eligibility_path("demo-overdue"), (200, decisions["demo-overdue"]))
    run(HandoffToHuman(), make_tracker("/request_human", "request_human", borrower="demo-overdue",
                                       lang=lang, slots={**slots, **outcome.slots}))
    case = desk.calls[0].json
    assert case["unfiled_appeal_statement"] == "The bank's debit failed on the due date."
    assert case["reason"] == handoff_reason


# --- appeals: status -----------------------------------------------------------------------------


STATUS_CASES = {
    "submitted": ({}, {"zh": ["AP20260310-ABC234", "昨天 12:00", "排队", "3月13日 12:00"],
                       "en": ["AP20260310-ABC234", "yesterday at 12:00", "waiting",
                              "13 Mar at 12:00"]}),
    "in_review": ({}, {"zh": ["AP20260310-ABC234", "复核中", "3月13日 12:00"],
                       "en": ["AP20260310-ABC234", "being reviewed", "13 Mar at 12:00"]}),
    "upheld": ({"restored_limit_cents": 2_000_000},
               {"zh": ["已通过", "额度已恢复为20,000元"],
                "en": ["was upheld", "restored to ¥20,000"]}),
    "rejected": ({"resolution_note": "银行流水显示扣款成功"},
                 {"zh": ["未通过", "银行流水显示扣款成功"],
                  "en": ["not upheld", "银行流水显示扣款成功"]}),
}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("status", sorted(STATUS_CASES))
def test_appeal_status_for_each_status(make_tracker, run, backend, status, lang) -> None:
    fields, says = STATUS_CASES[status]
    backend.on("GET", appeals_path("demo-overdue"),
               (200, {"appeals": [appeal_json(status=status, **fields)]}))
    outcome = run(ReportAppealStatus(), make_tracker("申诉进度", "check_appeal_status", lang=lang,
                                                     borrower="demo-overdue"))
    for phrase in says[lang]:
        assert phrase in outcome.text, f"{phrase!r} missing from {outcome.text!r}"
    rejected = status == "rejected"
    assert outcome.payloads == (["/request_human"] if rejected else [])
    assert outcome.slots["pending_offer"] == ("human" if rejected else None)
    # an upheld appeal changes the decision: the next question fetches it again
    assert ("decision" in outcome.slots) == (status == "upheld")


@pytest.mark.parametrize("lang", LANGS)
def test_upheld_without_a_new_limit_and_rejected_without_a_note(make_tracker, run, backend,
                                                                 lang) -> None:
    backend.on("GET", appeals_path("demo-overdue"), (200, {"appeals": [
        appeal_json(status="upheld"), appeal_json(id="AP20260301-REJ222", status="rejected"),
        appeal_json(id="AP20260201-SUB333", status="submitted")]}))
    outcome = run(ReportAppealStatus(), make_tracker("?", "check_appeal_status", lang=lang,
                                                     borrower="demo-overdue"))
    first, earlier = outcome.text.splitlines()
    assert "AP20260310-ABC234" in first and ("额度已恢复" not in first and "restored" not in first)
    assert earlier == ("其他申诉：AP20260301-REJ222 (未通过), AP20260201-SUB333 (已提交)"
                       if lang == "zh" else
                       "Earlier appeals: AP20260301-REJ222 (not upheld), "
                       "AP20260201-SUB333 (submitted)")


@pytest.mark.parametrize("lang", LANGS)
def test_no_appeals_yet(make_tracker, run, backend, lang) -> None:
    backend.on("GET", appeals_path("demo-overdue"), (200, {"appeals": []}))
    outcome = run(ReportAppealStatus(), make_tracker("?", "check_appeal_status", lang=lang,
                                                     borrower="demo-overdue"))
    assert outcome.text == text_of("no_appeals", lang)


@pytest.mark.parametrize("answer", [requests.ConnectionError("down"), (500, "oops"),
                                    (200, "not json"), (200, {"appeals": "none"}),
                                    (200, {"appeals": ["AP20260310-ABC234"]}),
                                    (401, error_body("unauthorized"))])
def test_appeal_status_when_the_service_fails(make_tracker, run, backend, caplog,
                                              answer) -> None:
    backend.on("GET", appeals_path("demo-overdue"), answer)
    caplog.set_level(logging.WARNING)
    outcome = run(ReportAppealStatus(), make_tracker("?", "check_appeal_status", lang="en",
                                                     borrower="demo-overdue",
                                                     sender_id="conv-status-3"))
    assert outcome.text == text_of("backend_unavailable", "en")
    assert outcome.slots == {"pending_offer": "human", "backend_failed": True}
    assert any("conv-status-3" in r.getMessage() for r in caplog.records)


# --- not understood ------------------------------------------------------------------------------


RANKING = [{"name": "nlu_fallback", "confidence": 0.45},
           {"name": "ask_repayment_status", "confidence": 0.30},
           {"name": "greet", "confidence": 0.10},
           {"name": "check_appeal_status", "confidence": 0.08},
           {"name": "request_appeal", "confidence": 0.05},
           {"name": "report_app_error", "confidence": 0.02}]


@pytest.mark.parametrize("lang", LANGS)
def test_clarify_offers_the_likely_topics_as_buttons(make_tracker, run, lang) -> None:
    outcome = run(Clarify(), make_tracker("嗯那个", "nlu_fallback", lang=lang, ranking=RANKING))
    assert outcome.text == text_of("clarify", lang)
    assert outcome.payloads == ["/ask_repayment_status", "/check_appeal_status",
                                "/request_appeal"]
    titles = {"zh": ["还款有没有到账", "申诉进度", "我要申诉"],
              "en": ["Has my repayment arrived?", "Appeal status", "I want to appeal"]}
    assert [b["title"] for b in outcome.buttons] == titles[lang]
    assert outcome.slots == {"pending_offer": None}


def test_clarify_fills_up_with_common_topics(make_tracker, run) -> None:
    ranking = [{"name": "nlu_fallback", "confidence": 0.4},
               {"name": "ask_limit_restore_time", "confidence": 0.3}]
    outcome = run(Clarify(), make_tracker("额", "nlu_fallback", ranking=ranking))
    assert outcome.payloads == ["/ask_limit_restore_time", "/cannot_borrow_after_repayment",
                                "/request_human"]


@pytest.mark.parametrize("lang", LANGS)
def test_a_second_miss_in_a_row_offers_a_person(make_tracker, run, history, lang) -> None:
    earlier = [history.user("嗯？", "nlu_fallback"), history.bot("抱歉，我没完全理解")]
    outcome = run(Clarify(), make_tracker("啊啊", "nlu_fallback", lang=lang, events=earlier,
                                          ranking=RANKING))
    assert outcome.text == text_of("offer_human_after_misses", lang)
    assert outcome.payloads == ["/request_human", "/deny"]
    assert outcome.slots == {"pending_offer": "human"}


def test_misses_that_are_not_in_a_row_only_clarify(make_tracker, run, history) -> None:
    earlier = [history.user("嗯？", "nlu_fallback"), history.bot("?"),
               history.user("额度什么时候恢复", "ask_limit_restore_time"), history.bot("...")]
    outcome = run(Clarify(), make_tracker("啊啊", "nlu_fallback", events=earlier,
                                          ranking=RANKING))
    assert outcome.text == text_of("clarify", "zh")


@pytest.mark.parametrize("lang", LANGS)
def test_default_fallback_and_declining(make_tracker, run, lang) -> None:
    fallback = run(DefaultFallback(), make_tracker("???", lang=lang))
    assert fallback.text == text_of("clarify", lang)
    assert fallback.payloads == ["/cannot_borrow_after_repayment", "/ask_limit_restore_time",
                                 "/request_human"]
    assert fallback.events == [{"event": "rewind", "timestamp": None}]
    declined = run(DeclineOffer(), make_tracker("不用了", "deny", lang=lang,
                                                slots={"pending_offer": "human"}))
    assert declined.text == text_of("anything_else", lang)
    assert declined.slots == {"pending_offer": None}


# --- handing over to a person --------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_the_handoff_case_carries_everything_the_bot_knows(make_tracker, run, desk, decisions,
                                                           history, lang) -> None:
    desk.on("POST", "/internal/handoffs", (200, {"case_id": 9}))
    decision = {**decisions["demo-overdue"], "_fetched_at": NOW.timestamp() - 60}  # fresh
    earlier = [history.user("why can't I borrow", "cannot_borrow_after_repayment"),
               history.bot("An instalment due on 29 Jan was paid 12 days late."),
               history.user("yes", "affirm"),
               history.user("when is it back", "ask_limit_restore_time"),
               history.user("why can't I borrow??", "cannot_borrow_after_repayment"),
               {"event": "action", "name": "action_listen"}]
    outcome = run(HandoffToHuman(), make_tracker(
        "let me talk to a person", "request_human", borrower="demo-overdue", lang=lang,
        events=earlier, sender_id="conv-handoff",
        slots={"decision": decision, "appeal_ids": ["AP20260310-ABC234"]}))
    [call] = desk.calls
    assert (call.method, call.path) == ("POST", "/internal/handoffs")
    assert call.headers["Authorization"] == "Bearer test-desk-token"
    assert call.timeout == TIMEOUTS
    case = call.json
    assert case["conversation_id"] == "conv-handoff"
    assert case["borrower_id"] == "demo-overdue" and case["language"] == lang
    assert case["reason"] == "borrower_asked"
    assert case["topics"] == ["cannot_borrow_after_repayment", "ask_limit_restore_time",
                              "request_human"]
    expected_decision = {k: v for k, v in decision.items() if k != "_fetched_at"}
    assert case["decision"] == expected_decision
    assert case["decision"]["reasons"][0]["details"]["days_overdue"] == 12
    assert case["appeal_ids"] == ["AP20260310-ABC234"]
    assert case["unfiled_appeal_statement"] is None and case["backend_failed"] is False
    assert [(line["sender"], line["text"]) for line in case["transcript"]] == [
        ("borrower", "why can't I borrow"),
        ("bot", "An instalment due on 29 Jan was paid 12 days late."),
        ("borrower", "yes"), ("borrower", "when is it back"),
        ("borrower", "why can't I borrow??"), ("borrower", "let me talk to a person")]
    # the bot steps back
    assert outcome.text == text_of("handoff_started", lang)
    assert outcome.slots["handoff_active"] is True
    # paused, then listening: messages logged while paused follow a listen, like any turn
    assert outcome.paused and outcome.events[-2] == {"event": "pause", "timestamp": None}
    assert outcome.events[-1]["name"] == "action_listen"


@pytest.mark.parametrize("lang", LANGS)
def test_asking_for_a_person_first_hands_over_a_decision_checked_now(
        make_tracker, run, backend, desk, decisions, lang) -> None:
    desk.on("POST", "/internal/handoffs", (200, {"case_id": 10}))
    backend.on("GET", eligibility_path("demo-overdue"), (200, decisions["demo-overdue"]))
    outcome = run(HandoffToHuman(), make_tracker("转人工", "request_human",
                                                 borrower="demo-overdue", lang=lang))
    case = desk.calls[0].json
    assert case["decision"]["decision_id"] == decisions["demo-overdue"]["decision_id"]
    assert case["decision"]["reasons"][0]["code"] == "OVERDUE_COOLING_OFF"
    assert "_fetched_at" not in case["decision"] and case["backend_failed"] is False
    assert outcome.slots["decision"]["decision_id"] == case["decision"]["decision_id"]
    assert outcome.text == text_of("handoff_started", lang)  # the borrower hears only this


def test_a_decision_that_cannot_be_checked_at_handoff_is_noted_in_the_case(
        make_tracker, run, backend, desk) -> None:
    desk.on("POST", "/internal/handoffs", (200, {"case_id": 11}))
    backend.on("GET", eligibility_path("demo-overdue"), (503, "busy"))
    outcome = run(HandoffToHuman(), make_tracker("转人工", "request_human",
                                                 borrower="demo-overdue"))
    case = desk.calls[0].json
    assert case["decision"] is None and case["backend_failed"] is True
    assert outcome.text == text_of("handoff_started", "zh") and outcome.paused


@pytest.mark.parametrize(("slots", "reason"), [
    ({"handoff_reason": "appeal_not_filed", "backend_failed": True}, "appeal_not_filed"),
    ({"backend_failed": True}, "backend_unavailable"),
    ({"pending_offer": "human"}, "offered_by_bot"),
    ({}, "borrower_asked"),
])
def test_the_case_says_why_the_person_was_called(make_tracker, run, desk, slots, reason) -> None:
    desk.on("POST", "/internal/handoffs", (200, {"case_id": 3}))
    outcome = run(HandoffToHuman(), make_tracker("人工", "request_human", slots=slots))
    assert desk.calls[0].json["reason"] == reason
    assert desk.calls[0].json["borrower_id"] is None and desk.calls[0].json["decision"] is None
    assert outcome.slots["handoff_reason"] is None


def test_a_long_conversation_sends_the_latest_200_lines(make_tracker, run, desk, history) -> None:
    desk.on("POST", "/internal/handoffs", (200, {"case_id": 4}))
    earlier = [history.user(f"message {i}", "chitchat") for i in range(250)]
    run(HandoffToHuman(), make_tracker("person", "request_human", events=earlier))
    transcript = desk.calls[0].json["transcript"]
    assert len(transcript) == 200 and transcript[-1]["text"] == "person"
    assert transcript[0]["text"] == "message 51"


DESK_FAILURES = [requests.ConnectionError("refused"), requests.ReadTimeout("slow"),
                 (500, "oops"), (503, {"error": "busy"}), (200, "<html>")]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("answer", DESK_FAILURES, ids=lambda a: repr(a)[:30])
def test_when_the_desk_is_unreachable_the_bot_stays(make_tracker, run, desk, caplog, answer,
                                                    lang) -> None:
    desk.on("POST", "/internal/handoffs", answer)
    caplog.set_level(logging.WARNING)
    outcome = run(HandoffToHuman(), make_tracker("人工", "request_human", lang=lang,
                                                 sender_id="conv-desk-down"))
    assert outcome.text == text_of("handoff_failed", lang)
    assert not outcome.paused and "handoff_active" not in outcome.slots
    assert any("conv-desk-down" in r.getMessage() for r in caplog.records
               if r.levelno >= logging.ERROR)


@pytest.mark.parametrize(("answer", "attempts"), [
    (requests.ConnectionError("refused"), 2),  # it never reached the desk: tried again
    (requests.ConnectTimeout("slow to connect"), 2),
    ((503, {"error": "busy"}), 1),  # it reached the desk: opening a case is not repeated
    ((502, "Bad Gateway"), 1),
    (requests.ReadTimeout("slow"), 1),
], ids=lambda a: repr(a)[:30])
def test_opening_a_case_is_repeated_only_when_it_never_reached_the_desk(
        make_tracker, run, desk, answer, attempts) -> None:
    desk.on("POST", "/internal/handoffs", answer)
    outcome = run(HandoffToHuman(), make_tracker("人工", "request_human"))
    assert len(desk.calls) == attempts and not outcome.paused


def test_a_desk_answer_that_is_not_an_object_still_hands_off(make_tracker, run, desk) -> None:
    desk.on("POST", "/internal/handoffs", (200, [5]))  # accepted, oddly worded
    outcome = run(HandoffToHuman(), make_tracker("人工", "request_human"))
    assert outcome.paused and outcome.slots["handoff_active"] is True


# --- coming back from a person; new sessions and restarts ----------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_resume_without_a_note(make_tracker, run, backend, lang) -> None:
    outcome = run(ResumeAfterHandoff(), make_tracker(lang=lang, slots={"handoff_active": True}))
    assert outcome.text == text_of("back_from_agent", lang)
    assert outcome.slots == {"handoff_active": False, "agent_note": None, "backend_failed": False}
    assert backend.calls == []


@pytest.mark.parametrize("lang", LANGS)
def test_resume_with_a_note_checks_the_account_again(make_tracker, run, backend, decisions, now,
                                                     lang) -> None:
    old = {**decisions["demo-overdue"], "_fetched_at": 9e12}  # fresh, yet fetched again
    backend.on("GET", eligibility_path("demo-overdue"), (200, decisions["demo-eligible"]
                                                         | {"borrower_id": "demo-overdue"}))
    outcome = run(ResumeAfterHandoff(), make_tracker(
        lang=lang, borrower="demo-overdue",
        slots={"handoff_active": True, "agent_note": "已豁免逾期记录", "decision": old}))
    note, explanation = (m["text"] for m in outcome.messages)
    assert note == text_of("back_from_agent_with_note", lang, note="已豁免逾期记录")
    assert explanation.startswith("好消息" if lang == "zh" else "Good news")
    assert outcome.slots["decision"]["eligible"] is True
    assert len(backend.calls) == 1


def test_resume_with_a_note_names_the_appeal_filed_meanwhile(make_tracker, run, backend,
                                                             decisions) -> None:
    # the agent filed an appeal for the borrower (the backoffice, channel "agent") and hands
    # back: the bot's new answer names it rather than offering a second one
    decision = decisions["demo-overdue"]
    backend.on("GET", eligibility_path("demo-overdue"), (200, decision))
    backend.on("GET", appeals_path("demo-overdue"), (200, {"appeals": [appeal_json(
        decision_id=decision["decision_id"], channel="agent", status="in_review")]}))
    outcome = run(ResumeAfterHandoff(), make_tracker(
        lang="en", borrower="demo-overdue",
        slots={"handoff_active": True, "agent_note": "Appeal filed for you."}))
    _note, explanation = outcome.messages
    assert explanation["text"].splitlines()[-1] == UNDER_REVIEW["en"]
    assert explanation["buttons"] == [] and outcome.slots["pending_offer"] is None
    assert backend.paths() == [eligibility_path("demo-overdue"), appeals_path("demo-overdue")]


def test_resume_with_a_note_when_the_service_is_down(make_tracker, run, backend) -> None:
    backend.on("GET", eligibility_path("demo-overdue"), requests.ConnectionError("down"))
    outcome = run(ResumeAfterHandoff(), make_tracker(
        lang="en", borrower="demo-overdue", slots={"agent_note": "waived", "handoff_active": True}))
    assert outcome.messages[1]["text"] == text_of("backend_unavailable", "en")
    assert outcome.slots["handoff_active"] is False and outcome.slots["backend_failed"] is True


def conversation_path(sender_id: str = "conv-1") -> str:
    return f"/internal/conversations/{sender_id}"


# what desk/api.py answers about a conversation
AGENT_OWNS = {"conversation_id": "conv-1", "owner": "agent", "case_id": 7}
BOT_OWNS = {"conversation_id": "conv-1", "owner": "bot", "case_id": None}
DESK_NOT_FOUND = {"error": {"code": "conversation_not_found", "message": "No such conversation."}}


@pytest.mark.parametrize(("answer", "handoff_active", "paused"), [
    ((200, AGENT_OWNS), False, True),  # the desk is the source of truth
    ((200, BOT_OWNS), True, False),
    ((404, DESK_NOT_FOUND), True, False),
    (requests.ConnectionError("refused"), True, True),  # unreachable: the slot decides
    (requests.ConnectionError("refused"), False, False),
    (requests.ReadTimeout("slow"), True, True),
    ((500, "oops"), True, True),
    ((200, "not json"), True, True),
    ((200, ["agent"]), True, True),
    ((200, ["agent"]), False, False),
])
def test_a_new_session_stays_with_the_agent_who_owns_it(make_tracker, run, desk, answer,
                                                        handoff_active, paused) -> None:
    desk.on("GET", conversation_path(), answer)
    slots = {"borrower_id": "demo-overdue", "handoff_active": handoff_active,
             "session_started_metadata": {"x": 1}, "agent_note": None}
    outcome = run(SessionStart(), make_tracker(slots=slots))
    kinds = [e["event"] for e in outcome.events]
    assert kinds[0] == "session_started" and outcome.events[-1]["name"] == "action_listen"
    assert outcome.paused == paused
    assert outcome.slots["borrower_id"] == "demo-overdue" and outcome.slots["language"] == "zh"
    assert "session_started_metadata" not in outcome.slots and "agent_note" not in outcome.slots
    assert desk.calls[0].timeout == TIMEOUTS


@pytest.mark.parametrize(("answer", "handoff_active", "paused"), [
    ((200, AGENT_OWNS), False, True),
    ((200, BOT_OWNS), True, False),
    (requests.ConnectionError("refused"), True, True),
    (requests.ConnectionError("refused"), False, False),
    ((502, "bad gateway"), True, True),
])
def test_a_restart_never_takes_the_conversation_from_an_agent(make_tracker, run, desk, answer,
                                                              handoff_active, paused) -> None:
    desk.on("GET", conversation_path("conv-r"), answer)
    outcome = run(Restart(), make_tracker(sender_id="conv-r",
                                          slots={"handoff_active": handoff_active}))
    assert outcome.events[0]["event"] == "restart"
    if paused:
        assert outcome.slots == {"handoff_active": True} and outcome.paused
    else:
        assert outcome.events == [{"event": "restart", "timestamp": None}]


def test_asking_the_desk_who_owns_a_conversation_is_retried_after_a_503(make_tracker, run,
                                                                        desk) -> None:
    desk.on("GET", conversation_path(), (503, "busy"), (200, AGENT_OWNS))
    outcome = run(SessionStart(), make_tracker(slots={"handoff_active": False}))
    assert outcome.paused and len(desk.calls) == 2


def test_an_unreachable_desk_is_logged_with_the_conversation(make_tracker, run, desk,
                                                             caplog) -> None:
    desk.on("GET", conversation_path("conv-s"), requests.ConnectionError("refused"))
    caplog.set_level(logging.WARNING)
    run(SessionStart(), make_tracker(sender_id="conv-s"))
    assert any("conv-s" in r.getMessage() for r in caplog.records)


def test_a_new_appeal_after_a_decided_one_gets_a_new_key() -> None:
    from actions.appeals import idempotency_key

    first = idempotency_key("conv-1", "dec_1", "RISK_REVIEW_NOT_PASSED")
    assert first == idempotency_key("conv-1", "dec_1", "RISK_REVIEW_NOT_PASSED", 0)
    assert first != idempotency_key("conv-1", "dec_1", "RISK_REVIEW_NOT_PASSED", 1)
