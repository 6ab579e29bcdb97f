"""Load through the support desk, the way borrowers arrive: the chat WebSocket, a signed
borrower token, real conversations.

Each simulated borrower opens the desk's chat socket (subprotocols ``relend.v1`` and
``auth.<token>``, the token signed with the app secret like the app does) and holds whole
conversations: the question, a follow-up, an appeal (request, statement, confirmation) and
thanks — six turns. Every conversation has a fresh sandbox borrower (a ``qa-bench-...``
fixture with a failed risk review, so the appeal can be filed), created before the clock
starts. A turn is timed from sending the message frame to the desk's ``turn_done`` frame.

Modes:
  saturation  N borrowers, no pause between messages (the most turns per second)
  paced       N borrowers (default 50), 2-5 s between messages, starts spread over 5 s

It prints turns/s, p50/p95/p99/max turn latency, errors by kind, and each server process's
RSS (at the end and the peak, sampled every second) and CPU time per turn. It uses the
servers answering on the configured ports (``python -m stack up``) and starts the missing
ones itself (stopped again at the end).

    .venv/bin/python benchmarks/desk_load.py saturation --borrowers 20 --conversations 3
    .venv/bin/python benchmarks/desk_load.py paced --borrowers 50 --conversations 2
    .venv/bin/python benchmarks/desk_load.py saturation --borrowers 1 --conversations 10
    # the production topology, started first with `python -m stack up --production --replicas 2`
    .venv/bin/python benchmarks/desk_load.py saturation --replicas 2

A turn counts as an error when the desk sends an error frame, the socket closes, no
``turn_done`` comes within 45 s, nothing but a system message comes back (the desk's
"assistant is down"), or the reply misses the words this step of the flow must contain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.live import LiveConversation, LiveError, put_fixture  # noqa: E402
from stack.__main__ import seed_backend  # noqa: E402
from stack.config import StackConfig  # noqa: E402
from stack.services import SERVICES, Stack, services  # noqa: E402

# the sandbox's public secrets are short; the warning says nothing about the load
warnings.filterwarnings("ignore", message="The HMAC key")

# the borrower's side of one conversation; ``press`` is a button title the bot must offer
STEPS: list[dict[str, Any]] = [
    {"say": "我已经还清了，为什么现在借不了款？", "expect": ["定期综合评估"]},
    {"say": "那什么时候能恢复？", "expect": []},
    {"say": "我要申诉", "expect": ["请用一两句话说明"]},
    {"say": "我每一期都按时还款，从来没有逾期，评估结果应该是搞错了", "expect": ["确认提交吗"]},
    {"press": "确认提交", "expect": ["申诉已提交"]},
    {"say": "谢谢", "expect": ["不客气"]},
]
# a borrower whose last risk review failed: appealable, so the whole flow runs
FIXTURE = {"reviews": [{"days_ago": 5, "passed": False, "next_review_in_days": 25}]}


@dataclass
class Results:
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    error_examples: dict[str, str] = field(default_factory=dict)
    conversations: int = 0

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        self.error_examples.setdefault(kind, detail[:300])


def percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


# ---- the servers' processes ---------------------------------------------------------------
def listening_pid(port: int) -> int | None:
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True,
                         text=True).stdout
    found = re.search(r"pid=(\d+)", out)
    return int(found.group(1)) if found else None


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (uvicorn or Sanic workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        except OSError:
            pass
    return total


def topology_ports(config: StackConfig, replicas: int) -> dict[str, int]:
    """The production topology's processes (stack/production.py) by name and port: each
    replica, the backend, and nginx (the load balancer's desk port)."""
    from stack.production import Topology

    topology = Topology.from_env(replicas, config)
    ports = {"backend": config.backend_port, "nginx": config.desk_port}
    for name, replica_ports in (("rasa", topology.rasa_ports),
                                ("actions", topology.actions_ports),
                                ("desk", topology.desk_ports)):
        ports.update({f"{name}-{i}": port for i, port in enumerate(replica_ports)})
    return ports


class ProcessWatch:
    """RSS (end and peak) and CPU seconds of each server, sampled while the load runs."""

    def __init__(self, config: StackConfig, replicas: int = 0) -> None:
        ports = {"backend": config.backend_port, "desk": config.desk_port,
                 "actions": config.actions_port, "rasa": config.rasa_port}
        if replicas:
            ports = topology_ports(config, replicas)
        self.pids = {name: process_tree(pid) for name, port in ports.items()
                     if (pid := listening_pid(port)) is not None}
        self.pids["client"] = [os.getpid()]
        self.peak = {name: 0.0 for name in self.pids}
        self.cpu_start = {name: cpu_seconds(p) for name, p in self.pids.items()}
        self.cpu_used: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for name, pids in self.pids.items():
                self.peak[name] = max(self.peak[name], rss_mb(pids))
            self._stop.wait(1.0)

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_used = {name: cpu_seconds(p) - self.cpu_start[name]
                         for name, p in self.pids.items()}

    def report(self, turns: int) -> dict[str, dict[str, float]]:
        return {name: {"rss_mb": round(rss_mb(pids), 1),
                       "peak_rss_mb": round(max(self.peak[name], rss_mb(pids)), 1),
                       "cpu_s": round(self.cpu_used.get(name, 0.0), 2),
                       "cpu_ms_per_turn": round(1000 * self.cpu_used.get(name, 0.0)
                                                / max(turns, 1), 1)}
                for name, pids in self.pids.items()}


# ---- the borrowers ------------------------------------------------------------------------
async def one_conversation(config: StackConfig, borrower_id: str, results: Results,
                           pause: tuple[float, float] | None, deadline: float) -> None:
    conversation = LiveConversation(config, borrower_id, "zh-CN")
    try:
        await conversation.open()
    except Exception as exc:  # any failure to connect counts as an error
        results.error("connect", f"{borrower_id}: {exc!r}")
        return
    try:
        for step in STEPS:
            if pause is not None:
                await asyncio.sleep(random.uniform(*pause))
            if time.monotonic() > deadline:
                return
            started = time.perf_counter()
            try:
                if "press" in step:
                    replies = await conversation.press(step["press"])
                else:
                    replies = await conversation.say(step["say"])
            except LiveError as exc:
                results.error("timeout_or_closed", f"{borrower_id}: {exc}")
                return
            except AssertionError as exc:  # the button to press was not offered
                results.error("unexpected_reply", f"{borrower_id}: {exc}")
                return
            elapsed = (time.perf_counter() - started) * 1000
            said = "\n".join(str(r.get("text") or "") for r in replies)
            if any(r.get("sender") == "system" for r in replies) and not any(
                    r.get("sender") == "bot" for r in replies):
                results.error("desk_error_or_system", f"{borrower_id}: {said}")
                return
            if not any(r.get("sender") == "bot" for r in replies):
                results.error("silence", f"{borrower_id}: {step}")
                return
            results.latencies_ms.append(elapsed)
            missing = [w for w in step["expect"] if w not in said]
            if missing:
                results.error("unexpected_reply", f"{borrower_id}: {step} missing {missing}: "
                                                  f"{said[:200]}")
                return
        results.conversations += 1
    finally:
        await conversation.close()


async def borrower(config: StackConfig, ids: list[str], results: Results,
                   pause: tuple[float, float] | None, deadline: float) -> None:
    for borrower_id in ids:
        if time.monotonic() > deadline:
            return
        await one_conversation(config, borrower_id, results, pause, deadline)


def make_fixtures(config: StackConfig, count: int) -> list[str]:
    run = uuid.uuid4().hex[:8]
    ids = [f"qa-bench-{run}-{n}" for n in range(count)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: put_fixture(config, i, FIXTURE), ids))
    return ids


