"""The classifier's optional parts chosen by measurement on the real-message set (README,
"NLU"): pinyin features for homophone typos, and the soft vote of logistic regression and a
linear SVM. Both must survive being saved and loaded, like the rest of the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu_components.intent_classifier import PinyinSyllables, TfidfIntentClassifier

CONFIG = {"pinyin": True, "svm_weight": 0.5}
EXAMPLES = {
    "limit_reduced_or_closed": ["借呗被关了", "借呗额度没了", "额度被关闭了",
                                "my limit was closed"],
    "ask_limit_restore_time": ["额度多久恢复", "什么时候能恢复", "恢复要几天",
                               "when will my limit come back"],
    "request_human": ["转人工", "我要找人工客服", "给我接个真人", "talk to a person please"],
    "out_of_scope": ["今天天气怎么样", "淘宝怎么退货", "帮我订机票", "what's the weather"],
}


def test_homophone_typos_share_their_pinyin() -> None:
    syllables = PinyinSyllables()
    assert syllables("借呗") == syllables("借贝") == ["jie", "bei", "jie_bei"]
    assert syllables("逾期") == syllables("遇期") == ["yu", "qi", "yu_qi"]
    # only the Chinese runs: Latin letters and digits belong to the other features
    assert syllables("app打不开123") == ["da", "bu", "kai", "da_bu", "bu_kai"]
    assert syllables("why cant i borrow") == []


def _component(tmp_path: Path) -> tuple[TfidfIntentClassifier, LocalModelStorage, Resource]:
    storage = LocalModelStorage(tmp_path)
    resource = Resource("intent_classifier")
    config = {**TfidfIntentClassifier.get_default_config(), **CONFIG}
    return (TfidfIntentClassifier.create(config, storage, resource,
                                         ExecutionContext(GraphSchema({}), "test")),
            storage, resource)


def test_the_soft_vote_ranks_learns_and_survives_loading(tmp_path: Path) -> None:
    component, storage, resource = _component(tmp_path)
    component.train(TrainingData([Message(data={"text": text, "intent": intent})
                                  for intent, texts in EXAMPLES.items() for text in texts]))
    texts = ["我的借贝被关了", "找个真人", "淘宝退货"]  # a homophone typo of 借呗 first
    before = component.process([Message(data={"text": t}) for t in texts])
    assert [m.get("intent")["name"] for m in before] == [
        "limit_reduced_or_closed", "request_human", "out_of_scope"]
    for message in before:
        confidences = [r["confidence"] for r in message.get("intent_ranking")]
        assert abs(sum(confidences) - 1.0) < 1e-6  # probabilities, as the fallback expects
        assert confidences == sorted(confidences, reverse=True)
    loaded = TfidfIntentClassifier.load({**TfidfIntentClassifier.get_default_config(),
                                         **CONFIG}, storage, resource,
                                        ExecutionContext(GraphSchema({}), "test"))
    after = loaded.process([Message(data={"text": t}) for t in texts])
    assert np.allclose([m.get("intent")["confidence"] for m in before],
                       [m.get("intent")["confidence"] for m in after])


def test_the_svm_votes_only_on_chinese_messages_when_told(tmp_path: Path) -> None:
    from nlu_components.intent_classifier import intent_probabilities

    component, _, _ = _component(tmp_path)
    component.train(TrainingData([Message(data={"text": text, "intent": intent})
                                  for intent, texts in EXAMPLES.items() for text in texts]))
    model = component.model
    vote = model.steps[-1][1]
    features = model[:-1].transform(["talk to a person", "找个真人"])
    regression = vote.lr_.predict_proba(features)
    both = intent_probabilities(model, ["talk to a person", "找个真人"], "all")
    chinese_only = intent_probabilities(model, ["talk to a person", "找个真人"], "chinese")
    assert np.allclose(chinese_only[0], regression[0])  # English: the regression alone
    assert not np.allclose(both[0], regression[0])
    assert np.allclose(chinese_only[1], both[1])  # Chinese: the vote of both
