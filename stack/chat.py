"""A terminal chat with the assistant as a demo borrower, the way the app talks to it: through
the support desk, which verifies the borrower and forwards each message to Rasa's desk channel
with the borrower's identity and locale in the metadata, signed with RELEND_CHANNEL_SECRET.
Agent replies after a handoff arrive here too. Buttons are numbered: type the number to press
one.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import requests
import websockets

from .config import StackConfig

QUIT = {"/quit", "/exit", "/q"}


def pick_borrower(config: StackConfig) -> tuple[str, str]:
    """The demo borrowers as the chat page lists them (the desk's sandbox directory)."""
    demos = requests.get(f"{config.url('desk')}/api/demo/borrowers", timeout=10
                         ).json()["borrowers"]
    print("\nDemo borrowers:")
    for i, demo in enumerate(demos, 1):
        print(f"  {i:>2}. {demo['borrower_id']:<24} {demo['name']:<10} {demo['situation']}")
    while True:
        choice = input("Pick a borrower [1]: ").strip() or "1"
        if choice.isdigit() and 1 <= int(choice) <= len(demos):
            demo = demos[int(choice) - 1]
            break
        print(f"Type a number from 1 to {len(demos)}.")
    default = demo["locale"]
    locale = input(f"App language, zh-CN or en-US [{default}]: ").strip() or default
    return demo["borrower_id"], locale if locale in ("zh-CN", "en-US") else default


class TerminalChat:
    def __init__(self) -> None:
        self.buttons: list[dict[str, str]] = []

    def show(self, frame: dict[str, Any]) -> None:
        sender = frame.get("sender")
        if frame.get("type") != "message" or sender == "borrower":
            return
        label = {"bot": "bot", "agent": f"agent {frame.get('agent_name') or ''}".strip(),
                 "system": "system"}.get(sender, sender)
        print(f"\r{label} > " + (frame.get("text") or "").replace("\n", "\n      "))
        if frame.get("buttons"):
            self.buttons = frame["buttons"]
            for n, button in enumerate(self.buttons, 1):
                print(f"      {n}. {button.get('title')}")
        print("you > ", end="", flush=True)

    async def listen(self, socket: Any) -> None:
        async for raw in socket:
            self.show(json.loads(raw))

    async def run(self, config: StackConfig, borrower_id: str, locale: str) -> int:
        desk = config.url("desk")
        token = requests.post(f"{desk}/api/demo/login", timeout=10, json={
            "borrower_id": borrower_id, "locale": locale}).json()["token"]
        url = desk.replace("http://", "ws://") + "/ws/chat"
        # the desk takes the token as a WebSocket subprotocol, never in the URL
        async with websockets.connect(url, subprotocols=["relend.v1", f"auth.{token}"]
                                      ) as socket:
            session = json.loads(await socket.recv())
            print(f"\nChatting as {borrower_id} ({locale}), conversation "
                  f"{session['conversation_id']}. Type /quit to leave.\n")
            listener = asyncio.create_task(self.listen(socket))
            try:
                while True:
                    try:
                        text = (await asyncio.to_thread(input, "you > ")).strip()
                    except (EOFError, KeyboardInterrupt):
                        print()
                        return 0
                    if not text:
                        continue
                    if text in QUIT:
                        return 0
                    if text.isdigit() and self.buttons and 1 <= int(text) <= len(self.buttons):
                        pressed = self.buttons[int(text) - 1]
                        print(f"      [{pressed['title']}]")
                        text = pressed["payload"]
                    self.buttons = []
                    await socket.send(json.dumps({"type": "message", "text": text,
                                                  "client_id": uuid.uuid4().hex}))
            finally:
                listener.cancel()


def run_chat(config: StackConfig) -> int:
    borrower_id, locale = pick_borrower(config)
    try:
        return asyncio.run(TerminalChat().run(config, borrower_id, locale))
    except KeyboardInterrupt:
        return 0
