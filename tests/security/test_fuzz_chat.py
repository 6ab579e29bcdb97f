"""Fuzzing the live desk's chat socket: thousands of hostile or odd messages through the real
desk, Rasa and action server, repeatable (a seeded ``random.Random``).

What a message may be: empty or whitespace only, 10,000 characters, exactly 2,000 and 2,001,
emoji and ZWJ sequences, control characters (C0, DEL, C1), lone surrogates (sent as ``\\ud800``
JSON escapes, as UTF-8 cannot carry them), right-to-left and mixed scripts with bidi controls,
HTML and script tags, JSON fragments, SQL fragments, format strings, long digit runs (and ID,
phone and card numbers), Chinese with typos; plus frames that are not messages at all (bad
client ids, unknown types, arrays, non-JSON, binary, oversized), and a few bursts.

The oracle (written here from the documented contract, not taken from the desk's code):

- a message whose text is not a string or is empty once cleaned  -> ``empty_message``
- a text over 2,000 characters (as sent)                         -> ``message_too_long``
- a client id not matching ``[A-Za-z0-9_-]{1,64}``                -> ``bad_client_id``
- an unknown ``type`` / a JSON value that is not an object         -> ``unknown_type`` /
  ``bad_frame``; a non-JSON frame -> ``not_json``, a binary frame -> ``binary_frame`` (the
  socket stays open: issue 11); a frame over 16 KiB closes the socket (1009)
- the 11th message of a burst from one borrower                   -> ``rate_limited``
- anything else is acked, stored exactly once with the cleaned text (C0 and C1 controls but
  tab, newline and carriage return removed, DEL removed, bidirectional overrides and isolates
  U+202A-U+202E, U+2066-U+2069 removed, lone surrogates replaced by U+FFFD,
  surrounding whitespace stripped), echoed once, and answered: its ``turn_done`` comes after
  at least one bot or system message, unless a person had taken the conversation over (then
  the desk stays silent: no "typing" frame, and the desk's records say an agent owns it).

Borrowers are made-up ids (``fuzz-0001``...) with tokens signed here as the app would, at most
10 messages each (the per-borrower rate limit is a burst of 10), spread over a few concurrent
sockets. ``RELEND_FUZZ_MESSAGES`` changes the number of messages (default 2,000),
``RELEND_FUZZ_SEED`` the seed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import statistics
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from stack.services import Stack
from tests.conftest import run_coroutine
from tests.security.live_support import (
    ERROR_CODES,
    HANDOFF_MARKERS,
    Chat,
    borrower_token,
    desk_healthy,
    ownership,
    ws_url,
)

pytestmark = [pytest.mark.servers, pytest.mark.timeout(1800)]

SEED = int(os.environ.get("RELEND_FUZZ_SEED", "20251130"))
MESSAGES = int(os.environ.get("RELEND_FUZZ_MESSAGES", "2000"))
SOCKETS = 8
MAX_PER_BORROWER = 10
BURSTS = 4  # borrowers who send 15 messages at once
MAX_CHARS = 2000
FRAME_LIMIT = 16 * 1024  # bytes of one WebSocket frame
TURN_TIMEOUT = 120.0
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")

# --- the oracle ----------------------------------------------------------------------------------

_C0_BUT_LINE_BREAKS = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def cleaned(text: str) -> str:
    """What the desk stores of a text (desk/service.py ``clean_text``, as documented)."""
    return _LONE_SURROGATE.sub("\ufffd", _C0_BUT_LINE_BREAKS.sub("", text)).strip()


def as_received(text: str) -> str:
    """The text as the desk decodes the JSON frame: sent with ``\\uXXXX`` escapes (as lone
    surrogates must be), a high surrogate followed by a low one is one character (JSON)."""
    return json.loads(json.dumps(text, ensure_ascii=True))


def expected_outcome(text: Any) -> tuple[str, str]:
    """("refused", code) or ("accepted", the stored text)."""
    if isinstance(text, str) and len(text) > MAX_CHARS:  # counted before cleaning
        return "refused", "message_too_long"
    if not isinstance(text, str) or not cleaned(text):
        return "refused", "empty_message"
    return "accepted", cleaned(text)


# --- what a fuzzer sends -------------------------------------------------------------------------

ZH = ("我还清了为什么借不了", "额度什么时候恢复", "为什么我的额度被降了", "我想申诉",
      "我的申诉怎么样了", "App一直报错借不出来", "还款入账了吗", "怎么提高我的额度",
      "你是机器人吗", "谢谢", "你好", "不对，我不同意这个结果", "我上个月逾期了两天会影响吗",
      "额度被关闭了怎么办")
EN = ("why can't I borrow after repaying", "when will my limit come back", "I want to appeal",
      "is my repayment posted", "the app shows an error", "thanks", "hello")
TYPOS = ("我还清了为什末借不了", "我还亲了为啥借不了钱", "额渡什么时候恢附", "为什么额度被将了",
         "我想伸诉", "我的申述怎么样了", "app一直报措", "还款入帐了吗", "怎么提搞额度",
         "借不了款是为神马", "hai清了借不le", "我还清了，，，为什么 借 不了？？？",
         "wo huan qing le wei shen me jie bu liao")
EMOJI = ("😀", "🙏", "💰", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🧑🏿‍💻", "👩‍❤️‍💋‍👨", "🇨🇳", "1️⃣", "❤️", "🤷‍♀️",
         "\U0001f9d1\u200d\U0001f91d\u200d\U0001f9d1", "\u200d", "\ufe0f", "🫠")
RTL = ("مرحبا، لماذا لا أستطيع الاقتراض؟", "שלום, למה אני לא יכול ללוות", "\u202e额度恢复\u202c",
       "\u2067عربي\u2069 和中文 mixed", "abc\u202edcba", "\u200f\u200e\u061c", "ﷺ ﷽",
       "Ελληνικά русский 日本語 한국어 ไทย हिन्दी")
HTML = ("<script>alert(1)</script>", "<img src=x onerror=alert(document.cookie)>",
        "<iframe src=javascript:alert(1)>", "</textarea><svg onload=alert(1)>",
        "javascript:alert(1)", "<a href=\"http://evil.example\">点我领额度</a>", "&lt;b&gt;&#x3c;",
        "<style>*{display:none}</style>", "{{constructor.constructor('alert(1)')()}}")
JSONS = ('{"type":"ack","client_id":"x","id":1}', '{"borrower_id":"demo-posting"}',
         '{"intent":"request_human","entities":[]}', "[1,2,", '"}]}', "null", "{}",
         '{"__proto__":{"admin":true}}', '{"a":' * 20, "\\u0000\\ud800", '{"type":"turn_done"}')
SQL = ("'; DROP TABLE messages; --", "1' OR '1'='1", "\"; DELETE FROM cases; --",
       "' UNION SELECT password_hash FROM agents --", "1; UPDATE agents SET role='supervisor'",
       "%' AND 1=0 UNION SELECT sqlite_version() --", "Robert'); DROP TABLE conversations;--")
FORMATS = ("{0} %s ${x}", "%n%n%n%n", "%x %p %d", "{borrower_id}", "{{7*7}}", "${7*7}", "#{1+1}",
           "{0.__class__.__mro__}", "%(password)s", "${jndi:ldap://x/a}", "\\n\\t\\0", "{}" * 50)
DIGITS = ("110105194912310021", "13812345678", "+86 138 1234 5678", "6222 0212 3456 7890",
          "6222021234567890123", "110105 19491231 0021", "１３８１２３４５６７８", "138-1234-5678")


@dataclass
class Item:
    """One thing a borrower's socket sends."""

    kind: str
    text: Any = None
    # "message": a chat message; "frame": a JSON value that is not one (``raw``);
    # "raw": ``raw`` sent as it is (text that is not JSON, or bytes)
    shape: str = "message"
    raw: Any = None
    client_id: str = ""
    ascii_json: bool = False  # send with \\uXXXX escapes
    expect: tuple[str, str] = ("accepted", "")

    def frame_bytes(self) -> int:
        frame = {"type": "message", "client_id": self.client_id, "text": self.text}
        return len(json.dumps(frame, ensure_ascii=self.ascii_json).encode("utf-8",
                                                                         "surrogatepass"))


