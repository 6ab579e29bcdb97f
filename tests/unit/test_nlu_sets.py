"""The evaluation sets stay honest: no near-copies of training data, every intent covered,
the real-message set kept apart from training by source, and routes that match the rules."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import yaml

from nlu_eval.routes import ROUTE_OF_INTENT, ROUTES, route_of
from nlu_eval.sets import (
    REAL_SETS,
    ROOT,
    Example,
    corpus_file,
    heldout_examples,
    near_copies,
    near_copy,
    normalise,
    rasa_examples,
    real_examples,
    training_examples,
)

DOMAIN_INTENTS = set(yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))["intents"])
ELIGIBILITY_FAMILY = {"cannot_borrow_after_repayment", "ask_limit_restore_time",
                      "limit_reduced_or_closed", "ask_improve_eligibility",
                      "ask_repayment_status", "disagree_with_decision"}


@pytest.mark.parametrize(("a", "b"), [
    ("我要申述", "我要申诉"),                     # one homophone apart (from the issue)
    ("暂无可借额度", "暂无额度"),                   # two characters apart
    ("验证马收不到", "验证码收不到"),
    ("人工 人工 人工", "人工人工人工"),               # spaces only
    ("感谢感谢🙏", "感谢感谢"),                     # emoji only
    ("转人工！！", "转人工"),                       # punctuation only
    ("ＡＢＣ额度", "abc额度"),                      # full-width letters
    ("经综合评估暂未通过 我要申诉", "提示经综合评估暂未通过。我要申诉！"),  # trigram overlap
])
def test_near_copies_are_caught(a: str, b: str) -> None:
    assert near_copy(normalise(a), normalise(b))


@pytest.mark.parametrize(("a", "b"), [
    ("hi", "hey"),                  # short texts: two edits is most of the text
    ("你好", "您好"),
    ("额度什么时候恢复", "为什么不能借款"),
    ("我还完了为什么借不了", "申诉进度到哪一步了"),
])
def test_different_messages_are_not_near_copies(a: str, b: str) -> None:
    assert not near_copy(normalise(a), normalise(b))


def test_normalise_drops_what_does_not_change_meaning() -> None:
    assert normalise("  借呗，还完了！？ 😅 ") == "借呗还完了"
    assert normalise("Ｉ ＣＡＮＴ borrow") == "icantborrow"


def test_heldout_set_has_no_near_copy_of_a_training_example() -> None:
    copies = [(a.text, b.text, a.intent) for a, b in near_copies(heldout_examples(),
                                                                  training_examples())
              if a.intent == b.intent]
    assert not copies, f"{len(copies)} held-out near-copies of training examples: {copies[:20]}"


def test_heldout_set_covers_every_intent() -> None:
    counts = Counter(e.intent for e in heldout_examples())
    assert set(counts) == DOMAIN_INTENTS
    small_talk = {"greet", "goodbye", "thank", "affirm", "deny", "cancel", "bot_challenge",
                  "chitchat"}
    assert all(counts[i] >= (5 if i in small_talk else 15) for i in DOMAIN_INTENTS), counts


def test_every_intent_has_a_route_and_rules_agree() -> None:
    assert set(ROUTE_OF_INTENT) >= DOMAIN_INTENTS
    assert set(ROUTE_OF_INTENT.values()) == set(ROUTES)
    rules = yaml.safe_load((ROOT / "data" / "rules.yml").read_text(encoding="utf-8"))["rules"]
    action_route = {"action_explain_decision": "explain", "action_report_app_error": "app_error",
                    "action_handoff_to_human": "human",
                    "action_report_appeal_status": "appeal"}
    for rule in rules:
        steps = rule["steps"]
        if rule.get("condition") or len(steps) < 2 or "intent" not in steps[0]:
            continue
        action = steps[1].get("action")
        if action in action_route:
            assert route_of(steps[0]["intent"]) == action_route[action], rule["rule"]


@pytest.fixture(scope="module")
def real() -> list[Example]:
    assert REAL_SETS, "no real-message set in tests/nlu/real_*.yml"
    return [e for path in REAL_SETS for e in real_examples(path)]


def test_real_set_is_big_enough_and_covers_every_family(real: list[Example]) -> None:
    counts = Counter(e.intent for e in real)
    assert len(real) >= 400
    assert counts["out_of_scope"] >= 60
    for intent in [*ELIGIBILITY_FAMILY, "request_appeal", "check_appeal_status",
                   "request_human", "report_app_error"]:
        assert counts[intent] >= 3, (intent, counts)  # some families are rare in real text


def test_real_set_labels_are_intents_and_every_message_has_an_origin(real: list[Example]
                                                                      ) -> None:
    assert {e.intent for e in real} <= DOMAIN_INTENTS
    assert {e.alt for e in real if e.alt} <= DOMAIN_INTENTS
    assert all(e.alt != e.intent for e in real)
    assert all(e.origin for e in real)
    duplicates = [k for k, n in Counter(normalise(e.text) for e in real).items() if n > 1]
    assert not duplicates


def test_corpus_file_names_the_public_file_whatever_the_commit_or_line() -> None:
    assert corpus_file("a/b@0123abc:dir/dev.csv:17") == "a/b:dir/dev.csv"
    assert corpus_file("a/b@0123abc:data.csv:9#first_sentences") == "a/b:data.csv"


def test_real_set_sources_are_never_trained_on(real: list[Example]) -> None:
    """Apart by source, not just by sentence: no training file draws on a public file that an
    evaluation message comes from, and no real evaluation message is in the training data."""
    eval_files = {corpus_file(e.origin) for e in real}
    trained_files: set[str] = set()
    for path in (ROOT / "data" / "nlu" / "real").glob("*.yml"):
        for block in yaml.safe_load(path.read_text(encoding="utf-8"))["nlu"]:
            trained_files.update(block["metadata"]["corpus_files"])
    assert trained_files, "the real training files name the public files they come from"
    assert not eval_files & trained_files
    assert not {repo.split(":")[0] for repo in eval_files} & {
        repo.split(":")[0] for repo in trained_files}, "same repository on both sides"
    trained = {normalise(e.text) for e in training_examples()}
    leaked = [e.text for e in real if normalise(e.text) in trained and len(normalise(e.text)) > 4]
    assert not leaked, leaked[:20]


def _augment() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("augment_nlu",
                                                  ROOT / "scripts" / "augment_nlu.py")
    assert spec and spec.loader
    augment = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(augment)
    return augment


def test_generated_variants_are_up_to_date() -> None:
    """data/nlu/generated/*.yml is what scripts/augment_nlu.py makes from today's data (and
    today's evaluation sets, whose near-copies it leaves out)."""
    augment = _augment()
    generated = ROOT / "data" / "nlu" / "generated"
    current = (generated / "variants.yml").read_text(encoding="utf-8")
    assert current == augment.generate(), "stale: run scripts/augment_nlu.py"
    current = (generated / "other_products.yml").read_text(encoding="utf-8")
    assert current == augment.generate_other_products(), "stale: run scripts/augment_nlu.py"


@pytest.mark.parametrize(("question", "asked_about_a_card"), [
    # the product named is swapped for a card; the card is one of the list (any of them)
    ("[借呗](product)怎么提额", "{card}怎么提额"),
    # no product named: the limit becomes a card's kind of limit
    ("额度被降了怎么办", "{limit}被降了怎么办"),
    # still about a line like ours, two products, English, or too long: no variant
    ("借款额度没了", None),
    ("多用[花呗](product)能提高[借呗](product)额度吗", None),
    ("why was my limit cut", None),
    ("我一直按时还款从来没有逾期过为什么突然就不给我额度了"
     "这到底是什么原因能不能给个说法呀谢谢", None),
])
def test_an_eligibility_question_about_a_card_is_made_only_where_it_reads_right(
        question: str, asked_about_a_card: str | None) -> None:
    import random

    augment = _augment()
    made = augment.about_a_card(question, random.Random(0))
    if asked_about_a_card is None:
        assert made is None
        return
    assert made in {asked_about_a_card.format(card=card, limit=limit)
                    for card in augment.CARDS for limit in augment.CARD_LIMITS}


def test_card_questions_are_off_topic_and_copy_no_evaluation_message(
        real: list[Example]) -> None:
    cards = rasa_examples([ROOT / "data" / "nlu" / "generated" / "other_products.yml"])
    assert len(cards) > 50 and {e.intent for e in cards} == {"out_of_scope"}
    assert not list(near_copies(cards, heldout_examples() + real))
