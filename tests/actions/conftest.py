"""Fixtures for the custom-action tests.

- ``decisions``: the decision JSON of every demo borrower, computed by the backend's own code
  (``eligibility.seed`` + ``eligibility.service.compute_decision`` over in-memory SQLite at a
  fixed ``NOW``), so these tests never drift from the backend contract. ``decide`` does the
  same for a borrower a test builds with ``eligibility.seed.Builder``.
- ``backend`` / ``desk``: fake HTTP layers. ``backend`` is mounted on the actions' own
  ``requests.Session``; ``desk`` stands in for ``requests.request`` in ``actions.handoff``.
  Both record every request and answer from canned ``(status, body)`` pairs or exceptions.
- ``make_tracker`` and ``run``: build a ``rasa_sdk.Tracker`` and run an action on it.

Helpers are handed to tests as fixtures (a conftest is not imported by test modules).
"""

from __future__ import annotations

import asyncio
import copy
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
from requests.adapters import BaseAdapter
from sqlalchemy.orm import Session

import actions.appeals
import actions.backend
import actions.conversation
import actions.eligibility
import actions.handoff
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


Answer = Any  # (status, body) -- a dict/list body is sent as JSON, a str as text -- or an exception


class FakeHttp(BaseAdapter):
    """Answers requests by (method, path) from canned answers, recording every request.

    ``on(method, path, *answers)``: answers are used in turn, the last one repeatedly. A
    request nobody expected fails the test.
    """

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.calls: list[Call] = []
        self.sleeps: list[float] = []  # the backend client's pauses between attempts
        self.clock = 0.0  # what time.monotonic() returns to the client: move it to make calls slow

    def on(self, method: str, path: str, *answers: Answer) -> FakeHttp:
        self.routes[(method, path)] = list(answers)
        return self

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        path = urlsplit(request.url).path
        body = json.loads(request.body) if request.body else None
        self.calls.append(Call(request.method or "", path, dict(request.headers), body, timeout))
        answers = self.routes.get((request.method or "", path))
        if not answers:
            raise AssertionError(f"unexpected request: {request.method} {request.url}")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, BaseException):
            raise answer
        status, content = answer
        response = requests.Response()
        response.status_code = status
        response.request = request
        response.url = request.url or ""
        response.encoding = "utf-8"
        if isinstance(content, (dict, list)):
            response._content = json.dumps(content, ensure_ascii=False).encode()
            response.headers["Content-Type"] = "application/json"
        else:
            response._content = str(content).encode()
            response.headers["Content-Type"] = "text/plain"
        return response

    def close(self) -> None:
        pass

    def paths(self, method: str | None = None) -> list[str]:
        return [c.path for c in self.calls if method in (None, c.method)]


class ActionConfig:
    """``configure_actions(RELEND_X="...")``: set the actions' environment and read it afresh.

    A new environment means a new backend client: the fake backend, if any, moves onto it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.backend_fake: FakeHttp | None = None

    def __call__(self, **env: str) -> None:
        for name, value in env.items():
            self.monkeypatch.setenv(name, value)
        settings.cache_clear()
        actions.conversation.get_backend.cache_clear()
        if self.backend_fake is not None:
            actions.conversation.get_backend().http.mount("http://", self.backend_fake)


@pytest.fixture
def configure_actions(monkeypatch: pytest.MonkeyPatch) -> Iterator[ActionConfig]:
    _configure = ActionConfig(monkeypatch)
    _configure(RELEND_BACKEND_URL=BACKEND_URL, RELEND_DESK_URL=DESK_URL,
               RELEND_BACKEND_TOKEN="test-token", RELEND_DESK_TOKEN="test-desk-token",
               RELEND_BACKEND_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT),
               RELEND_BACKEND_READ_TIMEOUT=str(READ_TIMEOUT),
               RELEND_BACKEND_RETRIES="1", RELEND_DECISION_MAX_AGE_SECONDS="300")
    yield _configure
    settings.cache_clear()
    actions.conversation.get_backend.cache_clear()


@pytest.fixture
def backend(configure_actions: ActionConfig, monkeypatch: pytest.MonkeyPatch) -> FakeHttp:
    """The eligibility service, faked on the actions' own HTTP session."""
    fake = FakeHttp()
    configure_actions.backend_fake = fake
    actions.conversation.get_backend().http.mount("http://", fake)
    # record the pauses between attempts instead of sleeping
    monkeypatch.setattr(actions.backend, "time", SimpleNamespace(
        sleep=fake.sleeps.append, monotonic=lambda: fake.clock))
    return fake


@pytest.fixture
def desk(configure_actions: ActionConfig, monkeypatch: pytest.MonkeyPatch) -> FakeHttp:
    """The support desk, faked behind ``requests.request`` as ``actions.handoff`` calls it."""
    fake = FakeHttp()
    session = requests.Session()
    session.mount("http://", fake)
    monkeypatch.setattr(actions.handoff.requests, "request", session.request)
    return fake


# --- the clock -----------------------------------------------------------------------------------


@pytest.fixture
def freeze_actions_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """``freeze_actions_clock(moment)``: every action module's ``utc_now`` returns it."""

    def _freeze(moment: datetime) -> None:
        for module in (actions.conversation, actions.eligibility, actions.appeals,
                       actions.handoff):
            monkeypatch.setattr(module, "utc_now", lambda: moment)

    return _freeze


@pytest.fixture(autouse=True)
def _fixed_clock(freeze_actions_clock: Callable[[datetime], None]) -> None:
    freeze_actions_clock(NOW)


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
