"""Fixed texts that custom actions send, in Chinese and English (buttons included).

Replies that rules send directly live in domain.yml; replies that only custom actions send
live here, so that `rasa data validate` sees every domain response used by a rule. Fields in
braces are filled by ``say``.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk.executor import CollectingDispatcher

Button = dict[str, str]

TEXTS: dict[str, dict[str, tuple[str, list[Button]]]] = {
    "clarify": {
        "zh": ("抱歉，我没完全理解您的意思。您是想问下面哪一个？", []),
        "en": ("Sorry, I'm not sure I understood. Is it one of these?", []),
    },
    "offer_human_after_misses": {
        "zh": (
            "抱歉，我还是没能理解。要不要我请人工客服来帮您？同事会看到我们刚才的对话，您不用再重复。",
            [
                {"title": "好的，转人工", "payload": "/request_human"},
                {"title": "我换个说法", "payload": "/deny"},
            ],
        ),
        "en": (
            "I'm sorry, I still haven't understood. Would you like me to bring in a colleague? They'll see our conversation, so you won't need to repeat anything.",
            [
                {"title": "Yes, a person please", "payload": "/request_human"},
                {"title": "I'll rephrase", "payload": "/deny"},
            ],
        ),
    },
    "offer_human": {
        "zh": (
            "需要的话，我可以为您转接人工客服，同事会看到我们的全部对话。",
            [{"title": "转人工客服", "payload": "/request_human"}],
        ),
        "en": (
            "Would you like me to bring in a colleague? They'll see everything we've discussed.",
            [{"title": "Talk to a person", "payload": "/request_human"}],
        ),
    },
    "anything_else": {
        "zh": ("好的。还有其他需要我帮您查的吗？", []),
        "en": ("Okay. Is there anything else I can check for you?", []),
    },
    "no_identity": {
        "zh": (
            "我这里看不到您登录的是哪个账户，所以暂时查不了您的额度。请在App里登录后再打开这个对话。在这之前，我可以给您讲讲还款后暂时借不了的常见原因，或者为您转人工客服。",
            [{"title": "转人工客服", "payload": "/request_human"}],
        ),
        "en": (
            "I can't see which account you're signed in with, so I can't check your limit from here. Please open this chat from the app while signed in. Meanwhile I can explain the common reasons borrowing is paused after repaying, or connect you with a person.",
            [{"title": "Talk to a person", "payload": "/request_human"}],
        ),
    },
    "account_not_found": {
        "zh": (
            "我没有查到您当前登录账户的借款信息。可以请人工客服帮您核实，需要我为您转接吗？",
            [{"title": "转人工客服", "payload": "/request_human"}],
        ),
        "en": (
            "I couldn't find lending details for the account you're signed in with. A colleague can look into it; would you like me to connect you?",
            [{"title": "Talk to a person", "payload": "/request_human"}],
        ),
    },
    "backend_unavailable": {
        "zh": (
            "抱歉，我暂时查不到您的账户信息，没法给您准确的答复。您可以过几分钟再问我，或者我现在为您转接人工客服。",
            [{"title": "转人工客服", "payload": "/request_human"}],
        ),
        "en": (
            "Sorry, I can't reach your account details right now, so I can't give you a reliable answer. Please try again in a few minutes, or I can connect you with a colleague now.",
            [{"title": "Talk to a person", "payload": "/request_human"}],
        ),
    },
    "app_troubleshooting": {
        "zh": (
            "目前没有影响您账户的已知系统故障。通常可以这样试试：把App更新到最新版本、完全退出后重新打开、检查一下网络。如果还是不行，把您看到的具体提示告诉我，或者我为您转人工客服。",
            [{"title": "转人工客服", "payload": "/request_human"}],
        ),
        "en": (
            "There's no known outage affecting your account right now. Things that usually help: update the app to the latest version, close and reopen it, and check your network. If it still fails, tell me the exact message you see, or I can pass it to a colleague.",
            [{"title": "Talk to a person", "payload": "/request_human"}],
        ),
    },
    "nothing_to_appeal": {
        "zh": (
            "目前没有需要申诉的结果：您的账户现在可以借款。如果在App里借款仍然失败，告诉我您看到的提示。",
            [],
        ),
        "en": (
            "There's nothing to appeal right now: your account can borrow. If borrowing in the app still fails, tell me what you see.",
            [],
        ),
    },
    "not_appealable": {
        "zh": (
            "这个原因（{reason}）不是对您个人的评估结论，申诉改变不了它，所以无法申诉。真正有帮助的是：",
            [],
        ),
        "en": (
            "This one can't be appealed ({reason}): it isn't a judgement about you that a review could change. Here is what does help:",
            [],
        ),
    },
    "appeal_which_decision": {
        "zh": ("好的，我为您针对刚才查到的结果（{checked}）提交申诉：{reason}。会由专人复核。", []),
        "en": (
            "I'll file an appeal against the result I just checked ({checked}): {reason}. A person will review it.",
            [],
        ),
    },
    "statement_kept": {
        "zh": ("您写的情况我已经记下了：如果申诉，会直接作为您的申诉说明，不用再写一遍。", []),
        "en": (
            "I've kept what you wrote: if you appeal, it goes in as your statement, so you won't need to write it again.",
            [],
        ),
    },
    "ask_appeal_statement": {
        "zh": (
            "请用一两句话说明您认为哪里有误（例如：“逾期是银行扣款失败造成的”）。随时回复“取消”可以退出。",
            [],
        ),
        "en": (
            'In a sentence or two, what do you think is wrong? (For example: "the late payment was my bank\'s failed debit".) You can say "cancel" at any time.',
            [],
        ),
    },
    "appeal_statement_too_short": {
        "zh": ("能再具体一点吗？复核的同事会根据您写的内容来判断。", []),
        "en": (
            "Could you add a little more detail? The reviewer will decide based on what you write.",
            [],
        ),
    },
    "appeal_statement_abusive": {
        "zh": (
            "我理解您现在很着急、很生气。为了让申诉更有机会通过，请告诉我您认为这个结果哪里不对。",
            [],
        ),
        "en": (
            "I understand this is really frustrating. To give your appeal the best chance, tell me what you believe is wrong with the decision.",
            [],
        ),
    },
    "ask_appeal_confirmed": {
        "zh": (
            "我将为您提交以下申诉：\n• 申诉原因：{reason}\n• 您的说明：{statement}\n确认提交吗？",
            [{"title": "确认提交", "payload": "/affirm"}, {"title": "取消", "payload": "/deny"}],
        ),
        "en": (
            "Here is what I'll file:\n• Reason appealed: {reason}\n• Your statement: {statement}\nShall I submit it?",
            [{"title": "Submit", "payload": "/affirm"}, {"title": "Cancel", "payload": "/deny"}],
        ),
    },
    "appeal_filed": {
        "zh": (
            "申诉已提交，编号 {appeal_id}。我们会在{respond_by}前给您答复，期间随时可以问我“申诉进度”。",
            [],
        ),
        "en": (
            "Your appeal is filed. Reference: {appeal_id}. You'll get an answer by {respond_by}; you can ask me \"how's my appeal?\" any time.",
            [],
        ),
    },
    "appeal_already_open": {
        "zh": (
            "这个问题您已经有一个正在处理的申诉（{appeal_id}），所以没有重复提交。可以问我“申诉进度”查看处理情况。",
            [],
        ),
        "en": (
            "You already have an open appeal about this ({appeal_id}), so I haven't filed a second one. Ask me \"how's my appeal?\" to see where it is.",
            [],
        ),
    },
    "appeal_failed": {
        "zh": (
            "抱歉，申诉暂时没能提交成功。您写的内容我已经保存了，不会丢失。我可以为您转接人工客服，同事会直接看到您的说明。",
            [{"title": "转人工客服", "payload": "/request_human"}],
        ),
        "en": (
            "Sorry, I couldn't file the appeal just now. Nothing is lost: I've kept what you wrote. I can pass it to a colleague, who will see your statement.",
            [{"title": "Talk to a person", "payload": "/request_human"}],
        ),
    },
    "no_appeals": {
        "zh": ("您的账户目前没有申诉记录。如果您对结果有异议，告诉我，我可以帮您提交申诉。", []),
        "en": (
            "I don't see any appeals on your account. If you disagree with a decision, tell me and I can file one.",
            [],
        ),
    },
    "handoff_started": {
        "zh": (
            "正在为您转接人工客服。同事会看到我们的全部对话和您的账户情况，您不需要再重复说明。请留在这个对话里稍等。",
            [],
        ),
        "en": (
            "I'm bringing in a colleague now. They'll see our whole conversation and your account details, so you won't need to repeat anything. Please stay in this chat.",
            [],
        ),
    },
    "handoff_failed": {
        "zh": ("抱歉，暂时无法为您转接人工客服，请过几分钟再试；您刚才说的内容都已保存。", []),
        "en": (
            "Sorry, I can't reach our support team from here right now. Please try again in a few minutes; nothing you've told me is lost.",
            [],
        ),
    },
    "back_from_agent": {
        "zh": ("我回来了，还有什么需要我帮您查的吗？", []),
        "en": ("I'm back with you. Anything else I can check?", []),
    },
    "back_from_agent_with_note": {
        "zh": ("我回来了。同事备注：“{note}”。我再帮您查一下账户情况。", []),
        "en": (
            'I\'m back with you. My colleague noted: "{note}". Let me check your account again.',
            [],
        ),
    },
}


def render(key: str, lang: str, **fields: Any) -> tuple[str, list[Button]]:
    text, buttons = TEXTS[key]["en" if lang == "en" else "zh"]
    return text.format(**fields), [dict(b) for b in buttons]


def say(
    dispatcher: CollectingDispatcher,
    key: str,
    lang: str,
    *,
    extra_buttons: list[Button] | None = None,
    **fields: Any,
) -> None:
    text, buttons = render(key, lang, **fields)
    dispatcher.utter_message(text=text, buttons=[*buttons, *(extra_buttons or [])])
