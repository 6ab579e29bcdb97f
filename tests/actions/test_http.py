"""The one HTTP policy of the action server (``actions.http``) on its own: which failures are
tried again, how often, after what pause, and that the last answer comes back when the retries
are spent. The network is the fake of conftest, under a session ``new_session`` builds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from urllib3.exceptions import NewConnectionError

from actions.backend import EligibilityBackend
from actions.http import BACKOFF_MAX, ServiceClient, new_session, retry_policy
from actions.settings import settings

PATH = "/v1/things"


@pytest.fixture
def client(configure_actions: Any, fake_http: Callable[[], Any]) -> Callable[..., Any]:
    """``client(retries, idempotent_posts=...)``: a client and the fake network under it."""

    def _client(retries: int, *, idempotent_posts: bool = False) -> tuple[ServiceClient, Any]:
        session = new_session(retries, idempotent_posts=idempotent_posts)
        fake = fake_http().serve(session)
        return ServiceClient("http://service.invalid", "t0ken", settings(), session), fake

    return _client


@pytest.mark.parametrize(("method", "idempotent_posts", "attempts"), [
    ("GET", False, 2), ("PUT", False, 2), ("DELETE", False, 2),
    ("POST", False, 1), ("POST", True, 2), ("PATCH", True, 1),
])
@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_gateway_error_is_retried_only_where_a_repeat_is_harmless(
        client, method, idempotent_posts, attempts, status) -> None:
    service, fake = client(1, idempotent_posts=idempotent_posts)
    fake.on(method, PATH, (status, "busy"), (200, {"ok": True}))
    response = service.request(method, PATH)
    assert len(fake.calls) == attempts
    assert response.status_code == (200 if attempts == 2 else status)


@pytest.mark.parametrize("status", [400, 404, 409, 500, 501])
def test_other_error_statuses_are_answers_not_retried(client, status) -> None:
    service, fake = client(3)
    fake.on("GET", PATH, (status, {"error": "no"}), (200, {"ok": True}))
    assert service.request("GET", PATH).status_code == status
    assert len(fake.calls) == 1


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH"])
@pytest.mark.parametrize("failure", [requests.ConnectionError("refused"),
                                     requests.ConnectTimeout("slow to connect")],
                         ids=["refused", "connect timeout"])
def test_a_request_that_never_left_is_retried_whatever_its_method(client, method,
                                                                  failure) -> None:
    service, fake = client(1)
    fake.on(method, PATH, failure, (200, {"ok": True}))
    assert service.request(method, PATH).json() == {"ok": True}
    assert len(fake.calls) == 2


@pytest.mark.parametrize(("failure", "raised"), [
    (requests.ReadTimeout("slow"), requests.ReadTimeout),
    (ConnectionResetError("reset"), requests.ConnectionError),
], ids=["read timeout", "connection broken after sending"])
def test_a_request_that_reached_the_service_is_never_sent_again(client, failure, raised) -> None:
    service, fake = client(3, idempotent_posts=True)
    fake.on("GET", PATH, failure, (200, {"ok": True}))
    with pytest.raises(raised):
        service.request("GET", PATH)
    assert len(fake.calls) == 1


def test_when_the_retries_are_spent_the_last_answer_comes_back(client) -> None:
    service, fake = client(2)
    fake.on("GET", PATH, (503, "busy"))
    assert service.request("GET", PATH).status_code == 503
    assert len(fake.calls) == 3


def test_when_the_retries_are_spent_the_connection_error_comes_back(client) -> None:
    service, fake = client(2)
    fake.on("GET", PATH, requests.ConnectionError("refused"))
    with pytest.raises(requests.ConnectionError):
        service.request("GET", PATH)
    assert len(fake.calls) == 3


def test_every_attempt_carries_the_token_and_the_configured_timeouts(client) -> None:
    service, fake = client(1)
    fake.on("GET", PATH, (503, "busy"), (200, {"ok": True}))
    service.request("GET", PATH, headers={"X-Extra": "1"})
    config = settings()
    for call in fake.calls:
        assert call.timeout == (config.connect_timeout, config.read_timeout)
        assert call.headers["Authorization"] == "Bearer t0ken"
        assert call.headers["X-Extra"] == "1"


def test_the_pause_before_a_retry_grows_and_is_capped() -> None:
    policy = retry_policy(10)
    refused = NewConnectionError(None, "refused")  # type: ignore[arg-type]
    pauses = []
    for _ in range(6):
        policy = policy.increment("GET", PATH, error=refused)
        pauses.append(policy.get_backoff_time())
    assert pauses == [0, 0.2, 0.4, 0.8, BACKOFF_MAX, BACKOFF_MAX]


def test_a_retry_after_header_is_not_waited_for() -> None:
    assert retry_policy(1).respect_retry_after_header is False


def test_the_backend_client_sends_no_post_without_an_idempotency_key(configure_actions,
                                                                     fake_http) -> None:
    backend = EligibilityBackend(settings(), new_session(1, idempotent_posts=True))
    fake = fake_http().serve(backend.http)
    with pytest.raises(ValueError, match="Idempotency-Key"):
        backend._request("POST", "/v1/appeals", json={})
    assert fake.calls == []
    assert EligibilityBackend.idempotent_posts is True
