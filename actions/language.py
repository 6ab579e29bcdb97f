"""Which language to answer in. One rule, used by Rasa's own responses and the actions alike:

1. The message's own language when it is clearly Chinese or clearly English (:func:`from_text`).
2. Otherwise (digits, emoji, "ok", a product name alone, a single pinyin-like word) the
   language the conversation already uses: the borrower's last clear message, or the app's
   locale until there is one (the action server sets it from the locale at session start).
3. With neither, the app's locale, else Chinese.

Rasa reads rule 1 through ``nlu_components.language_entity`` (a ``language`` entity and a
``from_entity`` slot mapping, so a response such as ``utter_greet`` is already in the
message's language); the action server applies :func:`choose` for every action call
(``actions/context.py``). docs/nlu-labelling.md, "Reply language", has the rule with examples.

The detection itself (:func:`from_text`, :func:`from_locale`) is ``common.language``, which
the support desk shares for the system messages it writes (it never imports the actions).
"""

from __future__ import annotations

from common.language import DEFAULT, SUPPORTED, from_locale, from_text

__all__ = ["DEFAULT", "SUPPORTED", "choose", "from_locale", "from_text"]


def choose(locale: object, text: object, previous: object) -> str:
    """The reply language for a message (the module's rule): the message's own language,
    else the conversation's, else the app's locale, else Chinese."""
    return (from_text(text) or (previous if previous in SUPPORTED else None)
            or from_locale(locale) or DEFAULT)  # type: ignore[return-value]
