"""Insights for the lender (issue 13, part 4): what borrowers asked, why they were blocked,
what the bot resolved alone, and the messages it did not understand -- for a period.

Sources (never logs):

* the desk's database: borrower messages (questions per day), conversations, handoff cases
  (their ``reason``, and the decision the bot handed over in ``context.decision``), and the
  backend's decisions on appeals (``appeal_decided`` notices, desk/notices.py);
* Rasa's SQL tracker store (its ``events`` table; SQLite at ``RELEND_TRACKER_DB`` in the
  embedded default, PostgreSQL in production: ``RELEND_INSIGHTS_TRACKER_URL``): user events
  (intent, confidence, text), the ``primary_reason``, ``appeal_reason_code`` and
  ``appeal_ids`` slots (an appeal filed, and for what), and the ``action_clarify`` /
  ``utter_out_of_scope`` actions. Read once per store, period and newest event id
  (``tracker_facts``); the desk's records are read on every request.

Days are UTC days. Every text that leaves this module is masked (desk/masking.py).

**Grouping the messages not understood** (``group_texts``): each distinct masked text becomes
a TF-IDF vector of its character 1-3-grams (within word boundaries: works for Chinese without
a tokenizer and tolerates typos); texts are then joined bottom-up (agglomerative clustering,
average linkage, cosine distance) until the closest two groups are further apart than
``GROUP_DISTANCE``. Two texts end up together when they share most of their character runs.

**Labelling** (``label``): a supervisor files texts as examples of an intent into
``RELEND_REVIEW_DIR/<intent>.yml`` (Rasa's NLU format, with who and when as each example's
metadata). That folder is outside ``data/``, which ``rasa train`` reads recursively: a person
moves reviewed examples into the training data.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import logging
import math
import os
import statistics
import tempfile
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    func,
    select,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from common.texts import languages, subtree

from .masking import mask, mask_text
from .models import Case, Message, Notice
from .service import DeskError

log = logging.getLogger("relend.desk")
ROOT = Path(__file__).resolve().parent.parent
MAX_DAYS_DEFAULT = 92
DEFAULT_DAYS = 7
GROUP_DISTANCE = 0.75  # cosine distance: above it, two groups stay apart
MAX_GROUPED = 2000  # distinct texts grouped at most (the most frequent): clustering is O(n^2)
MAX_LABEL_TEXTS = 50
MAX_LABEL_CHARS = 500
NOT_LABELLABLE = {"nlu_fallback"}
FALLBACK, CLARIFY, OUT_OF_SCOPE = "fallback", "clarify", "out_of_scope"
CONFIDENCE_BUCKETS = 10  # 0.0-0.1, ..., 0.9-1.0
UNKNOWN_REASON = "unknown"  # an appeal whose reason neither the tracker nor a decision gave
APPEAL_OUTCOMES = ("upheld", "rejected")  # a decided appeal (the backend's appeal_decided)
CACHE_ENTRIES = 16  # tracker readings kept (desk/insights.py: ``tracker_facts``)
IN_CHUNK = 500  # senders per IN (...) list of the query for earlier appeal ids

_events = Table(
    "events", MetaData(),
    Column("id", Integer, primary_key=True), Column("sender_id", String(255)),
    Column("type_name", String(255)), Column("timestamp", Float),
    Column("intent_name", String(255)), Column("action_name", String(255)),
    Column("data", Text),
)


# --- configuration --------------------------------------------------------------------------------

def max_days() -> int:
    return int(os.environ.get("RELEND_INSIGHTS_MAX_DAYS", MAX_DAYS_DEFAULT))


def tracker_url() -> str | None:
    """Rasa's tracker store: ``RELEND_INSIGHTS_TRACKER_URL`` (an SQLAlchemy URL), else the
    embedded default's SQLite file ``RELEND_TRACKER_DB`` (``var/rasa_tracker.db``), opened
    read-only; None when that file does not exist (no conversation with Rasa yet)."""
    url = os.environ.get("RELEND_INSIGHTS_TRACKER_URL", "").strip()
    if url:
        return url
    path = Path(os.environ.get("RELEND_TRACKER_DB", "") or ROOT / "var" / "rasa_tracker.db")
    return f"sqlite:///file:{path.resolve()}?mode=ro&uri=true" if path.is_file() else None


def review_dir() -> Path:
    return Path(os.environ.get("RELEND_REVIEW_DIR", "") or ROOT / "review")


def known_intents() -> set[str]:
    """The intents of the assistant's domain (``RELEND_DOMAIN``, default ``domain.yml``)."""
    path = Path(os.environ.get("RELEND_DOMAIN", "") or ROOT / "domain.yml")
    domain = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    names = set()
    for item in domain.get("intents") or []:
        names.add(next(iter(item)) if isinstance(item, dict) else str(item))
    return names - NOT_LABELLABLE


