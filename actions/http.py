"""Outgoing HTTP of the action server: one client shape and one retry policy for every call
to the eligibility service and to the support desk.

A ``ServiceClient`` holds a service's base URL and bearer token, sends every request with the
connect and read timeouts of ``ActionSettings``, and talks through a ``requests.Session``
that it is given (tests hand it one whose transport is fake) or that ``new_session`` builds.

The retries are urllib3's (``Retry`` on the session's ``HTTPAdapter``), at most
``RELEND_BACKEND_RETRIES`` extra attempts, and only where a repeat cannot do harm:

- a failure to connect (refused, connect timeout), for any method: the request never left;
- a 502, 503 or 504 answer, for idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS, TRACE)
  and, where the client says its POSTs are idempotent, for POST. The eligibility client
  says so, and sends no POST without an ``Idempotency-Key`` (the backend files it once);
  the desk client does not: opening a case carries no key, and the desk's check for an
  open case is not atomic, so a repeat racing a slow first attempt could open two;
- never after a read timeout or a connection broken mid-answer: the service may have acted,
  and a slow service has already used up the borrower's patience.

The first retry follows at once, later ones after ``BACKOFF_FACTOR * 2 ** (n - 1)`` seconds
(urllib3's schedule, capped at ``BACKOFF_MAX``); a ``Retry-After`` header is not obeyed, since
the borrower is waiting. When the retries are spent, the last answer is returned as it is.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from .settings import ActionSettings

IDEMPOTENT_METHODS = frozenset(Retry.DEFAULT_ALLOWED_METHODS)
RETRY_STATUSES = frozenset({502, 503, 504})
BACKOFF_FACTOR = 0.1
BACKOFF_MAX = 1.0


def retry_policy(retries: int, *, idempotent_posts: bool = False) -> Retry:
    """The retry policy above, allowing ``retries`` extra attempts."""
    methods = IDEMPOTENT_METHODS | {"POST"} if idempotent_posts else IDEMPOTENT_METHODS
    return Retry(total=retries, connect=retries, read=False, status=retries, other=0,
                 allowed_methods=methods, status_forcelist=RETRY_STATUSES,
                 backoff_factor=BACKOFF_FACTOR, backoff_max=BACKOFF_MAX,
                 respect_retry_after_header=False, raise_on_status=False)


def new_session(retries: int, *, idempotent_posts: bool = False) -> requests.Session:
    """A session that retries by ``retry_policy`` over http and https."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry_policy(retries, idempotent_posts=idempotent_posts))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class ServiceClient:
    """One remote service: its base URL and token, the timeouts, and the session to use."""

    #: whether every POST this client sends may be repeated (see the module's docstring)
    idempotent_posts = False

    def __init__(self, base_url: str, token: str, config: ActionSettings,
                 session: requests.Session | None = None) -> None:
        self.base_url, self.token = base_url, token
        self.timeout = (config.connect_timeout, config.read_timeout)
        self.http = session or new_session(config.retries, idempotent_posts=self.idempotent_posts)

    def request(self, method: str, path: str, *, json: Any = None,
                headers: dict[str, str] | None = None) -> requests.Response:
        """One call, retried by the session's policy; ``requests.RequestException`` if no
        answer came (an answer with an error status is returned, not raised)."""
        return self.http.request(
            method, f"{self.base_url}{path}", json=json, timeout=self.timeout,
            headers={"Authorization": f"Bearer {self.token}", **(headers or {})})
