"""Insights for the lender (desk/insights.py, docs/insights.md): figures from a small history
written here -- desk records and Rasa tracker events in a real tracker table (the columns of
Rasa 3.6's ``SQLEvent``), SQLite and PostgreSQL -- with the answers counted by hand; the CSV;
labelling into the review folder; who may see what.

The history (period 2026-11-02 .. 2026-11-04, UTC days):

=====  ==========================================  =================  =====================
conv   borrower messages (desk)                    case (desk)        tracker
=====  ==========================================  =================  =====================
c1     11-02 10:00                                 --                 cannot_borrow 0.92,
                                                                      primary_reason
                                                                      repayment_pending
c2     11-02 12:00, 11-03 09:00                    11-03 borrower_    request_appeal 0.85,
                                                   asked, blocking    request_human 0.95, a
                                                   overdue_history    button "/request_human",
                                                                      primary_reason
                                                                      overdue_history, appeal
c3     11-03 15:00, 15:01, 11-04 08:00             11-04 not_under-   nlu_fallback (chitchat
                                                   stood, blocking    0.25) + clarify; greet
                                                   credit_review,     0.41 + clarify;
                                                   an appeal id       out_of_scope 0.97
c4     11-04 20:00                                 --                 out_of_scope 0.88
c5     11-01 23:59:59, 11-05 00:00 (outside)       11-05 (outside)    outside the period
=====  ==========================================  =================  =====================
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from desk_support import AgentApi, error_code, on_every_database
from fastapi.testclient import TestClient
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, create_engine
from sqlalchemy.orm import Session, sessionmaker

from desk import insights
from desk.models import Case, Conversation, Message

PERIOD = "/api/agent/insights?from=2026-11-02&to=2026-11-04"
SUPERVISOR_NAME = "李娜 Li Na"


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc)


# --- the tracker store, as Rasa 3.6 creates it (rasa/core/tracker_store.py: SQLEvent) -------------

EVENTS = Table(
    "events", MetaData(),
    Column("id", Integer, primary_key=True), Column("sender_id", String(255), nullable=False),
    Column("type_name", String(255), nullable=False), Column("timestamp", Float),
    Column("intent_name", String(255)), Column("action_name", String(255)),
    Column("data", Text),
)


def user(sender: str, stamp: str, text: str, intent: str, confidence: float,
         ranking: list[tuple[str, float]] | None = None) -> dict[str, Any]:
    ranking = ranking or [(intent, confidence)]
    data = {"event": "user", "timestamp": at(stamp).timestamp(), "text": text,
            "parse_data": {"text": text, "intent": {"name": intent, "confidence": confidence},
                           "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking],
                           "entities": []},
            "input_channel": "relend_desk", "metadata": {}}
    return {"sender_id": sender, "type_name": "user", "timestamp": data["timestamp"],
            "intent_name": intent, "action_name": None, "data": json.dumps(data)}


def action(sender: str, stamp: str, name: str) -> dict[str, Any]:
    data = {"event": "action", "timestamp": at(stamp).timestamp(), "name": name,
            "policy": "RulePolicy", "confidence": 1.0}
    return {"sender_id": sender, "type_name": "action", "timestamp": data["timestamp"],
            "intent_name": None, "action_name": name, "data": json.dumps(data)}


def slot(sender: str, stamp: str, name: str, value: Any) -> dict[str, Any]:
    data = {"event": "slot", "timestamp": at(stamp).timestamp(), "name": name, "value": value}
    return {"sender_id": sender, "type_name": "slot", "timestamp": data["timestamp"],
            "intent_name": None, "action_name": None, "data": json.dumps(data)}


TRACKER = [
    user("c1", "2026-11-02 10:00:01", "为什么借不了", "cannot_borrow_after_repayment", 0.92),
    action("c1", "2026-11-02 10:00:02", "action_check_eligibility"),
    slot("c1", "2026-11-02 10:00:02", "primary_reason", "repayment_pending"),
    user("c2", "2026-11-02 12:00:01", "我要申诉", "request_appeal", 0.85),
    slot("c2", "2026-11-02 12:00:02", "primary_reason", "overdue_history"),
    slot("c2", "2026-11-02 12:05:00", "appeal_ids", ["AP-2026-000001"]),
    user("c2", "2026-11-03 09:00:01", "转人工", "request_human", 0.95),
    user("c2", "2026-11-03 09:00:30", "/request_human", "request_human", 1.0),  # a button
    user("c3", "2026-11-03 15:00:01", "asdf 我的手机13812345678", "nlu_fallback", 0.3,
         [("nlu_fallback", 0.3), ("chitchat", 0.25), ("greet", 0.1)]),
    action("c3", "2026-11-03 15:00:02", "action_clarify"),
    action("c3", "2026-11-03 15:00:02", "action_listen"),
    user("c3", "2026-11-03 15:01:01", "嗯嗯那个东西", "greet", 0.41),
    action("c3", "2026-11-03 15:01:02", "action_clarify"),
    user("c3", "2026-11-04 08:00:01", "天气怎么样", "out_of_scope", 0.97),
    action("c3", "2026-11-04 08:00:02", "utter_out_of_scope"),
    user("c4", "2026-11-04 20:00:01", "今天天气怎么样", "out_of_scope", 0.88),
    action("c4", "2026-11-04 20:00:02", "utter_out_of_scope"),
    # outside the period: the day before and the day after
    user("c5", "2026-11-01 23:59:59", "额度呢", "nlu_fallback", 0.2),
    slot("c5", "2026-11-01 23:59:59", "primary_reason", "funding_quota"),
    user("c5", "2026-11-05 00:00:00", "还是不行", "out_of_scope", 0.6),
]


def write_history(session: Session) -> None:
    def conversation(cid: str, first: str) -> None:
        session.add(Conversation(id=cid, borrower_id=f"b-{cid}", locale="zh-CN", owner="bot",
                                 created_at=at(first), updated_at=at(first)))

    def said(cid: str, stamp: str, text: str = "…", sender: str = "borrower") -> None:
        session.add(Message(conversation_id=cid, sender=sender, text=text, created_at=at(stamp),
                            state="done" if sender == "borrower" else None))

    def case(cid: str, stamp: str, reason: str, codes: list[tuple[str, bool]],
             appeal_ids: list[str]) -> None:
        decision = {"reasons": [{"code": c, "blocking": b} for c, b in codes]}
        session.add(Case(conversation_id=cid, borrower_id=f"b-{cid}", language="zh",
                         reason=reason, status="waiting", created_at=at(stamp),
                         context={"topics": [], "decision": decision, "appeal_ids": appeal_ids,
                                  "transcript": []}))

    for cid in ("c1", "c2", "c3", "c4", "c5"):
        conversation(cid, "2026-11-01 08:00:00")
    session.flush()
    said("c1", "2026-11-02 10:00:00")
    said("c1", "2026-11-02 10:00:03", "bot says", "bot")  # not a question
    said("c2", "2026-11-02 12:00:00")
    said("c2", "2026-11-03 09:00:00")
    said("c3", "2026-11-03 15:00:00")
    said("c3", "2026-11-03 15:01:00")
    said("c3", "2026-11-04 08:00:00")
    said("c4", "2026-11-04 20:00:00")
    said("c5", "2026-11-01 23:59:59")
    said("c5", "2026-11-05 00:00:00")
    case("c2", "2026-11-03 09:01:00", "borrower_asked",
         [("overdue_history", True), ("limit_info", False)], [])
    case("c3", "2026-11-04 08:05:00", "not_understood", [("credit_review", True)],
         ["AP-2026-000002"])
    case("c5", "2026-11-05 00:00:01", "borrower_asked", [("funding_quota", True)], [])
    session.commit()


@pytest.fixture
def tracker_url(db_kind: str, database_url: str, tmp_path: Path) -> str:
    """The tracker's ``events`` table: a SQLite file of its own, or on PostgreSQL in the
    test's schema (beside the desk's tables, as a shared server would hold it)."""
    return f"sqlite:///{tmp_path / 'tracker.db'}" if db_kind == "sqlite" else database_url


@pytest.fixture
def history(sessions: sessionmaker[Session], tracker_url: str, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The history above; yields the review folder."""
    with sessions() as session:
        write_history(session)
    engine = create_engine(tracker_url, future=True)  # as Rasa opens it: no pragmas
    try:
        EVENTS.create(engine)
        with engine.begin() as connection:
            connection.execute(EVENTS.insert(), TRACKER)
    finally:
        engine.dispose()
    monkeypatch.setenv("RELEND_INSIGHTS_TRACKER_URL", tracker_url)
    monkeypatch.setenv("RELEND_REVIEW_DIR", str(tmp_path / "review"))
    yield tmp_path / "review"