# --- the period -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    first: date
    last: date  # inclusive

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), timezone.utc)

    @property
    def end(self) -> datetime:  # exclusive
        return datetime.combine(self.last + timedelta(days=1), time(), timezone.utc)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def parse_period(first: str | None, last: str | None, today: date) -> Period:
    """``from``/``to`` as ISO dates (both inclusive, UTC days). Missing ``to``: today; missing
    ``from``: a week before ``to``. A 422 for anything else than a valid, ordered period of at
    most ``RELEND_INSIGHTS_MAX_DAYS`` days that does not end in the future."""
    def day(value: str | None, name: str) -> date | None:
        if value is None or value == "":
            return None
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise DeskError(422, "invalid_period",
                            f"'{name}' must be a date (YYYY-MM-DD).") from exc

    end = day(last, "to") or today
    start = day(first, "from") or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise DeskError(422, "invalid_period", "'from' must not be after 'to'.")
    if end > today:
        raise DeskError(422, "invalid_period", "'to' must not be in the future.")
    if (end - start).days + 1 > max_days():
        raise DeskError(422, "invalid_period", f"A period is at most {max_days()} days.")
    return Period(start, end)


# --- reading the sources --------------------------------------------------------------------------

@dataclass
class TrackerFacts:
    available: bool = False
    reasons: dict[str, set[str]] | None = None  # sender -> blocking codes (primary_reason slot)
    appealed: set[str] | None = None  # senders who asked for an appeal or filed one
    confidences: list[float] | None = None  # typed messages: the top real intent's confidence
    missed: list[dict[str, Any]] | None = None  # {text, kind, intent, confidence, at}
    # appeals filed in the period: appeal id -> {conversation, at (datetime), reason}
    filed: dict[str, dict[str, Any]] | None = None
    groups: list[dict[str, Any]] | None = None  # ``missed`` grouped (group_texts), once


def _top_intent(parse: dict[str, Any]) -> tuple[str | None, float | None]:
    """The classifier's best real intent (under an nlu_fallback, the ranking's first other)."""
    intent = parse.get("intent") or {}
    name, confidence = intent.get("name"), intent.get("confidence")
    if name == "nlu_fallback":
        ranked = [r for r in parse.get("intent_ranking") or [] if r.get("name") != "nlu_fallback"]
        if ranked:
            return ranked[0].get("name"), ranked[0].get("confidence")
    return name, confidence


# (timestamp, the appeal_ids slot's list, the appeal_reason_code slot's last value then)
AppealIdsEvent = tuple[float, list[str], str | None]


def read_tracker(url: str | None, period: Period) -> TrackerFacts:
    """The tracker's facts for the period; ``available`` False when the store cannot be read
    (the page then says so and shows the desk's figures only)."""
    if not url:
        return TrackerFacts()
    # Rasa's database, only read here: no pool kept, no pragmas (common.db would switch a
    # SQLite file to WAL), one connection for the queries
    engine = create_engine(url, future=True, poolclass=NullPool,
                           **({"connect_args": {"timeout": 15}} if url.startswith("sqlite")
                              else {}))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(_events.c.sender_id, _events.c.type_name, _events.c.action_name,
                       _events.c.data, _events.c.timestamp)
                .where(_events.c.timestamp >= period.start.timestamp(),
                       _events.c.timestamp < period.end.timestamp(),
                       _events.c.type_name.in_(("user", "action", "slot")))
                .order_by(_events.c.sender_id, _events.c.timestamp, _events.c.id)).all()
            facts, appeal_events = _scan(rows)
            earlier = _earlier_appeal_ids(connection, sorted(appeal_events), period)
    except SQLAlchemyError as exc:
        log.warning("insights: the tracker store cannot be read: %s", type(exc).__name__)
        return TrackerFacts()
    finally:
        engine.dispose()
    _appeals_filed(facts, appeal_events, earlier)
    return facts


