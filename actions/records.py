"""Answer questions about the borrower's own loans and repayments from their records.

"下期还多少、哪天还" (``ask_next_instalment``), "这笔借款还剩多少" (``ask_loan_balance``) and
"我的还款记录" (``ask_repayment_history``) are answered by one action from the backend's
``GET /v1/borrowers/{id}/loans`` and ``/repayments`` (docs/backend.md, "Loans and
repayments"). Every figure and date in a reply is one the backend sent: the client refuses a
list without them (``actions.backend.loans_problem``), and then the borrower is told the records
cannot be reached, never given a guess. Dates are shown in the borrower's time zone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from common.moments import parse_moment

from .backend import BackendError, BorrowerUnknown
from .clock import utc_now
from .conversation import borrower_of, get_backend, lang_of, latest_intent, offer_events
from .formatting import day, money, when
from .texts import Button, button, guarded, say, text

log = logging.getLogger("relend.actions.records")

T = TypeVar("T")
LOANS_PAGE = 20  # the newest loans; a borrower with more open loans than this is not expected
HISTORY_SHOWN = 5  # repayments listed in one reply, newest first


class RecordsUnavailable(Exception):
    """The records could not be had; the borrower has been told, ``events`` record the offer."""

    def __init__(self, events: list[EventType]) -> None:
        super().__init__("records unavailable")
        self.events = events


async def call_backend(tracker: Tracker, dispatcher: CollectingDispatcher, what: str,
                       call: Callable[..., T], failed_key: str, **kwargs: Any) -> T:
    """``call(borrower_id, context=..., **kwargs)`` on the backend client for the borrower
    chatting, or ``RecordsUnavailable`` after telling them why there is no answer:
    no identity, an account the backend does not know, or no usable answer (``failed_key``)."""
    lang = lang_of(tracker)
    borrower_id = borrower_of(tracker)
    if borrower_id is None:
        say(dispatcher, "no_identity", lang)
        raise RecordsUnavailable(offer_events(None))
    context = f"conversation={tracker.sender_id} borrower={borrower_id}"
    try:
        return await asyncio.to_thread(call, borrower_id, context=context, **kwargs)
    except BorrowerUnknown:
        log.warning("borrower unknown to the backend (%s) [%s]", what, context)
        say(dispatcher, "account_not_found", lang)
        raise RecordsUnavailable(offer_events("human")) from None
    except BackendError as exc:
        log.error("%s unavailable [%s]: %s", what, context, exc)
        dispatcher.utter_message(text=text(failed_key, lang),
                                 buttons=[button("human", "/request_human", lang)])
        raise RecordsUnavailable(offer_events("human")) from exc


def _due(instalment: dict[str, Any]) -> datetime:
    return parse_moment(instalment["due_date"]) or utc_now()


def _last_due(loan: dict[str, Any]) -> str | None:
    dates = [i["due_date"] for i in loan["instalments"]]
    return max(dates, key=lambda d: parse_moment(d) or utc_now()) if dates else None


def next_instalment(loans: list[dict[str, Any]], lang: str, tz: str, now: datetime) -> list[str]:
    """What is overdue, what is posting, then the next instalment to pay (the earliest
    unpaid one of any open loan). Empty when an open loan has nothing left to pay."""
    lines: list[str] = []
    owed = [(loan, i) for loan in loans if loan["status"] == "open"
            for i in loan["instalments"] if i["status"] != "paid"]
    owed.sort(key=lambda pair: _due(pair[1]))
    for loan, instalment in owed:
        fields = {"number": instalment["number"], "amount": money(instalment["amount"], lang),
                  "principal": money(loan["principal"], lang)}
        if instalment["status"] == "overdue":
            days = instalment.get("days_late")
            due = when(instalment["due_date"], lang, tz, now, with_time=False)
            if days == 1:
                lines.append(text("records.next.overdue_one", lang, when=due, **fields))
            else:
                days = days if isinstance(days, int) and days > 0 else \
                    max(1, (now - _due(instalment)).days)
                lines.append(text("records.next.overdue", lang, when=due, days=days, **fields))
        elif instalment["status"] == "posting":
            lines.append(text("records.next.posting", lang, **fields))
    upcoming = next(((loan, i) for loan, i in owed if i["status"] == "unpaid"), None)
    if upcoming is not None:
        loan, instalment = upcoming
        lines.append(text("records.next.due", lang, amount=money(instalment["amount"], lang),
                          when=when(instalment["due_date"], lang, tz, now, with_time=False),
                          number=instalment["number"], count=loan["instalments_total"],
                          principal=money(loan["principal"], lang)))
    return lines


def balance(loans: list[dict[str, Any]], lang: str, tz: str, now: datetime) -> list[str]:
    """Per open loan: what is left to repay (principal and all), instalments left, last due."""
    open_loans = [loan for loan in loans if loan["status"] == "open"]
    lines = [text("records.balance.loan", lang, principal=money(loan["principal"], lang),
                  opened=day(loan["opened_at"], lang, tz, now),
                  remaining=money(loan["remaining_to_repay"], lang),
                  outstanding=money(loan["outstanding_principal"], lang),
                  left=loan["instalments_total"] - loan["instalments_paid"],
                  count=loan["instalments_total"], last=day(_last_due(loan), lang, tz, now))
             for loan in open_loans]
    if len(open_loans) > 1:
        total = round(sum(loan["remaining_to_repay"] for loan in open_loans), 2)
        lines.append(text("records.balance.total", lang, remaining=money(total, lang)))
    return lines


def history(body: dict[str, Any], lang: str, now: datetime) -> list[str]:
    """The newest repayments, one line each, with whether each has posted."""
    repayments, tz = body["repayments"], body["timezone"]
    if not repayments:
        return [text("records.history.none", lang)]
    lines = [text("records.history.intro", lang) if body["total"] <= len(repayments)
             else text("records.history.intro_some", lang, shown=len(repayments),
                       total=body["total"])]
    for repayment in repayments:
        if repayment["status"] == "posted":
            status = text("records.history.status.posted", lang)
        elif repayment.get("delayed"):
            status = text("records.history.status.delayed", lang)
        elif isinstance(repayment.get("expected_post_at"), str):
            status = text("records.history.status.posting", lang,
                          expected=when(repayment["expected_post_at"], lang, tz, now))
        else:
            status = text("records.history.status.posting_plain", lang)
        fields = {"day": day(repayment["paid_at"], lang, tz, now),
                  "amount": money(repayment["amount"], lang), "status": status}
        number = repayment.get("instalment_number")
        if isinstance(number, int):
            lines.append(text("records.history.instalment", lang, number=number, **fields))
        else:
            lines.append(text("records.history.early", lang, **fields))
    return lines


def _buttons(intent: str, lang: str) -> list[Button]:
    """Where to go next from this answer: the other records questions, and reminders."""
    if intent == "ask_next_instalment":
        return [button("reminders_on", "/turn_on_reminders", lang),
                button("records_balance", "/ask_loan_balance", lang)]
    if intent == "ask_loan_balance":
        return [button("records_next", "/ask_next_instalment", lang),
                button("records_history", "/ask_repayment_history", lang)]
    return [button("records_next", "/ask_next_instalment", lang),
            button("records_balance", "/ask_loan_balance", lang)]


class AnswerRecords(Action):
    """The next instalment, what is left to repay, or the latest repayments."""

    def name(self) -> str:
        return "action_answer_records"

    @guarded
    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> list[EventType]:
        lang, intent, now = lang_of(tracker), latest_intent(tracker), utc_now()
        backend = get_backend()
        try:
            if intent == "ask_repayment_history":
                body = await call_backend(tracker, dispatcher, "repayments", backend.repayments,
                                          "records.failed", limit=HISTORY_SHOWN)
                lines = history(body, lang, now)
            else:
                body = await call_backend(tracker, dispatcher, "loans", backend.loans,
                                          "records.failed", limit=LOANS_PAGE)
                lines = self._from_loans(intent, body, lang, now)
        except RecordsUnavailable as failure:
            return failure.events
        dispatcher.utter_message(text="\n".join(lines), buttons=_buttons(intent, lang))
        return offer_events(None)

    @staticmethod
    def _from_loans(intent: str, body: dict[str, Any], lang: str, now: datetime) -> list[str]:
        loans, tz = body["loans"], body["timezone"]
        if not loans:
            return [text("records.none", lang)]
        if not any(loan["status"] == "open" for loan in loans):
            return [text("records.all_repaid", lang)]
        if intent == "ask_loan_balance":
            return balance(loans, lang, tz, now)
        # the next instalment; an open loan with nothing left to pay by instalment (repaid
        # early, not yet closed) has no next instalment: what is left says it best
        return next_instalment(loans, lang, tz, now) or balance(loans, lang, tz, now)
