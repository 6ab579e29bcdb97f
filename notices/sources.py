"""Where the changes come from: RabbitMQ (``RELEND_NOTICES_AMQP_URL``) or the backend's
outbox feed (``GET /v1/backoffice/outbox``). Both call the same handler, one change at a time
in outbox order, and let a change go only after the desk stored it:

- **broker**: a message is acknowledged after the handler returned; a notifier that dies
  leaves its unacknowledged messages to the broker, which delivers them again (same key: the
  desk answers ``duplicate``); the handler failing (desk down) returns the message to the
  queue after a pause;
- **feed**: the cursor is the desk's (the newest outbox id it stored, read at start), so a
  restarted notifier goes on where the desk's records end; a failure retries the same change.
  Every read starts at the cursor's own row: if it is not the change handled there (the
  backend's ids went back: its database replaced or restored while the desk's was kept; a
  reseed no longer does it, the outbox's ids are never given out twice), the feed is read
  again from its start (the desk dedupes by key).

Each round also asks the desk to release notices whose quiet hours are over. A round that
reached the desk (and the feed, or with the broker connected) touches
``RELEND_NOTICES_STATUS_FILE`` when it is set: ``python -m stack`` checks its age.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx

from .config import NoticeSettings
from .handler import DeskUnavailable, Handler

log = logging.getLogger("relend.notices")
RETRY_SECONDS = 2.0
FEED_LIMIT = 1000  # the most the backend's feed hands out at once


def beat(settings: NoticeSettings) -> None:
    """The notifier is working: write the time into the status file (when there is one)."""
    if not settings.status_file:
        return
    path = Path(settings.status_file)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{time.time():.0f}\n")
    except OSError as exc:
        log.warning("could not write the status file %s: %s", path, exc)


async def _read_feed(settings: NoticeSettings, client: httpx.AsyncClient, after: int,
                     limit: int) -> list[dict[str, Any]]:
    response = await client.get(
        f"{settings.backend_url}/v1/backoffice/outbox",
        params={"after_id": after, "limit": limit},
        headers={"Authorization": f"Bearer {settings.backoffice_token}"})
    response.raise_for_status()
    return list(response.json().get("messages") or [])


async def _cursor_holds(settings: NoticeSettings, handler: Handler, client: httpx.AsyncClient,
                        after: int) -> bool:
    """At start: whether the backend's row ``after`` (the desk's cursor) is a change the desk
    knows (it answers ``duplicate``). It is not when the backend's ids went back (its
    database replaced while the desk's was kept): the changes under those ids would be
    skipped for ever."""
    if after == 0:
        return True
    rows = await _read_feed(settings, client, after - 1, 1)
    if not rows or int(rows[0]["id"]) != after:
        return False
    return await handler(rows[0]) == "duplicate"


async def run_feed(settings: NoticeSettings, handler: Handler, client: httpx.AsyncClient,
                   *, once: bool = False) -> int:
    """Read the outbox feed from the desk's cursor on. ``once``: until the feed is empty
    (returns how many changes were handled), else for ever. Each read starts at the cursor's
    row; when it is no longer the change handled there, the feed is read again from its start
    (the desk answers ``duplicate`` to every change it has)."""
    handled = 0
    after = None
    last_key: str | None = None
    while True:
        try:
            if after is None:
                after = await handler.cursor()
                if not await _cursor_holds(settings, handler, client, after):
                    log.warning("the backend's outbox row %d is not the change the desk "
                                "stored there: reading the feed from its start", after)
                    after = 0
                log.info("reading the outbox feed after id %d", after)
            messages = await _read_feed(settings, client, max(after - 1, 0),
                                        min(settings.batch + bool(after), FEED_LIMIT))
            if after:
                # the row at the cursor comes first: is it still the change handled there?
                # Checked every round, so that changes recorded under ids that went back are
                # not passed over by a newer one above the cursor
                head = messages.pop(0) if messages else None
                if head is None or int(head["id"]) != after or \
                        (last_key is not None and head.get("key") != last_key):
                    log.warning("the backend's outbox ids went back (row %d is not the change "
                                "handled there): reading the feed again from its start", after)
                    after, last_key = 0, None
                    continue
                last_key = str(head.get("key"))
            for message in messages:
                await handler(message)
                after, last_key = int(message["id"]), str(message.get("key"))
                handled += 1
        except (DeskUnavailable, httpx.HTTPError, ValueError) as exc:
            log.warning("notices: %s; trying again in %.0f s", exc, RETRY_SECONDS)
            if once:
                raise
            await asyncio.sleep(RETRY_SECONDS)
            continue
        await handler.release()
        if handler.desk_answered:
            beat(settings)
        if once and not messages:
            return handled
        if not messages:
            await asyncio.sleep(settings.poll_seconds)


async def run_broker(settings: NoticeSettings, handler: Handler) -> None:
    """Consume the queue for ever (reconnecting when the broker goes away)."""
    import aio_pika

    connection = await aio_pika.connect_robust(settings.amqp_url)
    releasing = asyncio.get_running_loop().create_task(
        _release_every(settings, handler, connection))
    try:
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=settings.prefetch)
            queue = await channel.declare_queue(settings.queue, durable=True)
            log.info("consuming notices from the queue %s", settings.queue)
            async with queue.iterator() as messages:
                async for incoming in messages:
                    await _one(handler, incoming)
    finally:
        releasing.cancel()


async def _one(handler: Handler, incoming: Any) -> None:
    try:
        message = json.loads(incoming.body)
        if not isinstance(message, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        log.error("message %s is not a notice (%s); dropped", incoming.message_id, exc)
        await incoming.reject(requeue=False)
        return
    try:
        await handler(message)
    except DeskUnavailable as exc:
        log.warning("change %s: %s; back to the queue in %.0f s", message.get("key"), exc,
                    RETRY_SECONDS)
        await asyncio.sleep(RETRY_SECONDS)
        await incoming.nack(requeue=True)
        return
    await incoming.ack()


async def _release_every(settings: NoticeSettings, handler: Handler,
                         connected: Any = None) -> None:
    while True:
        await handler.release()
        if handler.desk_answered and (connected is None or not connected.is_closed):
            beat(settings)
        await asyncio.sleep(settings.poll_seconds)