def _scan(rows: Iterable[Any]) -> tuple[TrackerFacts, dict[str, list[AppealIdsEvent]]]:
    """One pass over the period's events, in each conversation's order."""
    facts = TrackerFacts(True, defaultdict(set), set(), [], [], {})
    last_user: dict[str, dict[str, Any]] = {}
    appeal_reason: dict[str, str] = {}  # sender -> the reason of the appeal being filed
    appeal_events: dict[str, list[AppealIdsEvent]] = defaultdict(list)
    for sender, kind, action, raw, stamp in rows:
        try:
            data = json.loads(raw or "{}")
        except ValueError:
            continue
        if kind == "user":
            text = str(data.get("text") or "")
            if not text.strip() or text.startswith("/"):  # a button's payload, not typed
                last_user.pop(sender, None)
                continue
            parse = data.get("parse_data") or {}
            said = (parse.get("intent") or {}).get("name")
            best, confidence = _top_intent(parse)
            if isinstance(confidence, (int, float)):
                facts.confidences.append(float(confidence))
            if said == "request_appeal":
                facts.appealed.add(sender)
            item = {"text": mask_text(text.strip()), "intent": best,
                    "confidence": round(float(confidence), 3)
                    if isinstance(confidence, (int, float)) else None,
                    "at": datetime.fromtimestamp(stamp, timezone.utc).isoformat()
                    .replace("+00:00", "Z"), "kind": None}
            if said == "nlu_fallback":
                item["kind"] = FALLBACK
            elif said == "out_of_scope":
                item["kind"] = OUT_OF_SCOPE
            if item["kind"]:
                facts.missed.append(item)
            last_user[sender] = item
        elif kind == "action":
            item = last_user.get(sender)
            if item is not None and item["kind"] is None and action in (
                    "action_clarify", "utter_out_of_scope"):
                item["kind"] = CLARIFY if action == "action_clarify" else OUT_OF_SCOPE
                facts.missed.append(item)
        elif kind == "slot":
            name, value = data.get("name"), data.get("value")
            if name == "primary_reason" and isinstance(value, str) and value:
                facts.reasons[sender].add(value)
            elif name == "appeal_reason_code" and isinstance(value, str) and value:
                appeal_reason[sender] = value  # set when an appeal starts; cleared after
            elif name == "appeal_ids" and isinstance(value, list):
                appeal_events[sender].append(
                    (stamp, [str(v) for v in value if v], appeal_reason.get(sender)))
    return facts, appeal_events


def _earlier_appeal_ids(connection: Any, senders: list[str], period: Period
                        ) -> dict[str, set[str]]:
    """The appeal ids each of ``senders`` had before the period: the ``appeal_ids`` slot is
    the conversation's whole list, and Rasa sets it again at every new session (slots are
    carried over), so only an id it did not hold before is a new appeal."""
    known: dict[str, set[str]] = defaultdict(set)
    for n in range(0, len(senders), IN_CHUNK):
        for sender, raw in connection.execute(
                select(_events.c.sender_id, _events.c.data)
                .where(_events.c.type_name == "slot",
                       _events.c.sender_id.in_(senders[n:n + IN_CHUNK]),
                       _events.c.timestamp < period.start.timestamp(),
                       _events.c.data.like("%appeal_ids%"))):
            try:
                data = json.loads(raw or "{}")
            except ValueError:
                continue
            if data.get("name") == "appeal_ids" and isinstance(data.get("value"), list):
                known[sender] |= {str(v) for v in data["value"] if v}
    return known


