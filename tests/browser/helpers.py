"""What the browser tests do on the two pages: the chat (borrower side) and the console
(agent side), and a few calls to the desk's API next to them."""

from __future__ import annotations

import contextlib
from typing import Any

import requests

BOT_WAIT_MS = 60_000
PASSWORD = "relend-demo"  # the sandbox's demo agents: agent1 李娜 (supervisor), agent2 王磊 (agent)


# Every page reports what the Content-Security-Policy blocked, twice over: Chromium's console
# error ("Refused to ... because it violates the following Content Security Policy directive")
# and the page's own securitypolicyviolation events (init scripts run outside the page's CSP).
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
                              " at " + (e.sourceFile || "") + ":" + (e.lineNumber || 0));
});
"""


def csp_violations(page) -> list[str]:
    """What the CSP blocked on this page so far (console errors and violation events)."""
    found = list(getattr(page, "csp_console", []))
    with contextlib.suppress(Exception):
        found += page.evaluate("() => window.__cspViolations || []")
    return found


# ---------- borrower side ----------
def open_chat(page, desk_url: str, borrower_id: str, locale: str = "zh-CN") -> None:
    page.goto(f"{desk_url}/chat")
    page.get_by_test_id("locale-zh" if locale.startswith("zh") else "locale-en").click()
    page.get_by_test_id(f"borrower-{borrower_id}").click()
    page.get_by_test_id("chat-input").wait_for()
    wait_connected(page)


def open_chat_as(page, desk_url: str, borrower_id: str, locale: str = "zh-CN") -> None:  # type: ignore[no-untyped-def]
    """The chat page signed in as any borrower (a fixture's ``qa-...`` id, not only the demo
    ones the picker lists): the app's session, as the app stores it, then a reload."""
    import json

    from desk import auth
    from qa.live import app_secret

    page.goto(f"{desk_url}/chat")
    token = auth.sign({"borrower_id": borrower_id, "locale": locale}, app_secret(),
                      auth.BORROWER, 3600)
    page.evaluate("s => localStorage.setItem('relend.chat.session', s)", json.dumps(
        {"token": token, "borrower_id": borrower_id, "name": "QA", "locale": locale}))
    page.reload()
    page.get_by_test_id("chat-input").wait_for()
    wait_connected(page)


def wait_connected(page) -> None:
    page.wait_for_function("() => window.relendChat && window.relendChat.connected()",
                           timeout=20_000)


def count(page, testid: str) -> int:
    return page.locator(f"#message-list [data-testid={testid}]").count()


def wait_for_more(page, testid: str, before: int, timeout: int = BOT_WAIT_MS) -> None:
    """Wait for a new message of a kind; a new system message instead (the desk saying the
    assistant did not answer in time) fails at once with its text."""
    systems = count(page, "message-system")
    page.wait_for_function(
        "([sel, n, sys]) => document.querySelectorAll(sel).length > n || "
        "document.querySelectorAll('#message-list [data-testid=message-system]').length > sys",
        arg=[f"#message-list [data-testid={testid}]", before, systems], timeout=timeout)
    if count(page, testid) <= before:
        text = page.locator("#message-list [data-testid=message-system]").last.inner_text()
        raise AssertionError(f"the desk reported instead of a {testid}: {text}")


# the desk has finished the turn of every message this page load sent (the page records the
# desk's turn_done frames on #message-list), and nothing waits to be sent
TURNS_DONE = """() => {
  const list = document.getElementById('message-list');
  return Number(list.getAttribute('data-turn-done') || 0) >=
         Number(list.getAttribute('data-turn-sent') || 0) &&
    document.getElementById('typing').hidden &&
    !document.querySelector('[data-testid=message-pending]');
}"""


def settle(page) -> None:
    """The bot may answer in several messages: wait until the desk has finished the turn of
    every message this page sent, then until it has answered a fresh "hello" -- by then the page
    has handled everything the desk sent before, including replies that no borrower message
    started (the bot's when an agent hands the conversation back or runs a check)."""
    page.wait_for_function(TURNS_DONE, timeout=BOT_WAIT_MS)
    wait_connected(page)
    page.evaluate("() => window.relendChat.sync()")


