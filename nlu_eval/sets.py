"""The NLU example sets and the near-copy check that keeps evaluation honest.

Two kinds of file:

* Rasa NLU YAML (``data/nlu/**.yml``, ``tests/nlu/heldout.yml``): intent blocks of examples.
* Real-message sets (``tests/nlu/real_*.yml``): messages written by real customers, each with
  its label, an optional second defensible label (``alt``) and where it came from (``origin``).
  How they were gathered and labelled: ``docs/nlu-labelling.md``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TRAINING_DIR = ROOT / "data" / "nlu"
HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"
REAL_SETS = tuple(sorted((ROOT / "tests" / "nlu").glob("real_*.yml")))

_MARKUP = re.compile(r"\[([^\]]+)\]\([^)]+\)|\[([^\]]+)\]\{[^}]+\}")
# what survives normalisation: letters, digits and CJK ideographs (no punctuation, spaces,
# emoji or symbols)
_KEEP = re.compile(r"[\w\u3400-\u4dbf\u4e00-\u9fff]", re.UNICODE)


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    alt: str | None = None  # a second defensible label, where one exists
    origin: str = ""  # where a real message came from (file and line of its public source)
    source: str = ""  # the corpus it belongs to


def strip_markup(text: str) -> str:
    """``[借呗](product)`` -> ``借呗``."""
    return _MARKUP.sub(lambda m: m.group(1) or m.group(2), text)


def rasa_examples(paths: Iterable[Path]) -> list[Example]:
    """Every intent example in Rasa NLU YAML files, markup removed."""
    found: list[Example] = []
    for path in paths:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in document.get("nlu", []) or []:
            if "intent" not in block:
                continue
            examples = block["examples"]
            lines = examples.splitlines() if isinstance(examples, str) else [
                f"- {item['text']}" for item in examples]
            for line in lines:
                line = line.strip()
                if line.startswith("- "):
                    found.append(Example(strip_markup(line[2:]).strip(), block["intent"],
                                         source=path.stem))
    return found


def training_examples() -> list[Example]:
    return rasa_examples(sorted(TRAINING_DIR.rglob("*.yml")))


def heldout_examples() -> list[Example]:
    return rasa_examples([HELDOUT])


def real_examples(path: Path) -> list[Example]:
    """A real-message set: ``{source: ..., messages: [{text, intent, alt?, origin}]}``."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    source = document["source"]
    return [Example(str(item["text"]), item["intent"], item.get("alt"),
                    str(item.get("origin", "")), source)
            for item in document["messages"]]


def corpus_file(origin: str) -> str:
    """``owner/repo@commit:path:line`` -> ``owner/repo:path`` (the public file a message is
    from, whatever the commit or line; ``#...`` suffixes dropped)."""
    head, _, rest = origin.partition("@")
    path = rest.partition(":")[2].split("#")[0].rsplit(":", 1)[0]
    return f"{head}:{path}"


def evaluation_examples() -> list[Example]:
    """Every message of every evaluation set: what training data must never copy."""
    return heldout_examples() + [e for path in REAL_SETS for e in real_examples(path)]


def normalise(text: str) -> str:
    """The comparable core of a message: NFKC (full-width -> half-width), lower case, and only
    letters, digits and ideographs (punctuation, spaces, emoji and symbols dropped)."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return "".join(_KEEP.findall(folded)).replace("_", "")


def trigrams(text: str) -> frozenset[str]:
    return frozenset(text[i:i + 3] for i in range(len(text) - 2))


def within_edits(a: str, b: str, limit: int) -> bool:
    """Levenshtein distance of ``a`` and ``b`` is at most ``limit`` (banded, early exit)."""
    if abs(len(a) - len(b)) > limit:
        return False
    if len(a) > len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, start=1):
        current = [i] + [limit + 1] * len(b)
        low, high = max(1, i - limit), min(len(b), i + limit)
        for j in range(low, high + 1):
            cost = 0 if char == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
        if min(current[max(0, low - 1):high + 1]) > limit:
            return False
        previous = current
    return previous[len(b)] <= limit


def near_copy(a: str, b: str) -> bool:
    """Two *normalised* texts are near-copies: identical; within two edits where that is at
    most a third of the longer text (so ``我要申述``/``我要申诉`` count, ``hi``/``hey`` do not);
    or sharing more than 80% of their character trigrams (Jaccard)."""
    if a == b:
        return True
    longest = max(len(a), len(b))
    if within_edits(a, b, min(2, longest // 3)):
        return True
    ta, tb = trigrams(a), trigrams(b)
    if len(ta) < 3 or len(tb) < 3:
        return False
    return len(ta & tb) / len(ta | tb) > 0.8


def near_copies(candidates: Iterable[Example], reference: Iterable[Example]
                ) -> Iterator[tuple[Example, Example]]:
    """Each candidate example with the first reference example it nearly copies."""
    by_trigram: dict[str, set[int]] = {}
    refs: list[tuple[str, Example]] = []
    for example in reference:
        key = normalise(example.text)
        refs.append((key, example))
        for gram in trigrams(key) or {key}:
            by_trigram.setdefault(gram, set()).add(len(refs) - 1)
    by_length: dict[int, list[int]] = {}
    for index, (key, _) in enumerate(refs):
        by_length.setdefault(len(key), []).append(index)
    for example in candidates:
        key = normalise(example.text)
        pool: set[int] = set()
        for gram in trigrams(key) or {key}:
            pool |= by_trigram.get(gram, set())
        if len(key) <= 8:  # short texts may share no trigram and still be two edits apart
            for length in range(len(key) - 2, len(key) + 3):
                pool.update(by_length.get(length, ()))
        for index in sorted(pool):
            if near_copy(key, refs[index][0]):
                yield example, refs[index][1]
                break