def _appeals_filed(facts: TrackerFacts, appeal_events: dict[str, list[AppealIdsEvent]],
                   earlier: dict[str, set[str]]) -> None:
    """An id that appears in a conversation's ``appeal_ids`` for the first time is an appeal
    filed then (actions/appeals.py sets the slot with the new id right after filing), for the
    reason the ``appeal_reason_code`` slot named when the appeal was started."""
    for sender, events in appeal_events.items():
        known = set(earlier.get(sender, ()))
        for stamp, ids, reason in events:
            for appeal_id in ids:
                if appeal_id not in known and appeal_id not in facts.filed:
                    facts.filed[appeal_id] = {
                        "conversation": sender, "reason": reason,
                        "at": datetime.fromtimestamp(stamp, timezone.utc)}
                    facts.appealed.add(sender)
            known |= set(ids)


# --- reading the tracker once per state of it ----------------------------------------------------

_cache: OrderedDict[tuple[Any, ...], TrackerFacts] = OrderedDict()
_cache_lock = threading.Lock()


def last_event_id(url: str | None) -> int | None:
    """The tracker's newest event id (Rasa only appends events: any new event raises it);
    None when the store cannot be read."""
    if not url:
        return None
    engine = create_engine(url, future=True, poolclass=NullPool,
                           **({"connect_args": {"timeout": 15}} if url.startswith("sqlite")
                              else {}))
    try:
        with engine.connect() as connection:
            return connection.execute(select(func.max(_events.c.id))).scalar() or 0
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def tracker_facts(url: str | None, period: Period) -> TrackerFacts:
    """``read_tracker`` with the messages not understood grouped, kept for the same store,
    period and newest event id: a page reloaded, the CSV after the page, or another
    supervisor's look costs one ``max(id)`` instead of a scan of the period and the
    clustering. A new event (or a store that cannot be read) is read afresh. The desk's own
    records are always read afresh (cheap, and a case's context can change in place)."""
    newest = last_event_id(url)
    key = (url, period.first, period.last, newest)
    if newest is not None:
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
    facts = read_tracker(url, period)
    facts.groups = group_texts(facts.missed or [])
    if newest is not None and facts.available:
        with _cache_lock:
            _cache[key] = facts
            while len(_cache) > CACHE_ENTRIES:
                _cache.popitem(last=False)
    return facts


def _blocking_codes(context: dict[str, Any] | None) -> set[str]:
    decision = (context or {}).get("decision") or {}
    return {str(r.get("code")) for r in decision.get("reasons") or []
            if isinstance(r, dict) and r.get("blocking") and r.get("code")}


# --- the figures ----------------------------------------------------------------------------------

