"""Where the changes come from: RabbitMQ (``RELEND_NOTICES_AMQP_URL``) or the backend's
outbox feed (``GET /v1/backoffice/outbox``). Both call the same handler, one change at a time
in outbox order, and let a change go only after the desk stored it:

- **broker**: a message is acknowledged after the handler returned; a notifier that dies
  leaves its unacknowledged messages to the broker, which delivers them again (same key: the
  desk answers ``duplicate``); the handler failing (desk down) returns the message to the
  queue after a pause;
- **feed**: the cursor is the desk's (the newest outbox id it stored, read at start), so a
  restarted notifier goes on where the desk's records end; a failure retries the same change.
  If the backend's row at the cursor is not the change handled there (its ids went back: a
  reseeded SQLite sandbox), the feed is read again from its start (the desk dedupes by key).

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
                        after: int, last_key: str | None) -> bool:
    """Whether the backend's row ``after`` is still the change handled last. It is not when
    the backend's ids went back (a reseeded SQLite sandbox deletes its demo rows, and SQLite
    gives their ids out again): the changes under reused ids would be skipped for ever.
    Without the key in memory (at start), the desk says: a change it knows is ``duplicate``."""
    if after == 0:
        return True
    rows = await _read_feed(settings, client, after - 1, 1)
    if not rows or int(rows[0]["id"]) != after:
        return False
    if last_key is not None:
        return rows[0].get("key") == last_key
    return await handler(rows[0]) == "duplicate"


async def run_feed(settings: NoticeSettings, handler: Handler, client: httpx.AsyncClient,
                   *, once: bool = False) -> int:
    """Read the outbox feed from the desk's cursor on. ``once``: until the feed is empty
    (returns how many changes were handled), else for ever. When the backend's row at the
    cursor is no longer the change handled there, the feed is read again from its start (the
    desk answers ``duplicate`` to every change it has)."""
    handled = 0
    after = None
    last_key: str | None = None
    while True:
        try:
            if after is None:
                after = await handler.cursor()
                if not await _cursor_holds(settings, handler, client, after, None):
                    log.warning("the backend's outbox row %d is not the change the desk "
                                "stored there: reading the feed from its start", after)
                    after = 0
                log.info("reading the outbox feed after id %d", after)
            messages = await _read_feed(settings, client, after, settings.batch)
            for message in messages:
                await handler(message)
                after, last_key = int(message["id"]), str(message.get("key"))
                handled += 1
            if not messages and not await _cursor_holds(settings, handler, client, after,
                                                        last_key):
                log.warning("the backend's outbox ids went back (row %d is not the change "
                            "handled there): reading the feed again from its start", after)
                after, last_key = 0, None
                continue
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
