"""Mask identity-card, phone and bank-card numbers in anything agents see.

Keeps enough to recognise a number (first and last few digits) without exposing it. The desk
also masks borrower text before it goes to the assistant and before it is logged.

How a number is found (``mask_text``):

* Normalise first, character by character (NFKC): full-width digits ``１３８``, superscripts and
  other decimal digits count as digits; spaces (incl. U+3000, NBSP), tabs, line breaks, control
  characters, ``-`` and the other dashes (``－`` ...), ``.``, ``·``, ``/`` and their full-width
  forms are separators; invisible format characters (zero-width space, soft hyphen, BOM,
  variation selectors) are ignored. Only the spans of masked numbers are replaced: the rest of
  the text is returned exactly as written.
* A *group* is a run of digits. Two groups belong to one number when at most
  ``_MAX_SEPARATORS`` separator characters stand between them **and both groups have at least
  three digits**. Phone, card and ID groupings (3-4-4, 4-3-4, 4-4-4-4-3, 6-8-4, 6-4-4-4 ...)
  qualify; dates and times (``2024-05-01 10:30``, ``2024/04/15``), decimals (``12,345.67``) and
  appeal ids (``AP-2024-000123``, 10 digits) break at their one- and two-digit parts.
* A number is then, in this order: a mainland mobile ``1[3-9]`` + 9 digits, optionally after
  ``86``/``0086`` (``138****5678``, the prefix kept as written); an 18-character resident ID
  (17 digits + X, or 18 digits with a plausible birth date) or a 15-digit old ID with a
  plausible birth date (first 6 and last 4 kept); a bank card of 16-19 digits
  (``6222 **** **** 7890``); one of these followed by mobile numbers (``138****5678
  139****5678``); otherwise, from 12 digits up, an unknown number (first 4 and last 4 kept,
  one ``*`` per hidden digit).
  Left alone: all-round amounts (``100000-200000``, ``3000 5000 8000``) and compact date
  ranges and timestamps (``20240501-20240531``, ``20240501 103000``).
* Finally a mobile number written with two-digit groups (``138 12 34 56 78``) is masked when its
  first group is the three-digit ``1[3-9]x`` and the same separator is used throughout.

Everything is linear in the length of the text: one regular expression with no nested
repetition finds the numeric stretches, and a single pass classifies their characters.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

_MAX_SEPARATORS = 6  # separator characters allowed between two groups of one number
_MIN_JOINED = 3  # both groups around a separator need this many digits to be joined
_MIN_GENERIC = 12  # unknown numbers from this many digits up are masked

# characters whose NFKC form is an ASCII digit but which are not decimal digits (\d):
# superscripts, subscripts, circled digits
_DIGIT_EXTRA = "\u00b2\u00b3\u00b9\u2070\u2074-\u2079\u2080-\u2089\u2460-\u2468\u24ea"
_DIGIT = rf"\d{_DIGIT_EXTRA}"
_SPACE = r"\s\x00-\x08\x0e-\x1b\x7f-\x9f"  # whitespace (U+3000, NBSP, \n, \t ...), controls
_DASH = (r"\-\u058a\u05be\u1806\u2010-\u2015\u207b\u208b\u2212\u2e3a\u2e3b"
         r"\ufe58\ufe63\uff0d")
_DOT = r".\u2024\ufe52\uff0e"
_SLASH = r"/\u2044\u2215\uff0f"
_MIDDLE_DOT = r"\u00b7\u0387\u2022\u2027\u2219\u22c5\u30fb\uff65"
_SEPARATOR = _SPACE + _DASH + _DOT + _SLASH + _MIDDLE_DOT
# invisible: soft hyphen, zero-width and bidi controls, BOM, variation selectors, keycap, tags
_INVISIBLE = (r"\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
              r"\ufe00-\ufe0f\u20e3\ufeff\U000e0001\U000e0020-\U000e007f")
_CHECK = "Xx\uff38\uff58"  # the check character of an ID number, ASCII or full width

# a digit and everything numeric-looking after it: one character class, no backtracking
_STRETCH = re.compile(f"[{_DIGIT}][{_DIGIT}{_SEPARATOR}{_INVISIBLE}{_CHECK}]*")

_DIGIT_KIND, _SEPARATOR_KIND, _INVISIBLE_KIND, _CHECK_KIND = range(4)
_SEPARATOR_KEYS = ((re.compile(f"[{_SPACE}]"), " "), (re.compile(f"[{_DASH}]"), "-"),
                   (re.compile(f"[{_DOT}]"), "."), (re.compile(f"[{_SLASH}]"), "/"),
                   (re.compile(f"[{_MIDDLE_DOT}]"), "·"))
_INVISIBLE_CHAR = re.compile(f"[{_INVISIBLE}]")


@lru_cache(maxsize=1024)
def _kind(char: str) -> tuple[int, str]:
    """Classify one character of a numeric stretch: (kind, normalised form)."""
    if char in _CHECK:
        return _CHECK_KIND, unicodedata.normalize("NFKC", char)
    if char.isdecimal():
        return _DIGIT_KIND, str(unicodedata.decimal(char))
    normal = unicodedata.normalize("NFKC", char)
    if len(normal) == 1 and "0" <= normal <= "9":
        return _DIGIT_KIND, normal
    if _INVISIBLE_CHAR.match(char):
        return _INVISIBLE_KIND, ""
    for pattern, key in _SEPARATOR_KEYS:
        if pattern.match(char):
            return _SEPARATOR_KIND, key
    return _SEPARATOR_KIND, " "  # not reached: the stretch only holds the classes above


@dataclass(slots=True)
class _Group:
    """A run of digits in the original text."""

    start: int
    end: int = 0  # just after the last digit (and any invisible characters after it)
    digits: list[str] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    linked: bool = False  # joined to the previous group by a few separators
    separator: str = ""  # the separators before it, normalised (" ", "-", ".", "/", "·")
    check: int | None = None  # index of an X directly after the digits


@dataclass(slots=True)
class _Span:
    start: int
    end: int
    text: str
    kind: str


def _groups(text: str, start: int, end: int) -> list[_Group]:
    groups: list[_Group] = []
    current: _Group | None = None
    separators: list[str] = []
    broken = False
    for index in range(start, end):
        kind, normal = _kind(text[index])
        if kind == _DIGIT_KIND:
            if current is None:
                current = _Group(start=index)
                current.linked = bool(groups and not broken and groups[-1].check is None
                                      and 0 < len(separators) <= _MAX_SEPARATORS)
                current.separator = "".join(separators)
                groups.append(current)
                separators, broken = [], False
            current.digits.append(normal)
            current.positions.append(index)
            current.end = index + 1
        elif kind == _SEPARATOR_KIND:
            current = None
            separators.append(normal)
        elif kind == _CHECK_KIND:
            if current is not None:
                current.check = index
            current, broken = None, True
        elif current is not None:  # invisible: neither ends a group nor counts as a separator
            current.end = index + 1  # (a keycap or variation selector goes with its digit)
    return groups


def _birth_date(yyyymmdd: str) -> bool:
    year, month, day = int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:])
    return 1800 <= year <= 2099 and 1 <= month <= 12 and 1 <= day <= 31


def _time(hhmm: str) -> bool:
    return int(hhmm[:2]) <= 23 and int(hhmm[2:4]) <= 59 and int(hhmm[4:] or 0) <= 59


def _recognise(text: str, groups: list[_Group], check_allowed: bool) -> _Span | None:
    """A mobile, ID or card number made of exactly these groups, masked; else None."""
    digits = "".join(d for g in groups for d in g.digits)
    size, start, last = len(digits), groups[0].start, groups[-1]
    if check_allowed and last.check is not None and size == 17:
        check = unicodedata.normalize("NFKC", text[last.check])
        return _Span(start, last.check + 1, f"{digits[:6]}********{digits[14:]}{check}", "id")
    for prefix in ("", "86", "0086"):
        rest = digits[len(prefix):]
        if (digits.startswith(prefix) and len(rest) == 11 and rest[0] == "1"
                and rest[1] in "3456789"):
            kept = text[start:_position(groups, len(prefix))]  # the prefix, as written
            return _Span(start, last.end, f"{kept}{rest[:3]}****{rest[-4:]}", "mobile")
    if size == 18 and digits[0] != "0" and _birth_date(digits[6:14]):
        return _Span(start, last.end, f"{digits[:6]}********{digits[14:]}", "id")
    if size == 15 and digits[0] != "0" and _birth_date("19" + digits[6:12]):
        return _Span(start, last.end, f"{digits[:6]}*****{digits[11:]}", "id")
    if 16 <= size <= 19:
        return _Span(start, last.end, f"{digits[:4]} **** **** {digits[-4:]}", "card")
    return None


def _position(groups: list[_Group], nth: int) -> int:
    """Index in the text of the nth digit of these groups."""
    for group in groups:
        if nth < len(group.digits):
            return group.positions[nth]
        nth -= len(group.digits)
    return groups[-1].end


def _ordinary(groups: list[_Group]) -> bool:
    """Round amounts side by side, or a compact date range or timestamp."""
    parts = ["".join(g.digits) for g in groups]
    if all(p[0] != "0" and p.endswith("00") for p in parts):
        return True
    if len(parts) != 2 or len(parts[0]) != 8 or not _birth_date(parts[0]):
        return False
    second = parts[1]
    return ((len(second) == 8 and _birth_date(second))
            or (len(second) in (4, 6) and _time(second)))


def _partition(text: str, groups: list[_Group]) -> list[_Span] | None:
    """Split a chain into a mobile, ID or card number followed by mobile numbers, if it is
    only those: every masked number keeps its last 4 digits and a mobile its first 3, so no
    8 visible digits stand side by side (``138****5678 139****5678``). Anything else, such as
    two cards in a row, is masked as one long number."""
    count = len(groups)
    mobiles: list[tuple[int, _Span] | None] = [None] * (count + 1)  # groups[i:] all mobiles
    reachable = [False] * count + [True]
    for i in range(count - 1, 0, -1):
        size, j = 0, i
        while size < 11 and j < count:
            size, j = size + len(groups[j].digits), j + 1
        if size == 11 and reachable[j]:
            span = _recognise(text, groups[i:j], check_allowed=False)
            if span is not None and span.kind == "mobile":
                mobiles[i], reachable[i] = (j, span), True
    first, size = None, 0
    for j in range(1, count):
        size += len(groups[j - 1].digits)
        if size > 19:
            break
        if size >= 11 and reachable[j]:
            span = _recognise(text, groups[:j], check_allowed=False)
            if span is not None:
                first = (j, span)  # the longest one wins
    if first is None:
        return None
    j, span = first
    spans = [span]
    while j < count:
        step = mobiles[j]
        assert step is not None
        j, span = step
        spans.append(span)
    return spans


def _mask_chain(text: str, groups: list[_Group]) -> list[_Span]:
    span = _recognise(text, groups, check_allowed=True)
    if span is not None and span.kind == "mobile":
        return [span]
    if len(groups) > 1 and _ordinary(groups):
        return []
    if span is not None:
        return [span]
    digits = "".join(d for g in groups for d in g.digits)
    if len(digits) >= 22:
        spans = _partition(text, groups)
        if spans:
            return spans
    if len(digits) >= _MIN_GENERIC:
        hidden = "*" * (len(digits) - 8)
        return [_Span(groups[0].start, groups[-1].end, f"{digits[:4]}{hidden}{digits[-4:]}",
                      "number")]
    return []


def _loose_mobiles(groups: list[_Group], masked: set[int]) -> list[_Span]:
    """Mobile numbers written with two-digit groups: ``138 12 34 56 78``."""
    spans, i = [], 0
    while i < len(groups):
        first = groups[i]
        if (i in masked or len(first.digits) != 3 or first.digits[0] != "1"
                or first.digits[1] not in "3456789"):
            i += 1
            continue
        size, j = 3, i + 1
        while (size < 11 and j < len(groups) and j not in masked and groups[j].linked
               and len(groups[j].digits) >= 2 and groups[j].separator == groups[i + 1].separator):
            size += len(groups[j].digits)
            j += 1
        if size == 11:
            digits = "".join(d for g in groups[i:j] for d in g.digits)
            spans.append(_Span(first.start, groups[j - 1].end,
                               f"{digits[:3]}****{digits[-4:]}", "mobile"))
            i = j
        else:
            i += 1
    return spans


def _mask_stretch(text: str, start: int, end: int) -> list[_Span]:
    groups = _groups(text, start, end)
    spans: list[_Span] = []
    masked: set[int] = set()
    chain_start = 0
    for index in range(1, len(groups) + 1):
        if index < len(groups):
            previous, group = groups[index - 1], groups[index]
            if (group.linked and len(previous.digits) >= _MIN_JOINED
                    and len(group.digits) >= _MIN_JOINED):
                continue
        chain = groups[chain_start:index]
        found = _mask_chain(text, chain) if sum(len(g.digits) for g in chain) >= 11 else []
        if found:
            spans.extend(found)
            masked.update(range(chain_start, index))
        chain_start = index
    if len(masked) < len(groups):
        spans.extend(_loose_mobiles(groups, masked))
    return spans


def mask_text(text: str) -> str:
    """The text with every mobile, ID, card and other long number masked; the rest as is."""
    spans: list[_Span] = []
    for match in _STRETCH.finditer(text):
        spans.extend(_mask_stretch(text, match.start(), match.end()))
    if not spans:
        return text
    spans.sort(key=lambda s: s.start)
    out, position = [], 0
    for span in spans:
        out.append(text[position:span.start])
        out.append(span.text)
        position = span.end
    out.append(text[position:])
    return "".join(out)


def mask(value: Any) -> Any:
    """Mask every string inside a JSON-like value."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    return value
