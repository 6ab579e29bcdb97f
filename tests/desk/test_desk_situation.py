"""A bot reply's picture of the borrower's situation (Rasa's ``custom`` payload, shape in
common/situation.py): the desk keeps it with the text it came with, only when it has the
known shape, and gives it again with the history; anything else is dropped, never the text."""

from __future__ import annotations

import copy

import pytest
from desk_support import Chat, FakeRasa

from common.situation import validated

pytestmark = pytest.mark.timeout(30)

# what the assistant sends for demo-posting at 12:00 in Shanghai (written out by hand)
PICTURE = {
    "type": "relend.situation", "version": 1, "lang": "zh", "timezone": "Asia/Shanghai",
    "now": "2026-03-10T04:00:00Z",
    "timeline": {"kind": "posting", "reason": "REPAYMENT_POSTING",
                 "start": "2026-03-10T03:50:00Z", "end": "2026-03-10T06:00:00Z"},
    "limit": {"total": 5000.0, "available": 0.0, "in_use": 5000.0, "min_drawdown": 500.0,
              "currency": "CNY"},
}
TEXT = "您的还款正在入账，预计今天 14:00 完成。"


def test_a_known_picture_rides_with_its_text_and_is_replayed(chat: Chat, fake_rasa: FakeRasa):
    # Rasa's channel sends the custom payload as a message of its own, after the text
    fake_rasa.replies = [{"text": TEXT}, {"custom": copy.deepcopy(PICTURE)}, {"text": "还有别的吗"}]

    first, second = chat.turn("额度什么时候恢复")

    assert first["text"] == TEXT and first["attachment"] == PICTURE
    assert second["text"] == "还有别的吗" and second["attachment"] is None
    replayed = [m for m in chat.history() if m["sender"] == "bot"]
    assert [m["attachment"] for m in replayed] == [PICTURE, None]


@pytest.mark.parametrize("custom", [
    {"kind": "card"},                                        # not ours
    {**PICTURE, "version": 2},                               # a shape this desk does not know
    {**PICTURE, "timeline": {**PICTURE["timeline"], "end": "2026-03-10T03:00:00Z"}},  # ends first
    {**PICTURE, "limit": {**PICTURE["limit"], "in_use": 10.0}},                # does not add up
    {**PICTURE, "timeline": None, "limit": None},            # nothing to draw
    {**PICTURE, "lang": "fr"},
])
def test_anything_else_is_dropped_and_the_text_kept(chat: Chat, fake_rasa: FakeRasa,
                                                    custom: dict):
    fake_rasa.replies = [{"text": TEXT}, {"custom": custom}]

    [reply] = chat.turn("额度什么时候恢复")

    assert reply["text"] == TEXT and reply["attachment"] is None


def test_a_picture_without_a_text_before_it_is_dropped(chat: Chat, fake_rasa: FakeRasa):
    fake_rasa.replies = [{"custom": copy.deepcopy(PICTURE)}, {"text": TEXT}]

    [reply] = chat.turn("额度什么时候恢复")

    assert reply["text"] == TEXT and reply["attachment"] is None


def test_only_the_known_fields_pass():
    extra = {**copy.deepcopy(PICTURE), "script": "<img onerror=alert(1)>"}
    extra["timeline"]["label"] = "anything"

    assert validated(extra) == PICTURE


def test_a_turn_found_in_rasas_tracker_keeps_its_picture():
    """After a desk restart the answer is read back from the tracker, where Rasa keeps the
    custom payload on the text's own event (data.custom)."""
    from datetime import datetime, timezone

    from desk.turns import replies_in_tracker, text_replies

    since = datetime(2026, 3, 10, 4, 0, tzinfo=timezone.utc)
    events = [
        {"event": "user", "text": "额度什么时候恢复", "timestamp": since.timestamp() + 1},
        {"event": "bot", "text": TEXT, "timestamp": since.timestamp() + 2,
         "data": {"buttons": None, "custom": copy.deepcopy(PICTURE)}},
        {"event": "bot", "text": "还有别的吗", "timestamp": since.timestamp() + 3,
         "data": {"custom": {"kind": "card"}}},
    ]

    replies = text_replies(replies_in_tracker(events, "额度什么时候恢复", since) or [])

    assert [(r["text"], r["attachment"]) for r in replies] == [(TEXT, PICTURE),
                                                               ("还有别的吗", None)]