class Fuzzer:
    def __init__(self, seed: int, tag: str = "") -> None:
        self.rng = random.Random(seed)
        self.tag = tag
        self.ids = 0

    def client_id(self) -> str:
        self.ids += 1
        return f"{self.tag}f{self.ids:06d}-{self.rng.getrandbits(32):08x}"

    def pick(self, options: tuple[str, ...]) -> str:
        return self.rng.choice(options)

    def cjk(self, n: int) -> str:
        return "".join(chr(self.rng.randint(0x4E00, 0x9FA5)) for _ in range(n))

    def mixed(self, n: int) -> str:
        """n code points of several scripts, digits, emoji and punctuation."""
        pools = (lambda: chr(self.rng.randint(0x4E00, 0x9FA5)),
                 lambda: chr(self.rng.randint(0x21, 0x7E)),
                 lambda: self.rng.choice("🙂💳🧾📱✅❌🔥"),
                 lambda: chr(self.rng.randint(0x0600, 0x06FF)),
                 lambda: self.rng.choice(" \u3000，。？！、"))
        return "".join(self.rng.choice(pools)() for _ in range(n))

    def controls(self, k: int) -> str:
        chars = [chr(c) for c in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))]
        return "".join(self.rng.choice(chars) for _ in range(k))

    def surrogates(self, k: int) -> str:
        return "".join(chr(self.rng.choice((self.rng.randint(0xD800, 0xDBFF),
                                            self.rng.randint(0xDC00, 0xDFFF))))
                       for _ in range(k))

    def text(self, kind: str) -> str:
        r = self.rng
        if kind == "empty":
            return r.choice(("", " ", "   ", "\t", "\n\n", " \r\n\t ", "\u3000", "\u00a0 \u2003",
                             "\u2028", "\x1c\x1d\x1e\x1f", "\u0085"))
        if kind == "control-only":  # nothing left once cleaned
            return r.choice(("\x00", "\x01\x02\x03", " \x00 ", "\x7f", "\x1b", "\x00\t\x08",
                             "\x0b\x0c"))
        if kind == "10k":
            return r.choice(("a", "1", "x ", "ab"))[:1] * 10_000 if r.random() < 0.5 \
                else "".join(r.choice("abcdefghij 0123456789") for _ in range(10_000))
        if kind == "10k-cjk":  # 30 KB of UTF-8: over the frame limit
            return self.cjk(10_000)
        if kind == "2000":
            body = self.mixed(MAX_CHARS) if r.random() < 0.5 else self.cjk(MAX_CHARS)
            return body if r.random() < 0.7 else " " + body[2:] + "\n"
        if kind == "2001":
            return self.mixed(MAX_CHARS + 1) if r.random() < 0.5 else "啊" * (MAX_CHARS + 1)
        if kind == "emoji":
            return "".join(r.choice(EMOJI) for _ in range(r.randint(1, 40))) + \
                r.choice(("", " " + self.pick(ZH)))
        if kind == "control":
            base = self.pick(ZH + EN)
            cut = r.randint(0, len(base))
            return self.controls(r.randint(0, 3)) + base[:cut] + self.controls(r.randint(1, 6)) \
                + base[cut:] + self.controls(r.randint(0, 3))
        if kind == "surrogate":
            base = self.pick(ZH + EN)
            cut = r.randint(0, len(base))
            return base[:cut] + self.surrogates(r.randint(1, 4)) + base[cut:] + \
                r.choice(("", self.surrogates(1), "\ud83d\ude00"))
        if kind == "rtl":
            return " ".join(r.sample(RTL, r.randint(1, 3))) + r.choice(("", " " + self.pick(ZH)))
        if kind == "html":
            return r.choice(HTML) + r.choice(("", " " + self.pick(ZH)))
        if kind == "json":
            return r.choice(JSONS)
        if kind == "sql":
            return r.choice(SQL) + r.choice(("", " " + self.pick(ZH)))
        if kind == "format":
            return r.choice(FORMATS) + r.choice(("", " " + self.pick(ZH)))
        if kind == "digits":
            if r.random() < 0.5:
                return "".join(r.choice("0123456789") for _ in range(r.randint(50, 1999)))
            return f"我的身份证{r.choice(DIGITS)}，手机{r.choice(DIGITS)}，{self.pick(ZH)}"
        if kind == "typo":
            return self.pick(TYPOS)
        if kind == "normal":
            return self.pick(ZH + EN)
        if kind == "handoff":
            return r.choice(("转人工", "我要找人工客服", "I want a human", "人工", "转人攻"))
        if kind == "mix":
            kinds = [k for k in TEXT_KINDS if k not in ("10k", "10k-cjk", "2000", "2001", "mix",
                                                         "empty", "control-only")]
            return self.text(r.choice(kinds)) + self.text(r.choice(kinds))
        raise ValueError(kind)

    def message(self, kind: str) -> Item:
        text = self.text(kind)
        item = Item(kind, text, client_id=self.client_id(),
                    ascii_json=_LONE_SURROGATE.search(text) is not None
                    or (len(text) < 1000 and self.rng.random() < 0.3))
        item.expect = expected_outcome(as_received(text))
        if item.frame_bytes() > FRAME_LIMIT:
            item.expect = ("closed", "1009")
        return item

    def junk(self) -> Item:
        r = self.rng
        choice = r.choice(("bad_client_id", "unknown_type", "bad_frame", "not a string",
                           "not json", "binary"))
        if choice == "bad_client_id":
            bad = r.choice(("", "a b", "../../etc", "x" * 65, "中文", "id;drop", None, 42, ["x"]))
            return Item("junk", "hi", shape="frame", expect=("refused", "bad_client_id"),
                        raw={"type": "message", "client_id": bad, "text": "hi"})
        if choice == "unknown_type":
            return Item("junk", shape="frame", expect=("refused", "unknown_type"),
                        raw={"type": r.choice(("admin", "claim", "history", "ack", "", None, 1)),
                             "borrower_id": "demo-posting"})
        if choice == "bad_frame":
            return Item("junk", shape="frame", expect=("refused", "bad_frame"),
                        raw=r.choice((["message"], "message", 1, None, True)))
        if choice == "not a string":  # a message whose text is not a string
            client_id = self.client_id()
            return Item("junk", shape="frame", client_id=client_id,
                        expect=("refused", "empty_message"),
                        raw={"type": "message", "client_id": client_id,
                             "text": r.choice(([], {}, 1, None, ["转人工"], {"text": "hi"}))})
        if choice == "not json":
            return Item("junk", shape="raw", expect=("refused", "not_json"),
                        raw=r.choice(("{", "not json", "{'type': 'hello'}", "\\ud800")))
        return Item("junk", shape="raw", expect=("refused", "binary_frame"),
                    raw=r.choice((b"\x00", b"{\"type\":\"hello\"}", bytes(range(256)))))


