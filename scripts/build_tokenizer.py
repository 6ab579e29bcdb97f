"""Build the blank Chinese spaCy pipeline (jieba segmenter) used by configs/spacy_blank.yml.

Written to var/spacy_zh_jieba (build output, not committed). The pipeline has no vectors; it
is the spaCy alternative to Rasa's JiebaTokenizer, measured in the README. Domain words reach
jieba through JiebaTokenizer's dictionary_path in config.yml; spaCy's ChineseTokenizer uses
jieba's default dictionary, which is one reason the default config measures better.
A pretrained Chinese spaCy model, where a user has one, is a one-line change: set `model:`
in configs/spacy_blank.yml to its package name (e.g. zh_core_web_md).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "var" / "spacy_zh_jieba"


def main() -> int:
    import spacy

    nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(TARGET)
    print(f"built {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
