"""Score a trained model on the evaluation sets: per intent, per route, confusion matrices.

The model is loaded once, in process, and every message goes through the whole NLU pipeline
(the FallbackClassifier included), so "other" really is what the bot would do: a message that
falls below the threshold gets a clarifying question, not a diagnosis.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .routes import ROUTES, route_of
from .sets import Example


@dataclass
class Prediction:
    example: Example
    intent: str
    confidence: float


@dataclass
class SetScore:
    name: str
    predictions: list[Prediction]
    figures: dict[str, float] = field(default_factory=dict)
    per_intent: dict[str, dict[str, float]] = field(default_factory=dict)
    per_route: dict[str, dict[str, float]] = field(default_factory=dict)


def parse_all(model_path: Path, texts: Sequence[str]) -> list[tuple[str, float]]:
    """(intent, confidence) for each text, through the trained model's NLU pipeline."""
    import logging

    import structlog
    from rasa.core.agent import Agent

    # Rasa logs every parse at debug level through structlog: a thousand lines of noise here
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    agent = Agent.load(str(model_path))

    async def run() -> list[tuple[str, float]]:
        results = []
        for text in texts:
            parsed = await agent.parse_message(text)
            intent = parsed.get("intent") or {}
            results.append((intent.get("name") or "nlu_fallback",
                            float(intent.get("confidence") or 0.0)))
        return results

    return asyncio.run(run())


def _prf(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
         ) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted, strict=True))
        support = sum(t == label for t in truth)
        said = sum(p == label for p in predicted)
        precision = tp / said if said else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        table[label] = {"precision": precision, "recall": recall, "f1": f1,
                        "support": float(support)}
    return table


def score(name: str, predictions: list[Prediction]) -> SetScore:
    truth = [p.example.intent for p in predictions]
    said = [p.intent for p in predictions]
    lenient = [p.intent in (p.example.intent, p.example.alt) for p in predictions]
    intents = sorted(set(truth))
    per_intent = _prf(truth, said, intents)
    truth_routes = [route_of(t) for t in truth]
    said_routes = [route_of(s) for s in said]
    present_routes = [r for r in ROUTES if r in truth_routes]
    per_route = _prf(truth_routes, said_routes, present_routes)
    n = len(predictions)
    off_topic = [p for p in predictions if p.example.intent == "out_of_scope"]
    in_scope = [p for p in predictions if route_of(p.example.intent) != "other"]
    figures = {
        "messages": float(n),
        "strict_accuracy": sum(t == s for t, s in zip(truth, said, strict=True)) / n,
        "lenient_accuracy": sum(lenient) / n,
        "intent_macro_f1": sum(row["f1"] for row in per_intent.values()) / len(per_intent),
        "routing_accuracy": sum(t == s for t, s in zip(truth_routes, said_routes, strict=True)) / n,
        "routing_macro_recall": sum(per_route[r]["recall"] for r in present_routes)
        / len(present_routes),
        "off_topic_messages": float(len(off_topic)),
        "off_topic_recall": (sum(route_of(p.intent) == "other" for p in off_topic)
                             / len(off_topic)) if off_topic else float("nan"),
        "in_scope_route_recall": (sum(route_of(p.intent) == route_of(p.example.intent)
                                      for p in in_scope) / len(in_scope))
        if in_scope else float("nan"),
    }
    return SetScore(name, predictions, figures, per_intent, per_route)


def confusion_png(path: Path, truth: Sequence[str], said: Sequence[str], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(set(truth))
    cols = rows + sorted(set(said) - set(rows))
    counts = Counter(zip(truth, said, strict=True))
    grid = [[counts[(r, c)] for c in cols] for r in rows]
    size = max(6.0, 0.42 * len(cols) + 2)
    fig, ax = plt.subplots(figsize=(size, max(4.0, 0.42 * len(rows) + 2)))
    ax.imshow(grid, cmap="Blues")
    ax.set_xticks(range(len(cols)), labels=cols, rotation=70, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), labels=rows, fontsize=8)
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            if value:
                ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                        color="white" if value > max(map(max, grid)) / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("labelled")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary_text(result: SetScore) -> str:
    f = result.figures
    lines = [f"== {result.name} ({int(f['messages'])} messages)",
             f"strict intent accuracy {f['strict_accuracy']:.3f} · with second labels "
             f"{f['lenient_accuracy']:.3f} · intent macro-F1 {f['intent_macro_f1']:.3f}",
             f"routing accuracy {f['routing_accuracy']:.3f} · averaged over routes "
             f"{f['routing_macro_recall']:.3f} · off-topic kept off "
             f"{f['off_topic_recall']:.3f} ({int(f['off_topic_messages'])})",
             "", f"{'intent':<32}{'precision':>10}{'recall':>9}{'f1':>7}{'n':>6}"]
    for name, row in result.per_intent.items():
        lines.append(f"{name:<32}{row['precision']:>10.3f}{row['recall']:>9.3f}"
                     f"{row['f1']:>7.3f}{int(row['support']):>6}")
    lines += ["", f"{'route':<32}{'precision':>10}{'recall':>9}{'f1':>7}{'n':>6}"]
    for name, row in result.per_route.items():
        lines.append(f"{name:<32}{row['precision']:>10.3f}{row['recall']:>9.3f}"
                     f"{row['f1']:>7.3f}{int(row['support']):>6}")
    return "\n".join(lines)


def write(out: Path, result: SetScore) -> None:
    """summary, figures (JSON), errors (TSV) and the two confusion matrices (PNG)."""
    out.mkdir(parents=True, exist_ok=True)
    slug = result.name
    payload: dict[str, Any] = {"figures": result.figures, "per_intent": result.per_intent,
                               "per_route": result.per_route}
    (out / f"{slug}.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False),
                                      encoding="utf-8")
    (out / f"{slug}.txt").write_text(summary_text(result) + "\n", encoding="utf-8")
    errors = ["labelled\talt\tpredicted\tconfidence\troute_ok\ttext"]
    for p in result.predictions:
        if p.intent != p.example.intent:
            ok = route_of(p.intent) == route_of(p.example.intent)
            errors.append(f"{p.example.intent}\t{p.example.alt or ''}\t{p.intent}\t"
                          f"{p.confidence:.2f}\t{'yes' if ok else 'NO'}\t{p.example.text}")
    (out / f"{slug}_errors.tsv").write_text("\n".join(errors) + "\n", encoding="utf-8")
    truth = [p.example.intent for p in result.predictions]
    said = [p.intent for p in result.predictions]
    confusion_png(out / f"{slug}_intent_confusion.png", truth, said, f"{slug}: intents")
    confusion_png(out / f"{slug}_route_confusion.png", [route_of(t) for t in truth],
                  [route_of(s) for s in said], f"{slug}: routes")