# --- the figures ----------------------------------------------------------------------------------

@on_every_database
def test_figures_of_the_period(history: Path, agents: list[AgentApi]) -> None:
    response = agents[0].get(PERIOD)
    assert response.status_code == 200, response.text
    figures = response.json()
    assert figures["period"] == {"from": "2026-11-02", "to": "2026-11-04"}
    assert figures["tracker_available"] is True
    assert figures["questions_per_day"] == [
        {"day": "2026-11-02", "questions": 2}, {"day": "2026-11-03", "questions": 3},
        {"day": "2026-11-04", "questions": 2}]
    assert figures["questions"] == 7
    assert figures["conversations"] == {"total": 4, "resolved_by_bot": 2, "handed_off": 2,
                                        "resolved_share": 0.5}
    assert figures["handoff_reasons"] == [
        {"reason": "borrower_asked", "cases": 1, "share": 0.5},
        {"reason": "not_understood", "cases": 1, "share": 0.5}]
    # c1 (tracker), c2 (case and tracker), c3 (case); c4 was never blocked; limit_info is
    # not blocking; c5's funding_quota is outside the period
    assert figures["blocked"] == {"conversations": 3, "reasons": [
        {"code": "credit_review", "conversations": 1, "share": 0.3333, "appealed": 1,
         "handed_off": 1},
        {"code": "overdue_history", "conversations": 1, "share": 0.3333, "appealed": 1,
         "handed_off": 1},
        {"code": "repayment_pending", "conversations": 1, "share": 0.3333, "appealed": 0,
         "handed_off": 0}]}
    # typed messages only: 0.92 0.85 0.95 | 0.25 (chitchat under the fallback) 0.41 0.97 | 0.88
    assert [b["messages"] for b in figures["confidence"]] == [0, 0, 1, 0, 1, 0, 0, 0, 2, 3]
    assert figures["confidence"][0] == {"from": 0.0, "to": 0.1, "messages": 0}
    assert figures["confidence"][9] == {"from": 0.9, "to": 1.0, "messages": 3}
    missed = figures["not_understood"]
    assert missed["messages"] == 4
    assert missed["by_kind"] == {"clarify": 1, "fallback": 1, "out_of_scope": 2}
    groups = [[(t["text"], t["count"]) for t in g["texts"]] for g in missed["groups"]]
    assert groups == [[("今天天气怎么样", 1), ("天气怎么样", 1)],
                      [("asdf 我的手机138****5678", 1)],
                      [("嗯嗯那个东西", 1)]]
    assert [g["messages"] for g in missed["groups"]] == [2, 1, 1]
    assert missed["groups"][0]["kinds"] == {"out_of_scope": 2}
    assert "13812345678" not in response.text


