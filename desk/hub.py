"""Live connections: borrowers' chat sockets by conversation, and agents' console sockets by
agent (so a live message reaches only the agent working on it).

Each desk process holds the sockets connected to it (empty entries are removed, so the maps
hold only live sockets). With several desk processes (``RELEND_DESK_REDIS_URL`` set), every
live frame also goes through one Redis pub/sub channel (``RELEND_DESK_REDIS_CHANNEL``): a
frame is delivered at once to this process's sockets and published for the others, which
deliver it to theirs. So a borrower on one desk and their agent on another see each other's
messages, and queue updates reach every agent.

Redis only carries live frames; every message is in the database first, and clients catch up
on reconnect (the chat page sends ``hello`` with the last id it has, the console reloads the
queue and the open case). When Redis is unavailable:

- frames for the other desks wait in this process's outbox, in order, and are published when
  Redis is back (for up to ``HOLD_SECONDS``; older ones are dropped, and once Redis is back
  the sockets they were for are told to reconnect: a ``resync`` event);
- the listener reconnects by itself; once it listens again it closes this process's sockets
  with 1012 (service restart), since it may have missed frames meanwhile: the clients
  reconnect at once and replay what they missed from the database.

Besides frames for sockets, a desk can signal the other desks (``to_desks``): a frame of a
kind some part of the desk registered a handler for (``on``), e.g. desk/notices.py's "a
notice waits for this conversation" in quiet hours, which the desk holding the borrower's
socket acts on. Signals are best effort: one lost while Redis is away is not replayed.

Without Redis (the default) the hub is in-process only, as for one desk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket as socket_module
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import WebSocket

log = logging.getLogger("relend.desk.hub")

# how long frames for the other desks wait for Redis before they are dropped (their sockets
# are then told to reconnect and replay); and how many may wait
HOLD_SECONDS = 30.0
OUTBOX_LIMIT = 10_000
PING_EVERY = 5.0  # the listener pings Redis this often; no answer for 3 pings: reconnect
RECONNECT_FIRST, RECONNECT_MAX = 0.2, 2.0  # seconds between tries to reach Redis again
CLOSE_REPLAY = 1012  # "service restart": the pages reconnect and replay from the database


def instance_id() -> str:
    """This desk process, as other desks and the database see it (at most 40 characters)."""
    return f"{socket_module.gethostname()[:16]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _named(conversations: set[str] | list[str], limit: int = 20) -> str:
    names = sorted(conversations)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more if names else "none"


class Hub:
    def __init__(self, redis_url: str = "", channel: str = "relend:desk",
                 instance: str = "") -> None:
        self.borrowers: dict[str, set[WebSocket]] = {}
        self.agents: dict[WebSocket, int] = {}
        self.redis_url = redis_url
        self.channel = channel
        self.instance = instance or instance_id()
        self.listening = False  # the Redis listener is subscribed right now
        self._outbox: asyncio.Queue[tuple[float, dict[str, Any]]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._publisher: Any = None  # redis.asyncio.Redis
        # what frames were dropped for while Redis was away: told to reconnect once it is back
        self._missed_conversations: set[str] = set()
        self._missed_agents: set[int] = set()
        self._missed_all_agents = False
        self._last_conversations: set[str] = set()  # this desk's, when Redis was lost
        self._down_since: float | None = None  # when publishing to Redis began to fail
        self._dropped: set[str] = set()  # what frames were dropped for, during this outage
        self._held: set[str] = set()  # what frames waited for, during this outage
        self._subscribed = asyncio.Event()
        # signals from other desks, by kind (``on``); the kinds above are not for handlers
        self._handlers: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {}

    # --- sockets of this process ---------------------------------------------------------------

    def add_borrower(self, conversation_id: str, socket: WebSocket) -> None:
        self.borrowers.setdefault(conversation_id, set()).add(socket)

    def remove_borrower(self, conversation_id: str, socket: WebSocket) -> None:
        sockets = self.borrowers.get(conversation_id)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self.borrowers[conversation_id]

    def add_agent(self, agent_id: int, socket: WebSocket) -> None:
        self.agents[socket] = agent_id

    def remove_agent(self, socket: WebSocket) -> None:
        self.agents.pop(socket, None)

    async def _send(self, sockets: list[WebSocket], payload: dict[str, Any]) -> list[WebSocket]:
        """Send to each; returns the sockets that failed (closed here)."""
        failed = []
        for socket in sockets:
            try:
                await socket.send_json(payload)
            except Exception:
                failed.append(socket)
                with contextlib.suppress(Exception):
                    await socket.close()
        return failed

    async def _borrower_here(self, conversation_id: str, payload: dict[str, Any]) -> None:
        for socket in await self._send(list(self.borrowers.get(conversation_id, ())), payload):
            self.remove_borrower(conversation_id, socket)

    async def _agent_here(self, agent_id: int, payload: dict[str, Any]) -> None:
        sockets = [s for s, owner in list(self.agents.items()) if owner == agent_id]
        for socket in await self._send(sockets, payload):
            self.remove_agent(socket)

    async def _agents_here(self, payload: dict[str, Any]) -> None:
        for socket in await self._send(list(self.agents), payload):
            self.remove_agent(socket)

    async def _disconnect_here(self, agent_id: int, code: int = 4401) -> None:
        for socket in [s for s, owner in list(self.agents.items()) if owner == agent_id]:
            self.remove_agent(socket)
            with contextlib.suppress(Exception):
                await socket.close(code=code)

    async def _replay_here(self, conversations: set[str] | None, agents: set[int] | None,
                           all_agents: bool) -> tuple[int, int]:
        """Close sockets (1012) so their clients reconnect and replay from the database:
        ``None`` means all of them. Returns (borrower sockets, agent sockets) closed."""
        borrower_sockets = [(c, s) for c, sockets in list(self.borrowers.items())
                            if conversations is None or c in conversations for s in sockets]
        agent_sockets = [s for s, owner in list(self.agents.items())
                         if all_agents or agents is None or owner in agents]
        for conversation_id, socket in borrower_sockets:
            self.remove_borrower(conversation_id, socket)
            with contextlib.suppress(Exception):
                await socket.close(code=CLOSE_REPLAY)
        for socket in agent_sockets:
            self.remove_agent(socket)
            with contextlib.suppress(Exception):
                await socket.close(code=CLOSE_REPLAY)
        return len(borrower_sockets), len(agent_sockets)

    # --- what callers use: this process's sockets, then the other desks' -----------------------

    async def to_borrower(self, conversation_id: str, payload: dict[str, Any]) -> None:
        await self._borrower_here(conversation_id, payload)
        self._publish({"to": "borrower", "conversation_id": conversation_id,
                       "payload": payload})

    async def to_agent(self, agent_id: int, payload: dict[str, Any]) -> None:
        await self._agent_here(agent_id, payload)
        self._publish({"to": "agent", "agent_id": agent_id, "payload": payload})

    async def to_agents(self, payload: dict[str, Any]) -> None:
        """Queue updates (no content) go to every agent."""
        await self._agents_here(payload)
        self._publish({"to": "agents", "payload": payload})

    async def disconnect_agent(self, agent_id: int) -> None:
        """After logout: the revoked tokens' sockets are closed (4401: sign in again), on
        every desk."""
        await self._disconnect_here(agent_id)
        self._publish({"to": "disconnect", "agent_id": agent_id})

    def on(self, kind: str, handler: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        """Signals of ``kind`` from other desks go to ``handler`` (awaited by the listener:
        it should return quickly)."""
        assert kind not in ("borrower", "agent", "agents", "disconnect", "resync"), kind
        self._handlers[kind] = handler

    async def to_desks(self, kind: str, **fields: Any) -> None:
        """Signal the other desks (their ``on(kind, ...)`` handlers); nothing without Redis."""
        self._publish({"to": kind, **fields})

    # --- Redis ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """With a Redis URL: start publishing to and listening on the channel (the desk's
        lifespan calls this; Redis need not be up yet)."""
        if not self.redis_url or self._tasks:
            return
        import redis.asyncio as aioredis

        self._outbox = asyncio.Queue(OUTBOX_LIMIT)
        self._publisher = aioredis.Redis.from_url(
            self.redis_url, socket_connect_timeout=2, socket_timeout=5)
        self._subscribed = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._publish_loop()), loop.create_task(self._listen())]
        # listening before the first socket connects (else that socket is asked to replay);
        # a Redis that is away does not hold up the start: the listener keeps trying
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 3)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks = []
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                await self._publisher.close()
            self._publisher = None

    def _publish(self, event: dict[str, Any]) -> None:
        if self._outbox is None:
            return
        if self._down_since is not None:
            self._held.add(self._target(event))
        try:
            self._outbox.put_nowait((time.monotonic(), {**event, "from": self.instance}))
        except asyncio.QueueFull:
            self._missed(event)
            log.error("%s: the live fan-out's outbox is full (%d frames wait for Redis); this "
                      "frame is dropped for the other desks, whose clients will replay it",
                      self._target(event), OUTBOX_LIMIT)

    @staticmethod
    def _target(event: dict[str, Any]) -> str:
        if event.get("conversation_id"):
            return f"conversation {event['conversation_id']}"
        if event.get("agent_id") is not None:
            return f"agent {event['agent_id']}"
        return "all agents"

    def _missed(self, event: dict[str, Any]) -> None:
        if event["to"] == "borrower":
            self._missed_conversations.add(event["conversation_id"])
        elif event["to"] in ("agent", "disconnect"):
            self._missed_agents.add(event["agent_id"])
        elif event["to"] == "agents":
            self._missed_all_agents = True
        # a signal (``to_desks``) is best effort: nobody replays it

    async def _publish_loop(self) -> None:
        """Publish the outbox in order; while Redis is away, hold it (up to HOLD_SECONDS).
        One log line when Redis goes away, one when it is back (with what was dropped)."""
        assert self._outbox is not None
        while True:
            missed = self._missed_conversations or self._missed_agents or self._missed_all_agents
            if missed:  # once Redis is back, the sockets those frames were for replay
                await self._publish_resync()
            try:  # with frames missed, try again in a second even if nothing else comes
                queued_at, event = await asyncio.wait_for(self._outbox.get(),
                                                          1.0 if missed else None)
            except asyncio.TimeoutError:
                continue
            wait = RECONNECT_FIRST
            while True:
                if time.monotonic() - queued_at > HOLD_SECONDS:
                    self._missed(event)
                    if not self._dropped:
                        log.warning("%s: live frames have waited over %.0f s for Redis; they "
                                    "are dropped for the other desks, whose clients replay "
                                    "them once it is back", self._target(event), HOLD_SECONDS)
                    self._dropped.add(self._target(event))
                    break
                try:
                    await self._publisher.publish(self.channel, json.dumps(
                        event, ensure_ascii=False, separators=(",", ":")))
                except Exception as exc:
                    self._held.add(self._target(event))
                    if self._down_since is None:
                        self._down_since = time.monotonic()
                        log.warning("%s: Redis unavailable for the live fan-out (%s: %s); "
                                    "frames for the other desks wait, in order, and go out "
                                    "when it is back (messages are stored; clients replay)",
                                    self._target(event), type(exc).__name__, exc)
                    await asyncio.sleep(wait)
                    wait = min(RECONNECT_MAX, wait * 2)
                    continue
                if self._down_since is not None:
                    log.warning("live fan-out: Redis is back for publishing after %.1f s; the "
                                "%d frame(s) still waiting go out now; frames waited for: %s; "
                                "dropped for: %s", time.monotonic() - self._down_since,
                                self._outbox.qsize() + 1, _named(self._held),
                                _named(self._dropped))
                    self._down_since = None
                    self._dropped.clear()
                    self._held.clear()
                break

    async def _publish_resync(self) -> None:
        event = {"to": "resync", "from": self.instance,
                 "conversations": sorted(self._missed_conversations),
                 "agents": sorted(self._missed_agents), "all_agents": self._missed_all_agents}
        try:
            await self._publisher.publish(self.channel, json.dumps(event))
        except Exception:
            return  # still down: tried again within a second
        log.warning("live fan-out: the other desks' sockets of conversations %s and agents %s "
                    "missed frames while Redis was away; told to reconnect and replay",
                    _named(self._missed_conversations),
                    "all" if self._missed_all_agents else sorted(self._missed_agents))
        self._missed_conversations.clear()
        self._missed_agents.clear()
        self._missed_all_agents = False
        self._down_since = None  # Redis is back: the next outage is logged again
        self._dropped.clear()
        self._held.clear()

    async def _listen(self) -> None:
        """Subscribe and deliver the other desks' frames; reconnect by itself. Each time it
        is subscribed again, this process's sockets replay (it may have missed frames)."""
        import redis.asyncio as aioredis

        lost_at: float | None = None
        lost_why = ""
        wait = RECONNECT_FIRST
        while True:
            client = aioredis.Redis.from_url(self.redis_url, socket_connect_timeout=2,
                                             socket_timeout=5)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.listening = True
                self._subscribed.set()
                wait = RECONNECT_FIRST
                borrowers, agents = await self._replay_here(None, None, True)
                if lost_at is not None:
                    log.warning("live fan-out: listening on Redis again after %.1f s (%s); "
                                "closed %d borrower and %d agent socket(s) on this desk so "
                                "they replay what they missed (conversations: %s)",
                                time.monotonic() - lost_at, lost_why, borrowers, agents,
                                _named(self._last_conversations))
                elif borrowers or agents:
                    log.warning("live fan-out: listening on Redis; closed %d borrower and %d "
                                "agent socket(s) that connected before, so they replay",
                                borrowers, agents)
                lost_at = None
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if lost_at is None:
                    lost_at = time.monotonic()
                    lost_why = f"{type(exc).__name__}: {exc}"
                    self._last_conversations = set(self.borrowers)
                    log.warning("live fan-out: lost Redis (%s); reconnecting by itself. Until "
                                "then this desk's sockets (conversations: %s) get no frames "
                                "from other desks; they replay once it is back",
                                lost_why, _named(self._last_conversations))
            finally:
                self.listening = False
                with contextlib.suppress(Exception):
                    await pubsub.close()
                with contextlib.suppress(Exception):
                    await client.close()
            await asyncio.sleep(wait)
            wait = min(RECONNECT_MAX, wait * 2)

    async def _read(self, pubsub: Any) -> None:
        heard = pinged = time.monotonic()
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            now = time.monotonic()
            if message is not None:
                heard = now
                if message.get("type") == "message":
                    await self._deliver(message["data"])
            if now - pinged >= PING_EVERY:
                pinged = now
                await pubsub.ping()
            if now - heard > 3 * PING_EVERY:
                raise ConnectionError(f"no answer from Redis for {now - heard:.0f} s")

    async def _deliver(self, data: bytes | str) -> None:
        """A frame from another desk, to this process's sockets."""
        try:
            event = json.loads(data)
            if event.get("from") == self.instance:
                return
            to = event.get("to")
            if to == "borrower":
                await self._borrower_here(str(event["conversation_id"]), event["payload"])
            elif to == "agent":
                await self._agent_here(int(event["agent_id"]), event["payload"])
            elif to == "agents":
                await self._agents_here(event["payload"])
            elif to == "disconnect":
                await self._disconnect_here(int(event["agent_id"]))
            elif to in self._handlers:
                await self._handlers[to](event)
            elif to == "resync":
                conversations = set(event.get("conversations") or [])
                borrowers, agents = await self._replay_here(
                    conversations, set(event.get("agents") or []),
                    bool(event.get("all_agents")))
                if borrowers or agents:
                    log.warning("live fan-out: desk %s dropped frames while Redis was away; "
                                "closed %d borrower socket(s) (conversations: %s) and %d agent "
                                "socket(s) here so they replay", event.get("from"), borrowers,
                                _named(conversations),
                                agents)
        except Exception:
            log.exception("live fan-out: a frame from another desk could not be delivered: "
                          "%.200r", data)
