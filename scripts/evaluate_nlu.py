"""Evaluate intent classification on the held-out set and gate on macro-F1.

Writes reports/nlu/ (Rasa's intent_report.json, intent_confusion_matrix.png, errors) and a
summary table; exits 1 when intent macro-F1 is below --min-f1 (default 0.90).

    .venv/bin/python scripts/evaluate_nlu.py [--model models/relend.tar.gz] [--min-f1 0.90]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "tests" / "nlu" / "heldout.yml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "relend.tar.gz"))
    parser.add_argument("--out", default=str(ROOT / "reports" / "nlu"))
    parser.add_argument("--min-f1", type=float, default=0.90)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2",
           "SQLALCHEMY_SILENCE_UBER_WARNING": "1", "MPLBACKEND": "Agg"}
    rasa = str(Path(sys.executable).parent / "rasa")
    run = subprocess.run([rasa, "test", "nlu", "--nlu", str(HELDOUT), "--model", args.model,
                          "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True)
    report_path = out / "intent_report.json"
    if run.returncode != 0 or not report_path.exists():
        sys.stderr.write(run.stdout[-3000:] + run.stderr[-3000:])
        print("NLU evaluation failed to run", file=sys.stderr)
        return 2
    report = json.loads(report_path.read_text(encoding="utf-8"))
    intents = sorted(k for k, v in report.items() if isinstance(v, dict) and "support" in v
                     and k not in ("macro avg", "weighted avg", "micro avg"))
    lines = [f"{'intent':<32}{'precision':>10}{'recall':>10}{'f1':>8}{'n':>6}"]
    for name in intents:
        row = report[name]
        lines.append(f"{name:<32}{row['precision']:>10.3f}{row['recall']:>10.3f}"
                     f"{row['f1-score']:>8.3f}{row['support']:>6}")
    macro = report["macro avg"]["f1-score"]
    accuracy = report.get("accuracy", float("nan"))
    lines.append(f"{'macro avg':<32}{report['macro avg']['precision']:>10.3f}"
                 f"{report['macro avg']['recall']:>10.3f}{macro:>8.3f}")
    lines.append(f"accuracy {accuracy:.3f}; "
                 f"confusion matrix: {out / 'intent_confusion_matrix.png'}")
    summary = "\n".join(lines)
    (out / "summary.txt").write_text(summary + "\n", encoding="utf-8")
    print(summary)
    if macro < args.min_f1:
        print(f"FAIL: intent macro-F1 {macro:.3f} < {args.min_f1:.2f}", file=sys.stderr)
        return 1
    print(f"OK: intent macro-F1 {macro:.3f} >= {args.min_f1:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
