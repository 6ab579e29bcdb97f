"""The text catalog (texts/<lang>.yml): one per language for everything a borrower or an
agent reads -- the assistant (actions.texts), the desk's own messages (desk.*) and the pages'
strings (page.*, served by the desk as GET /texts/<lang>.json). Read through common.texts.

- every key is in every language, with the same {fields};
- every key the actions look up exists (literal keys found in the code, and the keys the code
  builds from its own tables); every key the pages use exists and every page.* key is used;
- no user-facing text is left inline in code (the rule is in docs/texts.md, "What counts as
  user-facing"; every exception is listed below with its reason);
- a broken template is a TextError, never a backend failure, and the borrower gets the neutral
  reply; importing the actions or the desk reads no catalog.
"""

from __future__ import annotations

import ast
import asyncio
import re
import string
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.clock
import actions.conversation
import common.texts
import desk.api
from actions import appeals, clarify, eligibility, explanations, language, texts
from actions.texts import REPLY_BUTTONS, TextError, catalog, fields_of, render, text
from desk.routes import pages
from desk.service import DeskError

ROOT = Path(__file__).resolve().parents[2]
ACTIONS = ROOT / "actions"
STATIC = ROOT / "desk" / "static"
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
# the functions that take a catalog key as their first (texts.text, Ctx.t: "explain." + key)
# or second (say, render's callers) argument
LOOKUPS = {"text": ("", 0), "t": ("explain.", 0), "render": ("reply.", 0),
           "say": ("reply.", 1), "button": ("button.", 0)}


def test_the_catalogs_are_the_supported_languages() -> None:
    """The desk knows the languages from the files, the actions from actions/language.py."""
    assert set(common.texts.languages()) == set(language.SUPPORTED)
    assert common.texts.DEFAULT_LANGUAGE == language.DEFAULT


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
    monkeypatch.setattr(common.texts, "CATALOG_DIR", tmp_path)
    common.texts.catalog.cache_clear()
    try:
        with pytest.raises(TextError, match="cannot read"):
            common.texts.catalog("zh")
    finally:
        common.texts.catalog.cache_clear()


ELIGIBLE = {"eligible": True, "available_limit": 5000, "total_limit": 8000, "currency": "CNY",
            "decision_id": "d-1", "reasons": [], "timezone": "Asia/Shanghai",
            "borrower_id": "b-1"}


def test_a_broken_template_is_not_a_malformed_decision(broken: str) -> None:
    with pytest.raises(TextError) as caught:
        explanations.explanation_problem(dict(ELIGIBLE))
    assert caught.value.key == broken
    # the decision itself is fine: only the text is broken
    assert explanations.explain(dict(ELIGIBLE), lang="en", now=actions.clock.utc_now())


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


