"""An intent classifier for short, typo-laden Chinese and English messages: TF-IDF over words
(jieba, with the project's domain dictionary), character n-grams and, optionally, pinyin
syllables (homophone typos), then a regularised logistic regression, optionally averaged with a
linear SVM (``SoftVote``; for every message or only for those with Chinese in them).

Why not Rasa's own classifiers: on the real-message set DIET scored lower and took minutes to
train on ~7,000 examples, and Rasa's ``LogisticRegressionClassifier`` uses raw counts with a
fixed regularisation (no TF-IDF, no ``C``), which measured lower on both evaluation sets
(README, "NLU"). This component owns its featurisation so that what is measured offline is
exactly what runs.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize

log = logging.getLogger(__name__)
MODEL_FILE = "intent_classifier.joblib"


class DomainWords:
    """Word segmentation with jieba and the domain dictionary, kept inside the model so that a
    loaded model segments exactly as it did when it was trained."""

    def __init__(self, entries: list[str]) -> None:
        self.entries = entries
        self._jieba: Any = None

    def _segmenter(self) -> Any:
        if self._jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            segmenter = jieba.Tokenizer()
            for entry in self.entries:
                parts = entry.split()
                if parts:
                    freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
                    segmenter.add_word(parts[0], freq)
            self._jieba = segmenter
        return self._jieba

    def __call__(self, text: str) -> list[str]:
        return [w for w in self._segmenter().lcut(text.lower()) if w.strip()]

    def __getstate__(self) -> dict[str, Any]:
        return {"entries": self.entries, "_jieba": None}


_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")


def has_chinese(text: str) -> bool:
    """Whether a message has a Chinese character: the SVM's vote and the fallback threshold
    (nlu_components/fallback.py) split messages by this one test."""
    return _CJK_RUN.search(text) is not None


class PinyinSyllables:
    """Tone-less pinyin syllables of the Chinese runs, and adjacent pairs of them: homophone
    typos (借贝/借呗, 遇期/逾期, 申述/申诉) and pinyin-input slips share these features."""

    def __call__(self, text: str) -> list[str]:
        from pypinyin import Style, lazy_pinyin

        features: list[str] = []
        for run in _CJK_RUN.findall(text):
            syllables = lazy_pinyin(run, style=Style.NORMAL, errors="ignore")
            features += syllables
            features += [f"{a}_{b}" for a, b in zip(syllables, syllables[1:], strict=False)]
        return features


class WeightedTerms(TfidfVectorizer):
    """``TfidfVectorizer`` with a faster ``transform`` and the same output. Scikit-learn 1.1's
    rebuilds the idf vector from its diagonal matrix on every call and multiplies by that
    77,000-square matrix: a third of a parse once ``linear_scores`` had removed the biggest
    cost (cProfile, 2026-11-30). This keeps the vector once and scales the counts in place --
    the same arithmetic, so the same features (tests/unit/test_intent_classifier.py)."""

    def transform(self, raw_documents: Any) -> Any:
        counts = CountVectorizer.transform(self, raw_documents)
        features = counts.astype(np.float64)
        if self.sublinear_tf:
            np.log(features.data, features.data)
            features.data += 1
        if self.use_idf:
            idf = self.__dict__.get("_idf_vector")
            if idf is None:
                idf = self._idf_vector = np.ravel(self._tfidf._idf_diag.sum(axis=0))
            features.data *= idf[features.indices]
        if self.norm:
            features = normalize(features, norm=self.norm, copy=False)
        return features


class SoftVote(BaseEstimator, ClassifierMixin):
    """Logistic regression and a linear SVM on the same features; probabilities are a
    weighted average of the regression's and a softmax of the SVM's decision values."""

    def __init__(self, C: float = 20.0, svm_C: float = 1.0, svm_weight: float = 0.5,
                 svm_scale: float = 4.0, class_weight: Any = "balanced",
                 max_iter: int = 2000, random_state: int = 42) -> None:
        self.C = C
        self.svm_C = svm_C
        self.svm_weight = svm_weight
        self.svm_scale = svm_scale
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, features: Any, labels: Any) -> SoftVote:
        from sklearn.svm import LinearSVC

        self.lr_ = LogisticRegression(C=self.C, max_iter=self.max_iter,
                                      class_weight=self.class_weight,
                                      random_state=self.random_state).fit(features, labels)
        self.svm_ = LinearSVC(C=self.svm_C, class_weight=self.class_weight,
                              random_state=self.random_state).fit(features, labels)
        self.classes_ = self.lr_.classes_
        return self

    def predict_proba(self, features: Any, svm_weights: Any = None) -> np.ndarray:
        """``svm_weights``: the SVM's share for each row (default ``svm_weight`` for all)."""
        svm = _softmax(linear_scores(self.svm_, features) * self.svm_scale)
        share = (np.full((svm.shape[0], 1), self.svm_weight) if svm_weights is None
                 else np.asarray(svm_weights, dtype=float).reshape(-1, 1))
        return (1 - share) * regression_probabilities(self.lr_, features) + share * svm

    def predict(self, features: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(features), axis=1)]


def intent_probabilities(model: Any, texts: list[str], svm_for: str = "all") -> np.ndarray:
    """Each text's intent probabilities (columns: ``model.classes_``). With a soft vote and
    ``svm_for="chinese"``, messages with no Chinese character get the logistic regression's
    probabilities alone: the SVM helped Chinese routing and cost English accuracy (README)."""
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    if isinstance(final, SoftVote):
        features = model[:-1].transform(texts)
        shares = (None if svm_for == "all"
                  else [final.svm_weight if has_chinese(text) else 0.0 for text in texts])
        return final.predict_proba(features, shares)
    if isinstance(final, LogisticRegression):
        return regression_probabilities(final, model[:-1].transform(texts))
    return model.predict_proba(texts)


