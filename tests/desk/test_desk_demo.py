"""The sandbox's demo borrowers come from the eligibility backend's API, not its code: asked with
the service token, kept a minute, and a clear 503 when the backend cannot say. Also what the
app serves besides its routes: the static files, with the security headers."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from desk_support import error_code, make_settings
from fake_backend import BACKEND_TOKEN, DEMO_BORROWERS
from fake_backend import app as backend_app
from fastapi.testclient import TestClient

from common.settings import Mode
from desk.config import DeskSettings
from desk.demo_borrowers import PATH, BackendDemoDirectory, DemoUnavailable

pytestmark = pytest.mark.timeout(30)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Backend:
    """The backend behind ``httpx.MockTransport``: counts the calls, answers as told."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answer: httpx.Response | Exception = httpx.Response(
            200, json={"borrowers": DEMO_BORROWERS})

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def directory(self, clock: Clock | None = None) -> BackendDemoDirectory:
        return BackendDemoDirectory("http://backend.test", BACKEND_TOKEN,
                                    transport=httpx.MockTransport(self.handle),
                                    **({"clock": clock} if clock else {}))


def ids(directory: BackendDemoDirectory) -> list[str]:
    return [b.borrower_id for b in asyncio.run(directory.borrowers())]


def test_the_list_is_asked_with_the_service_token_and_kept_a_minute():
    backend, clock = Backend(), Clock()
    directory = backend.directory(clock)

    assert ids(directory) == [b["borrower_id"] for b in DEMO_BORROWERS]
    clock.now += 59
    ids(directory)
    assert len(backend.requests) == 1
    clock.now += 2
    ids(directory)

    assert len(backend.requests) == 2
    request = backend.requests[0]
    assert (request.method, request.url.path) == ("GET", PATH)
    assert request.headers["Authorization"] == f"Bearer {BACKEND_TOKEN}"


def test_the_real_route_shape_is_understood():
    """The fake backend the live tests serve, spoken to over ASGI."""
    directory = BackendDemoDirectory("http://backend.test", BACKEND_TOKEN,
                                     transport=httpx.ASGITransport(app=backend_app))
    assert [b.dict() for b in asyncio.run(directory.borrowers())] == DEMO_BORROWERS


@pytest.mark.parametrize("answer", [
    pytest.param(httpx.ConnectError("connection refused"), id="down"),
    pytest.param(httpx.ReadTimeout("timed out"), id="slow"),
    pytest.param(httpx.Response(404, json={"error": {"code": "not_found"}}), id="not-a-sandbox"),
    pytest.param(httpx.Response(401, json={"error": {"code": "unauthorized"}}), id="wrong-token"),
    pytest.param(httpx.Response(500, text="oops"), id="500"),
    pytest.param(httpx.Response(200, text="<html>"), id="not-json"),
    pytest.param(httpx.Response(200, json={"borrowers": [{"borrower_id": 7}]}), id="bad-shape"),
    pytest.param(httpx.Response(200, json=[]), id="not-an-object"),
])
def test_a_backend_that_cannot_say_is_unavailable_and_not_cached(answer):
    backend = Backend()
    backend.answer = answer
    directory = backend.directory()

    with pytest.raises(DemoUnavailable):
        ids(directory)

    backend.answer = httpx.Response(200, json={"borrowers": DEMO_BORROWERS})
    assert ids(directory)  # the next request asks again


def unreachable_backend(app) -> None:
    backend = Backend()
    backend.answer = httpx.ConnectError("connection refused")
    app.state.desk.demo = backend.directory()


def test_without_the_backend_the_demo_routes_say_503_demo_unavailable(app, client: TestClient):
    unreachable_backend(app)

    listing = client.get("/api/demo/borrowers")
    login = client.post("/api/demo/login", json={"borrower_id": "demo-eligible"})

    for response in (listing, login):
        assert response.status_code == 503 and error_code(response) == "demo_unavailable"
    assert "token" not in login.json()
    # what the body says is checked first, as before
    assert client.post("/api/demo/login", json={"borrower_id": "../x"}).status_code == 422


