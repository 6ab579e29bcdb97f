"""The two pages (in-app chat, agent console), their static files, and the health check."""

import os
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from ..deps import DbSession
from ..service import DeskError

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
