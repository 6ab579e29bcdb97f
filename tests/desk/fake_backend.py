"""A stand-in for the eligibility backend's sandbox route ``GET /v1/sandbox/demo-borrowers``
(behind the service token), with the demo borrowers the desk tests use. The live tests serve
it with uvicorn (``--app-dir tests/desk fake_backend:app``); the in-process tests put the same
list straight on the app (desk_support.FixedDemoDirectory)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse

BACKEND_TOKEN = "test-backend-token"
DEMO_BORROWERS: list[dict[str, str]] = [
    {"borrower_id": "demo-eligible", "name": "王芳",
     "situation": "Can borrow: all 20,000 available", "locale": "zh-CN"},
    {"borrower_id": "demo-score-inactive", "name": "Alex Chen",
     "situation": "Score 655 -> 581: 420 days inactive, debt ratio 0.78", "locale": "en-US"},
    {"borrower_id": "demo-funding", "name": "Sam Lee",
     "situation": "Funding partner's daily quota used up", "locale": "en-US"},
]

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/v1/sandbox/demo-borrowers", response_model=None)
def demo_borrowers(authorization: str = Header("")) -> dict[str, Any] | JSONResponse:
    if authorization != f"Bearer {BACKEND_TOKEN}":
        return JSONResponse({"error": {"code": "unauthorized"}}, status_code=401)
    return {"borrowers": DEMO_BORROWERS}
