"""The desk's pages (in-app chat, agent console, supervisors' insights), their static files
and texts, and the health check."""

import hashlib
import json
import logging
import os
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from common import texts

from ..deps import DbSession
from ..service import DeskError

log = logging.getLogger("relend.desk")

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter()


@router.get("/health")
def health(session: DbSession) -> dict[str, str]:
    session.execute(select(1))
    return {"status": "ok"}


@router.get("/")
@router.get("/chat")
def chat_page() -> FileResponse:
    return FileResponse(STATIC / "chat.html")


@router.get("/console")
def console_page() -> FileResponse:
    return FileResponse(STATIC / "console.html")


@router.get("/console/insights")
def insights_page() -> FileResponse:
    """The insights page (supervisors: its API says who may read the figures)."""
    return FileResponse(STATIC / "insights.html")


@router.get("/texts/{lang}.json")
def page_texts(lang: str, request: Request) -> Response:
    """Every string of the pages in ``lang``: the catalog's ``page.*`` keys without ``page.``
    (``chat.send``, ``console.error.forbidden``), as one flat JSON object. The pages load it
    before they start (desk/static/common.js). Revalidated by its ETag."""
    if lang not in texts.languages():
        raise DeskError(404, "not_found", "No texts for this language.")
    try:
        page = texts.subtree("page", lang)
    except texts.TextError as exc:
        log.error("text catalog error serving the pages' texts: %s", exc)
        raise DeskError(500, "texts_unavailable", "The text catalog cannot be read.") from exc
    body = json.dumps(page, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": tag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


class StaticAssets(StaticFiles):
    """``desk/static`` at ``/static``, answering as the desk's routes do: GET only, and a name
    that is no file there is the desk's JSON 404 (a folder or a nested path gets the plain 404
    of a path no route serves)."""

    def __init__(self) -> None:
        super().__init__(directory=STATIC)

    async def get_response(self, path: str, scope: Scope) -> Response:
        if scope["method"] != "GET":
            raise HTTPException(405, headers={"Allow": "GET"})
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code == 404 and os.sep not in path and path != ".":
                raise DeskError(404, "not_found", "No such file.") from exc
            raise
