"""Who is on the other end: signed tokens for borrowers (minted by the app) and agents.

A token is ``base64url(json claims).base64url(HMAC-SHA256)`` with an expiry. The app signs
borrower tokens with RELEND_APP_SECRET (the sandbox's demo login signs them here); agents get
theirs from the console login. Passwords are stored as scrypt hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any


class InvalidToken(Exception):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims: dict[str, Any], secret: str, ttl_seconds: int) -> str:
    body = _b64(json.dumps({**claims, "exp": int(time.time()) + ttl_seconds},
                           separators=(",", ":")).encode("utf-8"))
    mac = hmac.new(secret.encode("utf-8"), body.encode("ascii"), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(token: str, secret: str) -> dict[str, Any]:
    try:
        body, mac = token.split(".", 1)
        expected = hmac.new(secret.encode("utf-8"), body.encode("ascii"), hashlib.sha256).digest()
        if not hmac.compare_digest(_unb64(mac), expected):
            raise InvalidToken("bad signature")
        claims = json.loads(_unb64(body))
    except (ValueError, UnicodeError) as exc:
        raise InvalidToken("malformed token") from exc
    if not isinstance(claims, dict) or int(claims.get("exp", 0)) < time.time():
        raise InvalidToken("expired token")
    return claims


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    try:
        _scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    candidate = hashlib.scrypt(password.encode("utf-8"), salt=_unb64(salt), n=2**14, r=8, p=1)
    return hmac.compare_digest(candidate, _unb64(digest))
