"""Checks that keep the data, docs and configuration honest."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from eligibility.reasons import REASONS
from nlu_eval.sets import Example, heldout_examples, training_examples

ROOT = Path(__file__).resolve().parents[2]
CORE_INTENTS = (
    "cannot_borrow_after_repayment", "ask_limit_restore_time", "limit_reduced_or_closed",
    "ask_improve_eligibility", "request_appeal", "check_appeal_status", "request_human",
    "report_app_error", "disagree_with_decision", "ask_repayment_status", "out_of_scope",
)


def _by_intent(found: list[Example]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for example in found:
        grouped.setdefault(example.intent, []).append(example.text)
    return grouped


def training() -> dict[str, list[str]]:
    return _by_intent(training_examples())


def heldout() -> dict[str, list[str]]:
    return _by_intent(heldout_examples())


def test_heldout_set_is_never_trained_on() -> None:
    trained = {t.strip().lower() for texts in training().values() for t in texts}
    leaked = [t for texts in heldout().values() for t in texts if t.strip().lower() in trained]
    assert not leaked, f"held-out examples also in the training data: {leaked}"


def test_heldout_set_has_at_least_15_examples_per_core_intent() -> None:
    counts = {intent: len(heldout().get(intent, [])) for intent in CORE_INTENTS}
    assert all(n >= 15 for n in counts.values()), counts


def test_no_training_example_is_labelled_twice() -> None:
    seen: dict[str, str] = {}
    clashes = []
    for intent, texts in training().items():
        for text in texts:
            key = text.strip().lower()
            if key in seen and seen[key] != intent:
                clashes.append((text, seen[key], intent))
            seen[key] = intent
    assert not clashes


def test_every_domain_intent_has_training_data() -> None:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    assert set(domain["intents"]) == set(training())


def test_reason_table_documents_every_code_in_rank_order() -> None:
    doc = (ROOT / "docs" / "backend.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| (\d+) \| `([A-Z_]+)` \|", doc, flags=re.MULTILINE)
    assert [(int(rank), code) for rank, code in documented] == sorted(
        (spec.rank, spec.code) for spec in REASONS.values())


def test_every_demo_borrower_is_documented() -> None:
    from eligibility.seed import DEMO_BORROWERS

    doc = (ROOT / "docs" / "demo-borrowers.md").read_text(encoding="utf-8")
    assert all(f"| `{demo.id}` |" in doc for demo in DEMO_BORROWERS)
