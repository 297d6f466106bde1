"""The dead-man's switch kept alive: ``async with client.orders.keepalive(...)``.

While the block runs, a background task sends ``POST /v1/heartbeats`` every
half interval (the docs' advice), on the injected :class:`~polysim_async._clock.Clock`.
The server cancels **every** pending order of the account once no beat has
arrived for ``interval`` plus a grace of ``max(1 s, interval / 4)`` (API.md O8).

Timing, on the local monotonic clock: a beat sent at ``t`` keeps the orders
safe until at least ``t + interval + grace`` (the server counts from when the
beat *arrived*, which is later). A beat that fails for a transient reason
(transport error, timeout, 408/409/425/429, 5xx, an unreadable answer) is
tried again with jittered backoff until that local deadline; only when the
deadline passes without a successful beat is the switch reported as lapsed —
the earliest instant the server may have cancelled the orders. A refusal
(401/403/404/422) stops the beats at once: the switch will fire at the last
beat's expiry, and it is reported right away.

A lapse is reported four ways: a WARNING on the ``polysim_async`` logger,
``alive`` turning false, :meth:`KeepAlive.wait_lapsed` returning, and the
``on_lapse`` callback. After a transient lapse the task keeps trying; the next
successful beat registers afresh (orders placed from then on are protected
again, those cancelled stay cancelled); each of those beats is abandoned and
sent again after half an interval without an answer, so a server that stalls
beats during an outage does not keep the switch down after it recovers.
Leaving the block stops the beats and logs, as a WARNING, when the server
will cancel the account's pending orders.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from ._clock import SYSTEM_CLOCK, Cancellable, Clock
from ._errors import APIStatusError, DecodeError, PolySimError, TransportError, UsageError
from ._retry import backoff
from .models.trading import Heartbeat

__all__ = ["HeartbeatLapsedError", "KeepAlive", "clock_of", "grace_of"]

logger = logging.getLogger("polysim_async")
T = TypeVar("T")

_TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})


class HeartbeatLapsedError(PolySimError):
    """The dead-man's switch lapsed: the server cancels every pending order of the account.

    Attributes:
        label: the heartbeat's ``client_label``.
        expires_at: the server's expiry of the last successful beat (UTC), if any.
        cause: the last error of a beat, if one failed.
    """

    def __init__(
        self,
        message: str,
        *,
        label: str,
        expires_at: datetime | None,
        cause: BaseException | None,
    ) -> None:
        super().__init__(message)
        self.label = label
        self.expires_at = expires_at
        self.cause = cause


def grace_of(interval: float) -> float:
    """The server's grace after an interval: ``max(1 s, interval / 4)`` (API.md O8)."""
    return max(1.0, interval / 4)


def is_transient(exc: BaseException) -> bool:
    """Whether a failed beat is worth repeating before the deadline."""
    if isinstance(exc, (TransportError, DecodeError)):
        return True
    if isinstance(exc, APIStatusError):
        return exc.status in _TRANSIENT_STATUSES or exc.status >= 500
    return False


class _Expired(Exception):
    """The local deadline passed before the beat answered."""


class _RequesterClock:
    """A :class:`Clock` over the request path's ``clock()``/``sleep()`` callables."""

    def __init__(self, now: Callable[[], float], sleep: Callable[[float], Awaitable[None]]) -> None:
        self.now = now
        self._sleep = sleep

    def wall(self) -> float:
        return SYSTEM_CLOCK.wall()

    async def sleep(self, seconds: float) -> None:
        await self._sleep(max(0.0, seconds))

    def call_at(self, when: float, callback: Callable[[], object]) -> Cancellable:
        return asyncio.get_running_loop().call_later(max(0.0, when - self.now()), callback)


def clock_of(requester: Any) -> Clock:
    """The client's clock: its :class:`Clock`, or one built on its ``clock``/``sleep``."""
    clock = requester.clock
    if hasattr(clock, "now") and hasattr(clock, "sleep"):
        return clock  # type: ignore[no-any-return]
    return _RequesterClock(clock, requester.sleep)