def run(config: StackConfig, mode: str, borrowers: int, conversations: int,
        max_seconds: float, replicas: int = 0) -> dict[str, Any]:
    # one warm-up conversation (first jieba load, first connections), not measured
    warm = Results()
    asyncio.run(borrower(config, make_fixtures(config, 1), warm, None, time.monotonic() + 120))
    ids = make_fixtures(config, borrowers * conversations)
    pause = (2.0, 5.0) if mode == "paced" else None
    results = Results()

    async def crowd() -> None:
        deadline = time.monotonic() + max_seconds
        tasks = []
        for n in range(borrowers):
            mine = ids[n * conversations:(n + 1) * conversations]
            tasks.append(asyncio.create_task(borrower(config, mine, results, pause, deadline)))
            if mode == "paced":  # arrivals spread over the first seconds, not all at once
                await asyncio.sleep(5.0 / borrowers)
        await asyncio.gather(*tasks)

    with ProcessWatch(config, replicas) as watch:
        started = time.perf_counter()
        asyncio.run(crowd())
        elapsed = time.perf_counter() - started
    ordered = sorted(results.latencies_ms)
    turns = len(ordered)
    return {
        "mode": mode, "borrowers": borrowers, "conversations_per_borrower": conversations,
        "turns": turns, "conversations_completed": results.conversations,
        "seconds": round(elapsed, 1), "turns_per_s": round(turns / elapsed, 2),
        "p50_ms": round(percentile(ordered, 50), 1), "p95_ms": round(percentile(ordered, 95), 1),
        "p99_ms": round(percentile(ordered, 99), 1),
        "max_ms": round(ordered[-1], 1) if ordered else None,
        "mean_ms": round(statistics.fmean(ordered), 1) if ordered else None,
        "errors": sum(results.errors.values()), "errors_by_kind": dict(results.errors),
        "error_examples": results.error_examples,
        "processes": watch.report(turns),
        "warm_up_errors": dict(warm.errors),
    }


