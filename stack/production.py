"""The production topology on this machine's engines: ``python -m stack up --production``.

N Rasa processes (PostgreSQL tracker store, Redis lock store, RabbitMQ event broker:
endpoints.production.yml), N action servers and N desks behind nginx (configs/
nginx.conf.template, written into the var directory), one eligibility backend; the backend and
the desks on PostgreSQL. The stack creates its databases when they are missing, runs the
migrations once before any replica starts, starts every process, waits until each answers and
then checks each route through the load balancer. Stopping stops nginx too (it runs in the
foreground, in its own process group, like every other server here).

The backend publishes its outbox to RabbitMQ (``<RELEND_RABBITMQ_QUEUE>.notices`` unless
``RELEND_OUTBOX_QUEUE`` is set) and one notifier consumes that queue into the desks.

The load balancer listens on the ports the embedded stack uses for those services
(``RELEND_RASA_PORT``, ``RELEND_ACTIONS_PORT``, ``RELEND_DESK_PORT``), so every client that
reads ``StackConfig`` (the terminal chat, the benchmarks, the tests) goes through it unchanged.
The replicas listen on ``RELEND_REPLICA_PORT_BASE`` + 0.. (Rasa), + 100.. (action servers),
+ 200.. (desks). Variables: docs/configuration.md; the topology: docs/production.md.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote

import requests
from sqlalchemy.engine import make_url

from .config import ROOT, StackConfig
from .rasa_auth import rasa_headers
from .services import Service, Stack, launch, notifier, warm_up

TEMPLATE = ROOT / "configs" / "nginx.conf.template"
PRODUCTION_ENDPOINTS = "endpoints.production.yml"


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "") or default


@dataclass(frozen=True)
class Engines:
    """Where the engines are (each on its standard local port unless told otherwise)."""

    pg_host: str
    pg_port: int
    pg_user: str
    pg_password: str
    tracker_db: str
    redis_host: str
    redis_port: int
    rabbitmq_host: str
    rabbitmq_port: int
    rabbitmq_user: str
    rabbitmq_password: str
    rabbitmq_queue: str
    desk_redis_url: str
    # the desks' pub/sub channel: one per topology sharing a Redis
    desk_redis_channel: str = "relend:desk"
    # the outbox -> notifier queue; empty: "<rabbitmq_queue>.notices" (one per topology)
    notices_queue: str = ""

    @classmethod
    def from_env(cls) -> Engines:
        redis_host = _env("RELEND_REDIS_HOST", "127.0.0.1")
        redis_port = int(_env("RELEND_REDIS_PORT", "6379"))
        return cls(
            pg_host=_env("RELEND_PG_HOST", "127.0.0.1"),
            pg_port=int(_env("RELEND_PG_PORT", "5432")),
            pg_user=_env("RELEND_PG_USER", "postgres"),
            pg_password=os.environ.get("RELEND_PG_PASSWORD", ""),
            tracker_db=_env("RELEND_PG_DB", "relend_tracker"),
            redis_host=redis_host, redis_port=redis_port,
            rabbitmq_host=_env("RELEND_RABBITMQ_HOST", "127.0.0.1"),
            rabbitmq_port=int(_env("RELEND_RABBITMQ_PORT", "5672")),
            rabbitmq_user=_env("RELEND_RABBITMQ_USER", "guest"),
            rabbitmq_password=_env("RELEND_RABBITMQ_PASSWORD", "guest"),
            rabbitmq_queue=_env("RELEND_RABBITMQ_QUEUE", "relend_events"),
            desk_redis_url=_env("RELEND_DESK_REDIS_URL", f"redis://{redis_host}:{redis_port}/2"),
            desk_redis_channel=_env("RELEND_DESK_REDIS_CHANNEL", "relend:desk"),
            notices_queue=os.environ.get("RELEND_OUTBOX_QUEUE", ""),
        )

    @property
    def notices_queue_name(self) -> str:
        return self.notices_queue or f"{self.rabbitmq_queue}.notices"

    def amqp_url(self) -> str:
        return (f"amqp://{quote(self.rabbitmq_user, safe='')}:"
                f"{quote(self.rabbitmq_password, safe='')}@{self.rabbitmq_host}:"
                f"{self.rabbitmq_port}/")

    def notices_env(self) -> dict[str, str]:
        """The backend publishes its outbox to the queue the one notifier consumes."""
        url, queue = self.amqp_url(), self.notices_queue_name
        return {"RELEND_OUTBOX_AMQP_URL": url, "RELEND_OUTBOX_QUEUE": queue,
                "RELEND_NOTICES_AMQP_URL": url, "RELEND_NOTICES_QUEUE": queue}

    def pg_url(self, database: str) -> str:
        password = f":{self.pg_password}" if self.pg_password else ""
        return (f"postgresql+psycopg2://{self.pg_user}{password}@{self.pg_host}:{self.pg_port}"
                f"/{database}")

    def env(self) -> dict[str, str]:
        """What endpoints.production.yml and the desks read."""
        return {
            "RELEND_PG_HOST": self.pg_host, "RELEND_PG_PORT": str(self.pg_port),
            "RELEND_PG_USER": self.pg_user, "RELEND_PG_PASSWORD": self.pg_password,
            "RELEND_PG_DB": self.tracker_db,
            "RELEND_REDIS_HOST": self.redis_host, "RELEND_REDIS_PORT": str(self.redis_port),
            "RELEND_RABBITMQ_HOST": self.rabbitmq_host,
            "RELEND_RABBITMQ_PORT": str(self.rabbitmq_port),
            "RELEND_RABBITMQ_USER": self.rabbitmq_user,
            "RELEND_RABBITMQ_PASSWORD": self.rabbitmq_password,
            "RELEND_RABBITMQ_QUEUE": self.rabbitmq_queue,
            "RELEND_DESK_REDIS_URL": self.desk_redis_url,
            "RELEND_DESK_REDIS_CHANNEL": self.desk_redis_channel,
        }


@dataclass(frozen=True)
class Topology:
    """The stack's config (its service ports are the load balancer's), the engines, and the
    replicas' ports."""

    config: StackConfig
    engines: Engines
    replicas: int
    rasa_ports: tuple[int, ...]
    actions_ports: tuple[int, ...]
    desk_ports: tuple[int, ...]

    @classmethod
    def from_env(cls, replicas: int, config: StackConfig | None = None,
                 engines: Engines | None = None) -> Topology:
        if replicas < 1:
            raise ValueError("--replicas must be at least 1")
        engines = engines or Engines.from_env()
        config = production_config(config or StackConfig.from_env(), engines)
        base = int(_env("RELEND_REPLICA_PORT_BASE", "7000"))
        return cls.with_ports(config, engines, replicas, base)

    @classmethod
    def with_ports(cls, config: StackConfig, engines: Engines, replicas: int,
                   base: int) -> Topology:
        return cls(config, engines, replicas,
                   tuple(base + i for i in range(replicas)),
                   tuple(base + 100 + i for i in range(replicas)),
                   tuple(base + 200 + i for i in range(replicas)))

    @property
    def nginx_dir(self) -> Path:
        return self.config.log_dir.parent / "nginx"

    def database_urls(self) -> list[str]:
        return [self.config.backend_db_url, self.config.desk_db_url,
                self.engines.pg_url(self.engines.tracker_db)]

    def describe(self) -> str:
        c = self.config
        ports = ", ".join
        return "\n".join([
            f"Relend production topology ({self.replicas} of each replica, all on 127.0.0.1):",
            f"  load balancer (nginx)  Rasa :{c.rasa_port} -> {ports(map(str, self.rasa_ports))}",
            f"                         action servers :{c.actions_port} -> "
            f"{ports(map(str, self.actions_ports))}",
            f"                         desks :{c.desk_port} -> {ports(map(str, self.desk_ports))}"
            " (WebSocket upgrade)",
            f"  in-app chat page       {c.url('desk')}/chat",
            f"  agent console          {c.url('desk')}/console",
            f"  eligibility backend    {c.url('backend')} (one process)",
            f"  databases              backend {_safe(c.backend_db_url)}, desk "
            f"{_safe(c.desk_db_url)}, tracker {self.engines.tracker_db}",
            f"  Redis                  lock store {self.engines.redis_host}:"
            f"{self.engines.redis_port}/1, desk fan-out {_safe(self.engines.desk_redis_url)}",
            f"  RabbitMQ               {self.engines.rabbitmq_host}:{self.engines.rabbitmq_port}"
            f" queue {self.engines.rabbitmq_queue} (Rasa's events), "
            f"{self.engines.notices_queue_name} (outbox -> notifier)",
            "  notifier               one process (python -m notices run), log notices.log",
            f"  logs                   {c.log_dir}",
            "  stop                   python -m stack stop",
        ])


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def production_config(config: StackConfig, engines: Engines) -> StackConfig:
    """The backend and desk on PostgreSQL (unless their URLs are set), Rasa on the production
    endpoints."""
    return replace(
        config,
        backend_db_url=os.environ.get("RELEND_BACKEND_DB_URL", "")
        or engines.pg_url(_env("RELEND_PROD_BACKEND_DB", "relend_backend")),
        desk_db_url=os.environ.get("RELEND_DESK_DB_URL", "")
        or engines.pg_url(_env("RELEND_PROD_DESK_DB", "relend_desk")),
        endpoints=PRODUCTION_ENDPOINTS,
    )


