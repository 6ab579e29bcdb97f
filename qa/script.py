"""Reading scripts: YAML in, checked steps out, or a ScriptError naming the file, the line and
the path of the bad field (``turns[2].expect.contains``).

The schema is the pydantic models below (``ScriptFile``, ``Turn``, ``Expect``); what a schema
cannot see is checked on the YAML itself: a key given twice in one mapping, and a figure such
as ``[还款5,000元]`` that a flow list splits in two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Extra,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    conint,
    conlist,
    root_validator,
    validator,
)

STEP_KINDS = ("say", "press", "agent_say", "agent_return", "agent_close", "wait_notice")
TEXT_STEPS = ("say", "press", "agent_say")


class ScriptError(Exception):
    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


# --- the schema ----------------------------------------------------------------------------------

class _Strict(BaseModel):
    class Config:
        extra = Extra.forbid


class AppealExpectation(_Strict):
    """What the backend must hold after the turn; the latest appeal is compared."""

    status: StrictStr | None = None
    reason: StrictStr | None = None
    count: StrictInt | None = None


class Expect(_Strict):
    """What must hold for the reply to a turn (see qa/check.py for how each is judged)."""

    contains: list[str] | None = None
    contains_any: list[str] | None = None
    not_contains: list[str] | None = None
    reason: StrictStr | None = None
    slots: dict[str, Any] | None = None
    buttons: list[str] | None = None
    no_buttons: StrictBool | None = None
    handoff: StrictBool | None = None
    appeal: AppealExpectation | None = None
    silent: StrictBool | None = None
    # the kind of change a proactive notice among the replies names (``repayment_posted``)
    notice: StrictStr | None = None
    from_: Literal["bot", "agent", "system", "any"] = Field("any", alias="from")


class Turn(_Strict):
    """Exactly one step (what the borrower or an agent does), plus what to expect."""

    say: StrictStr | None = None
    press: StrictStr | None = None  # a button's title
    agent_say: StrictStr | None = None
    agent_return: StrictStr | None = None  # with an optional note for the bot
    agent_close: None = None
    # nobody types: wait up to this many seconds for a proactive notice (a bot message the
    # desk marks with the kind of change); the reply is what arrived until it
    wait_notice: conint(strict=True, ge=1, le=600) | None = None  # type: ignore[valid-type]
    expect: Expect | None = None

    @root_validator(pre=True)
    def _one_step(cls, values: dict[str, Any]) -> dict[str, Any]:
        if sum(kind in values for kind in STEP_KINDS) != 1:
            raise ValueError(f"a turn has exactly one of {', '.join(STEP_KINDS)}, "
                             "plus `expect`")
        return values

    @validator(*TEXT_STEPS, pre=True)
    def _text(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value:
            raise ValueError("needs a text")
        return value

    @validator("wait_notice", pre=True)
    def _seconds(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("needs the most seconds to wait (1-600)")
        return value

    @property
    def kind(self) -> str:
        return next(kind for kind in STEP_KINDS if kind in self.__fields_set__)


class ScriptFile(_Strict):
    name: str
    description: str | None = None
    locale: Literal["zh-CN", "en-US"] = "zh-CN"
    # a backend state made for this script; `fixture: {}` is every record at its default
    fixture: dict[str, Any] | None = None
    borrower: StrictStr | None = None  # a demo borrower id
    turns: conlist(Turn, min_items=1)  # type: ignore[valid-type]

    @validator("borrower", always=True)
    def _borrower_or_fixture(cls, value: str | None, values: dict[str, Any]) -> str | None:
        if "fixture" not in values:
            return value  # the fixture is broken: its own error says how
        if bool(value) == (values.get("fixture") is not None):
            raise ValueError("give exactly one of `borrower` (a demo borrower id) or "
                             "`fixture` (a backend state for this script)")
        return value or None


# --- what the runner gets ------------------------------------------------------------------------


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
    _check_yaml(path, node)
    try:
        parsed = ScriptFile.parse_obj(_text_keys(data))
    except ValidationError as exc:
        raise _schema_error(path, node, exc) from None
    turn_nodes = _child(node, "turns")
    return Script(path=path, name=parsed.name, borrower=parsed.borrower, locale=parsed.locale,
                  fixture=parsed.fixture, steps=[
                      Step(kind=turn.kind, value=getattr(turn, turn.kind),
                           expect=turn.expect.dict(by_alias=True, exclude_unset=True)
                           if turn.expect else {},
                           line=_line(_child(turn_nodes, index)))
                      for index, turn in enumerate(parsed.turns)])


# --- from a pydantic error to the file, the line and the field -----------------------------------


def _schema_error(path: Path, root: yaml.Node, error: ValidationError) -> ScriptError:
    """The first problem in the file (by line), worded with the path of its field."""
    problems = []
    for problem in error.errors():
        loc = [part for part in problem["loc"] if part != "__root__"]
        node, line = root, _line(root)
        for part in loc:
            key = _key(node, part)
            node = _child(node, part)
            if node is None:
                break  # a missing field: the line of the mapping it is missing from
            line = _line(key if key is not None else node)
        message = problem["msg"]
        if problem["type"] == "value_error.extra":
            allowed = ", ".join(sorted(f.alias for f in _model_at(loc[:-1]).__fields__.values()))
            message = f"unknown key (allowed: {allowed})"
        where = _field_path(loc)
        problems.append((line, f"`{where}`: {message}" if where else message))
    line, message = min(problems, key=lambda p: p[0])
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s) in this file)"
    return ScriptError(path, line, message)


def _field_path(loc: list[int | str]) -> str:
    """``["turns", 2, "expect", "contains"]`` -> ``turns[2].expect.contains``"""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _model_at(loc: list[int | str]) -> type[BaseModel]:
    model: Any = ScriptFile
    for part in loc:
        if isinstance(part, str):
            model = next(f for f in model.__fields__.values() if f.alias == part).type_
    return model


def _text_keys(value: Any) -> Any:
    """Keys as text (YAML also reads `1:` or `yes:` as keys), so that pydantic can name them."""
    if isinstance(value, dict):
        return {str(k): _text_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text_keys(v) for v in value]
    return value


# --- the YAML itself -----------------------------------------------------------------------------


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 1


def _key(node: yaml.Node | None, part: int | str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((k for k, _v in node.value if str(k.value) == str(part)), None)
    return None


def _child(node: yaml.Node | None, part: int | str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if str(k.value) == str(part)), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return node.value[part]
    return None


def _check_yaml(path: Path, node: yaml.Node) -> None:
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
