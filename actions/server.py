"""``python -m actions.server``: the action server, answering only Rasa.

rasa-sdk's own server (``rasa run actions``) runs any action for whoever reaches its port, on
whatever tracker they send (say, slots claiming ``borrower_id=<someone else>``). This builds
the same Sanic app (``rasa_sdk.endpoint.create_app``) and refuses every request but
``GET /health`` unless it carries ``Authorization: Bearer <RELEND_ACTION_TOKEN>`` — the header
Rasa sends from ``action_endpoint.headers`` in endpoints.yml. It binds 127.0.0.1 unless told
otherwise (``--host`` or ``SANIC_HOST``), and in production (``RELEND_ENV`` unset or
``production``) refuses to start with a missing, short or public token. The sandbox default
token is ``relend-sandbox-action-token``.

Nothing happens at import time: the token is read and the actions are loaded in ``main()``.
"""

from __future__ import annotations

import argparse
import hmac
import logging
import os
import sys
from typing import TYPE_CHECKING

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


def create_app(token: str, actions_package: str = "actions") -> Sanic:
    """rasa-sdk's app with a guard in front of every route but ``/health``."""
    from rasa_sdk.endpoint import create_app as create_sdk_app
    from sanic import response

    if not token:
        raise ValueError("the action server needs a token")
    expected = token.encode("utf-8")
    app = create_sdk_app(actions_package, cors_origins="")

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
