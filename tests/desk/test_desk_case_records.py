"""The borrower's records in the console (issue 13, item 2): ``GET /api/agent/cases/{id}/
records`` asks the backend's loans, repayments and reminders routes (here a fake behind
``httpx.MockTransport``) for the borrower of a case the agent can read, and says plainly when
the backend cannot answer.

Cases (written straight into the desk's database): #waiting (b-wait, nobody has it), #mine
(b-mine, claimed by agent2), #theirs (b-theirs, claimed by agent1, the supervisor).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone

import httpx
import pytest
from desk_support import BACKEND_TOKEN, AgentApi, error_code
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from desk.models import Case, Conversation
from desk.records import BackendRecords

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)

LOANS = {
    "borrower_id": "b-wait", "currency": "CNY", "timezone": "Asia/Shanghai", "total": 1,
    "next_offset": None,
    "loans": [{
        "loan_id": "L-1", "principal": 3000.0, "interest": 90.0, "total_repayable": 3090.0,
        "outstanding_principal": 2000.0, "remaining_to_repay": 2060.0, "status": "open",
        "opened_at": "2026-09-01T02:00:00Z", "instalments_total": 3, "instalments_paid": 1,
        "next_due_date": "2026-11-01T15:59:59Z",
        "instalments": [
            {"number": 1, "due_date": "2026-10-01T15:59:59Z", "principal": 1000.0,
             "interest": 30.0, "amount": 1030.0, "status": "paid",
             "paid_at": "2026-09-30T03:00:00Z", "days_late": None},
            {"number": 2, "due_date": "2026-11-01T15:59:59Z", "principal": 1000.0,
             "interest": 30.0, "amount": 1030.0, "status": "overdue", "paid_at": None,
             "days_late": 18},
            {"number": 3, "due_date": "2026-12-01T15:59:59Z", "principal": 1000.0,
             "interest": 30.0, "amount": 1030.0, "status": "unpaid", "paid_at": None,
             "days_late": None},
        ]}],
}
REPAYMENTS = {
    "borrower_id": "b-wait", "currency": "CNY", "timezone": "Asia/Shanghai", "total": 1,
    "next_offset": None,
    "repayments": [{
        "repayment_id": "R-1", "loan_id": "L-1", "instalment_number": 1, "amount": 1030.0,
        "channel": "app", "paid_at": "2026-09-30T02:00:00Z", "status": "posted",
        "posted_at": "2026-09-30T03:00:00Z", "expected_post_at": None, "delayed": False}],
}
REMINDERS = {"borrower_id": "b-wait", "enabled": True, "days_before": 3,
             "updated_at": "2026-11-02T01:00:00Z"}


class FakeBackend:
    """The backend's three records routes for the borrowers in ``known``; every request is
    kept. ``mode``: ``ok``, ``down`` (connection refused), ``slow`` (past the timeout),
    ``error`` (500), ``garbled`` (200 without the fields)."""

    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.mode = "ok"
        self.requests: list[httpx.Request] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "slow":
            await asyncio.sleep(2)
        if request.headers.get("authorization") != f"Bearer {BACKEND_TOKEN}":
            return httpx.Response(401, json={"error": {"code": "unauthorized"}})
        if self.mode == "error":
            return httpx.Response(500, text="boom")
        parts = request.url.path.split("/")  # '', v1, borrowers, <id>, <what>
        borrower, what = parts[3], parts[4]
        if borrower not in self.known:
            return httpx.Response(404, json={"error": {"code": "borrower_not_found"}})
        if self.mode == "garbled":
            return httpx.Response(200, json={"borrower_id": borrower})
        body = {"loans": LOANS, "repayments": REPAYMENTS, "reminders": REMINDERS}[what]
        return httpx.Response(200, content=json.dumps({**body, "borrower_id": borrower}))


@pytest.fixture
def backend(app: FastAPI) -> FakeBackend:
    fake = FakeBackend({"b-wait", "b-mine", "b-theirs"})
    app.state.desk.records = BackendRecords("http://backend.test", BACKEND_TOKEN, timeout=0.3,
                                            transport=httpx.MockTransport(fake.handle))
    return fake


@pytest.fixture
def cases(sessions: sessionmaker[Session], agents: list[AgentApi]) -> dict[str, int]:
    supervisor, agent = agents
    made = {}
    with sessions() as session:
        for name, borrower, status, claimer in (("waiting", "b-wait", "waiting", None),
                                                ("mine", "b-mine", "claimed", agent.id),
                                                ("theirs", "b-theirs", "claimed", supervisor.id),
                                                ("stranger", "b-stranger", "waiting", None)):
            session.add(Conversation(id=f"c-{name}", borrower_id=borrower, locale="zh-CN",
                                     owner="agent", created_at=NOW, updated_at=NOW))
            session.flush()
            case = Case(conversation_id=f"c-{name}", borrower_id=borrower, language="zh",
                        reason="borrower_asked", status=status, claimed_by=claimer,
                        created_at=NOW, claimed_at=NOW if claimer else None,
                        context={"topics": [], "appeal_ids": [], "transcript": []})
            session.add(case)
            session.flush()
            made[name] = case.id
        session.commit()
    return made


def records(agent: AgentApi, case_id: int) -> httpx.Response:
    return agent.get(f"/api/agent/cases/{case_id}/records")


def test_an_agent_reads_the_records_of_a_waiting_case(
        backend: FakeBackend, cases: dict[str, int], agents: list[AgentApi]) -> None:
    response = records(agents[1], cases["waiting"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["case_id"] == cases["waiting"]
    assert body["borrower_id"] == "b-wait"
    assert body["known"] is True
    assert body["currency"] == "CNY" and body["timezone"] == "Asia/Shanghai"
    [loan] = body["loans"]
    assert (loan["loan_id"], loan["principal"], loan["remaining_to_repay"],
            loan["instalments_paid"], loan["instalments_total"]) == ("L-1", 3000.0, 2060.0, 1, 3)
    assert [(i["number"], i["amount"], i["status"], i["days_late"])
            for i in loan["instalments"]] == [(1, 1030.0, "paid", None),
                                              (2, 1030.0, "overdue", 18),
                                              (3, 1030.0, "unpaid", None)]
    assert body["loans_total"] == 1
    assert [(r["repayment_id"], r["amount"], r["status"], r["instalment_number"])
            for r in body["repayments"]] == [("R-1", 1030.0, "posted", 1)]
    assert body["repayments_total"] == 1
    assert body["reminders"] == {"enabled": True, "days_before": 3,
                                 "updated_at": "2026-11-02T01:00:00Z"}
    # the three routes, for that borrower, with the service token and bounded pages
    asked = sorted((r.url.path, dict(r.url.params)) for r in backend.requests)
    assert asked == [("/v1/borrowers/b-wait/loans", {"limit": "20"}),
                     ("/v1/borrowers/b-wait/reminders", {}),
                     ("/v1/borrowers/b-wait/repayments", {"limit": "20"})]


def test_the_agent_who_claimed_the_case_and_a_supervisor_read_it(
        backend: FakeBackend, cases: dict[str, int], agents: list[AgentApi]) -> None:
    supervisor, agent = agents
    assert records(agent, cases["mine"]).json()["borrower_id"] == "b-mine"
    assert records(supervisor, cases["mine"]).json()["borrower_id"] == "b-mine"
    assert records(supervisor, cases["theirs"]).json()["borrower_id"] == "b-theirs"


def test_another_agents_case_is_refused_without_asking_the_backend(
        backend: FakeBackend, cases: dict[str, int], agents: list[AgentApi],
        client: TestClient) -> None:
    agent = agents[1]
    refused = records(agent, cases["theirs"])
    assert refused.status_code == 403
    assert error_code(refused) == "forbidden"
    missing = records(agent, 999_999)
    assert missing.status_code == 404
    assert error_code(missing) == "case_not_found"
    assert client.get(f"/api/agent/cases/{cases['waiting']}/records").status_code == 401
    assert backend.requests == []


@pytest.mark.parametrize("mode", ["down", "slow", "error", "garbled"])
def test_a_backend_that_cannot_answer_is_a_clear_503(
        backend: FakeBackend, cases: dict[str, int], agents: list[AgentApi], mode: str,
        caplog: pytest.LogCaptureFixture) -> None:
    backend.mode = mode
    response = records(agents[1], cases["waiting"])
    assert response.status_code == 503
    assert error_code(response) == "records_unavailable"
    assert "b-wait" in caplog.text  # the log names the borrower
    backend.mode = "ok"  # and the next look works again (nothing kept from the failure)
    assert records(agents[1], cases["waiting"]).status_code == 200


def test_a_slow_backend_is_cut_off_at_the_timeout(
        backend: FakeBackend, cases: dict[str, int], agents: list[AgentApi]) -> None:
    backend.mode = "slow"  # 2 s against a 0.3 s timeout
    started = time.monotonic()
    assert records(agents[1], cases["waiting"]).status_code == 503
    assert time.monotonic() - started < 1.5


def test_a_borrower_the_backend_does_not_know(
        backend: FakeBackend, cases: dict[str, int], agents: list[AgentApi]) -> None:
    response = records(agents[1], cases["stranger"])
    assert response.status_code == 200
    assert response.json() == {"case_id": cases["stranger"], "borrower_id": "b-stranger",
                               "known": False}


def test_the_wired_client_uses_the_settings(app: FastAPI) -> None:
    """create_app puts the backend's records client on the context (RELEND_BACKEND_URL and
    RELEND_BACKEND_TOKEN, as the demo login)."""
    source = app.state.desk.records
    assert isinstance(source, BackendRecords)
    assert (source.base_url, source.token) == ("http://backend.test", BACKEND_TOKEN)


def test_a_refused_token_is_unavailable_not_unknown(
        app: FastAPI, backend: FakeBackend, cases: dict[str, int],
        agents: list[AgentApi]) -> None:
    """A production desk without RELEND_BACKEND_TOKEN: the backend says 401, the panel says
    the records cannot be read (not that the borrower has none)."""
    app.state.desk.records = BackendRecords("http://backend.test", "", timeout=0.3,
                                            transport=httpx.MockTransport(backend.handle))
    response = records(agents[1], cases["waiting"])
    assert response.status_code == 503
    assert error_code(response) == "records_unavailable"
    assert len(backend.requests) == 3