def say(page, text: str) -> list[str]:
    """Send a message and return the texts of the bot's answer to it."""
    bots_before = count(page, "message-bot")
    page.get_by_test_id("chat-input").fill(text)
    page.get_by_test_id("chat-input").press("Enter")
    wait_for_more(page, "message-bot", bots_before)
    settle(page)
    return page.locator("#message-list [data-testid=message-bot] [data-testid=bubble]"
                        ).all_inner_texts()[bots_before:]


def send(page, text: str) -> None:
    """Send a message and wait only until the desk has stored it (not for the bot)."""
    page.get_by_test_id("chat-input").fill(text)
    page.get_by_test_id("chat-input").press("Enter")
    page.locator("#message-list [data-testid=message-borrower] [data-testid=bubble]",
                 has_text=text).first.wait_for()


def borrower_texts(page) -> list[str]:
    """What the borrower's bubbles say, in order."""
    return page.locator("#message-list [data-testid=message-borrower] [data-testid=bubble]"
                        ).all_inner_texts()


def message_ids(page) -> list[int]:
    return [int(i) for i in page.locator("#message-list [data-id]").evaluate_all(
        "rows => rows.map(r => r.getAttribute('data-id'))")]


def storage_keys(page) -> dict[str, list[str]]:
    """Every key in the page's localStorage and sessionStorage."""
    return page.evaluate("() => ({local: Object.keys(localStorage), "
                         "session: Object.keys(sessionStorage)})")


# ---------- agent side ----------
def agent_login(page, desk_url: str, username: str = "agent1") -> None:
    page.goto(f"{desk_url}/console")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("workspace").wait_for()
    page.get_by_test_id("agent-role").wait_for()


def queue_item(page, borrower_id: str):
    return page.locator(f"[data-testid=queue-item][data-borrower-id='{borrower_id}']")


def console_session(page) -> dict[str, Any] | None:
    """What the console keeps about its session (sessionStorage), or None."""
    return page.evaluate(
        "() => JSON.parse(sessionStorage.getItem('relend.console.session') || 'null')")


def agent_login_api(desk_url: str, username: str) -> dict[str, Any]:
    response = requests.post(f"{desk_url}/api/agent/login",
                             json={"username": username, "password": PASSWORD}, timeout=10)
    response.raise_for_status()
    return response.json()


def api_token(desk_url: str, username: str) -> str:
    """An access token for API calls next to the pages (valid for the desk's access TTL)."""
    return agent_login_api(desk_url, username)["token"]


# The type of every frame the desk sends the chat page, noted once the page has handled it
# (an init script: it runs outside the page's Content-Security-Policy, from the next load on)
RECORD_FRAMES = """
(() => {
  const Native = window.WebSocket;
  window.__frames = [];
  window.WebSocket = new Proxy(Native, {construct(target, args) {
    const socket = Reflect.construct(target, args);
    socket.addEventListener("message", (event) => {
      let type = null;
      try { type = JSON.parse(event.data).type; } catch (e) { /* not JSON */ }
      setTimeout(() => window.__frames.push(type), 0);  // after the page's own handler
    });
    return socket;
  }});
})();
"""


def frames(page, kind: str) -> int:  # type: ignore[no-untyped-def]
    """How many frames of ``kind`` this page load has handled so far."""
    return page.evaluate("(kind) => (window.__frames || []).filter(t => t === kind).length",
                         kind)


def wait_for_frame(page, kind: str, seen: int = 0) -> None:  # type: ignore[no-untyped-def]
    """Wait until the page has handled more than ``seen`` frames of ``kind``."""
    page.wait_for_function(
        "([kind, n]) => (window.__frames || []).filter(t => t === kind).length > n",
        arg=[kind, seen])
