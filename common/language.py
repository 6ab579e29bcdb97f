"""Which language a message is clearly written in: the detection both services share.

The reply-language rule (docs/nlu-labelling.md, "Reply language") is: the language of the
borrower's message when it is clearly Chinese or clearly English, else the conversation's
(the borrower's last clear message), else the app's locale, else Chinese. The action server
applies it through ``actions.language`` (which re-exports what is here and adds ``choose``);
the support desk through :func:`reply_language`, for the system messages it writes into a
conversation (a person joined or left). Pure functions, no I/O but the pinyin syllable list
read on first use; nothing here imports Rasa, the actions or the desk.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

SUPPORTED = ("zh", "en")
DEFAULT = "zh"
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# whole words only: letters inside an id or code ("AP20260310-ABC234") are not English
_LATIN_WORD = re.compile(r"\b[A-Za-z]{2,}\b")
# names and codes that speakers of both languages type as they are: they say nothing
_NEUTRAL_WORDS = frozenset({
    "app", "id", "ok", "okay", "relend", "jiebei", "huabei", "bug", "vip", "sms", "cny", "rmb",
    "haha", "hehe", "lol", "qq", "wechat", "alipay"})
# texting abbreviations with no vowel that are still English words
_TEXTING = frozenset({"thx", "pls", "plz", "ty", "txt", "msg", "bc", "idk", "pwd", "nvm", "ppl"})
# a keyboard mash ("asdfghjkl", "jjjj") is no language: no vowel, or six consonants in a row
_WORDLIKE = re.compile(r"(?=.*[aeiouy])(?!.*[b-df-hj-np-tv-xz]{6})", re.IGNORECASE)
_NEUTRAL_NAMES = re.compile("借呗|借贝|花呗|花贝|微粒贷|微立贷|信用贷|支付宝|微信|京东|白条")
# every toneless pinyin syllable (ü as v): a run of them is Chinese typed without a Chinese IME
SYLLABLES_FILE = Path(__file__).with_name("pinyin_syllables.txt")


@lru_cache(maxsize=1)
def _pinyin() -> frozenset[str]:
    lines = SYLLABLES_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@lru_cache(maxsize=4096)
def _is_pinyin(word: str) -> bool:
    """``word`` splits into pinyin syllables (``shensu``, ``zenme``, ``edu``)."""
    if not word:
        return True
    return any(word[:n] in _pinyin() and _is_pinyin(word[n:]) for n in range(6, 0, -1))


def from_locale(locale: object) -> str | None:
    if not isinstance(locale, str) or not locale.strip():
        return None
    primary = locale.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in SUPPORTED else None


def from_text(text: object) -> str | None:
    """The language a message is clearly written in, or None when it does not say.

    Chinese characters and English words are weighed (two characters to a word; product
    names, codes and keyboard mash do not count): the heavier one wins, a tie says nothing.
    Two or more Latin words that are all pinyin ("wo yao shen su") are Chinese; one alone
    ("hao", "pending") says nothing. Intent payloads and commands (``/request_human``,
    ``／restart``) say nothing."""
    if not isinstance(text, str):
        return None
    folded = unicodedata.normalize("NFKC", text)
    if folded.lstrip().startswith("/"):  # also "／restart": the desk escapes typed commands
        return None
    folded = _NEUTRAL_NAMES.sub(" ", folded)
    chinese = len(_CJK.findall(folded)) / 2
    words = [w for w in (m.lower() for m in _LATIN_WORD.findall(folded))
             if w not in _NEUTRAL_WORDS and (w in _TEXTING or _WORDLIKE.match(w))]
    english = float(len(words))
    if words and all(_is_pinyin(w) for w in words):
        chinese, english = (chinese + len(words), 0.0) if len(words) >= 2 else (chinese, 0.0)
    if chinese > english:
        return "zh"
    if english > chinese:
        return "en"
    return None


def reply_language(locale: object, newest_first: Iterable[object]) -> str:
    """The language to write to a borrower in: that of their latest clear message
    (``newest_first``: what they wrote, the newest first; messages that say nothing, such
    as emoji, digits or button payloads, are skipped), else the app's locale, else Chinese."""
    for message in newest_first:
        found = from_text(message)
        if found is not None:
            return found
    return from_locale(locale) or DEFAULT
