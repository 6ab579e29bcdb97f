"""The insights page (/console/insights) in Chromium: a supervisor reaches it from the console,
sees the charts (Chart.js drew them), the tables and the groups of messages the bot did not
understand, labels a group (it lands in the review file) and exports the CSV; an agent has no
link and the page refuses them.

No Rasa here: the desk runs under uvicorn on its own SQLite database with a small history,
and reads a tracker store written here (the ``events`` table of Rasa's SQL tracker store),
so the figures are known: 3 borrower messages today, 2 conversations (1 handed off), and
three messages not understood in two groups; c-a was blocked by OVERDUE_COOLING_OFF and filed
an appeal against it, upheld half an hour later (the desk's appeal_decided notice).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text

from common.db import make_engine, make_session_factory
from desk.migrate import upgrade
from desk.models import Case, Conversation, Message, Notice
from desk.service import ensure_demo_data
from tests.browser.helpers import PASSWORD, agent_login, csp_violations
from tests.conftest import serve_asgi

EVENTS = Table(  # Rasa 3.6's SQLEvent (rasa/core/tracker_store.py)
    "events", MetaData(),
    Column("id", Integer, primary_key=True), Column("sender_id", String(255), nullable=False),
    Column("type_name", String(255), nullable=False), Column("timestamp", Float),
    Column("intent_name", String(255)), Column("action_name", String(255)),
    Column("data", Text),
)


def _user(sender: str, when: datetime, text: str, intent: str, confidence: float
          ) -> dict[str, Any]:
    data = {"event": "user", "timestamp": when.timestamp(), "text": text,
            "parse_data": {"text": text, "intent": {"name": intent, "confidence": confidence},
                           "intent_ranking": [{"name": intent, "confidence": confidence}]}}
    return {"sender_id": sender, "type_name": "user", "timestamp": when.timestamp(),
            "intent_name": intent, "action_name": None, "data": json.dumps(data)}


def _slot(sender: str, when: datetime, name: str, value: Any) -> dict[str, Any]:
    return {"sender_id": sender, "type_name": "slot", "timestamp": when.timestamp(),
            "intent_name": None, "action_name": None,
            "data": json.dumps({"event": "slot", "name": name, "value": value})}


def _action(sender: str, when: datetime, name: str) -> dict[str, Any]:
    return {"sender_id": sender, "type_name": "action", "timestamp": when.timestamp(),
            "intent_name": None, "action_name": name,
            "data": json.dumps({"event": "action", "name": name})}


@pytest.fixture(scope="module")
def insights_desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The desk with the history above; yields its URL and its review folder."""
    var = tmp_path_factory.mktemp("insights")
    desk_url, tracker_url = f"sqlite:///{var / 'desk.db'}", f"sqlite:///{var / 'tracker.db'}"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    earlier = now - timedelta(hours=1) if now.hour >= 1 else now - timedelta(minutes=now.minute)
    upgrade(desk_url)
    engine = make_engine(desk_url)
    with make_session_factory(engine)() as session:
        ensure_demo_data(session, PASSWORD, demo_agents=True)
        for cid in ("c-a", "c-b"):
            session.add(Conversation(id=cid, borrower_id=f"b-{cid}", locale="zh-CN",
                                     owner="bot", created_at=earlier, updated_at=earlier))
        session.flush()
        for cid in ("c-a", "c-a", "c-b"):
            session.add(Message(conversation_id=cid, sender="borrower", text="…",
                                created_at=earlier, state="done"))
        session.add(Case(conversation_id="c-b", borrower_id="b-c-b", language="zh",
                         reason="not_understood", status="closed", created_at=earlier,
                         context={"decision": {"reasons": [{"code": "overdue_history",
                                                            "blocking": True}]}}))
        filed = earlier + timedelta(seconds=10)
        session.add(Notice(key="appeal_decided:AP-T-1", borrower_id="b-c-a",
                           kind="appeal_decided", state="delivered",
                           data={"appeal_id": "AP-T-1", "reason_code": "OVERDUE_COOLING_OFF",
                                 "status": "upheld"},
                           occurred_at=filed + timedelta(minutes=30), received_at=filed
                           + timedelta(minutes=30), state_at=filed + timedelta(minutes=30)))
        session.commit()
    engine.dispose()
    engine = make_engine(tracker_url)
    EVENTS.create(engine)
    with engine.begin() as connection:
        connection.execute(EVENTS.insert(), [
            _user("c-a", earlier, "今天天气怎么样", "out_of_scope", 0.93),
            _action("c-a", earlier, "utter_out_of_scope"),
            _user("c-a", earlier + timedelta(seconds=5), "天气怎么样", "out_of_scope", 0.9),
            _action("c-a", earlier + timedelta(seconds=5), "utter_out_of_scope"),
            _user("c-b", earlier, "我的手机13812345678", "nlu_fallback", 0.2),
            _action("c-b", earlier, "action_clarify"),
            _slot("c-a", earlier, "primary_reason", "OVERDUE_COOLING_OFF"),
            _slot("c-a", earlier + timedelta(seconds=10), "appeal_reason_code",
                  "OVERDUE_COOLING_OFF"),
            _slot("c-a", earlier + timedelta(seconds=10), "appeal_ids", ["AP-T-1"]),
        ])
    engine.dispose()
    review = var / "review"
    env = {**os.environ, "RELEND_ENV": "sandbox", "RELEND_DESK_DB_URL": desk_url,
           "RELEND_INSIGHTS_TRACKER_URL": tracker_url, "RELEND_REVIEW_DIR": str(review),
           "RELEND_RASA_URL": "http://127.0.0.1:9", "RELEND_BACKEND_URL": "http://127.0.0.1:9",
           "RELEND_DESK_ASSISTANT_PROBE_SECONDS": "3600", "RELEND_DESK_REDIS_URL": "",
           "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    with serve_asgi("desk.asgi:app", env, ["--ws", "websockets"]) as base_url:
        yield base_url, review


def test_a_supervisor_sees_the_charts_and_labels_a_group(new_page, insights_desk, shots) -> None:  # type: ignore[no-untyped-def]
    desk_url, review = insights_desk
    page = new_page("desktop")
    agent_login(page, desk_url, "agent1")
    page.get_by_test_id("insights-link").click()
    page.wait_for_url(f"{desk_url}/console/insights")
    page.get_by_test_id("missed-group").first.wait_for()

    assert page.get_by_test_id("sum-questions").inner_text() == "3"
    assert page.get_by_test_id("sum-conversations").inner_text() == "2"
    assert page.get_by_test_id("sum-handed").inner_text() == "1"
    assert page.get_by_test_id("sum-missed").inner_text() == "3"
    assert page.get_by_test_id("sum-appeals").inner_text() == "1"
    for name in ("questions", "blocked", "handoffs", "confidence", "appeals", "appeal-hours"):
        # Chart.js drew a chart on the canvas (not a picture of our own)
        assert page.evaluate(f"() => !!Chart.getChart(document.getElementById('chart-{name}'))")
    for name in ("questions", "blocked", "handoffs", "confidence", "appeals"):
        assert page.get_by_test_id(f"table-{name}").locator("tbody tr").count() >= 1
    # reason codes in the console's words (its code kept in the title); a code without words
    # yet as it is
    blocked = page.get_by_test_id("table-blocked").locator("tbody tr")
    assert [blocked.nth(n).locator("td").first.inner_text() for n in range(2)] == [
        "逾期后冷静期", "overdue_history"]
    assert blocked.first.locator("td").first.get_attribute("title") == "OVERDUE_COOLING_OFF"
    assert page.get_by_test_id("table-handoffs").locator("tbody td").first.inner_text() \
        == "not_understood"  # no words: nothing sends this reason today
    appeals = page.get_by_test_id("table-appeals").locator("tbody tr")
    assert [appeals.nth(n).locator("td").all_inner_texts() for n in range(2)] == [
        ["逾期后冷静期", "1", "1", "0", "0", "0.5 小时", "0.5 小时"],
        ["全部原因", "1", "1", "0", "0", "0.5 小时", "0.5 小时"]]
    assert page.evaluate("() => Chart.getChart(document.getElementById('chart-appeals'))"
                         ".data.labels") == ["逾期后冷静期"]

    groups = page.get_by_test_id("missed-group")
    assert groups.count() == 2
    weather = groups.first
    texts = [g.get_by_test_id("missed-text").all_inner_texts() for g in groups.all()]
    assert texts == [["今天天气怎么样", "天气怎么样"], ["我的手机138****5678"]]

    weather.get_by_test_id("label-intent").select_option("chitchat")
    weather.get_by_test_id("label-button").click()
    result = weather.get_by_test_id("label-result")
    page.wait_for_function("(el) => el.getAttribute('data-added') !== null",
                           arg=result.element_handle())
    assert result.get_attribute("data-added") == "2"
    page.screenshot(path=str(shots / "insights-supervisor.png"), full_page=True)
    filed = yaml.safe_load((review / "chitchat.yml").read_text(encoding="utf-8"))
    examples = filed["nlu"][0]["examples"]
    assert [e["text"] for e in examples] == ["今天天气怎么样", "天气怎么样"]
    assert {e["metadata"]["labelled_by"] for e in examples} == {"李娜 Li Na"}

    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    body = Path(download.value.path()).read_bytes().decode("utf-8")
    assert download.value.suggested_filename.startswith("relend-insights-")
    assert body.startswith("\ufeffsection,key,count,share,appealed,handed_off,text\r\n")
    assert "138****5678" in body and "13812345678" not in body

    assert "appeals_upheld,OVERDUE_COOLING_OFF,1,1.0,,,\r\n" in body
    assert "appeal_hours_median,all,0.5,,,,\r\n" in body

    page.get_by_test_id("insights-locale").locator("[data-ui-lang=en]").click()
    assert page.get_by_test_id("export-csv").inner_text() == "Export CSV"
    assert page.get_by_test_id("table-blocked").locator("tbody td").first.inner_text() \
        == "Cooling-off after a late payment"
    assert page.get_by_test_id("table-appeals").locator("tbody td").nth(5).inner_text() == "0.5 h"
    assert page.errors == [] and csp_violations(page) == []


def test_an_agent_has_no_insights(new_page, insights_desk) -> None:  # type: ignore[no-untyped-def]
    desk_url, _review = insights_desk
    page = new_page("desktop")
    agent_login(page, desk_url, "agent2")
    assert page.get_by_test_id("insights-link").is_hidden()
    page.goto(f"{desk_url}/console/insights")
    gate = page.get_by_test_id("insights-gate")
    gate.wait_for()
    assert gate.get_attribute("data-reason") == "supervisor"
    assert page.get_by_test_id("insights").is_hidden()
    token = requests.post(f"{desk_url}/api/agent/login",
                          json={"username": "agent2", "password": PASSWORD}, timeout=10).json()
    response = requests.get(f"{desk_url}/api/agent/insights",
                            headers={"Authorization": f"Bearer {token['token']}"}, timeout=10)
    assert response.status_code == 403


def test_without_a_session_the_page_asks_to_sign_in(new_page, insights_desk) -> None:  # type: ignore[no-untyped-def]
    desk_url, _review = insights_desk
    page = new_page("desktop")
    page.goto(f"{desk_url}/console/insights")
    page.get_by_test_id("insights-gate").wait_for()
    assert page.get_by_test_id("insights-gate").get_attribute("data-reason") == "login"
    assert requests.get(f"{desk_url}/api/agent/insights", timeout=10).status_code == 401
