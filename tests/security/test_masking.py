"""Masking of mobile, ID, bank-card and other long numbers in every format borrowers type.

Every expected output below is written by hand. The property check then makes sure no eight
consecutive digits of a sensitive number (after NFKC, ignoring separators) survive.
"""

from __future__ import annotations

import re
import time
import unicodedata

import pytest

from desk.masking import mask, mask_text

pytestmark = pytest.mark.timeout(60)

# (text, expected, the sensitive numbers in the text as written)
MOBILES = [
    ("13812345678", "138****5678", ["13812345678"]),
    ("手机 138 1234 5678", "手机 138****5678", ["138 1234 5678"]),
    ("138-1234-5678", "138****5678", ["138-1234-5678"]),
    ("138.1234.5678", "138****5678", ["138.1234.5678"]),
    ("138－1234－5678", "138****5678", ["138－1234－5678"]),  # full-width hyphen
    ("１３８１２３４５６７８", "138****5678", ["１３８１２３４５６７８"]),  # full-width digits
    ("手机：１３８　１２３４　５６７８。", "手机：138****5678。", ["１３８　１２３４　５６７８"]),
    ("138\u30001234\u30005678", "138****5678", ["138\u30001234\u30005678"]),  # ideographic space
    ("138\u00a01234\u00a05678", "138****5678", ["138\u00a01234\u00a05678"]),  # NBSP
    ("1381 234 5678", "138****5678", ["1381 234 5678"]),  # 4-3-4
    ("138 12345678", "138****5678", ["138 12345678"]),  # 3-8
    ("138  1234  5678", "138****5678", ["138  1234  5678"]),  # double spaces
    ("138 - 1234 - 5678", "138****5678", ["138 - 1234 - 5678"]),
    ("138\n1234\n5678", "138****5678", ["138\n1234\n5678"]),
    ("138\t1234\r\n5678", "138****5678", ["138\t1234\r\n5678"]),
    ("138·1234·5678", "138****5678", ["138·1234·5678"]),
    ("138/1234/5678", "138****5678", ["138/1234/5678"]),
    ("138 12 34 56 78", "138****5678", ["138 12 34 56 78"]),  # two-digit groups
    ("138\u200b1234\u200b5678", "138****5678", ["138\u200b1234\u200b5678"]),  # zero-width
    ("+86 138 1234 5678", "+86 138****5678", ["138 1234 5678"]),
    ("+8613812345678", "+86138****5678", ["13812345678"]),
    ("8613812345678", "86138****5678", ["13812345678"]),
    ("0086 138 1234 5678", "0086 138****5678", ["138 1234 5678"]),
    ("0086-13812345678", "0086-138****5678", ["13812345678"]),
    ("＋８６ １３８－１２３４－５６７８", "＋８６ 138****5678", ["１３８－１２３４－５６７８"]),
    ("call me on 159 8765 4321 after 6pm", "call me on 159****4321 after 6pm",
     ["159 8765 4321"]),
    ("联系13812345678😊谢谢", "联系138****5678😊谢谢", ["13812345678"]),
    ("13812345678 13912345678", "138****5678 139****5678", ["13812345678", "13912345678"]),
    ("13812345678/13912345678", "138****5678/139****5678", ["13812345678", "13912345678"]),
]

IDS = [
    ("110105194912310021", "110105********0021", ["110105194912310021"]),
    ("11010519491231002X", "110105********002X", ["11010519491231002X"]),
    ("id 11010519491231002x", "id 110105********002x", ["11010519491231002x"]),
    ("110105 19491231 0021", "110105********0021", ["110105 19491231 0021"]),
    ("110105 1949 1231 002X", "110105********002X", ["110105 1949 1231 002X"]),
    ("110105-19491231-0021", "110105********0021", ["110105-19491231-0021"]),
    ("１１０１０５１９４９１２３１００２Ｘ", "110105********002X",
     ["１１０１０５１９４９１２３１００２Ｘ"]),
    ("证件号 110105\u30001949\u30001231\u3000002X 已过期", "证件号 110105********002X 已过期",
     ["110105\u30001949\u30001231\u3000002X"]),
    ("身份证号11010519491231002X，请核对", "身份证号110105********002X，请核对",
     ["11010519491231002X"]),
    # 15-digit old IDs: first 6 and last 4 kept
    ("110105491231002", "110105*****1002", ["110105491231002"]),
    ("老身份证 110105 491231 002", "老身份证 110105*****1002", ["110105 491231 002"]),
]

