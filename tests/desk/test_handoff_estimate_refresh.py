"""The waiting borrower's expected wait is recomputed, not frozen at the figure the case
opened with (issue 12): each time the queue moves the desk pushes every waiting borrower the
median wait minus what their case has waited by then (desk/handoffs.py), a reloaded page reads
the same from its hello, and the page counts the figure down between the desk's frames
(desk/static/chat.js ``minutesLeft``).

Fixture: five cases other borrowers opened and agents claimed half an hour ago after 10
minutes each (the median: 10 minutes)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from desk_support import AgentApi, Chat, add_claimed_cases, hand_off
from fastapi.testclient import TestClient

from desk.handoffs import expected_minutes
from desk.models import Case

pytestmark = pytest.mark.timeout(30)


def backdate(sessions, case_id: int, minutes: float) -> None:
    """The case opened ``minutes`` earlier than it did (it has waited that much longer)."""
    with sessions() as session:
        case = session.get(Case, case_id)
        case.created_at = case.created_at - timedelta(minutes=minutes)
        session.commit()


def pushed(chat: Chat) -> list[dict]:
    """The handoff frames pushed so far (read up to the answer to a fresh hello)."""
    chat.send({"type": "hello", "after": 10**9})
    frame = chat.recv()
    assert frame["type"] == "history", frame
    frames, chat.handoff_frames[:] = list(chat.handoff_frames), []
    return frames


def state_on_hello(chat: Chat) -> dict:
    chat.send({"type": "hello", "after": 10**9})
    frame = chat.recv()
    assert frame["type"] == "history", frame
    return frame["handoff"]


def test_when_the_queue_moves_the_figure_is_what_is_left_now(
        client: TestClient, open_chat, agents: list[AgentApi], sessions):
    add_claimed_cases(sessions, [10, 10, 10, 10, 10])
    first, second = open_chat("b-1001"), open_chat("b-1002")
    case_1 = hand_off(client, first.conversation_id).json()["case_id"]
    case_2 = hand_off(client, second.conversation_id).json()["case_id"]
    # just opened: 10 minutes, second in the queue
    assert pushed(second) == [{"type": "handoff", "state": "waiting", "position": 2,
                               "expected_minutes": 10}]

    backdate(sessions, case_2, 4)  # four minutes pass for the second borrower
    agents[0].claim(case_1)  # the queue moves (a sixth claim, after seconds: median still 10)

    # first in line now, and 10 - 4 = 6 minutes left, not the 10 it opened with
    assert pushed(second) == [{"type": "handoff", "state": "waiting", "position": 1,
                               "expected_minutes": 6}]
    assert state_on_hello(second) == {"state": "waiting", "position": 1, "expected_minutes": 6}

    backdate(sessions, case_2, 7)  # 11 minutes waited: past the median, no figure any more
    assert state_on_hello(second) == {"state": "waiting", "position": 1}


NOW = datetime(2026, 3, 10, 4, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("waited", "expected"), [
    (timedelta(0), 10),
    (timedelta(minutes=4), 6),
    (timedelta(minutes=4, seconds=30), 6),   # 5.5 minutes left: rounded up
    (timedelta(minutes=9, seconds=50), 1),   # 10 seconds left: at least 1
    (timedelta(minutes=10), None),           # its time is up
    (timedelta(minutes=25), None),
])
def test_expected_minutes_counts_down_with_the_time_waited(waited, expected) -> None:
    assert expected_minutes(600.0, NOW - waited, NOW) == expected


def test_without_a_median_there_is_no_figure() -> None:
    assert expected_minutes(None, NOW, NOW) is None


# --- the page's countdown (chat.js ``minutesLeft``, run under Node when it is installed) -------

CHAT_JS = Path(__file__).resolve().parents[2] / "desk" / "static" / "chat.js"
MINUTE = 60_000


def minutes_left_in_the_page(cases: list[tuple[dict, int]]) -> list[int | None]:
    """``minutesLeft(handoff, now)`` of chat.js for each case, evaluated by Node."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("Node is not installed")
    source = CHAT_JS.read_text(encoding="utf-8")
    function = re.search(r"^  function minutesLeft\(h, now\) \{\n.*?^  \}\n", source,
                         re.MULTILINE | re.DOTALL)
    assert function is not None, "chat.js has no minutesLeft(h, now)"
    script = (function.group(0) + "process.stdout.write(JSON.stringify("
              + json.dumps(cases) + ".map(function (c) { return minutesLeft(c[0], c[1]); })));")
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_page_counts_the_desks_figure_down() -> None:
    came = 1_773_115_200_000  # when the frame with "about 6 minutes" arrived (ms)
    frame = {"state": "waiting", "position": 1, "expected_minutes": 6, "estimated_at": came}
    assert minutes_left_in_the_page([
        (frame, came),                      # as the desk said
        (frame, came + 59_999),             # within the first minute: still 6
        (frame, came + MINUTE),             # a minute later: 5
        (frame, came + 5 * MINUTE + 1),     # a moment into the last minute: 1
        (frame, came + 6 * MINUTE),         # the time is up: no figure
        (frame, came + 30 * MINUTE),
        (frame, came - MINUTE),             # a clock set back: never more than the desk said
        ({"state": "waiting", "position": 2, "expected_minutes": None}, came),  # no estimate
        ({"state": "waiting", "expected_minutes": 3}, came),  # from before estimated_at: as is
    ]) == [6, 6, 5, 1, None, None, 6, None, 3]
