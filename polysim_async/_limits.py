"""The limiter protocol: what the request path needs from a rate limiter.

:class:`~polysim_async.Client` paces every attempt through one object with
three methods. The in-process limiter (built from a
:class:`~polysim_async.RateLimit`) and :class:`~polysim_async.RedisRateLimit`
(one budget shared by every process) both implement it, and so can a limiter
on another store: pass any object that has these methods as
``Client(rate_limit=...)``.

Contract (the request path relies on all of it):

* ``await acquire(deadline)`` returns when this request may start. Turns are
  served first come, first served. ``deadline`` is a time on the client's
  clock (``Clock.now()``); when the turn would start after it, ``acquire``
  raises :class:`~polysim_async.DeadlineExceededError` at once, without
  waiting and without taking the turn. Cancellation while waiting propagates.
* ``pause(seconds)`` reports a 429's ``Retry-After``: no turn may start until
  it has passed. It must not block (a shared limiter publishes it in the
  background) and must not raise.
* ``observe(headers)`` sees every response's headers (``X-RateLimit-*``
  hints). It must not block and must not raise.
* ``release()``, optional: called once after every successful ``acquire``,
  when that request's answer came back (or it failed), after ``observe``. The
  in-process limiter counts a request's slot until then, because the server
  counts a request when it arrives, which can be long after it was sent. It
  must not block and must not raise.

* ``use_clock(clock)``, optional: called once by the client the limiter is
  given to, with the client's :class:`~polysim_async.Clock`, before any other
  call, so deadlines and waits are on one time line. It may raise
  :class:`~polysim_async.InvalidArgumentError` when the limiter was built on
  another clock.

A limiter that also has ``async aclose()`` is closed by the client that was
given it, when that client closes (as an ``httpx`` client closes its
transport); give each client its own limiter object.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from ._clock import Clock

__all__ = [
    "Limiter",
    "aclose_limiter",
    "give_clock",
    "header_float",
    "pause_from_headers",
    "release_turn",
]


@runtime_checkable
class Limiter(Protocol):
    """Paces request starts; see the module docstring for the contract."""

    async def acquire(self, deadline: float | None = None) -> None:
        """Wait for this request's turn.

        Raises:
            DeadlineExceededError: the turn lies past ``deadline``; raised before
                waiting, and no turn is taken.
        """
        ...

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (a 429's ``Retry-After``)."""
        ...

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take the response's ``X-RateLimit-*`` headers as hints."""
        ...


def release_turn(limiter: object) -> None:
    """Tell ``limiter`` a request's answer came back, if it has ``release()``."""
    release = getattr(limiter, "release", None)
    if callable(release):
        release()


def give_clock(limiter: object, clock: Clock) -> None:
    """Hand the client's ``clock`` to ``limiter`` if it has ``use_clock()``.

    Raises:
        InvalidArgumentError: the limiter refuses it (built on another clock).
    """
    use_clock = getattr(limiter, "use_clock", None)
    if callable(use_clock):
        use_clock(clock)


async def aclose_limiter(limiter: object) -> None:
    """Close ``limiter`` if it has an ``aclose()`` coroutine method; else do nothing."""
    aclose = getattr(limiter, "aclose", None)
    if callable(aclose):
        await aclose()


def header_float(headers: Mapping[str, str], name: str) -> float | None:
    """The finite number in header ``name`` or its ``X-Polysim-RateLimit-*`` alias, or ``None``."""
    raw = headers.get(name) or headers.get(name.replace("X-RateLimit", "X-Polysim-RateLimit"))
    if raw is None or len(raw) > 32:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def pause_from_headers(headers: Mapping[str, str], wall_now: float) -> float | None:
    """Seconds to hold every request when the server says the minute window is spent.

    Only an exhausted window (``X-RateLimit-Remaining: 0``) is acted on, until
    ``X-RateLimit-Reset``: seconds-until on the partner API, epoch seconds on
    the trader API (API.md §7); values past 10^9 are read as epoch seconds and
    measured from ``wall_now``. The docs call these headers coarse, so a
    non-zero remaining count never loosens a budget.

    Returns:
        The pause in seconds (0 < pause <= 60), or ``None`` for no pause.
    """
    remaining = header_float(headers, "X-RateLimit-Remaining")
    if remaining is None or remaining > 0:
        return None
    reset = header_float(headers, "X-RateLimit-Reset")
    if reset is None:
        return None
    if reset > 1e9:
        reset -= wall_now
    return reset if 0 < reset <= 60 else None
