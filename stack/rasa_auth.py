"""Short-lived JWTs for Rasa's HTTP API (``rasa run --jwt-secret ... --jwt-method HS256``).

Rasa 3.6 (sanic-jwt) accepts ``Authorization: Bearer <JWT>`` whose payload is
``{"user": {"username": ..., "role": "admin"}}``; ``role: user`` would only reach the
conversation named ``username``. The token is never put in a URL, so it never lands in logs.
"""

from __future__ import annotations

import time

import jwt

DEFAULT_TTL_SECONDS = 300


def rasa_jwt(secret: str, *, username: str = "relend-stack", role: str = "admin",
             ttl: int = DEFAULT_TTL_SECONDS) -> str:
    """An HS256 JWT for Rasa's HTTP API, valid for ``ttl`` seconds."""
    if not secret:
        raise ValueError("no Rasa JWT secret")
    now = int(time.time())
    return jwt.encode({"user": {"username": username, "role": role}, "iat": now,
                       "exp": now + ttl}, secret, algorithm="HS256")


def rasa_headers(secret: str, *, username: str = "relend-stack") -> dict[str, str]:
    """``{"Authorization": "Bearer <fresh JWT>"}`` for one call to Rasa's HTTP API."""
    return {"Authorization": f"Bearer {rasa_jwt(secret, username=username)}"}
