"""Turn an eligibility decision into what the borrower reads: specific, kind, in their language.

Pure functions (no I/O). ``explain`` is the entry point; each reason code has one describer
that returns the full sentence (when it is the main reason) and a one-line summary (when it is
a secondary one), plus the concrete next step. Only figures the backend gave are used: nothing
here promises a time or an outcome the decision does not contain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from common.moments import parse_moment

from . import language
from .clock import utc_now
from .formatting import day, duration, join, money, when
from .texts import TextError, button, text
from .visuals import situation, timeline

FOCUSES = ("explain", "restore_time", "improve", "reduced_or_closed", "repayment_status",
           "disagree")


@dataclass
class Ctx:
    lang: str
    tz: str
    now: datetime
    decision: dict[str, Any]

    def t(self, key: str, **fields: Any) -> str:
        """The catalog text ``explain.<key>`` in the borrower's language (texts/*.yml)."""
        return text(f"explain.{key}", self.lang, **fields)

    def money(self, amount: Any) -> str:
        return money(float(amount or 0), self.lang)

    def when(self, value: Any, *, with_time: bool = True) -> str:
        return when(value, self.lang, self.tz, self.now, with_time=with_time)

    def join(self, items: list[str]) -> str:
        return join(items, self.lang)

    @property
    def alone(self) -> bool:
        """Whether one reason at most blocks borrowing: only then may a step say "then you
        can borrow", since fixing one of several does not."""
        return sum(bool(r.get("blocking")) for r in self.decision.get("reasons", [])) <= 1

    def day(self, value: Any) -> str:
        """A date that follows a preposition: 'since 6 Feb', not 'since on 6 Feb'."""
        return day(value, self.lang, self.tz, self.now)

    def only_blocker(self, reason: dict[str, Any]) -> bool:
        """Whether ``reason`` is all that stops borrowing (so its end is when borrowing resumes)."""
        return bool(reason.get("blocking")) and not any(
            r.get("blocking") for r in self.decision.get("reasons", []) if r is not reason)


@dataclass
class Described:
    full: str
    short: str
    next_step: str | None = None


@dataclass
class Explanation:
    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)
    offer: str | None = None  # what the bot offered: "appeal", "human" or None
    primary_code: str | None = None
    # the picture sent with the text (Rasa's custom payload, common/situation.py), or None
    attachment: dict[str, Any] | None = None


