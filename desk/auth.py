"""Who is on the other end: JWTs for borrowers (signed by the app) and agents (console login).

Tokens are HS256 JWTs (PyJWT) with an audience per kind, so a borrower token can never pass
as an agent's and a refresh token never as an access token; ``exp``/``iat`` are checked, and
``kid`` names the key so a secret can be rotated (the previous one keeps verifying until its
tokens expire). Agent tokens also carry the agent's ``ver``: the desk compares it with the
agents table on every use, so logging out (which bumps it) revokes them at once.
Passwords are stored as scrypt hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable
from typing import Any

import jwt

BORROWER = "relend-borrower"
AGENT = "relend-agent"
AGENT_REFRESH = "relend-agent-refresh"
ALGORITHM = "HS256"
LEEWAY_SECONDS = 10
# what a borrower token may claim; \Z, not $: "$" also matches before a final newline, which
# must not pass as an id
BORROWER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
LOCALE = re.compile(r"^(zh|en)(-[A-Za-z]{2})?\Z")


class InvalidToken(Exception):
    pass


def key_id(secret: str) -> str:
    """A public name for a secret (a hash prefix: reveals nothing usable)."""
    return hashlib.sha256(b"relend-kid:" + secret.encode("utf-8")).hexdigest()[:12]


def sign(claims: dict[str, Any], secret: str, audience: str, ttl_seconds: int) -> str:
    now = int(time.time())
    payload = {**claims, "aud": audience, "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(payload, secret, algorithm=ALGORITHM, headers={"kid": key_id(secret)})


def verify(token: str, secrets_: str | Iterable[str], audience: str) -> dict[str, Any]:
    """The claims of a valid token of this audience; ``secrets_`` is the current secret,
    or the current one followed by those still accepted during a rotation."""
    keys = [secrets_] if isinstance(secrets_, str) else [s for s in secrets_ if s]
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = next((k for k in keys if key_id(k) == kid), None)
        if key is None:
            raise InvalidToken("unknown key")
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=audience,
                            leeway=LEEWAY_SECONDS, options={"require": ["exp", "iat", "aud"]})
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    if not isinstance(claims, dict):
        raise InvalidToken("malformed token")
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${_b64(salt)}${_b64(digest)}"


# compared against when the username does not exist, so that a failed login takes the same
# time whether or not the name is real
UNKNOWN_USER_HASH = "scrypt$" + _b64(b"relend-no-such-agent") + "$" + _b64(b"\0" * 64)


def check_password(password: str, stored: str) -> bool:
    try:
        _scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    candidate = hashlib.scrypt(password.encode("utf-8"), salt=_unb64(salt), n=2**14, r=8, p=1)
    return hmac.compare_digest(candidate, _unb64(digest))