@pytest.mark.parametrize("modules", [
    "actions.texts, actions.appeals, actions.clarify, actions.eligibility",
    "desk.api, desk.turns, desk.routes.pages",
])
def test_catalogs_are_read_lazily(modules: str) -> None:
    """Importing the actions or the desk reads no catalog (the first text of a language does)."""
    import subprocess
    import sys
    code = (f"import common.texts, {modules}; "
            "print(common.texts.catalog.cache_info().currsize, "
            "common.texts.languages.cache_info().currsize)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.strip() == "0 0", result.stderr


def test_yaml_files_hold_only_mappings_of_text() -> None:
    for lang in language.SUPPORTED:
        tree = yaml.safe_load((texts.CATALOG_DIR / f"{lang}.yml").read_text(encoding="utf-8"))
        assert isinstance(tree, dict)


# --- no user-facing text inline ------------------------------------------------------------
# The rule (docs/texts.md, "What counts as user-facing"): a text is user-facing when it can
# reach a borrower's or an agent's screen -- what the assistant or the desk says in a
# conversation, and everything the pages show. Developer-facing: docstrings and comments, logs,
# exception messages, the `message` of the desk's API errors (the pages show the catalog's text
# for the error's code, never the message), operators' startup refusals, the terminal output
# of stack/ (a developer tool), and the patterns borrowers' words are matched against.

PY_FOLDERS = ("actions", "desk", "channels", "stack")
# P2 (English phrases) is for the code that talks to borrowers and agents; stack/ prints only
# to the developer who runs it
PHRASE_FOLDERS = ("actions", "desk", "channels")
PHRASE = re.compile(r"[A-Za-z][A-Za-z']*(?:\s+[A-Za-z][A-Za-z'.,;:!?]*){3,}")  # four words
PATTERN_CALLS = ("compile", "search", "match", "fullmatch", "sub", "findall", "strip")
LOG_OWNERS = ("log", "logger", "logging", "warnings")
# (file, the definition holding the string): why it is not a catalog text
PY_ALLOWED = {
    ("actions/settings.py", "ActionSettings"):
        "the product's name is configuration (RELEND_PRODUCT_NAME_ZH/EN), filled into "
        "product.note",
    ("actions/backend.py", "decision_problem"):
        "what is wrong with a backend answer, for the log (the borrower gets reply.*)",
    ("desk/masking.py", "_CHECK"):
        "the check character of an ID number (X, full-width Ｘ) that masking looks for: input",
    ("desk/config.py", "DeskSettings.check"):
        "why the desk refuses to start, for the operator",
    ("desk/service.py", "DEMO_AGENTS"):
        "the sandbox's demo agents: people's names, seeded into the agents table",
    ("desk/service.py", "DEFAULT_CANNED"):
        "the sandbox's first canned replies: database rows (title, zh, en) that supervisors "
        "edit in the console, seeded once; not the desk's own words",
    ("stack/services.py", "warm_up"):
        "a borrower's question sent to Rasa to load the tokenizer: input, not output",
}


def _qualified_owners(tree: ast.Module) -> dict[int, str]:
    """id(node) -> the name of the innermost definition holding it ("Class.method", "NAME")."""
    owners: dict[int, str] = {}

    def visit(node: ast.AST, name: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = name
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = f"{name}.{child.name}" if name else child.name
            elif isinstance(child, (ast.Assign, ast.AnnAssign)) and not name:
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                inner = next((t.id for t in targets if isinstance(t, ast.Name)), name)
            owners[id(child)] = inner
            visit(child, inner)

    visit(tree, "")
    return owners


def _developer_facing(tree: ast.Module) -> set[int]:
    """ids of the nodes that are never user-facing, by the rule above."""
    skip: set[int] = set()

    def all_of(node: ast.AST) -> None:
        skip.update(id(sub) for sub in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant):
            skip.add(id(body[0].value))  # a docstring
        if isinstance(node, ast.Raise):
            all_of(node)
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None) or ""
            owner = getattr(getattr(node.func, "value", None), "id", "")
            statuses = [a.value for a in node.args if isinstance(a, ast.Constant)]
            statuses += [k.value.value for k in node.keywords if k.arg in ("status", "status_code")
                         and isinstance(k.value, ast.Constant)]
            if name in PATTERN_CALLS or owner in LOG_OWNERS \
                    or name.endswith(("Error", "Exception")) or "error" in name.lower() \
                    or "refus" in name.lower() \
                    or any(isinstance(v, int) and 400 <= v < 600 for v in statuses):
                all_of(node)  # input patterns, logs, exceptions, HTTP error answers
            for keyword in node.keywords:
                if keyword.arg in ("help", "description"):
                    all_of(keyword.value)  # command-line help
        elif isinstance(node, ast.Dict):
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            if keys & {"error", "message"}:
                all_of(node)  # an API error body
    return skip


def _inline_texts(path: Path, tree: ast.Module, phrases: bool) -> list[tuple[str, str]]:
    """(owner, text) of every string literal that looks user-facing (P1: any CJK; P2 with
    ``phrases``: four English words or more)."""
    skip, owners = _developer_facing(tree), _qualified_owners(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip \
                and (CJK.search(node.value) or (phrases and PHRASE.search(node.value))):
            found.append((owners.get(id(node), ""), node.value))
    return found


def _python_sources() -> list[Path]:
    return sorted(path for folder in PY_FOLDERS for path in (ROOT / folder).rglob("*.py")
                  if "migrations" not in path.parts)


def test_no_user_facing_text_is_inline_in_python() -> None:
    inline, used = [], set()
    for path in _python_sources():
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for owner, value in _inline_texts(path, tree, rel.split("/")[0] in PHRASE_FOLDERS):
            if (rel, owner) in PY_ALLOWED:
                used.add((rel, owner))
            else:
                inline.append(f"{rel} ({owner or 'module'}): {value[:50]!r}")
    assert inline == [], "texts for texts/<lang>.yml (or, if not user-facing, PY_ALLOWED)"
    assert sorted(set(PY_ALLOWED) - used) == [], "allowed but no longer there: drop them"


def test_the_python_scan_catches_inline_texts() -> None:
    code = ('"""文档"""\nimport re\nX = re.compile("借")\nlog = None\n'
            'def f():\n    log.info("Nothing user-facing in this log line")\n'
            '    raise DeskError(404, "case_not_found", "No such case, for the developer.")\n'
            'def g():\n    return "您好"\n'
            'def h():\n    return {"type": "message", "text": "Sorry, the assistant is down."}\n')
    found = _inline_texts(Path("x.py"), ast.parse(code), phrases=True)
    assert found == [("g", "您好"), ("h", "Sorry, the assistant is down.")]


# --- the pages ------------------------------------------------------------------------------

PAGES = ("chat", "console", "insights")
# common.js's own texts (the situation picture) are the chat's and the console's; the insights
# page uses only its boot and applyTexts
SCRIPT_PAGES = {"chat.js": ("chat",), "console.js": ("console",), "insights.js": ("insights",),
                "common.js": ("chat", "console")}
# a string literal given straight to something that shows it
JS_SINK = re.compile(
    r"""(?:\b(?:text|title|placeholder)\s*:|["']aria-label["']\s*:|\.(?:textContent|title|"""
    r"""placeholder)\s*=|\b(?:toast|showAlert|showBanner|showLoginError)\(|"""
    r"""setAttribute\(\s*["'](?:title|placeholder|aria-label)["']\s*,)\s*$""")
CAPITALISED_PHRASE = re.compile(r"^\s*[A-Z][a-z']+\s+[A-Za-z]")
LETTER = re.compile(r"[A-Za-z]|" + CJK.pattern)


def _js_tokens(source: str) -> tuple[str, list[tuple[str, str]]]:
    """The code without comments (strings and regexes kept in place), and every string literal
    with the code just before it."""
    code, strings, i, n = [], [], 0, len(source)
    while i < n:
        c = source[i]
        if source.startswith("//", i):
            i = source.find("\n", i) if "\n" in source[i:] else n
        elif source.startswith("/*", i):
            i = source.index("*/", i) + 2
        elif c in "\"'`":
            j = i + 1
            while source[j] != c:
                j += 2 if source[j] == "\\" else 1
            strings.append(("".join(code)[-80:], source[i + 1:j]))
            code.append(source[i:j + 1])
            i = j + 1
        elif c == "/" and re.search(r"(?:^|[(,=:\[!&|?{};]|\breturn)\s*$", "".join(code)[-20:]):
            j = i + 1  # a regular expression literal
            while source[j] != "/":
                j += 2 if source[j] == "\\" else 1
            code.append(source[i:j + 1])
            i = j + 1
        else:
            code.append(c)
            i += 1
    return "".join(code), strings


def _js_problems(source: str) -> list[str]:
    code, strings = _js_tokens(source)
    problems = [f"CJK in code: {m.group()!r}" for m in CJK.finditer(code)]
    for before, value in strings:
        if LETTER.search(value) and JS_SINK.search(before):
            problems.append(f"shown as it is: {value!r}")
        elif CAPITALISED_PHRASE.search(value):
            problems.append(f"a phrase: {value!r}")
    for line in code.splitlines():
        if re.search(r"\.message\b", line) and "new Error(" not in line:
            problems.append(f"an API error's message on the screen: {line.strip()[:60]!r}")
    return problems


def test_no_user_facing_text_is_inline_in_the_pages_scripts() -> None:
    problems = {name: _js_problems((STATIC / name).read_text(encoding="utf-8"))
                for name in SCRIPT_PAGES}
    assert problems == {name: [] for name in SCRIPT_PAGES}
    assert sorted(p.name for p in STATIC.glob("*.js")) == sorted(SCRIPT_PAGES)


def test_the_script_scan_catches_inline_texts() -> None:
    source = ('// 注释 is fine\nvar a = t("send"); /* "Hello there" */\n'
              'el("span", { text: "Sign in" });\nbox.textContent = "—";\n'
              'var b = x ? "Replying in " : "回复：";\nvar re = /[一-龥]+ "q/g;\n'
              'toast(e.message, "error");\nthrow new Error(err.message || "HTTP " + s);\n')
    assert _js_problems(source) == [
        "CJK in code: '回'", "CJK in code: '复'", "CJK in code: '：'",
        "CJK in code: '一'", "CJK in code: '龥'",
        "shown as it is: 'Sign in'", "a phrase: 'Replying in '",
        "an API error's message on the screen: 'toast(e.message, \"error\");'"]


class _Html(HTMLParser):
    """The texts of a page's HTML outside <script>/<style>, and its data-i18n* keys."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[tuple[str, str]] = []  # (where, text)
        self.keys: set[str] = set()

    VOID = {"meta", "link", "input", "br", "img", "hr", "path", "rect"}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("data-i18n", "data-i18n-placeholder", "data-i18n-title"):
            if found.get(name):
                self.keys.add(str(found[name]))
        for name in ("title", "placeholder", "aria-label", "alt"):
            if found.get(name):
                self.texts.append((f"{tag}[{name}]", str(found[name])))
        if tag not in self.VOID:
            self.stack.append((tag, found))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        if not data.strip() or any(tag in ("script", "style") for tag, _ in self.stack):
            return
        if any(attrs.get("id") == "texts-failed" for _, attrs in self.stack):
            return  # the one notice the catalog cannot hold: the catalog did not load
        where = self.stack[-1][0] if self.stack else "document"
        self.texts.append((where, data.strip()))


def _html(page: str) -> _Html:
    parser = _Html()
    parser.feed((STATIC / f"{page}.html").read_text(encoding="utf-8"))
    return parser


@pytest.mark.parametrize("page", PAGES)
def test_no_user_facing_text_is_inline_in_the_pages(page: str) -> None:
    """Words come from data-i18n*; what is left may be symbols (×, ✓) and digits only."""
    parsed = _html(page)
    assert [(where, value) for where, value in parsed.texts if LETTER.search(value)] == []
    assert parsed.keys


def _script_keys() -> tuple[set[str], set[str], set[str]]:
    """The page.* keys the scripts use: exact ("page.chat.send"), prefixes whose keys are all
    used ("page.console.reason."), and numbered lists ("page.chat.suggestion")."""
    exact: set[str] = set()
    prefixes: set[str] = set()
    numbered: set[str] = set()
    for name, owners in SCRIPT_PAGES.items():
        code, _ = _js_tokens((STATIC / name).read_text(encoding="utf-8"))
        for page in owners:
            ours = f"page.{page}."
            exact |= {ours + k for k in re.findall(r'\bt\(\s*"([\w.]+)"\s*\)', code)}
            exact |= {ours + k for k in re.findall(r'\btext\(\s*\w+\s*,\s*"([\w.]+)"\s*\)', code)}
            exact |= {ours + k for k in re.findall(
                r'"data-i18n(?:-placeholder|-title)?"\s*:\s*"([\w.]+)"', code)}
            prefixes |= {ours + k for k in re.findall(r'\b(?:t|has)\(\s*"([\w.]+\.)"\s*\+', code)}
            numbered |= {ours + k for k in re.findall(r'\blist\(\s*"([\w.]+)"\s*\)', code)}
    return exact, prefixes, numbered


def test_every_key_the_pages_use_exists_and_every_page_key_is_used() -> None:
    keys = {k for k in catalog(language.DEFAULT) if k.startswith("page.")}
    exact, prefixes, numbered = _script_keys()
    exact |= {f"page.{page}.{key}" for page in PAGES for key in _html(page).keys}
    exact |= {f"page.{page}.title" for page in PAGES}  # common.js: the document's title

    assert sorted(exact - keys) == []
    assert sorted(p for p in prefixes if not any(k.startswith(p) for k in keys)) == []
    for key in numbered:  # key.1, key.2, ... with no gap
        found = sorted(int(k.rsplit(".", 1)[1]) for k in keys
                       if k.startswith(key + ".") and k.rsplit(".", 1)[1].isdigit())
        assert found and found == list(range(1, len(found) + 1)), key
    unused = [k for k in keys if k not in exact and not k.startswith(tuple(prefixes))
              and not any(re.fullmatch(re.escape(n) + r"\.\d+", k) for n in numbered)]
    assert sorted(unused) == []


def test_the_page_key_scan_finds_every_kind_of_use() -> None:
    exact, prefixes, numbered = _script_keys()
    assert {"page.chat.connecting", "page.console.error.network", "page.chat.brand_mark",
            "page.console.no_case"} <= exact
    assert {"page.console.reason.", "page.console.error.", "page.console.status."} <= prefixes
    assert numbered == {"page.chat.suggestion"}
    assert {"sandbox_title", "switch_user", "placeholder"} <= _html("chat").keys


# codes of the desk's API errors that the console does not show as error.<code>, and why
NOT_SHOWN_AS_ERROR = {
    "unauthorized": "the console refreshes its token or goes back to the sign-in form",
    "bad_credentials": "the sign-in form says bad_login",
    "too_many_attempts": "the sign-in form says too_many_attempts, with the wait",
    "demo_unavailable": "the chat page's demo picker says load_failed",
    "not_a_demo_borrower": "the chat page's demo picker says login_failed",
    "texts_unavailable": "the page cannot show any text: #texts-failed",
}


def test_every_error_code_of_the_desk_has_a_text_in_the_console() -> None:
    codes = set()
    for path in (ROOT / "desk").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeskError":
                codes.add(node.args[1].value)
    assert "case_not_found" in codes
    console = {k.removeprefix("page.console.error.") for k in catalog(language.DEFAULT)
               if k.startswith("page.console.error.")}
    assert sorted(codes - console - set(NOT_SHOWN_AS_ERROR)) == []
    assert set(NOT_SHOWN_AS_ERROR) <= codes


def test_the_desk_does_not_import_the_actions() -> None:
    """The desk is deployed without the action server: it shares common/ only."""
    imports = []
    for path in (ROOT / "desk").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            imports += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "actions"]
    assert imports == []


# --- GET /texts/<lang>.json -----------------------------------------------------------------


@pytest.fixture
def pages_client() -> TestClient:
    app = FastAPI()
    app.include_router(pages.router)
    app.add_exception_handler(DeskError, desk.api.desk_error)  # type: ignore[arg-type]
    return TestClient(app)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_desk_serves_the_pages_texts(pages_client: TestClient, lang: str) -> None:
    response = pages_client.get(f"/texts/{lang}.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body == {k.removeprefix("page."): v for k, v in catalog(lang).items()
                    if k.startswith("page.")}
    assert body["chat.send"] == {"zh": "发送", "en": "Send"}[lang]
    # revalidated by its ETag
    again = pages_client.get(f"/texts/{lang}.json",
                             headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and not again.content


@pytest.mark.parametrize("lang", ["fr", "zh.yml", "..%2Fzh", "ZH"])
def test_the_desk_has_no_texts_for_other_languages(pages_client: TestClient, lang: str) -> None:
    response = pages_client.get(f"/texts/{lang}.json")
    assert response.status_code == 404
