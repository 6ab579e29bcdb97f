"""The scripted-conversation runner (``qa``) on its own: no servers, fast.

- reading scripts: a malformed script is a ``ScriptError`` naming the file and line, and
  ``python -m qa check`` prints ``ERROR <file>:<line>: ...`` and exits 2, with no traceback;
- judging turns: ``qa.check.check`` says plainly what is wrong (wrong reason, missing figure,
  unexpected handoff, broken silence, missing buttons, appeal mismatch);
- running and reporting: ``run_script`` against a fake conversation (a script that should pass
  passes, one that should fail fails at the right turn), ``report`` and ``write_junit``;
- the scripts in tests/conversations/ against the actions' own code: each demo borrower's
  script holds for the explanation rendered from that borrower's real decision, and breaking
  an explanation template or a reason/focus mapping makes a script fail, naming what is gone.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.eligibility
import actions.explanations
from actions.clock import use_clock
from actions.eligibility import ExplainDecision
from actions.explanations import DESCRIBERS, Described, explain
from common.db import make_engine, make_session_factory
from eligibility.models import Base
from eligibility.seed import DEMO_BORROWERS, seed
from eligibility.service import compute_decision
from qa import runner
from qa.__main__ import main as qa_main
from qa.check import TurnResult, check
from qa.live import LiveError
from qa.runner import ScriptResult, TurnFailure, report, run_all, run_script, write_junit
from qa.script import Script, ScriptError, Step, load_script
from stack.config import ROOT, StackConfig

CONVERSATIONS = ROOT / "tests" / "conversations"
# A Tuesday, 12:00 in Shanghai (as in tests/actions): the moment decisions are computed at.
NOW = datetime(2026, 3, 10, 4, 0, tzinfo=timezone.utc)


def write(tmp_path: Path, text: str, name: str = "script.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """\
name: a good script
borrower: demo-posting
turns:
  - say: 为什么借不了
    expect:
      reason: REPAYMENT_POSTING
      contains: ["5,000元"]
