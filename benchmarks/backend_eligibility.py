"""Benchmark the eligibility endpoint on SQLite and PostgreSQL; prints requests/s and latency.

Targets (issue 2): one client p99 < 10 ms; 50 concurrent clients >= 500 req/s, p99 < 200 ms,
zero errors. Load comes from wrk (Debian's package) when installed, else from a Python load
generator on the same machine (which then limits the figures). The server runs with
RELEND_BACKEND_WORKERS (default here 2, one per core).
Run: .venv/bin/python benchmarks/backend_eligibility.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.loadgen import run_load, run_wrk, wrk_available  # noqa: E402

PG_SERVER = os.environ.get("RELEND_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(url: str) -> None:
    env = {**os.environ, "RELEND_ENV": "sandbox", "RELEND_BACKEND_DB_URL": url,
           "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    subprocess.run([sys.executable, "-m", "eligibility", "seed"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def serve(url: str, port: int) -> subprocess.Popen[bytes]:
    """The server (uvicorn and its workers) in a process group of its own: ``stop`` ends them
    all, even when it did not start."""
    env = {"RELEND_BACKEND_WORKERS": "2", **os.environ, "RELEND_ENV": "sandbox",
           "RELEND_BACKEND_DB_URL": url,
           "RELEND_BACKEND_TOKEN": TOKEN,
           "RELEND_BACKEND_PORT": str(port), "SQLALCHEMY_SILENCE_UBER_WARNING": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "eligibility", "serve"], cwd=ROOT, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 60  # a busy machine starts two workers slowly
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    stop(proc)
    raise RuntimeError("backend did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):  # the group is gone already
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
            return


def bench(label: str, url: str, seconds: float) -> None:
    prepare(url)
    port = free_port()
    proc = serve(url, port)
    try:
        from eligibility.seed import DEMO_BORROWERS

        ids = [d.id for d in DEMO_BORROWERS]

        def paths(i: int) -> str:
            return f"/v1/borrowers/{ids[i % len(ids)]}/eligibility"

        headers = {"Authorization": f"Bearer {TOKEN}"}
        run_load("127.0.0.1", port, paths, headers=headers, clients=4, seconds=1)  # warm-up
        for clients in (1, 50):
            if wrk_available():
                s = run_wrk("127.0.0.1", port, [paths(i) for i in range(len(ids))],
                            headers=headers, clients=clients, seconds=seconds)
            else:
                s = run_load("127.0.0.1", port, paths, headers=headers, clients=clients,
                             seconds=seconds).summary()
            print(f"{label:<10} clients={clients:<3} requests={s['requests']:<6} "
                  f"rps={s['rps']:7.0f}  p50={s['p50_ms']:6.2f} ms  p99={s['p99_ms']:6.2f} ms  "
                  f"errors={s['errors']}", flush=True)
    finally:
        stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    if not wrk_available():
        print("note: wrk not found (apt-get install wrk); using the Python load generator, "
              "which itself saturates a 2-core machine at a few hundred requests/s",
              flush=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "sqlite"):
            bench("sqlite", f"sqlite:///{tmp}/bench.db", args.seconds)
        if args.only in (None, "postgresql"):
            import psycopg2

            schema = "bench_" + uuid.uuid4().hex[:10]
            dsn = PG_SERVER.replace("postgresql+psycopg2://", "postgresql://")
            with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
                cur.execute(f"CREATE SCHEMA {schema}")
            try:
                bench("postgresql", f"{PG_SERVER}?options=-csearch_path%3D{schema}", args.seconds)
            finally:
                conn = psycopg2.connect(dsn)
                conn.autocommit = True
                conn.cursor().execute(f"DROP SCHEMA {schema} CASCADE")
                conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
