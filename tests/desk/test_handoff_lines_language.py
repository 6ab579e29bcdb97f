"""The desk's own lines (a person joined, the person left, the assistant is down and a person
will take over, the assistant is back) follow the reply-language rule
(issue 12, item 4; docs/nlu-labelling.md "Reply language"): the language of the borrower's
latest message that is clearly Chinese or English, else the app's locale -- not the locale
alone, and not the case's language when the borrower has since written in the other one.

The expected lines are the catalog's words (texts/*.yml ``desk.agent_*``, ``desk.assistant_*``)
for the demo agent 李娜 Li Na, written out here."""

from __future__ import annotations

import pytest
from desk_support import ASSISTANT_DOWN_EN, ASSISTANT_DOWN_ZH, AgentApi, FakeRasa, hand_off
from fastapi.testclient import TestClient

from common.language import reply_language

pytestmark = pytest.mark.timeout(30)

LINES = {
    "zh": [("system", "人工客服 李娜 已加入对话"),
           ("system", "人工客服已结束服务，智能助手继续为您服务")],
    "en": [("system", "Li Na from our support team has joined the chat"),
           ("system", "Our colleague has left the chat. The assistant is back to help you")],
}


def lines_of(messages: list[dict]) -> list[tuple[str, str]]:
    return [(m["sender"], m["text"]) for m in messages if m["sender"] == "system"]


def join_and_leave(client: TestClient, chat, agent: AgentApi, case_language: str) -> None:
    """The bot hands off (in ``case_language``), an agent claims the case and returns it."""
    case_id = hand_off(client, chat.conversation_id, language=case_language).json()["case_id"]
    assert agent.claim(case_id).status_code == 200
    assert agent.post(f"/api/agent/cases/{case_id}/return", {}).status_code == 200


@pytest.mark.parametrize(("locale", "written", "case_language", "expected"), [
    # an English app, a borrower writing Chinese: Chinese lines (the bot answered in Chinese)
    ("en-US", ["我的额度为什么没了？"], "zh", "zh"),
    # a Chinese app, a borrower writing English
    ("zh-CN", ["why can't I borrow any more?"], "en", "en"),
    # the latest clear message decides: English first, then Chinese, then an emoji and digits
    ("en-US", ["why can't I borrow", "我想找人工客服", "👍", "20000"], "zh", "zh"),
    # nothing clear (an emoji, a product name alone, a payload): the app's locale, even where
    # the case says otherwise
    ("en-US", ["👍", "借呗", "/request_human"], "zh", "en"),
    ("zh-CN", ["🙏🙏", "ok"], "en", "zh"),
    # nothing written at all: the locale
    ("en-US", [], "en", "en"),
])
def test_the_join_and_leave_lines_follow_the_borrowers_language(
        client: TestClient, open_chat, agents: list[AgentApi], locale: str,
        written: list[str], case_language: str, expected: str):
    chat = open_chat("b-1002", locale)
    for text in written:
        chat.turn(text)
    join_and_leave(client, chat, agents[0], case_language)

    assert lines_of(open_chat("b-1002", locale).history(after=0)) == LINES[expected]


def test_what_the_borrower_writes_while_waiting_counts(client: TestClient, open_chat,
                                                       agents: list[AgentApi]):
    chat = open_chat("b-1002", "zh-CN")
    chat.turn("我的额度为什么没了？")
    case_id = hand_off(client, chat.conversation_id, language="zh").json()["case_id"]
    chat.message("hello, is anyone there? I need help with my limit")  # waiting: no bot turn
    assert agents[0].claim(case_id).status_code == 200

    assert lines_of(open_chat("b-1002", "zh-CN").history(after=0)) == LINES["en"][:1]


def test_the_agents_own_words_do_not_count(client: TestClient, open_chat,
                                           agents: list[AgentApi]):
    chat = open_chat("b-1002", "en-US")
    chat.turn("👍")
    case_id = hand_off(client, chat.conversation_id, language="en").json()["case_id"]
    assert agents[0].claim(case_id).status_code == 200
    agents[0].post(f"/api/agent/cases/{case_id}/messages", {"text": "您好，我来帮您看看"})
    assert agents[0].post(f"/api/agent/cases/{case_id}/return", {}).status_code == 200

    assert lines_of(open_chat("b-1002", "en-US").history(after=0)) == LINES["en"]


BACK = {"zh": "助手已经恢复，正在回复您刚才的消息。",
        "en": "The assistant is back and is answering your message now."}


@pytest.mark.parametrize(("locale", "written", "expected"), [
    ("en-US", "我的额度为什么没了？", "zh"),
    ("zh-CN", "Where is my money?", "en"),
    ("en-US", "👍", "en"),
    ("zh-CN", "👍", "zh"),
])
def test_the_waiting_and_back_lines_follow_the_borrowers_language(
        client: TestClient, open_chat, fake_rasa: FakeRasa, locale: str, written: str,
        expected: str):
    chat = open_chat("b-2002", locale)
    fake_rasa.failure = "connect"
    *_typing, notice = chat.rest_of_turn(chat.message(written))
    assert (notice["sender"], notice["text"]) == (
        "system", {"zh": ASSISTANT_DOWN_ZH, "en": ASSISTANT_DOWN_EN}[expected])

    fake_rasa.failure = None
    client.portal.call(client.app.state.desk.turns.sweep)  # the assistant is back
    back = chat.socket.receive_json()
    assert (back["sender"], back["text"]) == ("system", BACK[expected])


# --- the rule itself, as the desk calls it (common/language.py) ---------------------------------


@pytest.mark.parametrize(("locale", "newest_first", "expected"), [
    ("en-US", ["我的额度为什么没了"], "zh"),
    ("zh-CN", ["my limit is gone"], "en"),
    ("en-US", ["😀", "20000", "我要转人工"], "zh"),   # skips what says nothing
    ("zh-CN", ["I need a person", "我要转人工"], "en"),  # the newest clear one wins
    ("en-US", ["😀"], "en"),
    ("zh_CN", ["😀", "/request_human", "AP20260310-ABC234"], "zh"),
    ("fr-FR", ["😀"], "zh"),   # a locale without a catalog: Chinese
    (None, [], "zh"),
    ("en", ["wo yao shen su"], "zh"),  # pinyin typed without a Chinese keyboard
])
def test_reply_language(locale, newest_first, expected) -> None:
    assert reply_language(locale, newest_first) == expected
