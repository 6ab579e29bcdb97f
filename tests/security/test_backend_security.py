"""Attacks on the eligibility backend: the real app, in-process, on a fresh SQLite database, and
``python -m eligibility`` as an operator runs it.

Each test checks the refusal and that nothing changed (no rows, the appeal as it was, no
database file). Every expected value is written here from the contract (docs/backend.md,
docs/configuration.md, common/settings.py), never computed by the code under test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from common.db import make_engine
from common.settings import InsecureSettings, Mode
from eligibility.api import create_app
from eligibility.config import Settings
from eligibility.migrate import upgrade
from eligibility.models import Appeal, Borrower, CreditLine, Decision, ReasonWaiver
from tests.backend.support import (
    BACKOFFICE_TOKEN,
    SERVICE_TOKEN,
    SeededApp,
    bearer,
    count_rows,
)
from tests.security.production import production_environment, run_module, use_production

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# production secrets: random-looking, at least 32 bytes, different from each other
GOOD_SERVICE = "k3Q9vX2mL8pR4tY7wB1nC6fH0jD5sG2aZ"  # 34 bytes
GOOD_BACKOFFICE = "Tq8Wm2Lc5Xv9Rb3Nz7Hd1Kf6Jp4Gs0Ye-b"  # 35 bytes
UNAUTHORIZED = {"error": {"code": "unauthorized", "message": "A valid bearer token is required.",
                          "details": {}}}
STATEMENT = "PRIVATE: my salary slip from Acme shows 31,500 a month"
NESTING = 10_000


def not_found(appeal_id: str) -> dict[str, Any]:
    return {"error": {"code": "appeal_not_found", "message": "No appeal with this id exists.",
                      "details": {"appeal_id": appeal_id}}}


# --- production start: refused with a message naming the variable ----------------------------


def production_env(tmp_path: Path, **variables: str | None) -> dict[str, str]:
    """The backend in production with good secrets, then ``variables`` on top (None: leave
    the variable unset)."""
    return production_environment({
        "RELEND_BACKEND_DB_URL": f"sqlite:///{tmp_path / 'prod.db'}",
        "RELEND_BACKEND_HOST": "127.0.0.1", "RELEND_BACKEND_PORT": "0",
        "RELEND_BACKEND_TOKEN": GOOD_SERVICE, "RELEND_BACKOFFICE_TOKEN": GOOD_BACKOFFICE,
    }, **variables)


def assert_refused(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "refuses to start in production" in result.stderr, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


WEAK_SECRETS = {
    # case id: (variables, what stderr must say)
    "service-missing": ({"RELEND_BACKEND_TOKEN": None}, "RELEND_BACKEND_TOKEN is not set"),
    "service-empty": ({"RELEND_BACKEND_TOKEN": ""}, "RELEND_BACKEND_TOKEN is not set"),
    "service-blank": ({"RELEND_BACKEND_TOKEN": "   "}, "RELEND_BACKEND_TOKEN is not set"),
    "service-sandbox": ({"RELEND_BACKEND_TOKEN": "relend-sandbox-token"},
                        "RELEND_BACKEND_TOKEN is the public sandbox value"),
    "service-other-sandbox": ({"RELEND_BACKEND_TOKEN": "relend-sandbox-backoffice-token"},
                              "RELEND_BACKEND_TOKEN is the public sandbox value"),
    "service-short": ({"RELEND_BACKEND_TOKEN": "a" * 31},
                      "RELEND_BACKEND_TOKEN is shorter than 32 bytes"),
    "backoffice-missing": ({"RELEND_BACKOFFICE_TOKEN": None},
                           "RELEND_BACKOFFICE_TOKEN is not set"),
    "backoffice-empty": ({"RELEND_BACKOFFICE_TOKEN": ""}, "RELEND_BACKOFFICE_TOKEN is not set"),
    "backoffice-sandbox": ({"RELEND_BACKOFFICE_TOKEN": "relend-sandbox-backoffice-token"},
                           "RELEND_BACKOFFICE_TOKEN is the public sandbox value"),
    "backoffice-short": ({"RELEND_BACKOFFICE_TOKEN": "b" * 31},
                         "RELEND_BACKOFFICE_TOKEN is shorter than 32 bytes"),
    "tokens-equal": ({"RELEND_BACKOFFICE_TOKEN": GOOD_SERVICE},
                     "RELEND_BACKEND_TOKEN and RELEND_BACKOFFICE_TOKEN are equal"),
    "fixture-route-on": ({"RELEND_BACKEND_SANDBOX": "true"}, "RELEND_BACKEND_SANDBOX is on"),
}


@pytest.mark.parametrize("variables, message", WEAK_SECRETS.values(), ids=WEAK_SECRETS.keys())
def test_serve_refuses_weak_production_settings(tmp_path, variables, message):
    result = run_module(["eligibility", "serve"], production_env(tmp_path, **variables))

    assert_refused(result, message)
    assert not (tmp_path / "prod.db").exists()  # refused before the database was touched


@pytest.mark.parametrize("command", ["migrate", "seed"])
def test_migrate_and_seed_refuse_weak_production_settings(tmp_path, command):
    env = production_env(tmp_path, RELEND_BACKEND_TOKEN="relend-sandbox-token",
                         RELEND_BACKOFFICE_TOKEN=None)
    result = run_module(["eligibility", command], env)

    assert_refused(result, "RELEND_BACKEND_TOKEN is the public sandbox value",
                   "RELEND_BACKOFFICE_TOKEN is not set")
    assert not (tmp_path / "prod.db").exists()


def test_unset_mode_is_production(tmp_path):
    env = production_env(tmp_path, RELEND_ENV=None, RELEND_BACKEND_TOKEN=None,
                         RELEND_BACKOFFICE_TOKEN=None)
    result = run_module(["eligibility", "serve"], env)

    assert_refused(result, "RELEND_BACKEND_TOKEN is not set", "RELEND_BACKOFFICE_TOKEN is not set")
    assert not (tmp_path / "prod.db").exists()


def test_unknown_mode_is_refused(tmp_path):
    result = run_module(["eligibility", "serve"], production_env(tmp_path, RELEND_ENV="dev"))

    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert "RELEND_ENV must be 'sandbox' or 'production'" in result.stderr
    assert not (tmp_path / "prod.db").exists()


def test_uvicorn_on_the_asgi_module_refuses_too(tmp_path):
    env = production_env(tmp_path, RELEND_BACKEND_TOKEN="relend-sandbox-token")
    result = run_module(["uvicorn", "eligibility.asgi:app", "--port", "0"], env)

    assert_refused(result, "RELEND_BACKEND_TOKEN is the public sandbox value")
    assert not (tmp_path / "prod.db").exists()


def test_seed_is_sandbox_only_even_with_good_secrets(tmp_path):
    result = run_module(["eligibility", "seed"], production_env(tmp_path))

    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert "RELEND_ENV=sandbox" in result.stderr
    assert not (tmp_path / "prod.db").exists()  # no demo borrower in a production database


def test_migrate_runs_with_good_production_secrets(tmp_path):
    result = run_module(["eligibility", "migrate"], production_env(tmp_path))

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "prod.db").exists()


# --- production settings in-process: the app factory -----------------------------------------


@pytest.fixture
def production(monkeypatch, tmp_path) -> Iterator[str]:
    """The environment of a production deployment with good secrets; yields its database URL
    (migrated, empty)."""
    url = f"sqlite:///{tmp_path / 'production.db'}"
    use_production(monkeypatch, RELEND_BACKEND_DB_URL=url, RELEND_BACKEND_TOKEN=GOOD_SERVICE,
                   RELEND_BACKOFFICE_TOKEN=GOOD_BACKOFFICE)
    upgrade(url)
    yield url


def test_production_app_has_no_fixture_route(production):
    app = create_app()  # settings from the environment
    engine = make_engine(production)
    try:
        assert app.state.settings.mode is Mode.PRODUCTION
        assert app.state.settings.sandbox_fixtures is False
        with TestClient(app) as client:
            response = client.put("/v1/backoffice/sandbox/borrowers/qa-attacker",
                                  json={"display_name": "Injected"},
                                  headers=bearer(GOOD_BACKOFFICE))
            spec = client.get("/v1/openapi.json").json()
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
        assert "/v1/backoffice/sandbox/borrowers/{borrower_id}" not in spec["paths"]
        assert count_rows(engine, Borrower) == 0  # nothing was written
    finally:
        engine.dispose()
        app.state.engine.dispose()


def test_production_tokens_of_exactly_32_bytes_are_accepted(production, monkeypatch):
    monkeypatch.setenv("RELEND_BACKEND_TOKEN", "s" * 32)
    monkeypatch.setenv("RELEND_BACKOFFICE_TOKEN", "b" * 32)
    app = create_app()
    try:
        with TestClient(app) as client:
            assert client.get("/v1/borrowers/nobody", headers=bearer("s" * 32)).status_code == 404
    finally:
        app.state.engine.dispose()


def test_app_factory_refuses_production_settings_however_built(production):
    good = Settings.from_env()
    engine = make_engine(production)
    try:
        for changes, message in [
            ({"sandbox_fixtures": True}, "RELEND_BACKEND_SANDBOX is on"),
            ({"backoffice_token": GOOD_SERVICE},
             "RELEND_BACKEND_TOKEN and RELEND_BACKOFFICE_TOKEN are equal"),
            ({"service_token": "relend-sandbox-token"},
             "RELEND_BACKEND_TOKEN is the public sandbox value"),
            ({"backoffice_token": ""}, "RELEND_BACKOFFICE_TOKEN is not set"),
        ]:
            with pytest.raises(InsecureSettings) as refused:
                create_app(good.copy(update=changes))
            assert message in str(refused.value)
        assert count_rows(engine, Borrower) == 0
    finally:
        engine.dispose()


# --- attacks on a running sandbox app (seeded demo borrowers) ---------------------------------


class Backend(SeededApp):
    """The app on a fresh, migrated and seeded SQLite database, and a way to look inside."""

    def __init__(self, url: str, **settings: Any) -> None:
        upgrade(url)
        super().__init__(url, **settings)

    def appeal_row(self, appeal_id: str) -> dict[str, Any]:
        with self.engine.connect() as connection:
            row = connection.execute(select(Appeal.__table__).where(Appeal.id == appeal_id)).one()
        return dict(row._mapping)

    def counts(self) -> dict[str, int]:
        return {model.__name__: count_rows(self.engine, model)
                for model in (Appeal, Decision, ReasonWaiver, Borrower)}

    def line(self, borrower_id: str) -> dict[str, Any]:
        with self.engine.connect() as connection:
            row = connection.execute(select(CreditLine.__table__)
                                     .where(CreditLine.borrower_id == borrower_id)).one()
        return dict(row._mapping)


@pytest.fixture
def backend(tmp_path) -> Iterator[Backend]:
    backend = Backend(f"sqlite:///{tmp_path / 'eligibility.db'}")
    yield backend
    backend.close()


@pytest.fixture
def filed(backend: Backend) -> dict[str, Any]:
    """An open appeal of demo-reduced (LIMIT_REDUCED) with a private statement."""
    return backend.api.file("demo-reduced", statement=STATEMENT)


BAD_TOKENS = {
    "none": {},
    "empty-bearer": {"Authorization": "Bearer "},
    "wrong": bearer("wrong-token"),
    "prefix": bearer(SERVICE_TOKEN[:-1]),
    "longer": bearer(SERVICE_TOKEN + "x"),
    "basic-scheme": {"Authorization": f"Basic {SERVICE_TOKEN}"},
    "sandbox-default": bearer("relend-sandbox-token"),
    "backoffice-token": bearer(BACKOFFICE_TOKEN),  # opens the back office, not the service API
}


@pytest.mark.parametrize("headers", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_wrong_or_missing_token_gets_401_and_no_data(backend, filed, headers):
    before = backend.counts()
    appeal_id = filed["appeal_id"]
    requests = [
        ("GET", "/v1/borrowers/demo-reduced", None),
        ("GET", "/v1/borrowers/demo-reduced/eligibility", None),
        ("GET", "/v1/borrowers/demo-reduced/appeals", None),
        ("GET", f"/v1/borrowers/demo-reduced/appeals/{appeal_id}", None),
        ("POST", "/v1/appeals", {"borrower_id": "demo-reduced", "decision_id": filed["decision_id"],
                                 "statement": "again", "channel": "chat"}),
    ]
    for method, path, body in requests:
        response = backend.client.request(method, path, json=body,
                                          headers={**headers, "Idempotency-Key": "attack-0001"})
        assert response.status_code == 401, (path, response.text)
        assert response.json() == UNAUTHORIZED, path
        assert "demo-reduced" not in response.text and appeal_id not in response.text
    assert backend.counts() == before  # not even a decision was recorded
    assert backend.appeal_row(appeal_id)["status"] == "submitted"


SERVICE_ON_BACKOFFICE = {
    "service-token": bearer(SERVICE_TOKEN),
    "none": {},
    "wrong": bearer("wrong-token"),
    "sandbox-default": bearer("relend-sandbox-backoffice-token"),
}


@pytest.mark.parametrize("headers", SERVICE_ON_BACKOFFICE.values(),
                         ids=SERVICE_ON_BACKOFFICE.keys())
def test_backoffice_refuses_all_but_its_token_and_the_appeal_is_unchanged(backend, filed, headers):
    appeal_id = filed["appeal_id"]
    before, line_before, counts_before = (backend.appeal_row(appeal_id),
                                          backend.line("demo-reduced"), backend.counts())

    upheld = backend.client.post(f"/v1/backoffice/appeals/{appeal_id}/transitions",
                                 json={"status": "in_review"}, headers=headers)
    fixture = backend.client.put("/v1/backoffice/sandbox/borrowers/qa-attacker",
                                 json={"display_name": "Injected"}, headers=headers)

    for response in (upheld, fixture):
        assert response.status_code == 401, response.text
        assert response.json() == UNAUTHORIZED
    assert backend.appeal_row(appeal_id) == before  # still submitted, nothing else moved
    assert backend.line("demo-reduced") == line_before
    assert backend.counts() == counts_before  # no waiver, no qa- borrower


@pytest.mark.parametrize("path", [
    "/v1/backoffice/appeals/{id}/transitions/",
    "/v1//backoffice/appeals/{id}/transitions",
    "/v1/backoffice/../backoffice/appeals/{id}/transitions",
    "/V1/BACKOFFICE/appeals/{id}/transitions",
])
def test_path_tricks_do_not_reach_the_back_office_with_the_service_token(backend, filed, path):
    appeal_id = filed["appeal_id"]
    before, counts_before = backend.appeal_row(appeal_id), backend.counts()

    response = backend.client.post(path.format(id=appeal_id), json={"status": "in_review"},
                                   headers=bearer(SERVICE_TOKEN), follow_redirects=False)

    assert response.status_code in (401, 404), response.text
    assert backend.appeal_row(appeal_id) == before
    assert backend.counts() == counts_before


def test_another_borrowers_appeal_is_404_exactly_like_a_missing_one(backend, filed):
    appeal_id = filed["appeal_id"]  # demo-reduced's
    before = backend.counts()

    others = backend.client.get(f"/v1/borrowers/demo-eligible/appeals/{appeal_id}",
                                headers=bearer(SERVICE_TOKEN))
    missing = backend.client.get("/v1/borrowers/demo-eligible/appeals/AP20260310-ZZZZ22",
                                 headers=bearer(SERVICE_TOKEN))
    own = backend.client.get(f"/v1/borrowers/demo-reduced/appeals/{appeal_id}",
                             headers=bearer(SERVICE_TOKEN))

    assert others.status_code == 404
    assert others.json() == not_found(appeal_id)
    assert missing.status_code == 404
    assert missing.json() == not_found("AP20260310-ZZZZ22")  # the same shape, word for word
    for secret in (STATEMENT, "demo-reduced", filed["decision_id"], "LIMIT_REDUCED"):
        assert secret not in others.text
    assert own.status_code == 200 and own.json()["statement"] == STATEMENT
    assert backend.counts() == before
    assert backend.appeal_row(appeal_id)["status"] == "submitted"


def test_the_unscoped_appeal_read_is_gone(backend, filed):
    response = backend.client.get(f"/v1/appeals/{filed['appeal_id']}",
                                  headers=bearer(SERVICE_TOKEN))

    assert response.status_code in (404, 405)
    assert STATEMENT not in response.text


def test_another_borrowers_appeals_are_not_listed(backend, filed):
    response = backend.client.get("/v1/borrowers/demo-eligible/appeals",
                                  headers=bearer(SERVICE_TOKEN))

    assert response.json() == {"borrower_id": "demo-eligible", "appeals": []}


# --- deeply nested JSON --------------------------------------------------------------------------


def nested_bodies() -> dict[str, bytes]:
    arrays = b"[" * NESTING + b"]" * NESTING
    objects = b'{"a":' * NESTING + b"1" + b"}" * NESTING
    return {
        "arrays": arrays,
        "objects": objects,
        "unclosed-arrays": b"[" * NESTING,
        "inside-a-field": b'{"borrower_id": "demo-reduced", "statement": ' + arrays + b"}",
        "brackets-in-strings-then-nesting": b'{"s": "[[[[\\"]]]", "t": ' + arrays + b"}",
    }


@pytest.fixture
def roomy_backend(tmp_path) -> Iterator[Backend]:
    """A back end that accepts 1 MiB bodies: the nesting itself, not the size, must be refused."""
    backend = Backend(f"sqlite:///{tmp_path / 'roomy.db'}", max_body_bytes=1024 * 1024)
    yield backend
    backend.close()


@pytest.mark.parametrize("name", nested_bodies().keys())
def test_deeply_nested_json_is_400_not_500(roomy_backend, name):
    backend = roomy_backend
    body = nested_bodies()[name]
    filed = backend.api.file("demo-reduced", statement=STATEMENT)
    before, appeal_before = backend.counts(), backend.appeal_row(filed["appeal_id"])
    targets = [
        ("POST", "/v1/appeals", {**backend.api.service, "Idempotency-Key": "nested-0001"}),
        ("POST", f"/v1/backoffice/appeals/{filed['appeal_id']}/transitions",
         backend.api.backoffice),
        ("PUT", "/v1/backoffice/sandbox/borrowers/qa-nested", backend.api.backoffice),
    ]
    for method, path, headers in targets:
        response = backend.client.request(
            method, path, content=body, headers={**headers, "Content-Type": "application/json"})
        assert response.status_code == 400, (path, response.text[:300])
        assert response.json() == {"error": {
            "code": "json_too_deep",
            "message": "The body nests arrays or objects more than 32 levels deep.",
            "details": {"max_depth": 32}}}
    assert backend.counts() == before
    assert backend.appeal_row(filed["appeal_id"]) == appeal_before
    # and the service is still answering
    assert backend.client.get("/health").status_code == 200


def test_deeply_nested_json_with_the_default_body_limit_is_a_4xx(backend, filed):
    before = backend.counts()
    for body in nested_bodies().values():
        response = backend.client.post(
            "/v1/appeals", content=body,
            headers={**backend.api.service, "Idempotency-Key": "nested-0002",
                     "Content-Type": "application/json"})
        assert response.status_code in (400, 413), response.text[:300]
        assert response.json()["error"]["code"] in ("json_too_deep", "body_too_large")
    assert backend.counts() == before


def test_ordinary_nesting_still_works(roomy_backend):
    # a fixture nests 3 levels (object, list, object): far below the limit
    response = roomy_backend.client.put(
        "/v1/backoffice/sandbox/borrowers/qa-ordinary",
        content=json.dumps({"loans": [{"principal": 1000, "outstanding": 500}]}),
        headers={**roomy_backend.api.backoffice, "Content-Type": "application/json"})
    assert response.status_code == 204, response.text
    # brackets inside a string are text, not nesting
    statement = "[" * 100 + "{" * 100 + '\\"]]'
    decision = roomy_backend.api.eligibility("demo-reduced")
    filed = roomy_backend.api.appeal("demo-reduced", decision["decision_id"], statement=statement)
    assert filed.status_code == 201, filed.text
    assert filed.json()["statement"] == statement


# --- 409s name no other borrower's appeal ----------------------------------------------------


def test_reused_idempotency_key_of_another_borrower_reveals_nothing(backend, filed):
    victim_id = filed["appeal_id"]  # demo-reduced's, filed with key test-key-0001
    decision = backend.api.eligibility("demo-overdue-reduced")  # the attacker's own decision
    before, victim_before = backend.counts(), backend.appeal_row(victim_id)

    response = backend.api.appeal("demo-overdue-reduced", decision["decision_id"],
                                  key="test-key-0001", reason_code="LIMIT_REDUCED")

    assert response.status_code == 409, response.text
    assert response.json() == {"error": {
        "code": "idempotency_key_reused",
        "message": "This Idempotency-Key was already used for a different appeal request.",
        "details": {}}}
    assert victim_id not in response.text and "demo-reduced" not in response.text
    assert backend.counts() == before  # the attacker's appeal was not filed
    assert backend.appeal_row(victim_id) == victim_before


def test_reused_idempotency_key_of_the_same_borrower_names_their_own_appeal(backend, filed):
    before = backend.counts()

    response = backend.api.appeal("demo-reduced", filed["decision_id"], key="test-key-0001",
                                  statement="A different statement")

    assert response.status_code == 409
    assert response.json()["error"]["details"] == {"appeal_id": filed["appeal_id"]}
    assert backend.counts() == before


def test_appeal_already_open_names_only_the_askers_own_appeal(backend):
    # two borrowers with an open appeal on the same reason
    others = backend.api.file("demo-overdue-reduced", reason_code="LIMIT_REDUCED")
    own = backend.api.file("demo-reduced", reason_code="LIMIT_REDUCED")
    decision_id = backend.api.eligibility("demo-reduced")["decision_id"]
    before = backend.counts()

    response = backend.api.appeal("demo-reduced", decision_id, reason_code="LIMIT_REDUCED",
                                  statement="Once more")

    assert response.status_code == 409, response.text
    assert response.json()["error"] == {
        "code": "appeal_already_open",
        "message": "An appeal against this reason is already open for this borrower.",
        "details": {"appeal_id": own["appeal_id"], "status": "submitted"}}
    assert others["appeal_id"] not in response.text
    assert "demo-overdue-reduced" not in response.text
    assert backend.counts() == before  # no second appeal


# --- the action server's settings --------------------------------------------------------------


ACTION_SECRETS = {
    "backend-missing": ({"RELEND_BACKEND_TOKEN": None}, "RELEND_BACKEND_TOKEN is not set"),
    "backend-empty": ({"RELEND_BACKEND_TOKEN": ""}, "RELEND_BACKEND_TOKEN is not set"),
    "backend-sandbox": ({"RELEND_BACKEND_TOKEN": "relend-sandbox-token"},
                        "RELEND_BACKEND_TOKEN is the public sandbox value"),
    "backend-short": ({"RELEND_BACKEND_TOKEN": "c" * 31},
                      "RELEND_BACKEND_TOKEN is shorter than 32 bytes"),
    "desk-missing": ({"RELEND_DESK_TOKEN": None}, "RELEND_DESK_TOKEN is not set"),
    "desk-empty": ({"RELEND_DESK_TOKEN": ""}, "RELEND_DESK_TOKEN is not set"),
    "desk-sandbox": ({"RELEND_DESK_TOKEN": "relend-sandbox-desk-token"},
                     "RELEND_DESK_TOKEN is the public sandbox value"),
    "desk-short": ({"RELEND_DESK_TOKEN": "d" * 31}, "RELEND_DESK_TOKEN is shorter than 32 bytes"),
}
GOOD_DESK = "Zr4Ty8Ui2Op6As0Df3Gh7Jk1Lz5Xc9Vb-n"  # 35 bytes


@pytest.fixture
def action_settings(monkeypatch) -> Iterator[Any]:
    """``actions.settings.settings`` in a production environment with good secrets."""
    from actions.settings import settings

    use_production(monkeypatch, RELEND_BACKEND_TOKEN=GOOD_SERVICE, RELEND_DESK_TOKEN=GOOD_DESK)
    settings.cache_clear()
    yield settings
    settings.cache_clear()


@pytest.mark.parametrize("variables, message", ACTION_SECRETS.values(),
                         ids=ACTION_SECRETS.keys())
def test_action_settings_refuse_weak_production_secrets(action_settings, monkeypatch,
                                                         variables, message):
    for name, value in variables.items():
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)

    with pytest.raises(InsecureSettings) as refused:
        action_settings()
    assert message in str(refused.value)
    with pytest.raises(InsecureSettings):  # a refusal is not cached into a usable value
        action_settings()


def test_action_settings_accept_good_production_secrets(action_settings):
    config = action_settings()
    assert config.mode is Mode.PRODUCTION
    assert (config.backend_token, config.desk_token) == (GOOD_SERVICE, GOOD_DESK)


def test_actions_read_no_settings_at_import_time(tmp_path):
    env = production_env(tmp_path, RELEND_BACKEND_TOKEN=None, RELEND_BACKOFFICE_TOKEN=None)
    code = ("import actions.appeals, actions.clarify, actions.eligibility, actions.handoff, "
            "actions.settings; print('imported')")
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"
