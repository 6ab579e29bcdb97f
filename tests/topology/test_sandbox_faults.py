"""The backend's sandbox fault switch (eligibility/sandbox.py), around a stand-in app: what the
topology's fault tests rely on, and that it is inert outside the sandbox."""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from eligibility.sandbox import FAULTS_PATH, SandboxFaultsMiddleware

TOKEN = "back-office-token-for-this-test"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DECISION = "/v1/borrowers/qa-1/eligibility"


async def decision(_request: Request) -> JSONResponse:
    return JSONResponse({"eligible": True})


def client(sandbox: bool = True) -> TestClient:
    app = Starlette(routes=[Route(DECISION, decision), Route("/health", decision)])
    return TestClient(SandboxFaultsMiddleware(app, backoffice_token=TOKEN, sandbox=sandbox))


def test_faults_need_the_back_office_token() -> None:
    with client() as c:
        assert c.put(FAULTS_PATH, json={"status": 503}).status_code == 401
        assert c.put(FAULTS_PATH, json={"status": 503},
                     headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get(DECISION).json() == {"eligible": True}


def test_status_latency_garbage_then_cleared() -> None:
    with client() as c:
        assert c.put(FAULTS_PATH, json={"status": 503}, headers=AUTH).status_code == 200
        answer = c.get(DECISION)
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "sandbox_fault"
        assert c.get("/health").status_code == 200  # outside the prefix: untouched

        assert c.put(FAULTS_PATH, json={"latency_ms": 400}, headers=AUTH).status_code == 200
        started = time.monotonic()
        assert c.get(DECISION).json() == {"eligible": True}
        assert time.monotonic() - started >= 0.4

        c.put(FAULTS_PATH, json={"garbage": "json"}, headers=AUTH)
        answer = c.get(DECISION)
        assert answer.status_code == 200 and "eligible" in answer.json()
        assert answer.json()["eligible"] == "perhaps"
        c.put(FAULTS_PATH, json={"garbage": "text"}, headers=AUTH)
        assert c.get(DECISION).text.startswith("<html>")

        assert c.put(FAULTS_PATH, json={"status": 200}, headers=AUTH).status_code == 422
        assert c.delete(FAULTS_PATH, headers=AUTH).status_code == 200
        assert c.get(DECISION).json() == {"eligible": True}


def test_inert_outside_the_sandbox() -> None:
    with client(sandbox=False) as c:
        assert c.put(FAULTS_PATH, json={"status": 503}, headers=AUTH).status_code == 404
        assert c.get(DECISION).json() == {"eligible": True}
