"""The feed path end to end, all real: the eligibility backend (seeded demo, served by
uvicorn) posts demo-posting's repayment through its back office, which records
``repayment_posted`` in its outbox; ``python -m notices once`` reads the outbox feed, checks
the borrower's decision and hands the change to the desk (uvicorn, SQLite), which tells the
borrower in their chat. Run again, the notifier goes on from the desk's cursor: nothing twice."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import select, text

from common.db import make_engine, make_session_factory
from desk.migrate import upgrade as upgrade_desk
from desk.models import Message, Notice
from desk.service import open_conversation, utc_now
from eligibility.migrate import upgrade as upgrade_backend
from eligibility.seed import seed
from tests.backend.support import BACKOFFICE_TOKEN, SERVICE_TOKEN, settings_env
from tests.conftest import ROOT, serve_asgi

pytestmark = pytest.mark.servers
DESK_TOKEN = "feed-test-desk-token-0123456789abcdef"


def once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "notices", "once"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_posted_repayment_reaches_the_chat_once(tmp_path: Path) -> None:
    backend_url = f"sqlite:///{tmp_path / 'eligibility.db'}"
    desk_url = f"sqlite:///{tmp_path / 'desk.db'}"
    upgrade_backend(backend_url)
    upgrade_desk(desk_url)
    backend_engine, desk_engine = make_engine(backend_url), make_engine(desk_url)
    seeded_at = utc_now()
    with make_session_factory(backend_engine)() as session:
        seed(session, seeded_at)
    desk_sessions = make_session_factory(desk_engine)
    with desk_sessions() as session:
        conversation_id = open_conversation(session, "demo-posting", "zh-CN", utc_now()).id
    backend_env = {**settings_env(backend_url), "RELEND_OUTBOX_FEED_SETTLE_SECONDS": "0",
                   "RELEND_ENV": "sandbox"}
    desk_env = {**os.environ, "RELEND_ENV": "sandbox", "RELEND_DESK_DB_URL": desk_url,
                "RELEND_DESK_TOKEN": DESK_TOKEN, "RELEND_RASA_URL": "http://127.0.0.1:9",
                "RELEND_DESK_REDIS_URL": ""}
    with serve_asgi("eligibility.asgi:app", backend_env) as backend, \
            serve_asgi("desk.asgi:app", desk_env) as desk:
        posted = requests.post(f"{backend}/v1/backoffice/repayments/RP-posting-2/post",
                               headers={"Authorization": f"Bearer {BACKOFFICE_TOKEN}"},
                               timeout=10)
        assert posted.status_code == 200, posted.text
        env = {**os.environ, "RELEND_ENV": "sandbox", "PYTHONPATH": str(ROOT),
               "RELEND_DESK_URL": desk, "RELEND_DESK_TOKEN": DESK_TOKEN,
               "RELEND_BACKEND_URL": backend, "RELEND_BACKEND_TOKEN": SERVICE_TOKEN,
               "RELEND_BACKOFFICE_TOKEN": BACKOFFICE_TOKEN, "RELEND_NOTICES_AMQP_URL": "",
               "RELEND_NOTICES_QUIET_HOURS": "off"}
        first = once(env)
        assert first.returncode == 0, first.stderr
        assert "1 change(s) handled" in first.stdout, first.stdout + first.stderr
        again = once(env)
        assert again.returncode == 0, again.stderr
        assert "0 change(s) handled" in again.stdout, again.stdout + again.stderr
    with desk_sessions() as session:
        texts = list(session.execute(select(Message.text).where(
            Message.conversation_id == conversation_id, Message.sender == "bot")).scalars())
        (notice,) = session.execute(select(Notice)).scalars().all()
    backend_engine.dispose()
    desk_engine.dispose()
    # the demo's 5,000 was paid ten minutes before seeding; its loan is its whole limit
    shanghai = ZoneInfo("Asia/Shanghai")
    paid = (seeded_at - timedelta(minutes=10)).astimezone(shanghai).date()
    day = "今天" if paid == datetime.now(shanghai).date() else "昨天"
    assert texts == [f"您{day}还的5,000元已经入账。这笔借款的本金已全部还清。"
                     "您现在可以借款了，可用额度5,000元。"]
    assert notice.key.startswith("repayment_posted:RP-posting-2:")
    assert (notice.state, notice.timezone) == ("delivered", "Asia/Shanghai")


def test_after_a_reseed_reuses_outbox_ids_the_new_change_still_reaches_the_chat(
        tmp_path: Path) -> None:
    """A reseeded SQLite sandbox deletes the demo's outbox rows; before migration 0003 SQLite
    gave their ids out again (seen: the second ``python -m stack up`` on one var directory
    told nobody). The ids now go on (``AUTOINCREMENT``): the new change comes after the desk's
    cursor. Ids can still go back when the backend's database is replaced or restored while
    the desk's is kept (here: its ``sqlite_sequence`` cleared too): the notifier must not skip
    the change under an id the desk's cursor already passed."""
    backend_url = f"sqlite:///{tmp_path / 'eligibility.db'}"
    desk_url = f"sqlite:///{tmp_path / 'desk.db'}"
    upgrade_backend(backend_url)
    upgrade_desk(desk_url)
    backend_engine, desk_engine = make_engine(backend_url), make_engine(desk_url)
    backend_sessions = make_session_factory(backend_engine)
    with backend_sessions() as session:
        seed(session, utc_now() - timedelta(minutes=5))
    desk_sessions = make_session_factory(desk_engine)
    with desk_sessions() as session:
        open_conversation(session, "demo-posting", "zh-CN", utc_now())
    backend_env = {**settings_env(backend_url), "RELEND_OUTBOX_FEED_SETTLE_SECONDS": "0",
                   "RELEND_ENV": "sandbox"}
    desk_env = {**os.environ, "RELEND_ENV": "sandbox", "RELEND_DESK_DB_URL": desk_url,
                "RELEND_DESK_TOKEN": DESK_TOKEN, "RELEND_RASA_URL": "http://127.0.0.1:9",
                "RELEND_DESK_REDIS_URL": ""}
    with serve_asgi("eligibility.asgi:app", backend_env) as backend, \
            serve_asgi("desk.asgi:app", desk_env) as desk:
        env = {**os.environ, "RELEND_ENV": "sandbox", "PYTHONPATH": str(ROOT),
               "RELEND_DESK_URL": desk, "RELEND_DESK_TOKEN": DESK_TOKEN,
               "RELEND_BACKEND_URL": backend, "RELEND_BACKEND_TOKEN": SERVICE_TOKEN,
               "RELEND_BACKOFFICE_TOKEN": BACKOFFICE_TOKEN, "RELEND_NOTICES_AMQP_URL": "",
               "RELEND_NOTICES_QUIET_HOURS": "off"}

        def post() -> None:
            posted = requests.post(f"{backend}/v1/backoffice/repayments/RP-posting-2/post",
                                   headers={"Authorization": f"Bearer {BACKOFFICE_TOKEN}"},
                                   timeout=10)
            assert posted.status_code == 200, posted.text

        post()
        first = once(env)
        assert "1 change(s) handled" in first.stdout, first.stdout + first.stderr
        with backend_sessions() as session:  # the demo again, its outbox rows deleted
            seed(session, utc_now())
        post()
        second = once(env)
        assert second.returncode == 0, second.stderr
        assert "1 change(s) handled" in second.stdout, second.stdout + second.stderr
        with backend_sessions() as session:  # and again, as if on a new database
            seed(session, utc_now())
            session.execute(text("DELETE FROM sqlite_sequence WHERE name = 'outbox'"))
            session.commit()
        post()
        third = once(env)
        assert third.returncode == 0, third.stderr
        assert "1 change(s) handled" in third.stdout, third.stdout + third.stderr
    with desk_sessions() as session:
        keys = sorted(session.execute(select(Notice.key)).scalars())
        outbox_ids = sorted(session.execute(select(Notice.outbox_id)).scalars())
    backend_engine.dispose()
    desk_engine.dispose()
    assert len(set(keys)) == 3
    assert all(k.startswith("repayment_posted:RP-posting-2:") for k in keys)
    # the reseed's change under a new id; the new database's under the first one again
    assert outbox_ids == [1, 1, 2]
