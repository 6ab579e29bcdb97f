"""Train the Rasa model only when its inputs changed (config, domain, data, Rasa version)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

from .config import ROOT, StackConfig

# the custom NLU components are code the model is made of: a change to them retrains too
INPUTS = ("config.yml", "domain.yml", "data", "nlu_components")


def fingerprint(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for name in INPUTS:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()
                       and "__pycache__" not in p.parts) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    digest.update((root / "requirements.txt").read_bytes())
    return digest.hexdigest()


def ensure_model(config: StackConfig, *, force: bool = False, quiet: bool = False) -> float:
    """Train if needed; returns the training time in seconds (0 when the model was current)."""
    stamp = config.model_path.with_suffix(".fingerprint")
    wanted = fingerprint()
    if not force and config.model_path.exists() and stamp.exists() \
            and stamp.read_text().strip() == wanted:
        return 0.0
    if not quiet:
        print("[stack] training the Rasa model (data or config changed)...", flush=True)
    started = time.monotonic()
    config.model_path.parent.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [str(Path(sys.executable).parent / "rasa"), "train", "--fixed-model-name",
         config.model_path.name.removesuffix(".tar.gz"), "--out", str(config.model_path.parent)],
        cwd=ROOT, env=config.child_env(), capture_output=True, text=True,
    )
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-4000:] + out.stderr[-4000:])
        raise RuntimeError("rasa train failed")
    stamp.write_text(wanted)
    elapsed = time.monotonic() - started
    if not quiet:
        print(f"[stack] trained in {elapsed:.0f} s -> {config.model_path}", flush=True)
    return elapsed
