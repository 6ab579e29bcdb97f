"""The outbox worker: the scheduler's tick, then a publisher pass, every few seconds.

``python -m eligibility worker`` runs it as a process of its own (production: one per
database; a second one is harmless — ticks are exactly once by key, and a row sent twice
carries the same key). ``RELEND_OUTBOX_WORKER_SECONDS`` > 0 runs the same loop in a thread of
``serve`` instead. Without ``RELEND_OUTBOX_AMQP_URL`` there is nothing to publish to: rows
stay in the table for consumers that ``poll`` it (the embedded default).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import sessionmaker

from .outbox import PublishResult, amqp_publisher
from .scheduler import TickResult, tick

log = logging.getLogger("relend.eligibility.worker")


async def run_once(sessions: sessionmaker, settings: Any, clock: Callable[[], datetime]
                   ) -> tuple[TickResult, PublishResult | None]:
    ticked = await asyncio.to_thread(tick, sessions, clock(), settings)
    published = None
    if settings.outbox_amqp_url:
        published = await amqp_publisher(sessions, settings).run_once(clock())
    return ticked, published


async def run(sessions: sessionmaker, settings: Any, clock: Callable[[], datetime], *,
              interval: float, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            ticked, published = await run_once(sessions, settings, clock)
            if ticked.recorded or (published and published.published):
                log.info("outbox: recorded %s, published %s", ticked.recorded,
                         published.published if published else "-")
        except Exception:  # a failed pass is retried at the next interval
            log.exception("outbox worker pass failed")
        await asyncio.to_thread(stop.wait, interval)


def start_thread(sessions: sessionmaker, settings: Any, clock: Callable[[], datetime],
                 interval: float) -> tuple[threading.Thread, threading.Event]:
    """The loop in a daemon thread with its own event loop (the server's loop stays free)."""
    stop = threading.Event()
    thread = threading.Thread(
        target=lambda: asyncio.run(run(sessions, settings, clock, interval=interval,
                                       stop=stop)),
        name="relend-outbox-worker", daemon=True)
    thread.start()
    return thread, stop