"""


# --- reading scripts ---------------------------------------------------------------------------


def test_a_good_script_loads_with_its_turns_and_lines(tmp_path: Path) -> None:
    script = load_script(write(tmp_path, GOOD))
    assert (script.name, script.borrower, script.locale, script.fixture) == (
        "a good script", "demo-posting", "zh-CN", None)
    [step] = script.steps
    assert (step.kind, step.value, step.line) == ("say", "为什么借不了", 4)
    assert step.expect == {"reason": "REPAYMENT_POSTING", "contains": ["5,000元"]}


def test_an_empty_fixture_is_a_borrower_with_every_record_at_its_default(tmp_path: Path) -> None:
    script = load_script(write(tmp_path, "name: x\nfixture: {}\nturns:\n  - say: hi\n"))
    assert script.fixture == {} and script.borrower is None
    assert script.group.startswith("fixture:")


def test_agent_steps_need_no_value(tmp_path: Path) -> None:
    script = load_script(write(tmp_path, "name: x\nborrower: demo-compliance\nturns:\n"
                                         "  - agent_return:\n  - agent_close:\n"
                                         "  - agent_return: 已处理\n"))
    assert [(s.kind, s.value) for s in script.steps] == [
        ("agent_return", None), ("agent_close", None), ("agent_return", "已处理")]


# (script text, line the error must name, words the message must contain)
MALFORMED: dict[str, tuple[str, int, str]] = {
    "invalid YAML": (
        "name: x\nborrower: demo-posting\nturns:\n  - say: hi\n   expect: {}\n",
        5, "not valid YAML"),
    "unclosed bracket": (
        "name: x\nborrower: demo-posting\nturns:\n  - say: hi\n    expect:\n"
        "      contains: [5,000元\n", 7, "not valid YAML"),
    "unknown top-level key": (
        "name: x\nborrower: demo-posting\nlanguage: zh\nturns:\n  - say: hi\n",
        3, "`language`: unknown key (allowed: borrower, description, fixture, locale"),
    "missing turns": ("name: x\nborrower: demo-posting\n", 1, "`turns`: field required"),
    "empty turns": ("name: x\nborrower: demo-posting\nturns: []\n", 3,
                    "`turns`: ensure this value has at least 1 items"),
    "borrower and fixture": (
        "name: x\nborrower: demo-posting\nfixture: {limit: 100}\nturns:\n  - say: hi\n",
        2, "exactly one of `borrower`"),
    "neither borrower nor fixture": (
        "name: x\nlocale: zh-CN\nturns:\n  - say: hi\n", 1, "exactly one of `borrower`"),
    "two step kinds in a turn": (
        "name: x\nborrower: demo-posting\nturns:\n  - say: hi\n  - say: 转人工\n"
        "    press: 转人工客服\n", 5, "`turns[1]`: a turn has exactly one of say, press"),
    "no step kind in a turn": (
        "name: x\nborrower: demo-posting\nturns:\n  - expect: {silent: true}\n",
        4, "`turns[0]`: a turn has exactly one of say, press"),
    "unknown key in a turn": (
        "name: x\nborrower: demo-posting\nturns:\n  - say: hi\n    expects: {}\n",
        5, "`turns[0].expects`: unknown key (allowed: agent_close, agent_return, agent_say, "
           "expect, press, say, wait_notice)"),
    "unknown expectation": (
        "name: x\nborrower: demo-posting\nturns:\n  - say: hi\n    expect:\n"
        "      contain: [好消息]\n", 6, "`turns[0].expect.contain`: unknown key (allowed: appeal, "
                                     "buttons, contains,"),
    "wrong expectation type": (
        "name: x\nborrower: demo-posting\nturns:\n  - say: hi\n    expect:\n"
        "      contains: 5,000元\n", 6, "`turns[0].expect.contains`: value is not a valid list"),
    "wrong type for handoff": (
        "name: x\nborrower: demo-posting\nturns:\n  - say: hi\n    expect:\n"
        "      handoff: yes please\n", 6,
        "`turns[0].expect.handoff`: value is not a valid boolean"),
    "unknown sender": (
        "name: x\nborrower: demo-posting\nturns:\n  - say: hi\n    expect:\n"
        "      from: robot\n", 6,
        "`turns[0].expect.from`: unexpected value; permitted: 'bot', 'agent', 'system', 'any'"),
    "say without text": (
        "name: x\nborrower: demo-posting\nturns:\n  - say:\n", 4, "`turns[0].say`: needs a text"),
    "unknown locale": (
        "name: x\nborrower: demo-posting\nlocale: fr-FR\nturns:\n  - say: hi\n",
        3, "`locale`: unexpected value; permitted: 'zh-CN', 'en-US'"),
    "fixture not a mapping": (
        "name: x\nfixture: [1, 2]\nturns:\n  - say: hi\n", 2,
        "`fixture`: value is not a valid dict"),
    "not a mapping at all": ("- say: hi\n", 1, "a script is a mapping"),
    "the same step twice in a turn": (
        "name: x\nborrower: demo-posting\nturns:\n  - say: 转人工\n    say: 好的\n",
        5, "`say` appears twice"),
    "a key that is not text": (
        "name: x\nborrower: demo-posting\n1: one\nturns:\n  - say: hi\n", 3,
        "`1`: unknown key (allowed:"),
    "a typo in an appeal expectation": (
        "name: x\nfixture: {}\nturns:\n  - say: hi\n    expect:\n      appeal: {cout: 1}\n",
        6, "`turns[0].expect.appeal.cout`: unknown key (allowed: count, reason, status)"),
    "a list item that is not text": (
        "name: x\nborrower: demo-posting\nturns:\n  - say: hi\n    expect:\n      contains:\n"
        "        - 好消息\n        - {text: 好消息}\n", 8,
        "`turns[0].expect.contains[1]`: str type expected"),
    # YAML reads [还款5,000元] as two items, "还款5" and "000元": far weaker than the figure
    "a figure split by its thousands comma": (
        "name: x\nborrower: demo-posting\nturns:\n  - say: hi\n    expect:\n"
        "      contains: [收到, 还款5,000元]\n", 6, "`还款5,000元` in a [...] list is read as two"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_script_names_the_file_and_the_line(tmp_path: Path, case: str) -> None:
    text, line, words = MALFORMED[case]
    path = write(tmp_path, text, "broken.yml")
    with pytest.raises(ScriptError) as caught:
        load_script(path)
    error = caught.value
    assert (error.path, error.line) == (path, line), f"{case}: {error}"
    assert words in error.message, f"{case}: {error.message}"
    assert str(error).startswith(f"{path}:{line}: ")


def test_of_several_problems_the_first_in_the_file_is_named_and_the_rest_counted(
        tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nborrower: demo-posting\nturns:\n  - say: hi\n"
                           "    expect: {silent: maybe}\n  - press:\n", "two.yml")
    with pytest.raises(ScriptError) as caught:
        load_script(path)
    assert str(caught.value) == (f"{path}:5: `turns[0].expect.silent`: value is not a valid "
                                 "boolean (and 1 more problem(s) in this file)")


def test_a_file_that_is_not_utf8_is_a_script_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yml"
    path.write_bytes("name: x\nborrower: demo-posting\nturns:\n  - say: café\n".encode("latin-1"))
    with pytest.raises(ScriptError, match="not UTF-8"):
        load_script(path)


def test_qa_check_prints_file_and_line_and_exits_2_without_a_traceback(tmp_path: Path) -> None:
    bad = write(tmp_path, MALFORMED["unknown expectation"][0], "bad.yml")
    good = write(tmp_path, GOOD, "good.yml")
    done = subprocess.run([sys.executable, "-m", "qa", "check", str(good), str(bad)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"ERROR {bad}:6: `turns[0].expect.contain`: unknown key"), \
        done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert str(good) not in done.stderr  # only the broken file is named


def test_qa_check_accepts_good_scripts_and_reports_missing_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert qa_main(["check", str(write(tmp_path, GOOD))]) == 0
    assert "1 script(s) OK" in capsys.readouterr().out
    assert qa_main(["check", str(tmp_path / "nope.yml")]) == 2
    assert f"ERROR {tmp_path / 'nope.yml'}: no such file" in capsys.readouterr().err


# --- judging one turn ------------------------------------------------------------------------


PAYLOADS = {"转人工客服": "/request_human", "提交申诉": "/request_appeal"}


def bot(text: str, *buttons: str, sender: str = "bot") -> dict[str, Any]:
    return {"sender": sender, "text": text,
            "buttons": [{"title": b, "payload": PAYLOADS[b]} for b in buttons]}


POSTING_REPLY = bot("我们已经收到您今天 11:50的还款5,000元，目前正在入账，预计今天 14:00入账。")


def test_a_reply_that_meets_every_expectation_passes() -> None:
    result = TurnResult(messages=[POSTING_REPLY], slots={"primary_reason": "REPAYMENT_POSTING"},
                        owner="bot", appeals=[])
    expect = {"reason": "REPAYMENT_POSTING", "contains": ["5,000元", "入账"],
              "contains_any": ["今天", "明天"], "not_contains": ["申诉"], "no_buttons": True,
              "handoff": False, "silent": False, "appeal": {"count": 0}}
    assert check(expect, result) == []


def test_wrong_reason() -> None:
    result = TurnResult(messages=[POSTING_REPLY], slots={"primary_reason": "REPAYMENT_POSTING"})
    assert check({"reason": "SYSTEM_INCIDENT"}, result) == [
        "reason is 'REPAYMENT_POSTING', expected 'SYSTEM_INCIDENT'"]


def test_missing_figure_names_the_figure() -> None:
    problems = check({"contains": ["5,000元", "4,583.33元"]}, TurnResult(messages=[POSTING_REPLY]))
    assert problems == ["reply does not contain ['4,583.33元']"]


def test_text_that_must_not_appear_and_alternatives() -> None:
    result = TurnResult(messages=[POSTING_REPLY])
    assert check({"not_contains": ["入账", "申诉"]}, result) == [
        "reply contains ['入账'], which it must not"]
    assert check({"contains_any": ["Good news", "好消息"]}, result) == [
        "reply contains none of ['Good news', '好消息']"]


def test_unexpected_handoff_and_missing_handoff() -> None:
    handed = TurnResult(messages=[bot("正在为您转接人工客服。")], owner="agent")
    assert check({"handoff": False}, handed) == [
        "unexpected handoff (conversation owner: agent)"]
    assert check({"handoff": True}, TurnResult(messages=[POSTING_REPLY], owner="bot")) == [
        "expected a handoff to an agent"]


def test_silence_violated_and_silence_where_a_reply_was_due() -> None:
    spoke = TurnResult(messages=[bot("我回来了，还有什么需要我帮您查的吗？")])
    assert check({"silent": True}, spoke) == ["expected silence, got 1 message(s)"]
    assert check({"silent": False}, TurnResult(messages=[])) == ["expected a reply, got none"]
    # the borrower's own echo is not a reply
    echo = TurnResult(messages=[{"sender": "borrower", "text": "好的"}])
    assert check({"silent": True}, echo) == []


def test_missing_buttons_lists_what_was_offered() -> None:
    result = TurnResult(messages=[bot("安全核查中", "转人工客服")])
    assert check({"buttons": ["提交申诉", "转人工客服"]}, result) == [
        "buttons ['提交申诉'] not offered (offered: ['转人工客服'])"]
    assert check({"no_buttons": True}, result) == ["expected no buttons, got ['转人工客服']"]


def test_slot_mismatch() -> None:
    result = TurnResult(messages=[POSTING_REPLY], slots={"borrower_id": "demo-closed"})
    assert check({"slots": {"borrower_id": "demo-eligible"}}, result) == [
        "slot borrower_id is 'demo-closed', expected 'demo-eligible'"]


def test_appeal_mismatch() -> None:
    appeals = [{"appeal_id": "APL-2", "status": "rejected", "reason_code": "CREDIT_SCORE_DROPPED"},
               {"appeal_id": "APL-1", "status": "upheld", "reason_code": "CREDIT_LINE_CLOSED"}]
    result = TurnResult(messages=[bot("申诉已提交")], appeals=appeals)
    assert check({"appeal": {"status": "submitted", "reason": "RISK_REVIEW_NOT_PASSED",
                             "count": 1}}, result) == [
        "latest appeal status is 'rejected', expected 'submitted'",
        "latest appeal reason is 'CREDIT_SCORE_DROPPED', expected 'RISK_REVIEW_NOT_PASSED'",
        "2 appeal(s) in the backend, expected 1"]
    assert check({"appeal": {"status": "submitted"}}, TurnResult(appeals=[])) == [
        "expected an appeal in the backend, found none"]


def test_no_appeal_filed_is_count_zero() -> None:
    assert check({"appeal": {"count": 0}}, TurnResult(appeals=[])) == []
    assert check({"appeal": {"count": 0}}, TurnResult(appeals=[{"status": "submitted"}])) == [
        "1 appeal(s) in the backend, expected 0"]


def test_from_judges_only_that_senders_messages() -> None:
    result = TurnResult(messages=[bot("您好，我来帮您看一下", sender="agent"),
                                  bot("我回来了")])
    assert check({"from": "agent", "contains": ["我来帮您"]}, result) == []
    assert check({"from": "agent", "contains": ["我回来了"]}, result) == [
        "reply does not contain ['我回来了']"]
    assert check({"from": "bot", "contains": ["我来帮您"]}, result) == [
        "reply does not contain ['我来帮您']"]


# --- running a script against a fake conversation, and reporting ------------------------------


class FakeWorld:
    """What the fake stack answers: text -> (messages, slots, owner, appeals)."""

    def __init__(self) -> None:
        self.turns: dict[str, tuple[list[dict[str, Any]], dict[str, Any], str, list[Any]]] = {}
        self.said: list[str] = []
        self.fixtures: list[tuple[str, dict[str, Any]]] = []
        self.state: tuple[dict[str, Any], str, list[Any]] = ({}, "bot", [])

    def on(self, text: str, messages: list[dict[str, Any]], slots: dict[str, Any] | None = None,
           owner: str = "bot", appeals: list[Any] | None = None) -> None:
        self.turns[text] = (messages, slots or {}, owner, appeals or [])


class FakeConversation:
    world: FakeWorld

    def __init__(self, config: StackConfig, borrower_id: str, locale: str) -> None:
        self.borrower_id, self.locale = borrower_id, locale
        self.conversation_id = ""
        self.last_buttons: list[dict[str, str]] = []

    async def open(self) -> None:
        self.conversation_id = f"c-fake-{self.borrower_id}"

    async def close(self) -> None:
        pass

    async def say(self, text: str) -> list[dict[str, Any]]:
        self.world.said.append(text)
        if text not in self.world.turns:
            raise LiveError(f"timed out waiting for the reply to {text!r}")
        messages, slots, owner, appeals = self.world.turns[text]
        self.world.state = (slots, owner, appeals)
        for message in messages:
            if message.get("buttons"):
                self.last_buttons = message["buttons"]
        return messages

    async def press(self, title: str) -> list[dict[str, Any]]:
        button = next((b for b in self.last_buttons if b["title"] == title), None)
        if button is None:
            raise AssertionError(f"no button titled {title!r} to press (offered: "
                                 f"{[b['title'] for b in self.last_buttons]})")
        return await self.say(button["payload"])

    async def agent_say(self, text: str) -> list[dict[str, Any]]:
        return [bot(text, sender="agent")]

    async def agent_return(self, note: str | None) -> list[dict[str, Any]]:
        return await self.say(f"<return {note}>")

    async def agent_close(self) -> list[dict[str, Any]]:
        return []

    async def probe(self, result: TurnResult, expect: dict[str, Any]) -> None:
        result.slots, result.owner, result.appeals = self.world.state


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWorld]:
    fake = FakeWorld()
    FakeConversation.world = fake
    monkeypatch.setattr(runner, "LiveConversation", FakeConversation)
    monkeypatch.setattr(runner, "put_fixture",
                        lambda config, borrower_id, fixture: fake.fixtures.append(
                            (borrower_id, fixture)))
    yield fake


def run(script: Script) -> ScriptResult:
    return asyncio.run(run_script(script, StackConfig.from_env()))


def posting_world(world: FakeWorld) -> None:
    world.on("为什么借不了", [bot("我们已经收到您的还款5,000元，目前正在入账。", "转人工客服")],
             {"primary_reason": "REPAYMENT_POSTING"})
    world.on("/request_human", [bot("正在为您转接人工客服。")], owner="agent")


def test_a_script_that_should_pass_passes(tmp_path: Path, world: FakeWorld) -> None:
    posting_world(world)
    script = load_script(write(tmp_path, GOOD + "  - press: 转人工客服\n"
                                               "    expect: {handoff: true}\n"))
    result = run(script)
    assert result.passed, report([result])
    assert world.said == ["为什么借不了", "/request_human"]
    assert result.conversation_id == "c-fake-demo-posting"
    assert "PASS" in report([result]) and "1 passed, 0 failed" in report([result])


FAILING = """\
name: expects the wrong reason for demo-posting
borrower: demo-posting
turns:
  - say: 为什么借不了
    expect:
      reason: SYSTEM_INCIDENT   # wrong on purpose
      contains: ["5,000元", DEMO-INC-0001]
  - say: 转人工
    expect: {handoff: true}
