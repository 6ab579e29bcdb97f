"""Train the Rasa model only when its inputs changed (config, domain, data, the custom NLU
components' code, the pinned package versions).

Why a fingerprint of our own rather than Rasa's (``rasa train`` with its ``.rasa/cache``,
or ``rasa train --dry-run``), measured on a busy 2-core machine:

- Rasa's misses changes that alter the model. Its key for a component is the class's own
  source, its config and its inputs: not the module around the class, nor files a config
  value names. After a change to ``nlu_components.intent_classifier.DomainWords`` (how text
  is segmented) and a new word in ``data/dictionary/``, ``rasa train --dry-run`` still said
  "No training of components required", and ``rasa train`` would have restored the stale
  classifier from its cache.
- It is slow when nothing changed: ``rasa train`` with a warm cache took 88-98 s
  (about 45 s of CPU: importing, loading and validating the data, fingerprinting every node,
  packing a new archive) and ``--dry-run`` 93 s; a forced full train took 287 s (112 s of
  CPU). This check takes about 1 s (``python -m stack train`` twice: 102 s with Rasa's cache
  warm, then 1.2 s).

So this fingerprint, of everything the model is made of, decides whether to train, and
``rasa train`` then runs with a cache of its own for each state of what Rasa's fingerprint
does not see (the components' code, the dictionary, the package pins): a change there starts
from an empty cache, never from stale components, and a change Rasa does see (config,
domain, training data) still reuses what it may.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .config import ROOT, StackConfig

# what the model is made of; Rasa's own fingerprint sees the first ones, not the others
RASA_SEES = ("config.yml", "domain.yml", "data")
RASA_MISSES = ("data/dictionary", "nlu_components", "requirements.txt")


def _digest(root: Path, names: tuple[str, ...]) -> str:
    """SHA-256 of the files' names and contents (a folder: every file in it)."""
    digest = hashlib.sha256()
    for name in names:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()
                       and "__pycache__" not in p.parts) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def fingerprint(root: Path = ROOT) -> str:
    return _digest(root, (*RASA_SEES, *RASA_MISSES))


def training_cache(root: Path = ROOT) -> Path:
    """Rasa's training cache for the current state of what its fingerprint misses; the
    caches of earlier states are removed."""
    base = Path(os.environ.get("RASA_CACHE_DIRECTORY") or root / ".rasa" / "cache")
    current = base / f"relend-{_digest(root, RASA_MISSES)[:16]}"
    for old in base.glob("relend-*"):
        if old != current:
            shutil.rmtree(old, ignore_errors=True)
    return current


def ensure_model(config: StackConfig, *, force: bool = False, quiet: bool = False) -> float:
    """Train if needed; returns the training time in seconds (0 when the model was current).
    ``force`` trains from scratch, without Rasa's cache."""
    stamp = config.model_path.with_suffix(".fingerprint")
    wanted = fingerprint()
    if not force and config.model_path.exists() and stamp.exists() \
            and stamp.read_text().strip() == wanted:
        return 0.0
    if not quiet:
        print("[stack] training the Rasa model "
              f"({'--force' if force else 'what it is made of changed'})...", flush=True)
    started = time.monotonic()
    config.model_path.parent.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [str(Path(sys.executable).parent / "rasa"), "train", "--fixed-model-name",
         config.model_path.name.removesuffix(".tar.gz"), "--out", str(config.model_path.parent),
         *(["--force"] if force else [])],
        cwd=ROOT, env={**config.child_env(), "RASA_CACHE_DIRECTORY": str(training_cache())},
        capture_output=True, text=True,
    )
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-4000:] + out.stderr[-4000:])
        raise RuntimeError("rasa train failed")
    stamp.write_text(wanted)
    elapsed = time.monotonic() - started
    if not quiet:
        print(f"[stack] trained in {elapsed:.0f} s -> {config.model_path}", flush=True)
    return elapsed
