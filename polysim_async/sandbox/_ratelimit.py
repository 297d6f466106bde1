"""Server-side rate limits, as documented (API.md §7).

Partner (``/v1/partner/*``): two sliding windows, 50 per second and 3,000 per
minute, kept both per tenant and per key; the tenant buckets are checked first and
every one must pass. A rejected request is not counted. ``Retry-After`` is ``1``
for the per-second cap and the whole seconds until the oldest request leaves the
minute window for the per-minute cap (the larger wait when both are reached).
Headers: ``X-RateLimit-Limit`` /
``-Remaining`` / ``-Reset`` (minute window; reset = seconds until the oldest
counted request leaves it, 0 when empty), ``-Limit-Per-Second`` /
``-Remaining-Per-Second``, each also as ``X-Polysim-RateLimit-*``. The values are
those of the tighter scope (tenant or key).

Trader (``/v1/*``): per key, fixed windows on the clock second and clock minute,
limits by tier. Headers ``x-ratelimit-tier``, ``-limit`` (per minute),
``-limit-per-second``, ``-remaining``, ``-remaining-per-second``, ``-reset`` (epoch
seconds when the minute window resets) and ``x-polysim-ratelimit-*`` duplicates.
``Retry-After`` is 1 for the per-second cap, else the seconds to the next minute.

Both count real request arrivals, not simulated time: the windows run on
:class:`RealTime` (monotonic, aligned once to the epoch so fixed windows fall on
clock seconds and the trader ``-reset`` header is a real epoch second), whatever
the simulated clock does. A frozen simulated clock therefore never wedges a
test, and :meth:`Sandbox.advance` never frees a window. Tests inject a fake time
source instead of sleeping.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["FixedWindow", "Limited", "PartnerLimiter", "RealTime", "SlidingWindow", "TimeSource"]


class TimeSource(Protocol):
    """Where rate-limit time comes from (``polysim_async``'s ``Clock`` is one)."""

    def now(self) -> float:
        """Monotonic seconds (arbitrary origin)."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch."""
        ...


class _SystemTime:
    now = staticmethod(time.monotonic)
    wall = staticmethod(time.time)


class RealTime:
    """Request-arrival time: ``source.now()`` shifted once onto the epoch.

    Monotonic (a wall-clock step never reopens or stretches a window) yet close to
    real epoch seconds, so trader windows start on clock seconds and minutes.

    Args:
        source: the time source; the real clocks by default.
    """

    def __init__(self, source: TimeSource | None = None) -> None:
        self._source = source if source is not None else _SystemTime()
        self._offset = self._source.wall() - self._source.now()

    def __call__(self) -> float:
        """Return the current arrival time in epoch seconds."""
        return self._source.now() + self._offset


class Limited(Exception):
    """A request over a cap; carries the ``Retry-After`` seconds."""

    def __init__(self, retry_after: int, headers: dict[str, str]) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after
        self.headers = headers


class SlidingWindow:
    """Timestamps of accepted requests over the last second and minute."""

    __slots__ = ("_minute", "_second")

    def __init__(self) -> None:
        self._second: deque[float] = deque()
        self._minute: deque[float] = deque()

    def prune(self, now: float) -> None:
        """Forget requests that left their windows."""
        while self._second and self._second[0] <= now - 1.0:
            self._second.popleft()
        while self._minute and self._minute[0] <= now - 60.0:
            self._minute.popleft()

    def check(self, now: float, per_second: int, per_minute: int) -> int | None:
        """Return a ``Retry-After`` when over a cap, else ``None`` (nothing recorded)."""
        self.prune(now)
        retry: int | None = None
        if len(self._second) >= per_second:
            retry = 1
        if len(self._minute) >= per_minute:
            retry = max(1, math.ceil(self._minute[0] + 60.0 - now))
        return retry

    def record(self, now: float) -> None:
        """Count an accepted request."""
        self._second.append(now)
        self._minute.append(now)

    def remaining(self, now: float, per_second: int, per_minute: int) -> tuple[int, int, int]:
        """``(remaining per minute, remaining per second, seconds until minute reset)``."""
        reset = math.ceil(self._minute[0] + 60.0 - now) if self._minute else 0
        return (
            max(0, per_minute - len(self._minute)),
            max(0, per_second - len(self._second)),
            max(0, reset),
        )


@dataclass
class PartnerLimiter:
    """The partner limits: per tenant and per key, each per second and per minute."""

    per_second: int = 50
    per_minute: int = 3000
    _buckets: dict[object, SlidingWindow] = field(default_factory=dict)

    def hit(self, tenant_id: int, key: str, now: float) -> dict[str, str]:
        """Count one request and return the headers to send.

        Raises:
            Limited: a tenant or key cap is reached.
        """
        buckets = self._buckets
        windows: list[SlidingWindow] = []
        for scope in (("tenant", tenant_id), ("key", key)):
            window = buckets.get(scope)
            if window is None:
                window = buckets[scope] = SlidingWindow()
            windows.append(window)
        for window in windows:
            retry = window.check(now, self.per_second, self.per_minute)
            if retry is not None:
                raise Limited(retry, self._headers(windows, now))
        for window in windows:
            window.record(now)
        return self._headers(windows, now)

    def _headers(self, windows: list[SlidingWindow], now: float) -> dict[str, str]:
        values = [w.remaining(now, self.per_second, self.per_minute) for w in windows]
        minute = min(v[0] for v in values)
        second = min(v[1] for v in values)
        reset = max(v[2] for v in values)
        out: dict[str, str] = {}
        for prefix in ("X-RateLimit", "X-Polysim-RateLimit"):
            out[f"{prefix}-Limit"] = str(self.per_minute)
            out[f"{prefix}-Remaining"] = str(minute)
            out[f"{prefix}-Reset"] = str(reset)
            out[f"{prefix}-Limit-Per-Second"] = str(self.per_second)
            out[f"{prefix}-Remaining-Per-Second"] = str(second)
        return out


class FixedWindow:
    """Per-key counters on the clock second and clock minute (trader limits)."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, int, int, int]] = {}

    def hit(
        self, key: str, tier: str, per_second: int, per_minute: int, now: float
    ) -> dict[str, str]:
        """Count one request for ``key`` and return the headers to send.

        Raises:
            Limited: the per-second or per-minute cap of the tier is reached.
        """
        sec, minute = int(now), int(now // 60)
        s_win, s_count, m_win, m_count = self._counts.get(key, (sec, 0, minute, 0))
        if s_win != sec:
            s_win, s_count = sec, 0
        if m_win != minute:
            m_win, m_count = minute, 0
        reset = (minute + 1) * 60
        retry: int | None = None
        if m_count >= per_minute:
            retry = max(1, math.ceil(reset - now))
        elif s_count >= per_second:
            retry = 1
        else:
            s_count += 1
            m_count += 1
        self._counts[key] = (s_win, s_count, m_win, m_count)
        headers: dict[str, str] = {}
        for prefix in ("x-ratelimit", "x-polysim-ratelimit"):
            headers[f"{prefix}-tier"] = tier
            headers[f"{prefix}-limit"] = str(per_minute)
            headers[f"{prefix}-limit-per-second"] = str(per_second)
            headers[f"{prefix}-remaining"] = str(max(0, per_minute - m_count))
            headers[f"{prefix}-remaining-per-second"] = str(max(0, per_second - s_count))
            headers[f"{prefix}-reset"] = str(reset)
        if retry is not None:
            raise Limited(retry, headers)
        return headers
