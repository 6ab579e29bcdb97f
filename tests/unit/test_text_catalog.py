"""The text catalog (texts/<lang>.yml, read through actions.texts).

- every key is in every language, with the same {fields};
- every key the actions look up exists (literal keys found in the code, and the keys the code
  builds from its own tables);
- no borrower-facing text is left inline in actions/*.py;
- a broken template is a TextError, never a backend failure, and the borrower gets the neutral
  reply.
"""

from __future__ import annotations

import ast
import asyncio
import re
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.conversation
from actions import appeals, clarify, eligibility, explanations, language, texts
from actions.texts import REPLY_BUTTONS, TextError, catalog, fields_of, render, text

ROOT = Path(__file__).resolve().parents[2]
ACTIONS = ROOT / "actions"
# files owned by others that still hold inline texts (see docs/texts.md, "What is left"), and
# settings.py, whose CJK is the configurable default of the product's name
NOT_CHECKED = {"backend.py", "handoff.py", "settings.py"}
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
# the functions that take a catalog key as their first (texts.text, Ctx.t: "explain." + key)
# or second (say, render's callers) argument
LOOKUPS = {"text": ("", 0), "t": ("explain.", 0), "render": ("reply.", 0),
           "say": ("reply.", 1), "button": ("button.", 0)}


def test_catalogs_parse_into_texts() -> None:
    for lang in language.SUPPORTED:
        assert catalog(lang), lang
        assert all(isinstance(v, str) for v in catalog(lang).values())


@pytest.mark.parametrize("lang", [lang for lang in language.SUPPORTED
                                  if lang != language.DEFAULT])
def test_every_language_has_every_key_with_the_same_fields(lang: str) -> None:
    default, other = catalog(language.DEFAULT), catalog(lang)
    assert sorted(set(default) - set(other)) == [], f"missing in {lang}"
    assert sorted(set(other) - set(default)) == [], f"only in {lang}"
    different = {key: (fields_of(default[key]), fields_of(other[key])) for key in default
                 if fields_of(default[key]) != fields_of(other[key])}
    assert different == {}


def test_fields_are_plain_names() -> None:
    """No format specs, indexing or attributes: a field is filled, never computed, so only a
    missing value can fail (and that is a TextError)."""
    for lang in language.SUPPORTED:
        for key, template in catalog(lang).items():
            for _, name, spec, conversion in string.Formatter().parse(template):
                if name is not None:
                    assert re.fullmatch(r"[a-z_]+", name) and not spec and not conversion, \
                        (lang, key, name)


def _literal_keys() -> set[str]:
    """Catalog keys the actions look up with a literal (f-string keys are checked below)."""
    found: set[str] = set()
    for path in ACTIONS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            if name not in LOOKUPS:
                continue
            prefix, position = LOOKUPS[name]
            if len(node.args) > position and isinstance(node.args[position], ast.Constant) \
                    and isinstance(node.args[position].value, str):
                found.add(prefix + node.args[position].value)
            elif len(node.args) > position and isinstance(node.args[position], ast.IfExp):
                for branch in (node.args[position].body, node.args[position].orelse):
                    if isinstance(branch, ast.Constant):
                        found.add(prefix + branch.value)
    return found


def test_the_scan_finds_lookups() -> None:
    keys = _literal_keys()
    assert {"reply.clarify", "explain.posting.full", "fmt.money", "button.human",
            "appeal.others", "explain.in_use.blocking", "reply.appeal_failed"} <= keys


def test_every_key_used_in_code_exists() -> None:
    built = {f"explain.score.factor.{code}" for code in explanations._FACTOR_FIELDS}
    built |= {f"explain.score.self_service.{step}" for step in explanations._STEP_FIELDS}
    built |= {f"explain.closed.why.{why}" for why in explanations.CLOSED_WHY}
    built |= {f"explain.reduced.why.{why}" for why in explanations.REDUCED_WHY}
    built |= {f"appeal.status.{status}" for status in ("submitted", "in_review")}
    built |= {f"appeal.status_name.{status}" for status in appeals.STATUS_NAMES}
    built |= {f"topic.{intent}" for intent in clarify.TOPICS}
    built |= {f"product.name.{product}" for product in eligibility.OTHER_PRODUCTS}
    built |= {f"button.{name}" for buttons in REPLY_BUTTONS.values() for name, _ in buttons}
    built |= {f"fmt.relative.{days}" for days in range(-1, 3)}
    built |= {f"fmt.month.{month}" for month in range(1, 13)}
    missing = sorted((_literal_keys() | built) - set(catalog(language.DEFAULT)))
    assert missing == []


def test_every_reply_key_renders_in_every_language() -> None:
    for lang in language.SUPPORTED:
        for key in (k.removeprefix("reply.") for k in catalog(lang) if k.startswith("reply.")):
            fields = {name: name.upper() for name in fields_of(catalog(lang)[f"reply.{key}"])}
            reply, buttons = render(key, lang, **fields)
            assert reply and all(b["title"] for b in buttons)


def _strings_outside_docstrings_and_patterns(tree: ast.AST) -> list[ast.Constant]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant):
            skip.add(id(body[0].value))  # a docstring
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in (
                "compile", "search", "match", "fullmatch", "sub", "findall", "strip"):
            for sub in ast.walk(node):  # what the borrower's words are matched or trimmed with
                skip.add(id(sub))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Constant)
            and isinstance(n.value, str) and id(n) not in skip]


