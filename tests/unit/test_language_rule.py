"""The reply language follows the person (issue 12, item 4): one rule (actions/language.py),
read by Rasa through a ``language`` entity and by the action server through ``choose``.

Expected values are what a reader of each message would answer: in which language is this
person writing, or can't one tell?"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rasa.shared.nlu.training_data.message import Message

from actions.language import choose, from_text
from nlu_components.language_entity import LanguageEntityExtractor

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text", [
    "为什么还款了还借不了", "额度什么时候恢复？", "转人工",
    "OK 谢谢",  # a neutral Latin word does not make it English
    "Relend借不了款", "我的app打不开",  # names typed in Latin letters inside Chinese
    "我的limit没了",  # one English word in a Chinese sentence
    "wo yao shen su", "jiebei zenme huan bu liao",  # Chinese typed as pinyin
    "好",
])
def test_clearly_chinese(text: str) -> None:
    assert from_text(text) == "zh"


@pytest.mark.parametrize("text", [
    "Why can't I borrow after repaying?", "when is my limit back", "hi", "no thanks", "thx",
    "pls help", "strengths",
    "my 额度 is gone",  # one Chinese word in an English sentence
    "why is my 借呗 closed",  # a Chinese product name inside English
    "Ｈｅｌｌｏ",  # full-width letters
    "AP20260310-ABC234 status pls",  # an appeal reference inside English
])
def test_clearly_english(text: str) -> None:
    assert from_text(text) == "en"


@pytest.mark.parametrize("text", [
    "12345", "50,000", "👍", "🙏🙏", "?", "  ", "", "ok", "ＯＫ", "Relend", "app",
    "借呗", "借呗？", "花呗!!", "微粒贷",  # a product name alone is the same in both languages
    "AP20260310-ABC234",  # an appeal reference pasted alone
    "hao", "pending", "haha",  # one word that may be pinyin or English
    "额度 gone",  # one word of each
    "asdfghjkl", "jjjj",  # keyboard mash is no language
    "/request_human", '/affirm{"x": "why"}',  # button payloads
    "／restart", " /restart",  # a typed command, as the desk passes it on (full-width slash)
])
def test_messages_that_do_not_say(text: str) -> None:
    assert from_text(text) is None


@pytest.mark.parametrize(("locale", "text", "previous", "expected"), [
    ("zh-CN", "why can't I borrow", "zh", "en"),  # the person, not the app
    ("en-US", "为什么还款了还借不了", "en", "zh"),
    ("zh-CN", "my 借呗 limit is gone", "zh", "en"),
    ("en-US", "12345", "en", "en"),  # nothing to go on: the conversation's language
    ("zh-CN", "👍", "en", "en"),  # they wrote English before: an emoji keeps it
    ("en-US", "借呗", "zh", "zh"),
    ("en-US", "🙂", None, "en"),  # no conversation language yet: the app's locale
    ("zh_CN", "", None, "zh"),
    ("fr-FR", "123", None, "zh"),  # an unsupported locale is no locale: Chinese
    (None, "123", None, "zh"),
])
def test_choose(locale: str | None, text: str, previous: str | None, expected: str) -> None:
    assert choose(locale, text, previous) == expected


def _entities(text: str, metadata: dict | None = None) -> list[dict]:
    message = Message(data={"text": text, "metadata": metadata or {}})
    [done] = LanguageEntityExtractor().process([message])
    return done.get("entities") or []


def test_the_nlu_component_adds_the_language_the_message_is_written_in() -> None:
    # a Chinese-locale client writing English: the entity says English
    assert [(e["entity"], e["value"]) for e in _entities("hi there", {"locale": "zh-CN"})
            ] == [("language", "en")]
    assert [e["value"] for e in _entities("你好")] == ["zh"]
    assert _entities("12345", {"locale": "en-US"}) == []  # nothing: the slot keeps its value


def test_the_nlu_component_keeps_other_entities() -> None:
    message = Message(data={"text": "why is my 借呗 closed", "entities": [
        {"entity": "product", "value": "借呗", "start": 10, "end": 12}]})
    [done] = LanguageEntityExtractor().process([message])
    assert [(e["entity"], e["value"]) for e in done.get("entities")] == [
        ("product", "借呗"), ("language", "en")]


def test_rasa_sets_the_slot_from_the_entity_before_choosing_a_response() -> None:
    """The wiring: the component is in the pipeline and the slot maps from its entity."""
    config = yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))
    names = [c["name"] for c in config["pipeline"]]
    assert "nlu_components.language_entity.LanguageEntityExtractor" in names
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    mappings = domain["slots"]["language"]["mappings"]
    assert {"type": "from_entity", "entity": "language"} in mappings
    assert any(e == "language" or (isinstance(e, dict) and "language" in e)
               for e in domain["entities"])


def test_the_action_server_applies_the_same_rule() -> None:
    from actions.context import language_slots

    zh_app = {"borrower_id": "demo-posting", "locale": "zh-CN"}
    # English typed on a Chinese phone: English, whatever the conversation used before
    assert language_slots(zh_app, "why can't I borrow", {"language": "zh"}) == {"language": "en"}
    # an amount alone keeps the conversation's language: no change
    assert language_slots(zh_app, "20000", {"language": "en"}) == {}
    # a new session starts from the app's locale, not from the last session's language
    assert language_slots(zh_app, None, {"language": "en"}, session_start=True) == {
        "language": "zh"}
