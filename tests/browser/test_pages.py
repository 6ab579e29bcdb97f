"""The in-app chat and the agent console in a real browser, against the live stack.

The issue's scenario: a borrower chats and gets an explanation, files an appeal, asks for a
human; an agent logs in, claims, sees the context, replies; the borrower sees the reply; the
agent returns the conversation; the bot answers the next message. Screenshots of both pages
are saved to reports/browser/.
"""

from __future__ import annotations

import json
import re

import requests

from tests.browser.helpers import (
    RECORD_FRAMES,
    TURNS_DONE,
    agent_login,
    api_token,
    borrower_texts,
    count,
    message_ids,
    open_chat,
    queue_item,
    say,
    send,
    settle,
    wait_connected,
    wait_for_frame,
    wait_for_more,
)


# ---------- the scenario ----------
def test_borrower_agent_round_trip(new_page, desk_url, shots):
    chat = new_page("phone")
    open_chat(chat, desk_url, "demo-risk-review")
    chat.screenshot(path=str(shots / "chat-start.png"))

    # 1. an explanation from the eligibility backend
    answer = "\n".join(say(chat, "我还清了为什么借不了"))
    assert "定期综合评估" in answer, answer
    assert chat.locator("[data-testid=quick-reply]").count() > 0  # appeal / person offers

    # 2. an appeal: statement, read-back, confirm with the button
    say(chat, "我要申诉")
    readback = "\n".join(say(chat, "我一直按时还款，评估有误"))
    assert "我一直按时还款" in readback, readback
    confirm = chat.locator("[data-testid=quick-reply]:not([disabled])", has_text="确认提交")
    bots_before = count(chat, "message-bot")
    confirm.click()
    wait_for_more(chat, "message-bot", bots_before)
    settle(chat)
    # the borrower's bubble shows the button's title, not its payload
    assert chat.locator("[data-testid=message-borrower] [data-testid=bubble]").last.inner_text() \
        == "确认提交"
    filed = chat.locator("[data-testid=message-bot] [data-testid=bubble]").last.inner_text()
    appeal = re.search(r"AP\d{8}-[A-Z0-9]+", filed)
    assert appeal, filed
    appeal_id = appeal.group(0)

    # 3. a person, please
    handoff = "\n".join(say(chat, "转人工"))
    assert "人工客服" in handoff, handoff

    # 4. the agent logs in, sees the case waiting, claims it
    console = new_page("desktop")
    agent_login(console, desk_url)
    item = queue_item(console, "demo-risk-review")
    item.wait_for()
    assert item.get_attribute("data-status") == "waiting"
    assert item.get_by_test_id("queue-since").inner_text().strip()
    # the reason in words (the code stays in its title)
    assert item.get_by_test_id("queue-primary-reason").get_attribute("title") == \
        "RISK_REVIEW_NOT_PASSED"
    console.screenshot(path=str(shots / "console-queue.png"))
    item.get_by_test_id("queue-claim").click()
    console.get_by_test_id("return-button").wait_for()

    # 5. the context the bot handed over
    assert console.get_by_test_id("ctx-borrower-id").inner_text() == "demo-risk-review"
    assert console.get_by_test_id("ctx-language").inner_text() == "中文"
    assert console.get_by_test_id("ctx-eligible").get_attribute("data-eligible") == "false"
    reason = console.locator("[data-testid=ctx-reason-code][data-code=RISK_REVIEW_NOT_PASSED]")
    assert reason.is_visible()
    assert "评估时间" in reason.inner_text()  # reviewed_at, in words
    assert appeal_id in console.get_by_test_id("ctx-appeal-ids").inner_text()
    assert console.get_by_test_id("ctx-available").inner_text().startswith("¥")
    transcript = console.get_by_test_id("transcript").inner_text()
    assert "我还清了为什么借不了" in transcript and "我一直按时还款，评估有误" in transcript

    # 6. a canned greeting in the case's language, then a reply of one's own
    console.get_by_test_id("canned-toggle").click()
    console.get_by_test_id("canned-insert").first.click()
    greeting = console.get_by_test_id("reply-input").input_value()
    assert "您好" in greeting, greeting
    console.get_by_test_id("canned-close").click()
    reply = "我是李娜，已经看到您的申诉 " + appeal_id + "，我来帮您加急处理。"
    console.get_by_test_id("reply-input").fill(reply)
    console.get_by_test_id("reply-send").click()
    console.locator("[data-testid=t-message][data-sender=agent]", has_text=reply).wait_for()
    console.get_by_test_id("note-input").fill("已联系风控，申诉加急")
    console.get_by_test_id("note-add").click()
    console.get_by_test_id("note").filter(has_text="已联系风控").wait_for()

    # 7. the borrower sees it, from a person
    agent_msg = chat.locator("[data-testid=message-agent]", has_text="已经看到您的申诉")
    agent_msg.wait_for()
    label = agent_msg.get_by_test_id("agent-label")
    assert label.locator(".tag").inner_text() == "人工"  # a person, then only the name
    assert label.inner_text() == "人工李娜"
    assert "李娜" in chat.get_by_test_id("chat-status").inner_text()
    chat.screenshot(path=str(shots / "chat-agent-reply.png"))
    console.screenshot(path=str(shots / "console-case.png"))

    # 8. back to the bot, with a note for it
    bots_before = count(chat, "message-bot")
    console.get_by_test_id("return-button").click()
    console.get_by_test_id("return-note").fill("申诉已加急")
    console.get_by_test_id("return-confirm").click()
    console.locator("[data-testid=case-status][data-status=returned]").wait_for()
    assert queue_item(console, "demo-risk-review").count() == 0
    wait_for_more(chat, "message-bot", bots_before)
    settle(chat)
    back = chat.locator("[data-testid=message-bot] [data-testid=bubble]").all_inner_texts()[
        bots_before:]
    assert any("申诉已加急" in text for text in back), back

    # 9. the bot answers the next message (an answer, not the "didn't understand" fallback)
    again = "\n".join(say(chat, "额度什么时候恢复"))
    assert again.strip() and "没完全理解" not in again, again
    assert count(chat, "message-agent") == 1
    chat.screenshot(path=str(shots / "chat-back-to-bot.png"))
    console.screenshot(path=str(shots / "console-returned.png"))
    ids = message_ids(chat)
    assert ids == sorted(set(ids))