def test_no_borrower_text_is_left_inline_in_actions() -> None:
    inline = []
    for path in sorted(ACTIONS.glob("*.py")):
        if path.name in NOT_CHECKED:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        inline += [f"{path.name}:{n.lineno}: {n.value[:40]!r}"
                   for n in _strings_outside_docstrings_and_patterns(tree) if CJK.search(n.value)]
    assert inline == []


def test_the_inline_check_catches_an_inline_text() -> None:
    tree = ast.parse('"""文档"""\nimport re\nX = re.compile("借")\ndef f():\n    return "您好"\n')
    assert [n.value for n in _strings_outside_docstrings_and_patterns(tree)
            if CJK.search(n.value)] == ["您好"]


# --- broken texts --------------------------------------------------------------------------


@pytest.fixture
def broken(monkeypatch: pytest.MonkeyPatch) -> str:
    """The Chinese catalog with one explanation template needing a field nobody passes."""
    key = "explain.eligible"
    patched = {**catalog("zh"), key: catalog("zh")[key] + "{no_such_field}"}
    real = texts.catalog
    monkeypatch.setattr(texts, "catalog", lambda lang: patched if lang == "zh" else real(lang))
    return key


def test_a_missing_key_or_field_is_a_text_error() -> None:
    with pytest.raises(TextError, match="no such key"):
        text("reply.no_such_reply", "en")
    with pytest.raises(TextError, match=r"\{reason\}") as caught:
        text("reply.not_appealable", "zh")
    assert caught.value.key == "reply.not_appealable"


def test_an_unreadable_catalog_is_a_text_error(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    (tmp_path / "zh.yml").write_text("reply: [unclosed", encoding="utf-8")
    monkeypatch.setattr(texts, "CATALOG_DIR", tmp_path)
    texts.catalog.cache_clear()
    try:
        with pytest.raises(TextError, match="cannot read"):
            texts.catalog("zh")
    finally:
        texts.catalog.cache_clear()


ELIGIBLE = {"eligible": True, "available_limit": 5000, "total_limit": 8000, "currency": "CNY",
            "decision_id": "d-1", "reasons": [], "timezone": "Asia/Shanghai",
            "borrower_id": "b-1"}


def test_a_broken_template_is_not_a_malformed_decision(broken: str) -> None:
    with pytest.raises(TextError) as caught:
        explanations.explanation_problem(dict(ELIGIBLE))
    assert caught.value.key == broken
    # the decision itself is fine: only the text is broken
    assert explanations.explain(dict(ELIGIBLE), lang="en", now=actions.conversation.utc_now())


class _Backend:
    def eligibility(self, borrower_id: str, *, context: str = "") -> dict[str, Any]:
        problem = explanations.explanation_problem(dict(ELIGIBLE))  # as the real client does
        assert problem is None
        return dict(ELIGIBLE)


def test_a_broken_template_reaches_the_borrower_as_a_neutral_reply(
        broken: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(actions.conversation, "get_backend", lambda: _Backend())
    tracker = Tracker("c-1", {"borrower_id": "b-1", "language": "zh"},
                      {"intent": {"name": "cannot_borrow_after_repayment"}}, [], False, None,
                      {}, "action_listen")
    dispatcher = CollectingDispatcher()
    events = asyncio.run(eligibility.ExplainDecision().run(dispatcher, tracker, {}))

    said = [m["text"] for m in dispatcher.messages]
    assert said == [render("text_unavailable", "zh")[0]]
    assert render("backend_unavailable", "zh")[0] not in said
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    assert "backend_failed" not in slots and slots.get("pending_offer") == "human"
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("text catalog error" in m and broken in m for m in errors), errors
    assert not any("eligibility unavailable" in m or "malformed" in m for m in errors)


def test_a_broken_reply_in_an_action_is_caught_and_logged(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    patched = {**catalog("en"), "reply.anything_else": "Okay {oops}"}
    real = texts.catalog
    monkeypatch.setattr(texts, "catalog", lambda lang: patched if lang == "en" else real(lang))
    tracker = Tracker("c-2", {"language": "en"}, {}, [], False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    events = asyncio.run(clarify.DeclineOffer().run(dispatcher, tracker, {}))
    assert [m["text"] for m in dispatcher.messages] == [render("text_unavailable", "en")[0]]
    assert events == [{"event": "slot", "timestamp": None, "name": "pending_offer",
                       "value": "human"}]
    assert any("reply.anything_else" in r.getMessage() for r in caplog.records)


def test_catalogs_are_read_lazily() -> None:
    """Importing the actions reads no catalog (the first text of a language does)."""
    import subprocess
    import sys
    code = ("import actions.texts as t, actions.appeals, actions.clarify, actions.eligibility; "
            "print(t.catalog.cache_info().currsize)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.strip() == "0", result.stderr


def test_yaml_files_hold_only_mappings_of_text() -> None:
    for lang in language.SUPPORTED:
        tree = yaml.safe_load((texts.CATALOG_DIR / f"{lang}.yml").read_text(encoding="utf-8"))
        assert isinstance(tree, dict)
