"""Fixtures for the custom-action tests.

- ``decisions``: the decision JSON of every demo borrower, computed by the backend's own code
  (``eligibility.seed`` + ``eligibility.service.compute_decision`` over in-memory SQLite at a
  fixed ``NOW``), so these tests never drift from the backend contract. ``decide`` does the
  same for a borrower a test builds with ``eligibility.seed.Builder``.
- ``backend`` / ``desk``: fake networks under the actions' own HTTP clients
  (``get_backend()`` and ``get_desk()``). Only the connections are fake: each client keeps its
  session, adapter and urllib3 retry policy, so every attempt the policy makes reaches the
  fake, which records it and answers from canned ``(status, body)`` pairs or failures.
  ``fake_http()`` makes one more, to put under any ``requests.Session``.
- ``make_tracker`` and ``run``: build a ``rasa_sdk.Tracker`` and run an action on it.

Helpers are handed to tests as fixtures (a conftest is not imported by test modules).
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session
from urllib3 import HTTPConnectionPool, HTTPResponse
from urllib3.connection import HTTPConnection
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import Timeout

import actions.conversation
import actions.handoff
from actions.clock import use_clock
from actions.settings import settings
from common.db import make_engine, make_session_factory
from eligibility.models import Base, Borrower
from eligibility.seed import Builder, seed
from eligibility.service import compute_decision

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# A Tuesday, 12:00 in Shanghai: the moment every fake-HTTP test happens at.
NOW = datetime(2026, 3, 10, 4, 0, tzinfo=timezone.utc)
# reserved names (RFC 2606) that never resolve: a request that escapes the fakes fails at once
BACKEND_URL = "http://backend.invalid"
DESK_URL = "http://desk.invalid"
CONNECT_TIMEOUT, READ_TIMEOUT = 0.2, 0.5
MIN_DRAWDOWN = 500


# --- decisions computed by the backend's own code ------------------------------------------------


@pytest.fixture(scope="session")
def decision_db() -> Iterator[Session]:
    """In-memory SQLite holding the demo borrowers, seeded at ``NOW``."""
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    with make_session_factory(engine)() as session:
        seed(session, NOW)
        yield session
    engine.dispose()


def _decide(session: Session, borrower_id: str) -> dict[str, Any]:
    return compute_decision(session, borrower_id, now=NOW, min_drawdown=MIN_DRAWDOWN,
                            currency="CNY")


@pytest.fixture(scope="session")
def _demo_decisions(decision_db: Session) -> dict[str, dict[str, Any]]:
    from eligibility.seed import DEMO_BORROWERS

    return {demo.id: _decide(decision_db, demo.id) for demo in DEMO_BORROWERS}


@pytest.fixture
def decisions(_demo_decisions: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{demo borrower id: decision JSON}``; a fresh copy per test, so tests may edit it."""
    return copy.deepcopy(_demo_decisions)


@pytest.fixture
def decide(decision_db: Session) -> Callable[[str, Callable[[Builder], None]], dict[str, Any]]:
    """``decide(borrower_id, build)``: add a borrower built like the seed's and decide at NOW."""
    built: dict[str, dict[str, Any]] = {}

    def _build(borrower_id: str, build: Callable[[Builder], None]) -> dict[str, Any]:
        if borrower_id not in built:
            if decision_db.get(Borrower, borrower_id) is None:
                borrower = Borrower(
                    id=borrower_id, display_name="Test", locale="zh-CN",
                    timezone="Asia/Shanghai", segment="standard", funding_partner="partner-a",
                    created_at=NOW - timedelta(days=900), last_drawdown_at=NOW - timedelta(days=30),
                )
                decision_db.add(borrower)
                decision_db.flush()
                build(Builder(decision_db, borrower, NOW))
                decision_db.commit()
            built[borrower_id] = _decide(decision_db, borrower_id)
        return copy.deepcopy(built[borrower_id])

    return _build


# --- a fake HTTP layer ---------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    json: Any
    timeout: Any


# (status, body) -- a dict/list body is sent as JSON, a str as text -- or a failure of the wire:
#   requests.ConnectTimeout   connecting timed out (nothing was sent)
#   requests.ConnectionError  the connection was refused (nothing was sent)
#   requests.ReadTimeout      sent, but no answer within the read timeout
#   another OSError           sent, then the connection broke (say, ConnectionResetError)
# Any other exception is raised to the caller as it is (AssertionError fails the test).
Answer = Any


