"""What the bot does for each intent, as the borrower experiences it.

Strict intent accuracy punishes confusions that change nothing for the borrower (asking "why"
versus "when" both get their own decision explained). The route is what matters: explain the
decision, answer from the borrower's loan records (or set their reminders), start or report an
appeal, hand off to a person, troubleshoot the app, or something else (small talk, the
off-topic reply, a clarifying question). Kept in step with
``data/rules.yml`` by ``tests/unit/test_nlu_sets.py``.
"""

from __future__ import annotations

ROUTES = ("explain", "records", "appeal", "human", "app_error", "other")

ROUTE_OF_INTENT: dict[str, str] = {
    # action_explain_decision (disagreement: action_begin_appeal explains first, then offers
    # the appeal where the reason allows one)
    "cannot_borrow_after_repayment": "explain",
    "ask_limit_restore_time": "explain",
    "limit_reduced_or_closed": "explain",
    "ask_improve_eligibility": "explain",
    "ask_repayment_status": "explain",
    "disagree_with_decision": "explain",
    # action_answer_records / action_set_reminders: the borrower's loans, repayments and
    # reminder setting (an answer from records, not from the decision)
    "ask_repayment_history": "records",
    "ask_next_instalment": "records",
    "ask_loan_balance": "records",
    "turn_on_reminders": "records",
    "turn_off_reminders": "records",
    # action_begin_appeal / action_report_appeal_status
    "request_appeal": "appeal",
    "check_appeal_status": "appeal",
    "request_human": "human",
    "report_app_error": "app_error",
    # no diagnosis, no appeal, no handoff
    "out_of_scope": "other",
    "chitchat": "other",
    "greet": "other",
    "goodbye": "other",
    "thank": "other",
    "affirm": "other",
    "deny": "other",
    "cancel": "other",
    "bot_challenge": "other",
    "nlu_fallback": "other",
}


def route_of(intent: str) -> str:
    """The route for an intent name; unknown names count as "other"."""
    return ROUTE_OF_INTENT.get(intent, "other")