"""


def test_a_script_that_should_fail_fails_at_that_turn_with_a_useful_report(
        tmp_path: Path, world: FakeWorld) -> None:
    posting_world(world)
    path = write(tmp_path, FAILING, "wrong-reason.yml")
    result = run(load_script(path))
    assert not result.passed and result.error is None
    [failure] = result.failures
    assert (failure.index, failure.step.line) == (1, 4)
    assert failure.problems == ["reply does not contain ['DEMO-INC-0001']",
                                "reason is 'REPAYMENT_POSTING', expected 'SYSTEM_INCIDENT'"]
    assert world.said == ["为什么借不了"]  # later turns depend on this one: not run
    text = report([result])
    for expected in (f"FAIL  {path}  expects the wrong reason for demo-posting",
                     "turn 1 (line 4): say: 为什么借不了",
                     "- reason is 'REPAYMENT_POSTING', expected 'SYSTEM_INCIDENT'",
                     "- reply does not contain ['DEMO-INC-0001']",
                     "the bot said:", "| 我们已经收到您的还款5,000元，目前正在入账。",
                     "conversation: c-fake-demo-posting  borrower: demo-posting",
                     "0 passed, 1 failed"):
        assert expected in text, f"{expected!r} missing from the report:\n{text}"


def test_an_unexpected_handoff_fails(tmp_path: Path, world: FakeWorld) -> None:
    world.on("为什么借不了", [bot("正在为您转接人工客服。")], owner="agent")
    script = load_script(write(tmp_path, "name: no handoff\nborrower: demo-posting\nturns:\n"
                                         "  - say: 为什么借不了\n    expect: {handoff: false}\n"))
    result = run(script)
    assert result.failures[0].problems == ["unexpected handoff (conversation owner: agent)"]
    assert "| 正在为您转接人工客服。" in report([result])


def test_pressing_a_button_that_was_not_offered_fails_the_turn(
        tmp_path: Path, world: FakeWorld) -> None:
    posting_world(world)
    script = load_script(write(tmp_path, GOOD + "  - press: 提交申诉\n"))
    result = run(script)
    [failure] = result.failures
    assert failure.index == 2
    assert failure.problems == ["no button titled '提交申诉' to press (offered: ['转人工客服'])"]
    assert "turn 2 (line 8): press: 提交申诉" in report([result])


def test_a_stack_problem_is_an_error_with_the_conversation_id(
        tmp_path: Path, world: FakeWorld) -> None:
    result = run(load_script(write(tmp_path, GOOD)))  # the fake knows no reply: times out
    assert result.error == "timed out waiting for the reply to '为什么借不了'"
    text = report([result])
    assert "ERROR" in text and "error: timed out waiting" in text
    assert "conversation: c-fake-demo-posting" in text
    assert "0 passed, 1 failed (1 errors)" in text


def test_a_fixture_is_put_before_the_conversation_under_a_fresh_qa_id(
        tmp_path: Path, world: FakeWorld) -> None:
    world.on("为什么借不了", [bot("好消息：您现在可以借款")])
    script = load_script(write(tmp_path, "name: Eligible QA borrower!\nfixture: {limit: 300}\n"
                                         "turns:\n  - say: 为什么借不了\n"
                                         "    expect: {contains: [好消息]}\n"))
    first, second = run(script), run(script)
    assert first.passed and second.passed
    [(id1, fixture), (id2, _)] = world.fixtures
    assert fixture == {"limit": 300}
    assert id1.startswith("qa-eligible-qa-borrower-") and id1 != id2
    assert first.borrower_id == id1


def test_run_all_keeps_the_order_and_runs_one_borrowers_scripts_in_turn(
        tmp_path: Path, world: FakeWorld) -> None:
    posting_world(world)
    scripts = [load_script(write(tmp_path, GOOD.replace("a good script", f"script {n}"),
                                 f"s{n}.yml")) for n in range(5)]
    results = run_all(scripts, StackConfig.from_env(), jobs=3)
    assert [r.script.name for r in results] == [f"script {n}" for n in range(5)]
    assert all(r.passed for r in results)


def three_results(tmp_path: Path) -> list[ScriptResult]:
    script = load_script(write(tmp_path, FAILING, "wrong-reason.yml"))
    passed = ScriptResult(script=load_script(write(tmp_path, GOOD, "good.yml")),
                          conversation_id="c-1", borrower_id="demo-posting", seconds=1.5)
    failed = ScriptResult(script=script, conversation_id="c-2", borrower_id="demo-posting",
                          seconds=2.25, failures=[TurnFailure(
                              1, script.steps[0], ["reason is 'REPAYMENT_POSTING', expected "
                                                   "'SYSTEM_INCIDENT'"], "收到您的还款5,000元")])
    errored = ScriptResult(script=script, conversation_id="", borrower_id="qa-x",
                           error="the backend refused the fixture (422): ...")
    return [passed, failed, errored]


def test_write_junit_produces_valid_xml_with_failures_and_errors(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "qa.xml"
    write_junit(three_results(tmp_path), out)
    suite = ET.parse(out).getroot()
    assert suite.tag == "testsuite"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["a good script"] + [
        "expects the wrong reason for demo-posting"] * 2
    assert cases[0].find("failure") is None and cases[0].find("error") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "reason is 'REPAYMENT_POSTING', expected 'SYSTEM_INCIDENT'"
    assert "turn 1 (line 4)" in (failure.text or "") and "c-2" in (failure.text or "")
    assert "收到您的还款5,000元" in (failure.text or "")
    error = cases[2].find("error")
    assert error is not None and "refused the fixture" in (error.get("message") or "")


# --- the project's scripts ---------------------------------------------------------------------


def all_scripts() -> list[Path]:
    return sorted(CONVERSATIONS.glob("*.yml"))


def test_every_script_in_tests_conversations_loads(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(all_scripts()) >= 18 + 8
    assert qa_main(["check", str(CONVERSATIONS)]) == 0
    assert f"{len(all_scripts())} script(s) OK" in capsys.readouterr().out


def test_every_demo_borrower_has_a_script_in_their_language() -> None:
    for demo in DEMO_BORROWERS:
        script = load_script(CONVERSATIONS / f"{demo.id}.yml")
        assert script.borrower == demo.id
        assert script.locale == demo.locale, f"{demo.id} chats in {demo.locale}"


def test_scripts_that_change_the_backend_use_a_fixture_borrower() -> None:
    """Appeals change the backend: on a shared demo borrower, runs would collide."""
    for path in all_scripts():
        script = load_script(path)
        files = any(s.kind == "press" and s.value in ("确认提交", "Submit") for s in script.steps)
        if files or any("appeal" in s.expect and s.expect["appeal"] != {"count": 0}
                        for s in script.steps):
            assert script.fixture is not None, f"{path.name} files an appeal on a demo borrower"


def test_scripts_that_hand_off_give_the_conversation_back_or_use_a_fixture() -> None:
    """A demo borrower's conversation left with an agent would silence every later script."""
    for path in all_scripts():
        script = load_script(path)
        if any(s.expect.get("handoff") is True for s in script.steps):
            assert script.fixture is not None, f"{path.name} hands off a demo borrower"


