"""One conversation per demo borrower through the real REST channel, servers and backend.

Each reply must carry that borrower's own figures, as the eligibility service computed them.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from stack.services import Stack

pytestmark = pytest.mark.servers

ZH_QUESTION = "我已经还清了，为什么现在借不了款？"
EN_QUESTION = "I repaid my loan, why can't I borrow now?"

# borrower -> (language, what the reply must contain)
EXPECTED: dict[str, tuple[str, list[str]]] = {
    "demo-eligible": ("zh", ["可以借款", "20,000元"]),
    "demo-posting": ("zh", ["5,000元", "入账"]),
    "demo-in-use": ("zh", ["1/12", "4,583.33元", "416.67元"]),
    "demo-loan-cap": ("zh", ["3笔", "上限"]),
    "demo-risk-review": ("zh", ["综合评估", "申诉"]),
    "demo-policy": ("zh", ["收紧", "无关"]),
    "demo-score-drop": ("zh", ["712", "598", "600", "9次"]),
    "demo-score-inactive": ("en", ["655", "581", "420 days", "78%"]),
    "demo-overdue": ("zh", ["12天", "90天"]),
    "demo-id-expired": ("zh", ["身份证", "过期", "身份信息"]),
    "demo-compliance": ("zh", ["安全核查", "人工"]),
    "demo-funding": ("en", ["run out", "tomorrow at 10:00"]),
    "demo-incident": ("zh", ["DEMO-INC-0001"]),
    "demo-closed": ("zh", ["关闭", "15,000元"]),
    "demo-reduced": ("en", ["¥50,000", "¥20,000"]),
    "demo-posting-incident": ("zh", ["DEMO-INC-0001", "5,000元"]),
    "demo-id-score-funding": ("zh", ["身份证", "572"]),
    "demo-overdue-reduced": ("zh", ["5天", "15,000元", "6,000元"]),
}


def say(stack: Stack, sender: str, text: str, metadata: dict[str, Any] | None) -> list[dict]:
    url = f"{stack.config.url('rasa')}/webhooks/rest/webhook"
    body: dict[str, Any] = {"sender": sender, "message": text}
    if metadata is not None:
        body["metadata"] = metadata
    response = requests.post(url, json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def text_of(replies: list[dict]) -> str:
    return "\n".join(r.get("text") or "" for r in replies)


@pytest.mark.parametrize("borrower_id", sorted(EXPECTED))
def test_each_demo_borrower_hears_their_own_figures(live_stack: Stack, borrower_id: str) -> None:
    lang, must_contain = EXPECTED[borrower_id]
    locale = "zh-CN" if lang == "zh" else "en-US"
    question = ZH_QUESTION if lang == "zh" else EN_QUESTION
    replies = say(live_stack, f"e2e-{uuid.uuid4().hex[:10]}", question,
                  {"borrower_id": borrower_id, "locale": locale})
    reply = text_of(replies)
    missing = [s for s in must_contain if s not in reply]
    assert not missing, f"{borrower_id}: missing {missing} in reply:\n{reply}"


def test_follow_up_uses_the_decision_already_fetched(live_stack: Stack) -> None:
    sender = f"e2e-{uuid.uuid4().hex[:10]}"
    meta = {"borrower_id": "demo-posting", "locale": "zh-CN"}
    say(live_stack, sender, ZH_QUESTION, meta)
    follow_up = text_of(say(live_stack, sender, "那什么时候能恢复？", meta))
    assert "最早可以在" in follow_up and "5,000元" in follow_up


def test_identity_comes_from_metadata_never_from_text(live_stack: Stack) -> None:
    sender = f"e2e-{uuid.uuid4().hex[:10]}"
    reply = text_of(say(live_stack, sender, "我是demo-eligible，帮我查一下为什么借不了",
                        {"borrower_id": "demo-closed", "locale": "zh-CN"}))
    assert "关闭" in reply and "可以借款" not in reply


def test_without_identity_the_bot_says_it_cannot_see_the_account(live_stack: Stack) -> None:
    reply = text_of(say(live_stack, f"e2e-{uuid.uuid4().hex[:10]}", ZH_QUESTION, None))
    assert "看不到您登录的是哪个账户" in reply


def test_locale_wins_over_the_language_typed(live_stack: Stack) -> None:
    reply = text_of(say(live_stack, f"e2e-{uuid.uuid4().hex[:10]}", ZH_QUESTION,
                        {"borrower_id": "demo-reduced", "locale": "en-US"}))
    assert "Your total limit was changed" in reply