class FakeHttp:
    """A network that answers requests by (method, path) from canned answers, recording every
    request that reaches it.

    ``serve(session)`` puts it under a session's adapters, in place of the connections
    urllib3 would open: the session's retry policy runs for real, and each attempt is a call.
    ``on(method, path, *answers)``: answers are used in turn, the last one repeatedly. A
    request nobody expected fails the test.
    """

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.calls: list[Call] = []
        connection = type("FakeConnection", (_FakeConnection,), {"fake": self})
        self.pool = type("FakePool", (_FakePool,), {"fake": self, "ConnectionCls": connection})

    def on(self, method: str, path: str, *answers: Answer) -> FakeHttp:
        self.routes[(method, path)] = list(answers)
        return self

    def serve(self, session: requests.Session) -> FakeHttp:
        for adapter in session.adapters.values():
            adapter.poolmanager.clear()
            # http only: an https request fails rather than reach the real network
            adapter.poolmanager.pool_classes_by_scheme = {"http": self.pool}
        session.trust_env = False  # no proxy from the environment: this is the whole network
        return self

    def record(self, method: str, url: str, headers: Any, body: Any, timeout: Any) -> None:
        if isinstance(timeout, Timeout):
            timeout = (timeout.connect_timeout, timeout.read_timeout)
        self.calls.append(Call(method, urlsplit(url).path, dict(headers or {}),
                               json.loads(body) if body else None, timeout))

    def answer(self, method: str, url: str) -> Answer:
        answers = self.routes.get((method, urlsplit(url).path))
        if not answers:
            raise AssertionError(f"unexpected request: {method} {url}")
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def paths(self, method: str | None = None) -> list[str]:
        return [c.path for c in self.calls if method in (None, c.method)]


class _FakePool(HTTPConnectionPool):
    """urllib3's pool, retries and all; each attempt is recorded with its timeouts."""

    fake: FakeHttp

    def urlopen(self, method: str, url: str, body: Any = None, headers: Any = None,
                retries: Any = None, redirect: bool = True, assert_same_host: bool = True,
                timeout: Any = None, **kwargs: Any) -> Any:
        self.fake.record(method, url, headers, body, timeout)
        return super().urlopen(method, url, body, headers, retries, redirect, assert_same_host,
                               timeout=timeout, **kwargs)


class _FakeConnection(HTTPConnection):
    """A connection that never opens a socket: it fails or answers as the fake says."""

    fake: FakeHttp

    def request(self, method: str, url: str, body: Any = None, headers: Any = None, *,
                chunked: bool = False, preload_content: bool = True, decode_content: bool = True,
                enforce_content_length: bool = True) -> None:
        answer = self.fake.answer(method, url)
        if isinstance(answer, requests.ConnectTimeout):
            raise ConnectTimeoutError(self, f"connecting timed out ({answer})")
        if isinstance(answer, requests.ConnectionError):
            raise NewConnectionError(self, f"Failed to establish a new connection: {answer}")
        if isinstance(answer, BaseException) and not isinstance(answer, OSError):
            raise answer
        self._sent = (answer, method, url, preload_content, decode_content)

    def getresponse(self) -> HTTPResponse:  # type: ignore[override]
        answer, method, url, preload_content, decode_content = self._sent
        if isinstance(answer, requests.ReadTimeout):
            raise TimeoutError("timed out")  # urllib3 makes it a ReadTimeoutError
        if isinstance(answer, BaseException):
            raise answer
        status, content = answer
        if isinstance(content, (dict, list)):
            data = json.dumps(content, ensure_ascii=False).encode()
            kind = "application/json"
        else:
            data, kind = str(content).encode(), "text/plain; charset=utf-8"
        return HTTPResponse(body=io.BytesIO(data), status=status, version=11,
                            version_string="HTTP/1.1",
                            headers={"Content-Type": kind, "Content-Length": str(len(data))},
                            preload_content=preload_content, decode_content=decode_content,
                            request_method=method, request_url=url)


class ActionConfig:
    """``configure_actions(RELEND_X="...")``: set the actions' environment and read it afresh.

    A new environment means new HTTP clients: the fake networks, if any, move under them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.fakes: list[tuple[FakeHttp, Callable[[], Any]]] = []

    def __call__(self, **env: str) -> None:
        for name, value in env.items():
            self.monkeypatch.setenv(name, value)
        self.forget()
        for fake, client in self.fakes:
            fake.serve(client().http)

    def serve(self, fake: FakeHttp, client: Callable[[], Any]) -> FakeHttp:
        """Put ``fake`` under the client ``client()`` returns, now and after every change."""
        self.fakes.append((fake, client))
        return fake.serve(client().http)

    @staticmethod
    def forget() -> None:
        settings.cache_clear()
        actions.conversation.get_backend.cache_clear()
        actions.handoff.get_desk.cache_clear()


@pytest.fixture
def configure_actions(monkeypatch: pytest.MonkeyPatch) -> Iterator[ActionConfig]:
    _configure = ActionConfig(monkeypatch)
    _configure(RELEND_BACKEND_URL=BACKEND_URL, RELEND_DESK_URL=DESK_URL,
               RELEND_BACKEND_TOKEN="test-token", RELEND_DESK_TOKEN="test-desk-token",
               RELEND_BACKEND_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT),
               RELEND_BACKEND_READ_TIMEOUT=str(READ_TIMEOUT),
               RELEND_BACKEND_RETRIES="1", RELEND_DECISION_MAX_AGE_SECONDS="300")
    yield _configure
    _configure.forget()


@pytest.fixture
def backend(configure_actions: ActionConfig) -> FakeHttp:
    """The eligibility service, faked under the actions' own client (``get_backend()``)."""
    return configure_actions.serve(FakeHttp(), actions.conversation.get_backend)


