"""Retention: a borrower's raw text (with the numbers they typed) is kept only
RELEND_DESK_RAW_TEXT_DAYS; after that the desk keeps the masked form agents see."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from desk_support import MASKED, PRIVATE, make_settings
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from desk import service
from desk.models import Conversation, Message

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def conversation_with(sessions: sessionmaker[Session], *ages_in_days: float,
                      now: datetime = NOW) -> list[int]:
    """A conversation with one borrower message per age (days before ``now``); their ids."""
    with sessions() as session:
        session.add(Conversation(id="c-retention", borrower_id="b-1001", locale="zh-CN",
                                 owner="bot", created_at=NOW, updated_at=NOW))
        messages = [Message(conversation_id="c-retention", sender="borrower", text=PRIVATE,
                            created_at=now - timedelta(days=age)) for age in ages_in_days]
        session.add_all(messages)
        session.commit()
        return [m.id for m in messages]


def texts(sessions: sessionmaker[Session], ids: list[int]) -> list[tuple[str, bool]]:
    with sessions() as session:
        return [(m.text, m.masked_at is not None) for m in (session.get(Message, i) for i in ids)]


def test_messages_older_than_the_retention_keep_only_their_masked_text(sessions):
    old, edge, recent = conversation_with(sessions, 31, 30.01, 29.9)

    with sessions() as session:
        assert service.mask_old_messages(session, 30, NOW) == 2

    assert texts(sessions, [old, edge, recent]) == [(MASKED, True), (MASKED, True),
                                                    (PRIVATE, False)]


def test_a_second_round_changes_nothing(sessions):
    ids = conversation_with(sessions, 40)
    with sessions() as session:
        service.mask_old_messages(session, 30, NOW)
        assert service.mask_old_messages(session, 30, NOW + timedelta(hours=1)) == 0
    assert texts(sessions, ids) == [(MASKED, True)]


def test_the_desk_applies_retention_when_it_starts(sessions, make_app, migrated_url):
    old, recent = conversation_with(sessions, 400, 0, now=datetime.now(timezone.utc))

    with TestClient(make_app(make_settings(migrated_url, raw_text_days=30))):
        pass

    assert texts(sessions, [old, recent]) == [(MASKED, True), (PRIVATE, False)]
