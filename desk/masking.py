"""Mask identity-card, phone and bank-card numbers in anything agents see.

Keeps enough to recognise a number (first and last few digits) without exposing it.
"""

from __future__ import annotations

import re
from typing import Any

# order matters: the longest, most specific patterns first
_ID_CARD = re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?!\d)")  # 18-digit resident ID
_BANK_CARD = re.compile(r"(?<!\d)(\d{4})((?:[ -]?\d){8,11})((?:[ -]?\d){4})(?!\d)")  # 16-19 digits
_PHONE = re.compile(r"(?<!\d)(\+?86[ -]?)?(1[3-9]\d)[ -]?\d{4}[ -]?(\d{4})(?!\d)")


def mask_text(text: str) -> str:
    text = _ID_CARD.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)
    text = _PHONE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(3)}", text)
    return _BANK_CARD.sub(lambda m: f"{m.group(1)} **** **** {re.sub('[ -]', '', m.group(3))}",
                          text)


def mask(value: Any) -> Any:
    """Mask every string inside a JSON-like value."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, dict):
        return {k: mask(v) for k, v in value.items()}
    return value
