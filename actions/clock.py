"""The actions' one clock: every "now" an action reads (the dates in its replies, the age of a
decision it fetched) comes from ``utc_now()``.

The clock is the system's UTC time unless ``use_clock`` puts another one in its place for the
duration of a ``with`` block, which is how tests and tools fix the moment::

    with use_clock(lambda: datetime(2026, 3, 10, 4, 0, tzinfo=timezone.utc)):
        ...  # every action now reads that moment

A clock is any callable returning an aware UTC datetime (as ``eligibility.deps.Clock``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


_clock: Clock = system_clock


def utc_now() -> datetime:
    """Now, by the clock in use."""
    return _clock()


def timestamp() -> float:
    """Now as POSIX seconds, by the clock in use (what a cached decision's age is measured in)."""
    return _clock().timestamp()


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Read ``clock`` instead of the current one until the block ends (blocks may nest)."""
    global _clock
    previous, _clock = _clock, clock
    try:
        yield clock
    finally:
        _clock = previous
