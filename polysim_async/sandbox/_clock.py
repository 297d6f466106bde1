"""The sandbox's controllable clock.

Simulated time starts at a fixed instant (so a seed reproduces a run), flows with
real time, and jumps forward when :meth:`SandboxClock.advance` is called. All
instants are integer microseconds since the Unix epoch (UTC): cheap to compare,
bisect and format. :meth:`SandboxClock.stamp` hands out strictly increasing
instants, so no two fills, orders or snapshots ever share a timestamp.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from functools import lru_cache

__all__ = [
    "DEFAULT_START",
    "HOUR_US",
    "SECOND_US",
    "SandboxClock",
    "format_iso",
    "format_iso_z",
    "from_datetime",
    "parse_iso",
    "to_datetime",
]

#: Where simulated time starts unless the sandbox is told otherwise.
DEFAULT_START = datetime(2026, 6, 1, 0, 0, tzinfo=timezone.utc)
SECOND_US = 1_000_000
HOUR_US = 3600 * SECOND_US
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def from_datetime(value: datetime) -> int:
    """Return ``value`` (timezone-aware) as integer microseconds since the epoch."""
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * SECOND_US + delta.microseconds


def to_datetime(us: int) -> datetime:
    """Return epoch microseconds as an aware UTC ``datetime``."""
    return _EPOCH + timedelta(microseconds=us)


@lru_cache(maxsize=4096)
def _iso_second(second: int) -> str:
    """``2026-06-04T14:09:31`` for an epoch second (fills come many to a second)."""
    return to_datetime(second * SECOND_US).isoformat(timespec="seconds")[:-6]


def format_iso(us: int) -> str:
    """Partner form: ``2026-06-04T14:09:31.220148+00:00`` (always with microseconds)."""
    second, micro = divmod(us, SECOND_US)
    return f"{_iso_second(second)}.{micro:06d}+00:00"


def format_iso_z(us: int) -> str:
    """Trader form: ``2026-06-04T14:09:31.220148Z`` (microseconds only when non-zero)."""
    second, micro = divmod(us, SECOND_US)
    return f"{_iso_second(second)}.{micro:06d}Z" if micro else f"{_iso_second(second)}Z"


def parse_iso(text: str) -> int:
    """Parse an ISO-8601 instant that carries a timezone into epoch microseconds.

    Raises:
        ValueError: the text is not an ISO-8601 instant with a timezone.
    """
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("timestamp has no timezone")
    return from_datetime(value)


class SandboxClock:
    """Simulated UTC time: a fixed start, plus real elapsed time, plus manual jumps.

    Args:
        start: the simulated instant at construction (aware ``datetime``).
        frozen: when true, time moves only through :meth:`advance` (tests that
            need exact timestamps); otherwise it also flows with real time.
    """

    def __init__(self, start: datetime = DEFAULT_START, *, frozen: bool = False) -> None:
        self._base_us = from_datetime(start)
        self._real0 = time.monotonic_ns() // 1000
        self._frozen = frozen
        self._offset_us = 0
        self._last_us = 0

    @property
    def frozen(self) -> bool:
        """Whether time moves only through :meth:`advance`."""
        return self._frozen

    def now_us(self) -> int:
        """Return the current simulated instant in epoch microseconds."""
        real = 0 if self._frozen else time.monotonic_ns() // 1000 - self._real0
        return self._base_us + real + self._offset_us

    def now(self) -> datetime:
        """Return the current simulated instant as an aware UTC ``datetime``."""
        return to_datetime(self.now_us())

    def seconds(self) -> float:
        """Return the current simulated instant as epoch seconds (a float)."""
        return self.now_us() / SECOND_US

    def stamp(self, at_us: int | None = None) -> int:
        """Return a unique instant: ``at_us`` (default now), bumped past every earlier stamp."""
        us = self.now_us() if at_us is None else at_us
        if us <= self._last_us:
            us = self._last_us + 1
        self._last_us = us
        return us

    def reserve(self, last_us: int) -> None:
        """Make every later :meth:`stamp` exceed ``last_us`` (used by bulk generation)."""
        self._last_us = max(self._last_us, last_us)

    def advance(self, seconds: float) -> int:
        """Jump simulated time forward by ``seconds`` and return the new instant.

        Raises:
            ValueError: ``seconds`` is negative (time never goes backwards).
        """
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._offset_us += round(seconds * SECOND_US)
        return self.now_us()
