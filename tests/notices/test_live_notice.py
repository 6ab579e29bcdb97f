"""A conversation-level check with every real server (``live_stack``: backend, desk, action
server, Rasa): demo-posting asks why they cannot borrow and hears the repayment is posting;
the back office posts it; the stack's notifier (``python -m notices run``, the feed) tells
them in their chat; the assistant's tracker holds what it told them; and the conversation goes on
normally -- asked again, the bot answers from the new decision."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import websockets

from stack.services import Stack
from tests.conftest import ROOT, run_coroutine
from tests.e2e.channel import api
from tests.e2e.test_handoff import Borrower

pytestmark = pytest.mark.servers

BACKOFFICE = {"Authorization": "Bearer relend-sandbox-backoffice-token"}


async def history(borrower: Borrower) -> list[dict[str, Any]]:
    async with websockets.connect(borrower.url, subprotocols=[
            "relend.v1", f"auth.{borrower.token}"]) as socket:
        json.loads(await socket.recv())  # session
        await socket.send(json.dumps({"type": "hello", "after": 0}))
        while (frame := json.loads(await asyncio.wait_for(socket.recv(), 10)))["type"] \
                != "history":
            pass
        return frame["messages"]


@pytest.fixture
def demo_posting(live_stack: Stack) -> Iterator[Borrower]:
    """The test posts demo-posting's repayment on the shared stack's backend: afterwards the
    backend is seeded again and the assistant forgets the decision it last fetched, so that
    the tests after it meet demo-posting as the seed left it."""
    borrower = Borrower(live_stack, "demo-posting")
    yield borrower
    subprocess.run([sys.executable, "-m", "eligibility", "seed"], cwd=ROOT,
                   env=live_stack.config.child_env(), check=True, stdout=subprocess.DEVNULL)
    conversation_id = getattr(borrower, "conversation_id", None)  # set once it spoke
    if conversation_id:
        api(live_stack.config, "POST", f"/conversations/{conversation_id}/tracker/events",
            json=[{"event": "slot", "name": "decision", "value": None}])


def test_the_posted_repayment_is_told_and_the_conversation_goes_on(
        live_stack: Stack, demo_posting: Borrower) -> None:
    config = live_stack.config
    borrower = demo_posting
    first = borrower.run("我已经还清了，为什么现在借不了款？")
    assert any("正在入账" in m["text"] for m in first), first
    paid = requests.get(f"{config.url('backend')}/v1/borrowers/demo-posting/repayments",
                        headers={"Authorization": f"Bearer {config.backend_token}"},
                        timeout=10).json()["repayments"][0]
    posted = requests.post(f"{config.url('backend')}/v1/backoffice/repayments/"
                           f"{paid['repayment_id']}/post", headers=BACKOFFICE, timeout=10)
    assert posted.status_code == 200, posted.text

    env = {**config.child_env(), "PYTHONPATH": str(ROOT), "RELEND_NOTICES_AMQP_URL": "",
           "RELEND_NOTICES_QUIET_HOURS": "off"}
    expected_day = "今天" if datetime.fromisoformat(paid["paid_at"].replace("Z", "+00:00")) \
        .astimezone(ZoneInfo("Asia/Shanghai")).date() \
        == datetime.now(ZoneInfo("Asia/Shanghai")).date() else "昨天"
    notice = (f"您{expected_day}还的5,000元已经入账。这笔借款的本金已全部还清。"
              "您现在可以借款了，可用额度5,000元。")
    # the stack's own notifier (python -m notices run, reading the feed every 2 s; the feed
    # hands a row out once it is 2 s old) delivers it: nobody runs it by hand
    deadline = time.monotonic() + 30
    while True:
        texts = [m["text"] for m in run_coroutine(history(borrower)) if m["sender"] == "bot"]
        if notice in texts or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert texts.count(notice) == 1, texts
    assert texts[-1] == notice

    tracker = api(config, "GET", f"/conversations/{borrower.conversation_id}/tracker").json()
    told = [e for e in tracker["events"] if e.get("event") == "bot"
            and (e.get("metadata") or {}).get("notice")]
    assert [e["text"] for e in told] == [notice]
    assert told[0]["metadata"]["notice"].startswith("repayment_posted:")

    after = borrower.run("那我现在可以借款了吗？")
    assert any("您现在可以借款" in m["text"] and "5,000元" in m["text"] for m in after), \
        [m["text"] for m in after]
    # and the notifier run again changes nothing
    subprocess.run([sys.executable, "-m", "notices", "once"], cwd=ROOT, env=env,
                   capture_output=True, text=True, timeout=60, check=True)
    texts = [m["text"] for m in run_coroutine(history(borrower)) if m["sender"] == "bot"]
    assert texts.count(notice) == 1
