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

from nlu_components.intent_classifier import (
    PinyinSyllables,
    SoftVote,
    TfidfIntentClassifier,
    WeightedTerms,
    linear_scores,
)

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


# what the fast paths of a parse must reproduce: scikit-learn's own TfidfVectorizer and
# predict_proba / decision_function, fitted on the same texts
TEXTS = [text for texts in EXAMPLES.values() for text in texts]
UNSEEN = ["借贝额度怎么没了啊", "额度 额度 额度", "when will it come back", "🙂", "",
          "zzz 未见过的词"]


def test_weighted_terms_give_the_features_scikit_learn_gives() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    for options in ({"analyzer": "char_wb", "ngram_range": (1, 3), "sublinear_tf": True},
                    {"tokenizer": PinyinSyllables(), "token_pattern": None,
                     "lowercase": False, "sublinear_tf": True},
                    {"norm": None, "use_idf": True}, {"use_idf": False}):
        fast = WeightedTerms(**options).fit(TEXTS)
        stock = TfidfVectorizer(**options).fit(TEXTS)
        for texts in (TEXTS, UNSEEN, UNSEEN[:1]):
            ours, theirs = fast.transform(texts), stock.transform(texts)
            assert ours.shape == theirs.shape
            # the same arithmetic in another order: equal to the last bit or two
            assert abs(ours - theirs).max() <= 1e-15, options
            assert (ours != 0).nnz == (theirs != 0).nnz


def test_the_vote_gives_the_probabilities_scikit_learn_gives() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    labels = [intent for intent, texts in EXAMPLES.items() for _ in texts]
    terms = WeightedTerms(analyzer="char_wb", ngram_range=(1, 3))
    features = terms.fit_transform(TEXTS)
    vote = SoftVote(C=20.0, svm_weight=0.5).fit(features, labels)
    unseen = terms.transform(UNSEEN)
    shares = np.array([0.5, 0.0, 0.5, 0.0, 0.5, 0.0]).reshape(-1, 1)
    svm = LinearSVC(C=1.0, class_weight="balanced", random_state=42).fit(features, labels)
    scores = svm.decision_function(unseen) * 4.0
    softmax = np.exp(scores - scores.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    regression = LogisticRegression(C=20.0, max_iter=2000, class_weight="balanced",
                                    random_state=42).fit(features, labels)
    expected = (1 - shares) * regression.predict_proba(unseen) + shares * softmax
    assert np.allclose(vote.predict_proba(unseen, shares.ravel()), expected, rtol=0, atol=1e-12)
    # two classes: scikit-learn's decision function is one column, and stays one
    two = LinearSVC().fit(features[:8], labels[:8])
    assert np.allclose(linear_scores(two, unseen), two.decision_function(unseen))