def _repayment_posting(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    amount, expected = c.money(d.get("amount")), c.when(d.get("expected_post_at"))
    paid = c.when(d.get("paid_at"))
    if d.get("delayed"):
        full = c.t("posting.delayed", paid=paid, amount=amount, expected=expected)
        step = c.t("posting.delayed_step")
    else:
        eta = parse_moment(d.get("expected_post_at"))
        wait = c.t("posting.wait", duration=duration(eta - c.now, c.lang)) if eta else ""
        then = c.t("posting.then_borrow") if c.only_blocker(r) else ""
        full = c.t("posting.full", paid=paid, amount=amount, expected=expected, wait=wait,
                   then=then)
        step = c.t("posting.step", expected=expected)
    short = c.t("posting.short", amount=amount, expected=expected)
    return Described(full, short, step)


def _limit_in_use(r: dict[str, Any], c: Ctx) -> Described:
    d, dec = r["details"], c.decision
    loans = d.get("loans") or []
    in_use = c.money(d.get("amount_in_use"))
    available, minimum = c.money(dec.get("available_limit")), c.money(dec.get("min_drawdown"))
    if loans:
        loan = loans[0]
        about = c.t("in_use.loan", loan_id=loan.get("loan_id"), paid=loan.get("instalments_paid"),
                    total=loan.get("instalments_total"),
                    outstanding=c.money(loan.get("outstanding")))
    else:
        about = c.t("in_use.no_loan", in_use=in_use)
    full = c.t("in_use.blocking" if r.get("blocking") else "in_use.full", loan=about,
               available=available, minimum=minimum)
    return Described(full, c.t("in_use.short", in_use=in_use), c.t("in_use.step"))


def _open_loans_cap(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    n, cap = d.get("open_loans"), d.get("max_open_loans")
    return Described(c.t("loan_cap.full", n=n, cap=cap), c.t("loan_cap.short", n=n, cap=cap),
                     c.t("loan_cap.step"))


def _risk_review(r: dict[str, Any], c: Ctx) -> Described:
    reviewed = c.when(r["details"].get("reviewed_at"), with_time=False)
    nxt = r.get("next_review_at")
    again = c.t("risk_review.again", next=c.when(nxt, with_time=False)) if nxt else ""
    return Described(c.t("risk_review.full", reviewed=reviewed, again=again),
                     c.t("risk_review.short"), c.t("risk_review.step"))


def _risk_policy(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    until = d.get("effective_until")
    lasts = c.t("policy.until", until=c.day(until)) if until else ""
    full = c.t("policy.full", since=c.day(d.get("effective_from")), until=lasts)
    return Described(full, c.t("policy.short"),
                     c.t("policy.step_until" if until else "policy.step_open"))


# the fields of each credit-score factor's text (explain.score.factor.<code>)
_FACTOR_FIELDS: dict[str, Callable[[dict[str, Any], Ctx], dict[str, Any]]] = {
    "RECENT_OVERDUE_ELSEWHERE": lambda f, c: {"last": c.day(f.get("last_at")),
                                              "count": f.get("count")},
    "FREQUENT_APPLICATIONS": lambda f, c: {"count": f.get("count"),
                                           "window_days": f.get("window_days")},
    "HIGH_DEBT_RATIO": lambda f, c: {"percent": round(float(f.get("ratio", 0)) * 100)},
    "LONG_INACTIVITY": lambda f, c: {"inactive_days": f.get("inactive_days")},
}
# the fields of each self-service step's text (explain.score.self_service.<action>)
_STEP_FIELDS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "avoid_new_credit_applications": lambda s: {"days": s.get("days", 30)},
    "reduce_debt": lambda s: {},
    "use_line_regularly": lambda s: {},
}


def _credit_score(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    before, after, threshold = d.get("score_before"), d.get("score_after"), d.get("threshold")
    factors = [c.t(_factor_key(f), **_FACTOR_FIELDS[f["factor"]](f, c))
               for f in d.get("factors", []) if f.get("factor") in _FACTOR_FIELDS]
    dropped = before is not None and before > after
    head = c.t("score.dropped" if dropped else "score.low", before=before, after=after,
               threshold=threshold)
    why = c.t("score.why", factors=c.join(factors)) if factors else c.t("score.why_unknown")
    steps = [c.t(f"score.self_service.{s['action']}", **_STEP_FIELDS[s["action"]](s))
             for s in r.get("self_service", []) if s.get("action") in _STEP_FIELDS]
    nxt = r.get("next_review_at")
    refresh = c.t("score.refresh", next=c.when(nxt, with_time=False)) if nxt else ""
    step = (c.t("score.steps", steps=_capital(c.join(steps)), refresh=refresh) if steps
            else c.t("score.step_default", refresh=refresh))
    return Described(head + why, c.t("score.short", after=after, threshold=threshold), step)


# factors whose text counts something: a count of one has its own wording ("a late payment")
_COUNTED_FACTORS = ("RECENT_OVERDUE_ELSEWHERE", "FREQUENT_APPLICATIONS")


def _factor_key(factor: dict[str, Any]) -> str:
    one = factor["factor"] in _COUNTED_FACTORS and factor.get("count") == 1
    return f"score.factor.{factor['factor']}{'_one' if one else ''}"


def _capital(words: str) -> str:
    return words[:1].upper() + words[1:]


def _overdue(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    due = c.when(d.get("due_date"), with_time=False)
    if d.get("cleared"):
        until = c.day(d.get("cooling_off_until"))
        # with other reasons blocking too, its end is only the earliest borrowing can resume
        then = c.t("overdue.then_alone" if c.only_blocker(r) else "overdue.then_not_alone",
                   until=until)
        full = c.t("overdue.cleared", due=due, days=d.get("days_overdue"),
                   cleared=c.when(d.get("cleared_at"), with_time=False),
                   cooling_off_days=d.get("cooling_off_days"), then=then)
        # "try again after" is a promise only when nothing else blocks
        step = c.t("overdue.cleared_step" if c.only_blocker(r)
                   else "overdue.cleared_step_not_alone", until=until)
        return Described(full, c.t("overdue.cleared_short", until=until), step)
    amount = c.money(d.get("amount"))
    return Described(c.t("overdue.unpaid", amount=amount, due=due),
                     c.t("overdue.unpaid_short", amount=amount), c.t("overdue.unpaid_step"))


def _identity(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    problem = d.get("problem")
    if problem == "expired":
        full = c.t("identity.expired", expired=c.when(d.get("expired_on"), with_time=False))
    elif problem == "stale":
        full = c.t("identity.stale", verified=c.when(d.get("verified_at"), with_time=False))
    else:
        full = c.t("identity.missing")
    end = c.t("identity.step_end_alone" if c.alone else "identity.step_end")
    return Described(full, c.t("identity.short"), c.t("identity.step", end=end))


def _compliance(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    nxt = r.get("next_review_at")
    eta = c.t("compliance.eta", next=c.when(nxt, with_time=False)) if nxt else ""
    if d.get("kind") == "regulatory":
        full = c.t("compliance.regulatory", placed=c.when(d.get("placed_at"), with_time=False),
                   eta=eta)
    else:
        full = c.t("compliance.security", since=c.day(d.get("placed_at")), eta=eta)
    return Described(full, c.t("compliance.short"), c.t("compliance.step"))


def _funding(r: dict[str, Any], c: Ctx) -> Described:
    reopens = c.when(r["details"].get("reopens_at") or r.get("retry_after"))
    return Described(c.t("funding.full", reopens=reopens), c.t("funding.short", reopens=reopens),
                     c.t("try_after", at=reopens))


def _incident(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    end = d.get("expected_end_at")
    what = c.t("incident.maintenance" if d.get("kind") == "maintenance" else "incident.fault")
    eta = c.t("incident.eta", end=c.when(end)) if end else c.t("incident.eta_unknown")
    incident_id = d.get("incident_id")
    step = c.t("try_after", at=c.when(end)) if end else c.t("incident.step_unknown")
    return Described(c.t("incident.full", what=what, incident_id=incident_id, eta=eta),
                     c.t("incident.short", what=what, incident_id=incident_id), step)


# closing and reduction reasons the catalog can name (explain.closed.why.*, explain.reduced.why.*)
CLOSED_WHY = ("long_inactivity", "risk_review", "fraud")
REDUCED_WHY = ("periodic_review", "overdue", "appeal_upheld")


def _line_closed(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    reason = d.get("closed_reason")
    closed = c.when(d.get("closed_at"), with_time=False)
    step: str | None
    if reason == "no_line":
        full, step = c.t("closed.no_line"), c.t("closed.no_line_step")
    elif reason == "borrower_request":
        full, step = c.t("closed.by_request", closed=closed), c.t("closed.by_request_step")
    else:
        because = c.t("closed.because", why=c.t(f"closed.why.{reason}")) \
            if reason in CLOSED_WHY else ""
        full = c.t("closed.full", closed=closed, because=because,
                   limit=c.money(d.get("limit_before_closing")))
        step = None
    return Described(full, c.t("closed.short"), step)


def _limit_reduced(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    reason = d.get("change_reason")
    because = c.t("reduced.because", why=c.t(f"reduced.why.{reason}")) \
        if reason in REDUCED_WHY else ""
    previous, new = c.money(d.get("previous_limit")), c.money(d.get("new_limit"))
    reduced = c.when(d.get("reduced_at"), with_time=False)
    if c.decision.get("eligible"):  # the reply has just said what is available
        full = c.t("reduced.note", reduced=reduced, previous=previous, new=new, because=because)
    else:
        full = c.t("reduced.full", reduced=reduced, previous=previous, new=new,
                   because=because, available=c.money(c.decision.get("available_limit")))
    return Described(full, c.t("reduced.short", previous=previous, new=new),
                     c.t("reduced.step"))


DESCRIBERS: dict[str, Callable[[dict[str, Any], Ctx], Described]] = {
    "REPAYMENT_POSTING": _repayment_posting,
    "LIMIT_IN_USE": _limit_in_use,
    "OPEN_LOANS_CAP_REACHED": _open_loans_cap,
    "RISK_REVIEW_NOT_PASSED": _risk_review,
    "RISK_POLICY_TIGHTENED": _risk_policy,
    "CREDIT_SCORE_DROPPED": _credit_score,
    "OVERDUE_COOLING_OFF": _overdue,
    "IDENTITY_VERIFICATION_REQUIRED": _identity,
    "COMPLIANCE_HOLD": _compliance,
    "FUNDING_QUOTA_EXHAUSTED": _funding,
    "SYSTEM_INCIDENT": _incident,
    "CREDIT_LINE_CLOSED": _line_closed,
    "LIMIT_REDUCED": _limit_reduced,
}
# reasons a person must handle: the bot offers a colleague rather than an appeal
HUMAN_REASONS = {"COMPLIANCE_HOLD"}
# reasons whose step the borrower can take now, whatever the main reason: named after the
# main step when they also block (repaying early frees limit even during a cooling-off)
STEP_NOW_REASONS = ("LIMIT_IN_USE",)
# an appeal in these states is still being looked at (the backend's appeal statuses)
OPEN_APPEAL = ("submitted", "in_review")
APPEAL_STATUSES = (*OPEN_APPEAL, "upheld", "rejected")  # each has appeal.status_name.<status>
# answers about *when* carry a picture of the window and the limit (actions/visuals.py)
VISUAL_FOCUSES = ("restore_time", "repayment_status")
# the "why can't I borrow" answer carries it too, when its main reason has a window with both
# ends (a window is what the borrower waits out; without one, the text is enough)
WHY_FOCUS = "explain"


def _known(decision: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in decision.get("reasons", []) if r.get("code") in DESCRIBERS]


def _eligible_text(c: Ctx) -> str:
    d = c.decision
    return c.t("eligible", available=c.money(d.get("available_limit")),
               total=c.money(d.get("total_limit")))


def _unexplained_text(c: Ctx) -> str:
    """Not eligible, yet no reason this assistant can put into words: say only what is known."""
    d = c.decision
    available, minimum = float(d.get("available_limit") or 0), d.get("min_drawdown")
    if isinstance(minimum, (int, float)) and available < minimum:
        return c.t("unexplained_below_minimum", available=c.money(available),
                   minimum=c.money(minimum))
    return c.t("unexplained")


def _restore_time(primary: dict[str, Any], c: Ctx) -> str:
    at = primary.get("retry_after") or primary.get("next_review_at")
    if primary.get("code") == "OVERDUE_COOLING_OFF":
        at = primary["details"].get("cooling_off_until")
    return c.t("restore_at", at=c.when(at)) if at else c.t("restore_unknown")


def explain(decision: dict[str, Any], *, lang: str, now: datetime, focus: str = "explain",
            product_note: str | None = None,
            appeals: Sequence[dict[str, Any]] = ()) -> Explanation:
    """The reply to an eligibility question, built only from ``decision`` and, where the
    borrower already appealed it (``appeals``: the borrower's appeals, from the backend; see
    :func:`appeal_on`), that appeal instead of a new offer."""
    c = Ctx(lang=lang, tz=decision.get("timezone") or "Asia/Shanghai", now=now,
            decision=decision)
    reasons = _known(decision)
    blocking = [r for r in reasons if r.get("blocking")]
    lines: list[str] = [product_note] if product_note else []
    if not decision.get("eligible") and not blocking:
        lines.append(_unexplained_text(c))
        return Explanation("\n".join(lines), buttons=[_button(c, "human")], offer="human")
    if decision.get("eligible") or not blocking:
        if focus == "reduced_or_closed" and not any(
                r["code"] in ("LIMIT_REDUCED", "CREDIT_LINE_CLOSED") for r in reasons):
            lines.append(c.t("not_reduced"))
        if focus == "repayment_status" and not any(
                r["code"] == "REPAYMENT_POSTING" for r in reasons):
            lines.append(c.t("all_posted"))
        lines.append(_eligible_text(c))
        notes = [DESCRIBERS[r["code"]](r, c).full for r in reasons
                 if r["code"] in ("LIMIT_REDUCED", "REPAYMENT_POSTING")]
        lines += notes
        posting = next((r for r in reasons if r["code"] == "REPAYMENT_POSTING"), None)
        return Explanation("\n".join(lines), primary_code=None,
                           attachment=_picture(c, posting, focus))

    primary = _pick_primary(blocking, reasons, focus)
    described = DESCRIBERS[primary["code"]](primary, c)
    others = [r for r in reasons if r is not primary and r.get("blocking")][:2]
    if focus == "restore_time":
        lines.append(_restore_time(primary, c))
    # (for a closed line the decision says nothing about repayments: claim nothing)
    if focus == "repayment_status" and primary["code"] not in ("REPAYMENT_POSTING",
                                                               "CREDIT_LINE_CLOSED"):
        lines.append(c.t("all_posted_but"))
    if focus == "reduced_or_closed" and primary["code"] not in ("LIMIT_REDUCED",
                                                                 "CREDIT_LINE_CLOSED"):
        lines.append(c.t("not_reduced_but"))
    lines.append(described.full)
    if others:
        extra = [DESCRIBERS[r["code"]](r, c).short for r in others]
        lines.append(c.t("also", others=c.join(extra)))
    step = described.next_step
    if focus == "improve":
        steps = [s for s in (DESCRIBERS[r["code"]](r, c).next_step for r in [primary, *others])
                 if s]
        if steps:
            lines.append(c.t("what_you_can_do"))
            lines += [f"{i}. {s}" for i, s in enumerate(steps, 1)]
    elif step:
        also_now = [DESCRIBERS[r["code"]](r, c).next_step for r in others
                    if r["code"] in STEP_NOW_REASONS]
        gap = text("fmt.list.sentences", c.lang)
        lines.append(c.t("next_step", step=gap.join([step, *filter(None, also_now)])))

    explanation = Explanation("", primary_code=primary["code"],
                              attachment=_picture(c, primary, focus, blocked=True))
    if primary["code"] in HUMAN_REASONS:
        explanation.offer = "human"
        explanation.buttons = [_button(c, "human")]
    elif primary.get("appealable") and (filed := appeal_on(decision, primary, appeals)):
        if filed.get("status") in OPEN_APPEAL:
            lines.append(c.t("under_review", appeal_id=filed.get("appeal_id"),
                             respond_by=c.when(filed.get("respond_by"))))
        elif filed.get("status") == "rejected":
            # this very decision was reviewed already: a person, not the same appeal again
            lines.append(c.t("appealed_rejected", appeal_id=filed.get("appeal_id"),
                             note=filed.get("resolution_note")
                             or text("appeal.status.rejected_no_note", c.lang)))
            explanation.offer = "human"
            explanation.buttons = [_button(c, "human")]
        else:
            lines.append(c.t("appealed_before", appeal_id=filed.get("appeal_id"),
                             status=_status_name(filed.get("status"), c.lang)))
    elif primary.get("appealable"):
        lines.append(c.t("offer_appeal"))
        explanation.offer = "appeal"
        explanation.buttons = [_button(c, "appeal"), _button(c, "human")]
    explanation.text = "\n".join(lines)
    return explanation


def _picture(c: Ctx, reason: dict[str, Any] | None, focus: str, *, blocked: bool = False
             ) -> dict[str, Any] | None:
    """``blocked``: ``reason`` is the main reason the borrower cannot borrow now."""
    why = blocked and focus == WHY_FOCUS and timeline(reason) is not None
    if focus not in VISUAL_FOCUSES and not why:
        return None
    return situation(c.decision, reason, lang=c.lang, now=c.now)


def appeal_on(decision: dict[str, Any], reason: dict[str, Any],
              appeals: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The appeal among ``appeals`` that already covers ``reason`` of ``decision``, whatever
    conversation or channel filed it: one filed against this decision on this reason (any
    status: this decision was appealed), else one still open on this reason against an older
    decision (the backend keeps one open appeal per reason and would refuse a second). An
    appeal an older decision had decided does not count: the new decision may be appealed."""
    on_reason = [a for a in appeals
                 if isinstance(a, dict) and a.get("reason_code") == reason.get("code")]
    this = [a for a in on_reason if decision.get("decision_id")
            and a.get("decision_id") == decision.get("decision_id")]
    return next(iter(this), None) or next(
        (a for a in on_reason if a.get("status") in OPEN_APPEAL), None)


def _status_name(status: Any, lang: str) -> str:
    """An appeal status in words (``appeal.status_name.*``), else the status as it is."""
    return text(f"appeal.status_name.{status}", lang) if status in APPEAL_STATUSES \
        else str(status)


def _pick_primary(blocking: list[dict[str, Any]], reasons: list[dict[str, Any]],
                  focus: str) -> dict[str, Any]:
    """The decision's own order, except a follow-up about a specific topic leads with it."""
    topical = {"reduced_or_closed": ("CREDIT_LINE_CLOSED", "LIMIT_REDUCED"),
               "repayment_status": ("REPAYMENT_POSTING",)}.get(focus, ())
    for reason in reasons:
        if reason["code"] in topical and (reason.get("blocking") or focus != "explain"):
            return reason
    return blocking[0]


def _button(c: Ctx, kind: str) -> dict[str, str]:
    if kind == "appeal":
        return button("appeal", "/request_appeal", c.lang)
    return button("human", "/request_human", c.lang)


def appealable_reason(decision: dict[str, Any]) -> dict[str, Any] | None:
    for reason in decision.get("reasons", []):
        if reason.get("appealable"):
            return reason
    return None


def explanation_problem(decision: dict[str, Any]) -> str | None:
    """Why ``decision`` cannot be put into words (say, a figure of the wrong type), or None.

    A broken text in the catalog is not a problem of the decision: its ``TextError`` is
    raised as it is, for the caller to report as a text error (see ``current_decision``).
    """
    now = utc_now()
    try:
        for lang in language.SUPPORTED:
            for focus in FOCUSES:
                explain(decision, lang=lang, now=now, focus=focus)
            for reason in _known(decision):
                describe_reason(reason, decision, lang=lang, now=now)
    except TextError:
        raise
    except Exception as exc:  # whatever breaks here would break the reply
        return f"{type(exc).__name__}: {exc}"
    return None


def describe_reason(reason: dict[str, Any], decision: dict[str, Any], *, lang: str,
                    now: datetime) -> str:
    """A one-line summary of one reason, for confirmations and agents' context."""
    c = Ctx(lang=lang, tz=decision.get("timezone") or "Asia/Shanghai", now=now,
            decision=decision)
    describer = DESCRIBERS.get(reason.get("code", ""))
    return describer(reason, c).short if describer else reason.get("code", "")