def print_report(report: dict[str, Any]) -> None:
    print(f"{report['mode']}: {report['borrowers']} borrowers x "
          f"{report['conversations_per_borrower']} conversations, {report['turns']} turns in "
          f"{report['seconds']} s")
    print(f"  turns/s {report['turns_per_s']:.1f}   p50 {report['p50_ms']} ms   "
          f"p95 {report['p95_ms']} ms   p99 {report['p99_ms']} ms   max {report['max_ms']} ms")
    print(f"  errors {report['errors']} {report['errors_by_kind'] or ''}")
    for kind, example in report["error_examples"].items():
        print(f"    e.g. {kind}: {example}")
    for name, stats in report["processes"].items():
        print(f"  {name:<10} RSS {stats['rss_mb']:7.1f} MB (peak {stats['peak_rss_mb']:7.1f})   "
              f"CPU {stats['cpu_s']:6.1f} s = {stats['cpu_ms_per_turn']:5.1f} ms/turn")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["saturation", "paced"])
    parser.add_argument("--borrowers", type=int, help="default: 20 (saturation), 50 (paced)")
    parser.add_argument("--conversations", type=int, default=2,
                        help="conversations per borrower, one after the other (6 turns each)")
    parser.add_argument("--max-seconds", type=float, default=600,
                        help="stop starting new turns after this long")
    parser.add_argument("--json", type=Path, help="append the result as one JSON line here")
    parser.add_argument("--label", default="", help="a note stored with the JSON line")
    parser.add_argument("--replicas", type=int, default=0,
                        help="measure the production topology running with this many replicas "
                             "(`python -m stack up --production --replicas N`, same "
                             "environment): load through nginx, each replica's memory and CPU")
    args = parser.parse_args(argv)
    borrowers = args.borrowers or (50 if args.mode == "paced" else 20)
    config = StackConfig.from_env()
    if args.replicas:
        from stack.production import Topology

        config = Topology.from_env(args.replicas, config).config
        report = run(config, args.mode, borrowers, args.conversations, args.max_seconds,
                     args.replicas)
        report["replicas"] = args.replicas
    else:
        if not services(config)["backend"].healthy():
            seed_backend(config)  # a backend started here needs its schema and demo data
        with Stack(config, only=SERVICES).up():
            report = run(config, args.mode, borrowers, args.conversations, args.max_seconds)
    report["label"] = args.label
    report["at"] = time.strftime("%Y-%m-%d %H:%M:%S")
    print_report(report)
    if args.json:
        with args.json.open("a") as out:
            out.write(json.dumps(report, ensure_ascii=False) + "\n")
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