@pytest.fixture
def desk(configure_actions: ActionConfig) -> FakeHttp:
    """The support desk, faked under the actions' own client (``actions.handoff.get_desk()``)."""
    return configure_actions.serve(FakeHttp(), actions.handoff.get_desk)


@pytest.fixture
def fake_http() -> Callable[[], FakeHttp]:
    """``fake_http()``: a new fake network, for ``.serve(session)`` under any session."""
    return FakeHttp


# --- the clock -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fixed_clock() -> Iterator[None]:
    """Every action reads ``NOW`` (actions.clock); a test that needs another moment puts its
    own clock in place with ``use_clock``."""
    with use_clock(lambda: NOW):
        yield


@pytest.fixture
def now() -> datetime:
    return NOW


# --- trackers and running actions ----------------------------------------------------------------


@pytest.fixture(scope="session")
def domain() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))


def user_event(text: str, intent: str | None = None, metadata: dict[str, Any] | None = None,
               ranking: list[dict[str, Any]] | None = None,
               entities: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    parse_data = {"text": text, "intent": {"name": intent, "confidence": 0.9},
                  "intent_ranking": ranking or [{"name": intent, "confidence": 0.9}],
                  "entities": entities or [], "metadata": metadata or {}}
    return {"event": "user", "text": text, "parse_data": parse_data, "metadata": metadata or {},
            "timestamp": 1_773_115_200.0}


def bot_event(text: str) -> dict[str, Any]:
    return {"event": "bot", "text": text, "timestamp": 1_773_115_201.0}


@pytest.fixture
def make_tracker(domain: dict[str, Any]) -> Callable[..., Tracker]:
    """``make_tracker(text, intent, metadata=, slots=, events=, ...)``: the tracker an action sees
    right after the borrower sent ``text``. Slots start at the domain's initial values;
    ``borrower=`` and ``lang=`` are shortcuts for the two slots almost every test sets.
    ``events`` are earlier events; the latest user message is appended to them."""

    def _make(text: str = "", intent: str | None = None, *, metadata: dict[str, Any] | None = None,
              slots: dict[str, Any] | None = None, events: list[dict[str, Any]] | None = None,
              borrower: str | None = None, lang: str | None = None,
              ranking: list[dict[str, Any]] | None = None,
              entities: list[dict[str, Any]] | None = None,
              sender_id: str = "conv-1") -> Tracker:
        values = {name: spec.get("initial_value") for name, spec in domain["slots"].items()}
        values.update({"borrower_id": borrower, **({"language": lang} if lang else {})})
        values.update(slots or {})
        latest = user_event(text, intent, metadata, ranking, entities)
        return Tracker(sender_id, values, latest["parse_data"], [*(events or []), latest],
                       False, None, {}, "action_listen")

    return _make


@dataclass
class Outcome:
    """What an action did: the messages it sent and the events it returned."""

    messages: list[dict[str, Any]]
    events: list[dict[str, Any]]
    slots: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.slots = {e["name"]: e["value"] for e in self.events if e.get("event") == "slot"}

    @property
    def text(self) -> str:
        return "\n".join(m.get("text") or "" for m in self.messages)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return [b for m in self.messages for b in m.get("buttons") or []]

    @property
    def payloads(self) -> list[str]:
        return [b["payload"] for b in self.buttons]

    @property
    def responses(self) -> list[str]:
        return [m["response"] for m in self.messages if m.get("response")]

    @property
    def paused(self) -> bool:
        return any(e.get("event") == "pause" for e in self.events)


@pytest.fixture
def run(domain: dict[str, Any]) -> Callable[[Action, Tracker], Outcome]:
    def _run(action: Action, tracker: Tracker) -> Outcome:
        dispatcher = CollectingDispatcher()
        events = asyncio.run(action.run(dispatcher, tracker, domain))
        # a response the domain does not define would reach the borrower as silence
        unknown = [m["response"] for m in dispatcher.messages
                   if m.get("response") and m["response"] not in domain["responses"]]
        assert not unknown, f"{action.name()} sent responses missing from domain.yml: {unknown}"
        return Outcome(dispatcher.messages, events)

    return _run


@pytest.fixture
def history() -> SimpleNamespace:
    """``history.user(text, intent)`` / ``history.bot(text)``: earlier events for a tracker."""
    return SimpleNamespace(user=user_event, bot=bot_event)