def create_databases(urls: list[str]) -> list[str]:
    """CREATE DATABASE for each PostgreSQL URL whose database is missing; returns those made."""
    import psycopg2

    made = []
    for raw in urls:
        url = make_url(raw)
        if not url.drivername.startswith("postgresql"):
            continue
        admin = psycopg2.connect(host=url.host, port=url.port or 5432, user=url.username,
                                 password=url.password or "", dbname="postgres",
                                 connect_timeout=5)
        try:
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{url.database}"')
                    made.append(url.database)
        finally:
            admin.close()
    return made


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                      else None)
    if found is None:
        raise RuntimeError("nginx is not installed: run scripts/setup_production "
                           "(Debian package nginx-light)")
    return found


def write_nginx_config(topology: Topology) -> Path:
    """Fill configs/nginx.conf.template for this topology; returns the written file."""
    prefix = topology.nginx_dir
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    topology.config.log_dir.mkdir(parents=True, exist_ok=True)

    def servers(ports: tuple[int, ...]) -> str:
        return "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;"
                         for p in ports)

    text = TEMPLATE.read_text()
    # started as root, nginx's workers would run as "nobody", who may not even reach the var
    # directory: they run as the user who runs the rest of the stack
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    for key, value in {
        "USER": user, "PREFIX": str(prefix), "LOG_DIR": str(topology.config.log_dir),
        "RASA_SERVERS": servers(topology.rasa_ports),
        "ACTIONS_SERVERS": servers(topology.actions_ports),
        "DESK_SERVERS": servers(topology.desk_ports),
        "RASA_PORT": str(topology.config.rasa_port),
        "ACTIONS_PORT": str(topology.config.actions_port),
        "DESK_PORT": str(topology.config.desk_port),
    }.items():
        text = text.replace(f"@{key}@", value)
    path = prefix / "nginx.conf"
    path.write_text(text)
    return path


