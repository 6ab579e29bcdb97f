"""The HTTP API on SQLite and PostgreSQL: demo decisions, decision ids, auth, bad input."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from common.settings import Mode
from eligibility.api import create_app
from eligibility.config import Settings
from eligibility.models import Appeal, ComplianceHold, Decision, ReasonWaiver
from eligibility.seed import DEMO_BORROWERS

from .support import BACKOFFICE_TOKEN, SERVICE_TOKEN, Api, bearer, count_rows, make_settings

SPEC_PATH = Path(__file__).resolve().parents[2] / "eligibility" / "openapi.json"
MINUTE = timedelta(minutes=1)
SERVICE = bearer(SERVICE_TOKEN)
BACKOFFICE = bearer(BACKOFFICE_TOKEN)

# borrower -> (eligible, available limit, reason codes in order)
DEMO_DECISIONS: dict[str, tuple[bool, float, list[str]]] = {
    "demo-eligible": (True, 20_000.0, []),
    "demo-posting": (False, 0.0, ["REPAYMENT_POSTING"]),
    "demo-in-use": (False, 416.67, ["LIMIT_IN_USE"]),
    "demo-loan-cap": (False, 26_000.0, ["OPEN_LOANS_CAP_REACHED", "LIMIT_IN_USE"]),
    "demo-risk-review": (False, 15_000.0, ["RISK_REVIEW_NOT_PASSED"]),
    "demo-policy": (False, 8_000.0, ["RISK_POLICY_TIGHTENED"]),
    "demo-score-drop": (False, 12_000.0, ["CREDIT_SCORE_DROPPED"]),
    "demo-score-inactive": (False, 10_000.0, ["CREDIT_SCORE_DROPPED"]),
    "demo-overdue": (False, 10_000.0, ["OVERDUE_COOLING_OFF"]),
    "demo-id-expired": (False, 20_000.0, ["IDENTITY_VERIFICATION_REQUIRED"]),
    "demo-compliance": (False, 30_000.0, ["COMPLIANCE_HOLD"]),
    "demo-funding": (False, 20_000.0, ["FUNDING_QUOTA_EXHAUSTED"]),
    "demo-incident": (False, 20_000.0, ["SYSTEM_INCIDENT"]),
    "demo-closed": (False, 0.0, ["CREDIT_LINE_CLOSED"]),
    "demo-reduced": (True, 20_000.0, ["LIMIT_REDUCED"]),
    "demo-posting-incident": (False, 0.0, ["SYSTEM_INCIDENT", "REPAYMENT_POSTING"]),
    "demo-id-score-funding": (False, 9_000.0, ["IDENTITY_VERIFICATION_REQUIRED",
                                               "CREDIT_SCORE_DROPPED",
                                               "FUNDING_QUOTA_EXHAUSTED"]),
    "demo-overdue-reduced": (False, 200.0, ["OVERDUE_COOLING_OFF", "LIMIT_IN_USE",
                                            "LIMIT_REDUCED"]),
}


def error_code(response: Any) -> str:
    return response.json()["error"]["code"]


class NothingWritten:
    """Counts decisions and appeals, to check a request wrote neither."""

    def __init__(self, shared: Any) -> None:
        self.shared = shared
        self.before = self.counts()

    def counts(self) -> tuple[int, int]:
        engine = self.shared.engine
        return count_rows(engine, Decision), count_rows(engine, Appeal)

    def check(self) -> None:
        assert self.counts() == self.before, "a rejected request wrote to the database"


# --- health and spec --------------------------------------------------------------------------


def test_health_needs_no_token(shared):
    response = shared.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_health_reports_an_unreachable_database(clock):
    app = create_app(make_settings("postgresql+psycopg2://postgres@127.0.0.1:1/none"), clock=clock)
    with TestClient(app) as client:
        response = client.get("/health")
    app.state.engine.dispose()
    assert response.status_code == 503
    assert error_code(response) == "database_unavailable"


def test_served_openapi_matches_the_checked_in_spec(shared):
    response = shared.client.get("/v1/openapi.json")  # open, like /health
    assert response.status_code == 200
    assert response.json() == json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def test_every_v1_operation_declares_the_bearer_scheme_and_health_none(shared):
    spec = shared.client.get("/v1/openapi.json").json()
    assert spec["components"]["securitySchemes"] == {"bearer": {"type": "http",
                                                                "scheme": "bearer"}}
    operations = {(method, path): operation for path, item in spec["paths"].items()
                  for method, operation in item.items()}
    # 9 + the loans, the repayments, the reminder settings (GET and PUT) and the back office's
    # posting, releasing, resolving and outbox feed
    assert len(operations) == 17
    for (method, path), operation in operations.items():
        expected = None if path == "/health" else [{"bearer": []}]
        assert operation.get("security") == expected, (method, path)


# --- decisions for the demo borrowers ---------------------------------------------------------


def test_every_demo_borrower_gets_its_expected_reasons(shared):
    assert set(shared.borrower_ids) == set(DEMO_DECISIONS) == {d.id for d in DEMO_BORROWERS}
    answers = {}
    for borrower_id in shared.borrower_ids:
        body = shared.api.eligibility(borrower_id)
        answers[borrower_id] = (body["eligible"], body["available_limit"],
                                [r["code"] for r in body["reasons"]])
    assert answers == DEMO_DECISIONS


def test_decision_body_shape(shared):
    body = shared.api.eligibility("demo-reduced")
    assert body == {
        "borrower_id": "demo-reduced",
        "eligible": True,
        "available_limit": 20_000.0,
        "total_limit": 20_000.0,
        "min_drawdown": 500.0,
        "currency": "CNY",
        "timezone": "Asia/Shanghai",
        "decision_id": body["decision_id"],
        "checked_at": "2026-03-10T04:00:00Z",
        "reasons": [{
            "code": "LIMIT_REDUCED",
            "blocking": False,
            "appealable": True,
            "details": {"previous_limit": 50_000.0, "new_limit": 20_000.0,
                        "reduced_at": "2026-03-01T04:00:00Z", "change_reason": "periodic_review"},
            "retry_after": None,
            "next_review_at": None,
            "self_service": [],
        }],
    }
    assert body["decision_id"].startswith("dec_")


def test_profile(shared):
    response = shared.client.get("/v1/borrowers/demo-score-inactive", headers=SERVICE)
    assert response.status_code == 200
    assert response.json() == {"borrower_id": "demo-score-inactive", "display_name": "Alex Chen",
                               "locale": "en-US", "timezone": "Asia/Shanghai"}


@pytest.mark.parametrize("path", [
    "/v1/borrowers/nobody-42/eligibility",
    "/v1/borrowers/nobody-42",
    "/v1/borrowers/nobody-42/appeals",
])
def test_unknown_borrower_is_404_with_a_clear_body(shared, path):
    nothing_written = NothingWritten(shared)
    response = shared.client.get(path, headers=SERVICE)
    assert response.status_code == 404
    assert response.json() == {"error": {
        "code": "borrower_not_found",
        "message": "No borrower with this id is known to the eligibility service.",
        "details": {"borrower_id": "nobody-42"},
    }}
    nothing_written.check()


def test_decision_id_is_reused_until_the_records_change(api, seeded, session, clock, engine):
    first = api.eligibility("demo-eligible")
    clock.advance(MINUTE)
    again = api.eligibility("demo-eligible")
    assert again["decision_id"] == first["decision_id"]
    assert again["checked_at"] == "2026-03-10T04:01:00Z"
    assert count_rows(engine, Decision, borrower_id="demo-eligible") == 1

    session.add(ComplianceHold(id="HOLD-test-1", borrower_id="demo-eligible", kind="security",
                               placed_at=clock.now - MINUTE))
    session.commit()
    clock.advance(MINUTE)
    changed = api.eligibility("demo-eligible")
    assert changed["decision_id"] != first["decision_id"]
    assert [r["code"] for r in changed["reasons"]] == ["COMPLIANCE_HOLD"]

    clock.advance(MINUTE)
    assert api.eligibility("demo-eligible")["decision_id"] == changed["decision_id"]
    assert count_rows(engine, Decision, borrower_id="demo-eligible") == 2


def test_decision_ids_are_per_borrower(shared):
    assert shared.api.eligibility("demo-eligible")["decision_id"] != \
        shared.api.eligibility("demo-funding")["decision_id"]


# --- auth ------------------------------------------------------------------------------------

BAD_CREDENTIALS = {
    "no-header": {},
    "basic-scheme": {"Authorization": f"Basic {SERVICE_TOKEN}"},
    "no-scheme": {"Authorization": SERVICE_TOKEN},
    "wrong-token": {"Authorization": "Bearer not-the-token"},
    "empty-token": {"Authorization": "Bearer "},
    "token-prefix": {"Authorization": f"Bearer {SERVICE_TOKEN[:-1]}"},
    "backoffice-token": BACKOFFICE,
}
SERVICE_REQUESTS = {
    "eligibility": ("GET", "/v1/borrowers/demo-eligible/eligibility"),
    "unknown-borrower": ("GET", "/v1/borrowers/nobody/eligibility"),
    "malformed-borrower": ("GET", "/v1/borrowers/bad%20id/eligibility"),
    "profile": ("GET", "/v1/borrowers/demo-eligible"),
    "appeal-list": ("GET", "/v1/borrowers/demo-eligible/appeals"),
    "appeal": ("GET", "/v1/borrowers/demo-eligible/appeals/AP20260310-ABCDEF"),
    "file-appeal": ("POST", "/v1/appeals"),
    "unknown-path": ("GET", "/v1/nothing-here"),
}


def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"error": {"code": "unauthorized",
                                         "message": "A valid bearer token is required.",
                                         "details": {}}}


def unauthorized_request(client: TestClient, method: str, path: str,
                         credentials: dict[str, str]) -> Any:
    # a body that would be rejected anyway: auth is decided before anything is read
    return client.request(method, path, headers={**credentials, "Idempotency-Key": "x"},
                          content=b"\xff{" if method == "POST" else None)


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
def test_eligibility_needs_the_service_token(shared, credentials):
    nothing_written = NothingWritten(shared)
    response = unauthorized_request(shared.client, "GET",
                                    "/v1/borrowers/demo-eligible/eligibility", credentials)
    assert_unauthorized(response)
    assert "demo" not in response.text
    nothing_written.check()


@pytest.mark.parametrize("method, path", SERVICE_REQUESTS.values(), ids=SERVICE_REQUESTS.keys())
def test_every_service_endpoint_needs_a_token(shared, method, path):
    nothing_written = NothingWritten(shared)
    for credentials in ({}, BAD_CREDENTIALS["wrong-token"]):
        assert_unauthorized(unauthorized_request(shared.client, method, path, credentials))
    nothing_written.check()


@pytest.mark.parametrize("credentials", [
    {},
    SERVICE,  # the service token is not enough
    {"Authorization": "Bearer wrong"},
], ids=["no-header", "service-token", "wrong-token"])
def test_backoffice_needs_the_backoffice_token(shared, credentials):
    nothing_written = NothingWritten(shared)
    response = shared.client.post("/v1/backoffice/appeals/AP20260310-ABCDEF/transitions",
                                  json={"status": "upheld"}, headers=credentials)
    assert_unauthorized(response)
    nothing_written.check()


def test_backoffice_token_is_accepted(shared):
    response = shared.client.post("/v1/backoffice/appeals/AP20260310-ABCDEF/transitions",
                                  json={"status": "in_review"}, headers=BACKOFFICE)
    assert response.status_code == 404
    assert error_code(response) == "appeal_not_found"


def test_bearer_scheme_is_case_insensitive(shared):
    response = shared.client.get("/v1/borrowers/demo-eligible/eligibility",
                                 headers={"Authorization": f"bearer {SERVICE_TOKEN}"})
    assert response.status_code == 200


def test_requests_no_route_answers_need_a_token_first(shared):
    """Without a route no dependency checks the token: the 404/405 handler does, so a caller
    without one learns nothing of which paths and methods exist."""
    for method, path in [("DELETE", "/v1/borrowers/demo-eligible/eligibility"),  # 405
                         ("GET", "/v1/borrowers/demo-eligible/"),  # trailing slash: no redirect
                         ("POST", "/v1/nothing-here"),
                         ("GET", "/v1/backoffice/nothing-here")]:
        assert_unauthorized(shared.client.request(method, path, content=b"\xff{"))
    assert_unauthorized(shared.client.get("/v1/backoffice/nothing-here", headers=SERVICE))
    assert shared.client.get("/v1/backoffice/nothing-here",
                             headers=BACKOFFICE).status_code == 404
    slash = shared.client.get("/v1/borrowers/demo-eligible/", headers=SERVICE,
                              follow_redirects=False)
    assert (slash.status_code, error_code(slash)) == (404, "not_found")


def test_with_a_token_a_refused_body_comes_before_the_404(shared):
    nothing_written = NothingWritten(shared)
    refused = shared.client.post("/v1/nothing-here", content=b"{}",
                                 headers={**SERVICE, "Content-Type": "text/plain"})
    assert (refused.status_code, error_code(refused)) == (415, "unsupported_media_type")
    missing = shared.client.post("/v1/nothing-here", json={}, headers=SERVICE)
    assert (missing.status_code, error_code(missing)) == (404, "not_found")
    nothing_written.check()


# --- the sandbox's demo borrowers ---------------------------------------------------------------

DEMO_BORROWER_IDS = [  # the seed's order
    "demo-eligible", "demo-posting", "demo-in-use", "demo-loan-cap", "demo-risk-review",
    "demo-policy", "demo-score-drop", "demo-score-inactive", "demo-overdue", "demo-id-expired",
    "demo-compliance", "demo-funding", "demo-incident", "demo-closed", "demo-reduced",
    "demo-posting-incident", "demo-id-score-funding", "demo-overdue-reduced",
]


def test_sandbox_lists_the_demo_borrowers(shared):
    response = shared.client.get("/v1/sandbox/demo-borrowers", headers=SERVICE)

    assert response.status_code == 200, response.text
    borrowers = response.json()["borrowers"]
    assert list(response.json()) == ["borrowers"]
    assert [b["borrower_id"] for b in borrowers] == DEMO_BORROWER_IDS
    assert borrowers[0] == {"borrower_id": "demo-eligible", "name": "王芳",
                            "situation": "Can borrow: all 20,000 available", "locale": "zh-CN"}
    assert borrowers[7] == {"borrower_id": "demo-score-inactive", "name": "Alex Chen",
                            "situation": "Score 655 -> 581: 420 days inactive, debt ratio 0.78",
                            "locale": "en-US"}
    assert all(set(b) == {"borrower_id", "name", "situation", "locale"} and all(b.values())
               for b in borrowers)


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
def test_demo_borrowers_need_the_service_token(shared, credentials):
    response = shared.client.get("/v1/sandbox/demo-borrowers", headers=credentials)
    assert_unauthorized(response)
    assert "demo" not in response.text


def test_demo_borrowers_are_not_there_in_production(tmp_path):
    service_token, backoffice_token = "s" * 40, "b" * 40
    settings = Settings(mode=Mode.PRODUCTION, database_url=f"sqlite:///{tmp_path / 'p.db'}",
                        service_token=service_token, backoffice_token=backoffice_token)
    assert settings.sandbox_fixtures is False
    app = create_app(settings)
    try:
        with TestClient(app) as client:
            listed = client.get("/v1/sandbox/demo-borrowers", headers=bearer(service_token))
            anonymous = client.get("/v1/sandbox/demo-borrowers")
            spec = client.get("/v1/openapi.json").json()
    finally:
        app.state.engine.dispose()
    assert listed.status_code == 404
    assert listed.json() == {"error": {"code": "not_found", "message": "Not Found",
                                       "details": {}}}
    assert_unauthorized(anonymous)
    assert not [path for path in spec["paths"] if "sandbox" in path]


# --- malformed ids ------------------------------------------------------------------------------

MALFORMED_BORROWER_IDS = {
    "space": "bad%20id",
    "leading-dash": "-demo",
    "too-long": "a" * 65,
    "dot": "demo.eligible",
    "non-ascii": "%C3%A9t%C3%A9",
    "trailing-newline": "demo-eligible%0A",
    "quote": "demo%27--",
}


@pytest.mark.parametrize("borrower_id", MALFORMED_BORROWER_IDS.values(),
                         ids=MALFORMED_BORROWER_IDS.keys())
def test_malformed_borrower_id_is_400(shared, borrower_id):
    nothing_written = NothingWritten(shared)
    for suffix in ("/eligibility", "", "/appeals"):
        response = shared.client.get(f"/v1/borrowers/{borrower_id}{suffix}", headers=SERVICE)
        assert response.status_code == 400, suffix
        assert error_code(response) == "invalid_borrower_id"
    nothing_written.check()


def test_longest_valid_borrower_id_is_merely_unknown(shared):
    response = shared.client.get(f"/v1/borrowers/{'a' * 64}/eligibility", headers=SERVICE)
    assert response.status_code == 404


@pytest.mark.parametrize("appeal_id, status, code", [
    ("not-an-appeal", 400, "invalid_appeal_id"),
    ("ap20260310-abcdef", 400, "invalid_appeal_id"),
    ("AP20260310-ABCDEF%0A", 400, "invalid_appeal_id"),
    ("AP20260310-ABCDEF", 404, "appeal_not_found"),
])
def test_appeal_ids(shared, appeal_id, status, code):
    response = shared.client.get(f"/v1/borrowers/demo-eligible/appeals/{appeal_id}",
                                 headers=SERVICE)
    assert response.status_code == status
    assert error_code(response) == code


def test_unknown_route_and_method_are_json_errors(shared):
    missing = shared.client.get("/v1/nothing-here", headers=SERVICE)
    assert missing.status_code == 404 and error_code(missing) == "not_found"
    wrong_method = shared.client.delete("/v1/borrowers/demo-eligible/eligibility",
                                        headers=SERVICE)
    assert wrong_method.status_code == 405 and error_code(wrong_method) == "method_not_allowed"


# --- bad appeal requests: a clear 4xx and nothing written ---------------------------------------

MISSING = object()
LIMIT = 16 * 1024


def appeal_body(decision_id: str, /, **changes: Any) -> dict[str, Any]:
    body = {"borrower_id": "demo-reduced", "decision_id": decision_id,
            "statement": "The reduction was a mistake.", "channel": "chat", **changes}
    return {k: v for k, v in body.items() if v is not MISSING}


def raw(text: str) -> bytes:
    return text.encode("utf-8")


def streamed(size: int):  # type: ignore[no-untyped-def]
    """A body sent in chunks with no Content-Length (Transfer-Encoding: chunked)."""
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"statement": "'
        for _ in range(size // 1024):
            yield b"a" * 1024
        yield b'"}'
    return chunks()


BAD_APPEAL_REQUESTS: list[Any] = [
    pytest.param(lambda d: {"content": raw(json.dumps(appeal_body(d, statement="a" * LIMIT)))},
                 413, "body_too_large", None, id="huge-with-content-length"),
    pytest.param(lambda d: {"content": streamed(4 * LIMIT)},
                 413, "body_too_large", None, id="huge-streamed"),
    pytest.param(lambda d: {"content": raw(json.dumps(appeal_body(d)))[:-1] + b' "\xff\xfe"}'},
                 400, "invalid_encoding", None, id="non-utf8-bytes"),
    pytest.param(lambda d: {"content": json.dumps(appeal_body(d)).encode("latin-1")
                 .replace(b"mistake", "d\u00e9j\u00e0".encode("latin-1"))},
                 400, "invalid_encoding", None, id="latin-1"),
    pytest.param(lambda d: {"content": raw(json.dumps(appeal_body(d, statement="\ud800 x")))},
                 400, "invalid_encoding", None, id="lone-surrogate-escape"),
    pytest.param(lambda d: {"content": b'{"borrower_id": "demo-reduced",'},
                 400, "invalid_json", None, id="truncated-json"),
    pytest.param(lambda d: {"content": b""}, 400, "invalid_json", None, id="empty-body"),
    pytest.param(lambda d: {"content": b"[" * 5000 + b"]" * 5000},
                 400, "json_too_deep", None, id="deeply-nested"),
    pytest.param(lambda d: {"json": [appeal_body(d)]}, 422, "validation_error", None,
                 id="array-not-object"),
    pytest.param(lambda d: {"json": appeal_body(d, borrower_id=123)},
                 422, "validation_error", ["borrower_id"], id="borrower-id-number"),
    pytest.param(lambda d: {"json": appeal_body(d, decision_id=None)},
                 422, "validation_error", ["decision_id"], id="decision-id-null"),
    pytest.param(lambda d: {"json": appeal_body(d, statement=["a", "b"])},
                 422, "validation_error", ["statement"], id="statement-list"),
    pytest.param(lambda d: {"json": appeal_body(d, statement=" \n\t ")},
                 422, "validation_error", ["statement"], id="statement-blank"),
    pytest.param(lambda d: {"json": appeal_body(d, statement="a" * 2001)},
                 422, "validation_error", ["statement"], id="statement-too-long"),
    pytest.param(lambda d: {"json": appeal_body(d, channel="fax")},
                 422, "validation_error", ["channel"], id="channel-unknown"),
    pytest.param(lambda d: {"json": appeal_body(d, reason_code="limit_reduced")},
                 422, "validation_error", ["reason_code"], id="reason-code-lowercase"),
    pytest.param(lambda d: {"json": appeal_body(d, reason_code=7)},
                 422, "validation_error", ["reason_code"], id="reason-code-number"),
    pytest.param(lambda d: {"json": appeal_body(d, statement=MISSING, channel=MISSING)},
                 422, "validation_error", ["statement", "channel"], id="fields-missing"),
    pytest.param(lambda d: {"json": appeal_body(d, approved=True)},
                 422, "validation_error", ["approved"], id="extra-field"),
    pytest.param(lambda d: {"json": appeal_body(d), "headers": {"Idempotency-Key": None}},
                 422, "validation_error", ["header.Idempotency-Key"], id="no-idempotency-key"),
    pytest.param(lambda d: {"json": appeal_body(d), "headers": {"Idempotency-Key": "short"}},
                 400, "invalid_idempotency_key", None, id="idempotency-key-too-short"),
    pytest.param(lambda d: {"json": appeal_body(d), "headers": {"Idempotency-Key": "k" * 201}},
                 400, "invalid_idempotency_key", None, id="idempotency-key-too-long"),
    pytest.param(lambda d: {"content": raw(json.dumps(appeal_body(d))),
                            "headers": {"Content-Type": "text/plain"}},
                 415, "unsupported_media_type", None, id="text-plain"),
    pytest.param(lambda d: {"data": {"borrower_id": "demo-reduced"}},
                 415, "unsupported_media_type", None, id="form-encoded"),
    pytest.param(lambda d: {"content": raw(json.dumps(appeal_body(d))),
                            "headers": {"Content-Type": None}},
                 415, "unsupported_media_type", None, id="no-content-type"),
    pytest.param(lambda d: {"json": appeal_body(d, borrower_id="bad id!")},
                 400, "invalid_borrower_id", None, id="malformed-borrower-id"),
    pytest.param(lambda d: {"json": appeal_body(d, borrower_id="nobody-42")},
                 404, "borrower_not_found", None, id="unknown-borrower"),
    pytest.param(lambda d: {"json": appeal_body("dec_000000000000000000000000")},
                 404, "decision_not_found", None, id="unknown-decision"),
]


def post_appeal(client: TestClient, kwargs: dict[str, Any], key: str) -> Any:
    """POST /v1/appeals as a client would; ``kwargs["headers"]`` values of None drop a header."""
    kwargs = dict(kwargs)
    headers = {**SERVICE, "Content-Type": "application/json", "Idempotency-Key": key,
               **kwargs.pop("headers", {})}
    if "json" in kwargs:
        kwargs["content"] = raw(json.dumps(kwargs.pop("json")))
    if "data" in kwargs:
        headers.pop("Content-Type")
    return client.post("/v1/appeals", headers={k: v for k, v in headers.items() if v is not None},
                       **kwargs)


@pytest.mark.parametrize("request_for, status, code, fields", BAD_APPEAL_REQUESTS)
def test_bad_appeal_request(shared, request_for, status, code, fields):
    decision_id = shared.api.eligibility("demo-reduced")["decision_id"]
    nothing_written = NothingWritten(shared)

    response = post_appeal(shared.client, request_for(decision_id), "bad-request-0001")

    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    if fields is not None:
        assert sorted(f["field"] for f in error["details"]["fields"]) == sorted(fields)
    nothing_written.check()


def test_idempotency_key_of_a_rejected_request_stays_usable(api, seeded, appeal_count):
    decision_id = api.eligibility("demo-reduced")["decision_id"]
    for bad in ({"json": appeal_body(decision_id, channel="fax")},
                {"content": b"{not json"}):
        assert post_appeal(api.client, bad, "reusable-key-01").status_code in (400, 422)
    assert appeal_count() == 0

    good = post_appeal(api.client, {"json": appeal_body(decision_id)}, "reusable-key-01")

    assert good.status_code == 201, good.text
    assert appeal_count() == 1


@pytest.mark.parametrize("padding, status", [(0, 201), (1, 413)])
def test_body_size_limit_is_inclusive(api, seeded, appeal_count, padding, status):
    decision_id = api.eligibility("demo-reduced")["decision_id"]
    body = raw(json.dumps(appeal_body(decision_id)))
    body += b" " * (LIMIT - len(body) + padding)  # JSON allows trailing whitespace

    response = post_appeal(api.client, {"content": body}, "size-limit-01")

    assert response.status_code == status, response.text
    assert appeal_count() == (1 if status == 201 else 0)


# --- bad back-office requests -----------------------------------------------------------------

BAD_TRANSITIONS = {
    "unknown-status": ({"status": "approved"}, 422, "validation_error"),
    "no-status": ({"note": "no status"}, 422, "validation_error"),
    "blank-note": ({"status": "rejected", "note": "   "}, 422, "validation_error"),
    "limit-as-string": ({"status": "upheld", "restored_limit": "50000"}, 422, "validation_error"),
    "limit-zero": ({"status": "upheld", "restored_limit": 0}, 422, "validation_error"),
    "limit-fraction": ({"status": "upheld", "restored_limit": 50_000.5}, 422,
                       "validation_error"),
    "extra-field": ({"status": "upheld", "by": "me"}, 422, "validation_error"),
    "rejected-without-note": ({"status": "rejected"}, 422, "note_required"),
    "skips-review": ({"status": "upheld"}, 409, "invalid_transition"),
}


def test_bad_transitions_change_nothing(api: Api, seeded, engine):
    appeal = api.file("demo-reduced")
    before = api.eligibility("demo-reduced")
    url = f"/v1/backoffice/appeals/{appeal['appeal_id']}/transitions"

    for case, (body, status, code) in BAD_TRANSITIONS.items():
        response = api.client.post(url, json=body, headers=BACKOFFICE)
        assert (response.status_code, error_code(response)) == (status, code), case
    wrong_type = api.client.post(url, content=b'{"status": "in_review"}',
                                 headers={**BACKOFFICE, "Content-Type": "text/plain"})
    assert wrong_type.status_code == 415

    assert api.client.get(f"/v1/borrowers/demo-reduced/appeals/{appeal['appeal_id']}",
                          headers=SERVICE).json() == appeal
    assert count_rows(engine, ReasonWaiver) == 0
    assert api.eligibility("demo-reduced") == before


def test_decision_ids_are_reused_per_borrower_when_borrowers_interleave(
        api, seeded, clock, engine):
    """Asking about several borrowers in turn must not store a new decision each time."""
    first: dict[str, str] = {}
    for _round in range(3):
        for borrower_id in ("demo-eligible", "demo-posting", "demo-closed"):
            clock.advance(MINUTE)
            decision_id = api.eligibility(borrower_id)["decision_id"]
            assert first.setdefault(borrower_id, decision_id) == decision_id
    assert count_rows(engine, Decision, borrower_id="demo-posting") == 1