# --- the scripts against the actions' own code: breaking an explanation breaks a script ---------


@pytest.fixture(scope="module")
def decisions() -> dict[str, dict[str, Any]]:
    """Every demo borrower's decision, computed by the backend's own code at NOW."""
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    with make_session_factory(engine)() as session:
        seed(session, NOW)
        computed = {d.id: compute_decision(session, d.id, now=NOW, min_drawdown=500,
                                           currency="CNY") for d in DEMO_BORROWERS}
    engine.dispose()
    return computed


def first_turn(borrower_id: str) -> tuple[Script, Step]:
    script = load_script(CONVERSATIONS / f"{borrower_id}.yml")
    return script, script.steps[0]


def explained(script: Script, decision: dict[str, Any]) -> TurnResult:
    """The bot's answer to the first question, as action_explain_decision would send it."""
    lang = "en" if script.locale == "en-US" else "zh"
    explanation = explain(decision, lang=lang, now=NOW)
    return TurnResult(messages=[{"sender": "bot", "text": explanation.text,
                                 "buttons": explanation.buttons}],
                      slots={"primary_reason": explanation.primary_code}, owner="bot",
                      appeals=[])


def demo_failures(decisions: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    failures = {}
    for demo in DEMO_BORROWERS:
        script, step = first_turn(demo.id)
        problems = check(step.expect, explained(script, decisions[demo.id]))
        if problems:
            failures[demo.id] = problems
    return failures


@pytest.mark.parametrize("borrower_id", [d.id for d in DEMO_BORROWERS])
def test_each_demo_script_holds_for_the_explanation_of_that_borrowers_decision(
        decisions: dict[str, dict[str, Any]], borrower_id: str) -> None:
    script, step = first_turn(borrower_id)
    result = explained(script, decisions[borrower_id])
    assert check(step.expect, result) == [], result.text()


def figure_free(code: str) -> Callable[..., Described]:
    """A broken template: right topic, but the borrower's figures dropped."""
    def describe(reason: dict[str, Any], c: Any) -> Described:
        if c.lang == "zh":
            return Described("您的账户有一项限制。", "有一项限制", None)
        return Described("There is a restriction on your account.", "a restriction", None)
    return describe


def test_a_template_that_drops_the_figures_fails_the_script_naming_the_figure(
        decisions: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    script, step = first_turn("demo-score-drop")
    assert check(step.expect, explained(script, decisions["demo-score-drop"])) == []
    monkeypatch.setitem(DESCRIBERS, "CREDIT_SCORE_DROPPED", figure_free("CREDIT_SCORE_DROPPED"))
    problems = check(step.expect, explained(script, decisions["demo-score-drop"]))
    assert problems and problems[0].startswith("reply does not contain [")
    for figure in ("从712降到了598", "借款需要600分及以上", "近30天有9次借贷申请或征信查询"):
        assert figure in problems[0]


@pytest.mark.parametrize("code", sorted(DESCRIBERS))
def test_breaking_any_explanation_template_fails_at_least_one_demo_script(
        decisions: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
        code: str) -> None:
    assert demo_failures(decisions) == {}
    monkeypatch.setitem(DESCRIBERS, code, figure_free(code))
    failed = demo_failures(decisions)
    assert failed, f"no demo script notices that the {code} template lost its figures"
    assert any("reply does not contain" in p for problems in failed.values() for p in problems)


def test_a_wrong_reason_mapping_fails_the_script(
        decisions: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    # the review's words for the policy's code, and the other way round
    monkeypatch.setitem(DESCRIBERS, "RISK_POLICY_TIGHTENED",
                        actions.explanations._risk_review)
    monkeypatch.setitem(DESCRIBERS, "RISK_REVIEW_NOT_PASSED",
                        actions.explanations._risk_policy)
    failed = demo_failures(decisions)
    assert set(failed) == {"demo-risk-review", "demo-policy"}
    assert "定期综合评估中暂未通过" in failed["demo-risk-review"][0]
    assert "一部分客户临时收紧了借款审核" in failed["demo-policy"][0]


def test_an_appealable_reason_that_stops_offering_an_appeal_fails_the_script(
        decisions: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(actions.explanations, "HUMAN_REASONS",
                        {"COMPLIANCE_HOLD", "CREDIT_LINE_CLOSED"})
    failed = demo_failures(decisions)
    assert list(failed) == ["demo-closed"]
    assert "buttons ['提交申诉'] not offered (offered: ['转人工客服'])" in failed["demo-closed"]


# the follow-ups script, turn by turn: the intent each message is (NLU is not run here)
FOLLOW_UP_INTENTS = ["cannot_borrow_after_repayment", "ask_limit_restore_time",
                     "ask_improve_eligibility", "ask_repayment_status"]


def run_explain_action(decision: dict[str, Any], intent: str, lang: str) -> TurnResult:
    """action_explain_decision itself, for a decision it fetched a moment ago (no HTTP)."""
    latest = {"text": "", "intent": {"name": intent, "confidence": 0.9}, "entities": [],
              "intent_ranking": [{"name": intent, "confidence": 0.9}], "metadata": {}}
    tracker = Tracker("conv-qa", {"borrower_id": decision["borrower_id"], "language": lang,
                                  "decision": decision, "product_note_shown": False},
                      latest, [{"event": "user", "text": "", "parse_data": latest}],
                      False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ExplainDecision().run(dispatcher, tracker, {}))
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    return TurnResult(messages=[{"sender": "bot", **m} for m in dispatcher.messages],
                      slots=slots, owner="bot", appeals=[])


@pytest.fixture
def explain_action(decisions: dict[str, dict[str, Any]]) -> Iterator[Callable[[str], TurnResult]]:
    """The action at NOW, on demo-score-drop's decision as fetched at NOW: fresh, so the action
    answers from it instead of asking the backend."""
    decision = {**decisions["demo-score-drop"], "_fetched_at": NOW.timestamp()}
    with use_clock(lambda: NOW):
        yield lambda intent: run_explain_action(decision, intent, "zh")


def test_the_follow_ups_script_holds_for_the_action_and_fails_with_a_wrong_focus_mapping(
        explain_action: Callable[[str], TurnResult], monkeypatch: pytest.MonkeyPatch) -> None:
    script = load_script(CONVERSATIONS / "flow-follow-ups.yml")
    assert script.borrower == "demo-score-drop"
    for step, intent in zip(script.steps[:4], FOLLOW_UP_INTENTS, strict=True):
        result = explain_action(intent)
        assert check(step.expect, result) == [], f"{intent}:\n{result.text()}"

    # "when can I borrow again?" answered as if it were the first question
    monkeypatch.setitem(actions.eligibility.FOCUS_BY_INTENT, "ask_limit_restore_time", "explain")
    problems = check(script.steps[1].expect, explain_action("ask_limit_restore_time"))
    assert problems == ["reply does not contain ['最早可以在', '之后再借']"]