# kinds of text, and how often each comes up (relative weights)
TEXT_KINDS = {
    "normal": 10, "typo": 10, "empty": 5, "control-only": 1, "10k": 2, "10k-cjk": 0.3,
    "2000": 3, "2001": 3, "emoji": 8, "control": 8, "surrogate": 8, "rtl": 6, "html": 6,
    "json": 6, "sql": 6, "format": 6, "digits": 6, "handoff": 1, "mix": 8,
}


@dataclass
class Plan:
    borrower_id: str
    locale: str
    items: list[Item]
    burst: bool = False


def make_plans(seed: int, messages: int, tag: str = "") -> list[Plan]:
    """The run's borrowers and what each sends: the same for the same seed. ``tag`` only
    makes the ids new (a desk acks a client id it already stored without answering again)."""
    fuzzer = Fuzzer(seed, tag)
    rng = fuzzer.rng
    kinds, weights = list(TEXT_KINDS), list(TEXT_KINDS.values())
    plans: list[Plan] = []
    sent = 0
    burst_at = set(rng.sample(range(5, 60), BURSTS))
    while sent < messages:
        number = len(plans) + 1
        borrower = f"fuzz-{tag}{number:04d}"
        locale = rng.choice(("zh-CN", "zh-CN", "zh-CN", "en-US", "zh-TW", "en"))
        if number in burst_at:  # 15 short, valid messages at once
            items = [fuzzer.message(rng.choice(("normal", "typo", "emoji", "sql", "format")))
                     for _ in range(15)]
            for index, item in enumerate(items):
                item.text = item.text[:200]
                item.ascii_json = False
                item.expect = ("accepted", cleaned(item.text)) if index < 10 \
                    else ("refused", "rate_limited")
            plans.append(Plan(borrower, locale, items, burst=True))
            sent += len(items)
            continue
        count = min(rng.randint(4, MAX_PER_BORROWER), max(1, messages - sent))
        items = [fuzzer.message(rng.choices(kinds, weights)[0]) for _ in range(count)]
        for _ in range(rng.choice((0, 0, 0, 1, 2))):  # frames that are not messages
            items.insert(rng.randint(0, len(items)), fuzzer.junk())
        plans.append(Plan(borrower, locale, items))
        sent += count
    return plans


