"""Running scripts against the live stack and reporting: per script pass/fail; for a failure
the turn, what was expected and what the bot actually said, and the conversation id."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from junitparser import Error, Failure, TestCase, TestSuite

from stack.config import StackConfig

from .check import TurnResult, check
from .live import LiveConversation, LiveError, fixture_borrower_id, put_fixture
from .script import Script, Step


@dataclass
class TurnFailure:
    index: int
    step: Step
    problems: list[str]
    actual: str


@dataclass
class ScriptResult:
    script: Script
    conversation_id: str = ""
    borrower_id: str = ""
    failures: list[TurnFailure] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None


async def _run_step(conversation: LiveConversation, step: Step) -> TurnResult:
    if step.kind == "say":
        messages = await conversation.say(step.value)
    elif step.kind == "press":
        messages = await conversation.press(step.value)
    elif step.kind == "agent_say":
        messages = await conversation.agent_say(step.value)
    elif step.kind == "agent_return":
        messages = await conversation.agent_return(step.value if isinstance(step.value, str)
                                                   else None)
    elif step.kind == "wait_notice":
        messages = await conversation.wait_notice(step.value)
    else:
        messages = await conversation.agent_close()
    result = TurnResult(messages=messages)
    await conversation.probe(result, step.expect)
    return result


async def run_script(script: Script, config: StackConfig) -> ScriptResult:
    started = time.monotonic()
    borrower_id = script.borrower or fixture_borrower_id(script.name)
    outcome = ScriptResult(script=script, borrower_id=borrower_id)
    conversation = LiveConversation(config, borrower_id, script.locale)
    try:
        if script.fixture is not None:
            await asyncio.to_thread(put_fixture, config, borrower_id, script.fixture)
        await conversation.open()
        outcome.conversation_id = conversation.conversation_id
        for index, step in enumerate(script.steps, 1):
            try:
                result = await _run_step(conversation, step)
            except AssertionError as exc:  # the script asked for something that is not there
                outcome.failures.append(TurnFailure(index, step, [str(exc)], ""))
                break
            problems = check(step.expect, result)
            if problems:
                outcome.failures.append(TurnFailure(index, step, problems, result.text()))
                break  # later turns depend on this one: stop at the first failure
    except LiveError as exc:
        outcome.error = str(exc)
    except Exception as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
    finally:
        await conversation.close()
        outcome.seconds = time.monotonic() - started
    return outcome


def run_all(scripts: list[Script], config: StackConfig, jobs: int) -> list[ScriptResult]:
    """Scripts sharing a borrower run in order; groups run in parallel."""
    groups: dict[str, list[Script]] = defaultdict(list)
    for script in scripts:
        groups[script.group].append(script)

    def run_group(group: list[Script]) -> list[ScriptResult]:
        return [asyncio.run(run_script(script, config)) for script in group]

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        finished = [r for results in pool.map(run_group, groups.values()) for r in results]
    order = {id(s): i for i, s in enumerate(scripts)}
    return sorted(finished, key=lambda r: order[id(r.script)])


def report(results: list[ScriptResult]) -> str:
    lines = []
    for result in results:
        status = "PASS" if result.passed else ("ERROR" if result.error else "FAIL")
        lines.append(f"{status:<5} {result.script.path}  {result.script.name}  "
                     f"({result.seconds:.1f} s)")
        if result.error:
            lines.append(f"      error: {result.error}")
            lines.append(f"      conversation: {result.conversation_id or '-'}  "
                         f"borrower: {result.borrower_id}")
        for failure in result.failures:
            lines.append(f"      turn {failure.index} (line {failure.step.line}): "
                         f"{failure.step.describe()}")
            for problem in failure.problems:
                lines.append(f"        - {problem}")
            lines.append("      the bot said:")
            lines += [f"        | {line}" for line in (failure.actual or "(nothing)").splitlines()]
            lines.append(f"      conversation: {result.conversation_id}  "
                         f"borrower: {result.borrower_id}")
    passed = sum(r.passed for r in results)
    failed = sum(bool(r.failures) for r in results)
    errors = sum(r.error is not None for r in results)
    lines.append(f"{passed} passed, {failed + errors} failed" + (f" ({errors} errors)"
                                                                 if errors else ""))
    return "\n".join(lines)


def write_junit(results: list[ScriptResult], path: Path) -> None:
    """One JUnit test suite, a test case per script (junitparser writes the XML)."""
    suite = TestSuite("qa-conversations")
    for result in results:
        case = TestCase(result.script.name, classname=str(result.script.path),
                        time=round(result.seconds, 2))
        outcomes: list[Error | Failure] = []
        if result.error:
            outcomes.append(Error(result.error))
            outcomes[-1].text = f"conversation {result.conversation_id}"
        for failure in result.failures:
            outcomes.append(Failure("; ".join(failure.problems)))
            outcomes[-1].text = (
                f"turn {failure.index} (line {failure.step.line}): {failure.step.describe()}\n"
                f"bot said:\n{failure.actual}\nconversation {result.conversation_id}")
        if outcomes:
            case.result = outcomes
        suite.add_testcase(case)
    path.parent.mkdir(parents=True, exist_ok=True)
    suite.write(str(path))
