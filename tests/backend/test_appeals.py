"""Appeals on SQLite and PostgreSQL: filing, idempotency, the lifecycle, and concurrency."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from common.db import make_session_factory
from eligibility import service
from eligibility.errors import ServiceError
from eligibility.models import Appeal, CreditLine, ReasonWaiver, RiskReview
from eligibility.seed import seed

from .support import SERVICE_TOKEN, count_rows

HOUR = timedelta(hours=1)


def error_code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


# --- filing -----------------------------------------------------------------------------------


def test_file_an_appeal(api, seeded, clock, appeal_count):
    decision = api.eligibility("demo-reduced")

    response = api.appeal("demo-reduced", decision["decision_id"], key="file-appeal-0001",
                          statement="  The cut was based on an old salary.  ", channel="app")

    assert response.status_code == 201, response.text
    appeal = response.json()
    assert appeal == {
        "appeal_id": appeal["appeal_id"],
        "borrower_id": "demo-reduced",
        "decision_id": decision["decision_id"],
        "reason_code": "LIMIT_REDUCED",  # the decision's first appealable reason
        "statement": "The cut was based on an old salary.",
        "channel": "app",
        "status": "submitted",
        "submitted_at": "2026-03-10T04:00:00Z",
        "respond_by": "2026-03-13T04:00:00Z",  # now + 72 hours
        "updated_at": "2026-03-10T04:00:00Z",
        "resolution_note": None,
        "restored_limit": None,
    }
    assert service.APPEAL_ID_PATTERN.fullmatch(appeal["appeal_id"])
    assert appeal["appeal_id"].startswith("AP20260310-")
    assert appeal_count() == 1


def test_appeal_names_one_reason_of_several(api, seeded):
    decision = api.eligibility("demo-overdue-reduced")
    codes = [r["code"] for r in decision["reasons"] if r["appealable"]]
    assert codes == ["OVERDUE_COOLING_OFF", "LIMIT_REDUCED"]

    response = api.appeal("demo-overdue-reduced", decision["decision_id"],
                          reason_code="LIMIT_REDUCED")

    assert response.status_code == 201, response.text
    assert response.json()["reason_code"] == "LIMIT_REDUCED"


def test_replay_with_the_same_key_returns_the_same_appeal(api, seeded, clock, appeal_count):
    decision_id = api.eligibility("demo-reduced")["decision_id"]
    first = api.appeal("demo-reduced", decision_id, key="replay-key-0001")
    clock.advance(HOUR)  # a client retrying later still gets the original answer

    replay = api.appeal("demo-reduced", decision_id, key="replay-key-0001")

    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()
    assert appeal_count() == 1


@pytest.mark.parametrize("change", [
    {"statement": "A different statement."},
    {"channel": "phone"},
    {"reason_code": "LIMIT_REDUCED"},  # explicit, where the first request left it implicit
])
def test_same_key_with_a_different_body_is_409(api, seeded, appeal_count, change):
    decision_id = api.eligibility("demo-reduced")["decision_id"]
    first = api.appeal("demo-reduced", decision_id, key="reused-key-0001").json()

    response = api.appeal("demo-reduced", decision_id, key="reused-key-0001", **change)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert response.json()["error"]["details"] == {"appeal_id": first["appeal_id"]}
    assert appeal_count() == 1


@pytest.mark.parametrize("borrower_id, reason_code, code", [
    ("demo-compliance", "COMPLIANCE_HOLD", "reason_not_appealable"),
    ("demo-funding", "FUNDING_QUOTA_EXHAUSTED", "reason_not_appealable"),
    ("demo-in-use", "LIMIT_IN_USE", "reason_not_appealable"),
    ("demo-id-score-funding", "IDENTITY_VERIFICATION_REQUIRED", "reason_not_appealable"),
    ("demo-compliance", "LIMIT_REDUCED", "reason_not_in_decision"),
    ("demo-compliance", None, "decision_not_appealable"),
    ("demo-eligible", None, "decision_not_appealable"),  # nothing to appeal
])
def test_non_appealable_reasons_are_422(shared, borrower_id, reason_code, code):
    decision_id = shared.api.eligibility(borrower_id)["decision_id"]
    fields = {} if reason_code is None else {"reason_code": reason_code}

    response = shared.api.appeal(borrower_id, decision_id, **fields)

    assert response.status_code == 422, response.text
    assert error_code(response) == code
    assert count_rows(shared.engine, Appeal) == 0


def test_line_closed_at_the_borrowers_request_cannot_be_appealed(api, seeded, session,
                                                                 appeal_count):
    session.get(CreditLine, "demo-closed").closed_reason = "borrower_request"
    session.commit()
    decision = api.eligibility("demo-closed")
    assert decision["reasons"][0]["appealable"] is False

    response = api.appeal("demo-closed", decision["decision_id"])

    assert response.status_code == 422
    assert error_code(response) == "decision_not_appealable"
    assert appeal_count() == 0


def test_decision_of_another_borrower_is_404(shared):
    others = shared.api.eligibility("demo-risk-review")["decision_id"]

    response = shared.api.appeal("demo-reduced", others)

    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "decision_not_found",
        "message": "No decision with this id was made for this borrower.",
        "details": {"decision_id": others, "borrower_id": "demo-reduced"},
    }
    assert count_rows(shared.engine, Appeal) == 0


def test_second_open_appeal_for_the_same_reason_is_409(api, seeded, appeal_count):
    first = api.file("demo-reduced")
    decision_id = api.eligibility("demo-reduced")["decision_id"]

    response = api.appeal("demo-reduced", decision_id, statement="Again, please.")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "appeal_already_open"
    assert response.json()["error"]["details"] == {"appeal_id": first["appeal_id"],
                                                   "status": "submitted"}
    assert appeal_count() == 1


def test_open_appeals_for_different_reasons_may_coexist(api, seeded, appeal_count):
    api.file("demo-overdue-reduced", reason_code="OVERDUE_COOLING_OFF")
    api.file("demo-overdue-reduced", reason_code="LIMIT_REDUCED")
    assert appeal_count(borrower_id="demo-overdue-reduced") == 2


def test_listing_and_reading_appeals(api, client, seeded, clock):
    older = api.file("demo-overdue-reduced", reason_code="OVERDUE_COOLING_OFF")
    clock.advance(HOUR)
    newer = api.file("demo-overdue-reduced", reason_code="LIMIT_REDUCED")

    listing = client.get("/v1/borrowers/demo-overdue-reduced/appeals", headers=api.service)
    single = client.get(f"/v1/borrowers/demo-overdue-reduced/appeals/{older['appeal_id']}",
                        headers=api.service)
    nobody_elses = client.get("/v1/borrowers/demo-reduced/appeals", headers=api.service)

    assert listing.status_code == 200
    assert listing.json() == {"borrower_id": "demo-overdue-reduced", "appeals": [newer, older]}
    assert single.json() == older
    assert nobody_elses.json() == {"borrower_id": "demo-reduced", "appeals": []}


# --- lifecycle --------------------------------------------------------------------------------


@pytest.mark.parametrize("borrower_id, reason_code, total_after, restored", [
    ("demo-reduced", "LIMIT_REDUCED", 50_000.0, 50_000.0),
    ("demo-closed", "CREDIT_LINE_CLOSED", 15_000.0, 15_000.0),
    ("demo-risk-review", "RISK_REVIEW_NOT_PASSED", 15_000.0, None),
    ("demo-policy", "RISK_POLICY_TIGHTENED", 8_000.0, None),
    ("demo-score-drop", "CREDIT_SCORE_DROPPED", 12_000.0, None),
    ("demo-overdue", "OVERDUE_COOLING_OFF", 10_000.0, None),
])
def test_upheld_appeal_changes_the_next_decision(api, seeded, clock, borrower_id, reason_code,
                                                 total_after, restored):
    before = api.eligibility(borrower_id)
    assert reason_code in [r["code"] for r in before["reasons"]]
    appeal = api.file(borrower_id, reason_code=reason_code)

    clock.advance(HOUR)
    in_review = api.move(appeal["appeal_id"], "in_review")
    assert in_review.status_code == 200, in_review.text
    assert in_review.json()["status"] == "in_review"
    assert api.eligibility(borrower_id)["reasons"] == before["reasons"]  # not decided yet

    clock.advance(HOUR)
    upheld = api.move(appeal["appeal_id"], "upheld", note="Checked with the risk team.")
    assert upheld.status_code == 200, upheld.text
    assert upheld.json() == {
        **appeal, "status": "upheld", "updated_at": "2026-03-10T06:00:00Z",
        "resolution_note": "Checked with the risk team.", "restored_limit": restored,
    }

    clock.advance(HOUR)
    after = api.eligibility(borrower_id)
    assert after["decision_id"] != before["decision_id"]
    assert after["reasons"] == []
    assert after["eligible"] is True
    assert after["total_limit"] == after["available_limit"] == total_after


def test_upheld_appeal_restores_the_limit_the_back_office_names(api, seeded):
    appeal = api.file("demo-reduced")
    api.move(appeal["appeal_id"], "in_review")

    upheld = api.move(appeal["appeal_id"], "upheld", restored_limit=30_000)

    assert upheld.json()["restored_limit"] == 30_000.0
    decision = api.eligibility("demo-reduced")
    assert (decision["total_limit"], decision["reasons"]) == (30_000.0, [])


def test_waiver_only_covers_the_evidence_it_was_judged_on(api, seeded, session, clock):
    appeal = api.file("demo-risk-review")
    api.move(appeal["appeal_id"], "in_review")
    assert api.move(appeal["appeal_id"], "upheld").status_code == 200
    assert api.eligibility("demo-risk-review")["reasons"] == []

    clock.advance(24 * HOUR)  # a new periodic review fails again
    session.add(RiskReview(borrower_id="demo-risk-review", reviewed_at=clock.now - HOUR,
                           passed=False))
    session.commit()

    decision = api.eligibility("demo-risk-review")
    assert [r["code"] for r in decision["reasons"]] == ["RISK_REVIEW_NOT_PASSED"]
    # ... and it can be appealed again: the earlier appeal is closed
    response = api.appeal("demo-risk-review", decision["decision_id"])
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("path", [[], ["in_review"]], ids=["from-submitted", "from-in-review"])
def test_rejected_appeal_needs_a_note_and_changes_nothing(api, seeded, clock, engine, path):
    before = api.eligibility("demo-reduced")
    appeal = api.file("demo-reduced")
    for status in path:
        assert api.move(appeal["appeal_id"], status).status_code == 200

    clock.advance(HOUR)
    no_note = api.move(appeal["appeal_id"], "rejected")
    assert no_note.status_code == 422
    assert error_code(no_note) == "note_required"

    rejected = api.move(appeal["appeal_id"], "rejected", note="The review stands.")
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["resolution_note"] == "The review stands."
    assert rejected.json()["restored_limit"] is None

    after = api.eligibility("demo-reduced")
    assert after["decision_id"] == before["decision_id"]
    assert after["reasons"] == before["reasons"]
    assert count_rows(engine, ReasonWaiver) == 0
    # the reason is open for a fresh appeal once this one is decided
    assert api.appeal("demo-reduced", after["decision_id"]).status_code == 201


@pytest.mark.parametrize("path, target, allowed", [
    ([], "upheld", ["in_review", "rejected"]),
    ([], "submitted", None),  # not a status one can move to: a validation error
    (["in_review"], "in_review", ["rejected", "upheld"]),
    (["in_review", "upheld"], "rejected", []),
    (["in_review", "upheld"], "upheld", []),
    (["rejected"], "in_review", []),
    (["rejected"], "upheld", []),
])
def test_invalid_transitions_are_409(api, seeded, engine, path, target, allowed):
    appeal = api.file("demo-reduced")
    for status in path:
        note = "Decided." if status == "rejected" else None
        assert api.move(appeal["appeal_id"], status, note=note).status_code == 200

    response = api.move(appeal["appeal_id"], target, note="Once more.")

    if allowed is None:
        assert response.status_code == 422
        return
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "invalid_transition"
    assert response.json()["error"]["details"]["allowed"] == allowed
    expected_waivers = 1 if "upheld" in path else 0
    assert count_rows(engine, ReasonWaiver) == expected_waivers


def test_transition_rereads_the_status_under_the_lock(api, seeded, engine):
    """A back-office request that loaded the appeal before another one decided it must not
    act on the stale status (here: reject an appeal that was upheld meanwhile)."""
    appeal = api.file("demo-risk-review")
    api.move(appeal["appeal_id"], "in_review")
    with make_session_factory(engine)() as stale:
        loaded = stale.get(Appeal, appeal["appeal_id"])  # held: the identity map is weak
        assert loaded.status == "in_review"
        assert api.move(appeal["appeal_id"], "upheld").status_code == 200

        with pytest.raises(ServiceError) as raised:
            service.move_appeal(stale, appeal["appeal_id"], status="rejected", note="Too late.",
                                restored_limit=None, now=datetime.now(timezone.utc))
        stale.rollback()

    assert (raised.value.status, raised.value.code) == (409, "invalid_transition")
    assert count_rows(engine, Appeal, status="upheld") == 1


# --- many clients at once, against a real server ---------------------------------------------

THREADS = 25


def post_all_at_once(base_url: str, requests: list[tuple[dict[str, Any], str]]
                     ) -> list[httpx.Response]:
    """POST each (body, idempotency key) from its own thread and connection, released together."""
    barrier = threading.Barrier(len(requests))
    responses: list[Any] = [None] * len(requests)

    def post(index: int, body: dict[str, Any], key: str) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            barrier.wait()
            responses[index] = client.post(
                "/v1/appeals", json=body,
                headers={"Authorization": f"Bearer {SERVICE_TOKEN}", "Idempotency-Key": key})

    threads = [threading.Thread(target=post, args=(i, body, key))
               for i, (body, key) in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(r is not None for r in responses), "a request thread did not finish"
    return responses


@pytest.fixture
def live_decision(live_server, session) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Demo data seeded at the real "now" (the server's clock), and a decision to appeal."""
    seed(session, datetime.now(timezone.utc))
    response = httpx.get(f"{live_server.base_url}/v1/borrowers/demo-risk-review/eligibility",
                         headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def appeal_request(decision: dict[str, Any], statement: str = "Please look again.") -> dict:
    return {"borrower_id": decision["borrower_id"], "decision_id": decision["decision_id"],
            "statement": statement, "channel": "chat"}


def test_concurrent_posts_with_one_key_file_one_appeal(live_server, live_decision, engine):
    body = appeal_request(live_decision)

    responses = post_all_at_once(live_server.base_url,
                                 [(body, "concurrent-key-0001")] * THREADS)

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: THREADS - 1}, [r.text for r in responses]
    assert len({r.json()["appeal_id"] for r in responses}) == 1
    assert count_rows(engine, Appeal) == 1


def test_concurrent_appeals_for_one_reason_open_one(live_server, live_decision, engine):
    requests = [(appeal_request(live_decision, f"Attempt {i}"), f"concurrent-key-{i:04d}")
                for i in range(THREADS)]

    responses = post_all_at_once(live_server.base_url, requests)

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: THREADS - 1}, [r.text for r in responses]
    created = next(r.json() for r in responses if r.status_code == 201)
    assert {r.json()["error"]["details"]["appeal_id"] for r in responses
            if r.status_code == 409} == {created["appeal_id"]}
    assert count_rows(engine, Appeal) == 1


def test_real_server_rejects_a_huge_chunked_body(live_server, appeal_count):
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(64):
            yield b"x" * 1024

    response = httpx.post(f"{live_server.base_url}/v1/appeals", content=chunks(), timeout=30,
                          headers={"Authorization": f"Bearer {SERVICE_TOKEN}",
                                   "Content-Type": "application/json",
                                   "Idempotency-Key": "chunked-key-0001"})

    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert error_code(response) == "body_too_large"
    assert appeal_count() == 0