# --- running it ---------------------------------------------------------------------------------


@dataclass
class Turn:
    item: Item
    ack: dict[str, Any]
    frames: list[dict[str, Any]]
    seconds: float
    conversation_id: str


@dataclass
class Results:
    sent: int = 0
    frames_sent: int = 0
    accepted: list[Turn] = field(default_factory=list)
    refused: Counter = field(default_factory=Counter)
    closed: Counter = field(default_factory=Counter)
    violations: list[tuple[str, str, str]] = field(default_factory=list)
    bursts: list[str] = field(default_factory=list)
    handed_off: set[str] = field(default_factory=set)
    silent: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def wrong(self, what: str, item: Item | None, detail: Any) -> None:
        shown = repr(item.text if item and item.shape == "message" else
                     item.raw if item else None)
        if len(shown) > 160:
            shown = shown[:160] + f"...({len(shown)} chars)"
        self.violations.append((what, f"{item.kind if item else ''}: {shown}", repr(detail)[:400]))


def said(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in frames
            if f.get("type") == "message" and f.get("sender") in ("bot", "system")]


class BorrowerRun:
    """One borrower's plan on one socket (reopened after a deliberate break)."""

    def __init__(self, stack: Stack, plan: Plan, results: Results) -> None:
        self.url = ws_url(stack, "/ws/chat")
        self.stack = stack
        self.plan = plan
        self.results = results
        self.token = borrower_token(plan.borrower_id, plan.locale)
        self.chat: Chat | None = None
        self.accepted: list[Turn] = []
        self.refused_ids: set[str] = set()
        self.handoff_seen = False
        self.baseline = 0  # the last message id before this run (a borrower seen before)

    async def connect(self) -> Chat:
        chat = await Chat.open(self.url, self.token)
        if self.chat is not None:
            assert chat.conversation_id == self.chat.conversation_id, "a new conversation"
        self.chat = chat
        return chat

    async def run(self) -> None:
        chat = await self.connect()
        try:
            self.baseline = max((m["id"] for m in await chat.history()), default=0)
            if self.baseline:  # not new: perhaps already with a person
                owner = await asyncio.to_thread(ownership, self.stack, chat.conversation_id)
                self.handoff_seen = owner["owner"] == "agent"
            if self.plan.burst:
                await self.burst(chat)
            else:
                for item in self.plan.items:
                    chat = await self.one(chat, item)
            await self.check_history(chat)
        except ConnectionClosed as exc:
            self.results.wrong("socket closed unexpectedly", None,
                               f"{self.plan.borrower_id}: {exc.code} {exc.reason}")
        finally:
            if self.chat is not None:
                await self.chat.close()

    async def one(self, chat: Chat, item: Item) -> Chat:
        results = self.results
        if item.shape in ("frame", "raw"):
            results.frames_sent += 1
            if item.shape == "raw":
                await chat.send_raw(item.raw)
            else:
                await chat.send(item.raw)
            if item.expect[0] == "closed":
                return await self.expect_close(chat, item)
            answer = await chat.wait_for(lambda f: f.get("type") in ("ack", "error"), 30)
            self.check_refusal(item, answer)
            if item.client_id:
                self.refused_ids.add(item.client_id)
            return chat
        results.sent += 1
        started = time.monotonic()
        await chat.send({"type": "message", "client_id": item.client_id, "text": item.text},
                        ensure_ascii=item.ascii_json)
        if item.expect[0] == "closed":
            return await self.expect_close(chat, item)
        answer = await chat.answer_to(item.client_id, timeout=30)
        if answer["type"] == "error":
            self.check_refusal(item, answer)
            self.refused_ids.add(item.client_id)
            return chat
        if item.expect[0] != "accepted":
            results.wrong(f"accepted, expected {item.expect[1]}", item, answer)
            item.expect = ("accepted", cleaned(item.text))  # reported once: check the rest
        frames = await chat.rest_of_turn(answer["id"], TURN_TIMEOUT)
        self.record_turn(item, answer, frames, time.monotonic() - started)
        return chat

    async def expect_close(self, chat: Chat, item: Item) -> Chat:
        try:
            frame = await chat.recv(30)
            self.results.wrong("not closed", item, frame)
        except ConnectionClosed as exc:
            self.results.closed[str(exc.code)] += 1
            if str(exc.code) != item.expect[1]:
                self.results.wrong(f"closed {exc.code}, expected {item.expect[1]}", item,
                                   exc.reason)
        await chat.close()
        return await self.connect()

    def check_refusal(self, item: Item, answer: dict[str, Any]) -> None:
        code = answer.get("code")
        self.results.refused[code] += 1
        if answer.get("type") != "error" or code not in ERROR_CODES:
            self.results.wrong("unclear refusal", item, answer)
        elif item.expect != ("refused", code):
            self.results.wrong(f"refused {code}, expected {item.expect}", item, answer)
        if code == "message_too_long" and answer.get("limit") != MAX_CHARS:
            self.results.wrong("no limit in message_too_long", item, answer)
        if code == "rate_limited" and not answer.get("retry_after"):
            self.results.wrong("no retry_after", item, answer)

    def record_turn(self, item: Item, ack: dict[str, Any], frames: list[dict[str, Any]],
                    seconds: float) -> None:
        assert self.chat is not None
        turn = Turn(item, ack, frames, seconds, self.chat.conversation_id)
        self.accepted.append(turn)
        self.results.accepted.append(turn)
        self.results.by_kind[item.kind].append(seconds)
        echoes = [f for f in frames if f.get("type") == "message" and f.get("id") == ack["id"]]
        if len(echoes) != 1 or echoes[0].get("text") != item.expect[1] \
                or echoes[0].get("sender") != "borrower":
            self.results.wrong("echo missing, repeated or different", item, echoes)
        # a handoff frame: the borrower's place in the queue, or a person joining
        unknown = [f for f in frames if f.get("type") not in ("message", "typing", "handoff")]
        if unknown:
            self.results.wrong("unexpected frames in a turn", item, unknown)
        answers = said(frames)
        if any(m.get("sender") == "system" for m in answers):  # the desk's "assistant down"
            self.results.wrong("the assistant did not answer", item, answers)
        if any(m.get("sender") == "system" or any(h in m.get("text", "") for h in HANDOFF_MARKERS)
               for m in answers):
            self.handoff_seen = True
            self.results.handed_off.add(self.chat.conversation_id)
        if not answers:
            typing = {"type": "typing", "on": True} in frames
            if typing or not self.handoff_seen:
                self.results.wrong("not answered", item, frames)
            else:
                self.results.silent[self.chat.conversation_id] = \
                    self.results.silent.get(self.chat.conversation_id, 0) + 1

    async def burst(self, chat: Chat) -> None:
        results = self.results
        items = self.plan.items
        started = time.monotonic()
        for item in items:
            await chat.send({"type": "message", "client_id": item.client_id, "text": item.text})
        results.sent += len(items)
        answers = [await chat.answer_to(item.client_id) for item in items]
        elapsed = time.monotonic() - started
        kinds = [a["type"] for a in answers]
        results.bursts.append(f"{self.plan.borrower_id}: {kinds.count('ack')} acked, "
                              f"{kinds.count('error')} refused in {elapsed:.2f} s")
        refills = int(elapsed / 3)  # one message every 3 s after the burst of 10
        if kinds[:10] != ["ack"] * 10 or kinds.count("error") < 5 - refills:
            results.wrong("burst not limited to 10", None, (self.plan.borrower_id, kinds))
        for item, answer in zip(items, answers, strict=True):
            if answer["type"] == "ack" and item.expect[0] == "refused":  # a token refilled
                item.expect = ("accepted", cleaned(item.text))
            if answer["type"] == "error":
                self.check_refusal(item, answer)
                self.refused_ids.add(item.client_id)
        # the desk echoes each accepted message at once; the turns follow one by one
        acked = [(item, a) for item, a in zip(items, answers, strict=True)
                 if a["type"] == "ack"]
        echoes = {a["id"]: await chat.wait_for(
            lambda f, i=a["id"]: f.get("type") == "message" and f.get("id") == i, 30)
            for _, a in acked}
        for item, answer in acked:
            frames = await chat.rest_of_turn(answer["id"], TURN_TIMEOUT)
            item.kind = "burst"
            self.record_turn(item, answer, [echoes[answer["id"]], *frames],
                             time.monotonic() - started)

    async def check_history(self, chat: Chat) -> None:
        """Every accepted message stored once, as cleaned; nothing refused stored; every bot
        message delivered live was stored. Also proves the socket is still open."""
        history = await chat.history(after=self.baseline)
        stored: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for message in history:
            if message["sender"] == "borrower":
                stored[message.get("client_id") or ""].append(message)
        for turn in self.accepted:
            copies = stored.get(turn.item.client_id, [])
            if len(copies) != 1 or copies[0]["text"] != turn.item.expect[1] \
                    or copies[0]["id"] != turn.ack["id"]:
                self.results.wrong("not stored exactly once as cleaned", turn.item,
                                   [(c["id"], c["text"][:80]) for c in copies])
        for client_id in self.refused_ids & set(stored):
            self.results.wrong("refused but stored", None, (client_id, stored[client_id]))
        extra = set(stored) - {t.item.client_id for t in self.accepted}
        if extra:
            self.results.wrong("stored but never acked", None, sorted(extra))
        live = sorted(m["id"] for t in self.accepted for m in said(t.frames))
        kept = sorted(m["id"] for m in history if m["sender"] in ("bot", "system"))
        if live != kept:
            self.results.wrong("bot messages delivered and stored differ", None,
                               (self.plan.borrower_id, live, kept))