def compute(session: Session, period: Period, tracker: TrackerFacts) -> dict[str, Any]:
    """Every figure of the insights page for ``period`` (see docs/insights.md)."""
    per_day: Counter[date] = Counter()
    conversations: set[str] = set()
    for conversation_id, created in session.execute(
            select(Message.conversation_id, Message.created_at)
            .where(Message.sender == "borrower", Message.created_at >= period.start,
                   Message.created_at < period.end)):
        per_day[created.astimezone(timezone.utc).date()] += 1
        conversations.add(conversation_id)
    cases = session.execute(select(Case.conversation_id, Case.reason, Case.context)
                            .where(Case.created_at >= period.start,
                                   Case.created_at < period.end)).all()
    handed: dict[str, list[str]] = defaultdict(list)
    reasons: dict[str, set[str]] = defaultdict(set)
    appealed: set[str] = set(tracker.appealed or ())
    for conversation_id, reason, context in cases:
        conversations.add(conversation_id)
        handed[conversation_id].append(reason)
        reasons[conversation_id] |= _blocking_codes(context)
        if (context or {}).get("appeal_ids"):
            appealed.add(conversation_id)
    for sender, codes in (tracker.reasons or {}).items():
        if sender in conversations:  # only conversations the desk knows (and had in the period)
            reasons[sender] |= codes
    appealed &= conversations

    blocked = [c for c in conversations if reasons.get(c)]
    by_code: dict[str, set[str]] = defaultdict(set)
    for conversation_id in blocked:
        for code in reasons[conversation_id]:
            by_code[code].add(conversation_id)
    reason_rows = [{
        "code": code, "conversations": len(ids), "share": _share(len(ids), len(blocked)),
        "appealed": len(ids & appealed), "handed_off": len(ids & handed.keys()),
    } for code, ids in sorted(by_code.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
    handoff_reasons = Counter(r for rs in handed.values() for r in rs)

    buckets = [0] * CONFIDENCE_BUCKETS
    for value in tracker.confidences or ():
        buckets[min(int(max(value, 0.0) * CONFIDENCE_BUCKETS), CONFIDENCE_BUCKETS - 1)] += 1
    missed = tracker.missed or []
    groups = tracker.groups if tracker.groups is not None else group_texts(missed)
    return {
        "period": {"from": period.first.isoformat(), "to": period.last.isoformat()},
        "tracker_available": tracker.available,
        "questions_per_day": [{"day": d.isoformat(), "questions": per_day[d]}
                              for d in period.days()],
        "questions": sum(per_day.values()),
        "conversations": {
            "total": len(conversations),
            "resolved_by_bot": len(conversations - handed.keys()),
            "handed_off": len(handed),
            "resolved_share": _share(len(conversations - handed.keys()), len(conversations)),
        },
        "handoff_reasons": [{"reason": r, "cases": n, "share": _share(n, len(cases))}
                            for r, n in sorted(handoff_reasons.items(),
                                               key=lambda kv: (-kv[1], kv[0]))],
        "blocked": {"conversations": len(blocked), "reasons": reason_rows},
        "confidence": [{"from": round(n / CONFIDENCE_BUCKETS, 1),
                        "to": round((n + 1) / CONFIDENCE_BUCKETS, 1), "messages": count}
                       for n, count in enumerate(buckets)],
        "not_understood": {"messages": len(missed),
                           "by_kind": dict(sorted(Counter(m["kind"] for m in missed).items())),
                           "groups": groups},
        "appeals": appeal_outcomes(session, period, tracker.filed or {}),
    }


# --- appeals: outcomes and time to decision -------------------------------------------------------

def appeal_outcomes(session: Session, period: Period, filed: dict[str, dict[str, Any]]
                    ) -> dict[str, Any]:
    """The appeals filed in the period (the tracker: ``filed``) and what became of them so
    far: ``upheld`` or ``rejected`` when the backend's decision reached the desk (its
    ``appeal_decided`` notice, desk/notices.py, stored once per appeal with when it was
    decided), else ``pending``; hours from filing to decision, median and 90th percentile.
    The reason is the decision's (the backend's record), else the one the appeal was started
    for, else ``unknown``. Per reason, most appeals first, and for all of them."""
    decided: dict[str, tuple[str, str | None, datetime]] = {}
    if filed:
        for data, occurred, received in session.execute(
                select(Notice.data, Notice.occurred_at, Notice.received_at)
                .where(Notice.kind == "appeal_decided", Notice.received_at >= period.start)):
            data = data or {}
            appeal_id, status = data.get("appeal_id"), data.get("status")
            if appeal_id in filed and status in APPEAL_OUTCOMES:
                decided[appeal_id] = (status, data.get("reason_code"), occurred or received)
    by_reason: dict[str, list[tuple[str, float | None]]] = defaultdict(list)
    for appeal_id, appeal in filed.items():
        status, code, at = decided.get(appeal_id, ("pending", None, None))
        hours = None
        if at is not None:
            hours = max(0.0, (at - appeal["at"]).total_seconds() / 3600)
        by_reason[code or appeal["reason"] or UNKNOWN_REASON].append((status, hours))
    rows = [{"code": code, **_appeal_figures(items)} for code, items in
            sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
    return {**_appeal_figures([i for items in by_reason.values() for i in items]),
            "reasons": rows}


def _appeal_figures(items: list[tuple[str, float | None]]) -> dict[str, Any]:
    outcomes = Counter(status for status, _ in items)
    hours = sorted(h for _, h in items if h is not None)
    return {"filed": len(items), "upheld": outcomes["upheld"],
            "rejected": outcomes["rejected"], "pending": outcomes["pending"],
            "median_hours": round(statistics.median(hours), 1) if hours else None,
            "p90_hours": round(percentile(hours, 0.9), 1) if hours else None}


def percentile(ordered: list[float], share: float) -> float:
    """The nearest-rank percentile of a sorted, non-empty list: the smallest value that at
    least ``share`` of the values do not exceed (of 10 values, the 9th for 0.9)."""
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


# --- labels ---------------------------------------------------------------------------------------

def labels(figures: dict[str, Any]) -> dict[str, Any]:
    """The words for the codes in ``figures``, in every language of the catalog, from the
    console's one table (``page.console.code.*``: the decision's reason codes;
    ``page.console.reason.*``: the handoff reasons): the page shows them, the export keeps
    the codes. A code without words yet is left out (the page shows the code)."""
    codes = ({r["code"] for r in figures["blocked"]["reasons"]}
             | {r["code"] for r in figures["appeals"]["reasons"]})
    reasons = {r["reason"] for r in figures["handoff_reasons"]}
    out: dict[str, Any] = {}
    for lang in languages():
        code_words = subtree("page.console.code", lang)
        reason_words = subtree("page.console.reason", lang)
        out[lang] = {"code": {c: code_words[c] for c in sorted(codes) if c in code_words},
                     "reason": {r: reason_words[r] for r in sorted(reasons)
                                if r in reason_words}}
    return out


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def group_texts(missed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages not understood, grouped by similarity (see the module's docstring)."""
    counts: Counter[str] = Counter(m["text"] for m in missed)
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for m in missed:
        kinds[m["text"]][m["kind"]] += 1
    texts = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))][:MAX_GROUPED]
    if not texts:
        return []
    labels = [0] * len(texts)
    if len(texts) > 1:
        from sklearn.cluster import AgglomerativeClustering
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), lowercase=True,
                                  sublinear_tf=True).fit_transform(texts).toarray()
        labels = list(AgglomerativeClustering(
            n_clusters=None, distance_threshold=GROUP_DISTANCE, affinity="cosine",
            linkage="average").fit_predict(vectors))
    members: dict[int, list[str]] = defaultdict(list)
    for text, label in zip(texts, labels, strict=True):
        members[int(label)].append(text)
    groups = []
    for items in members.values():
        kind = Counter()
        for t in items:
            kind.update(kinds[t])
        groups.append({
            "id": hashlib.sha256("\n".join(sorted(items)).encode()).hexdigest()[:12],
            "messages": sum(counts[t] for t in items),
            "kinds": dict(sorted(kind.items())),
            "texts": [{"text": t, "count": counts[t]} for t in items],
        })
    groups.sort(key=lambda g: (-g["messages"], g["texts"][0]["text"]))
    return groups


