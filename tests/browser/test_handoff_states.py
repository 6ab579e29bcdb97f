"""Issue 12: the borrower sees where a handoff stands, and agents see who took a case.

The chat's header says who answers -- the assistant, the borrower waiting for a person (with
the place in the queue), or the person by name -- from the desk's handoff state, never from the
last message; it stays right across reloads. A person joining, and leaving with the assistant
back, is a line the desk stores in the conversation: any device reads it with the history.
The console asks before closing, keeps the context panel current when the bot checks the
account again (and shows what changed in the account meanwhile), never offers "claim" on a
case another agent took, and says its alerts again in the language it switches to.
"""

from __future__ import annotations

import re
import uuid

import requests

from qa.live import put_fixture
from tests.browser.helpers import (
    agent_login,
    api_token,
    open_chat,
    open_chat_as,
    queue_item,
    say,
    settle,
    wait_connected,
)

# what a person reads in each state, as written in texts/<lang>.yml (checked by hand)
ZH = {"online": "智能助手 · 在线", "waiting": r"等待人工客服 · 排第 (\d+) 位",
      "agent": "人工客服 · 李娜 为您服务", "joined": "人工客服 李娜 已加入对话",
      "left": "人工客服已结束服务，智能助手继续为您服务",
      "next": "正在为您转接人工客服，下一位就是您。您可以继续留言，客服接入后都能看到。",
      "in_queue": "正在为您转接人工客服，您在队列中排第 {n} 位。"
                  "您可以继续留言，客服接入后都能看到。"}
EN = {"online": "Assistant · online", "waiting": r"Waiting for a colleague · number (\d+) in line",
      "agent": "Agent · Wang Lei is helping you",
      "joined": "Wang Lei from our support team has joined the chat",
      "left": "Our colleague has left the chat. The assistant is back to help you",
      "next": "Connecting you to a colleague — you're next. You can keep writing; they'll "
              "see everything."}


def header(page) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(state, text) of the chat's header line."""
    status = page.get_by_test_id("chat-status")
    return status.get_attribute("data-state"), status.inner_text().strip()


def wait_state(page, state: str) -> None:  # type: ignore[no-untyped-def]
    page.locator(f"[data-testid=chat-status][data-state={state}]").wait_for()


def place_in_queue(desk_url: str, token: str, borrower_id: str) -> int:
    """Where the borrower's case is among the waiting ones, oldest first (the console's order)."""
    cases = requests.get(f"{desk_url}/api/agent/queue", timeout=10,
                         headers={"Authorization": f"Bearer {token}"}).json()["cases"]
    waiting = [c["borrower_id"] for c in cases if c["status"] == "waiting"]
    return waiting.index(borrower_id) + 1


def reload_chat(page) -> None:  # type: ignore[no-untyped-def]
    page.reload()
    page.get_by_test_id("chat-input").wait_for()
    wait_connected(page)
    settle(page)  # the desk has answered the page's hello: its state is the desk's


def bar_words(page) -> str:  # type: ignore[no-untyped-def]
    """The waiting bar's sentence about the place in the queue (without the estimate)."""
    return page.get_by_test_id("handoff-bar").evaluate("b => b.firstChild.textContent").strip()