def log_problems(stack: Stack, offsets: dict[str, int]) -> dict[str, list[str]]:
    """New tracebacks and errors in the servers' logs since ``offsets``."""
    found: dict[str, list[str]] = {}
    for path in sorted(Path(stack.config.log_dir).glob("*.log")):
        with path.open("rb") as log:
            log.seek(offsets.get(path.name, 0))
            lines = log.read().decode("utf-8", "replace").splitlines()
        bad = [line for line in lines if re.search(
            r"Traceback|Exception in ASGI|\bERROR\b|CRITICAL|Internal Server Error| 500 ", line)]
        if bad:
            found[path.name] = bad
    return found


def log_offsets(stack: Stack) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in Path(stack.config.log_dir).glob("*.log")}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def test_fuzz_the_chat_socket(live_stack: Stack) -> None:
    plans = make_plans(SEED, MESSAGES, tag=os.environ.get("RELEND_FUZZ_TAG",
                                                          uuid.uuid4().hex[:6] + "-"))
    assert sum(1 for p in plans for i in p.items if i.shape == "message") >= MESSAGES
    assert all(sum(i.shape == "message" for i in p.items) <= MAX_PER_BORROWER
               for p in plans if not p.burst)
    results = Results()
    offsets = log_offsets(live_stack)

    async def fuzz() -> float:
        queue: asyncio.Queue[Plan] = asyncio.Queue()
        for plan in plans:
            queue.put_nowait(plan)

        async def worker() -> None:
            while not queue.empty():
                plan = queue.get_nowait()
                try:
                    await BorrowerRun(live_stack, plan, results).run()
                except Exception as exc:  # a timeout, a refused connection, a closed socket
                    results.wrong("borrower run failed", None, (plan.borrower_id, repr(exc)))

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(SOCKETS)))
        return time.monotonic() - started

    elapsed = run_coroutine(fuzz())

    # after it all: the desk is healthy, and conversations left silent are really with a person
    desk_healthy(live_stack)
    for conversation_id in results.silent:
        owner = ownership(live_stack, conversation_id)
        if owner["owner"] != "agent" or not owner["case_id"]:
            results.wrong("silent although the bot owns it", None, owner)
    server_errors = log_problems(live_stack, offsets)

    latencies = [t.seconds for t in results.accepted if t.item.kind != "burst"]
    codes = ", ".join(f"{code} {n}" for code, n in sorted(results.refused.items()))
    print(f"\n=== fuzz: seed {SEED}, {len(plans)} borrowers ({plans[0].borrower_id}...), "
          f"{SOCKETS} sockets ===")
    print(f"messages sent {results.sent} (+{results.frames_sent} frames that are not messages)")
    print(f"accepted {len(results.accepted)}; refused {sum(results.refused.values())} ({codes}); "
          f"sockets closed on purpose {sum(results.closed.values())} ({dict(results.closed)})")
    print(f"conversations handed to a person {len(results.handed_off)}; silent turns while with "
          f"a person {sum(results.silent.values())}")
    print(f"wall time {elapsed:.1f} s; {len(results.accepted) / elapsed:.1f} turns/s; "
          "turn latency (send to turn_done, bursts aside) "
          f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
          f"max {max(latencies, default=0) * 1000:.0f} ms")
    print("latency by kind (p50 / p99 ms, n): " + "; ".join(
        f"{kind} {statistics.median(v) * 1000:.0f}/{percentile(v, 0.99) * 1000:.0f} ({len(v)})"
        for kind, v in sorted(results.by_kind.items())))
    print("bursts: " + "; ".join(results.bursts))
    print(f"server log problems: { {k: len(v) for k, v in server_errors.items()} }")
    for name, lines in server_errors.items():
        for line in lines[:5]:
            print(f"  {name}: {line[:300]}")
    by_what = Counter(what for what, _, _ in results.violations)
    print(f"violations: {dict(by_what)}")
    for what in by_what:
        for violation in [v for v in results.violations if v[0] == what][:3]:
            print("  ", violation)

    assert results.sent >= MESSAGES
    assert not results.violations, f"{len(results.violations)} violations: {dict(by_what)}"
    assert "desk.log" not in server_errors, server_errors["desk.log"][:10]


