"""Per-turn latency of the assistant through the real servers, and training time.

Prints p50/p95/p99 of (a) a full turn through the desk channel (signed the way the desk signs
it) that runs the custom action and its backend call (a fresh conversation each turn, so the
decision is never cached) and (b) `/model/parse` alone, at 1 and 20 concurrent conversations.
With --train, first times a full training run with the cache disabled. Starts the stack on
loopback (or reuses a running one).

    .venv/bin/python benchmarks/conversation_latency.py [--turns 200] [--train]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.signing import MessageFields, sign  # noqa: E402
from eligibility.seed import DEMO_BORROWERS  # noqa: E402
from stack.__main__ import seed_backend  # noqa: E402
from stack.config import StackConfig  # noqa: E402
from stack.model import ensure_model  # noqa: E402
from stack.rasa_auth import rasa_headers  # noqa: E402
from stack.services import Stack  # noqa: E402

QUESTION = "我还清了为什么现在借不了款？"


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def pick(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]

    return (f"p50={pick(50):7.1f} ms  p95={pick(95):7.1f} ms  p99={pick(99):7.1f} ms  "
            f"mean={statistics.fmean(ordered):6.1f} ms  n={len(ordered)}")


def measure(call, turns: int, concurrency: int) -> tuple[list[float], float]:
    def timed(i: int) -> float:
        start = time.perf_counter()
        call(i)
        return (time.perf_counter() - start) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        samples = list(pool.map(timed, range(turns)))
    return samples, turns / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--train", action="store_true", help="time a full training first")
    args = parser.parse_args()
    config = StackConfig.from_env()
    if args.train:
        os.environ["RASA_MAX_CACHE_SIZE"] = "0"
        seconds = ensure_model(config, force=True, quiet=True)
        print(f"training (full, no cache): {seconds:.0f} s")
    seed_backend(config)
    ensure_model(config, quiet=True)
    ids = [d.id for d in DEMO_BORROWERS]
    rasa = config.url("rasa")
    http = requests.Session()

    def turn(i: int) -> None:
        fields = MessageFields(sender=f"bench-{uuid.uuid4().hex[:12]}", text=QUESTION,
                               borrower_id=ids[i % len(ids)], locale="zh-CN")
        response = http.post(f"{rasa}/webhooks/desk/webhook", timeout=60,
                             headers=sign(config.channel_secret, fields), json={
            "sender": fields.sender, "message": fields.text,
            "metadata": {"borrower_id": fields.borrower_id, "locale": fields.locale}})
        assert response.ok and response.json(), response.text

    def parse(_i: int) -> None:
        response = http.post(f"{rasa}/model/parse", headers=rasa_headers(config.rasa_jwt_secret),
                             json={"text": QUESTION}, timeout=60)
        assert response.ok

    with Stack(config).up():
        measure(turn, 20, 4)  # warm-up
        for concurrency in (1, 20):
            for label, call in (("desk turn + action + backend", turn),
                                ("/model/parse only", parse)):
                samples, rate = measure(call, args.turns, concurrency)
                print(f"{label:<30} conc={concurrency:<3} {percentiles(samples)}  "
                      f"{rate:6.1f} turns/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
