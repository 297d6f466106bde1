"""``RedisRateLimit``: one request budget shared by every process, kept in Redis.

Each turn is reserved by one Lua script (:mod:`._lua`) that checks and takes
both sliding windows atomically on the Redis server's clock and answers with
the wait. The caller then sleeps that wait locally. Reservations are handed
out in arrival order at Redis, so turns are first come, first served across
processes, and a caller whose turn would pass its deadline is refused without
taking a slot, exactly as with the in-process limiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .._clock import SYSTEM_CLOCK, Clock
from .._config import RateLimit, check_positive
from .._errors import (
    ClientClosedError,
    CoordinationError,
    DeadlineExceededError,
    InvalidArgumentError,
    StoreUnavailableError,
)
from .._limits import pause_from_headers
from .._ratelimit import RateLimiter
from .._tasks import wait_within
from . import _lua
from ._connect import connect, refusal, unavailable_errors

__all__ = ["RedisLimiterStats", "RedisRateLimit", "cold_start_wait"]

logger = logging.getLogger("polysim_async")

_FEATURE = "RedisRateLimit"
_US = 1_000_000


@dataclass
class RedisLimiterStats:
    """Counters of a :class:`RedisRateLimit`; read them, don't write them.

    Attributes:
        shared: turns granted by the shared budget in Redis.
        local: turns granted by the local fallback while Redis was unreachable.
        outages: times Redis was found unreachable after working (or at first use).
        waited: seconds callers spent waiting for their turns, both kinds together.
        late: turns given up because this process woke from its wait more than
            ``margin / 2`` late (a starved CPU); each such caller took one fresh turn.
    """

    shared: int = 0
    local: int = 0
    outages: int = 0
    waited: float = 0.0
    late: int = 0


class _Unavailable(Exception):
    """Redis did not answer (wraps the redis-py or socket error as ``__cause__``)."""


def _local_limiter(limit: RateLimit, clock: Clock) -> RateLimiter:
    # The one place that builds the in-process limiter this module falls back to.
    return RateLimiter(limit, clock=clock)


def _share(value: int | None, workers: int) -> int | None:
    return None if value is None else max(1, value // workers)


def cold_start_wait(limit: RateLimit) -> float:
    """Seconds the first turn waits after Redis forgot the budget's recent turns.

    The forgotten turns all lie before the restart. The second window needs
    its full span. The minute window needs its span less the time the
    forgotten minute's ``per_minute`` turns took at the fastest, ``per_second``
    a second: 1.05 s for 50/s and 3,000/min, 60.05 s for a minute-only budget.
    """
    margin = limit.margin
    waits = [0.0]
    if limit.per_second:
        waits.append(1.0 + margin)
    if limit.per_minute:
        spread = limit.per_minute // limit.per_second - 1 if limit.per_second else 0
        waits.append(60.0 + margin - max(0, spread))
    return max(waits)


class RedisRateLimit:
    """A request budget shared through Redis by every client that uses the same ``name``.

    Pass it as ``Client(rate_limit=RedisRateLimit(url, name="tenant-a"))`` in
    each process: together they keep to ``per_second`` and ``per_minute``,
    first come, first served, with a 429's ``Retry-After`` seen by one process
    pausing all of them. Each :class:`~polysim_async.Client` needs its own
    object (the client closes it when it closes); objects with the same
    ``url`` and ``name`` share one budget.

    The windows are checked and taken by one Lua script on the Redis server's
    clock, so the clocks of the worker machines do not matter; every key
    carries the hash tag ``{name}`` (Redis Cluster safe), expires a minute
    after its last use, and the minute window holds at most ``per_minute``
    entries. One turn costs one round trip to Redis. A caller whose process
    wakes from its wait more than ``margin / 2`` late (a starved CPU) gives the
    turn up and takes one fresh turn, rather than land bunched with the turns
    after it (counted in ``stats.late``).

    When Redis cannot be reached, ``on_unavailable`` decides:

    * ``"local"`` (default): pace this process alone at ``per_second /
      expected_workers`` and ``per_minute / expected_workers`` (at least 1),
      log one warning per outage, and try Redis again every ``retry_interval``
      seconds, switching back (with an info log) when it answers. Calls keep
      flowing, but the budget is only as right as ``expected_workers``: with
      more workers than that, or unevenly loaded ones, the tenant can exceed
      its budget until Redis is back, and around each switch the two
      accountings do not know of each other for up to one window. The server's
      429s, which the client retries after ``Retry-After``, catch the excess.
    * ``"raise"``: every call that needs a turn raises
      :class:`~polysim_async.StoreUnavailableError` while Redis is down: no
      request is ever sent outside the shared budget.

    A Redis that comes back without its memory (no persistence, or a failover
    to a replica that missed the last turns) has forgotten the turns of the
    last window. So when the budget's keys are missing, the first turn starts
    no earlier than :func:`cold_start_wait` after the server came up (1.05 s
    for the default budget, 60.05 s for a budget with only ``per_minute``),
    or up to 1 s later, as Redis counts its uptime in whole seconds. A budget
    first used on a server that has been up a second longer than that starts at once (on
    Redis Cluster, whose node uptime is not asked, it waits the span once). If
    the server's clock steps back, turns stored on the old time line are
    dropped and the first turn waits the same span from now, instead of
    waiting out the step. A key of the budget holding a value this library
    did not write raises :class:`~polysim_async.CoordinationError` naming it,
    in both modes; so do refused credentials, a missing ACL permission and a
    host name that does not resolve before Redis ever answered (configuration
    errors, not outages: falling back would pace every process alone).

    Args:
        url: a redis-py URL (``redis://host:6379/0``, ``rediss://...``, ``unix://...``).
        name: the budget's name; every limiter with the same name shares it.
        per_second, per_minute, margin: the budget, as in :class:`~polysim_async.RateLimit`.
        on_unavailable: ``"local"`` or ``"raise"``, see above.
        expected_workers: how many processes share the budget (default 1);
            only the local fallback uses it, pacing each process at
            ``per_second / expected_workers``. Left at 1, every process falls
            back to the whole budget while Redis is down.
        retry_interval: seconds between attempts to reach Redis again after
            it failed (``"local"`` only).
        timeout: seconds to wait for Redis to connect or answer before it
            counts as unavailable.
        cluster: ``url`` names a node of a Redis Cluster (redis-py's ``RedisCluster``).
        clock: time source. Leave it out: the :class:`~polysim_async.Client`
            this limiter is given to hands over its own clock (``acquire``
            compares the wait to the client's deadline, so both must share one
            time line). Pass one only to use the limiter without a client.

    Raises:
        InvalidArgumentError: a bad option.
        MissingDependencyError: redis-py is not installed
            (``pip install "polysim-async[redis]"``).
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        per_second: int | None = 50,
        per_minute: int | None = 3000,
        margin: float = 0.05,
        on_unavailable: Literal["local", "raise"] = "local",
        expected_workers: int = 1,
        retry_interval: float = 1.0,
        timeout: float = 1.0,
        cluster: bool = False,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise InvalidArgumentError(f"url must be a Redis URL, got {url!r}")
        if not isinstance(name, str) or not name or any(c in name for c in "{}"):
            raise InvalidArgumentError(
                f"name must be a non-empty string without braces, got {name!r}"
            )
        self.limit = RateLimit(per_second=per_second, per_minute=per_minute, margin=margin)
        if on_unavailable not in ("local", "raise"):
            raise InvalidArgumentError(
                f'on_unavailable must be "local" or "raise", got {on_unavailable!r}'
            )
        if (
            isinstance(expected_workers, bool)
            or not isinstance(expected_workers, int)
            or expected_workers < 1
        ):
            raise InvalidArgumentError(
                f"expected_workers must be a positive integer, got {expected_workers!r}"
            )
        check_positive("retry_interval", retry_interval, allow_none=False)
        check_positive("timeout", timeout, allow_none=False)
        self.url = url
        self.cluster = bool(cluster)
        self.name = name
        self.on_unavailable = on_unavailable
        self.expected_workers = expected_workers
        self.retry_interval = retry_interval
        self.timeout = timeout
        self._clock: Clock = clock or SYSTEM_CLOCK
        self._clock_fixed = clock is not None  # given here, or by a client
        self._errors = unavailable_errors()  # also fails early if redis-py is missing
        prefix = f"polysim:rl:{{{name}}}"
        self._keys = [f"{prefix}:s", f"{prefix}:m", f"{prefix}:p", f"{prefix}:t"]
        self._windows = [
            str(per_second or 0),
            str(per_minute or 0),
            str(round((1.0 + margin) * _US)),
            str(round((60.0 + margin) * _US)),
        ]
        self._cold_wait = str(round(cold_start_wait(self.limit) * _US))
        self._late_tolerance = margin / 2
        self._member = f"{secrets.token_hex(6)}:"
        self._counter = itertools.count()
        self._fallback_limit = RateLimit(
            per_second=_share(per_second, expected_workers),
            per_minute=_share(per_minute, expected_workers),
            margin=margin,
        )
        self._fallback = _local_limiter(self._fallback_limit, self._clock)
        self._redis: Any = None
        self._acquire_script: Any = None
        self._pause_script: Any = None
        self._closed = False
        self._answered = False  # Redis answered once: a name that stops resolving is an outage
        # Local clock time until which turns must not start: our own 429 pauses, and
        # shared ones learnt from any reply, so sleeping waiters honour them on waking.
        self._paused_until = 0.0
        self._publish_until = 0.0  # our own pause not yet written to Redis
        self._publisher: asyncio.Task[None] | None = None
        self._down = False
        self._retry_at = 0.0
        self._probing = False
        #: Counters of shared and local turns, outages and waits.
        self.stats = RedisLimiterStats()
        self._local_in_flight = 0  # turns of the local fallback not yet released

    def __repr__(self) -> str:
        return (
            f"RedisRateLimit(name={self.name!r}, per_second={self.limit.per_second},"
            f" per_minute={self.limit.per_minute}, on_unavailable={self.on_unavailable!r})"
        )

    def use_clock(self, clock: Clock) -> None:
        """Run on ``clock``, the clock of the client this limiter was given to.

        Called by :class:`~polysim_async.Client`; see the ``Limiter`` protocol.

        Raises:
            InvalidArgumentError: the limiter already runs on another clock
                (passed as ``clock=``, or handed over by another client).
        """
        if clock is self._clock:
            self._clock_fixed = True
            return
        if self._clock_fixed:
            raise InvalidArgumentError(
                f"{self!r} runs on {self._clock!r}, not on the client's clock {clock!r}:"
                " leave out RedisRateLimit(clock=...) and give each client its own limiter"
            )
        self._clock = clock
        self._clock_fixed = True
        self._fallback = _local_limiter(self._fallback_limit, clock)

    @property
    def available(self) -> bool:
        """Whether the last attempt to reach Redis succeeded (``True`` before the first)."""
        return not self._down

    def _connection(self) -> Any:
        if self._closed:
            raise ClientClosedError("the RedisRateLimit is closed")
        if self._redis is None:
            self._redis = connect(
                self.url, cluster=self.cluster, timeout=self.timeout, feature=_FEATURE
            )
            self._acquire_script = self._redis.register_script(_lua.ACQUIRE)
            self._pause_script = self._redis.register_script(_lua.PAUSE)
        return self._redis

    async def acquire(self, deadline: float | None = None) -> None:
        """Wait for this request's turn in the shared budget.

        Args:
            deadline: time on ``clock`` by which the request must start.

        Raises:
            DeadlineExceededError: the turn (or a 429 pause) lies past
                ``deadline``; raised before waiting, and no turn is taken. Also
                when Redis has not answered by ``deadline``: the round trip is
                cut off there (a turn may then have been taken, unused).
            StoreUnavailableError: Redis did not answer and ``on_unavailable="raise"``.
            CoordinationError: Redis refused, in both ``on_unavailable`` modes: the
                credentials (a wrong or missing password), a permission (an ACL
                without EVALSHA), a host name that never resolved, or a key of
                this budget holding a value this library did not write (each
                named in the message). Never a fallback: these are configuration
                errors, and every process would otherwise pace itself alone.
            ClientClosedError: the limiter was closed.

        Cancellation while waiting propagates; a turn already reserved stays
        spent (conservative). Cancellation during the round trip to Redis may
        leave a turn reserved but unused, with the same effect.
        """
        self._connection()
        if self._down and (self._probing or self._clock.now() < self._retry_at):
            await self._acquire_local(deadline)
            return
        probing = self._down
        self._probing = probing
        try:
            await self._acquire_shared(deadline)
        except _Unavailable as exc:
            self._unavailable(exc.__cause__ or exc)
            await self._acquire_local(deadline)
        else:
            if probing:
                logger.info("Redis is reachable again; %r uses the shared budget", self)
                self._down = False
        finally:
            if probing:
                self._probing = False

    async def _acquire_local(self, deadline: float | None) -> None:
        before = self._clock.now()
        try:
            await self._fallback.acquire(deadline)
        finally:
            self.stats.waited += self._clock.now() - before
        self.stats.local += 1
        self._local_in_flight += 1

    def release(self) -> None:
        """A request's answer came back: the local fallback's slot is counted from now.

        Turns taken from the shared budget need nothing (Redis counts them at the
        start); releases go to the fallback while it has requests in flight.
        """
        if self._local_in_flight:
            self._local_in_flight -= 1
            self._fallback.release()

    def _unavailable(self, exc: BaseException) -> None:
        """Note that Redis failed; raise in ``"raise"`` mode, else warn once per outage."""
        if self.on_unavailable == "raise":
            raise StoreUnavailableError(
                f"Redis is unavailable for {self!r}: {type(exc).__name__}: {exc}"
            ) from exc
        self._retry_at = self._clock.now() + self.retry_interval
        if not self._down:
            self._down = True
            self.stats.outages += 1
            logger.warning(
                "Redis is unavailable for %r (%s: %s); pacing this process alone at %r until"
                " it is back",
                self,
                type(exc).__name__,
                exc,
                self._fallback.limit,
            )

    async def _acquire_shared(self, deadline: float | None) -> None:
        late_retake = False
        while True:
            now = self._clock.now()
            if deadline is not None and deadline < now:
                raise DeadlineExceededError("the call's deadline passed before its turn")
            max_wait = -1 if deadline is None else math.floor((deadline - now) * _US)
            local_pause = max(0, math.ceil((self._paused_until - now) * _US))
            args = [*self._windows, max_wait, f"{self._member}{next(self._counter)}", local_pause]
            granted, wait_ms, pause_left = await self._run(
                self._acquire_script, self._keys, [*args, self._cold_wait, ""], deadline
            )
            if granted == 2:  # a cold start: the script needs the server's uptime
                uptime = await self._uptime(deadline)
                granted, wait_ms, pause_left = await self._run(
                    self._acquire_script, self._keys, [*args, self._cold_wait, uptime], deadline
                )
            now = self._clock.now()
            if pause_left > 0:
                self._paused_until = max(self._paused_until, now + pause_left / _US)
            wait = wait_ms / 1000
            if not granted:
                if late_retake:
                    return  # no later turn fits the deadline: use the late one after all
                raise DeadlineExceededError(
                    f"shared rate limiter wait of {wait:.3f}s would pass the call's deadline"
                )
            self.stats.shared += 1
            woke = now + wait  # when this caller should wake
            if wait > 0:
                self.stats.waited += wait
                await self._clock.sleep(wait)
            now = self._clock.now()
            # A pause learnt while this caller slept (its own process's 429, or another
            # process's seen in a reply) holds it too: it takes a fresh turn after the
            # pause; the old one stays spent (conservative), as in the in-process limiter.
            if self._paused_until > now:
                continue
            # A caller that wakes later than its turn by more than half the margin (its
            # process was starved of CPU while it slept) would land close to the turns
            # after it and could push the server's window over budget. It gives the turn
            # up and takes a fresh one, once: one wasted turn instead of a 429 that
            # pauses everyone. (The round trip itself is not counted: it also holds the
            # connect on first use, which delays nothing that matters.)
            if not late_retake and self._late_tolerance > 0 and now - woke > self._late_tolerance:
                late_retake = True
                self.stats.late += 1
                continue
            return

    async def _run(
        self, script: Any, keys: list[str], args: list[Any], deadline: float | None = None
    ) -> Any:
        # Only the round trip's own errors mean "unavailable" (TimeoutError is an OSError);
        # a refusal (a key of the wrong kind) is the user's to fix and is raised as such.
        # A round trip that could outlast ``deadline`` is cut off there.
        left = None if deadline is None else max(0.0, deadline - self._clock.now())
        try:
            if left is None or left >= self.timeout:
                result = await wait_within(script(keys=keys, args=args), self.timeout, "Redis")
            else:
                try:
                    result = await wait_within(script(keys=keys, args=args), left, "Redis")
                except TimeoutError:
                    raise DeadlineExceededError(
                        f"Redis did not answer within the {left:.3f}s left before the call's"
                        " deadline"
                    ) from None
        except DeadlineExceededError:
            raise
        except self._errors as exc:
            refused = refusal(exc, self, keys, answered=self._answered)
            if refused is not None:
                raise refused from exc
            raise _Unavailable() from exc
        self._answered = True
        return result

    async def _uptime(self, deadline: float | None) -> int:
        """Seconds the Redis server has been up (0, the cautious answer, if it won't say)."""
        if self.cluster:
            return 0  # which node holds the budget's keys is redis-py's business
        try:
            info = await self._run(lambda keys, args: self._redis.info("server"), [], [], deadline)
            return int(info["uptime_in_seconds"])
        except (CoordinationError, KeyError, TypeError, ValueError):
            return 0

    def pause(self, seconds: float) -> None:
        """Hold every request of every process for ``seconds`` (a 429's ``Retry-After``).

        Takes effect in this process at once and is written to Redis in the
        background; never blocks or raises.
        """
        if not math.isfinite(seconds) or seconds <= 0:
            return
        self._fallback.pause(seconds)
        until = self._clock.now() + seconds
        self._paused_until = max(self._paused_until, until)
        self._publish_until = max(self._publish_until, until)
        if self._closed or self._redis is None or self._down:
            return
        if self._publisher is None or self._publisher.done():
            with contextlib.suppress(RuntimeError):  # no running loop: the local pause holds
                self._publisher = asyncio.get_running_loop().create_task(self._publish())

    async def _publish(self) -> None:
        while (left := self._publish_until - self._clock.now()) > 0:
            until = self._publish_until
            try:
                await self._run(self._pause_script, self._keys[2:3], [math.ceil(left * _US)])
            except _Unavailable as exc:
                logger.debug("could not share a rate-limit pause through Redis: %r", exc.__cause__)
                return
            if self._publish_until == until:
                self._publish_until = 0.0

    def observe(self, headers: Mapping[str, str]) -> None:
        """Pause every process when the server says the minute window is spent.

        See :func:`polysim_async._limits.pause_from_headers`; never blocks or raises.
        """
        seconds = pause_from_headers(headers, self._clock.wall())
        if seconds is not None:
            self.pause(seconds)

    async def aclose(self) -> None:
        """Close the connections to Redis. Idempotent; the limiter cannot be used afterwards.

        A pause still being written to Redis is abandoned.
        """
        self._closed = True
        publisher, self._publisher = self._publisher, None
        if publisher is not None and not publisher.done():
            publisher.cancel()
            await asyncio.wait((publisher,))  # only our own cancellation propagates
        redis, self._redis = self._redis, None
        if redis is not None:
            await redis.aclose()

    async def __aenter__(self) -> RedisRateLimit:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