def insights(session: Session, period: Period) -> dict[str, Any]:
    figures = mask(compute(session, period, tracker_facts(tracker_url(), period)))
    return {**figures, "labels": labels(figures)}


# --- CSV ------------------------------------------------------------------------------------------

CSV_COLUMNS = ("section", "key", "count", "share", "appealed", "handed_off", "text")


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(figures: dict[str, Any]) -> str:
    """One long table: ``section`` says which figure a row belongs to (docs/insights.md)."""
    rows: list[Iterable[Any]] = []
    for d in figures["questions_per_day"]:
        rows.append(("questions_per_day", d["day"], d["questions"], "", "", "", ""))
    c = figures["conversations"]
    rows.append(("conversations", "total", c["total"], "", "", "", ""))
    rows.append(("conversations", "resolved_by_bot", c["resolved_by_bot"], c["resolved_share"],
                 "", "", ""))
    rows.append(("conversations", "handed_off", c["handed_off"], "", "", "", ""))
    for r in figures["handoff_reasons"]:
        rows.append(("handoff_reason", r["reason"], r["cases"], r["share"], "", "", ""))
    for r in figures["blocked"]["reasons"]:
        rows.append(("blocked_reason", r["code"], r["conversations"], r["share"], r["appealed"],
                     r["handed_off"], ""))
    for b in figures["confidence"]:
        rows.append(("confidence", f"{b['from']:.1f}-{b['to']:.1f}", b["messages"], "", "", "",
                     ""))
    for g in figures["not_understood"]["groups"]:
        for t in g["texts"]:
            rows.append(("not_understood", g["id"], t["count"], "", "", "", t["text"]))
    appeals = figures["appeals"]
    for key, r in [("all", appeals), *((r["code"], r) for r in appeals["reasons"])]:
        rows.append(("appeals_filed", key, r["filed"], "", "", "", ""))
        for outcome in ("upheld", "rejected", "pending"):
            rows.append((f"appeals_{outcome}", key, r[outcome], _share(r[outcome], r["filed"]),
                         "", "", ""))
        # hours in the count column; empty when none of them was decided yet
        rows.append(("appeal_hours_median", key, r["median_hours"], "", "", "", ""))
        rows.append(("appeal_hours_p90", key, r["p90_hours"], "", "", "", ""))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows([_cell(v) for v in row] for row in rows)
    return out.getvalue()


