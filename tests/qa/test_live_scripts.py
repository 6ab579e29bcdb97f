"""Every scripted conversation in tests/conversations/ through the live stack (backend, desk,
action server, Rasa), exactly as ``python -m qa run`` drives them; and two scripts that must
fail — a wrong reason with a missing figure, and an unexpected handoff — to show that the
runner notices and says so in the report."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from qa.runner import ScriptResult, report, run_all
from qa.script import load_script
from stack.config import ROOT
from stack.services import Stack

pytestmark = pytest.mark.servers

CONVERSATIONS = ROOT / "tests" / "conversations"


def run(stack: Stack, *paths: Path, jobs: int = 4) -> list[ScriptResult]:
    return run_all([load_script(p) for p in paths], stack.config, jobs=jobs)


def test_every_scripted_conversation_passes(live_stack: Stack) -> None:
    paths = sorted(CONVERSATIONS.glob("*.yml"))
    assert paths
    started = time.monotonic()
    results = run(live_stack, *paths)
    text = report(results)
    print(f"{text}\n{len(results)} scripts in {time.monotonic() - started:.1f} s")
    assert all(r.passed for r in results), f"scripted conversations failed:\n{text}"


WRONG_REASON = """\
# deliberately wrong: demo-posting's repayment is still posting; there is no incident
name: demo-posting with a wrong reason and a figure it does not have
borrower: demo-posting
turns:
  - say: 我已经还清了，为什么现在借不了款？
    expect:
      reason: SYSTEM_INCIDENT
      contains: ["还款5,000元", "4,583.33元"]
"""

UNEXPECTED_HANDOFF = """\
# deliberately wrong: asking for a person does hand off
name: a handoff the script does not expect
fixture: {}
turns:
  - say: 转人工
    expect:
      handoff: false
"""


def run_one_that_fails(stack: Stack, tmp_path: Path, script: str) -> tuple[ScriptResult, str]:
    """Run a deliberately wrong script: it must fail (not stop with an error)."""
    path = tmp_path / "wrong.yml"
    path.write_text(script, encoding="utf-8")
    [result] = run(stack, path, jobs=1)
    text = report([result])
    assert result.error is None, text
    assert not result.passed
    return result, text


def test_a_wrong_reason_and_a_missing_figure_fail_with_both_in_the_report(
        live_stack: Stack, tmp_path: Path) -> None:
    result, text = run_one_that_fails(live_stack, tmp_path, WRONG_REASON)
    for expected in ("FAIL", "turn 1 (line 5): say: 我已经还清了，为什么现在借不了款？",
                     "- reason is 'REPAYMENT_POSTING', expected 'SYSTEM_INCIDENT'",
                     "- reply does not contain ['4,583.33元']",
                     "还款5,000元",  # what the bot actually said
                     f"conversation: {result.conversation_id}  borrower: demo-posting"):
        assert expected in text, f"{expected!r} missing from the report:\n{text}"


def test_an_unexpected_handoff_fails(live_stack: Stack, tmp_path: Path) -> None:
    _, text = run_one_that_fails(live_stack, tmp_path, UNEXPECTED_HANDOFF)
    assert "- unexpected handoff (conversation owner: agent)" in text, text
    assert "正在为您转接人工客服" in text, text