def test_reload_and_reconnect_never_lose_or_duplicate(new_page, desk_url, shots):
    chat = new_page("phone")
    chat.add_init_script(RECORD_FRAMES)
    open_chat(chat, desk_url, "demo-posting")
    say(chat, "我还清了为什么借不了")
    before = message_ids(chat)
    assert len(before) >= 2

    # reload mid-conversation: the same messages, once each
    chat.reload()
    chat.get_by_test_id("chat-input").wait_for()
    wait_connected(chat)
    wait_for_frame(chat, "history")  # the desk's answer to the page's hello, handled
    assert message_ids(chat) == before

    # a message sent while the socket is down is delivered once after reconnecting
    chat.evaluate("window.relendChat.dropConnection()")
    chat.wait_for_function("() => !window.relendChat.connected()")
    bots_before = count(chat, "message-bot")
    chat.get_by_test_id("chat-input").fill("额度什么时候恢复")
    chat.get_by_test_id("chat-input").press("Enter")
    assert count(chat, "message-pending") == 1
    chat.get_by_test_id("connection-banner").wait_for()
    wait_connected(chat)
    wait_for_more(chat, "message-bot", bots_before)
    settle(chat)
    assert borrower_texts(chat).count("额度什么时候恢复") == 1

    # an acknowledgement lost on the way: the page resends with the same client id after a
    # reload, the desk dedupes it, and the page still shows the message once
    key = "relend.chat.state.demo-posting"
    state = json.loads(chat.evaluate(f"localStorage.getItem('{key}')"))
    sent = next(m for m in reversed(state["messages"]) if m["sender"] == "borrower")
    state["unacked"].append({"client_id": sent["client_id"], "text": sent["text"],
                             "label": None, "at": sent["at"]})
    chat.evaluate("([k, v]) => localStorage.setItem(k, v)", [key, json.dumps(state)])
    chat.reload()
    wait_connected(chat)
    chat.wait_for_function("() => !document.querySelector('[data-testid=message-pending]')")
    # the history, then the desk's ack of the resend: everything it sent is handled by then
    wait_for_frame(chat, "history")
    wait_for_frame(chat, "ack")
    assert borrower_texts(chat).count(sent["text"]) == 1, borrower_texts(chat)
    ids = message_ids(chat)
    assert ids == sorted(set(ids))
    stored = json.loads(chat.evaluate(f"localStorage.getItem('{key}')"))
    assert stored["unacked"] == []
    assert stored["lastId"] == max(ids)

    # a fresh browser (no local cache) gets the full history from the desk, once
    other = new_page("phone")
    open_chat(other, desk_url, "demo-posting")
    other.wait_for_function("n => document.querySelectorAll('#message-list [data-id]').length >= n",
                            arg=len(ids))
    assert message_ids(other) == ids
    chat.screenshot(path=str(shots / "chat-after-reload.png"))


