"""Issue 12: the bot knows an appeal already filed against this decision -- here or through
another channel -- and says so instead of offering a new one.

The appeal is filed straight at the backend, as the app or a phone agent would file it (no
conversation knows it); the borrower then asks the chat why they cannot borrow. The answer
names the appeal (its reference, in the borrower's language) and offers no "file
an appeal" button. Expected words are the catalog's (texts/<lang>.yml), checked by hand.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from qa.live import put_fixture
from stack.config import StackConfig
from tests.browser.helpers import open_chat_as, say

# explain.under_review: an appeal still waiting for its decision
CASES = {
    "zh-CN": {"ask": "我已经还清了，为什么现在借不了款？",
              "named": ["您已经就这个结果提交了申诉（编号 {appeal_id}）", "不需要重复提交"],
              "appeal_button": "提交申诉"},
    "en-US": {"ask": "I paid everything back, why can't I borrow now?",
              "named": ["You have already appealed this (ref. {appeal_id})",
                        "so there is no need to file it again"],
              "appeal_button": "File an appeal"},
}


def file_appeal_elsewhere(config: StackConfig, borrower_id: str) -> str:
    """File an appeal through the backend's own API (channel "app"); its id."""
    headers = {"Authorization": f"Bearer {config.backend_token}"}
    backend = config.url("backend")
    decision = requests.get(f"{backend}/v1/borrowers/{borrower_id}/eligibility",
                            headers=headers, timeout=15)
    assert decision.ok, decision.text
    filed = requests.post(f"{backend}/v1/appeals", timeout=15,
                          headers={**headers, "Idempotency-Key": f"browser-{uuid.uuid4().hex}"},
                          json={"borrower_id": borrower_id,
                                "decision_id": decision.json()["decision_id"],
                                "statement": "I have always repaid on time.", "channel": "app"})
    assert filed.status_code == 201, filed.text
    return str(filed.json()["appeal_id"])


@pytest.mark.parametrize("locale", sorted(CASES))
def test_an_appeal_filed_in_the_app_is_named_in_the_chat(new_page, desk_url, live_stack,  # type: ignore[no-untyped-def]
                                                         shots, locale: str) -> None:
    case = CASES[locale]
    borrower_id = f"qa-h12-memory-{uuid.uuid4().hex[:8]}"
    # a failed periodic risk review: appealable, so the answer would offer an appeal
    put_fixture(live_stack, borrower_id,
                {"reviews": [{"days_ago": 5, "passed": False, "next_review_in_days": 25}]})
    appeal_id = file_appeal_elsewhere(live_stack, borrower_id)

    chat = new_page("phone")
    open_chat_as(chat, desk_url, borrower_id, locale)

    answer = "\n".join(say(chat, case["ask"]))
    for words in case["named"]:
        assert words.format(appeal_id=appeal_id) in answer, answer
    buttons = chat.locator("[data-testid=quick-reply]:not([disabled])").all_inner_texts()
    assert case["appeal_button"] not in buttons, buttons
    chat.screenshot(path=str(shots / f"chat-appeal-named-{locale[:2]}.png"))