def topology_services(topology: Topology) -> dict[str, Service]:
    """Every process of the topology, by name: backend, actions-i, rasa-i, desk-i, nginx."""
    c = topology.config
    logs = c.log_dir
    py = sys.executable
    found: dict[str, Service] = {
        "backend": Service("backend", [py, "-m", "eligibility", "serve"],
                           f"{c.url('backend')}/health", 60, logs / "backend.log"),
    }
    for i, port in enumerate(topology.actions_ports):
        found[f"actions-{i}"] = Service(
            f"actions-{i}", [py, "-m", "actions.server", "--host", "127.0.0.1", "--port",
                             str(port)],
            f"http://127.0.0.1:{port}/health", 60, logs / f"actions-{i}.log")
    for i, port in enumerate(topology.desk_ports):
        found[f"desk-{i}"] = Service(
            f"desk-{i}", [py, "-m", "desk", "serve"], f"http://127.0.0.1:{port}/health", 60,
            logs / f"desk-{i}.log", env={"RELEND_DESK_PORT": str(port)})
    for i, port in enumerate(topology.rasa_ports):
        found[f"rasa-{i}"] = Service(
            f"rasa-{i}", [py, "-m", "stack.rasa_run", "run", "-i", "127.0.0.1", "--port",
                          str(port), "--model", str(c.model_path), "--enable-api",
                          "--endpoints", c.endpoints, "--credentials", "credentials.yml",
                          "--cors", "http://127.0.0.1"],
            f"http://127.0.0.1:{port}/status", 240, logs / f"rasa-{i}.log",
            headers=lambda: rasa_headers(c.rasa_jwt_secret),
            # a conversation's Redis lock outlives a killed Rasa process by this (Rasa's
            # default: 60 s of a conversation stuck behind the dead process's ticket); longer
            # than any turn, which the desk gives up on after 10 s
            env={"TICKET_LOCK_LIFETIME": _env("RELEND_RASA_LOCK_LIFETIME", "20")})
    nginx_conf = topology.nginx_dir / "nginx.conf"
    found["nginx"] = Service(
        "nginx", [nginx_binary(), "-p", str(topology.nginx_dir), "-c", str(nginx_conf),
                  "-e", str(logs / "nginx-error.log")],
        f"{c.url('desk')}/health", 30, logs / "nginx.log")
    # one notifier for the topology: it consumes the backend's outbox queue (exactly once by
    # key in the desk, so a second one would be harmless, but one is enough)
    env = {**c.child_env(), **topology.engines.notices_env()}
    found["notices"] = notifier(c, env)
    return found