def test_with_demo_login_off_the_backend_is_never_asked(make_app, migrated_url):
    app = make_app(make_settings(migrated_url, demo_login=False))
    backend = Backend()
    app.state.desk.demo = backend.directory()
    with TestClient(app) as client:
        assert client.get("/api/demo/borrowers").status_code == 404
        assert client.post("/api/demo/login",
                           json={"borrower_id": "demo-eligible"}).status_code == 404
    assert backend.requests == []


def test_the_listing_is_the_backends(client: TestClient):
    assert client.get("/api/demo/borrowers").json() == {"borrowers": DEMO_BORROWERS}


def test_the_backend_settings_default_to_the_local_sandbox(monkeypatch: pytest.MonkeyPatch):
    for name in ("RELEND_BACKEND_URL", "RELEND_BACKEND_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    sandbox = DeskSettings(mode=Mode.SANDBOX)
    production = DeskSettings(mode=Mode.PRODUCTION)
    monkeypatch.setenv("RELEND_BACKEND_URL", "http://backend.internal:9000/")
    monkeypatch.setenv("RELEND_BACKEND_TOKEN", "from-the-environment")
    configured = DeskSettings(mode=Mode.SANDBOX)

    assert (sandbox.backend_url, sandbox.backend_token) == (
        "http://127.0.0.1:8081", "relend-sandbox-token")
    assert production.backend_token == ""  # no demo login in production: nothing to ask for
    assert (configured.backend_url, configured.backend_token) == (
        "http://backend.internal:9000", "from-the-environment")


NO_BACKEND_PACKAGE = """
import sys
from fastapi.testclient import TestClient
from common.settings import Mode
from desk.api import create_app
from desk.config import DeskSettings

settings = DeskSettings(mode=Mode.SANDBOX, database_url=sys.argv[1], backend_url=sys.argv[2])
with TestClient(create_app(settings)) as client:
    answers = [client.get("/api/demo/borrowers").status_code,
               client.post("/api/demo/login", json={"borrower_id": "demo-eligible"}).status_code]
assert answers == [503, 503], answers
backend = sorted(m for m in sys.modules if m.split(".")[0] == "eligibility")
assert not backend, backend
"""


def test_the_desk_does_not_need_the_backend_package(migrated_url: str):
    """Built, started and asked for demo borrowers (the backend down): nothing imported."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{probe.getsockname()[1]}"
    result = subprocess.run([sys.executable, "-c", NO_BACKEND_PACKAGE, migrated_url, nobody],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --- static files ------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "kind"), [
    ("/static/chat.js", "javascript"), ("/static/console.css", "text/css"),
    ("/static/chat.html", "text/html")])
def test_static_files_are_served_with_the_security_headers(client: TestClient, path, kind):
    response = client.get(path)

    assert response.status_code == 200 and kind in response.headers["content-type"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    # revalidated by their ETag / Last-Modified, not fetched again on every load
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["etag"] and response.headers["last-modified"]
    again = client.get(path, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.headers["cache-control"] == "no-cache"


def test_a_missing_static_file_is_the_desks_404(client: TestClient):
    response = client.get("/static/nope.js")
    assert response.status_code == 404 and error_code(response) == "not_found"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/chat", "/console", "/", "/health", "/api/demo/borrowers",
                                  "/api/agent/queue"])
def test_pages_and_api_answers_are_never_stored(client: TestClient, path):
    assert client.get(path).headers["cache-control"] == "no-store"


def test_the_pages_texts_keep_their_own_caching(client: TestClient):
    response = client.get("/texts/zh.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"  # revalidated by its ETag
    assert response.headers["x-content-type-options"] == "nosniff"
    again = client.get("/texts/zh.json", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("path", [
    "/static/..%2f..%2fdesk%2fconfig.py", "/static/%2e%2e/api.py", "/static/", "/static/a/b.js"])
def test_nothing_outside_the_static_folder_is_served(client: TestClient, path):
    response = client.get(path)
    assert response.status_code == 404 and "secret" not in response.text


def test_static_files_answer_get_only(client: TestClient):
    for method in ("HEAD", "POST"):
        response = client.request(method, "/static/chat.js")
        assert response.status_code == 405 and response.headers["allow"] == "GET"
