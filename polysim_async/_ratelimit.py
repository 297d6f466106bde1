"""The client-side rate limiter: sliding one-second and one-minute windows.

One limiter is shared by every request of a :class:`~polysim_async.Client`, so
``asyncio.gather`` of a thousand calls is paced to the budget rather than
answered with 429s. Waiters are served first come, first served.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Awaitable, Callable, Mapping

from ._config import RateLimit
from ._errors import DeadlineExceededError

__all__ = ["RateLimiter"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name) or headers.get(name.replace("X-RateLimit", "X-Polysim-RateLimit"))
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class RateLimiter:
    """Paces request starts to a :class:`RateLimit`.

    Args:
        limit: the budget; ``None`` turns the limiter off.
        clock: monotonic clock in seconds (injectable for tests).
        sleep: coroutine function that waits (injectable for tests).
        wall_clock: epoch clock, to read ``X-RateLimit-Reset`` given as epoch seconds.
    """

    def __init__(
        self,
        limit: RateLimit | None,
        *,
        clock: Clock,
        sleep: Sleep,
        wall_clock: Clock,
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._second: collections.deque[float] = collections.deque()
        self._minute: collections.deque[float] = collections.deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        #: Total seconds spent waiting for the budget, for applications to read.
        self.waited = 0.0

    def _delay(self, now: float) -> float:
        """Seconds until one more request fits every window (0 when it fits now)."""
        delay = max(0.0, self._paused_until - now)
        limit = self.limit
        if limit is None:
            return delay
        while self._second and self._second[0] <= now - 1.0:
            self._second.popleft()
        while self._minute and self._minute[0] <= now - 60.0:
            self._minute.popleft()
        if limit.per_second is not None and len(self._second) >= limit.per_second:
            delay = max(delay, self._second[-limit.per_second] + 1.0 - now)
        if limit.per_minute is not None and len(self._minute) >= limit.per_minute:
            delay = max(delay, self._minute[-limit.per_minute] + 60.0 - now)
        return delay

    async def acquire(self, deadline: float | None = None) -> None:
        """Wait until one more request fits the budget, then record it.

        Args:
            deadline: clock time by which the request must start.

        Raises:
            DeadlineExceededError: the wait would pass ``deadline``.

        Cancellation while waiting gives up the place in line and records nothing.
        """
        if self.limit is None and self._paused_until <= self._clock():
            return
        async with self._lock:
            while True:
                now = self._clock()
                delay = self._delay(now)
                if delay <= 0:
                    break
                if deadline is not None and now + delay > deadline:
                    raise DeadlineExceededError(
                        f"rate limiter wait of {delay:.3f}s would pass the call's deadline"
                    )
                self.waited += delay
                await self._sleep(delay)
            if self.limit is not None:
                if self.limit.per_second is not None:
                    self._second.append(now)
                if self.limit.per_minute is not None:
                    self._minute.append(now)

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (after a 429's ``Retry-After``)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Use the server's ``X-RateLimit-*`` headers as hints.

        Only an exhausted minute window is acted on: the limiter pauses until the
        advertised reset. ``X-RateLimit-Reset`` is seconds-until on the partner
        API and epoch seconds on the trader API (API.md §7); values past 10^9 are
        read as epoch seconds. The docs call these headers coarse, so a non-zero
        remaining count never loosens the configured budget.
        """
        remaining = _header_float(headers, "X-RateLimit-Remaining")
        if remaining is None or remaining > 0:
            return
        reset = _header_float(headers, "X-RateLimit-Reset")
        if reset is None:
            return
        if reset > 1e9:
            reset -= self._wall_clock()
        if 0 < reset <= 60:
            self.pause(reset)