class ProductionStack(Stack):
    """``with ProductionStack(topology).up(): ...``: every process answering inside, stopped
    after (nginx included). Never reuses a server something else runs."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        write_nginx_config(topology)
        super().__init__(topology.config, reuse=False, only=())
        self.all = topology_services(topology)
        self.only = tuple(self.all)

    def prepare(self) -> None:
        """Databases created when missing; the desk's and the backend's migrations run once,
        here, so that N desks starting together do not race on an empty schema."""
        self.config.check()
        created = create_databases(self.topology.database_urls())
        if created:
            print(f"[stack] created databases: {', '.join(created)}", flush=True)
        env = self.child_env()
        for module in ("eligibility", "desk"):
            subprocess.run([sys.executable, "-m", module, "migrate"], cwd=ROOT, env=env,
                           check=True, stdout=subprocess.DEVNULL)

    def child_env(self) -> dict[str, str]:
        c = self.config
        return {**c.child_env(), **self.topology.engines.env(),
                **self.topology.engines.notices_env(),
                "RELEND_VAR_DIR": str(c.log_dir.parent)}

    def start(self) -> None:
        self.config.check()
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        for service in self.all.values():
            if service.name != "nginx" and service.healthy():
                raise RuntimeError(f"{service.name}: something already answers at "
                                   f"{service.health}")
        launched = time.monotonic()
        rasa = [n for n in self.all if n.startswith("rasa-")]
        # Rasa creates the tracker tables at start: the first one alone, then the others
        first = [n for n in self.all if not n.startswith("rasa-")] + rasa[:1]
        for group in (first, rasa[1:]):
            started = [self._launch(self.all[name]) for name in group]
            for service in started:
                self._wait(service)
                self.ready_seconds[service.name] = round(time.monotonic() - launched, 1)
        for name in rasa:
            self._warm(self.all[name].health.rsplit("/", 1)[0])
        self.check_routes()

    def _launch(self, service: Service) -> Service:
        launch(service, {**self.child_env(), **(service.env or {})})
        self.started.append(service)
        return service

    def _warm(self, base: str) -> None:
        warm_up(base, self.config.rasa_jwt_secret)

    def check_routes(self) -> None:
        """Each service answers through the load balancer."""
        c = self.config
        for url, headers in ((f"{c.url('rasa')}/status", rasa_headers(c.rasa_jwt_secret)),
                             (f"{c.url('actions')}/health", None),
                             (f"{c.url('desk')}/health", None)):
            response = requests.get(url, headers=headers, timeout=10)
            if response.status_code != 200:
                raise RuntimeError(f"the load balancer answers {response.status_code} at {url}")

    def restart(self, name: str) -> None:
        """Start one replica again (after a test killed it) and wait until it answers."""
        service = self.all[name]
        if service.process is not None and service.process.poll() is None:
            raise RuntimeError(f"{name} is still running")
        self.started = [s for s in self.started if s is not service]
        self._wait(self._launch(service))
