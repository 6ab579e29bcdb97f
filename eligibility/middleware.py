"""The body guard: request bodies are checked as bytes, before FastAPI parses them.

Two checks cannot wait for FastAPI: the size limit must hold while a streamed body is still
arriving, and the nesting depth must be known before any JSON parser recurses into it. So this
middleware reads each POST/PUT/PATCH body first. It does not answer by itself, though: a refused
body is replaced by an empty one and the refusal is kept in the request's state, and the routes'
dependencies raise it once the bearer token has been checked (``deps.accepted_body``; a request
that matches no route is handled alike by ``deps.refusal_without_route``). A caller without a
valid token thus learns nothing, not even whether its body would have been accepted.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ServiceError

# No request body of this API nests deeper than 3 levels (a sandbox fixture: object, list,
# object). Deeper bodies are refused before they are parsed, so no nesting can make the JSON
# parser (or anything after it) recurse into a RecursionError.
MAX_JSON_DEPTH = 32
# the key of the refusal in the request's state (``request.state.body_refusal``)
BODY_REFUSAL = "body_refusal"
_GUARDED_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyGuardMiddleware:
    """Reads POST/PUT/PATCH bodies up to ``max_body_bytes``; refuses what is too large, not
    ``application/json``, not UTF-8, nested too deep or not JSON (see the module docstring)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _GUARDED_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        body, refusal = await self._read(receive, headers)
        if body is None:
            return  # the client went away
        if refusal is not None:
            scope.setdefault("state", {})[BODY_REFUSAL] = refusal
            body = b""  # nothing refused reaches a parser
        await self.app(scope, _replay(body), send)

    async def _read(self, receive: Receive, headers: dict[str, str]
                    ) -> tuple[bytes | None, ServiceError | None]:
        """The body and its refusal, if any; (None, None) when the client disconnected."""
        limit = self.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and not declared.isdigit():
            return b"", ServiceError(400, "invalid_content_length",
                                     "Content-Length must be a whole number of bytes.")
        if declared is not None and int(declared) > limit:
            return b"", _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None, None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", _too_large(limit)  # the rest is never read
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        return body, _refusal(body, headers.get("content-type", ""))


def _refusal(body: bytes, content_type: str) -> ServiceError | None:
    if not content_type.lower().startswith("application/json"):
        return ServiceError(415, "unsupported_media_type",
                            "Send the body as application/json (UTF-8).")
    if json_depth_exceeds(body, MAX_JSON_DEPTH):
        return ServiceError(400, "json_too_deep",
                            f"The body nests arrays or objects more than {MAX_JSON_DEPTH} "
                            f"levels deep.", {"max_depth": MAX_JSON_DEPTH})
    try:
        parsed = json.loads(body.decode("utf-8"))
        # "\ud800"-style escapes decode to lone surrogates, which no UTF-8 store accepts
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except UnicodeError:
        return ServiceError(400, "invalid_encoding", "The body is not valid UTF-8.")
    except (ValueError, RecursionError) as exc:
        return ServiceError(400, "invalid_json", "The body is not valid JSON.",
                            {"problem": str(exc)[:200]})
    return None


def _too_large(limit: int) -> ServiceError:
    return ServiceError(413, "body_too_large", f"Request bodies are limited to {limit} bytes.",
                        {"limit_bytes": limit})


def _replay(body: bytes) -> Receive:
    """A ``receive`` that hands the app the body read here, then a disconnect."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether the arrays and objects in ``body`` nest deeper than ``limit``: one pass over the
    bytes, brackets inside strings ignored, no parsing (so it works on any nesting, valid JSON
    or not; what is not valid JSON is refused by the parser afterwards)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # cannot be deeper than the number of openers: the common case, in C
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSERS:
            depth -= 1
    return False
