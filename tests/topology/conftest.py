"""The production topology (stack/production.py) for the tests of this folder: 2 Rasa processes,
2 action servers and 2 desks behind nginx, on the machine's PostgreSQL, Redis and RabbitMQ —
each reached through a TCP proxy of the tests' own (tcp_proxy.py), so a test can cut one
engine without touching the shared one. Started once per module; its databases and queue are
created for the module and dropped after.

Needs the three engines on their standard ports and nginx (scripts/setup_production): with
CI=true a missing one is a failure, otherwise the tests skip and say what is missing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from stack.config import ROOT, StackConfig
from stack.model import ensure_model
from stack.production import (
    PRODUCTION_ENDPOINTS,
    Engines,
    ProductionStack,
    Topology,
    nginx_binary,
)
from tests.conftest import free_port, run_coroutine
from tests.topology.tcp_proxy import TcpProxy

# databases and the RabbitMQ queue the module creates (and drops) are named with this
PREFIX = os.environ.get("RELEND_TOPOLOGY_PREFIX", "relend_topo_")
ENGINE_PORTS = {"PostgreSQL": 5432, "Redis": 6379, "RabbitMQ": 5672}
REPLICAS = 2


def _missing() -> str | None:
    for name, port in ENGINE_PORTS.items():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            return (f"{name} is not reachable on 127.0.0.1:{port}; start it to run the "
                    "topology tests")
    try:
        nginx_binary()
    except RuntimeError as exc:
        return str(exc)
    return None


@dataclass
class Running:
    """The started topology and the handles the tests use."""

    stack: ProductionStack
    topology: Topology
    proxies: dict[str, TcpProxy]
    prefix: str

    @property
    def config(self) -> StackConfig:
        return self.topology.config

    @property
    def log_dir(self) -> Path:
        return self.config.log_dir

    def tracker_events(self, sender: str) -> list[dict[str, Any]]:
        """This conversation's events in the PostgreSQL tracker store, in order (read on the
        real engine, not through the proxy)."""
        with psycopg2.connect(host="127.0.0.1", port=5432, user="postgres",
                              dbname=self.topology.engines.tracker_db) as conn, \
                conn.cursor() as cur:
            cur.execute("SELECT type_name, data FROM events WHERE sender_id = %s ORDER BY id",
                        (sender,))
            return [{"type": t, **json.loads(d)} for t, d in cur.fetchall()]

    def desk_rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg2.connect(host="127.0.0.1", port=5432, user="postgres",
                              dbname=f"{self.prefix}_desk") as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()

    def upstream_log(self, port: int) -> list[tuple[str, str, str]]:
        """(request line, status, replica address) of each request the load balancer
        served on ``port``, oldest first."""
        rows = []
        for line in (self.log_dir / "nginx-access.log").read_text().splitlines():
            head, _, rest = line.partition('"')
            request, _, tail = rest.partition('"')
            fields = head.split()
            if len(fields) >= 2 and fields[1] == str(port):
                status, upstream = (tail.split() + ["", ""])[:2]
                rows.append((request, status, upstream))
        return rows


def _drop(prefix: str, queue: str) -> None:
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        for suffix in ("backend", "desk", "tracker"):
            cur.execute(f'DROP DATABASE IF EXISTS "{prefix}_{suffix}" WITH (FORCE)')
    admin.close()

    async def delete_queue() -> None:
        import aio_pika

        connection = await aio_pika.connect_robust("amqp://guest:guest@127.0.0.1/")
        async with connection:
            channel = await connection.channel()
            # Rasa's events, and the proactive notices the backend publishes beside them
            for name in (queue, f"{queue}.notices"):
                await channel.queue_delete(name)

    try:
        run_coroutine(delete_queue())
    except Exception as exc:
        print(f"[topology] could not delete queue {queue}: {exc!r}", file=sys.stderr)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    missing = _missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing, pytrace=False)
        pytest.skip(missing)
    prefix = f"{PREFIX}{uuid.uuid4().hex[:8]}"
    queue = f"{prefix}_events"
    proxies = {name: TcpProxy(port, free_port()).start() for name, port in ENGINE_PORTS.items()}
    engines = Engines(
        pg_host="127.0.0.1", pg_port=proxies["PostgreSQL"].port, pg_user="postgres",
        pg_password="", tracker_db=f"{prefix}_tracker",
        redis_host="127.0.0.1", redis_port=proxies["Redis"].port,
        rabbitmq_host="127.0.0.1", rabbitmq_port=proxies["RabbitMQ"].port,
        rabbitmq_user="guest", rabbitmq_password="guest", rabbitmq_queue=queue,
        desk_redis_url=f"redis://127.0.0.1:{proxies['Redis'].port}/2",
        desk_redis_channel=f"{prefix}:desk",
    )
    var = tmp_path_factory.mktemp("topology")
    config = replace(
        StackConfig.from_env(), backend_port=free_port(), actions_port=free_port(),
        rasa_port=free_port(), desk_port=free_port(), log_dir=var / "log",
        backend_db_url=engines.pg_url(f"{prefix}_backend"),
        desk_db_url=engines.pg_url(f"{prefix}_desk"), endpoints=PRODUCTION_ENDPOINTS)
    topo = Topology(config, engines, REPLICAS,
                    tuple(free_port() for _ in range(REPLICAS)),
                    tuple(free_port() for _ in range(REPLICAS)),
                    tuple(free_port() for _ in range(REPLICAS)))
    ensure_model(config, quiet=True)
    stack = ProductionStack(topo)
    started = time.monotonic()
    try:
        stack.prepare()
        subprocess.run([sys.executable, "-m", "eligibility", "seed"], cwd=ROOT,
                       env=stack.child_env(), check=True, stdout=subprocess.DEVNULL)
        stack.start()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(config.log_dir.glob("*.log")))
        stack.stop()
        for proxy in proxies.values():
            proxy.stop()
        _drop(prefix, queue)
        pytest.fail(f"the topology did not start: {exc}\n{logs}", pytrace=False)
    print(f"\n[topology] ready in {time.monotonic() - started:.1f} s: {stack.ready_seconds}",
          file=sys.stderr)
    try:
        yield Running(stack, topo, proxies, prefix)
    finally:
        stack.stop()
        for proxy in proxies.values():
            proxy.stop()
        _drop(prefix, queue)
