"""The chat page's demo picker says each demo borrower's situation in the page's language
(page.chat.demo.<id>): every borrower the sandbox seeds has a line in every catalog, and the
catalogs name no borrower the sandbox does not seed (a line would go stale unseen)."""

from __future__ import annotations

import pytest

from actions import language
from actions.texts import catalog
from common.texts import text
from eligibility.seed import DEMO_BORROWERS


@pytest.mark.parametrize("lang", language.SUPPORTED)
def test_every_demo_borrower_has_a_line_in_every_language(lang: str) -> None:
    seeded = {d.id for d in DEMO_BORROWERS}
    lines = {k.removeprefix("page.chat.demo.") for k in catalog(lang)
             if k.startswith("page.chat.demo.")}
    assert lines == seeded
    assert all(text(f"page.chat.demo.{i}", lang).strip() for i in seeded)


def test_the_chinese_lines_are_chinese() -> None:
    # the issue: English descriptions in the Chinese interface
    assert text("page.chat.demo.demo-posting", "zh") == "10 分钟前还款 5,000元，约 2 小时后入账"
    assert text("page.chat.demo.demo-posting", "en") != text("page.chat.demo.demo-posting", "zh")