# --- labelling ------------------------------------------------------------------------------------

def label(texts: list[str], intent: str, who: str, now: datetime,
          folder: Path | None = None) -> dict[str, Any]:
    """File ``texts`` (masked here, whatever the caller did) as reviewed examples of
    ``intent`` in ``<folder>/<intent>.yml``. Idempotent: a text already filed under this intent
    is ``already``; one filed under another intent is ``other_intent`` and left there (a person
    decides); the rest are ``added``. The file is replaced atomically, under a lock shared
    by every desk process on this machine."""
    if intent not in known_intents():
        raise DeskError(422, "unknown_intent", "No such intent in the assistant's domain.")
    cleaned: list[str] = []
    for text in texts:
        masked = " ".join(mask_text(str(text)).split())
        if not masked or len(masked) > MAX_LABEL_CHARS:
            raise DeskError(422, "invalid_text", f"Each text needs 1-{MAX_LABEL_CHARS} characters.")
        if masked not in cleaned:
            cleaned.append(masked)
    if not cleaned or len(cleaned) > MAX_LABEL_TEXTS:
        raise DeskError(422, "invalid_text", f"Label 1-{MAX_LABEL_TEXTS} texts at a time.")
    folder = folder or review_dir()
    folder.mkdir(parents=True, exist_ok=True)
    result: dict[str, list[str]] = {"added": [], "already": [], "other_intent": []}
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        filed = _filed(folder)
        path = folder / f"{intent}.yml"
        document = _read(path) or {"version": "3.1", "nlu": [{"intent": intent, "examples": []}]}
        examples = document["nlu"][0]["examples"]
        for text in cleaned:
            if filed.get(text) == intent:
                result["already"].append(text)
            elif text in filed:
                result["other_intent"].append(text)
            else:
                examples.append({"text": text, "metadata": {
                    "labelled_by": who, "labelled_at": now.isoformat().replace("+00:00", "Z"),
                    "source": "insights"}})
                filed[text] = intent
                result["added"].append(text)
        if result["added"]:
            _write(path, document)
    return {"intent": intent, "file": path.name, **result}


def _read(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(document.get("nlu"), list) or not document["nlu"]:
        return None
    document["nlu"][0].setdefault("examples", [])
    return document


def _filed(folder: Path) -> dict[str, str]:
    """Every text in the review folder and the intent it is filed under."""
    filed: dict[str, str] = {}
    for path in sorted(folder.glob("*.yml")):
        for block in (_read(path) or {}).get("nlu", []):
            for example in block.get("examples") or []:
                if isinstance(example, dict) and example.get("text"):
                    filed.setdefault(str(example["text"]).strip(), str(block.get("intent")))
    return filed


def _write(path: Path, document: dict[str, Any]) -> None:
    """Write whole or not at all: a temporary file in the same folder, then a rename."""
    body = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=1000)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
