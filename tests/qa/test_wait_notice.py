"""Scripts that wait for a proactive notice (``wait_notice: seconds``, ``expect: {notice:
kind}``): reading the step, judging it, the live conversation's wait on its chat frames, and
a script run through the runner. No servers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qa import runner
from qa.check import TurnResult, check
from qa.live import LiveConversation
from qa.runner import report, run_script
from qa.script import ScriptError, load_script
from stack.config import StackConfig
from tests.conftest import run_coroutine

SCRIPT = """\
name: a notice arrives
fixture: {}
turns:
  - say: 为什么借不了
  - wait_notice: 90
    expect:
      notice: repayment_posted
      contains: [已经入账]
"""

NOTICE = {"type": "message", "sender": "bot", "text": "您今天还的1,500元已经入账。",
          "notice": "repayment_posted"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "script.yml"
    path.write_text(text, encoding="utf-8")
    return path


# --- reading ---------------------------------------------------------------------------------


def test_a_wait_for_a_notice_loads_with_its_seconds_and_line(tmp_path: Path) -> None:
    script = load_script(write(tmp_path, SCRIPT))
    step = script.steps[1]
    assert (step.kind, step.value, step.line) == ("wait_notice", 90, 5)
    assert step.expect == {"notice": "repayment_posted", "contains": ["已经入账"]}
    assert step.describe() == "wait_notice: 90"


@pytest.mark.parametrize("value", ["0", "601", "soon", "1.5", '"90"', ""])
def test_the_wait_is_a_whole_number_of_seconds_up_to_ten_minutes(tmp_path: Path,
                                                                 value: str) -> None:
    with pytest.raises(ScriptError) as error:
        load_script(write(tmp_path, SCRIPT.replace("wait_notice: 90", f"wait_notice: {value}")))
    assert error.value.line == 5
    assert "turns[1].wait_notice" in error.value.message


def test_a_wait_is_a_step_of_its_own(tmp_path: Path) -> None:
    text = SCRIPT.replace("  - wait_notice: 90\n", "  - wait_notice: 90\n    say: hi\n")
    with pytest.raises(ScriptError) as error:
        load_script(write(tmp_path, text))
    assert "a turn has exactly one of" in error.value.message
    assert "wait_notice" in error.value.message


# --- judging ---------------------------------------------------------------------------------


def test_a_notice_of_the_expected_kind_passes() -> None:
    result = TurnResult(messages=[{"sender": "bot", "text": "x"}, NOTICE])
    assert check({"notice": "repayment_posted", "contains": ["已经入账"]}, result) == []


def test_a_notice_of_another_kind_or_none_fails_naming_what_came() -> None:
    reminder = {**NOTICE, "notice": "reminder_due"}
    assert check({"notice": "repayment_posted"}, TurnResult(messages=[reminder])) == [
        "no repayment_posted notice among the replies (notices: ['reminder_due'])"]
    plain = {"sender": "bot", "text": "您好"}
    assert check({"notice": "repayment_posted"}, TurnResult(messages=[plain])) == [
        "no repayment_posted notice among the replies (notices: [])"]


# --- the live conversation's wait, on its frame queue ----------------------------------------


def conversation() -> LiveConversation:
    return LiveConversation(StackConfig.from_env(), "qa-x", "zh-CN")


def test_waiting_returns_what_arrived_up_to_the_notice() -> None:
    async def scenario() -> list[dict[str, Any]]:
        chat = conversation()
        for frame in ({"type": "typing"}, {"type": "message", "sender": "bot", "text": "a"},
                      NOTICE, {"type": "message", "sender": "bot", "text": "later"}):
            await chat.frames.put(frame)
        return await chat.wait_notice(5)

    assert [m["text"] for m in run_coroutine(scenario())] == ["a", NOTICE["text"]]


def test_a_notice_that_arrives_while_waiting_ends_the_wait() -> None:
    async def scenario() -> tuple[list[dict[str, Any]], float]:
        chat = conversation()
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, chat.frames.put_nowait, NOTICE)
        started = loop.time()
        arrived = await chat.wait_notice(10)
        return arrived, loop.time() - started

    arrived, waited = run_coroutine(scenario())
    assert arrived == [NOTICE] and waited < 5


def test_no_notice_in_time_fails_the_turn_naming_what_arrived() -> None:
    async def scenario() -> None:
        chat = conversation()
        await chat.frames.put({"type": "message", "sender": "bot", "text": "还在入账"})
        await chat.wait_notice(1)

    with pytest.raises(AssertionError, match=r"no notice arrived within 1 s "
                                             r"\(arrived: \['还在入账'\]\)"):
        run_coroutine(scenario())


# --- through the runner -----------------------------------------------------------------------


class Fake:
    """A conversation whose borrower is told the notice after ``notice_after`` seconds."""

    notice_after = 0.0

    def __init__(self, config: StackConfig, borrower_id: str, locale: str) -> None:
        self.conversation_id = f"c-{borrower_id}"
        self.waited: list[float] = []

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def say(self, text: str) -> list[dict[str, Any]]:
        return [{"sender": "bot", "text": "正在入账"}]

    async def wait_notice(self, seconds: float) -> list[dict[str, Any]]:
        if self.notice_after > seconds:
            raise AssertionError(f"no notice arrived within {seconds:g} s (arrived: [])")
        return [NOTICE]

    async def probe(self, result: TurnResult, expect: dict[str, Any]) -> None:
        pass


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Fake]]:
    monkeypatch.setattr(runner, "LiveConversation", Fake)
    monkeypatch.setattr(runner, "put_fixture", lambda *args: None)
    yield Fake


def test_a_script_waiting_for_a_notice_passes_when_it_comes(tmp_path: Path,
                                                            fake: type[Fake]) -> None:
    fake.notice_after = 10
    result = run_coroutine(run_script(load_script(write(tmp_path, SCRIPT)),
                                      StackConfig.from_env()))
    assert result.passed, report([result])


def test_a_script_waiting_for_a_notice_fails_at_that_turn_when_none_comes(
        tmp_path: Path, fake: type[Fake]) -> None:
    fake.notice_after = 120
    result = run_coroutine(run_script(load_script(write(tmp_path, SCRIPT)),
                                      StackConfig.from_env()))
    [failure] = result.failures
    assert failure.index == 2 and failure.step.line == 5
    assert failure.problems == ["no notice arrived within 90 s (arrived: [])"]
    assert "turn 2 (line 5): wait_notice: 90" in report([result])
