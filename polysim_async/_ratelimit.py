"""The client-side rate limiter: sliding one-second and one-minute windows.

One limiter is shared by every request of a :class:`~polysim_async.Client`, so
``asyncio.gather`` of a thousand calls is paced to the budget rather than
answered with 429s. Waiters are served first come, first served.
"""

from __future__ import annotations

import collections
import logging
import math
from collections.abc import Awaitable, Callable, Mapping

from ._config import RateLimit
from ._errors import DeadlineExceededError

logger = logging.getLogger("polysim_async")

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


def _lower(current: int | None, headers: Mapping[str, str], name: str) -> int | None:
    """The advertised limit ``name`` if it is lower than ``current``, else ``current``."""
    advertised = _header_float(headers, name)
    if advertised is None or advertised < 1:
        return current
    return int(advertised) if current is None or advertised < current else current


class RateLimiter:
    """Paces request starts to a :class:`RateLimit` by handing out start times.

    Each caller reserves the earliest start that keeps every window within
    budget, in arrival order, then sleeps until it. Because a caller knows its
    wait before sleeping, one whose slot lies past its deadline fails at once
    without taking the slot. A slot reserved by a caller that is then
    cancelled stays spent, which can only make pacing more conservative.

    Args:
        limit: the budget; ``None`` turns the windows off (429 pauses still apply).
        clock: monotonic clock in seconds (injectable for tests).
        sleep: coroutine function that waits (injectable for tests).
        wall_clock: epoch clock, to read ``X-RateLimit-Reset`` given as epoch seconds.
        adaptive: tighten ``limit`` to the per-second and per-minute limits the
            server advertises when they are lower (never loosen it).
    """

    def __init__(
        self,
        limit: RateLimit | None,
        *,
        clock: Clock,
        sleep: Sleep,
        wall_clock: Clock,
        adaptive: bool = False,
    ) -> None:
        self.limit = limit
        self._adaptive = adaptive
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        # Start times handed out (past and future), ascending.
        self._second: collections.deque[float] = collections.deque()
        self._minute: collections.deque[float] = collections.deque()
        self._paused_until = 0.0
        #: Total seconds callers spent waiting for the budget, for applications to read.
        self.waited = 0.0

    def _reserve(self, now: float) -> float:
        """The earliest start at or after ``now`` that fits every window (not recorded)."""
        start = max(now, self._paused_until)
        limit = self.limit
        if limit is None:
            return start
        # First come, first served: never before a turn already handed out, which
        # also keeps both deques ascending.
        if self._second:
            start = max(start, self._second[-1])
        if self._minute:
            start = max(start, self._minute[-1])
        second, minute = 1.0 + limit.margin, 60.0 + limit.margin
        while self._second and self._second[0] <= now - second:
            self._second.popleft()
        while self._minute and self._minute[0] <= now - minute:
            self._minute.popleft()
        if limit.per_second is not None and len(self._second) >= limit.per_second:
            start = max(start, self._second[-limit.per_second] + second)
        if limit.per_minute is not None and len(self._minute) >= limit.per_minute:
            start = max(start, self._minute[-limit.per_minute] + minute)
        return start

    async def acquire(self, deadline: float | None = None) -> None:
        """Wait for this request's turn in the budget.

        Args:
            deadline: clock time by which the request must start.

        Raises:
            DeadlineExceededError: the turn (or a 429 pause) lies past ``deadline``;
                raised before waiting, and no turn is taken. A caller woken into
                a pause takes a fresh turn after it, checked the same way.

        Cancellation while waiting propagates; the reserved turn stays spent.
        """
        now = self._clock()
        start = self._reserve(now)
        if deadline is not None and start > deadline:
            raise DeadlineExceededError(
                f"rate limiter wait of {start - now:.3f}s would pass the call's deadline"
            )
        self._record(start)
        while start > now:
            self.waited += start - now
            await self._sleep(start - now)
            now = self._clock()
            # A 429 seen while this caller slept pauses it too. Its turn fell inside
            # the pause, so it takes a fresh one after the pause and every turn
            # already handed out: jumping to the pause's end would start every such
            # caller at once. The old turn stays spent (conservative).
            if self._paused_until > max(now, start):
                if deadline is not None and self._paused_until > deadline:
                    raise DeadlineExceededError("a rate-limit pause would pass the call's deadline")
                start = self._reserve(now)
                if deadline is not None and start > deadline:
                    raise DeadlineExceededError(
                        f"rate limiter wait of {start - now:.3f}s after a rate-limit pause"
                        " would pass the call's deadline"
                    )
                self._record(start)

    def _record(self, start: float) -> None:
        """Spend the turn at ``start`` (at or after every turn already recorded)."""
        if self.limit is not None:
            if self.limit.per_second is not None:
                self._second.append(start)
            if self.limit.per_minute is not None:
                self._minute.append(start)

    def _adapt(self, headers: Mapping[str, str]) -> None:
        """Adopt advertised limits lower than the current ones (e.g. a Pro trader key's 10/s)."""
        limit = self.limit
        if limit is None:
            return
        new_second = _lower(limit.per_second, headers, "X-RateLimit-Limit-Per-Second")
        new_minute = _lower(limit.per_minute, headers, "X-RateLimit-Limit")
        if (new_second, new_minute) != (limit.per_second, limit.per_minute):
            self.limit = RateLimit(
                per_second=new_second, per_minute=new_minute, margin=limit.margin
            )
            logger.debug("rate limit tightened to the server's: %r", self.limit)

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
        if self._adaptive:
            self._adapt(headers)
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
