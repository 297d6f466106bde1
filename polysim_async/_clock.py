"""One source of time for every timing decision of the library.

The request path (limiter, backoff, deadlines), the execution stream (pings,
REST checks, reconnect backoff), the trade watch and the fleet monitor
(schedules), keep-alive loops and the shared limiter's local fallback all read
time from one :class:`Clock` object, handed down from the
:class:`~polysim_async.Client`. Nothing else in the package reads
``loop.time()``, ``time.monotonic()`` or ``time.time()`` directly, so a test can
inject a virtual clock and run every timing path without real waiting.

:class:`SystemClock` is the default: the monotonic clock, the epoch clock,
``asyncio.sleep`` and the running loop's timers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Cancellable", "Clock", "SystemClock"]


class Cancellable(Protocol):
    """A scheduled callback that can be called off (``asyncio.TimerHandle`` is one)."""

    def cancel(self) -> None:
        """Call the callback off; harmless if it already ran."""
        ...


class Clock(Protocol):
    """Where the library reads time, sleeps and schedules timers.

    ``now`` and ``call_at`` share one monotonic time line (seconds, arbitrary
    origin); ``wall`` is epoch seconds, used only to read server values given
    as epoch times (``X-RateLimit-Reset`` on the trader API, HTTP dates).
    """

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (``<= 0`` yields once). Cancellation propagates."""
        ...

    def call_at(self, when: float, callback: Callable[[], object]) -> Cancellable:
        """Run ``callback`` on the running loop once ``now()`` reaches ``when``."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic``, ``time.time``, ``asyncio.sleep`` and loop timers."""

    now = staticmethod(time.monotonic)
    wall = staticmethod(time.time)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` with ``asyncio.sleep``. Cancellation propagates."""
        await asyncio.sleep(max(0.0, seconds))

    def call_at(self, when: float, callback: Callable[[], object]) -> Cancellable:
        """Schedule ``callback`` on the running loop at monotonic time ``when``.

        Raises:
            RuntimeError: no event loop is running.
        """
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, when - self.now()), callback)

    def __repr__(self) -> str:
        return "SystemClock()"


#: The shared default instance.
SYSTEM_CLOCK = SystemClock()
