"""The fallback threshold per script: English messages get their own, lower threshold."""

from __future__ import annotations

import pytest
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message

from nlu_components.fallback import ScriptAwareFallbackClassifier


def classifier(**config: object) -> ScriptAwareFallbackClassifier:
    merged = {**ScriptAwareFallbackClassifier.get_default_config(), "ambiguity_threshold": 0.0,
              **config}
    return ScriptAwareFallbackClassifier(merged)


def parsed(text: str, intent: str, confidence: float) -> Message:
    ranking = [{"name": intent, "confidence": confidence},
               {"name": "out_of_scope", "confidence": confidence / 2}]
    return Message(data={TEXT: text, INTENT: ranking[0], "intent_ranking": ranking})


def intent_after(component: ScriptAwareFallbackClassifier, message: Message) -> str:
    return component.process([message])[0].get(INTENT)["name"]


@pytest.mark.parametrize(("text", "confidence", "expected"), [
    ("为什么借不了", 0.25, "nlu_fallback"),          # Chinese: 0.26
    ("为什么借不了", 0.27, "cannot_borrow_after_repayment"),
    ("why cant i borrow", 0.20, "cannot_borrow_after_repayment"),   # English: 0.15
    ("why cant i borrow", 0.14, "nlu_fallback"),
    ("借呗 why cant i borrow", 0.20, "nlu_fallback"),   # any Chinese: the Chinese threshold
    ("12345", 0.20, "cannot_borrow_after_repayment"),    # no Chinese at all: the lower one
])
def test_threshold_follows_the_script(text: str, confidence: float, expected: str) -> None:
    component = classifier(threshold=0.26, threshold_without_chinese=0.15)
    assert intent_after(component, parsed(text, "cannot_borrow_after_repayment",
                                           confidence)) == expected


def test_without_the_setting_every_message_uses_the_one_threshold() -> None:
    component = classifier(threshold=0.26)
    assert intent_after(component, parsed("why cant i borrow", "request_human", 0.20)) \
        == "nlu_fallback"
    assert intent_after(component, parsed("why cant i borrow", "request_human", 0.30)) \
        == "request_human"


def test_config_yml_sets_both_thresholds() -> None:
    """The shipped pipeline uses this component, with the thresholds the README reports."""
    from pathlib import Path

    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yml").read_text())
    [step] = [s for s in config["pipeline"] if s["name"].endswith("ScriptAwareFallbackClassifier")]
    assert (step["threshold"], step["threshold_without_chinese"]) == (0.26, 0.15)
