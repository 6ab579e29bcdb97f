"""The pages under the desk's security hardening, in a real browser against the live stack.

- the chat leaves nothing of a borrower on the device after "switch borrower" or a refused
  token (close 4401), and an unsent message refused as rate limited waits and is resent;
- the console: supervisors (agent1) edit canned replies, agents (agent2) only insert them; an
  agent cannot open a case another agent claimed; the access token is refreshed before it runs
  out and after a 401; "Sign out" revokes the tokens and clears the tab's storage; too many
  failed sign-ins get a clear message;
- both pages work under the Content-Security-Policy (nothing blocked).

Each test uses demo borrowers no other browser test uses, so the tests do not share cases.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
import requests

from tests.browser.helpers import (
    RECORD_FRAMES,
    agent_login,
    agent_login_api,
    borrower_texts,
    console_session,
    csp_violations,
    frames,
    open_chat,
    queue_item,
    send,
    storage_keys,
    wait_connected,
    wait_for_frame,
)

CSP_MUST_HAVE = ["default-src 'self'", "script-src 'self'", "style-src 'self'",
                 "connect-src 'self'", "object-src 'none'"]
# the console has drawn the queue it loaded (both start hidden/empty on each page load)
QUEUE_DRAWN = ("() => !document.getElementById('queue-empty').hidden || "
               "document.querySelectorAll('#queue [data-testid=queue-item]').length > 0")


# ---------- chat: nothing left behind ----------
def test_switch_borrower_clears_everything_the_chat_stored(new_page, desk_url):
    chat = new_page("phone")
    chat.add_init_script(RECORD_FRAMES)
    open_chat(chat, desk_url, "demo-in-use")
    secret = "请帮我看看额度（切换用户测试）"
    send(chat, secret)
    keys = storage_keys(chat)
    assert "relend.chat.session" in keys["local"], keys
    assert "relend.chat.state.demo-in-use" in keys["local"], keys
    state = json.loads(chat.evaluate("localStorage.getItem('relend.chat.state.demo-in-use')"))
    assert any(m["text"] == secret for m in state["messages"])

    chat.get_by_test_id("switch-user").click()
    chat.get_by_test_id("picker").wait_for()
    assert chat.evaluate("localStorage.length") == 0, storage_keys(chat)
    assert chat.evaluate("sessionStorage.length") == 0, storage_keys(chat)
    assert chat.locator("#message-list > *").count() == 0
    assert chat.get_by_test_id("who").inner_text() == ""
    assert secret not in chat.content()

    # the next person on this device: a reload shows the picker, nothing of demo-in-use
    chat.reload()
    chat.get_by_test_id("picker").wait_for()
    assert chat.get_by_test_id("chat").is_hidden()
    assert chat.evaluate("localStorage.length") == 0

    # another borrower starts from an empty page
    histories = frames(chat, "history")
    chat.get_by_test_id("borrower-demo-loan-cap").click()
    wait_connected(chat)
    wait_for_frame(chat, "history", histories)  # the desk's history for demo-loan-cap, shown
    assert secret not in chat.content()
    assert not [k for k in storage_keys(chat)["local"] if "demo-in-use" in k]


def test_refused_token_returns_to_the_picker_and_clears_storage(new_page, desk_url):
    chat = new_page("phone")
    chat.add_init_script(RECORD_FRAMES)
    open_chat(chat, desk_url, "demo-overdue")
    # a stored session whose token the desk refuses, with a message still in the outbox
    unsent = "这条不应该被发送"
    chat.evaluate("""(text) => {
        const s = JSON.parse(localStorage.getItem('relend.chat.session'));
        s.token = 'eyJhbGciOiJIUzI1NiJ9.eyJib3Jyb3dlcl9pZCI6ImRlbW8tb3ZlcmR1ZSJ9.c2lnbmF0dXJl';
        localStorage.setItem('relend.chat.session', JSON.stringify(s));
        const key = 'relend.chat.state.demo-overdue';
        const st = JSON.parse(localStorage.getItem(key));
        st.unacked.push({client_id: 'mtest-refused-1', text, label: null,
                         at: new Date().toISOString()});
        localStorage.setItem(key, JSON.stringify(st));
    }""", unsent)
    chat.reload()
    chat.get_by_test_id("picker").wait_for()  # closed with 4401: back to the picker
    error = chat.get_by_test_id("picker-error")
    error.wait_for()
    assert "重新选择" in error.inner_text()
    assert chat.evaluate("localStorage.length") == 0, storage_keys(chat)
    assert chat.evaluate("sessionStorage.length") == 0
    assert chat.locator("#message-list > *").count() == 0

    # the outbox went with it: signing in again shows the message was never sent
    histories = frames(chat, "history")
    chat.get_by_test_id("borrower-demo-overdue").click()
    wait_connected(chat)
    wait_for_frame(chat, "history", histories)  # everything the desk has, shown
    assert unsent not in borrower_texts(chat)


def test_rate_limited_message_waits_and_is_resent(new_page, desk_url):
    chat = new_page("phone")
    refused: list[str] = []

    def relay(ws) -> None:  # type: ignore[no-untyped-def]
        """Between the page and the desk: the first message is answered as rate limited."""
        server = ws.connect_to_server()

        def from_page(message) -> None:  # type: ignore[no-untyped-def]
            try:
                data = json.loads(message)
            except (TypeError, ValueError):
                data = None
            if isinstance(data, dict) and data.get("type") == "message" and not refused:
                refused.append(data["client_id"])
                ws.send(json.dumps({"type": "error", "code": "rate_limited",
                                    "client_id": data["client_id"], "retry_after": 3}))
                return
            server.send(message)

        ws.on_message(from_page)

    chat.route_web_socket(re.compile(r"/ws/chat$"), relay)
    open_chat(chat, desk_url, "demo-score-drop")
    text = f"额度什么时候恢复 {uuid.uuid4().hex[:6]}"  # unique in the conversation
    chat.get_by_test_id("chat-input").fill(text)
    chat.get_by_test_id("chat-input").press("Enter")

    pending = chat.locator("[data-testid=message-pending][data-error=rate_limited]")
    pending.wait_for()
    assert "发送太快了" in pending.get_by_test_id("pending-note").inner_text()
    assert pending.get_by_test_id("pending-state").inner_text() == "等待重发"
    stored = json.loads(chat.evaluate("localStorage.getItem('relend.chat.state.demo-score-drop')"))
    assert [u["client_id"] for u in stored["unacked"]] == refused  # still in the outbox

    # after retry_after the page resends it (same client id) and the desk takes it, once
    chat.locator("#message-list [data-testid=message-borrower] [data-testid=bubble]",
                 has_text=text).first.wait_for(timeout=15_000)
    chat.wait_for_function("() => !document.querySelector('[data-testid=message-pending]')")
    assert borrower_texts(chat).count(text) == 1
    stored = json.loads(chat.evaluate("localStorage.getItem('relend.chat.state.demo-score-drop')"))
    assert stored["unacked"] == []
    assert any(m.get("client_id") == refused[0] for m in stored["messages"])


# ---------- console: roles, case access ----------
def test_only_supervisors_edit_canned_replies_and_cases_stay_with_their_agent(new_page, desk_url):
    chat = new_page("phone")
    open_chat(chat, desk_url, "demo-policy")
    send(chat, "转人工")

    # agent2 (王磊) is an agent: may look at a waiting case, insert canned replies, not edit them
    agent = new_page("desktop")
    agent_login(agent, desk_url, "agent2")
    assert agent.get_by_test_id("agent-role").inner_text() == "客服"
    item = queue_item(agent, "demo-policy")
    item.wait_for(timeout=60_000)  # the bot hands over (or the desk does, if the bot is down)
    assert item.get_attribute("data-status") == "waiting"
    case_id = item.get_attribute("data-case-id")
    item.click()
    agent.get_by_test_id("claim-button").wait_for()
    agent.get_by_test_id("canned-toggle").click()
    agent.get_by_test_id("canned-panel").wait_for()
    agent.get_by_test_id("canned-insert").first.wait_for()
    assert agent.get_by_test_id("canned-edit").count() == 0
    assert agent.get_by_test_id("canned-delete").count() == 0
    assert agent.get_by_test_id("canned-add").is_hidden()
    # and the desk refuses it anyway
    token = agent_login_api(desk_url, "agent2")["token"]
    refused = requests.post(f"{desk_url}/api/agent/canned", timeout=10,
                            headers={"Authorization": f"Bearer {token}"},
                            json={"title": "不该有", "text_zh": "不该有", "text_en": "nope"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"

    # agent1 (李娜) is a supervisor: the same list with edit and delete
    supervisor = new_page("desktop")
    agent_login(supervisor, desk_url, "agent1")
    assert supervisor.get_by_test_id("agent-role").inner_text() == "主管"
    queue_item(supervisor, "demo-policy").click()
    supervisor.get_by_test_id("claim-button").wait_for()
    supervisor.get_by_test_id("canned-toggle").click()
    supervisor.get_by_test_id("canned-edit").first.wait_for()
    inserts = supervisor.get_by_test_id("canned-insert").count()
    assert supervisor.get_by_test_id("canned-edit").count() == inserts
    assert supervisor.get_by_test_id("canned-delete").count() == inserts
    assert supervisor.get_by_test_id("canned-add").is_visible()

    # agent1 claims it: agent2's open panel gives way to a plain "not yours" message
    supervisor.get_by_test_id("claim-button").click()
    supervisor.get_by_test_id("return-button").wait_for()
    forbidden = agent.get_by_test_id("case-forbidden")
    forbidden.wait_for()
    assert "李娜" in forbidden.inner_text()
    assert agent.get_by_test_id("case").is_hidden()
    assert agent.get_by_test_id("transcript").inner_text() == ""
    # clicking it again says the same, not a broken panel
    agent.get_by_test_id("case-placeholder").wait_for(state="hidden")
    queue_item(agent, "demo-policy").click()
    forbidden.wait_for()
    assert agent.get_by_test_id("case").is_hidden()
    assert requests.get(f"{desk_url}/api/agent/cases/{case_id}", timeout=10,
                        headers={"Authorization": f"Bearer {token}"}).status_code == 403

    # the claimer sees the borrower's new messages live (they come on agent1's socket only)
    chat.get_by_test_id("chat-input").fill("请问还在吗")
    chat.get_by_test_id("chat-input").press("Enter")
    supervisor.locator("[data-testid=t-message][data-sender=borrower]",
                       has_text="请问还在吗").wait_for()
    supervisor.get_by_test_id("note-input").fill("角色测试备注")
    supervisor.get_by_test_id("note-add").click()
    supervisor.get_by_test_id("note").filter(has_text="角色测试备注").wait_for()
    supervisor.get_by_test_id("close-button").click()
    supervisor.get_by_test_id("close-button").click()  # the second click confirms
    supervisor.locator("[data-testid=case-status][data-status=closed]").wait_for()


# ---------- console: tokens ----------
def test_console_refreshes_its_token_before_it_runs_out(new_page, desk_url):
    console = new_page("desktop")
    console.clock.install()  # to jump to just before the access token runs out
    agent_login(console, desk_url, "agent2")
    first = console_session(console)
    assert first and first["token"] and first["refresh_token"], first
    assert first["agent"]["role"] == "agent"
    assert first["ttl"] > 10, first  # expires_in from the login answer

    with console.expect_request(lambda r: r.url.endswith("/api/agent/refresh")) as refreshed:
        console.clock.fast_forward(int(first["ttl"] * 1000) - 1_000)
    assert refreshed.value.headers["authorization"] == f"Bearer {first['refresh_token']}"
    assert refreshed.value.response().status == 200
    console.wait_for_function(
        "(old) => JSON.parse(sessionStorage.getItem('relend.console.session')).expires_at > old",
        arg=first["expires_at"])
    assert console.get_by_test_id("login-view").is_hidden()
    assert console_session(console)["refresh_token"] == first["refresh_token"]


def test_console_retries_a_401_after_refreshing_and_sign_out_revokes(new_page, desk_url):
    console = new_page("desktop")
    agent_login(console, desk_url, "agent2")
    calls: list[str] = []

    def expired_once(route) -> None:  # type: ignore[no-untyped-def]
        calls.append(route.request.headers.get("authorization", ""))
        if len(calls) == 1:
            route.fulfill(status=401, content_type="application/json",
                          body=json.dumps({"error": {"code": "unauthorized", "message": "x"}}))
        else:
            route.continue_()

    # the route is set inside the block: the console also reloads the queue whenever the desk
    # says it changed (other conversations on the shared stack), and such a reload meeting the
    # 401 first refreshes too -- before the page's reload, but still within the block
    with console.expect_request(lambda r: r.url.endswith("/api/agent/refresh")):
        console.route("**/api/agent/queue", expired_once)
        console.reload()  # the queue is loaded again on start
    console.get_by_test_id("workspace").wait_for()
    # the same call again, after the refresh: the queue is drawn only from a retried answer
    console.wait_for_function(QUEUE_DRAWN)
    assert len(calls) >= 2, calls
    assert console.get_by_test_id("login-view").is_hidden()
    console.unroute("**/api/agent/queue")

    # sign out: back to the login form, nothing of the session left in this tab's storage
    held = console_session(console)
    with console.expect_response(lambda r: r.url.endswith("/api/agent/logout")) as revoked:
        console.get_by_test_id("logout").click()
    assert revoked.value.ok, revoked.value.status
    console.get_by_test_id("login-view").wait_for()
    keys = storage_keys(console)
    assert [k for k in keys["local"] if k != "relend.console.lang"] == [], keys
    assert keys["session"] == [], keys
    assert console.get_by_test_id("queue").inner_text() == ""
    assert console.get_by_test_id("login-error").is_hidden()
    # ... and the desk no longer takes its tokens
    assert requests.get(f"{desk_url}/api/agent/queue", timeout=10, headers={
        "Authorization": f"Bearer {held['token']}"}).status_code == 401
    assert requests.post(f"{desk_url}/api/agent/refresh", timeout=10, headers={
        "Authorization": f"Bearer {held['refresh_token']}"}).status_code == 401
    console.reload()
    console.get_by_test_id("login-view").wait_for()
    assert console.get_by_test_id("workspace").is_hidden()


def test_agent_socket_reconnects_with_a_fresh_token_after_4401(new_page, desk_url):
    console = new_page("desktop")
    # what the page offers as subprotocols on each socket it opens
    console.add_init_script("""
        window.__wsProtocols = [];
        const Native = window.WebSocket;
        window.WebSocket = function (url, protocols) {
          window.__wsProtocols.push({url: String(url), protocols: [].concat(protocols || [])});
          return new Native(url, protocols);
        };
        window.WebSocket.prototype = Native.prototype;
        Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
    """)
    routes = []

    def relay(ws) -> None:  # type: ignore[no-untyped-def]
        routes.append(ws)
        ws.connect_to_server()

    console.route_web_socket(re.compile(r"/ws/agent$"), relay)
    agent_login(console, desk_url, "agent1")
    # the socket is open once the relay has connected it to the desk
    console.wait_for_function("() => !document.getElementById('live').classList.contains('off')")
    assert len(routes) == 1, routes
    opened = console.evaluate("window.__wsProtocols")
    token = console_session(console)["token"]
    assert opened[-1]["protocols"] == ["relend.v1", f"auth.{token}"], opened
    assert "token" not in opened[-1]["url"], opened

    # the desk closes the socket as for an expired token: refresh, then a new socket
    with console.expect_request(lambda r: r.url.endswith("/api/agent/refresh")):
        routes[0].close(code=4401, reason="expired")
    console.wait_for_function("() => window.__wsProtocols.length === 2")
    fresh = console_session(console)["token"]
    assert console.evaluate("window.__wsProtocols")[-1]["protocols"] == [
        "relend.v1", f"auth.{fresh}"]
    console.wait_for_function("() => !document.getElementById('live').classList.contains('off')")
    assert len(routes) == 2, routes
    assert console.get_by_test_id("login-view").is_hidden()


def test_refused_refresh_signs_out(new_page, desk_url):
    console = new_page("desktop")
    agent_login(console, desk_url, "agent2")
    # the refresh token no longer works (revoked elsewhere): any 401 ends at the login form
    console.route("**/api/agent/refresh", lambda route: route.fulfill(
        status=401, content_type="application/json",
        body=json.dumps({"error": {"code": "unauthorized", "message": "Sign in again."}})))
    console.route("**/api/agent/queue", lambda route: route.fulfill(
        status=401, content_type="application/json",
        body=json.dumps({"error": {"code": "unauthorized", "message": "expired"}})))
    console.evaluate("""() => {
        const s = JSON.parse(sessionStorage.getItem('relend.console.session'));
        s.expires_at = Date.now() + 3600 * 1000;  // no refresh on load: the 401 triggers it
        sessionStorage.setItem('relend.console.session', JSON.stringify(s));
    }""")
    console.reload()
    console.get_by_test_id("login-view").wait_for()
    # the form can show before the refused refresh has put its reason on it: wait for the words
    console.locator("[data-testid=login-error]", has_text="登录已过期").wait_for()
    assert "登录已过期" in console.get_by_test_id("login-error").inner_text()
    keys = storage_keys(console)
    assert keys["session"] == [], keys


@pytest.mark.parametrize(("lang", "expected"), [
    ("zh", ["登录失败次数过多", "2 分钟"]),
    ("en", ["Too many failed sign-in attempts", "2 min"]),
])
def test_too_many_sign_in_attempts_are_explained(new_page, desk_url, lang, expected):
    console = new_page("desktop")
    # the desk's answer after too many failures, without locking a real account for the suite
    console.route("**/api/agent/login", lambda route: route.fulfill(
        status=429, content_type="application/json", headers={"Retry-After": "120"},
        body=json.dumps({"error": {"code": "too_many_attempts",
                                   "message": "Too many failed sign-ins."}})))
    console.goto(f"{desk_url}/console")
    console.locator(f"[data-ui-lang={lang}]").click()
    console.get_by_test_id("login-username").fill("agent2")
    console.get_by_test_id("login-password").fill("wrong")
    console.get_by_test_id("login-submit").click()
    error = console.get_by_test_id("login-error")
    error.wait_for()
    assert error.get_attribute("data-code") == "too_many_attempts"
    for part in expected:
        assert part in error.inner_text(), error.inner_text()
    assert console.get_by_test_id("login-submit").is_disabled()


# ---------- both pages under the Content-Security-Policy ----------
def test_pages_work_under_the_content_security_policy(new_page, desk_url):
    chat = new_page("phone")
    response = chat.goto(f"{desk_url}/chat")
    policy = response.headers.get("content-security-policy", "")
    for directive in CSP_MUST_HAVE:
        assert directive in policy, policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, policy
    chat.get_by_test_id("locale-en").click()
    chat.get_by_test_id("locale-zh").click()
    chat.get_by_test_id("borrower-demo-score-inactive").click()
    wait_connected(chat)
    send(chat, "额度什么时候恢复")
    chat.get_by_test_id("chat-input").fill("第二行\n换行")  # the composer resizes itself
    chat.get_by_test_id("switch-user").click()
    chat.get_by_test_id("picker").wait_for()
    assert chat.locator("[data-testid=borrower-list] .situation").first.is_visible()

    console = new_page("desktop")
    response = console.goto(f"{desk_url}/console")
    assert "script-src 'self'" in response.headers.get("content-security-policy", "")
    console.get_by_test_id("login-username").fill("agent1")
    console.get_by_test_id("login-password").fill("relend-demo")
    console.get_by_test_id("login-submit").click()
    console.get_by_test_id("workspace").wait_for()
    console.locator("[data-ui-lang=en]").click()
    console.locator("[data-ui-lang=zh]").click()
    console.get_by_test_id("tab-lookup").click()
    console.get_by_test_id("lookup-input").fill("demo-score-inactive")
    console.get_by_test_id("lookup-submit").click()
    console.get_by_test_id("conversation-item").first.wait_for()
    console.get_by_test_id("tab-queue").click()
    console.locator("#panel-queue").wait_for()
    # two painted frames after the switch: whatever it would have the policy block is reported
    console.evaluate(
        "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")

    for page in (chat, console):
        blocked = csp_violations(page)
        assert not blocked, blocked
    # the pages' own files hold nothing the policy would block
    for name in ("chat.html", "console.html"):
        html = requests.get(f"{desk_url}/static/{name}", timeout=10).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), name  # inline script
        assert not re.search(r"\sstyle\s*=", html), name
        assert "javascript:" not in html, name
    for name in ("chat.js", "console.js"):
        source = requests.get(f"{desk_url}/static/{name}", timeout=10).text
        assert not re.search(r"\beval\s*\(|new Function\s*\(|javascript:", source), name
        # no el(tag, {style: "..."}) either
        assert not re.search(r"""["']?style["']?\s*:\s*["']""", source), name
        assert 'setAttribute("style"' not in source, name