CARDS = [
    ("6222021234567890", "6222 **** **** 7890", ["6222021234567890"]),
    ("6222 0212 3456 7890", "6222 **** **** 7890", ["6222 0212 3456 7890"]),
    ("6222-0212-3456-7890", "6222 **** **** 7890", ["6222-0212-3456-7890"]),
    ("6222  0212  3456  7890", "6222 **** **** 7890", ["6222  0212  3456  7890"]),
    ("6222\n0212\n3456\n7890", "6222 **** **** 7890", ["6222\n0212\n3456\n7890"]),
    ("卡号：6222 0212\r\n3456 7890。", "卡号：6222 **** **** 7890。", ["6222 0212\r\n3456 7890"]),
    ("６２２２　０２１２　３４５６　７８９０", "6222 **** **** 7890",
     ["６２２２　０２１２　３４５６　７８９０"]),
    ("62220212345678901", "6222 **** **** 8901", ["62220212345678901"]),
    ("622202123456789012", "6222 **** **** 9012", ["622202123456789012"]),  # 18, not an ID
    ("6228480402564890018", "6228 **** **** 0018", ["6228480402564890018"]),
    ("卡号 6228 4804 0256 4890 018 已绑定", "卡号 6228 **** **** 0018 已绑定",
     ["6228 4804 0256 4890 018"]),
    ("6222 0212 3456 7890 138 1234 5678", "6222 **** **** 7890 138****5678",
     ["6222 0212 3456 7890", "138 1234 5678"]),
    # 5678 and 6222 side by side would show 8 digits in a row: masked as one long number
    ("138 1234 5678 6222 0212 3456 7890", "1381*******************7890",
     ["138 1234 5678", "6222 0212 3456 7890"]),
    ("6222 0212 3456 7890 6222 0212 3456 7891", "6222************************7891",
     ["6222 0212 3456 7890", "6222 0212 3456 7891"]),
]

LONG_NUMBERS = [
    ("123456789012", "1234****9012", ["123456789012"]),
    ("订单号 20240315123456", "订单号 2024******3456", ["20240315123456"]),
    ("订单号 13812345678901", "订单号 1381******8901", ["13812345678901"]),
    ("流水号 12345678901234567890", "流水号 1234************7890", ["12345678901234567890"]),
    ("1234 5678 9012 3456 7890", "1234************7890", ["1234 5678 9012 3456 7890"]),
    ("ref 1234567890123456789012345", "ref 1234*****************2345",
     ["1234567890123456789012345"]),
    ("１２３４－５６７８－９０１２", "1234****9012", ["１２３４－５６７８－９０１２"]),
]

ALL_THREE = [
    ("身份证110105194912310021，手机138 1234 5678，卡号6222 0212 3456 7890",
     "身份证110105********0021，手机138****5678，卡号6222 **** **** 7890",
     ["110105194912310021", "138 1234 5678", "6222 0212 3456 7890"]),
    ("您好！我的手机是１３８１２３４５６７８😊，卡号６２２２　０２１２　３４５６　７８９０。谢谢～",
     "您好！我的手机是138****5678😊，卡号6222 **** **** 7890。谢谢～",
     ["１３８１２３４５６７８", "６２２２　０２１２　３４５６　７８９０"]),
    ("\ud800138 1234 5678\ud800", "\ud800138****5678\ud800", ["138 1234 5678"]),  # lone surrogates
    ("138\x001234\x075678", "138****5678", ["138\x001234\x075678"]),  # control characters
]

SENSITIVE = MOBILES + IDS + CARDS + LONG_NUMBERS + ALL_THREE

ORDINARY = [
    "借款 20,000元",
    "额度 15000",
    "还款日 2024-05-01",
    "2024-05-01 10:30",
    "2024/05/01 10:30:00",
    "2024.05.01 10:30",
    "2024-05-01 2024-05-31",
    "2024年5月1日",
    "宽限 3天",
    "申诉编号 AP-2024-000123",
    "AP-2024-000123 AP-2024-000124",
    "10:30",
    "年化利率 18.25%",
    "借款金额 5000 元，已还 12,345.67 元",
    "额度 200000，年化利率 18.25%，共 12 期",
    "还款日 2024-03-15，下次 2024/04/15 10:30",
    "额度 100000-200000",
    "分三期 3000 5000 8000",
    "账单周期 20240501-20240531",
    "20240501 103000",
    "尾号1234的银行卡",
    "验证码 123456，客服电话 95588",
    "客服热线 400-820-8820",
    "第 1 2 3 期",
    "１５０００元，２０２４－０５－０１",
    "",
    "没有数字的文字😊，！？",
]

_SEPARATORS = re.compile(r"[\s\-./·/\u2010-\u2015\u2212\u30fb\u200b-\u200f\ufeff]")