def notices(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The conversation's system lines (who joined, who left): stored by the desk."""
    return page.locator("[data-testid=message-system]").all_inner_texts()


def wait_line(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.locator("[data-testid=message-system]", has_text=text).wait_for()


def test_handoff_states_in_the_chat_through_waiting_join_close_and_reload(new_page, desk_url,
                                                                          shots):
    token = api_token(desk_url, "agent1")
    chat = new_page("phone")
    open_chat(chat, desk_url, "demo-loan-cap")
    say(chat, "我还清了为什么借不了")
    assert header(chat) == ("bot", ZH["online"])
    assert chat.get_by_test_id("handoff-bar").is_hidden()

    # 1. waiting for a person: the header and the bar say so, with the place in the queue
    say(chat, "转人工")
    wait_state(chat, "waiting")
    state, text = header(chat)
    place = int(re.fullmatch(ZH["waiting"], text).group(1))
    assert place == place_in_queue(desk_url, token, "demo-loan-cap")
    bar = chat.get_by_test_id("handoff-bar")
    assert bar.is_visible()
    # (the words about the place; an estimate, if the desk has one by now, is a line of its own)
    assert bar_words(chat) == (ZH["next"] if place == 1 else ZH["in_queue"].format(n=place))
    chat.screenshot(path=str(shots / "chat-handoff-waiting.png"))

    # a second borrower waits behind; it moves up when the first is taken
    behind = new_page("phone")
    open_chat(behind, desk_url, "demo-closed")
    say(behind, "转人工")
    wait_state(behind, "waiting")
    behind_place = int(re.fullmatch(ZH["waiting"], header(behind)[1]).group(1))
    assert behind_place == place_in_queue(desk_url, token, "demo-closed") > place

    # 2. still waiting after a reload (the state comes with the desk's answer to the hello)
    reload_chat(chat)
    assert header(chat)[0] == "waiting" and re.fullmatch(ZH["waiting"], header(chat)[1])

    # 3. an agent takes it: the borrower sees who, live and in a line of the conversation
    console = new_page("desktop")
    agent_login(console, desk_url, "agent1")
    queue_item(console, "demo-loan-cap").get_by_test_id("queue-claim").click()
    console.get_by_test_id("close-button").wait_for()
    wait_state(chat, "agent")
    assert header(chat) == ("agent", ZH["agent"])
    assert chat.get_by_test_id("handoff-bar").is_hidden()
    wait_line(chat, ZH["joined"])
    assert notices(chat) == [ZH["joined"]]
    behind.wait_for_function(
        "n => /排第 (\\d+) 位/.exec(document.getElementById('status-text').textContent)[1] == n",
        arg=str(behind_place - 1))
    chat.screenshot(path=str(shots / "chat-handoff-agent.png"))

    # the agent's reply; after a reload the header still names the agent
    console.get_by_test_id("reply-input").fill("您好，我是李娜，我来帮您看看。")
    console.get_by_test_id("reply-send").click()
    chat.locator("[data-testid=message-agent]").wait_for()
    reload_chat(chat)
    assert header(chat) == ("agent", ZH["agent"])
    assert notices(chat) == [ZH["joined"]]  # kept with the conversation

    # 4. closing asks first; confirmed, the borrower sees the person left and the bot is back
    close = console.get_by_test_id("close-button")
    close.click()
    assert close.inner_text() == "确认结束？"
    assert "再次点击" in console.get_by_test_id("case-alert").inner_text()
    assert console.get_by_test_id("case-status").get_attribute("data-status") == "claimed"
    assert header(chat)[0] == "agent"  # nothing happened yet
    console.screenshot(path=str(shots / "console-close-confirm.png"))
    close.click()
    console.locator("[data-testid=case-status][data-status=closed]").wait_for()
    wait_state(chat, "bot")
    assert header(chat) == ("bot", ZH["online"])
    wait_line(chat, ZH["left"])
    assert notices(chat) == [ZH["joined"], ZH["left"]]
    chat.screenshot(path=str(shots / "chat-handoff-closed.png"))

    # after a reload: the bot's header, not "李娜 为您服务"; the lines are still there
    reload_chat(chat)
    assert header(chat) == ("bot", ZH["online"])
    assert notices(chat) == [ZH["joined"], ZH["left"]]
    # and the bot answers again
    again = "\n".join(say(chat, "额度什么时候恢复"))
    assert again.strip(), again

    # a fresh device (nothing cached) of a borrower whose case was taken while away: the
    # header comes from the desk's answer to the page's hello
    agent2 = {"Authorization": f"Bearer {api_token(desk_url, 'agent2')}"}
    case = next(c for c in requests.get(f"{desk_url}/api/agent/queue", timeout=10,
                                        headers=agent2).json()["cases"]
                if c["borrower_id"] == "demo-closed")
    behind.close()  # the borrower left the app
    assert requests.post(f"{desk_url}/api/agent/cases/{case['case_id']}/claim", headers=agent2,
                         timeout=10).ok
    back = new_page("phone")
    open_chat(back, desk_url, "demo-closed")
    settle(back)
    assert header(back) == ("agent", "人工客服 · 王磊 为您服务")
    # the line was stored by the desk: a device that saw nothing change reads it too
    assert notices(back) == ["人工客服 王磊 已加入对话"]
    assert requests.post(f"{desk_url}/api/agent/cases/{case['case_id']}/close", headers=agent2,
                         timeout=10).ok
    wait_state(back, "bot")
    wait_line(back, ZH["left"])
    assert notices(back) == ["人工客服 王磊 已加入对话", ZH["left"]]
    # and on yet another device, with nothing cached, the same lines come with the history
    third = new_page("phone")
    open_chat(third, desk_url, "demo-closed")
    settle(third)
    assert notices(third) == ["人工客服 王磊 已加入对话", ZH["left"]]


def test_handoff_states_in_english(new_page, desk_url, shots):
    chat = new_page("phone")
    open_chat(chat, desk_url, "demo-incident", locale="en-US")
    assert header(chat) == ("bot", EN["online"])
    say(chat, "Talk to a person")
    wait_state(chat, "waiting")
    assert re.fullmatch(EN["waiting"], header(chat)[1]), header(chat)
    bar = chat.get_by_test_id("handoff-bar").inner_text()
    assert bar.startswith("Connecting you to a colleague") and "they'll see everything" in bar

    console = new_page("desktop")
    agent_login(console, desk_url, "agent2")
    queue_item(console, "demo-incident").get_by_test_id("queue-claim").click()
    console.get_by_test_id("close-button").wait_for()
    wait_state(chat, "agent")
    assert header(chat) == ("agent", EN["agent"])
    wait_line(chat, EN["joined"])
    assert notices(chat) == [EN["joined"]]
    chat.screenshot(path=str(shots / "chat-handoff-agent-en.png"))

    console.locator("[data-ui-lang=en]").click()
    console.get_by_test_id("close-button").click()
    assert console.get_by_test_id("close-button").inner_text() == "Confirm close?"
    console.get_by_test_id("close-button").click()
    console.locator("[data-testid=case-status][data-status=closed]").wait_for()
    wait_state(chat, "bot")
    assert header(chat) == ("bot", EN["online"])
    wait_line(chat, EN["left"])
    reload_chat(chat)
    assert header(chat) == ("bot", EN["online"])
    assert notices(chat) == [EN["joined"], EN["left"]]
    chat.screenshot(path=str(shots / "chat-handoff-closed-en.png"))


def test_the_losing_agent_of_a_claim_race_is_told_and_sees_no_claim_button(new_page, desk_url,
                                                                           shots):
    chat = new_page("phone")
    open_chat(chat, desk_url, "demo-id-score-funding")
    say(chat, "转人工")

    # agent1 (a supervisor, who may still read the case) looks at it; agent2 takes it
    console = new_page("desktop")
    agent_login(console, desk_url, "agent1")
    item = queue_item(console, "demo-id-score-funding")
    item.wait_for()
    case_id = item.get_attribute("data-case-id")
    item.click()
    console.get_by_test_id("claim-button").wait_for()
    token = api_token(desk_url, "agent2")
    assert requests.post(f"{desk_url}/api/agent/cases/{case_id}/claim", timeout=10,
                         headers={"Authorization": f"Bearer {token}"}).ok

    # the console learns it at once: no "claim" any more, and who has it
    console.get_by_test_id("claim-button").wait_for(state="hidden")
    console.locator("[data-testid=case-status][data-status=claimed]").wait_for()
    assert "王磊" in console.get_by_test_id("case-status").inner_text()
    alert = console.get_by_test_id("case-alert")
    alert.wait_for()
    assert alert.inner_text() == "王磊 Wang Lei 已接手该会话。"
    assert queue_item(console, "demo-id-score-funding").get_by_test_id("queue-claim").count() == 0
    console.screenshot(path=str(shots / "console-claim-taken.png"))
    # the alert has a name filled in: the language switch says it again from its key (issue 12)
    console.locator("[data-ui-lang=en]").click()
    assert alert.inner_text() == "王磊 Wang Lei has taken this case."
    console.locator("[data-ui-lang=zh]").click()
    assert alert.inner_text() == "王磊 Wang Lei 已接手该会话。"
    close_case(desk_url, token, case_id)


def test_a_claim_that_lost_the_race_says_so_and_the_button_goes(new_page, desk_url):
    chat = new_page("phone")
    open_chat(chat, desk_url, "demo-posting-incident")
    say(chat, "转人工")

    # this console's live updates are slow to come (its socket hears nothing): it still
    # shows "claim" when another agent takes the case, and the agent clicks it
    console = new_page("desktop")
    console.route_web_socket("**/ws/agent", lambda ws: None)
    agent_login(console, desk_url, "agent1")
    item = queue_item(console, "demo-posting-incident")
    item.wait_for()
    case_id = item.get_attribute("data-case-id")
    item.click()
    token = api_token(desk_url, "agent2")
    assert requests.post(f"{desk_url}/api/agent/cases/{case_id}/claim", timeout=10,
                         headers={"Authorization": f"Bearer {token}"}).ok
    console.get_by_test_id("claim-button").click()

    alert = console.get_by_test_id("case-alert").filter(has_text="其他客服")
    alert.wait_for()
    assert alert.inner_text() == "该会话已被其他客服（王磊 Wang Lei）接手，无法重复接手。"
    console.locator("[data-ui-lang=en]").click()  # two texts of the catalog in one alert
    assert console.get_by_test_id("case-alert").inner_text() == (
        "Another agent (王磊 Wang Lei) has already claimed this conversation.")
    console.locator("[data-ui-lang=zh]").click()
    console.get_by_test_id("claim-button").wait_for(state="hidden")
    assert console.get_by_test_id("reply-input").is_disabled()
    close_case(desk_url, token, case_id)


def close_case(desk_url: str, token: str, case_id: str | None) -> None:
    """The agent who won the race closes the case: the borrower is the bot's again for the
    tests after this one (one conversation per borrower)."""
    assert requests.post(f"{desk_url}/api/agent/cases/{case_id}/close", timeout=10,
                         headers={"Authorization": f"Bearer {token}"}).ok


def test_the_context_panel_follows_a_later_check_of_the_account(new_page, desk_url, live_stack,
                                                                 shots):
    """A supervisor watches a case another agent has; the borrower's hold is lifted, the agent
    hands back with a note, and the bot checks the account again while the case is still
    open: the supervisor's context panel shows the new decision without anyone reloading."""
    borrower_id = f"qa-h12-ctx-{uuid.uuid4().hex[:8]}"
    put_fixture(live_stack, borrower_id, {"holds": [{"kind": "security"}]})
    chat = new_page("phone")
    open_chat_as(chat, desk_url, borrower_id, "zh-CN")
    say(chat, "转人工")

    console = new_page("desktop")
    agent_login(console, desk_url, "agent1")
    item = queue_item(console, borrower_id)
    item.wait_for()
    case_id = item.get_attribute("data-case-id")
    agent2 = {"Authorization": f"Bearer {api_token(desk_url, 'agent2')}"}
    assert requests.post(f"{desk_url}/api/agent/cases/{case_id}/claim", headers=agent2,
                         timeout=10).ok
    item.click()
    console.locator("[data-testid=case-status][data-status=claimed]").wait_for()
    # checked before the handoff: the hold
    assert console.get_by_test_id("ctx-eligible").get_attribute("data-eligible") == "false"
    assert console.locator("[data-testid=ctx-reason-code][data-code=COMPLIANCE_HOLD]").count() == 1

    put_fixture(live_stack, borrower_id, {})  # the hold is lifted
    back = requests.post(f"{desk_url}/api/agent/cases/{case_id}/return", headers=agent2,
                         json={"note": "安全核查已完成"}, timeout=60)
    assert back.ok, back.text

    console.locator("[data-testid=ctx-eligible][data-eligible=true]").wait_for()
    assert console.locator("[data-testid=ctx-reason-code][data-code=COMPLIANCE_HOLD]").count() == 0
    console.screenshot(path=str(shots / "console-context-refreshed.png"))


def test_the_context_panel_shows_what_changed_while_a_person_has_the_case(
        new_page, desk_url, live_stack, shots):
    """Issue 12: a change the borrower waited for (a hold released) arrives while an agent has
    the conversation: the bot does not tell the borrower, the case keeps it -- and the
    agent's context panel shows what changed and when, in the console's language."""
    borrower_id = f"qa-h12-notice-{uuid.uuid4().hex[:8]}"
    put_fixture(live_stack, borrower_id, {"holds": [{"kind": "security"}]})
    chat = new_page("phone")
    open_chat_as(chat, desk_url, borrower_id, "zh-CN")
    say(chat, "转人工")

    console = new_page("desktop")
    agent_login(console, desk_url, "agent1")
    queue_item(console, borrower_id).get_by_test_id("queue-claim").click()
    console.get_by_test_id("close-button").wait_for()
    assert console.get_by_test_id("ctx-notices").count() == 0  # nothing changed yet

    # the notifier hands the desk the backend's change (docs/desk.md, proactive notices)
    change = {"schema": "relend.notice.v1", "id": 1, "key": f"hold_released:{borrower_id}",
              "kind": "hold_released", "borrower_id": borrower_id,
              "occurred_at": "2026-11-30T03:30:00Z", "recorded_at": "2026-11-30T03:30:01Z",
              "data": {"hold_id": "H-1", "hold_kind": "security",
                       "released_at": "2026-11-30T03:30:00Z"},
              "timezone": "Asia/Shanghai", "decision": None, "deliver_after": None}
    answer = requests.post(f"{desk_url}/internal/notices", json=change, timeout=10,
                           headers={"Authorization": f"Bearer {live_stack.desk_token}"})
    assert answer.status_code == 200 and answer.json().get("case_id"), answer.text

    notice = console.locator("[data-testid=ctx-notice][data-kind=hold_released]")
    notice.wait_for()  # no reload: the console heard case_context
    assert notice.get_by_test_id("ctx-notice-kind").inner_text() == "账户限制已解除"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d",
                        notice.get_by_test_id("ctx-notice-at").inner_text())
    text = notice.get_by_test_id("ctx-notice-text").inner_text()
    assert "安全核查已经结束" in text and "未发给借款人" in text, text
    panel = console.get_by_test_id("context").inner_text()
    assert "接手期间的账户变化（未发给用户）" in panel
    console.get_by_test_id("ctx-notices").scroll_into_view_if_needed()
    console.screenshot(path=str(shots / "console-notices-zh.png"))

    console.locator("[data-ui-lang=en]").click()
    assert notice.get_by_test_id("ctx-notice-kind").inner_text() == "Hold released"
    assert ("Account changes while a person has the case (not sent to the borrower)"
            in console.get_by_test_id("context").inner_text())
    console.screenshot(path=str(shots / "console-notices-en.png"))
    console.locator("[data-ui-lang=zh]").click()
    # the borrower was not told by the bot (a person has the conversation)
    assert chat.locator("[data-testid=message-bot]", has_text="安全核查已经结束").count() == 0


def add_claimed_cases(live_stack, minutes: list[int]) -> None:
    """Fixture cases of other borrowers, claimed half an hour ago after waiting ``minutes``:
    what the desk's estimate is made of (desk/handoffs.py)."""
    from datetime import timedelta

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from desk.models import Case, Conversation
    from desk.service import utc_now

    engine = create_engine(live_stack.desk_db_url)
    claimed = utc_now() - timedelta(minutes=30)
    try:
        with Session(engine) as session:
            for wait in minutes:
                opened = claimed - timedelta(minutes=wait)
                conversation_id = "c-qa-est-" + uuid.uuid4().hex[:12]
                session.add(Conversation(id=conversation_id, borrower_id=conversation_id,
                                         locale="zh-CN", owner="bot", created_at=opened,
                                         updated_at=claimed))
                session.flush()
                session.add(Case(conversation_id=conversation_id, borrower_id=conversation_id,
                                 language="zh", reason="borrower_asked", context={},
                                 status="closed", created_at=opened, claimed_at=claimed,
                                 ended_at=claimed))
            session.commit()
    finally:
        engine.dispose()


def test_the_waiting_bar_shows_the_desks_estimate_when_it_has_one(new_page, desk_url,
                                                                  live_stack, shots):
    """Issue 12: with enough recent claimed cases (fixtures: many cases claimed after 20
    minutes' wait, outnumbering this session's quick claims), the borrower waiting reads
    "about 20 min" under the place in the queue, in their language, also after a reload."""
    add_claimed_cases(live_stack, [20] * 21)  # the last 20 claimed: all of them
    for locale, expected in (("zh-CN", "预计等待约 20 分钟"), ("en-US", "About 20 min")):
        borrower_id = f"qa-h12-wait-{uuid.uuid4().hex[:8]}"
        put_fixture(live_stack, borrower_id, {"holds": [{"kind": "security"}]})
        chat = new_page("phone")
        open_chat_as(chat, desk_url, borrower_id, locale)
        say(chat, "转人工" if locale == "zh-CN" else "Talk to a person")
        wait_state(chat, "waiting")
        estimate = chat.get_by_test_id("handoff-estimate")
        estimate.wait_for()
        assert estimate.inner_text() == expected
        chat.screenshot(path=str(shots / f"chat-handoff-estimate-{locale[:2]}.png"))
        reload_chat(chat)
        assert chat.get_by_test_id("handoff-estimate").inner_text() == expected
        # an agent takes it: no waiting, no estimate
        agent = {"Authorization": f"Bearer {api_token(desk_url, 'agent2')}"}
        case = next(c for c in requests.get(f"{desk_url}/api/agent/queue", timeout=10,
                                            headers=agent).json()["cases"]
                    if c["borrower_id"] == borrower_id)
        assert requests.post(f"{desk_url}/api/agent/cases/{case['case_id']}/claim",
                             headers=agent, timeout=10).ok
        wait_state(chat, "agent")
        assert chat.get_by_test_id("handoff-estimate").count() == 0
        close_case(desk_url, api_token(desk_url, "agent2"), case["case_id"])


# Holds every answer to GET /api/agent/cases/<n> for a while after it arrived in full: a reload
# that read the case before a note was saved and lands after it.
SLOW_CASE_READS = """ms => {
  const real = window.fetch.bind(window);
  window.__slowReads = {read: 0, landed: 0};
  window.fetch = (input, opts) => {
    const url = typeof input === 'string' ? input : input.url;
    const reading = /\\/api\\/agent\\/cases\\/\\d+$/.test(url)
      && (!opts || !opts.method || opts.method === 'GET');
    if (!reading) return real(input, opts);
    return real(input, opts).then(r => r.text().then(body => {
      window.__slowReads.read += 1;
      return new Promise(ok => setTimeout(() => {
        window.__slowReads.landed += 1;
        ok(new Response(body, {status: r.status, headers: r.headers}));
      }, ms));
    }));
  };
}"""

# whether a note with the given words, once shown, ever left the list (a later reload may draw
# it again, so the end state alone does not tell)
WATCH_NOTE = """words => {
  window.__note = {seen: false, lost: false};
  const list = document.querySelector('[data-testid=notes]');
  new MutationObserver(() => {
    const shown = [...list.querySelectorAll('[data-testid=note]')]
      .some(n => n.textContent.includes(words));
    if (shown) window.__note.seen = true;
    else if (window.__note.seen) window.__note.lost = true;
  }).observe(list, {childList: true, subtree: true});
}"""


def test_a_note_survives_a_reload_that_read_the_case_before_it(new_page, desk_url, live_stack):
    """Found in CI: the agent's note showed, then vanished, because a reload of the case that
    had left before the note was saved came back after it and drew the older notes."""
    borrower_id = f"qa-h12-note-{uuid.uuid4().hex[:8]}"
    put_fixture(live_stack, borrower_id, {})
    chat = new_page("phone")
    open_chat_as(chat, desk_url, borrower_id, "zh-CN")
    say(chat, "转人工")

    console = new_page("desktop")
    agent_login(console, desk_url)
    queue_item(console, borrower_id).get_by_test_id("queue-claim").click()
    console.get_by_test_id("return-button").wait_for()

    console.evaluate(SLOW_CASE_READS, 3000)
    # "run a check" on the case one holds reloads the case when it is done
    console.get_by_test_id("tab-lookup").click()
    console.get_by_test_id("lookup-input").fill(borrower_id)
    console.get_by_test_id("lookup-submit").click()
    console.get_by_test_id("conversation-item").first.get_by_test_id("run-check").click()
    console.wait_for_function("() => window.__slowReads.read > 0", timeout=30_000)

    console.evaluate(WATCH_NOTE, "已核对还款流水")
    console.get_by_test_id("note-input").fill("已核对还款流水")
    console.get_by_test_id("note-add").click()
    note = console.get_by_test_id("note").filter(has_text="已核对还款流水")
    note.wait_for()
    console.wait_for_function(
        "() => window.__slowReads.landed >= window.__slowReads.read", timeout=30_000)
    console.wait_for_timeout(1000)  # the late answer drawn, if it is going to wipe the note
    assert console.evaluate("() => window.__note") == {"seen": True, "lost": False}
    assert note.count() == 1, console.get_by_test_id("notes").inner_text()
