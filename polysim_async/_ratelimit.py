"""The client-side limiter: sliding one-second and one-minute windows, counted at the answer.

One limiter is shared by every request of a :class:`~polysim_async.Client`, so
``asyncio.gather`` of a thousand calls is paced to the budget rather than
answered with 429s.

The server counts a request when it *arrives*, somewhere between the moment the
client sent it and the moment the answer came back. So a request occupies a
window slot from its start until its answer came back (not from its start
only): a turn in the window is anchored at the answer's time once it is known,
and a request still in flight counts as occupying the window now. Pacing then
holds however late the server sees a request (a busy event loop shared with the
server, a slow link), at the cost of the round trip per slot; ``margin`` only
absorbs rounding of the server's own timestamps. Measured in benchmarks/README.md
("Rate limiter: 429s under bursts").

Turns are handed out in arrival order, each as a start time, so a caller whose
turn lies past its deadline fails at once. A caller wakes at its turn and checks
it again against the answers that came back meanwhile: if an earlier request is
still in flight, or came back later than planned, the turn moves back.

``rate_limit="auto"`` (see :meth:`RateLimiter.auto`): the budget follows the
limits the server advertises in ``X-RateLimit-Limit-Per-Second`` and
``X-RateLimit-Limit`` (the latest plausible values, between the lowest
documented tier and the highest documented limit for the key's kind), and a
trader key's first request goes alone, as a probe, because its tier is unknown
until the first answer; the others wait for that answer at most ``PROBE_WAIT``
(1 s), then go ahead under the conservative trader fallback limits.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Literal

from ._clock import Clock
from ._config import RateLimit
from ._errors import DeadlineExceededError
from ._limits import header_float, pause_from_headers

logger = logging.getLogger("polysim_async")

__all__ = [
    "PROBE_WAIT",
    "TRADER_FALLBACK_LIMIT",
    "KeyKind",
    "RateLimiter",
    "advertised_limits",
]

#: What a key looks like: ``ps_live_``/``ps_test_`` keys are trader keys (API.md §2.2);
#: anything else is taken for a tenant key, whose format is not documented.
KeyKind = Literal["trader", "tenant"]

#: The lowest documented tier (free: 2/s, 120/min, API.md §7.2): an advertised
#: limit below it is taken for a bad header, not a budget.
_FLOOR = (2, 120)
#: The highest documented limits per key kind: partner 50/s and 3,000/min (§7.1),
#: trader enterprise 100/s and 6,000/min (§7.2). Advertised values are capped there.
_CEILING: dict[KeyKind, tuple[int, int]] = {"tenant": (50, 3000), "trader": (100, 6000)}
#: A trader key whose first answer advertises nothing is paced at the lowest
#: paid tier (Pro, the lower of the two documented sets of Pro numbers).
TRADER_FALLBACK_LIMIT = RateLimit(per_second=10, per_minute=600)
#: A sleeping caller re-checks its turn at least this often, so a budget that
#: loosens (the probe's answer, a recovered advertisement) is used soon.
_RECHECK = 1.0
#: A trader key's first request (the probe) holds the others at most this long (on
#: the client's clock): past it they go ahead under :data:`TRADER_FALLBACK_LIMIT`,
#: so a slow first call (a large CSV export) does not hold a heartbeat behind it.
PROBE_WAIT = 1.0
#: A request in flight longer than this (past any sane timeout) is taken as answered
#: then: a caller of ``acquire`` that never calls ``release`` cannot hold a slot forever.
_MAX_FLIGHT = 60.0


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = header_float(headers, name)
    return int(value) if value is not None and value == int(value) else None


def advertised_limits(headers: Mapping[str, str], kind: KeyKind) -> tuple[int | None, int | None]:
    """The plausible per-second and per-minute limits a response advertises.

    A value below the lowest documented tier is ignored (one stray
    ``X-RateLimit-Limit: 1`` must not pin the client), so is a minute limit
    below the per-second one it came with; values above the documented
    ceiling for the key's kind are capped to it.

    Returns:
        ``(per_second, per_minute)``, each ``None`` when absent or implausible.
    """
    per_second = _header_int(headers, "X-RateLimit-Limit-Per-Second")
    per_minute = _header_int(headers, "X-RateLimit-Limit")
    top_second, top_minute = _CEILING[kind]
    if per_second is not None:
        per_second = min(per_second, top_second) if per_second >= _FLOOR[0] else None
    if per_minute is not None:
        per_minute = min(per_minute, top_minute) if per_minute >= _FLOOR[1] else None
    if per_second is not None and per_minute is not None and per_minute < per_second:
        per_minute = None  # contradicts the per-second value it came with
    return per_second, per_minute


class RateLimiter:
    """Paces request starts to a :class:`RateLimit`; see the module docstring.

    Every successful :meth:`acquire` must be followed by one :meth:`release`
    once the request's answer came back (or it failed): the request path does
    this in a ``finally``.

    Args:
        limit: the budget; ``None`` turns the windows off (429 pauses still apply).
        clock: where time is read and sleeps happen.
        adaptive: follow the limits the server advertises (``rate_limit="auto"``).
        kind: the key's kind, for the documented ceiling of advertised limits.
        probe: hold every request but the first until the first answer, or
            :data:`PROBE_WAIT` seconds after the first request started (a trader
            key under ``"auto"``, whose tier is unknown).
    """

    def __init__(
        self,
        limit: RateLimit | None,
        *,
        clock: Clock,
        adaptive: bool = False,
        kind: KeyKind = "tenant",
        probe: bool = False,
    ) -> None:
        self.limit = limit
        self._clock = clock
        self._adaptive = adaptive
        self._kind = kind
        # Sorted: turns handed out to callers still waiting for them, start times of
        # requests in flight, and answer times of the requests that came back.
        self._planned: list[float] = []
        self._flying: list[float] = []
        self._done: list[float] = []
        self._last = -math.inf  # the latest turn handed out, for arrival order
        self._paused_until = -math.inf
        # A probe in flight: the others wait for its answer (then this is None).
        self._probe: asyncio.Future[None] | None = None
        self._probing = probe
        self._probe_started = -math.inf
        #: Total seconds callers spent waiting for the budget, for applications to read.
        self.waited = 0.0

    @classmethod
    def auto(cls, *, clock: Clock, kind: KeyKind) -> RateLimiter:
        """The ``rate_limit="auto"`` limiter for a key of ``kind``.

        A tenant key starts at the partner budget (50/s, 3,000/min); a trader
        key sends one probe request first, then follows its tier's headers, or
        :data:`TRADER_FALLBACK_LIMIT` if the answer advertises none (or while the
        probe's answer takes longer than :data:`PROBE_WAIT`).
        """
        if kind == "trader":
            return cls(TRADER_FALLBACK_LIMIT, clock=clock, adaptive=True, kind=kind, probe=True)
        return cls(RateLimit(), clock=clock, adaptive=True, kind=kind)

    # -- windows ------------------------------------------------------------------

    def _windows(self) -> list[tuple[int, float]]:
        limit = self.limit
        if limit is None:
            return []
        out = []
        if limit.per_second is not None:
            out.append((limit.per_second, 1.0 + limit.margin))
        if limit.per_minute is not None:
            out.append((limit.per_minute, 60.0 + limit.margin))
        return out

    def _prune(self, now: float) -> None:
        flying = self._flying
        while flying and flying[0] < now - _MAX_FLIGHT:
            bisect.insort(self._done, flying.pop(0) + _MAX_FLIGHT)
        done = self._done
        if done and done[0] <= now - 61.0:  # older than every window (margin < 1)
            del done[: bisect.bisect_right(done, now - 61.0)]

    def _reserve(self, now: float) -> float:
        """The earliest start at or after ``now`` for a new caller, after every turn
        already handed out (arrival order), counting future turns as planned."""
        start = max(now, self._paused_until, self._last)
        done, flying, planned = self._done, self._flying, self._planned
        for size, width in self._windows():
            first = bisect.bisect_right(done, now - width)
            if len(done) - first + len(flying) + len(planned) < size:
                continue
            # The ``size``-th latest anchor among recent answers and the other turns.
            anchors = sorted(
                done[max(first, len(done) - size) :] + flying[-size:] + planned[-size:]
            )
            start = max(start, anchors[-size] + width)
        return start

    def _check(self, now: float) -> float:
        """When a turn due ``now`` may really start: ``now`` if every window has room
        among the requests started so far (in flight counts as now), else a later
        time to look again."""
        start = max(now, self._paused_until)
        in_flight = len(self._flying)
        for size, width in self._windows():
            done = self._done
            first = bisect.bisect_right(done, now - width)
            recent = len(done) - first
            excess = in_flight + recent - size + 1
            if excess <= 0:
                continue
            # The oldest answers leave first; requests in flight leave at the earliest
            # one window after now (their answer is still to come).
            start = max(
                start, done[first + excess - 1] + width if excess <= recent else now + width
            )
        return start

    # -- the caller's side ----------------------------------------------------------

    async def acquire(self, deadline: float | None = None) -> None:
        """Wait for this request's turn in the budget.

        Args:
            deadline: clock time by which the request must start.

        Raises:
            DeadlineExceededError: the turn (or a 429 pause) lies past ``deadline``.
                Raised before waiting when the turn is known to be late; raised
                when the turn moves past it otherwise. No turn is kept.

        Cancellation while waiting propagates; the turn is given back.
        """
        if self._probing:
            await self._await_probe(deadline)
        now = self._clock.now()
        self._prune(now)
        start = self._reserve(now)
        if deadline is not None and start > deadline:
            raise DeadlineExceededError(
                f"rate limiter wait of {start - now:.3f}s would pass the call's deadline"
            )
        self._last = start
        held = False  # whether this caller's turn is in ``_planned``
        try:
            while True:
                if start > now:
                    if not held:
                        bisect.insort(self._planned, start)
                        held = True
                    step = min(start - now, _RECHECK)
                    self.waited += step
                    await self._clock.sleep(step)
                    now = self._clock.now()
                    if now < start:
                        continue
                # Due: check against what came back (or did not) meanwhile.
                if held:
                    self._planned.remove(start)
                    held = False
                self._prune(now)
                start = self._check(now)
                if deadline is not None and start > deadline:
                    raise DeadlineExceededError(
                        "the rate limiter moved this call's turn past its deadline"
                        f" ({start - now:.3f}s away)"
                    )
                if start <= now:
                    break
        except BaseException:
            if held:
                self._planned.remove(start)  # never sent: nothing for the server to count
            raise
        bisect.insort(self._flying, now)
        if self._probing and self._probe is None:
            self._probe = asyncio.get_running_loop().create_future()
            self._probe_started = now

    async def _await_probe(self, deadline: float | None) -> None:
        """Wait while a trader key's first request finds out its tier, at most until
        :data:`PROBE_WAIT` after it started (then the probe is over for everyone:
        calls go ahead under the fallback limits, and its answer still adapts them)."""
        probe = self._probe
        if probe is None or probe.done():
            return
        waited = self._clock.now()
        give_up = self._probe_started + PROBE_WAIT
        until = give_up if deadline is None else min(give_up, deadline)
        timer = asyncio.ensure_future(self._clock.sleep(max(0.0, until - waited)))
        try:
            await asyncio.wait({probe, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        self.waited += self._clock.now() - waited
        if probe.done():
            return
        if until < give_up:
            raise DeadlineExceededError(
                "the call's deadline passed while the first request learned the key's tier"
            )
        if self._probing:
            logger.debug("first answer not back in %.1fs; going on at %r", PROBE_WAIT, self.limit)
            self._end_probe()

    def release(self) -> None:
        """The answer of a request started by :meth:`acquire` came back (or it failed).

        Its slot stays counted for one window from now: the server saw it at
        some moment up to now.
        """
        now = self._clock.now()
        if self._flying:
            # Slots are interchangeable: release the earliest request in flight.
            del self._flying[0]
        bisect.insort(self._done, now)
        self._prune(now)
        if self._probing:
            self._end_probe()

    def _end_probe(self) -> None:
        self._probing = False
        probe, self._probe = self._probe, None
        if probe is not None and not probe.done():
            probe.set_result(None)
        logger.debug("rate limit after the first answer: %r", self.limit)

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (after a 429's ``Retry-After``)."""
        self._paused_until = max(self._paused_until, self._clock.now() + seconds)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Use the server's ``X-RateLimit-*`` headers.

        Under ``"auto"``, the advertised per-second and per-minute limits become
        the budget (see :func:`advertised_limits`); a later answer advertising
        more loosens it again. An exhausted minute window
        (``X-RateLimit-Remaining: 0``) pauses every call until
        ``X-RateLimit-Reset``: seconds-until on the partner API and epoch seconds
        on the trader API (API.md §7), read as epoch seconds past 10^9, and
        only when the pause is at most a minute.
        """
        if self._adaptive:
            self._adapt(headers)
        seconds = pause_from_headers(headers, self._clock.wall())
        if seconds is not None:
            self.pause(seconds)

    def _adapt(self, headers: Mapping[str, str]) -> None:
        limit = self.limit
        if limit is None:
            return
        per_second, per_minute = advertised_limits(headers, self._kind)
        if per_second is None and per_minute is None:
            return
        new = replace(
            limit,
            per_second=per_second if per_second is not None else limit.per_second,
            per_minute=per_minute if per_minute is not None else limit.per_minute,
        )
        if new != limit:
            self.limit = new
            logger.debug("rate limit follows the server's: %r", new)
        if self._probing:
            self._end_probe()