def _digits(text: str) -> str:
    """NFKC, separators removed: what a reader would take as one run of digits."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", text))


@pytest.mark.parametrize(("text", "expected", "numbers"), SENSITIVE,
                         ids=[repr(c[0])[:40] for c in SENSITIVE])
def test_sensitive_numbers_are_masked(text, expected, numbers):
    assert mask_text(text) == expected


@pytest.mark.parametrize(("text", "expected", "numbers"), SENSITIVE,
                         ids=[repr(c[0])[:40] for c in SENSITIVE])
def test_no_eight_digits_of_a_sensitive_number_survive(text, expected, numbers):
    visible = _digits(mask_text(text))
    for number in numbers:
        digits = _digits(number)
        assert len(digits) >= 11
        for i in range(len(digits) - 7):
            assert digits[i:i + 8] not in visible, (number, digits[i:i + 8])


@pytest.mark.parametrize(("text", "expected", "numbers"), IDS, ids=[c[0][:30] for c in IDS])
def test_an_id_number_keeps_at_most_ten_digits(text, expected, numbers):
    [number] = numbers
    masked = _digits(mask_text(number))
    assert sum(c.isdigit() or c in "Xx" for c in masked) == 10  # 6 in front, 4 at the end


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_numbers_are_left_alone(text):
    assert mask_text(text) == text


@pytest.mark.parametrize(("text", "expected", "numbers"), SENSITIVE,
                         ids=[repr(c[0])[:40] for c in SENSITIVE])
def test_masking_twice_changes_nothing(text, expected, numbers):
    assert mask_text(expected) == expected


def test_mask_reaches_strings_in_lists_and_dicts():
    value = {"text": "手机１３８－１２３４－５６７８", "at": 1.5, "ok": True, "none": None,
             "items": ["6222 0212 3456 7890", {"id": "110105 1949 1231 002X"}, 20000]}
    assert mask(value) == {"text": "手机138****5678", "at": 1.5, "ok": True, "none": None,
                           "items": ["6222 **** **** 7890", {"id": "110105********002X"},
                                     20000]}


ADVERSARIAL = [
    pytest.param("1" * 10_000, "1111" + "*" * 9_992 + "1111", id="10000-digit-run"),
    pytest.param("1 " * 5_000, "1 " * 5_000, id="alternating-1-space"),
    pytest.param("1-" * 5_000, "1-" * 5_000, id="alternating-1-dash"),
    pytest.param("12 " * 3_333, "12 " * 3_333, id="two-digit-groups"),
    pytest.param("１　" * 5_000, "１　" * 5_000, id="full-width-alternating"),
    pytest.param("1" + " " * 9_999, "1" + " " * 9_999, id="digit-then-spaces"),
    pytest.param("1" + "\u200b" * 9_999, "1" + "\u200b" * 9_999, id="digit-then-zero-width"),
    pytest.param("\ud800" * 10_000, "\ud800" * 10_000, id="lone-surrogates"),
    pytest.param("\x00\x01\x1b\x7f" * 2_500, "\x00\x01\x1b\x7f" * 2_500, id="controls"),
    pytest.param("a1" * 5_000, "a1" * 5_000, id="alternating-letter-digit"),
    pytest.param("1" * 9_999 + "X", "1111" + "*" * 9_991 + "1111X", id="long-run-then-X"),
    pytest.param("13812345678 " * 800, "138****5678 " * 800, id="many-mobiles"),
    pytest.param("2024-05-01 " * 900, "2024-05-01 " * 900, id="many-dates"),
    pytest.param("138 12 " * 1_500, "138 12 " * 1_500, id="138-12-repeated"),
    pytest.param("110105 1949 1231 002X " * 450, "110105********002X " * 450, id="many-ids"),
]


# Masking these 10,000-character inputs takes well under 0.1 s of CPU; backtracking that grew
# with the square of the length would take tens of seconds. The bound is this process's CPU
# time, not the wall clock, so that a busy machine does not fail the test.
CPU_BOUND = 2.0


def _masked_with_cpu_time(text: str) -> tuple[str, float]:
    started = time.process_time()
    masked = mask_text(text)
    return masked, time.process_time() - started


@pytest.mark.parametrize(("text", "expected"), ADVERSARIAL)
def test_adversarial_input_is_fast_and_safe(text, expected):
    masked, elapsed = _masked_with_cpu_time(text)
    assert masked == expected
    assert elapsed < CPU_BOUND, f"{elapsed:.3f}s"


@pytest.mark.parametrize("text", ["111 " * 2_500, "138 " * 2_500, "1234 5678 " * 1_000,
                                  "110105 1949 1231 002X " * 450, "13812345678 " * 800],
                         ids=["3-digit-groups", "138-groups", "card-groups", "ids", "mobiles"])
def test_long_chains_of_groups_are_fast_and_keep_no_long_group(text):
    masked, elapsed = _masked_with_cpu_time(text)
    assert elapsed < CPU_BOUND, f"{elapsed:.3f}s"
    assert max(len(run) for run in re.findall(r"\d+", masked)) <= 6
