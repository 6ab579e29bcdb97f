"""HTTP client of the eligibility service: typed failures over the shared HTTP policy.

Timeouts and retries are those of ``actions.http`` (urllib3's ``Retry``): a request that could
not connect is tried again, and so is a 502/503/504 answer to a GET or to a POST, because
every POST this client sends carries an ``Idempotency-Key`` (the backend files an appeal once
per key). A read timeout is not retried. Anything that is not a usable answer becomes a
``BackendError`` the actions turn into words.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import requests

from .explanations import explanation_problem
from .http import ServiceClient
from .settings import ActionSettings

log = logging.getLogger("relend.actions.backend")

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


class EligibilityBackend(ServiceClient):
    idempotent_posts = True  # every POST carries an Idempotency-Key (checked in _request)

    def __init__(self, config: ActionSettings, session: requests.Session | None = None) -> None:
        super().__init__(config.backend_url, config.backend_token, config, session)

    def _request(self, method: str, path: str, *, json: Any = None,
                 headers: dict[str, str] | None = None, context: str = "") -> Any:
        if method == "POST" and "Idempotency-Key" not in (headers or {}):
            raise ValueError(f"POST {path} without an Idempotency-Key could be filed twice")
        try:
            response = self.request(method, path, json=json, headers=headers)
        except requests.RequestException as exc:
            log.warning("backend %s %s failed [%s]: %s", method, path, context, exc)
            raise BackendError(f"{method} {path} failed: {exc}") from exc
        return self._parse(response, method, path, context)

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

    def loans(self, borrower_id: str, *, limit: int = 20, context: str = "") -> dict[str, Any]:
        """The newest ``limit`` loans with their schedules (``GET .../loans``), checked."""
        return self._checked_list(f"/v1/borrowers/{borrower_id}/loans?limit={limit}",
                                  loans_problem, "loan", context)

    def repayments(self, borrower_id: str, *, limit: int = 5, context: str = ""
                   ) -> dict[str, Any]:
        """The newest ``limit`` repayments (``GET .../repayments``), checked."""
        return self._checked_list(f"/v1/borrowers/{borrower_id}/repayments?limit={limit}",
                                  repayments_problem, "repayment", context)

    def _checked_list(self, path: str, problem_of: Callable[[Any], str | None], what: str,
                      context: str) -> dict[str, Any]:
        body = self._request("GET", path, context=context)
        problem = problem_of(body)
        if problem:
            log.error("backend returned a malformed %s list [%s]: %s", what, context, problem)
            raise BackendError(f"malformed {what}s: {problem}")
        return body

    def set_reminders(self, borrower_id: str, *, enabled: bool, days_before: int | None = None,
                      context: str = "") -> dict[str, Any]:
        """Store the reminder choice (``PUT .../reminders``, idempotent); the stored setting."""
        payload: dict[str, Any] = {"enabled": enabled}
        if days_before is not None:
            payload["days_before"] = days_before
        body = self._request("PUT", f"/v1/borrowers/{borrower_id}/reminders", json=payload,
                             context=context)
        if not isinstance(body, dict) or not isinstance(body.get("enabled"), bool) \
                or type(body.get("days_before")) is not int:
            log.error("backend returned a malformed reminder setting [%s]", context)
            raise BackendError("malformed reminder setting")
        return body


LOAN_FIELDS = {"loan_id": str, "principal": (int, float), "outstanding_principal": (int, float),
               "remaining_to_repay": (int, float), "status": str, "opened_at": str,
               "instalments_total": int, "instalments_paid": int, "instalments": list}
INSTALMENT_FIELDS = {"number": int, "due_date": str, "amount": (int, float), "status": str}
REPAYMENT_FIELDS = {"repayment_id": str, "loan_id": str, "amount": (int, float), "paid_at": str,
                    "status": str}


def _fields_problem(item: Any, fields: dict[str, Any], what: str) -> str | None:
    if not isinstance(item, dict):
        return f"{what}: not an object"
    for name, kind in fields.items():
        value = item.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"{what}.{name}: missing or bad"
    return None


def _list_problem(body: Any, key: str) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get(key), list):
        return f"no {key} list"
    if not isinstance(body.get("timezone"), str) or not isinstance(body.get("total"), int):
        return "no timezone/total"
    return None


def loans_problem(body: Any) -> str | None:
    """What is wrong with a loan list, or None when every figure the actions show is there."""
    problem = _list_problem(body, "loans")
    for loan in [] if problem else body["loans"]:
        problem = problem or _fields_problem(loan, LOAN_FIELDS, "loan")
        for instalment in [] if problem else loan["instalments"]:
            problem = problem or _fields_problem(instalment, INSTALMENT_FIELDS, "instalment")
    return problem


def repayments_problem(body: Any) -> str | None:
    """What is wrong with a repayment list, or None."""
    problem = _list_problem(body, "repayments")
    for repayment in [] if problem else body["repayments"]:
        problem = problem or _fields_problem(repayment, REPAYMENT_FIELDS, "repayment")
    return problem


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
