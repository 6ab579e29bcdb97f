"""Turn an eligibility decision into what the borrower reads: specific, kind, in their language.

Pure functions (no I/O). ``explain`` is the entry point; each reason code has one describer
that returns the full sentence (when it is the main reason) and a one-line summary (when it is
a secondary one), plus the concrete next step. Only figures the backend gave are used: nothing
here promises a time or an outcome the decision does not contain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .formatting import duration, join, money, parse_time, when

FOCUSES = ("explain", "restore_time", "improve", "reduced_or_closed", "repayment_status",
           "disagree")


@dataclass
class Ctx:
    lang: str
    tz: str
    now: datetime
    decision: dict[str, Any]

    def t(self, zh: str, en: str) -> str:
        return zh if self.lang == "zh" else en

    def money(self, amount: Any) -> str:
        return money(float(amount or 0), self.lang)

    def when(self, value: Any, *, with_time: bool = True) -> str:
        return when(value, self.lang, self.tz, self.now, with_time=with_time)

    @property
    def alone(self) -> bool:
        """Whether one reason at most blocks borrowing: only then may a step say "then you
        can borrow", since fixing one of several does not."""
        return sum(bool(r.get("blocking")) for r in self.decision.get("reasons", [])) <= 1

    def day(self, value: Any) -> str:
        """A date that follows a preposition: 'since 6 Feb', not 'since on 6 Feb'."""
        return self.when(value, with_time=False).removeprefix("on ")

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


