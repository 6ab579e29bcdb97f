"""A terminal chat with the assistant as a demo borrower, through the real REST channel.

The borrower's identity and locale travel in the message metadata, exactly as the desk sends
them; buttons are shown as numbered choices (type the number to press one).
"""

from __future__ import annotations

import uuid

import requests

from eligibility.seed import DEMO_BORROWERS, DEMO_NAMES

from .config import StackConfig

QUIT = {"/quit", "/exit", "/q"}


def pick_borrower() -> tuple[str, str]:
    print("\nDemo borrowers:")
    for i, demo in enumerate(DEMO_BORROWERS, 1):
        print(f"  {i:>2}. {demo.id:<24} {DEMO_NAMES[demo.id]:<10} {demo.situation}")
    while True:
        choice = input("Pick a borrower [1]: ").strip() or "1"
        if choice.isdigit() and 1 <= int(choice) <= len(DEMO_BORROWERS):
            demo = DEMO_BORROWERS[int(choice) - 1]
            break
        print(f"Type a number from 1 to {len(DEMO_BORROWERS)}.")
    locale = input(f"App language, zh-CN or en-US [{demo.locale}]: ").strip() or demo.locale
    return demo.id, locale if locale in ("zh-CN", "en-US") else demo.locale


def run_chat(config: StackConfig) -> int:
    borrower_id, locale = pick_borrower()
    sender = f"terminal-{uuid.uuid4().hex[:12]}"
    url = f"{config.url('rasa')}/webhooks/rest/webhook"
    print(f"\nChatting as {borrower_id} ({locale}). Type /quit to leave.\n")
    buttons: list[dict[str, str]] = []
    while True:
        try:
            text = input("you > ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not text:
            continue
        if text in QUIT:
            return 0
        if text.isdigit() and buttons and 1 <= int(text) <= len(buttons):
            pressed = buttons[int(text) - 1]
            print(f"      [{pressed['title']}]")
            text = pressed["payload"]
        try:
            replies = requests.post(url, json={"sender": sender, "message": text,
                                               "metadata": {"borrower_id": borrower_id,
                                                            "locale": locale}},
                                    timeout=30).json()
        except (requests.RequestException, ValueError) as exc:
            print(f"bot > (no answer from the assistant: {exc})")
            continue
        buttons = []
        for reply in replies:
            if reply.get("text"):
                print("bot > " + reply["text"].replace("\n", "\n      "))
            for button in reply.get("buttons") or []:
                buttons.append(button)
                print(f"      {len(buttons)}. {button.get('title')}")
        if not replies:
            print("bot > (no reply: a colleague may have taken over this conversation)")
