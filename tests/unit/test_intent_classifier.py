"""The custom intent classifier: segments with the domain dictionary, learns, survives being
saved and loaded, and ranks intents like Rasa's own classifiers do."""

from __future__ import annotations

from pathlib import Path

from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu_components.intent_classifier import DomainWords, TfidfIntentClassifier

EXAMPLES = {
    "cannot_borrow_after_repayment": ["还清了为什么借不了", "还完款借不出来了", "为啥不让我借钱",
                                      "why cant i borrow after paying"],
    "request_human": ["转人工", "我要找人工客服", "给我接个真人", "talk to a person please"],
    "out_of_scope": ["今天天气怎么样", "淘宝怎么退货", "帮我订机票", "what's the weather"],
}


def _component(tmp_path: Path, config: dict | None = None) -> tuple[TfidfIntentClassifier,
                                                                      LocalModelStorage,
                                                                      Resource]:
    storage = LocalModelStorage(tmp_path)
    resource = Resource("intent_classifier")
    context = ExecutionContext(GraphSchema({}), "test")
    return (TfidfIntentClassifier.create({**TfidfIntentClassifier.get_default_config(),
                                          **(config or {})}, storage, resource, context),
            storage, resource)


def _training_data() -> TrainingData:
    return TrainingData([Message(data={"text": text, "intent": intent})
                         for intent, texts in EXAMPLES.items() for text in texts])


def test_the_domain_dictionary_keeps_its_words_whole(tmp_path: Path) -> None:
    (tmp_path / "words.txt").write_text("借不出来 2000 v\n额渡 2000 n\n", encoding="utf-8")
    from nlu_components.intent_classifier import read_dictionary

    words = DomainWords(read_dictionary(str(tmp_path)))
    assert "借不出来" in words("我还完款借不出来了")
    assert "额渡" in words("额渡多久恢复")


def test_it_learns_and_ranks_every_intent(tmp_path: Path) -> None:
    component, _, _ = _component(tmp_path)
    component.train(_training_data())
    [message] = component.process([Message(data={"text": "人工客服在吗"})])
    assert message.get("intent")["name"] == "request_human"
    ranking = message.get("intent_ranking")
    assert [r["name"] for r in ranking][0] == "request_human"
    assert {r["name"] for r in ranking} == set(EXAMPLES)
    assert abs(sum(r["confidence"] for r in ranking) - 1.0) < 1e-6


def test_a_saved_model_predicts_the_same_after_loading(tmp_path: Path) -> None:
    component, storage, resource = _component(tmp_path)
    component.train(_training_data())
    texts = ["还完了借不出来", "淘宝退货", "找个真人"]
    before = [m.get("intent") for m in component.process([Message(data={"text": t})
                                                           for t in texts])]
    loaded = TfidfIntentClassifier.load(TfidfIntentClassifier.get_default_config(), storage,
                                        resource, ExecutionContext(GraphSchema({}), "test"))
    after = [m.get("intent") for m in loaded.process([Message(data={"text": t})
                                                       for t in texts])]
    assert before == after
    assert [i["name"] for i in after] == ["cannot_borrow_after_repayment", "out_of_scope",
                                          "request_human"]


def test_an_untrained_component_leaves_messages_alone(tmp_path: Path) -> None:
    component, _, _ = _component(tmp_path)
    [message] = component.process([Message(data={"text": "你好"})])
    assert message.get("intent") is None
