"""Which language to answer in: the app's locale when the channel sends one, else the
language of the borrower's latest message, else what the conversation used before."""

from __future__ import annotations

import re

SUPPORTED = ("zh", "en")
DEFAULT = "zh"
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# whole words only: letters inside an id or code ("AP20260310-ABC234") are not English
_LATIN_WORD = re.compile(r"\b[A-Za-z]{2,}\b")
# product names and codes that English speakers and Chinese speakers both type in Latin letters
_NEUTRAL_WORDS = {"app", "id", "ok", "relend", "jiebei", "huabei", "bug", "vip", "sms", "cny"}


def from_locale(locale: object) -> str | None:
    if not isinstance(locale, str) or not locale.strip():
        return None
    primary = locale.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in SUPPORTED else None


def from_text(text: object) -> str | None:
    """The language a message is written in, or None when it cannot tell (digits, emoji)."""
    if not isinstance(text, str) or text.startswith("/"):
        return None
    if _CJK.search(text):
        return "zh"
    words = [w.lower() for w in _LATIN_WORD.findall(text)]
    if any(w not in _NEUTRAL_WORDS for w in words):
        return "en"
    return None


def choose(locale: object, text: object, previous: object) -> str:
    return (from_locale(locale) or from_text(text)
            or (previous if previous in SUPPORTED else DEFAULT))  # type: ignore[return-value]
