"""The text catalog: one YAML file a language (``texts/<lang>.yml``) for everything a borrower
or an agent reads -- the assistant's replies, the desk's own messages, the pages' strings.

Shared by the action server (``actions/texts.py`` adds replies, buttons and the actions'
guard on top) and the support desk (its messages to borrowers, and ``GET /texts/<lang>.json``
for the pages), which are deployed apart: nothing here imports either of them.

Keys are nested in the files and used with dots (``reply.clarify``, ``page.chat.send``); a
text names what the code fills in as ``{field}``. Nothing is read at import time: a catalog is
read, flattened and kept the first time a text of its language is needed. A missing key, a
missing field or an unreadable catalog is a ``TextError``. See docs/texts.md.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

CATALOG_DIR = Path(__file__).resolve().parent.parent / "texts"
DEFAULT_LANGUAGE = "zh"  # the same as actions.language.DEFAULT (a test holds them together)


class TextError(Exception):
    """A text could not be produced: unknown key, missing field or unreadable catalog."""

    def __init__(self, key: str, lang: str, problem: str) -> None:
        super().__init__(f"text {key!r} ({lang}): {problem}")
        self.key = key
        self.lang = lang


def flatten(tree: Mapping[str, Any], lang: str, prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": "x"}}`` -> ``{"a.b": "x"}``; anything but text or a mapping is an error."""
    flat: dict[str, str] = {}
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, lang, key + "."))
        elif isinstance(value, str):
            flat[key] = value
        else:
            raise TextError(key, lang, f"is {type(value).__name__}, not text")
    return flat


@functools.cache
def catalog(lang: str) -> dict[str, str]:
    """The texts of ``lang`` by dotted key (``reply.clarify``), read once."""
    path = CATALOG_DIR / f"{lang}.yml"
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TextError("*", lang, f"cannot read {path}: {exc}") from exc
    if not isinstance(tree, Mapping):
        raise TextError("*", lang, f"{path} is not a mapping")
    return flatten(tree, lang)


@functools.cache
def languages() -> tuple[str, ...]:
    """The languages there is a catalog for (``texts/<lang>.yml``), looked up once."""
    return tuple(sorted(path.stem for path in CATALOG_DIR.glob("*.yml")))


def fields_of(template: str) -> set[str]:
    """The ``{names}`` a template needs."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


class _Fields(dict):
    def __missing__(self, name: str) -> str:
        raise KeyError(name)


def fill(template: str, key: str, lang: str, fields: Mapping[str, Any]) -> str:
    """``template`` with its ``{fields}`` filled in; a missing or malformed one is a
    ``TextError`` naming ``key`` and ``lang``."""
    try:
        return template.format_map(_Fields(fields))
    except KeyError as exc:
        raise TextError(key, lang, f"no value for the field {{{exc.args[0]}}}") from None
    except (ValueError, IndexError, AttributeError) as exc:
        raise TextError(key, lang, f"malformed template: {exc}") from None


def text(key: str, lang: str, **fields: Any) -> str:
    """The text ``key`` in ``lang`` (the default language when there is no catalog for
    ``lang``), with its fields filled in."""
    if lang not in languages():
        lang = DEFAULT_LANGUAGE
    template = catalog(lang).get(key)
    if template is None:
        raise TextError(key, lang, "no such key in the catalog")
    return fill(template, key, lang, fields)


def subtree(prefix: str, lang: str) -> dict[str, str]:
    """Every text of ``lang`` under ``prefix`` (``"page"``), keyed without it
    (``page.chat.send`` -> ``chat.send``)."""
    start = prefix + "."
    return {key[len(start):]: value for key, value in catalog(lang).items()
            if key.startswith(start)}
