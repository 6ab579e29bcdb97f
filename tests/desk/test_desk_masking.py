"""Identity, phone and bank-card numbers are masked in everything agents see, and only there."""

from __future__ import annotations

import pytest
from desk_support import MASKED, PRIVATE, AgentApi, AgentFeed, Chat, FakeRasa, subprotocols

from desk.masking import mask, mask_text

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(("text", "masked"), [
    # 18-digit resident ID numbers, check digit X in either case
    pytest.param("110105194912310021", "110105********0021", id="id-number"),
    pytest.param("身份证号11010519491231002X，请核对", "身份证号110105********002X，请核对",
                 id="id-number-X-in-text"),
    pytest.param("id 11010519491231002x", "id 110105********002x", id="id-number-x"),
    # mobile numbers, with or without +86, spaces or dashes
    pytest.param("13812345678", "138****5678", id="mobile"),
    pytest.param("手机：159 8765 4321", "手机：159****4321", id="mobile-spaces"),
    pytest.param("138-1234-5678", "138****5678", id="mobile-dashes"),
    pytest.param("+86 138 1234 5678", "+86 138****5678", id="mobile-+86-spaces"),
    pytest.param("+8613812345678", "+86138****5678", id="mobile-+86"),
    pytest.param("8613812345678", "86138****5678", id="mobile-86"),
    # bank cards of 16 to 19 digits, plain or grouped
    pytest.param("6222021234567890", "6222 **** **** 7890", id="card-16"),
    pytest.param("6222 0212 3456 7890", "6222 **** **** 7890", id="card-16-spaces"),
    pytest.param("6222-0212-3456-7890", "6222 **** **** 7890", id="card-16-dashes"),
    pytest.param("62220212345678901", "6222 **** **** 8901", id="card-17"),
    pytest.param("6228480402564890018", "6228 **** **** 0018", id="card-19"),
    pytest.param("卡号 6228 4804 0256 4890 018 已绑定", "卡号 6228 **** **** 0018 已绑定",
                 id="card-19-grouped"),
    # several in one message
    pytest.param(PRIVATE, MASKED, id="all-three"),
    # any other run of 12 or more digits: first 4 and last 4 kept (tests/security/test_masking.py)
    pytest.param("订单号 20240315123456", "订单号 2024******3456", id="order-number-14"),
    pytest.param("订单号 13812345678901", "订单号 1381******8901",
                 id="order-number-14-like-a-phone"),
    pytest.param("流水号 12345678901234567890", "流水号 1234************7890", id="reference-20"),
])
def test_private_numbers_are_masked(text, masked):
    assert mask_text(text) == masked


@pytest.mark.parametrize("text", [
    pytest.param("借款金额 5000 元，已还 12,345.67 元", id="amounts"),
    pytest.param("额度 200000，年化利率 18.25%，共 12 期", id="limit-rate-terms"),
    pytest.param("还款日 2024-03-15，下次 2024/04/15 10:30", id="dates"),
    pytest.param("尾号1234的银行卡", id="card-last-four"),
    pytest.param("申诉编号 AP-2024-000123", id="appeal-id"),
    pytest.param("验证码 123456，客服电话 95588", id="code-and-hotline"),
])
def test_ordinary_numbers_are_left_alone(text):
    assert mask_text(text) == text


def test_mask_reaches_every_string_in_a_json_value():
    value = {"transcript": [{"sender": "borrower", "text": "13812345678", "at": 1.5}],
             "decision": {"reasons": [{"code": "x", "blocking": True}], "limit": 5000},
             "backend_failed": False, "appeal_ids": [], "statement": None}

    masked = mask(value)

    assert masked["transcript"][0] == {"sender": "borrower", "text": "138****5678", "at": 1.5}
    assert masked["decision"] == value["decision"]
    assert masked["appeal_ids"] == [] and masked["statement"] is None
    assert masked["backend_failed"] is False


def test_agents_see_masked_numbers_and_the_borrower_sees_their_own_text(
        chat: Chat, feed: AgentFeed, agents: list[AgentApi], fake_rasa: FakeRasa, client,
        internal):
    fake_rasa.replies = [{"text": "已记下您的手机号 13812345678"}]

    [bot] = chat.turn(PRIVATE)
    assert bot["text"] == "已记下您的手机号 13812345678"  # the borrower's chat: as sent
    assert [m["text"] for m in chat.history()] == [PRIVATE, bot["text"]]

    handoff = client.post("/internal/handoffs", headers=internal, json={
        "conversation_id": chat.conversation_id, "reason": "borrower_asked",
        "transcript": [{"sender": "borrower", "text": PRIVATE, "intent": "inform"}],
        "decision": {"reasons": [{"code": "identity_expired", "blocking": True,
                                  "detail": "证件 110105194912310021 已过期"}]},
        "unfiled_appeal_statement": "请打 +86 139 0000 1111 联系我"})
    case = agents[0].case(handoff.json()["case_id"])

    # the case: the bot's context and the whole conversation, masked
    assert case["context"]["transcript"] == [
        {"sender": "borrower", "text": MASKED, "intent": "inform"}]
    assert case["context"]["decision"]["reasons"][0]["detail"] == "证件 110105********0021 已过期"
    assert case["context"]["unfiled_appeal_statement"] == "请打 +86 139****1111 联系我"
    assert case["primary_reason"] == "identity_expired"
    assert [m["text"] for m in case["messages"]] == [MASKED, "已记下您的手机号 138****5678"]

    # the console, live, once the agent took the case: masked too
    agents[0].claim(case["case_id"])
    assert chat.recv()["sender"] == "system"  # who joined (issue 12)
    chat.rest_of_turn(chat.message(PRIVATE))
    # queue (handoff), queue (claim), who joined, the message
    frames = [feed.recv() for _ in range(4)]
    assert [(f["type"], f.get("sender")) for f in frames] == [
        ("queue", None), ("queue", None), ("message", "system"), ("message", "borrower")]
    assert frames[-1]["text"] == MASKED


def test_an_agent_reply_is_masked_for_other_agents_but_not_for_the_borrower(
        chat: Chat, feed: AgentFeed, agents: list[AgentApi], client, internal):
    case_id = client.post("/internal/handoffs", headers=internal,
                          json={"conversation_id": chat.conversation_id}).json()["case_id"]
    agents[1].claim(case_id)
    assert chat.recv()["sender"] == "system"  # who joined (issue 12)

    with client.websocket_connect("/ws/agent",
                                  subprotocols=subprotocols(agents[1].token)) as socket:
        agents[1].reply(case_id, "请确认卡号 6222021234567890")
        assert AgentFeed(socket).next_message()["text"] == "请确认卡号 6222 **** **** 7890"

    assert chat.recv()["text"] == "请确认卡号 6222021234567890"
    assert agents[0].case(case_id)["messages"][-1]["text"] == "请确认卡号 6222 **** **** 7890"