def _repayment_posting(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    amount, expected = c.money(d.get("amount")), d.get("expected_post_at")
    paid = c.when(d.get("paid_at"))
    if d.get("delayed"):
        full = c.t(
            f"我们已经收到您{paid}的还款{amount}，入账比预计的（{c.when(expected)}）慢了一些，"
            "正在处理中；入账后额度会自动恢复。",
            f"We received your repayment of {amount} ({paid}). Posting is taking longer than "
            f"expected ({c.when(expected)}); it is being processed and your limit comes back "
            "automatically once it posts.")
        step = c.t("您不需要再做什么。如果一小时后仍未恢复，我可以为您转人工核查。",
                   "Nothing to do on your side. If it hasn't come back within an hour, "
                   "I can pass this to a colleague to check.")
    else:
        eta = parse_time(expected)
        wait = f"（{duration(eta - c.now, 'zh')}后）" if eta and c.lang == "zh" else ""
        wait_en = f" (in {duration(eta - c.now, 'en')})" if eta else ""
        alone = c.only_blocker(r)
        full = c.t(
            f"我们已经收到您{paid}的还款{amount}，目前正在入账，预计{c.when(expected)}{wait}"
            f"入账并恢复这部分额度{'，之后就可以再借了' if alone else ''}。",
            f"We received your repayment of {amount} ({paid}). It is still posting and should "
            f"restore that part of your limit {c.when(expected)}{wait_en}"
            f"{'; you can borrow again after that' if alone else ''}.")
        step = c.t(f"您不需要做任何操作，{c.when(expected)}之后再试就可以。",
                   f"Nothing to do on your side — just try again after {c.when(expected)}.")
    short = c.t(f"您的还款{amount}还在入账中，预计{c.when(expected)}恢复这部分额度",
                f"your repayment of {amount} is still posting (expected {c.when(expected)})")
    return Described(full, short, step)


def _limit_in_use(r: dict[str, Any], c: Ctx) -> Described:
    d, dec = r["details"], c.decision
    loans = d.get("loans") or []
    in_use = c.money(d.get("amount_in_use"))
    available, minimum = c.money(dec.get("available_limit")), c.money(dec.get("min_drawdown"))
    if loans:
        loan = loans[0]
        paid, total = loan.get("instalments_paid"), loan.get("instalments_total")
        outstanding = c.money(loan.get("outstanding"))
        loan_zh = f"您的借款（{loan.get('loan_id')}）已还{paid}/{total}期，还剩{outstanding}未还"
        loan_en = (f"Your loan {loan.get('loan_id')} has {paid} of {total} instalments paid "
                   f"and {outstanding} still to repay")
    else:
        loan_zh, loan_en = f"您还有{in_use}借款未还清", f"You still have {in_use} outstanding"
    if r.get("blocking"):
        full = c.t(
            f"{loan_zh}。还一期只会恢复这一期对应的额度，未还部分仍占用额度，"
            f"所以目前可借只有{available}，低于单笔最低借款{minimum}。",
            f"{loan_en}. Paying an instalment frees only that instalment's share; the rest "
            f"still uses your limit, so {available} is available now — below the minimum "
            f"loan of {minimum}.")
    else:
        full = c.t(f"{loan_zh}，这部分仍占用额度，所以可借额度是{available}。",
                   f"{loan_en}; that amount still uses your limit, so {available} is "
                   "available now.")
    short = c.t(f"未还清的借款仍占用{in_use}额度", f"{in_use} is still in use by open loans")
    step = c.t("提前还清部分或全部借款后，入账即恢复对应额度。",
               "Repaying part or all of the loan early frees that amount once it posts.")
    return Described(full, short, step)


def _open_loans_cap(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    n, cap = d.get("open_loans"), d.get("max_open_loans")
    full = c.t(f"您目前有{n}笔借款未还清，已经达到同时在借{cap}笔的上限。",
               f"You have {n} loans open, which is the most you can have at once ({cap}).")
    short = c.t(f"在借笔数已达上限（{n}/{cap}）", f"the open-loan limit is reached ({n}/{cap})")
    step = c.t("还清其中任意一笔后，就可以再借新的一笔。",
               "Once any one of them is fully repaid, you can take a new loan.")
    return Described(full, short, step)


def _risk_review(r: dict[str, Any], c: Ctx) -> Described:
    reviewed = c.when(r["details"].get("reviewed_at"), with_time=False)
    nxt = r.get("next_review_at")
    again_zh = f"下一次评估预计在{c.when(nxt, with_time=False)}。" if nxt else ""
    again_en = f" The next review is planned {c.when(nxt, with_time=False)}." if nxt else ""
    full = c.t(f"您的账户在{reviewed}的定期综合评估中暂未通过，所以暂时无法借款。{again_zh}",
               f"Your account didn't pass its periodic review {reviewed}, so borrowing is "
               f"paused for now.{again_en}")
    short = c.t("定期综合评估暂未通过", "the periodic review was not passed")
    step = c.t("保持按时还款、近期减少其他借贷申请，有助于下次评估。",
               "Keeping repayments on time and avoiding new credit applications helps at the "
               "next review.")
    return Described(full, short, step)


def _risk_policy(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    since = c.day(d.get("effective_from"))
    until = d.get("effective_until")
    until_zh = f"，预计持续到{c.day(until)}" if until else ""
    until_en = f" It is expected to last until {c.day(until)}." if until else ""
    full = c.t(f"自{since}起，我们对包括您在内的一部分客户临时收紧了借款审核{until_zh}。"
               "这与您个人的还款表现无关。",
               f"Since {since}, lending criteria have been temporarily tightened for a group of "
               f"customers that includes you.{until_en} This isn't about how you have repaid.")
    short = c.t("部分客户的借款审核临时收紧", "lending criteria are temporarily tightened")
    step = c.t(f"{'到期后' if until else '政策调整后'}可以再试；在此期间按时还款会保留良好记录。",
               "You can try again when it ends; repaying on time meanwhile keeps your record "
               "strong.")
    return Described(full, short, step)


_FACTOR_TEXT: dict[str, Callable[[dict[str, Any], Ctx], str]] = {
    "RECENT_OVERDUE_ELSEWHERE": lambda f, c: c.t(
        f"{c.when(f.get('last_at'), with_time=False)}在其他机构有{f.get('count')}笔逾期记录",
        f"{f.get('count')} late payment(s) with another lender "
        f"(latest {c.day(f.get('last_at'))})"),
    "FREQUENT_APPLICATIONS": lambda f, c: c.t(
        f"近{f.get('window_days')}天有{f.get('count')}次借贷申请或征信查询",
        f"{f.get('count')} credit applications or checks in the last {f.get('window_days')} days"),
    "HIGH_DEBT_RATIO": lambda f, c: c.t(
        f"负债率偏高（约{round(float(f.get('ratio', 0)) * 100)}%）",
        f"a high debt ratio (about {round(float(f.get('ratio', 0)) * 100)}%)"),
    "LONG_INACTIVITY": lambda f, c: c.t(
        f"账户已有{f.get('inactive_days')}天没有使用",
        f"no borrowing for {f.get('inactive_days')} days"),
}

_STEP_TEXT: dict[str, Callable[[dict[str, Any], Ctx], str]] = {
    "avoid_new_credit_applications": lambda s, c: c.t(
        f"接下来{s.get('days', 30)}天尽量不要新申请贷款或信用卡",
        f"avoid new loan or card applications for the next {s.get('days', 30)} days"),
    "reduce_debt": lambda s, c: c.t("逐步降低整体负债", "bring your overall debt down"),
    "use_line_regularly": lambda s, c: c.t("恢复后适度使用并按时还款",
                                           "use the line now and then and repay on time"),
}


def _credit_score(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    before, after, threshold = d.get("score_before"), d.get("score_after"), d.get("threshold")
    factors = [_FACTOR_TEXT[f["factor"]](f, c) for f in d.get("factors", [])
               if f.get("factor") in _FACTOR_TEXT]
    if before is not None and before > after:
        head = c.t(f"您的信用评分从{before}降到了{after}（借款需要{threshold}分及以上）",
                   f"Your credit score fell from {before} to {after} (borrowing needs "
                   f"{threshold} or more)")
    else:
        head = c.t(f"您的信用评分目前是{after}，低于借款所需的{threshold}分",
                   f"Your credit score is {after}, below the {threshold} needed to borrow")
    why = c.t(f"，主要因为：{join(factors, 'zh')}。", f", mainly because of {join(factors, 'en')}.") \
        if factors else c.t("。", ".")
    full = head + why
    short = c.t(f"信用评分降到了{after}", f"your credit score is {after}")
    steps = [_STEP_TEXT[s["action"]](s, c) for s in r.get("self_service", [])
             if s.get("action") in _STEP_TEXT]
    nxt = r.get("next_review_at")
    refresh = c.t(f"评分预计{c.when(nxt, with_time=False)}更新。" if nxt else "",
                  f" Your score is next updated {c.when(nxt, with_time=False)}." if nxt else "")
    step = c.t(f"{join(steps, 'zh')}。{refresh}" if steps else f"按时还款会逐步提升评分。{refresh}",
               (f"{_capital(join(steps, 'en'))}.{refresh}" if steps
                else f"Repaying on time raises it over time.{refresh}"))
    return Described(full, short, step)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _overdue(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    due = c.when(d.get("due_date"), with_time=False)
    if d.get("cleared"):
        until = c.day(d.get("cooling_off_until"))
        # with other reasons blocking too, its end is only the earliest borrowing can resume
        alone = c.only_blocker(r)
        full = c.t(
            f"您在{due}到期的一期还款逾期了{d.get('days_overdue')}天"
            f"（已于{c.when(d.get('cleared_at'), with_time=False)}还清）。按规则，"
            f"逾期还清后有{d.get('cooling_off_days')}天的观察期，"
            f"{f'{until}之后可以重新借款' if alone else f'{until}之前不能重新借款'}。",
            f"An instalment due {due} was paid {d.get('days_overdue')} days late (settled "
            f"{c.when(d.get('cleared_at'), with_time=False)}). After a late payment there is a "
            f"{d.get('cooling_off_days')}-day cooling-off period, so "
            f"{f'you can borrow again after {until}' if alone else f'you cannot borrow again before {until}'}.")
        short = c.t(f"逾期还款后的观察期（到{until}）",
                    f"a cooling-off period after a late payment (until {until})")
        step = c.t(f"{until}之后再试；期间按时还款即可。",
                   f"Try again after {until}; keep other repayments on time meanwhile.")
    else:
        amount = c.money(d.get("amount"))
        full = c.t(f"您有一期{amount}的还款（{due}到期）还没有还上，需要先还清逾期部分才能再借款。",
                   f"An instalment of {amount} due {due} is still unpaid; it needs to be repaid "
                   "before you can borrow again.")
        short = c.t(f"有{amount}逾期未还", f"{amount} is overdue")
        step = c.t("在App的「还款」页面还清逾期金额，入账后观察期开始计算。",
                   "Repay the overdue amount on the Repay page of the app; the cooling-off "
                   "period starts once it posts.")
    return Described(full, short, step)


def _identity(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    problem = d.get("problem")
    if problem == "expired":
        full = c.t(f"您登记的身份证已于{c.when(d.get('expired_on'), with_time=False)}过期，"
                   "需要更新后才能借款。",
                   f"The ID card on your account expired {c.when(d.get('expired_on'), with_time=False)}"
                   "; it needs updating before you can borrow.")
    elif problem == "stale":
        full = c.t(f"您的实名信息是{c.when(d.get('verified_at'), with_time=False)}认证的，"
                   "已超过3年，需要重新认证后才能借款。",
                   f"Your identity was last verified {c.when(d.get('verified_at'), with_time=False)}"
                   ", more than 3 years ago; it needs re-verifying before you can borrow.")
    else:
        full = c.t("您的账户还没有完成实名认证，认证后才能借款。",
                   "Your account hasn't completed identity verification yet, which borrowing "
                   "needs.")
    short = c.t("身份信息需要更新", "your ID details need updating")
    step = c.t("在App里打开「我的 › 设置 › 身份信息」，按提示上传新的身份证并完成人脸验证，"
               "一般几分钟就好" + ("，完成后马上可以再试。" if c.alone else "。"),
               "In the app, open Me › Settings › Identity, upload your current ID and complete "
               "the face check. It usually takes a few minutes"
               + ("; you can try again right after." if c.alone else "."))
    return Described(full, short, step)


def _compliance(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    placed = c.when(d.get("placed_at"), with_time=False)
    since = c.day(d.get("placed_at"))
    nxt = r.get("next_review_at")
    eta_zh = f"，预计{c.when(nxt, with_time=False)}前完成" if nxt else ""
    eta_en = f" It is expected to finish {c.when(nxt, with_time=False)}." if nxt else ""
    if d.get("kind") == "regulatory":
        full = c.t(f"按监管要求，您的账户自{placed}起需要完成一项合规核查{eta_zh}，核查期间暂停借款。",
                   f"A regulatory check on your account started {placed}; borrowing is paused "
                   f"while it runs.{eta_en}")
    else:
        full = c.t(f"为了保护您的账户和资金安全，您的账户自{placed}起在做安全核查{eta_zh}，"
                   "核查期间暂停借款。",
                   f"To keep your account and money safe, a security check has been running "
                   f"since {since}; borrowing is paused while it runs.{eta_en}")
    short = c.t("账户正在核查中", "a check on your account is in progress")
    step = c.t("核查需要同事人工处理，我可以帮您转接人工客服。",
               "A colleague handles these checks; I can connect you with one.")
    return Described(full, short, step)


def _funding(r: dict[str, Any], c: Ctx) -> Described:
    reopens = r["details"].get("reopens_at") or r.get("retry_after")
    full = c.t(f"今天的放款资金额度已经用完（合作资金方每天的额度有限），这和您的账户无关。"
               f"额度会在{c.when(reopens)}重新开放。",
               f"Today's lending funds from our funding partner have run out — this has "
               f"nothing to do with your account. Funds reopen {c.when(reopens)}.")
    short = c.t(f"今日放款额度已满（{c.when(reopens)}开放）",
                f"today's lending funds have run out (reopening {c.when(reopens)})")
    step = c.t(f"请在{c.when(reopens)}之后再试。", f"Please try again after {c.when(reopens)}.")
    return Described(full, short, step)


def _incident(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    end = d.get("expected_end_at")
    maintenance = d.get("kind") == "maintenance"
    what_zh = "系统维护" if maintenance else "放款系统故障"
    what_en = "planned maintenance" if maintenance else "a problem in our lending system"
    eta_zh = f"，预计{c.when(end)}恢复" if end else "，恢复时间还在确认"
    eta_en = f" It should be back {c.when(end)}." if end else " We don't have a fix time yet."
    full = c.t(f"目前有一项{what_zh}（编号{d.get('incident_id')}）影响借款{eta_zh}。"
               "这不是您账户的问题。",
               f"Borrowing is affected by {what_en} (ref. {d.get('incident_id')}), not by your "
               f"account.{eta_en}")
    short = c.t(f"{what_zh}影响借款（{d.get('incident_id')}）",
                f"{what_en} affects borrowing ({d.get('incident_id')})")
    step = c.t(f"请在{c.when(end)}之后再试。" if end else "恢复后再试就可以，您不需要做任何操作。",
               f"Please try again after {c.when(end)}." if end
               else "You don't need to do anything; try again once it's fixed.")
    return Described(full, short, step)


_CLOSED_WHY = {
    "long_inactivity": ("因为账户长期没有使用", "because it had not been used for a long time"),
    "risk_review": ("因为综合评估未通过", "after a risk review"),
    "fraud": ("出于账户安全原因", "for account-security reasons"),
}


def _line_closed(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    reason = d.get("closed_reason")
    if reason == "no_line":
        full = c.t("您目前还没有开通额度。", "You don't have a credit line with us yet.")
        step = c.t("可以在App首页申请开通额度。", "You can apply for one on the app's home page.")
    elif reason == "borrower_request":
        full = c.t(f"您的额度已于{c.when(d.get('closed_at'), with_time=False)}按您的申请关闭。",
                   f"Your credit line was closed at your request "
                   f"{c.when(d.get('closed_at'), with_time=False)}.")
        step = c.t("如需重新使用，可以在App首页重新申请额度。",
                   "To borrow again, you can apply for a new line on the app's home page.")
    else:
        why = _CLOSED_WHY.get(reason or "", ("", ""))
        full = c.t(f"您的额度已于{c.when(d.get('closed_at'), with_time=False)}关闭{'，' + why[0] if why[0] else ''}"
                   f"（关闭前额度{c.money(d.get('limit_before_closing'))}）。",
                   f"Your credit line was closed {c.when(d.get('closed_at'), with_time=False)}"
                   f"{' ' + why[1] if why[1] else ''} (it was "
                   f"{c.money(d.get('limit_before_closing'))} before).")
        step = None
    short = c.t("额度已关闭", "your credit line is closed")
    return Described(full, short, step)


_REDUCED_WHY = {
    "periodic_review": ("定期评估后调整", "after a periodic review"),
    "overdue": ("因逾期记录调整", "because of a late payment"),
    "appeal_upheld": ("申诉通过后调整", "after your appeal"),
}


def _limit_reduced(r: dict[str, Any], c: Ctx) -> Described:
    d = r["details"]
    why = _REDUCED_WHY.get(d.get("change_reason") or "", ("", ""))
    full = c.t(f"您的总额度在{c.when(d.get('reduced_at'), with_time=False)}从"
               f"{c.money(d.get('previous_limit'))}调整为{c.money(d.get('new_limit'))}"
               f"{'（' + why[0] + '）' if why[0] else ''}，目前可借"
               f"{c.money(c.decision.get('available_limit'))}。",
               f"Your total limit was changed from {c.money(d.get('previous_limit'))} to "
               f"{c.money(d.get('new_limit'))} {c.when(d.get('reduced_at'), with_time=False)}"
               f"{' ' + why[1] if why[1] else ''}; {c.money(c.decision.get('available_limit'))} "
               "is available now.")
    short = c.t(f"总额度已从{c.money(d.get('previous_limit'))}调整为{c.money(d.get('new_limit'))}",
                f"your limit was lowered from {c.money(d.get('previous_limit'))} to "
                f"{c.money(d.get('new_limit'))}")
    step = c.t("按时还款、保持良好使用记录，额度会在之后的评估中重新考虑。",
               "On-time repayments and steady use are what later reviews look at to raise it.")
    return Described(full, short, step)


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


def _known(decision: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in decision.get("reasons", []) if r.get("code") in DESCRIBERS]


def _eligible_text(c: Ctx) -> str:
    d = c.decision
    return c.t(f"好消息：您现在可以借款，可借额度{c.money(d.get('available_limit'))}"
               f"（总额度{c.money(d.get('total_limit'))}）。如果在App里借款仍然失败，"
               "告诉我您看到的提示，我帮您看看。",
               f"Good news: you can borrow now — {c.money(d.get('available_limit'))} is available "
               f"(total limit {c.money(d.get('total_limit'))}). If borrowing in the app still "
               "fails, tell me what message you see and I'll look into it.")


def _unexplained_text(c: Ctx) -> str:
    """Not eligible, yet no reason this assistant can put into words: say only what is known."""
    d = c.decision
    available, minimum = float(d.get("available_limit") or 0), d.get("min_drawdown")
    if isinstance(minimum, (int, float)) and available < minimum:
        return c.t(f"目前可借额度{c.money(available)}，低于单笔最低借款{c.money(minimum)}，所以暂时借不了。"
                   "我可以请同事帮您看看。",
                   f"You have {c.money(available)} available, which is below the minimum loan of "
                   f"{c.money(minimum)}, so you can't borrow right now. A colleague can look into "
                   "it with you.")
    return c.t("您的账户目前暂时不能借款，但我这里看不到具体原因。我可以请同事帮您核实。",
               "Borrowing is paused on your account, but I can't see the reason from here. "
               "A colleague can check it for you.")


def _restore_time(primary: dict[str, Any], c: Ctx) -> str:
    at = primary.get("retry_after") or primary.get("next_review_at")
    if primary.get("code") == "OVERDUE_COOLING_OFF":
        at = primary["details"].get("cooling_off_until")
    if at:
        return c.t(f"最早可以在{c.when(at)}之后再借。", f"The earliest you can borrow again is "
                   f"after {c.when(at)}.")
    return c.t("目前没有确定的恢复时间，要先解决下面这个问题：",
               "There isn't a fixed date yet — this needs sorting out first:")


def explain(decision: dict[str, Any], *, lang: str, now: datetime, focus: str = "explain",
            product_note: str | None = None) -> Explanation:
    """The reply to an eligibility question, built only from ``decision``."""
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
            lines.append(c.t("您的额度没有被降低或关闭。", "Your limit hasn't been lowered or closed."))
        if focus == "repayment_status" and not any(
                r["code"] == "REPAYMENT_POSTING" for r in reasons):
            lines.append(c.t("您的还款都已入账，没有正在处理中的还款。",
                             "All your repayments have posted; none is still processing."))
        lines.append(_eligible_text(c))
        notes = [DESCRIBERS[r["code"]](r, c).full for r in reasons
                 if r["code"] in ("LIMIT_REDUCED", "REPAYMENT_POSTING")]
        lines += notes
        return Explanation("\n".join(lines), primary_code=None)

    primary = _pick_primary(blocking, reasons, focus)
    described = DESCRIBERS[primary["code"]](primary, c)
    others = [r for r in reasons if r is not primary and r.get("blocking")][:2]
    if focus == "restore_time":
        lines.append(_restore_time(primary, c))
    # (for a closed line the decision says nothing about repayments: claim nothing)
    if focus == "repayment_status" and primary["code"] not in ("REPAYMENT_POSTING",
                                                               "CREDIT_LINE_CLOSED"):
        lines.append(c.t("您的还款都已入账，没有正在处理中的还款。不过目前不能借款的原因是：",
                         "All your repayments have posted. What stops borrowing right now is this:"))
    if focus == "reduced_or_closed" and primary["code"] not in ("LIMIT_REDUCED",
                                                                 "CREDIT_LINE_CLOSED"):
        lines.append(c.t("您的额度没有被降低或关闭，暂时不能借款是因为：",
                         "Your limit hasn't been lowered or closed; borrowing is paused because:"))
    lines.append(described.full)
    if others:
        extra = [DESCRIBERS[r["code"]](r, c).short for r in others]
        lines.append(c.t(f"另外：{join(extra, 'zh')}。", f"Also: {join(extra, 'en')}."))
    step = described.next_step
    if focus == "improve":
        steps = [s for s in (DESCRIBERS[r["code"]](r, c).next_step for r in [primary, *others])
                 if s]
        if steps:
            lines.append(c.t("可以这样做：", "What you can do:"))
            lines += [f"{i}. {s}" for i, s in enumerate(steps, 1)]
    elif step:
        lines.append(c.t(f"下一步：{step}", f"Next step: {step}"))

    explanation = Explanation("", primary_code=primary["code"])
    if primary["code"] in HUMAN_REASONS:
        explanation.offer = "human"
        explanation.buttons = [_button(c, "human")]
    elif primary.get("appealable"):
        lines.append(c.t("如果您认为这个结果有误，我可以帮您提交申诉，由专人复核。",
                         "If you think this is wrong, I can file an appeal for a person to "
                         "review."))
        explanation.offer = "appeal"
        explanation.buttons = [_button(c, "appeal"), _button(c, "human")]
    explanation.text = "\n".join(lines)
    return explanation


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
        return {"title": c.t("提交申诉", "File an appeal"), "payload": "/request_appeal"}
    return {"title": c.t("转人工客服", "Talk to a person"), "payload": "/request_human"}


def appealable_reason(decision: dict[str, Any]) -> dict[str, Any] | None:
    for reason in decision.get("reasons", []):
        if reason.get("appealable"):
            return reason
    return None


def explanation_problem(decision: dict[str, Any]) -> str | None:
    """Why ``decision`` cannot be put into words (say, a figure of the wrong type), or None."""
    now = datetime.now(timezone.utc)
    try:
        for lang in ("zh", "en"):
            for focus in FOCUSES:
                explain(decision, lang=lang, now=now, focus=focus)
            for reason in _known(decision):
                describe_reason(reason, decision, lang=lang, now=now)
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
