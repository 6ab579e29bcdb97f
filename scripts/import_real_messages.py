"""Turn labelled real messages (TSV: id, text, intent, origin) into a Rasa training file.

Product names are annotated as the ``product`` entity (the same names and synonyms as the
hand-written data), messages that nearly copy an evaluation message are left out (the
evaluation sets are never trained on, not even by accident), and every block carries its
source in ``metadata`` so the tests can prove training and evaluation sources stay apart.

    .venv/bin/python scripts/import_real_messages.py SOURCE labelled.tsv [more.tsv ...]
        -> data/nlu/real/SOURCE.yml
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nlu_eval import sets  # noqa: E402


def product_names() -> list[str]:
    """Every written form of a product name in data/nlu/synonyms.yml, longest first."""
    document = yaml.safe_load((sets.TRAINING_DIR / "synonyms.yml").read_text(encoding="utf-8"))
    names = [line.strip()[2:] for block in document["nlu"] if "synonym" in block
             and block["synonym"] != "credit_line" for line in block["examples"].splitlines()
             if line.strip().startswith("- ")]
    return sorted({n for n in names if re.search(r"[\u4e00-\u9fff]", n)}, key=len, reverse=True)


def annotate(text: str, names: list[str]) -> str:
    pattern = re.compile("|".join(map(re.escape, names)))
    return pattern.sub(lambda m: f"[{m.group(0)}](product)", text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    rows = []
    for path in args.files:
        lines = path.read_text(encoding="utf-8").splitlines()
        for line in lines[1:]:
            parts = line.split("\t")
            if len(parts) >= 4 and parts[1].strip():
                rows.append(sets.Example(parts[1].strip(), parts[2].strip(), origin=parts[3]))
    evaluation = sets.evaluation_examples()
    held = {sets.normalise(e.text) for e in evaluation}
    copies = {a.text for a, _ in sets.near_copies(rows, evaluation)}
    names = product_names()
    kept: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    skipped = {"near_copy": 0, "markup": 0, "duplicate": 0}
    for row in rows:
        key = sets.normalise(row.text)
        if row.text in copies or key in held:
            skipped["near_copy"] += 1
        elif re.search(r"[\[\]{}()]|^[-#>|*&!%@`]", row.text) or not row.text.isprintable():
            skipped["markup"] += 1  # entity markup, YAML syntax or control characters
        elif key in seen or not key:
            skipped["duplicate"] += 1
        else:
            seen.add(key)
            kept[row.intent].append(annotate(row.text, names))
    out = ['version: "3.1"',
           f"# Real customer messages from {args.source}, labelled by docs/nlu-labelling.md.",
           "# Provenance and licence: docs/nlu-data.md.",
           "# Written by scripts/import_real_messages.py from the labelled TSV.",
           "nlu:"]
    # the public files these messages come from: tests prove no evaluation message comes
    # from any of them
    files = sorted({sets.corpus_file(row.origin) for row in rows if row.origin})
    metadata = json.dumps({"source": args.source, "corpus_files": files}, ensure_ascii=False)
    for intent in sorted(kept):
        out += [f"- intent: {intent}", f"  metadata: {metadata}", "  examples: |"]
        out += [f"    - {text}" for text in kept[intent]]
    target = sets.TRAINING_DIR / "real" / f"{args.source}.yml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(out) + "\n", encoding="utf-8")
    total = sum(len(v) for v in kept.values())
    print(f"wrote {target.relative_to(ROOT)}: {total} examples "
          f"({', '.join(f'{k} {len(v)}' for k, v in sorted(kept.items()))}); skipped {skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
