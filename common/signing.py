"""Signing the borrower messages the support desk forwards to the assistant (stdlib only).

The desk knows who the borrower is (it verified their app token); Rasa's input channel
(``channels/desk_channel.py``) must not believe anybody else. So the desk signs every message
with ``RELEND_CHANNEL_SECRET`` and the channel refuses what it did not sign.

Signed form (version ``relend-desk-v1``): the UTF-8 bytes of these seven lines joined by
``\\n`` (no trailing newline)::

    relend-desk-v1
    <sender: the conversation id>
    <lowercase hex SHA-256 of the message text's UTF-8 bytes>
    <borrower_id, or empty>
    <locale, or empty>
    <timestamp: Unix seconds, decimal>
    <nonce: 16-128 characters of A-Z a-z 0-9 _ ->

The signature is the lowercase hex HMAC-SHA256 of those bytes with the secret. It travels in
three HTTP headers next to an otherwise ordinary REST-channel body
(``{"sender", "message", "metadata": {"borrower_id", "locale"}}``): ``X-Relend-Timestamp``,
``X-Relend-Nonce`` and ``X-Relend-Signature``. No field but the text may hold a control
character, so the lines cannot be confused with one another.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import re
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

VERSION = "relend-desk-v1"
TIMESTAMP_HEADER = "X-Relend-Timestamp"
NONCE_HEADER = "X-Relend-Nonce"
SIGNATURE_HEADER = "X-Relend-Signature"
DEFAULT_WINDOW_SECONDS = 60
DEFAULT_MAX_NONCES = 100_000

_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,128}\Z")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}\Z")
_SIGNATURE = re.compile(r"^[0-9a-f]{64}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidSignature(Exception):
    """A message the channel must refuse; ``reason`` says why (for logs, never the client)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MessageFields:
    """What the signature covers (the text only through its SHA-256)."""

    sender: str
    text: str
    borrower_id: str
    locale: str


def text_digest(text: str) -> str:
    """Lowercase hex SHA-256 of the text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical(fields: MessageFields, timestamp: int, nonce: str) -> bytes:
    """The exact bytes that are signed; raises ``ValueError`` on an unsignable field."""
    for name in ("sender", "borrower_id", "locale"):
        if _CONTROL.search(getattr(fields, name)):
            raise ValueError(f"{name} holds a control character")
    if not fields.sender:
        raise ValueError("sender is empty")
    if not _NONCE.match(nonce):
        raise ValueError("nonce must be 16-128 characters of A-Z a-z 0-9 _ -")
    if not 0 <= timestamp < 10**12:
        raise ValueError("timestamp out of range")
    lines = [VERSION, fields.sender, text_digest(fields.text), fields.borrower_id, fields.locale,
             str(timestamp), nonce]
    return "\n".join(lines).encode("utf-8")


def signature(secret: str, fields: MessageFields, timestamp: int, nonce: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``canonical(...)`` with ``secret``."""
    if not secret:
        raise ValueError("no channel secret")
    return hmac.new(secret.encode("utf-8"), canonical(fields, timestamp, nonce),
                    hashlib.sha256).hexdigest()


def sign(secret: str, fields: MessageFields, *, timestamp: int | None = None,
         nonce: str | None = None) -> dict[str, str]:
    """The headers that make ``fields`` acceptable to the channel (fresh nonce, now)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = nonce or secrets.token_urlsafe(18)
    return {TIMESTAMP_HEADER: str(timestamp), NONCE_HEADER: nonce,
            SIGNATURE_HEADER: signature(secret, fields, timestamp, nonce)}


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # a plain dict: look the name up case-insensitively
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    if not value:
        raise InvalidSignature(f"missing {name}")
    return value.strip()


class NonceCache:
    """Nonces already accepted, each kept until its message's timestamp leaves the window.

    Bounded: beyond ``max_entries`` live nonces, new messages are refused (fail closed)
    rather than forgetting a nonce that could then be replayed. Only messages with a valid
    signature are recorded, so nobody without the secret can fill it. Thread-safe.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_NONCES) -> None:
        self.max_entries = max_entries
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def _prune(self, now: float) -> None:
        while self._heap and self._heap[0][0] < now:
            expires, nonce = heapq.heappop(self._heap)
            if self._expiry.get(nonce) == expires:
                del self._expiry[nonce]

    def add(self, nonce: str, expires: float, now: float) -> None:
        """Remember ``nonce`` until ``expires``; raise ``InvalidSignature`` if already seen."""
        with self._lock:
            self._prune(now)
            if nonce in self._expiry:
                raise InvalidSignature("nonce already used (replay)")
            if len(self._expiry) >= self.max_entries:
                raise InvalidSignature("replay cache full")
            self._expiry[nonce] = expires
            heapq.heappush(self._heap, (expires, nonce))


class Verifier:
    """Checks a signed message: signature, timestamp within ``window`` seconds, new nonce."""

    def __init__(self, secret: str, *, window: int = DEFAULT_WINDOW_SECONDS,
                 nonces: NonceCache | None = None) -> None:
        if not secret:
            raise ValueError("no channel secret")
        self._key = secret.encode("utf-8")
        self.window = window
        self.nonces = nonces if nonces is not None else NonceCache()

    def verify(self, fields: MessageFields, headers: Mapping[str, str], *,
               now: float | None = None) -> None:
        """Return if the desk signed exactly these fields just now; else raise
        ``InvalidSignature``. The nonce is recorded only once everything else holds."""
        now = time.time() if now is None else now
        raw_timestamp = _header(headers, TIMESTAMP_HEADER)
        nonce = _header(headers, NONCE_HEADER)
        given = _header(headers, SIGNATURE_HEADER).lower()
        if not _TIMESTAMP.match(raw_timestamp):
            raise InvalidSignature("malformed timestamp")
        if not _SIGNATURE.match(given):
            raise InvalidSignature("malformed signature")
        timestamp = int(raw_timestamp)
        if abs(now - timestamp) > self.window:
            raise InvalidSignature("timestamp outside the window")
        try:
            signed = canonical(fields, timestamp, nonce)
        except ValueError as exc:
            raise InvalidSignature(str(exc)) from None
        expected = hmac.new(self._key, signed, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, given):
            raise InvalidSignature("signature mismatch")
        # remembered until no timestamp check could accept the message again
        self.nonces.add(nonce, expires=timestamp + self.window + 1, now=now)
