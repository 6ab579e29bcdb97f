"""The per-turn cost cuts are active in the servers the stack starts (docs/performance.md):
Rasa runs with stack/rasa_patches.py applied, its SQLite tracker store is in WAL mode, and
identity and language reach the conversation without an extra action per message (from the
first message of a session, even when only Rasa's own response answers it)."""

from __future__ import annotations

import sqlite3
import uuid

import pytest
import requests

from stack import rasa_patches
from stack.rasa_auth import rasa_headers
from stack.services import Stack
from tests.e2e.channel import api, say

pytestmark = pytest.mark.servers


def test_rasa_was_started_with_every_patch(live_stack: Stack) -> None:
    log = (live_stack.config.log_dir / "rasa.log").read_text(errors="replace")
    applied = "; ".join(rasa_patches.PATCHES)
    assert f"Rasa {rasa_patches.PINNED_RASA} patched: {applied}" in log
    assert "WARNING: not patched" not in log


def test_the_tracker_store_runs_in_wal_mode(live_stack: Stack) -> None:
    say(live_stack.config, f"e2e-{uuid.uuid4().hex[:10]}", "你好", "demo-posting", "zh-CN")
    with sqlite3.connect(live_stack.config.tracker_db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_greeting_alone_is_answered_in_the_language_it_is_written_in(live_stack: Stack) -> None:
    """No custom action runs for a greeting: Rasa's own response follows the language the
    NLU found in the message, whatever the app's locale (docs/nlu-labelling.md)."""
    sender = f"e2e-{uuid.uuid4().hex[:10]}"
    replies = say(live_stack.config, sender, "hello there", "demo-posting", "zh-CN")
    assert any("Relend assistant" in (r.get("text") or "") for r in replies), replies
    slots = api(live_stack.config, "GET", f"/conversations/{sender}/tracker").json()["slots"]
    assert slots["borrower_id"] == "demo-posting" and slots["language"] == "en"


def test_a_turn_runs_no_slot_mapping_action(live_stack: Stack) -> None:
    # the loaded model's domain has no action Rasa would call after every message
    loaded = requests.get(f"{live_stack.config.url('rasa')}/domain", timeout=30, headers={
        **rasa_headers(live_stack.config.rasa_jwt_secret), "Accept": "application/json"})
    assert loaded.status_code == 200, loaded.text
    assert "action_session_start" in loaded.json()["actions"]
    assert "action_validate_slot_mappings" not in loaded.json()["actions"]
    sender = f"e2e-{uuid.uuid4().hex[:10]}"
    replies = say(live_stack.config, sender, "我已经还清了，为什么现在借不了款？", "demo-closed",
                  "zh-CN")
    assert any("关闭" in (r.get("text") or "") for r in replies), replies
    events = api(live_stack.config, "GET", f"/conversations/{sender}/tracker").json()["events"]
    actions = [e.get("name") for e in events if e.get("event") == "action"]
    assert "action_validate_slot_mappings" not in actions
    assert actions.count("action_explain_decision") == 1