def test_the_fuzz_is_repeatable() -> None:
    first, second = make_plans(SEED, 300, "t-"), make_plans(SEED, 300, "t-")
    assert [(p.borrower_id, [(i.kind, i.text, i.raw, i.client_id) for i in p.items])
            for p in first] == \
        [(p.borrower_id, [(i.kind, i.text, i.raw, i.client_id) for i in p.items])
         for p in second]
    kinds = Counter(i.kind for p in make_plans(SEED, MESSAGES) for i in p.items)
    assert set(TEXT_KINDS) <= set(kinds), kinds


def test_the_oracle_follows_the_documented_cleaning() -> None:
    assert expected_outcome("  hi\x00\x07 there\x7f \n") == ("accepted", "hi there")
    assert expected_outcome("a\ud800b") == ("accepted", "a\ufffdb")
    assert expected_outcome("line one\nline two\tend") == ("accepted", "line one\nline two\tend")
    assert expected_outcome(" \u3000\t") == ("refused", "empty_message")
    assert expected_outcome("\x00\x01") == ("refused", "empty_message")
    assert expected_outcome("x" * 2000) == ("accepted", "x" * 2000)
    assert expected_outcome("x" * 2001) == ("refused", "message_too_long")
    assert expected_outcome(["x"]) == ("refused", "empty_message")
    # a surrogate pair in JSON escapes is one character; a lone one becomes U+FFFD
    assert expected_outcome(as_received("a\ud83d\ude00\ud83d")) == ("accepted", "a😀\ufffd")
