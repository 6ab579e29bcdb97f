"""``python -m actions.server``: the action server, answering only Rasa.

rasa-sdk's own server (``rasa run actions``) runs any action for whoever reaches its port, on
whatever tracker they send (say, slots claiming ``borrower_id=<someone else>``). This builds
the same Sanic app as ``rasa_sdk.endpoint.create_app`` (same routes and answers) and refuses
every request but ``GET /health`` unless it carries ``Authorization: Bearer
<RELEND_ACTION_TOKEN>`` — the header Rasa sends from ``action_endpoint.headers`` in
endpoints.yml. Its executor reads the channel's context (identity and language,
actions/context.py) for every action call before the action runs and returns the slot
changes with the action's events: no separate action round trip per message.

It binds 127.0.0.1 unless told otherwise (``--host`` or ``SANIC_HOST``), and in production
(``RELEND_ENV`` unset or ``production``) refuses to start with a missing, short or public
token. The sandbox default token is ``relend-sandbox-action-token``.

Nothing happens at import time: the token is read and the actions are loaded in ``main()``.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import sys
import zlib
from typing import TYPE_CHECKING, Any

from rasa_sdk.executor import ActionExecutor

from actions.context import channel_slots, with_channel_slots

if TYPE_CHECKING:
    from sanic import Sanic
    from sanic.request import Request
    from sanic.response import HTTPResponse

TOKEN_VARIABLE = "RELEND_ACTION_TOKEN"
SANDBOX_TOKEN = "relend-sandbox-action-token"
OPEN_PATHS = frozenset({"/health"})

log = logging.getLogger("relend.actions.server")


def action_token() -> str:
    """``RELEND_ACTION_TOKEN``: the sandbox default in the sandbox; refused in production
    when missing, short or public (``InsecureSettings``)."""
    from common.settings import Mode, current_mode, refuse_insecure

    mode = current_mode()
    token = os.environ.get(TOKEN_VARIABLE, "")
    if not token and mode is Mode.SANDBOX:
        token = SANDBOX_TOKEN
    refuse_insecure("the action server", mode, {TOKEN_VARIABLE: token})
    if not token:
        raise ValueError(f"{TOKEN_VARIABLE} is empty")
    return token


class ChannelContextExecutor(ActionExecutor):
    """rasa-sdk's executor; every action sees (and returns) the channel's identity and
    language for the message it answers (actions/context.py)."""

    async def run(self, action_call: dict[str, Any]) -> dict[str, Any] | None:
        changes = channel_slots(action_call) if isinstance(action_call, dict) else {}
        if changes:
            tracker = action_call["tracker"]
            slots = tracker.get("slots") if isinstance(tracker.get("slots"), dict) else {}
            tracker["slots"] = {**slots, **changes}
        result = await super().run(action_call)
        if changes and isinstance(result, dict):
            result["events"] = with_channel_slots(list(result.get("events") or []), changes)
        return result


def create_sdk_app(actions_package: str) -> Sanic:
    """``rasa_sdk.endpoint.create_app`` (rasa-sdk 3.6.2) with ``ChannelContextExecutor``, no
    CORS origins and no auto-reload: the same routes, bodies and status codes."""
    from rasa_sdk import utils
    from rasa_sdk.endpoint import configure_cors
    from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException
    from sanic import Sanic, response

    app = Sanic("rasa_sdk", configure_logging=False)
    configure_cors(app, "")
    executor = ChannelContextExecutor()
    executor.register_package(actions_package)

    @app.get("/health")
    async def health(_request: Request) -> HTTPResponse:
        return response.json({"status": "ok"}, status=200)

    @app.post("/webhook")
    async def webhook(request: Request) -> HTTPResponse:
        if request.headers.get("Content-Encoding") == "deflate":
            action_call = json.loads(zlib.decompress(request.body))
        else:
            action_call = request.json
        if action_call is None:
            return response.json({"error": "Invalid body request"}, status=400)
        utils.check_version_compatibility(action_call.get("version"))
        try:
            result = await executor.run(action_call)
        except ActionExecutionRejection as exc:
            log.debug(exc)
            return response.json({"error": exc.message, "action_name": exc.action_name},
                                 status=400)
        except ActionNotFoundException as exc:
            log.error(exc)
            return response.json({"error": exc.message, "action_name": exc.action_name},
                                 status=404)
        return response.json(result, status=200)

    @app.get("/actions")
    async def actions(_request: Request) -> HTTPResponse:
        return response.json([{"name": name} for name in executor.actions], status=200)

    @app.exception(Exception)
    async def exception_handler(request: Request, exception: Exception) -> HTTPResponse:
        log.error("Exception occurred during execution of request %s", request,
                  exc_info=exception)
        return response.json({"error": str(exception), "request_body": request.json},
                             status=500)

    return app


def create_app(token: str, actions_package: str = "actions") -> Sanic:
    """The action server's app with a guard in front of every route but ``/health``."""
    from sanic import response

    if not token:
        raise ValueError("the action server needs a token")
    expected = token.encode("utf-8")
    app = create_sdk_app(actions_package)

    @app.middleware("request")
    async def require_rasa(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS and request.method in ("GET", "HEAD"):
            return None
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode("utf-8"),
                                                              expected):
            return None
        log.warning("refused %s %s from %s: no valid action token", request.method,
                    request.path, request.ip)
        return response.json({"error": "unauthorized",
                              "message": "Only the assistant may call the action server."},
                             status=401)

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actions.server",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("SANIC_HOST") or "127.0.0.1")
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--actions", default="actions", help="package the actions live in")
    args = parser.parse_args(argv)

    from rasa_sdk import utils
    from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
    from rasa_sdk.plugin import plugin_manager

    from actions.settings import settings
    from common.settings import InsecureSettings

    try:
        token = action_token()
        settings()  # the backend and desk tokens: refused now, not on a borrower's first turn
    except (InsecureSettings, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    utils.configure_colored_logging(logging.INFO)
    logging.getLogger(APPLICATION_ROOT_LOGGER_NAME).setLevel(logging.INFO)
    utils.update_sanic_log_level()
    app = create_app(token, args.actions)
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    log.info("action server on http://%s:%d (bearer token required)", args.host, args.port)
    app.run(args.host, args.port, workers=utils.number_of_sanic_workers())
    return 0


if __name__ == "__main__":
    sys.exit(main())