def _softmax(scores: np.ndarray) -> np.ndarray:
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    return scores / scores.sum(axis=1, keepdims=True)


def linear_scores(estimator: Any, features: Any) -> np.ndarray:
    """``estimator.decision_function(features)`` for a fitted linear model, with its
    coefficients transposed once into a C-ordered array. scipy's sparse-times-dense product
    copies the F-ordered ``coef_.T`` that scikit-learn passes it on every call (15 MB for 24
    intents and ~77,000 features): that copy was 38% of a whole ``/model/parse`` (cProfile,
    2026-11-30). The cache is built on first use, so saved models are unchanged."""
    cached = estimator.__dict__.get("_coef_t")
    if cached is None or cached.shape != estimator.coef_.shape[::-1]:
        cached = np.ascontiguousarray(estimator.coef_.T)
        estimator._coef_t = cached
    scores = np.asarray(features @ cached) + estimator.intercept_
    return scores.ravel() if scores.shape[1] == 1 else scores


def regression_probabilities(regression: Any, features: Any) -> np.ndarray:
    """``regression.predict_proba(features)`` for a multinomial logistic regression (a
    softmax of its scores, as scikit-learn computes it) without the copy ``linear_scores``
    avoids; any other kind (one-vs-rest, two classes) is left to scikit-learn."""
    multinomial = regression.multi_class == "multinomial" or (
        regression.multi_class == "auto" and regression.classes_.size > 2
        and regression.solver != "liblinear")
    if not multinomial:
        return regression.predict_proba(features)
    return _softmax(linear_scores(regression, features))


def read_dictionary(path: str | None) -> list[str]:
    """Every line of every file in ``path`` (a directory, as for JiebaTokenizer) or ``[]``."""
    if not path:
        return []
    folder = Path(path)
    files = sorted(folder.glob("*")) if folder.is_dir() else [folder]
    return [line.strip() for file in files if file.is_file()
            for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class TfidfIntentClassifier(GraphComponent, IntentClassifier):
    """TF-IDF (words + character n-grams) and logistic regression; see the module docstring."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "dictionary_path": None,  # directory of jieba user dictionaries (domain words)
            "char_ngram_range": [1, 3],
            "C": 20.0,  # inverse regularisation strength of the logistic regression
            "max_iter": 2000,
            "class_weight": "balanced",  # intents differ ten-fold in size
            "ranking_length": 10,
            "random_state": 42,
            "pinyin": False,  # a third TF-IDF block: pinyin syllables and syllable pairs
            "svm_weight": 0.0,  # > 0: average with a linear SVM (SoftVote)
            "svm_C": 1.0,
            "svm_scale": 4.0,
            "svm_for": "all",  # "chinese": the SVM votes on messages with Chinese only
        }

    def __init__(self, config: dict[str, Any], model_storage: ModelStorage,
                 resource: Resource, model: Any = None) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.model = model

    @classmethod
    def create(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> TfidfIntentClassifier:
        return cls(config, model_storage, resource)

    def build(self) -> Any:
        from sklearn.pipeline import make_pipeline, make_union

        words = WeightedTerms(tokenizer=DomainWords(read_dictionary(
            self.config["dictionary_path"])), lowercase=False, token_pattern=None,
            sublinear_tf=True)
        low, high = self.config["char_ngram_range"]
        chars = WeightedTerms(analyzer="char_wb", ngram_range=(low, high), sublinear_tf=True)
        blocks = [words, chars]
        if self.config["pinyin"]:
            blocks.append(WeightedTerms(tokenizer=PinyinSyllables(), lowercase=False,
                                        token_pattern=None, sublinear_tf=True))
        if self.config["svm_weight"] > 0:
            classifier: Any = SoftVote(C=self.config["C"], svm_C=self.config["svm_C"],
                                       svm_weight=self.config["svm_weight"],
                                       svm_scale=self.config["svm_scale"],
                                       class_weight=self.config["class_weight"],
                                       max_iter=self.config["max_iter"],
                                       random_state=self.config["random_state"])
        else:
            classifier = LogisticRegression(C=self.config["C"], max_iter=self.config["max_iter"],
                                            class_weight=self.config["class_weight"],
                                            random_state=self.config["random_state"])
        return make_pipeline(make_union(*blocks), classifier)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [m for m in training_data.intent_examples
                    if m.get(INTENT) and m.get(TEXT)]
        if not examples:
            log.debug("no intent examples: %s not trained", self.__class__.__name__)
            return self._resource
        self.model = self.build()
        self.model.fit([m.get(TEXT) for m in examples], [m.get(INTENT) for m in examples])
        with self._model_storage.write_to(self._resource) as directory:
            joblib.dump(self.model, directory / MODEL_FILE)
        return self._resource

    @classmethod
    def load(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> TfidfIntentClassifier:
        try:
            with model_storage.read_from(resource) as directory:
                model = joblib.load(directory / MODEL_FILE)
        except (ValueError, FileNotFoundError):
            log.debug("no trained %s in the model", cls.__name__)
            model = None
        return cls(config, model_storage, resource, model)

    def process(self, messages: list[Message]) -> list[Message]:
        if self.model is None:
            return messages
        texts = [m.get(TEXT) or "" for m in messages]
        probabilities = intent_probabilities(self.model, texts, self.config["svm_for"])
        names = self.model.classes_
        for message, row in zip(messages, probabilities, strict=True):
            order = np.argsort(-row)[: max(1, self.config["ranking_length"])]
            ranking = [{"name": str(names[i]), "confidence": float(row[i])} for i in order]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
