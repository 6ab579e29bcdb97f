"""Evaluate intent classification on the real-message set and the held-out set, and gate.

For each set: strict intent accuracy (and with second labels), intent macro-F1, routing
accuracy (what the bot does) overall and averaged over the routes (nlu_eval/routes.py; a
route with no message in the set is left out), off-topic recall, per-intent and per-route
tables, the errors, and confusion matrices (PNG) in reports/nlu/.
Exits 1 when a gate fails (see GATES), 2 when the evaluation could not run.

    .venv/bin/python scripts/evaluate_nlu.py [--model models/relend.tar.gz]
    .venv/bin/python scripts/evaluate_nlu.py --cross-validation   # + 5-fold CV of data/
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nlu_eval.report import Prediction, parse_all, score, summary_text, write  # noqa: E402
from nlu_eval.sets import HELDOUT, REAL_SETS, heldout_examples, real_examples  # noqa: E402

# (set, figure, minimum): the real-message set is the one that matters; the held-out set
# guards against regressions on our own phrasing. The minimums sit 0.4-1.1 points under what
# the model measures (README, "NLU": 0.711, 0.724, 0.818, 0.934 on 2026-12-01; training is
# deterministic), so that a change that makes it worse fails. Strict accuracy and routing are
# not yet at the targets of issue 8 (strict 0.75, routing averaged over the routes 0.85;
# off-topic 0.75 is reached): raise the gates as the model gets there, never lower them.
GATES = (
    ("real", "strict_accuracy", 0.70),
    ("real", "routing_macro_recall", 0.715),
    ("real", "off_topic_recall", 0.81),
    ("heldout", "intent_macro_f1", 0.93),
)


def cross_validate(out: Path, folds: int) -> dict[str, float]:
    """Rasa's own k-fold cross-validation of the training data (NLU only)."""
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2",
           "SQLALCHEMY_SILENCE_UBER_WARNING": "1", "MPLBACKEND": "Agg"}
    target = out / "cross_validation"
    started = time.monotonic()
    run = subprocess.run([str(Path(sys.executable).parent / "rasa"), "test", "nlu", "--nlu",
                          "data", "--config", "config.yml", "--cross-validation", "--folds",
                          str(folds), "--out", str(target)],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    report = target / "intent_report.json"
    if run.returncode != 0 or not report.exists():
        sys.stderr.write(run.stdout[-3000:] + run.stderr[-3000:])
        raise RuntimeError("cross-validation failed")
    data = json.loads(report.read_text(encoding="utf-8"))
    return {"folds": float(folds), "accuracy": data["accuracy"],
            "macro_f1": data["macro avg"]["f1-score"],
            "weighted_f1": data["weighted avg"]["f1-score"],
            "seconds": time.monotonic() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "relend.tar.gz"))
    parser.add_argument("--out", default=str(ROOT / "reports" / "nlu"))
    parser.add_argument("--cross-validation", action="store_true",
                        help="also run 5-fold cross-validation of data/ (slow: 5 trainings)")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    out = Path(args.out)
    model = Path(args.model)
    if not model.exists():
        print(f"no model at {model}: train first (python -m stack train)", file=sys.stderr)
        return 2

    sets = {path.stem: real_examples(path) for path in REAL_SETS}
    sets["real"] = [example for path in REAL_SETS for example in sets[path.stem]]
    sets["heldout"] = heldout_examples()
    texts = sorted({e.text for examples in sets.values() for e in examples})
    parsed = dict(zip(texts, parse_all(model, texts), strict=True))

    results = {}
    for name, examples in sets.items():
        if not examples:
            continue
        result = score(name, [Prediction(e, *parsed[e.text]) for e in examples])
        write(out, result)
        results[name] = result
        print(summary_text(result) if name in ("real", "heldout") else
              summary_text(result).split("\n\n")[0], end="\n\n")

    figures = {name: r.figures for name, r in results.items()}
    if args.cross_validation:
        figures["cross_validation"] = cross_validate(out, args.folds)
        cv = figures["cross_validation"]
        print(f"== {args.folds}-fold cross-validation of data/: accuracy {cv['accuracy']:.3f}, "
              f"macro-F1 {cv['macro_f1']:.3f} ({cv['seconds']:.0f} s)\n")
    (out / "figures.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")

    failed = []
    for set_name, figure, minimum in GATES:
        if set_name not in results:
            failed.append(f"{set_name}: the set is missing ({REAL_SETS or HELDOUT})")
            continue
        value = results[set_name].figures[figure]
        status = "ok  " if value >= minimum else "FAIL"
        print(f"{status} {set_name} {figure} {value:.3f} (gate {minimum:.3f})")
        if value < minimum:
            failed.append(f"{set_name} {figure} {value:.3f} < {minimum:.3f}")
    print(f"reports: {out}/ (summaries, errors, confusion matrices)")
    if failed:
        print("NLU gate failed: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