def test_english_chat_and_claim_conflict(new_page, desk_url, shots):
    chat = new_page("phone")
    open_chat(chat, desk_url, "demo-funding", locale="en-US")
    assert chat.get_by_test_id("send-button").inner_text() == "Send"
    answer = "\n".join(say(chat, "Talk to a person"))
    assert "I'm bringing in a colleague now" in answer, answer  # the handoff, in English

    # agent2 takes the case through the API while agent1 looks at it in the console
    console = new_page("desktop")
    agent_login(console, desk_url, "agent1")
    item = queue_item(console, "demo-funding")
    item.wait_for()
    case_id = item.get_attribute("data-case-id")
    item.click()
    console.get_by_test_id("claim-button").wait_for()
    token = api_token(desk_url, "agent2")
    claimed = requests.post(f"{desk_url}/api/agent/cases/{case_id}/claim",
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert claimed.status_code == 200
    # the console hears of it: no "claim" button any more, and who took it
    console.get_by_test_id("claim-button").wait_for(state="hidden")
    alert = console.get_by_test_id("case-alert")
    alert.wait_for()
    assert "王磊" in alert.inner_text()
    assert console.get_by_test_id("reply-input").is_disabled()
    console.screenshot(path=str(shots / "console-claim-conflict.png"))

    # the English case gets the English canned text once agent2 inserts it
    other = new_page("desktop")
    agent_login(other, desk_url, "agent2")
    queue_item(other, "demo-funding").click()
    other.get_by_test_id("return-button").wait_for()
    assert other.get_by_test_id("ctx-language").inner_text() == "英文"
    other.get_by_test_id("canned-toggle").click()
    other.get_by_test_id("canned-insert").first.click()
    assert other.get_by_test_id("reply-input").input_value().startswith("Hi,")
    other.get_by_test_id("reply-send").click()
    agent_msg = chat.locator("[data-testid=message-agent]")
    agent_msg.wait_for()
    label = agent_msg.get_by_test_id("agent-label")
    assert label.locator(".tag").inner_text() == "Human"  # a person, then only the name
    assert label.inner_text() == "HumanWang Lei"
    other.get_by_test_id("close-button").click()
    other.get_by_test_id("close-button").click()  # the second click confirms
    other.locator("[data-testid=case-status][data-status=closed]").wait_for()
    chat.screenshot(path=str(shots / "chat-english.png"))


def test_canned_replies_and_lookup_run_check(new_page, desk_url, shots):
    chat = new_page("phone")
    open_chat(chat, desk_url, "demo-id-expired")
    say(chat, "我还清了为什么借不了")

    console = new_page("desktop")
    agent_login(console, desk_url)

    # borrower lookup: hand the conversation to the bot to run the eligibility check
    console.get_by_test_id("tab-lookup").click()
    console.get_by_test_id("lookup-input").fill("demo-id-expired")
    console.get_by_test_id("lookup-submit").click()
    row = console.get_by_test_id("conversation-item").first
    row.wait_for()
    assert row.get_attribute("data-owner") == "bot"
    bots_before = count(chat, "message-bot")
    row.get_by_test_id("run-check").click()
    console.get_by_test_id("toast").filter(has_text="交给助手").first.wait_for()
    wait_for_more(chat, "message-bot", bots_before)
    settle(chat)
    texts = chat.locator("[data-testid=message-bot] [data-testid=bubble]").all_inner_texts()
    assert any("我回来了" in text for text in texts[bots_before:]), texts[bots_before:]
    console.screenshot(path=str(shots / "console-lookup.png"))

    # canned replies: edit, add, delete (in a case of its own)
    token = api_token(desk_url, "agent1")
    auth = {"Authorization": f"Bearer {token}"}
    created = requests.post(f"{desk_url}/api/agent/canned", headers=auth, timeout=10, json={
        "title": "临时 Temp", "text_zh": "临时中文", "text_en": "Temporary"}).json()["id"]
    chat2 = new_page("phone")
    open_chat(chat2, desk_url, "demo-compliance")
    say(chat2, "转人工")
    console.get_by_test_id("tab-queue").click()
    queue_item(console, "demo-compliance").wait_for()
    queue_item(console, "demo-compliance").get_by_test_id("queue-claim").click()
    console.get_by_test_id("return-button").wait_for()
    console.get_by_test_id("canned-toggle").click()
    item = console.locator(f"[data-testid=canned-item][data-id='{created}']")
    item.get_by_test_id("canned-edit").click()
    console.get_by_test_id("canned-title").fill("改过 Edited")
    console.get_by_test_id("canned-text-zh").fill("改过的中文")
    console.get_by_test_id("canned-save").click()
    item = console.locator(
        f"[data-testid=canned-item][data-id='{created}'][data-title='改过 Edited']")
    item.wait_for()
    assert item.get_by_test_id("canned-preview").inner_text() == "改过的中文"
    console.get_by_test_id("canned-add").click()
    console.get_by_test_id("canned-title").fill("新增 Added")
    console.get_by_test_id("canned-text-zh").fill("新增的中文")
    console.get_by_test_id("canned-text-en").fill("Added English")
    console.get_by_test_id("canned-save").click()
    console.locator("[data-testid=canned-item][data-title='新增 Added']").wait_for()
    console.screenshot(path=str(shots / "console-canned.png"))
    item.get_by_test_id("canned-delete").click()
    item.get_by_test_id("canned-delete-confirm").click()
    console.locator(f"[data-testid=canned-item][data-id='{created}']").wait_for(state="detached")
    titles = [r["title"] for r in requests.get(f"{desk_url}/api/agent/canned", headers=auth,
                                               timeout=10).json()["replies"]]
    assert "新增 Added" in titles and "改过 Edited" not in titles
    console.get_by_test_id("close-button").click()
    console.get_by_test_id("close-button").click()  # the second click confirms
    console.locator("[data-testid=case-status][data-status=closed]").wait_for()


def test_pages_say_so_when_their_texts_cannot_be_loaded(new_page, desk_url):
    """Every word comes from the desk (GET /texts/<lang>.json): without it a page shows its one
    built-in notice, in both languages, and nothing else."""
    for path, hidden in (("/chat", "picker"), ("/console", "login-view")):
        page = new_page("desktop")
        page.route("**/texts/*.json", lambda route: route.fulfill(status=503))
        page.goto(f"{desk_url}{path}")
        notice = page.get_by_test_id("texts-failed")
        notice.wait_for()
        assert "页面文字未能加载" in notice.inner_text()
        assert "could not be loaded" in notice.inner_text()
        assert page.get_by_test_id(hidden).is_hidden()


def test_the_pages_texts_come_from_the_catalog(new_page, desk_url):
    texts = requests.get(f"{desk_url}/texts/en.json", timeout=10).json()
    console = new_page("desktop")
    console.goto(f"{desk_url}/console")
    console.get_by_test_id("login-submit").wait_for()
    console.locator("[data-ui-lang=en]").click()
    assert console.get_by_test_id("login-submit").inner_text() == texts["console.login"]
    assert console.title() == texts["console.title"]
    assert console.locator("html").get_attribute("lang") == "en"
    assert requests.get(f"{desk_url}/texts/xx.json", timeout=10).status_code == 404


def test_the_newest_reply_is_fully_in_view(new_page, desk_url):
    """Issue 12: a long reply used to stay 240-290 px below the fold on a phone."""
    chat = new_page("phone")
    open_chat(chat, desk_url, "demo-overdue-reduced")
    for question in ("我还清了为什么借不了", "额度什么时候恢复", "怎么才能提高额度"):
        bots_before = count(chat, "message-bot")
        send(chat, question)
        wait_for_more(chat, "message-bot", bots_before)
        # as the page got it (no resync, which scrolls by itself)
        chat.wait_for_function(TURNS_DONE, timeout=20_000)
        chat.wait_for_function(IN_VIEW, arg="[data-testid=message-bot]", timeout=5_000)


# the last element matching the selector lies within the scrolling message box
IN_VIEW = """selector => {
  const box = document.getElementById('messages').getBoundingClientRect();
  const all = document.querySelectorAll('#message-list ' + selector);
  const last = all[all.length - 1].getBoundingClientRect();
  return last.top >= box.top - 1 && last.bottom <= box.bottom + 1;
}"""


def test_a_paste_over_the_limit_is_kept_whole_and_said_so(new_page, desk_url):
    """Issue 12: a paste over 2,000 characters used to be cut silently by the input."""
    chat = new_page("phone")
    open_chat(chat, desk_url, "demo-eligible")
    text = "我还清了为什么借不了" * 250  # 10 characters x 250
    chat.get_by_test_id("chat-input").fill(text)
    assert chat.get_by_test_id("chat-input").input_value() == text  # nothing cut
    note = chat.get_by_test_id("input-limit")
    assert note.is_visible() and note.inner_text() == (
        "已输入 2500 字，超过了 2000 字的上限，请删减或分几次发送。")
    assert chat.get_by_test_id("send-button").is_disabled()
    chat.get_by_test_id("chat-input").press("Enter")  # not sent either way
    assert count(chat, "message-borrower") == 0
    chat.get_by_test_id("chat-input").fill(text[:2000])
    assert not note.is_visible() and chat.get_by_test_id("send-button").is_enabled()
