"""Where Rasa's CPU goes under load: a py-spy profile of the running Rasa process while the
desk load benchmark (benchmarks/desk_load.py) drives it, and a summary of the profile.

    .venv/bin/python benchmarks/profile_rasa.py [--seconds 30] [--borrowers 20] [--label x]
    .venv/bin/python benchmarks/profile_rasa.py --process desk --borrowers 1 --label desk-one
    .venv/bin/python benchmarks/profile_rasa.py --summarize reports/profiles/x.folded

``--process desk`` (or ``actions``) profiles that server instead, with the named parts of a
desk turn; ``--borrowers 1`` is the one-borrower latency case (turns back to back).

It samples the process listening on RELEND_RASA_PORT (``python -m stack up`` first; the
missing servers are started otherwise) 100 times a second for ``--seconds`` with
``py-spy record -F -f raw`` (stacks folded per function, idle threads left out), while
``--borrowers`` borrowers hold conversations without pauses. It writes
``reports/profiles/<label>.folded`` (flame graph input: ``flamegraph.pl`` or speedscope) and
prints, as shares of the samples taken (i.e. of Rasa's busy CPU time): named parts of a turn
(inclusive), the functions that take the most time including what they call, and the
functions where the time is spent themselves.

py-spy is pinned in requirements.in (it reads the process's memory: run as root or as the
user running Rasa, with ptrace allowed).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.desk_load import (  # noqa: E402
    Results,
    borrower,
    listening_pid,
    make_fixtures,
)
from stack.config import StackConfig  # noqa: E402
from stack.services import Stack  # noqa: E402

warnings.filterwarnings("ignore", message="The HMAC key")

# (label, pattern a frame must match); a sample counts once per label however many frames match
PARTS: list[tuple[str, str]] = [
    ("action response validation (RemoteAction._validate_action_result)",
     r"^_validate_action_result \((rasa/core/actions/action|stack/rasa_patches)\.py"),
    ("jsonschema, anywhere", r"\(jsonschema/"),
    ("slot extraction after each message (run_action_extract_slots)",
     r"^run_action_extract_slots \(rasa/core/processor\.py"),
    ("custom action calls (RemoteAction.run: request, validation, events)",
     r"^run \(rasa/core/actions/action\.py:748\)"),  # RemoteAction.run in Rasa 3.6.21
    ("  building the action server's request (_action_call_format)",
     r"^_action_call_format \(rasa/core/actions/action\.py"),
    ("  tracker.current_state (events to JSON)", r"^current_state \(rasa/shared/core/trackers\.py"),
    ("  domain.as_dict", r"^as_dict \(rasa/shared/core/domain\.py"),
    ("log_message (tracker fetch + NLU + logging the message)",
     r"^log_message \(rasa/core/processor\.py"),
    ("NLU parse (parse_message)", r"^parse_message \(rasa/core/processor\.py"),
    ("prediction (_predict_next_with_tracker)",
     r"^_predict_next_with_tracker \(rasa/core/processor\.py"),
    ("tracker store retrieve", r"^(retrieve|_retrieve|retrieve_full_tracker|_event_query|"
                               r"get_or_create_tracker|fetch_tracker)\w* \((rasa/core/"
                               r"(tracker_store|processor)|stack/rasa_patches)\.py"),
    ("tracker store save", r"^(save|_additional_events|stream_events|save_tracker)\w* "
                           r"\((rasa/core/(tracker_store|processor)|stack/rasa_patches)\.py"),
    ("model graph run by dask's scheduler (get_async; inclusive: the components too)",
     r"^get_async \(dask/local\.py"),
    ("tracker rebuilt from events (from_events / replay_events)",
     r"^(from_events|replay_events|from_dict) \(rasa/shared/core/trackers\.py"),
    ("events deserialised (deserialise_events / Event.from_parameters)",
     r"^(deserialise_events|from_parameters|_from_parameters|from_story_string) "
     r"\(rasa/shared/core/events\.py"),
    ("SQLAlchemy", r"\(sqlalchemy/"),
    ("sanic (HTTP server)", r"\(sanic/"),
    ("aiohttp (client to the action server)", r"\(aiohttp/"),
    ("logging", r"\(logging/"),
    ("json encode/decode", r"\(json/"),
    ("desk channel signature check", r"^verify \(common/signing\.py"),
]


# the desk's side of a turn (desk/turns.py, desk/routes/chat.py), for --process desk
DESK_PARTS: list[tuple[str, str]] = [
    ("borrower's frame handled (store, ack, echo: routes/chat.py)",
     r"^handle_borrower_message \(desk/routes/chat\.py"),
    ("turn (desk/turns.py borrower_turn)", r"^borrower_turn \(desk/turns\.py"),
    ("  turn lease (ConversationLocks)", r"^(_write_lease|_acquire|_lease) \(desk/turns\.py"),
    ("  claim", r"^_claim \(desk/turns\.py"),
    ("  forward to Rasa (_forward, incl. the call)", r"^_forward \(desk/turns\.py"),
    ("  replies stored and sent (_finish)", r"^_finish \(desk/turns\.py"),
    ("the call to Rasa (desk/rasa_client.py)", r"\(desk/rasa_client\.py"),
    ("httpx / httpcore", r"\((httpx|httpcore)/"),
    ("aiohttp", r"\(aiohttp/"),
    ("SQLAlchemy", r"\(sqlalchemy/"),
    ("frames to sockets (hub.to_borrower)", r"^to_borrower \(desk/hub\.py"),
    ("websockets framing", r"\(websockets/"),
    ("json encode/decode", r"\(json/"),
    ("the desk's background round (watch/sweep)", r"^(watch|sweep) \(desk/turns\.py"),
]


def load_folded(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        frames, _, count = line.rpartition(" ")
        stacks.append((frames.split(";"), int(count)))
    return stacks


def summarize(path: Path, top: int = 20, parts: list[tuple[str, str]] | None = None) -> str:
    stacks = load_folded(path)
    total = sum(count for _, count in stacks)
    if not total:
        return f"{path}: no samples"
    shares: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    if parts is None:  # a desk profile names desk/ files
        parts = DESK_PARTS if any("(desk/" in f for frames, _ in stacks[:200] for f in frames) \
            else PARTS
    compiled = [(label, re.compile(pattern)) for label, pattern in parts]
    for frames, count in stacks:
        # py-spy's first frame is the process/thread name; the last is where the time is spent
        functions = [f for f in frames if " (" in f]
        for label, pattern in compiled:
            if any(pattern.search(f) for f in functions):
                shares[label] += count
        for function in set(functions):
            inclusive[function] += count
        if functions:
            own[functions[-1]] += count
    lines = [f"{path.name}: {total} samples (100 per second of the process's busy CPU)", "",
             "named parts of a turn (inclusive; they overlap):"]
    lines += [f"  {100 * shares[label] / total:5.1f}%  {label}" for label, _ in parts]
    lines += ["", f"top {top} functions, including what they call:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", f"top {top} functions, own time:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


def py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install -r requirements.txt")
    return found


def record(config: StackConfig, seconds: float, borrowers: int, out: Path,
           process: str = "rasa") -> None:
    port = {"rasa": config.rasa_port, "desk": config.desk_port,
            "actions": config.actions_port}[process]
    pid = listening_pid(port)
    if pid is None:
        raise SystemExit(f"nothing listens on the {process} port {port}")
    conversations = max(1, int(seconds * 40 / 6 / borrowers) + 2)  # enough for 40 turns/s
    ids = make_fixtures(config, borrowers * conversations + 1)
    # warm-up: the first conversation pays for loading what is loaded lazily
    asyncio.run(borrower(config, ids[:1], Results(), None, time.monotonic() + 60))
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen([py_spy(), "record", "-p", str(pid), "-d", str(int(seconds)),
                            "-r", "100", "-F", "-f", "raw", "-o", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results = Results()

    async def crowd() -> None:
        deadline = time.monotonic() + seconds
        per = conversations
        await asyncio.gather(*(borrower(config, ids[1 + n * per:1 + (n + 1) * per], results,
                                        None, deadline) for n in range(borrowers)))

    started = time.perf_counter()
    asyncio.run(crowd())
    elapsed = time.perf_counter() - started
    _, err = spy.communicate(timeout=seconds + 60)
    if spy.returncode != 0:
        raise SystemExit(f"py-spy failed: {err.decode(errors='replace')[-2000:]}")
    turns = len(results.latencies_ms)
    print(f"load while profiling: {turns} turns in {elapsed:.1f} s = {turns / elapsed:.1f} "
          f"turns/s, errors {dict(results.errors) or 0}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--borrowers", type=int, default=20)
    parser.add_argument("--label", default=time.strftime("rasa-%Y%m%d-%H%M%S"))
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--summarize", type=Path, help="only summarize this .folded file")
    parser.add_argument("--process", choices=["rasa", "desk", "actions"], default="rasa",
                        help="the server to profile (default: rasa)")
    args = parser.parse_args(argv)
    if args.summarize:
        print(summarize(args.summarize, args.top))
        return 0
    config = StackConfig.from_env()
    out = ROOT / "reports" / "profiles" / f"{args.label}.folded"
    with Stack(config).up():
        record(config, args.seconds, args.borrowers, out, args.process)
    summary = summarize(out, args.top)
    out.with_suffix(".txt").write_text(summary + "\n")
    print(summary)
    print(f"\nprofile: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
