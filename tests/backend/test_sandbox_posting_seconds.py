"""The sandbox fixture's ``posts_in_seconds`` (eligibility/sandbox.py): a repayment that posts a
few seconds after the fixture is written, for scripts that wait for its notice. Figures by
hand from the test clock (T0 = 2026-03-10 04:00:00 UTC) and the fixture."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from common.db import make_session_factory
from eligibility.scheduler import tick

from .support import T0, make_settings

PATH = "/v1/backoffice/sandbox/borrowers/qa-seconds"


def fixture(**repayment: Any) -> dict[str, Any]:
    """A 3,000 loan wholly using a 3,000 limit, with one 1,500 repayment (instalment 1 of 2)."""
    return {"limit": 3000, "loans": [{"principal": 3000, "outstanding": 3000,
                                      "instalments_total": 2}],
            "repayments": [{"amount": 1500, "paid_minutes_ago": 10, **repayment}]}


def repayments(api) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    response = api.client.get("/v1/borrowers/qa-seconds/repayments", headers=api.service)
    assert response.status_code == 200, response.text
    return response.json()["repayments"]


@pytest.mark.parametrize(("repayment", "expected_post_at"), [
    ({"posts_in_seconds": 5}, "2026-03-10T04:00:05Z"),
    ({"posts_in_seconds": -30}, "2026-03-10T03:59:30Z"),  # late by half a minute
    ({"posts_in_minutes": 2}, "2026-03-10T04:02:00Z"),  # minutes still work
])
def test_a_repayment_posts_the_given_seconds_after_the_fixture(api, backoffice_auth,
                                                                repayment, expected_post_at):
    response = api.client.put(PATH, json=fixture(**repayment), headers=backoffice_auth)

    assert response.status_code == 204, response.text
    (posting,) = repayments(api)
    assert (posting["status"], posting["amount"], posting["paid_at"]) == (
        "posting", 1500.0, "2026-03-10T03:50:00Z")
    assert posting["expected_post_at"] == expected_post_at
    assert posting["delayed"] is expected_post_at.startswith("2026-03-10T03")


def test_the_decision_waits_for_it_and_the_sandbox_ledger_posts_it_on_time(
        api, backoffice_auth, clock, engine, migrated_url):
    sessions, settings = make_session_factory(engine), make_settings(migrated_url)
    tick(sessions, T0, settings)  # the scheduler ran before the fixture was written
    api.client.put(PATH, json=fixture(posts_in_seconds=5), headers=backoffice_auth)
    decision = api.client.get("/v1/borrowers/qa-seconds/eligibility", headers=api.service)

    # 3,000 - 3,000 = 0 available until it posts: the repayment posting is the reason
    assert decision.status_code == 200, decision.text
    assert "REPAYMENT_POSTING" in [r["code"] for r in decision.json()["reasons"]]
    assert tick(sessions, T0 + timedelta(seconds=4), settings).recorded == {}
    assert tick(sessions, T0 + timedelta(seconds=6), settings).recorded == {
        "repayment_posted": 1}
    (posted,) = repayments(api)
    assert (posted["status"], posted["posted_at"]) == ("posted", "2026-03-10T04:00:05Z")


def test_minutes_and_seconds_together_are_refused(api, backoffice_auth):
    response = api.client.put(PATH, json=fixture(posts_in_minutes=1, posts_in_seconds=5),
                              headers=backoffice_auth)

    assert response.status_code == 422, response.text
    assert "posts_in_minutes or posts_in_seconds" in response.text
