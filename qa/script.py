"""Reading scripts: YAML in, checked steps out, or a ScriptError naming the file and line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STEP_KINDS = ("say", "press", "agent_say", "agent_return", "agent_close")
EXPECT_KEYS = {
    "contains": list, "contains_any": list, "not_contains": list, "reason": str,
    "slots": dict, "buttons": list, "no_buttons": bool, "handoff": bool, "appeal": dict,
    "silent": bool, "from": str,
}
SCRIPT_KEYS = {"name", "borrower", "locale", "fixture", "turns", "description"}
SENDERS = ("bot", "agent", "system", "any")


class ScriptError(Exception):
    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


@dataclass
class Step:
    kind: str
    value: Any
    expect: dict[str, Any]
    line: int

    def describe(self) -> str:
        value = self.value if self.value not in (None, {}, True) else ""
        return f"{self.kind}: {value}".rstrip(": ")


@dataclass
class Script:
    path: Path
    name: str
    borrower: str | None
    locale: str
    fixture: dict[str, Any] | None
    steps: list[Step] = field(default_factory=list)

    @property
    def group(self) -> str:
        """Scripts that share a borrower run one after another; the rest run in parallel."""
        return self.borrower or f"fixture:{self.path}"


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 1


def _lines_by_key(node: yaml.Node) -> dict[str, int]:
    if isinstance(node, yaml.MappingNode):
        return {k.value: _line(k) for k, _v in node.value if isinstance(k, yaml.ScalarNode)}
    return {}


def _duplicate_key(node: yaml.Node | None) -> yaml.ScalarNode | None:
    """A key given twice in one mapping (say, two `say:` in one turn): the second occurrence."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    return key
                seen.add(key.value)
            found = _duplicate_key(value)
            if found is not None:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found = _duplicate_key(item)
            if found is not None:
                return found
    return None


def _split_figure(node: yaml.Node | None) -> tuple[yaml.ScalarNode, yaml.ScalarNode] | None:
    """In a flow list, ``[还款5,000元]`` is two items ("还款5", "000元"), each of which a reply
    contains far more easily than the figure: find such a pair (a digit, a comma, a digit)."""
    if isinstance(node, yaml.SequenceNode):
        if node.flow_style:
            for first, second in zip(node.value, node.value[1:], strict=False):
                if (isinstance(first, yaml.ScalarNode) and isinstance(second, yaml.ScalarNode)
                        and first.style is None and second.style is None
                        and second.start_mark.index == first.end_mark.index + 1
                        and first.value[-1:].isdigit() and second.value[:1].isdigit()):
                    return first, second
        children: list[yaml.Node] = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    else:
        return None
    for child in children:
        found = _split_figure(child)
        if found is not None:
            return found
    return None


def load_script(path: Path) -> Script:
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise ScriptError(path, 1, "the file is not UTF-8 text") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise ScriptError(path, line, f"not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise ScriptError(path, 1, "a script is a mapping with at least `name` and `turns`")
    duplicate = _duplicate_key(node)
    if duplicate is not None:
        raise ScriptError(path, _line(duplicate),
                          f"`{duplicate.value}` appears twice in the same mapping (YAML would "
                          "keep only the last one): make it two turns or merge the two")
    split = _split_figure(node)
    if split is not None:
        first, second = split
        figure = f"{first.value},{second.value}"
        raise ScriptError(path, _line(first),
                          f"`{figure}` in a [...] list is read as two items, {first.value!r} "
                          f"and {second.value!r}: quote it (\"{figure}\") or put the list "
                          "one item per line")
    lines = _lines_by_key(node)
    unknown = set(data) - SCRIPT_KEYS
    if unknown:
        key = sorted(unknown, key=str)[0]
        raise ScriptError(path, lines.get(str(key), 1),
                          f"unknown key `{key}` (allowed: {', '.join(sorted(SCRIPT_KEYS))})")
    for key in ("name", "turns"):
        if key not in data:
            raise ScriptError(path, 1, f"missing `{key}`")
    # `fixture: {}` is a valid fixture (every record at its default): test presence, not truth
    if bool(data.get("borrower")) == (data.get("fixture") is not None):
        raise ScriptError(path, lines.get("borrower", lines.get("fixture", 1)),
                          "give exactly one of `borrower` (a demo borrower id) or `fixture` "
                          "(a backend state for this script)")
    if data.get("fixture") is not None and not isinstance(data["fixture"], dict):
        raise ScriptError(path, lines["fixture"], "`fixture` is a mapping of records")
    locale = data.get("locale", "zh-CN")
    if locale not in ("zh-CN", "en-US"):
        raise ScriptError(path, lines.get("locale", 1), "`locale` is zh-CN or en-US")
    turns = data["turns"]
    turn_nodes = next((v for k, v in node.value if k.value == "turns"), None)
    if not isinstance(turns, list) or not turns:
        raise ScriptError(path, lines["turns"], "`turns` is a non-empty list")
    script = Script(path=path, name=str(data["name"]), borrower=data.get("borrower"),
                    locale=locale, fixture=data.get("fixture"))
    for index, turn in enumerate(turns):
        turn_node = turn_nodes.value[index] if isinstance(turn_nodes, yaml.SequenceNode) else None
        script.steps.append(_step(path, turn, _line(turn_node), _lines_by_key(turn_node)))
    return script


def _step(path: Path, turn: Any, line: int, lines: dict[str, int]) -> Step:
    if not isinstance(turn, dict):
        raise ScriptError(path, line, f"a turn is a mapping with one of: {', '.join(STEP_KINDS)}")
    kinds = [k for k in turn if k in STEP_KINDS]
    extra = [k for k in turn if k not in STEP_KINDS and k != "expect"]
    if len(kinds) != 1 or extra:
        bad = extra[0] if extra else None
        raise ScriptError(path, lines.get(bad, line) if bad else line,
                          f"a turn has exactly one of {', '.join(STEP_KINDS)}, plus `expect`"
                          + (f"; unknown key `{bad}`" if bad else ""))
    kind = kinds[0]
    value = turn[kind]
    if kind in ("say", "press", "agent_say") and (not isinstance(value, str) or not value):
        raise ScriptError(path, lines.get(kind, line), f"`{kind}` needs a text")
    expect = turn.get("expect") or {}
    if not isinstance(expect, dict):
        raise ScriptError(path, lines.get("expect", line), "`expect` is a mapping")
    for key, value_ in expect.items():
        if key not in EXPECT_KEYS:
            raise ScriptError(path, lines.get("expect", line),
                              f"unknown expectation `{key}` "
                              f"(allowed: {', '.join(sorted(EXPECT_KEYS))})")
        if not isinstance(value_, EXPECT_KEYS[key]):
            raise ScriptError(path, lines.get("expect", line),
                              f"`{key}` must be a {EXPECT_KEYS[key].__name__}")
    if expect.get("from", "any") not in SENDERS:
        raise ScriptError(path, lines.get("expect", line), f"`from` is one of {SENDERS}")
    return Step(kind=kind, value=value, expect=expect, line=line)