def test_without_a_tracker_store_the_desk_figures_remain(
        sessions: sessionmaker[Session], agents: list[AgentApi], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with sessions() as session:
        write_history(session)
    monkeypatch.setenv("RELEND_INSIGHTS_TRACKER_URL", "")
    monkeypatch.setenv("RELEND_TRACKER_DB", str(tmp_path / "no-such-tracker.db"))
    figures = agents[0].get(PERIOD).json()
    assert figures["tracker_available"] is False
    assert figures["questions"] == 7
    assert figures["conversations"]["handed_off"] == 2
    # only what the cases say: c2 overdue_history, c3 credit_review (with its appeal id)
    assert [(r["code"], r["appealed"]) for r in figures["blocked"]["reasons"]] == [
        ("credit_review", 1), ("overdue_history", 0)]
    assert figures["not_understood"] == {"messages": 0, "by_kind": {}, "groups": []}
    assert not (tmp_path / "no-such-tracker.db").exists()  # not created by looking


def test_csv_export(history: Path, agents: list[AgentApi]) -> None:
    response = agents[0].get(PERIOD.replace("insights?", "insights.csv?"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="relend-insights-2026-11-02-2026-11-04.csv"')
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(body[1:])))
    assert rows[0] == ["section", "key", "count", "share", "appealed", "handed_off", "text"]
    assert all(len(row) == 7 for row in rows)
    assert rows[1:4] == [["questions_per_day", "2026-11-02", "2", "", "", "", ""],
                         ["questions_per_day", "2026-11-03", "3", "", "", "", ""],
                         ["questions_per_day", "2026-11-04", "2", "", "", "", ""]]
    assert ["conversations", "resolved_by_bot", "2", "0.5", "", "", ""] in rows
    assert ["blocked_reason", "overdue_history", "1", "0.3333", "1", "1", ""] in rows
    assert ["confidence", "0.9-1.0", "3", "", "", "", ""] in rows
    texts = [row[6] for row in rows if row[0] == "not_understood"]
    assert texts == ["今天天气怎么样", "天气怎么样", "asdf 我的手机138****5678", "嗯嗯那个东西"]
    # 3 days, 3 conversation rows, 2 handoff reasons, 3 blocked reasons, 10 buckets, 4 texts,
    # and 6 appeal rows (filed, upheld, rejected, pending, median and p90 hours) for "all" and
    # for c2's appeal, whose reason this history does not give ("unknown")
    assert len(rows) == 1 + 3 + 3 + 2 + 3 + 10 + 4 + 2 * 6
    assert "13812345678" not in body


def test_csv_cells_never_run_as_formulas() -> None:
    assert insights._cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert insights._cell("+1") == "'+1"
    assert insights._cell("@x") == "'@x"
    assert insights._cell("天气") == "天气"


# --- the period and who may ask -------------------------------------------------------------------

@pytest.mark.parametrize("query", [
    "from=2026-11-05&to=2026-11-04",  # reversed
    "from=2026-13-01&to=2026-11-04",  # no such date
    "from=yesterday",
    "from=2026-01-01&to=2026-06-30",  # 181 days
    "to=2999-01-01",  # the future
])
def test_a_bad_period_is_a_422(agents: list[AgentApi], query: str) -> None:
    for path in ("/api/agent/insights?", "/api/agent/insights.csv?"):
        response = agents[0].get(path + query)
        assert response.status_code == 422, (query, response.text)
        assert error_code(response) == "invalid_period"


def test_the_longest_period_is_92_days(agents: list[AgentApi]) -> None:
    response = agents[0].get("/api/agent/insights?from=2026-01-01&to=2026-04-02")
    assert response.status_code == 200
    assert len(response.json()["questions_per_day"]) == 92
    assert agents[0].get("/api/agent/insights?from=2026-01-01&to=2026-04-03").status_code == 422


def test_supervisors_only(client: TestClient, agents: list[AgentApi]) -> None:
    label = {"intent": "chitchat", "texts": ["天气怎么样"]}
    for method, path, body in (("GET", PERIOD, None),
                               ("GET", "/api/agent/insights.csv", None),
                               ("POST", "/api/agent/insights/label", label)):
        assert client.request(method, path, json=body).status_code == 401
        refused = agents[1].request(method, path, body)  # agent2: an agent
        assert refused.status_code == 403
        assert error_code(refused) == "forbidden"
    assert client.get("/console/insights").status_code == 200  # the page; its data is guarded


# --- labelling ------------------------------------------------------------------------------------

def test_labelling_writes_a_reviewed_example_once(history: Path, agents: list[AgentApi]) -> None:
    supervisor = agents[0]
    first = supervisor.post("/api/agent/insights/label",
                            {"intent": "chitchat", "texts": ["今天天气怎么样", "天气怎么样"]})
    assert first.status_code == 200, first.text
    assert first.json() == {"intent": "chitchat", "file": "chitchat.yml",
                            "added": ["今天天气怎么样", "天气怎么样"], "already": [],
                            "other_intent": []}
    path = history / "chitchat.yml"
    written = path.read_bytes()
    document = yaml.safe_load(written)
    assert document["version"] == "3.1"
    [block] = document["nlu"]
    assert block["intent"] == "chitchat"
    assert [e["text"] for e in block["examples"]] == ["今天天气怎么样", "天气怎么样"]
    for example in block["examples"]:
        assert example["metadata"]["labelled_by"] == SUPERVISOR_NAME
        assert example["metadata"]["source"] == "insights"
        labelled = datetime.fromisoformat(example["metadata"]["labelled_at"].replace("Z", "+00:00"))
        assert abs((datetime.now(timezone.utc) - labelled).total_seconds()) < 60

    again = supervisor.post("/api/agent/insights/label",
                            {"intent": "chitchat", "texts": ["天气怎么样"]})
    assert again.json()["added"] == [] and again.json()["already"] == ["天气怎么样"]
    assert path.read_bytes() == written  # not touched

    elsewhere = supervisor.post("/api/agent/insights/label",
                                {"intent": "out_of_scope", "texts": ["天气怎么样", "讲个笑话"]})
    assert elsewhere.json()["other_intent"] == ["天气怎么样"]
    assert elsewhere.json()["added"] == ["讲个笑话"]
    assert [e["text"] for e in yaml.safe_load((history / "out_of_scope.yml").read_text())
            ["nlu"][0]["examples"]] == ["讲个笑话"]
    assert sorted(p.name for p in history.glob("*.yml")) == ["chitchat.yml", "out_of_scope.yml"]


def test_labelled_text_is_masked(history: Path, agents: list[AgentApi]) -> None:
    response = agents[0].post("/api/agent/insights/label", {
        "intent": "report_app_error",
        "texts": ["我的手机13812345678收不到验证码", "身份证110105194912310021"]})
    assert response.status_code == 200
    content = (history / "report_app_error.yml").read_text(encoding="utf-8")
    assert "13812345678" not in content and "110105194912310021" not in content
    examples = yaml.safe_load(content)["nlu"][0]["examples"]
    assert [e["text"] for e in examples] == ["我的手机138****5678收不到验证码",
                                             "身份证110105********0021"]


@pytest.mark.parametrize(("body", "code"), [
    ({"intent": "no_such_intent", "texts": ["x"]}, "unknown_intent"),
    ({"intent": "nlu_fallback", "texts": ["x"]}, "unknown_intent"),
    ({"intent": "chitchat", "texts": ["   "]}, "invalid_text"),
])
def test_labelling_refuses(history: Path, agents: list[AgentApi], body: dict[str, Any],
                           code: str) -> None:
    response = agents[0].post("/api/agent/insights/label", body)
    assert response.status_code == 422
    assert error_code(response) == code
    assert not list(history.glob("*.yml")) if history.exists() else True


def test_labelling_validates_the_body(history: Path, agents: list[AgentApi]) -> None:
    assert agents[0].post("/api/agent/insights/label",
                          {"intent": "chitchat", "texts": []}).status_code == 422
    assert agents[0].post("/api/agent/insights/label",
                          {"intent": "chitchat", "texts": ["x"] * 51}).status_code == 422
    assert agents[0].post("/api/agent/insights/label",
                          {"intent": "chitchat", "texts": ["x" * 501]}).status_code == 422


def test_rasa_reads_the_review_file_as_nlu_data(history: Path, agents: list[AgentApi]) -> None:
    """The file is in Rasa's NLU format (a person moves it into data/nlu/ after review)."""
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    agents[0].post("/api/agent/insights/label", {"intent": "greet", "texts": ["哈喽呀"]})
    data = RasaYAMLReader().read(history / "greet.yml")
    assert [(m.get("text"), m.get("intent")) for m in data.intent_examples] == [("哈喽呀", "greet")]


def test_the_embedded_tracker_file_is_read_without_being_changed(
        history: Path, tmp_path: Path, agents: list[AgentApi],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The default: RELEND_TRACKER_DB, opened read-only (its journal mode stays Rasa's)."""
    monkeypatch.setenv("RELEND_INSIGHTS_TRACKER_URL", "")
    monkeypatch.setenv("RELEND_TRACKER_DB", str(tmp_path / "tracker.db"))
    figures = agents[0].get(PERIOD).json()
    assert figures["tracker_available"] is True
    assert figures["not_understood"]["messages"] == 4
    with sqlite3.connect(tmp_path / "tracker.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)


def test_an_unreadable_tracker_store_leaves_the_desk_figures(
        sessions: sessionmaker[Session], tmp_path: Path, agents: list[AgentApi],
        monkeypatch: pytest.MonkeyPatch) -> None:
    with sessions() as session:
        write_history(session)
    sqlite3.connect(tmp_path / "not-a-tracker.db").close()  # no events table
    monkeypatch.setenv("RELEND_INSIGHTS_TRACKER_URL", f"sqlite:///{tmp_path / 'not-a-tracker.db'}")
    response = agents[0].get(PERIOD)
    assert response.status_code == 200
    assert response.json()["tracker_available"] is False
    assert response.json()["questions"] == 7
