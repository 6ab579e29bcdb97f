"""Every text the custom actions send, from one catalog per language (``texts/<lang>.yml``).

Replies that rules send directly stay in domain.yml (Rasa renders those itself); everything
a custom action says is looked up here by key and filled with ``{name}`` fields: see
docs/texts.md. Reading the catalogs (once per language, never at import time), flattening
their keys and filling templates is ``common.texts``, shared with the support desk; this
module adds what only the actions need: the supported languages, replies with their buttons,
and ``guarded``.

A missing key, a missing field or an unreadable catalog is a ``TextError`` -- a bug in the
texts, never a problem of the borrower's data or of the backend. Tests let it fail loudly;
at run time ``guarded`` actions log it with its key and send the borrower a neutral reply.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from common.texts import CATALOG_DIR, TextError, catalog, fields_of, fill

from . import language

log = logging.getLogger("relend.actions.texts")

__all__ = ["CATALOG_DIR", "REPLY_BUTTONS", "Button", "TextError", "button", "catalog",
           "fields_of", "guarded", "render", "say", "text", "text_failed"]

Button = dict[str, str]

# which buttons go with each reply: (catalog key of the title under "button.", payload)
REPLY_BUTTONS: dict[str, list[tuple[str, str]]] = {
    "offer_human_after_misses": [("human_yes", "/request_human"), ("rephrase", "/deny")],
    "offer_human": [("human", "/request_human")],
    "no_identity": [("human", "/request_human")],
    "account_not_found": [("human", "/request_human")],
    "backend_unavailable": [("human", "/request_human")],
    "text_unavailable": [("human", "/request_human")],
    "app_troubleshooting": [("human", "/request_human")],
    "ask_appeal_confirmed": [("submit", "/affirm"), ("cancel", "/deny")],
    "appeal_failed": [("human", "/request_human")],
}


def text(key: str, lang: str, **fields: Any) -> str:
    """The text ``key`` in ``lang`` (the default language if ``lang`` is not supported)."""
    lang = lang if lang in language.SUPPORTED else language.DEFAULT
    template = catalog(lang).get(key)
    if template is None:
        raise TextError(key, lang, "no such key in the catalog")
    return fill(template, key, lang, fields)


def button(name: str, payload: str, lang: str) -> Button:
    return {"title": text(f"button.{name}", lang), "payload": payload}


def render(key: str, lang: str, **fields: Any) -> tuple[str, list[Button]]:
    """A whole reply (``reply.<key>``) with its buttons."""
    buttons = [button(name, payload, lang) for name, payload in REPLY_BUTTONS.get(key, [])]
    return text(f"reply.{key}", lang, **fields), buttons


def say(
    dispatcher: CollectingDispatcher,
    key: str,
    lang: str,
    *,
    extra_buttons: list[Button] | None = None,
    **fields: Any,
) -> None:
    reply, buttons = render(key, lang, **fields)
    dispatcher.utter_message(text=reply, buttons=[*buttons, *(extra_buttons or [])])


def text_failed(dispatcher: CollectingDispatcher, lang: str, error: TextError,
                where: str) -> list[EventType]:
    """Log a broken text as what it is and give the borrower a neutral reply."""
    log.error("text catalog error in %s: key %r (%s): %s", where, error.key, error.lang, error)
    try:
        say(dispatcher, "text_unavailable", lang)
    except TextError as worse:  # the catalog itself is unusable: nothing left to say
        log.error("text catalog unusable, the borrower got no reply: %s", worse)
    return [SlotSet("pending_offer", "human")]


Run = TypeVar("Run", bound=Callable[..., Awaitable[list[EventType]]])


def guarded(run: Run) -> Run:
    """For ``Action.run``: a ``TextError`` becomes a logged error and a neutral reply."""

    @functools.wraps(run)
    async def wrapper(self: Any, dispatcher: CollectingDispatcher, tracker: Any,
                      domain: Any) -> list[EventType]:
        try:
            return await run(self, dispatcher, tracker, domain)
        except TextError as exc:
            value = tracker.get_slot("language")
            lang = value if value in language.SUPPORTED else language.DEFAULT
            return text_failed(dispatcher, lang, exc, self.name())

    return wrapper  # type: ignore[return-value]
