"""The assistant's only input channel: borrower messages the support desk signed.

``POST /webhooks/desk/webhook`` takes the REST channel's body (``{"sender", "message",
"metadata": {"borrower_id", "locale"}}``) plus the desk's signature headers (format in
``common/signing.py``) and answers like the REST channel: a JSON list of the bot's messages
(``recipient_id``, ``text``, ``buttons``, ...). A message whose signature is missing or wrong,
whose timestamp is outside the window, or whose nonce was already used gets ``401`` and never
reaches Rasa: nothing is written to any tracker. The metadata the actions see holds only the
signed ``borrower_id`` and ``locale``; anything else in the request is dropped.

The secret is ``RELEND_CHANNEL_SECRET`` (sandbox default ``relend-sandbox-channel-secret``);
in production (``RELEND_ENV`` unset or ``production``) a missing, short or public secret stops
Rasa at start-up. ``credentials.yml`` may set ``window_seconds`` (default 60).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.exceptions import InvalidUsage
from sanic.request import Request
from sanic.response import HTTPResponse

from common.settings import Mode, current_mode, refuse_insecure
from common.signing import DEFAULT_WINDOW_SECONDS, InvalidSignature, MessageFields, Verifier

log = logging.getLogger(__name__)

SECRET_VARIABLE = "RELEND_CHANNEL_SECRET"
SANDBOX_SECRET = "relend-sandbox-channel-secret"


def _refused(status: int, code: str, message: str) -> HTTPResponse:
    return response.json({"error": {"code": code, "message": message}}, status=status)


def _fields(body: Any) -> MessageFields | None:
    """The signed fields of a request body, or None when it is not a well-formed message."""
    if not isinstance(body, dict):
        return None
    sender, text, metadata = body.get("sender"), body.get("message"), body.get("metadata")
    metadata = {} if metadata is None else metadata
    if not isinstance(sender, str) or not sender or not isinstance(text, str) \
            or not isinstance(metadata, dict):
        return None
    borrower_id, locale = metadata.get("borrower_id") or "", metadata.get("locale") or ""
    if not isinstance(borrower_id, str) or not isinstance(locale, str):
        return None
    return MessageFields(sender=sender, text=text, borrower_id=borrower_id, locale=locale)


class DeskInput(InputChannel):
    """Rasa's REST channel, but only for messages signed with ``RELEND_CHANNEL_SECRET``."""

    @classmethod
    def name(cls) -> str:
        return "desk"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        credentials = credentials or {}
        return cls(window_seconds=int(credentials.get("window_seconds")
                                      or DEFAULT_WINDOW_SECONDS))

    def __init__(self, secret: str | None = None, *,
                 window_seconds: int = DEFAULT_WINDOW_SECONDS) -> None:
        mode = current_mode()
        if secret is None:  # from the environment; unset or empty: the sandbox value, there
            secret = os.environ.get(SECRET_VARIABLE, "")
            if not secret and mode is Mode.SANDBOX:
                secret = SANDBOX_SECRET
        refuse_insecure("Rasa's desk channel", mode, {SECRET_VARIABLE: secret})
        if not secret:
            raise ValueError(f"{SECRET_VARIABLE} is empty: the desk channel cannot verify "
                             "anything")
        self.verifier = Verifier(secret, window=window_seconds)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        desk_webhook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

        @desk_webhook.route("/", methods=["GET"])
        async def health(_request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @desk_webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = request.json
            except InvalidUsage:  # not JSON
                body = None
            fields = _fields(body)
            if fields is None:
                return _refused(400, "bad_request",
                                "Expected {sender, message, metadata: {borrower_id, locale}}.")
            try:
                self.verifier.verify(fields, request.headers)
            except InvalidSignature as exc:
                log.warning("desk channel refused a message for conversation %r: %s",
                            fields.sender[:80], exc.reason)
                return _refused(401, "unauthorized", "The desk's signature is missing or "
                                                     "invalid.")
            metadata = {key: value for key, value in (("borrower_id", fields.borrower_id),
                                                      ("locale", fields.locale)) if value}
            collector = CollectingOutputChannel()
            try:
                await on_new_message(UserMessage(fields.text, collector, fields.sender,
                                                 input_channel=self.name(),
                                                 metadata=metadata))
            except asyncio.CancelledError:
                log.error("desk channel: the message for %r timed out", fields.sender[:80])
            except Exception:
                log.exception("desk channel: handling the message for %r failed",
                              fields.sender[:80])
            return response.json(collector.messages)

        return desk_webhook