class KeepAlive:
    """Keeps a heartbeat registration alive while its ``async with`` block runs.

    Get one from :meth:`OrdersAPI.keepalive`. Entering sends the first beat
    and raises if it fails (nothing is left running); see the module
    docstring for the schedule and how a lapse is reported.
    """

    def __init__(
        self,
        beat: Callable[[], Coroutine[Any, Any, Heartbeat]],
        *,
        interval: float,
        label: str,
        clock: Clock,
        on_lapse: Callable[[HeartbeatLapsedError], object] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.interval = interval
        self.label = label
        self._send = beat
        self._clock = clock
        self._on_lapse = on_lapse
        self._rng = rng or random.Random()
        self._grace = grace_of(interval)
        self._task: asyncio.Task[None] | None = None
        self._last: Heartbeat | None = None
        self._sent_at = 0.0
        self._alive = False
        self._lapsed = asyncio.Event()
        self._lapse: HeartbeatLapsedError | None = None
        self._stopped = False
        #: Successful beats so far (the first one included).
        self.beats = 0
        #: Lapses reported so far.
        self.lapses = 0
        #: The last error of a beat, ``None`` while every beat succeeded.
        self.error: BaseException | None = None

    def __repr__(self) -> str:
        state = (
            "stopped"
            if self._stopped
            else "alive"
            if self._alive
            else "lapsed"
            if self._lapse
            else "idle"
        )
        return (
            f"<KeepAlive label={self.label!r} interval={self.interval}s {state} "
            f"beats={self.beats} lapses={self.lapses}>"
        )

    @property
    def alive(self) -> bool:
        """Whether the last beat still protects the orders (no lapse since it)."""
        return self._alive

    @property
    def expires_at(self) -> datetime | None:
        """The server's expiry of the last successful beat (UTC), if any."""
        return None if self._last is None else self._last.expires_at

    def check(self) -> None:
        """Raise if the switch has lapsed or its block was left; call it before placing orders.

        Raises:
            HeartbeatLapsedError: the server cancels (or has cancelled) every pending order.
        """
        if not self._alive and self._lapse is not None:
            raise self._lapse

    async def wait_lapsed(self) -> HeartbeatLapsedError:
        """Wait until the switch lapses or its block is left (at once if so); return why.

        Cancellation propagates; the keepalive keeps running.
        """
        while self._alive or self._lapse is None:
            await self._lapsed.wait()
        return self._lapse

    async def __aenter__(self) -> KeepAlive:
        if self._task is not None:
            raise UsageError("a KeepAlive can be entered only once")
        started = self._clock.now()
        self._succeeded(await self._send(), started)
        self._task = asyncio.create_task(self._run(), name=f"polysim-keepalive-{self.label}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        self._stopped = True
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait((task,))
        stopped = self._error(
            f"keepalive {self.label!r} stopped: unless another heartbeat arrives, the server "
            "cancels every pending order of this account",
            None,
        )
        logger.warning("%s", stopped)
        if self._alive or self._lapse is None:
            # Leaving ends the protection too: release waiters, and check() raises from now on.
            self._alive, self._lapse = False, stopped
            self._lapsed.set()

    def _error(self, message: str, cause: BaseException | None) -> HeartbeatLapsedError:
        # Never raises (it runs in __aexit__, where it would mask the block's own
        # exception): a decoded expiry is range-checked, but a Heartbeat built by
        # hand is not.
        try:
            expires_at = self.expires_at
        except (OverflowError, OSError, ValueError):
            expires_at = None
        when = expires_at.isoformat() if expires_at else "its last expiry"
        return HeartbeatLapsedError(
            f"{message} at {when}", label=self.label, expires_at=expires_at, cause=cause
        )

    def _succeeded(self, heartbeat: Heartbeat, sent_at: float) -> None:
        recovered = self._lapse is not None and not self._alive
        self._last, self._sent_at = heartbeat, sent_at
        self._alive = True
        self._lapsed.clear()
        self.beats += 1
        if recovered:
            logger.warning("keepalive %r registered again after a lapse", self.label)

    def _report(self, reason: str, cause: BaseException | None) -> None:
        self._alive = False
        self.lapses += 1
        lapse = self._error(
            f"heartbeat {self.label!r} lapsed ({reason}): the server cancels every pending "
            "order of this account",
            cause,
        )
        self._lapse = lapse
        self._lapsed.set()
        logger.warning("%s", lapse)
        if self._on_lapse is not None:
            try:
                self._on_lapse(lapse)
            except Exception:  # a broken callback must not stop the beats
                logger.exception("keepalive %r: the on_lapse callback raised", self.label)

    @property
    def _deadline(self) -> float:
        return self._sent_at + self.interval + self._grace

    async def _run(self) -> None:
        try:
            while True:
                await self._clock.sleep(self._sent_at + self.interval / 2 - self._clock.now())
                if not await self._beat_with_retries():
                    return
        except Exception as exc:  # a bug here must still be reported, not die silently
            logger.exception("keepalive %r crashed", self.label)
            self.error = exc
            self._report("the keepalive task crashed", exc)

    async def _beat_with_retries(self) -> bool:
        """Beat until one succeeds; ``False`` when the server refuses beats for good.

        Every attempt is bounded on the clock: while the switch is alive, by the
        time left before the local deadline; after a lapse, by half the interval,
        so a beat the server stalls (not only one that fails) is abandoned and
        sent again, and the switch is back within about half an interval of the
        server's recovery instead of after the whole HTTP timeout.
        """
        attempt = 0
        while True:
            started = self._clock.now()
            alive = self._alive
            bound = self._deadline - started if alive else self.interval / 2
            try:
                if bound <= 0:
                    raise _Expired
                heartbeat = await self._race(self._send(), bound)
            except _Expired:
                if alive:
                    self._report(
                        f"no heartbeat succeeded for {self.interval + self._grace:g}s", self.error
                    )
                else:
                    logger.info(
                        "keepalive %r: a beat got no answer in %gs; trying again",
                        self.label,
                        bound,
                    )
                continue
            except (APIStatusError, TransportError, DecodeError) as exc:
                self.error = exc
                if not is_transient(exc):
                    self._report(f"heartbeats are refused: {exc}", exc)
                    return False
                logger.info("keepalive %r: a beat failed (%s); trying again", self.label, exc)
                wait = backoff(min(0.5, self.interval / 8), self.interval / 4, attempt, self._rng)
                attempt += 1
                if self._alive:
                    wait = min(wait, max(0.0, self._deadline - self._clock.now()))
                await self._clock.sleep(wait)
                continue
            self._succeeded(heartbeat, started)
            return True

    async def _race(self, beat: Coroutine[Any, Any, T], timeout: float) -> T:
        """Await ``beat``, raising :class:`_Expired` if ``timeout`` passes first (on the clock)."""
        task = asyncio.ensure_future(beat)
        timer = asyncio.ensure_future(self._clock.sleep(timeout))
        try:
            await asyncio.wait((task, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pending in (task, timer):
                if not pending.done():
                    pending.cancel()
            await asyncio.wait((task, timer))
        if task.cancelled():
            raise _Expired
        return task.result()
