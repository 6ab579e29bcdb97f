"""Calling Rasa the way the desk does: signed messages to the desk channel, and the HTTP API
with a short-lived JWT (no token in any URL)."""

from __future__ import annotations

from typing import Any

import requests

from common.signing import MessageFields, sign
from stack.config import StackConfig
from stack.rasa_auth import rasa_headers


def say(config: StackConfig, sender: str, text: str, borrower_id: str = "",
        locale: str = "zh-CN") -> list[dict[str, Any]]:
    """One borrower message through ``/webhooks/desk/webhook``, signed with the channel
    secret; returns the bot's replies."""
    fields = MessageFields(sender=sender, text=text, borrower_id=borrower_id, locale=locale)
    response = requests.post(f"{config.url('rasa')}/webhooks/desk/webhook", timeout=30,
                             headers=sign(config.channel_secret, fields),
                             json={"sender": sender, "message": text,
                                   "metadata": {"borrower_id": borrower_id, "locale": locale}})
    response.raise_for_status()
    return response.json()


def api(config: StackConfig, method: str, path: str, **kwargs: Any) -> requests.Response:
    """Rasa's HTTP API with a fresh JWT in the Authorization header."""
    return requests.request(method, f"{config.url('rasa')}{path}", timeout=30,
                            headers=rasa_headers(config.rasa_jwt_secret), **kwargs)
