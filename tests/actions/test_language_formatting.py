"""Choosing the borrower's language; money, moments and durations as they read them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from actions.formatting import duration, join, money, when
from actions.language import choose, from_locale, from_text
from common.moments import parse_moment

NOON_SHANGHAI = datetime(2026, 3, 10, 4, 0, tzinfo=timezone.utc)  # Tue 10 Mar, 12:00 in Shanghai
LATE_SHANGHAI = datetime(2026, 3, 10, 15, 59, tzinfo=timezone.utc)  # Tue 10 Mar, 23:59 in Shanghai


# --- language.choose -----------------------------------------------------------------------------


@pytest.mark.parametrize(("locale", "text", "previous", "expected"), [
    ("en-US", "为什么还款了还借不了", "en", "zh"),  # the message's language wins over the app's
    ("zh_CN", "why can't I borrow", "zh", "en"),
    ("zh-Hans-CN", "hello", "zh", "en"),
    ("EN", "", None, "en"),  # nothing said, no conversation yet: the app's locale
    ("zh-CN", "12345", None, "zh"),
    ("en-GB", "👍", "zh", "zh"),  # nothing said: the conversation's language stays
])
def test_the_messages_language_then_the_conversations_then_the_apps(
        locale: str, text: str, previous: str | None, expected: str) -> None:
    assert choose(locale, text, previous) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("为什么还款了还借不了", "zh"),
    ("我的额度什么时候恢复？", "zh"),
    ("OK 谢谢", "zh"),  # a neutral Latin word does not make it English
    ("Relend借不了款", "zh"),
    ("Why can't I borrow after repaying?", "en"),
    ("when is my limit back", "en"),
])
def test_without_a_locale_the_text_decides(text: str, expected: str) -> None:
    other = "en" if expected == "zh" else "zh"
    assert choose(None, text, other) == expected
    assert choose("fr-FR", text, other) == expected  # an unsupported locale is no locale


@pytest.mark.parametrize("text", ["12345", "👍", "🙏🙏", "ok", "Relend", "?", "  ",
                                  "AP20260310-ABC234"])  # an appeal reference pasted alone
@pytest.mark.parametrize("previous", ["zh", "en"])
def test_digits_emoji_and_neutral_words_keep_the_previous_language(text: str,
                                                                   previous: str) -> None:
    assert from_text(text) is None
    assert choose(None, text, previous) == previous


@pytest.mark.parametrize("payload", ["/request_human", "/cannot_borrow_after_repayment",
                                     '/affirm{"x": "why"}'])
def test_intent_payloads_keep_the_previous_language(payload: str) -> None:
    assert choose(None, payload, "en") == "en"
    assert choose(None, payload, "zh") == "zh"


def test_no_signal_at_all_falls_back_to_chinese() -> None:
    assert choose(None, "123", None) == "zh"
    assert choose("", None, "fr") == "zh"  # a previous value that is not supported is ignored
    assert from_locale(42) is None
    assert from_text(None) is None


# --- money ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "zh", "en"), [
    (5000, "5,000元", "¥5,000"),
    (4583.33, "4,583.33元", "¥4,583.33"),
    (416.67, "416.67元", "¥416.67"),
    (1234.5, "1,234.50元", "¥1,234.50"),
    (20000.0, "20,000元", "¥20,000"),
    (0, "0元", "¥0"),
])
def test_money_in_both_languages(amount: float, zh: str, en: str) -> None:
    assert money(amount, "zh") == zh
    assert money(amount, "en") == en


# --- moments, in the borrower's time zone --------------------------------------------------------


@pytest.mark.parametrize(("value", "zh", "en"), [
    ("2026-03-10T06:00:00Z", "今天 14:00", "today at 14:00"),
    ("2026-03-10T15:30:00Z", "今天 23:30", "today at 23:30"),  # still the 10th in Shanghai
    ("2026-03-10T16:00:00Z", "明天 00:00", "tomorrow at 00:00"),  # midnight in Shanghai
    ("2026-03-11T02:00:00Z", "明天 10:00", "tomorrow at 10:00"),
    ("2026-03-12T02:00:00Z", "后天 10:00", "12 Mar at 10:00"),
    ("2026-03-09T01:00:00Z", "昨天 09:00", "yesterday at 09:00"),
    ("2026-05-11T04:00:00Z", "5月11日 12:00", "11 May at 12:00"),
    ("2027-01-05T02:00:00Z", "2027年1月5日 10:00", "5 Jan 2027 at 10:00"),
])
def test_when_in_shanghai(value: str, zh: str, en: str) -> None:
    assert when(value, "zh", "Asia/Shanghai", NOON_SHANGHAI) == zh
    assert when(value, "en", "Asia/Shanghai", NOON_SHANGHAI) == en


def test_today_and_tomorrow_follow_the_shanghai_calendar_not_utc() -> None:
    # 23:59 in Shanghai (15:59 UTC): two minutes later is tomorrow in Shanghai, today in UTC
    two_minutes_later = "2026-03-10T16:01:00Z"
    assert when(two_minutes_later, "zh", "Asia/Shanghai", LATE_SHANGHAI) == "明天 00:01"
    assert when(two_minutes_later, "en", "Asia/Shanghai", LATE_SHANGHAI) == "tomorrow at 00:01"
    assert when(two_minutes_later, "en", "UTC", LATE_SHANGHAI) == "today at 16:01"
    # 00:30 in Shanghai on the 11th is 16:30 UTC on the 10th: "today" in Shanghai
    just_after_midnight = datetime(2026, 3, 10, 16, 30, tzinfo=timezone.utc)
    assert when("2026-03-10T23:00:00Z", "zh", "Asia/Shanghai", just_after_midnight) == "今天 07:00"
    assert when("2026-03-10T15:00:00Z", "en", "Asia/Shanghai", just_after_midnight) \
        == "yesterday at 23:00"


def test_when_in_another_time_zone() -> None:
    # 04:00 UTC on 10 Mar is midnight in New York (EDT, UTC-4); 03:30 UTC was the evening before
    assert when("2026-03-10T03:30:00Z", "en", "America/New_York", NOON_SHANGHAI) \
        == "yesterday at 23:30"
    assert when("2026-03-10T03:30:00Z", "zh", "America/New_York", NOON_SHANGHAI) == "昨天 23:30"


@pytest.mark.parametrize(("value", "zh", "en"), [
    ("2026-05-11T04:00:00Z", "5月11日", "on 11 May"),
    ("2026-03-11T02:00:00Z", "明天", "tomorrow"),
    ("2025-12-30T02:00:00Z", "2025年12月30日", "on 30 Dec 2025"),
])
def test_when_without_the_time(value: str, zh: str, en: str) -> None:
    assert when(value, "zh", "Asia/Shanghai", NOON_SHANGHAI, with_time=False) == zh
    assert when(value, "en", "Asia/Shanghai", NOON_SHANGHAI, with_time=False) == en


def test_when_copes_with_missing_naive_and_odd_values() -> None:
    assert when(None, "zh", "Asia/Shanghai", NOON_SHANGHAI) == "—"
    assert when("not a date", "en", "Asia/Shanghai", NOON_SHANGHAI) == "—"
    assert when("2026-03-10T06:00:00", "en", "Asia/Shanghai", NOON_SHANGHAI) == "today at 14:00"
    # an unknown zone falls back to Shanghai rather than failing
    assert when("2026-03-10T06:00:00Z", "en", "Mars/Olympus", NOON_SHANGHAI) == "today at 14:00"
    assert when("2026-03-10T06:00:00Z", "en", None, NOON_SHANGHAI) == "today at 14:00"
    assert when(datetime(2026, 3, 10, 6, 0, tzinfo=timezone.utc), "zh", "Asia/Shanghai",
                NOON_SHANGHAI) == "今天 14:00"
    assert parse_moment("2026-03-10T06:00:00+08:00") == datetime(2026, 3, 9, 22, 0,
                                                               tzinfo=timezone.utc)


# --- durations and lists -------------------------------------------------------------------------


@pytest.mark.parametrize(("delta", "zh", "en"), [
    (timedelta(seconds=10), "约1分钟", "about 1 minute"),
    (timedelta(minutes=10), "约10分钟", "about 10 minutes"),
    (timedelta(minutes=59), "约59分钟", "about 59 minutes"),
    (timedelta(minutes=70), "约1小时", "about 1 hour"),
    (timedelta(hours=2), "约2小时", "about 2 hours"),
    (timedelta(hours=47), "约47小时", "about 47 hours"),
    (timedelta(hours=72), "约3天", "about 3 days"),
    (timedelta(minutes=-5), "约1分钟", "about 1 minute"),  # already due: never "0" or negative
])
def test_duration_in_both_languages(delta: timedelta, zh: str, en: str) -> None:
    assert duration(delta, "zh") == zh
    assert duration(delta, "en") == en


def test_join_in_both_languages() -> None:
    assert join(["甲", "乙"], "zh") == "甲、乙"
    assert join(["甲，一", "乙"], "zh") == "甲，一；乙"  # items with commas need a stronger break
    assert join(["a"], "en") == "a"
    assert join(["a", "b"], "en") == "a and b"
    assert join(["a", "b", "c"], "en") == "a, b and c"
    assert join([], "en") == ""
