"""HTTP client of the eligibility service: timeouts, a bounded retry, and typed failures.

Every call has a connect and a read timeout. GETs are retried once on connection errors
and 502/503/504; an appeal POST is retried too, which is safe because it carries an
Idempotency-Key. Anything else becomes a ``BackendError`` the actions turn into words.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import requests

from .explanations import explanation_problem
from .settings import ActionSettings

log = logging.getLogger("relend.actions.backend")

RETRYABLE_STATUS = {502, 503, 504}
DECISION_FIELDS = {"eligible": bool, "available_limit": (int, float), "total_limit": (int, float),
                   "currency": str, "decision_id": str, "reasons": list, "timezone": str}


class BackendError(Exception):
    """The service could not give a usable answer (down, slow, or nonsense)."""


class BorrowerUnknown(BackendError):
    """The service does not know this borrower (404)."""


class BackendRejected(BackendError):
    """The service refused the request with a 4xx and an error code."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.details = details


class EligibilityBackend:
    def __init__(self, config: ActionSettings, session: requests.Session | None = None) -> None:
        self.config = config
        self.http = session or requests.Session()

    def _request(self, method: str, path: str, *, json: Any = None,
                 headers: dict[str, str] | None = None, context: str = "") -> Any:
        url = f"{self.config.backend_url}{path}"
        all_headers = {"Authorization": f"Bearer {self.config.backend_token}", **(headers or {})}
        attempts = 1 + max(0, self.config.retries)
        last: Exception | None = None
        started = time.monotonic()
        for attempt in range(1, attempts + 1):
            # retry only quick failures: a slow one has used the borrower's patience already
            quick = time.monotonic() - started < self.config.read_timeout / 2
            try:
                response = self.http.request(
                    method, url, json=json, headers=all_headers,
                    timeout=(self.config.connect_timeout, self.config.read_timeout),
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = exc
                log.warning("backend %s %s failed (attempt %d/%d) [%s]: %s",
                            method, path, attempt, attempts, context, exc)
                if isinstance(exc, requests.ReadTimeout) or \
                        time.monotonic() - started >= self.config.read_timeout / 2:
                    break  # the budget is spent: do not make the borrower wait twice
                if attempt < attempts:  # no pause after the last attempt: nothing follows it
                    time.sleep(0.1 * attempt)
                continue
            if response.status_code in RETRYABLE_STATUS and attempt < attempts and quick \
                    and time.monotonic() - started < self.config.read_timeout / 2:
                log.warning("backend %s %s answered %d (attempt %d/%d) [%s]",
                            method, path, response.status_code, attempt, attempts, context)
                time.sleep(0.1 * attempt)
                continue
            return self._parse(response, method, path, context)
        raise BackendError(f"{method} {path} failed: {last}")

    @staticmethod
    def _parse(response: requests.Response, method: str, path: str, context: str) -> Any:
        try:
            body = response.json()
        except ValueError as exc:
            log.error("backend %s %s answered %d with non-JSON [%s]",
                      method, path, response.status_code, context)
            raise BackendError("non-JSON answer") from exc
        error = body.get("error") if isinstance(body, dict) else None
        if response.status_code == 404 and isinstance(error, dict) and \
                error.get("code") == "borrower_not_found":
            raise BorrowerUnknown(path)
        if 400 <= response.status_code < 500 and isinstance(body, dict) and "error" in body:
            error = body["error"] if isinstance(body["error"], dict) else {}
            raise BackendRejected(response.status_code, str(error.get("code", "unknown")),
                                  str(error.get("message", "")), error.get("details") or {})
        if response.status_code >= 300:
            log.error("backend %s %s answered %d [%s]", method, path, response.status_code, context)
            raise BackendError(f"status {response.status_code}")
        return body

    def eligibility(self, borrower_id: str, *, context: str = "") -> dict[str, Any]:
        body = self._request("GET", f"/v1/borrowers/{borrower_id}/eligibility", context=context)
        problem = decision_problem(body)
        if problem:
            log.error("backend returned a malformed decision [%s]: %s", context, problem)
            raise BackendError(f"malformed decision: {problem}")
        return body

    def file_appeal(self, *, borrower_id: str, decision_id: str, reason_code: str | None,
                    statement: str, idempotency_key: str, context: str = "") -> dict[str, Any]:
        payload = {"borrower_id": borrower_id, "decision_id": decision_id,
                   "statement": statement, "channel": "chat"}
        if reason_code:
            payload["reason_code"] = reason_code
        body = self._request("POST", "/v1/appeals", json=payload,
                             headers={"Idempotency-Key": idempotency_key}, context=context)
        if not isinstance(body, dict) or not isinstance(body.get("appeal_id"), str):
            log.error("backend returned a malformed appeal [%s]", context)
            raise BackendError("malformed appeal")
        return body

    def appeals(self, borrower_id: str, *, context: str = "") -> list[dict[str, Any]]:
        body = self._request("GET", f"/v1/borrowers/{borrower_id}/appeals", context=context)
        if not isinstance(body, dict) or not isinstance(body.get("appeals"), list) \
                or not all(isinstance(a, dict) for a in body["appeals"]):
            log.error("backend returned a malformed appeal list [%s]", context)
            raise BackendError("malformed appeal list")
        return body["appeals"]


def decision_problem(body: Any) -> str | None:
    """What is wrong with a decision body, or None if it can be explained safely."""
    if not isinstance(body, dict):
        return "not an object"
    for name, kind in DECISION_FIELDS.items():
        if not isinstance(body.get(name), kind):
            return f"field {name!r} missing or of the wrong type"
    for reason in body["reasons"]:
        if not isinstance(reason, dict) or not isinstance(reason.get("code"), str) \
                or not isinstance(reason.get("details"), dict):
            return "a reason without code or details"
    return explanation_problem(body)
