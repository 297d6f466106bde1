"""The fleet monitor: judge thousands of partner accounts live, inside the client's rate budget.

``client.partner.accounts.monitor(ids)`` builds a :class:`FleetMonitor`. Its I/O,
every request on the client's request path (shared limiter, retries, error
mapping) and every timing on the client's clock:

* **Samples.** A sampler hands out request starts at the sample rate (the
  monitor's budget minus what the trade feed takes); at each start the
  :class:`~polysim_async._schedule.SampleScheduler` names the account to read
  with ``accounts.get``: the riskiest first (small headroom for how fast its
  equity moves), none older than the staleness floor, each once right after its
  day boundary. At most ``concurrency`` reads are in flight.
* **Fills.** A :class:`~polysim_async.TradeWatch` (the watch machinery, its
  walks paced to the trade-feed rate) polls every account's feed from the
  newest fill already judged; it starts once every account was read once.
* **Judging.** Inputs (samples, fills, closes) queue up and are judged by the
  consumer's task when it asks for the next event (``_fleet.Watched``), so the
  checkpoint (:attr:`FleetMonitor.state`) never runs ahead of the events handed
  out by more than the rest of one input's events; a queue of ``queue_size``
  inputs makes the monitor's requests wait for a slow consumer.
* **Closing.** With ``close_on_breach`` a breached account is closed at once
  (the request path drains 409 ``ORDERS_NOT_CANCELLED``; a close that still
  finds orders, or fails transiently, is tried again with backoff).
* **Sharing.** ``shard=(i, n)`` keeps the accounts worker ``i`` of ``n`` owns;
  with ``store=`` the worker holds a lease on its shard's checkpoint key, loads
  the checkpoint on entering, saves it every ``checkpoint_interval`` and on
  leaving, and renews the lease every ``lease_ttl / 3``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import os
import random
import secrets
import socket
import warnings
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from types import TracebackType
from typing import Any

from ._checkpoints import CheckpointStore, Lease
from ._clock import Cancellable, Clock
from ._config import MAX_PAGE_SIZE, ProcessException, RateLimit, backoff
from ._errors import (
    APIStatusError,
    AuthenticationError,
    ClientClosedError,
    InvalidArgumentError,
    LeaseLostError,
    OrdersNotCancelledError,
    PermissionDeniedError,
    RateLimitError,
    StoreUnavailableError,
    TransportError,
)
from ._fleet import MonitorEvent, MonitorState, Watched, error_event, opened_at_of
from ._retry import retry_if_transient
from ._schedule import SampleScheduler
from ._shard import check_shard, select_shard
from ._tasks import aclose_iterator, cancel_and_wait
from ._validation import account_id_list, check_int
from ._watch import DEFAULT_WATCH_INTERVAL, TradeWatch, Walk
from .models.partner import AccountState, Trade, TradePage
from .models.streams import AccountTrade, Watermark
from .rules import RuleSet

__all__ = [
    "DEFAULT_CHECKPOINT_INTERVAL",
    "DEFAULT_MONITOR_CONCURRENCY",
    "FleetMonitor",
    "MonitorStats",
]

logger = logging.getLogger("polysim_async")

#: Account reads a monitor keeps in flight at most.
DEFAULT_MONITOR_CONCURRENCY = 16
#: Seconds between two checkpoints saved to a ``store``.
DEFAULT_CHECKPOINT_INTERVAL = 10.0
#: Seconds a monitor's lease on its shard lasts without renewal.
#: The share of the client's per-second budget a monitor spends unless told (split by shards).
BUDGET_SHARE = 0.8
#: The share of the monitor's budget the trade feed gets unless ``fill_interval`` is given.
FILL_SHARE = 0.2
#: The lowest default staleness floor, in seconds.
MIN_STALENESS = 60.0
_RESERVE = 0.1  # the scheduler's reserve for day-boundary bursts
_WATCH_CONCURRENCY = 4
_MAX_BACKOFF = 60.0
#: Seconds a monitor that never read anything keeps trying an unreachable server.
STARTUP_GRACE = 60.0

Get = Callable[[str], Awaitable[AccountState]]


@dataclass
class MonitorStats:
    """Counters of one monitor; read them, don't write them.

    Attributes:
        accounts: accounts watched (this shard's).
        started: accounts read at least once, or restored from a checkpoint; the
            trade feed starts when every account started (:attr:`ready`).
        samples: account states read and judged.
        fills: fills judged.
        warnings, breaches, passed, closed, errors: events of those kinds produced.
        retries: reads and closes that failed transiently and were tried again.
        max_staleness: the longest time between two samples of one account (seconds
            on the client's clock), since its first sample.
    """

    accounts: int = 0
    started: int = 0
    samples: int = 0
    fills: int = 0
    warnings: int = 0
    breaches: int = 0
    passed: int = 0
    closed: int = 0
    errors: int = 0
    retries: int = 0
    max_staleness: float = 0.0

    @property
    def ready(self) -> bool:
        """Whether every account was read (or restored) at least once."""
        return self.started >= self.accounts


@dataclass(frozen=True)
class _Sampled:
    account_id: str
    state: AccountState
    at: datetime
    mono: float
    history: list[Trade] = field(default_factory=list)


@dataclass(frozen=True)
class _Filled:
    item: AccountTrade


@dataclass(frozen=True)
class _Closed:
    account_id: str
    state: AccountState
    at: datetime


@dataclass(frozen=True)
class _Failed:
    account_id: str
    error: BaseException


@dataclass(frozen=True)
class _End:
    error: BaseException | None


_Input = _Sampled | _Filled | _Closed | _Failed | _End


def _account_only(exc: BaseException) -> bool:
    """Whether ``exc`` concerns one account only (the others can still be judged):
    a permanent 4xx other than 401/403/429, or stored rules that are not a rule set."""
    if isinstance(exc, InvalidArgumentError):
        return True
    return (
        isinstance(exc, APIStatusError)
        and 400 <= exc.status < 500
        and not isinstance(exc, (AuthenticationError, PermissionDeniedError, RateLimitError))
    )


class _ServerTime:
    """The server's clock as the monitor knows it, never ahead of it.

    Every server instant seen (an account's ``updated_at``, a fill's
    ``filled_at``) is a lower bound of the server's time when it was seen, so
    ``wall + max(instant - wall at seeing)`` never runs ahead of a server clock
    that ticks with ours, and is never before the newest instant seen.
    """

    def __init__(self, wall: Callable[[], datetime]) -> None:
        self._wall = wall
        self._offset: timedelta | None = None
        self._newest: datetime | None = None

    def observe(self, at: datetime | None) -> None:
        if at is None:
            return
        offset = at - self._wall()
        if self._offset is None or offset > self._offset:
            self._offset = offset
        if self._newest is None or at > self._newest:
            self._newest = at

    def now(self) -> datetime:
        """The server's time (this machine's before anything was seen)."""
        wall = self._wall()
        if self._offset is None or self._newest is None:
            return wall
        return max(self._newest, wall + self._offset)


class _Pacer:
    """Hands out starts at most ``rate`` per second on ``clock``, with no burst credit."""

    def __init__(self, clock: Clock, rate: float) -> None:
        self._clock = clock
        self.rate = rate
        self._next = -math.inf

    async def turn(self) -> None:
        """Wait for the next start. A cancelled wait gives its start up."""
        now = self._clock.now()
        start = max(now, self._next)
        self._next = start + 1.0 / self.rate
        if start > now:
            await self._clock.sleep(start - now)


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(f"{name} must be a positive number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def client_rate(limit: object) -> float:
    """The requests per second a client's limit allows (50, the partner's, without one)."""
    if not isinstance(limit, RateLimit):
        limit = RateLimit()
    rates = [float(limit.per_second or math.inf), (limit.per_minute or math.inf) / 60.0]
    rate = min(rates)
    return rate if math.isfinite(rate) else 50.0


class FleetMonitor:
    """Live verdicts for a fleet of partner accounts; see ``accounts.monitor``.

    Use it as ``async with monitor: async for event in monitor:``. Iterating a
    monitor that was not entered raises :class:`ClientClosedError`, so no task
    can outlive the block; a monitor dropped while running warns
    (``ResourceWarning``). The iteration ends when no account is left to judge
    (every one passed, failed, and was closed if ``close_on_breach``, or was
    found closed), or with the error that ended the monitor.

    Cancellation: cancelling the consumer or leaving the ``async with`` cancels
    and awaits every task of the monitor (reads, closes, the trade watch, the
    checkpoint keeper); with a ``store`` the last checkpoint is then saved and
    the lease released.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        get: Get,
        close: Get,
        walk: Walk,
        account_ids: Iterable[str],
        client_rate: float,
        rules: RuleSet | None,
        close_on_breach: bool,
        state: MonitorState | None,
        shard: tuple[int, int] | None,
        store: CheckpointStore | None,
        name: str,
        budget: float | None,
        staleness: float | None,
        fill_interval: float | None,
        min_interval: float,
        concurrency: int,
        queue_size: int,
        checkpoint_interval: float,
        lease_ttl: float,
        process_exception: ProcessException | None,
    ) -> None:
        ids = account_id_list(account_ids)
        if rules is not None and not isinstance(rules, RuleSet):
            raise InvalidArgumentError(
                f"rules must be a RuleSet (or None for each account's stored rules), got {rules!r}"
            )
        if not isinstance(close_on_breach, bool):
            raise InvalidArgumentError("close_on_breach must be True or False")
        if state is not None and not isinstance(state, MonitorState):
            raise InvalidArgumentError(f"state must be a MonitorState, got {state!r}")
        if state is not None and store is not None:
            raise InvalidArgumentError("pass state= or store=, not both: a store holds the state")
        if store is not None and not isinstance(store, CheckpointStore):
            raise InvalidArgumentError(f"store must be a CheckpointStore, got {store!r}")
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"name must be a non-empty string, got {name!r}")
        if process_exception is not None and not callable(process_exception):
            raise InvalidArgumentError("process_exception must be callable")
        workers = 1
        key = name
        if shard is not None:
            index, workers = check_shard(shard)
            ids = select_shard(ids, (index, workers))
            key = f"{name}:shard-{index}-of-{workers}"
        count = len(ids)
        spend = (
            _positive("budget", budget)
            if budget is not None
            else BUDGET_SHARE * client_rate / workers
        )
        if spend > client_rate:
            raise InvalidArgumentError(
                f"budget={spend:g} requests/s is above the client's rate limit of "
                f"{client_rate:g}/s: the monitor could not keep fill_interval or staleness"
            )
        if fill_interval is None:
            fill_interval = max(DEFAULT_WATCH_INTERVAL, count / (FILL_SHARE * spend))
        fill_interval = _positive("fill_interval", fill_interval)
        sample_rate = spend - count / fill_interval
        if sample_rate <= 0:
            raise InvalidArgumentError(
                f"polling {count} trade feeds every {fill_interval:g}s takes the whole budget "
                f"of {spend:g} requests/s: raise fill_interval or budget"
            )
        capacity = sample_rate * (1 - _RESERVE)
        if staleness is None:
            staleness = max(MIN_STALENESS, 2 * count / capacity)
        staleness = _positive("staleness", staleness)
        if count / staleness > capacity:
            raise InvalidArgumentError(
                f"{count} accounts cannot each be sampled every {staleness:g}s at "
                f"{sample_rate:g} samples/s (after the trade feed's share): raise staleness "
                f"(at least {math.ceil(count / capacity)}s) or budget"
            )
        self._scheduler = SampleScheduler(
            budget=sample_rate,
            staleness=staleness,
            min_interval=_positive("min_interval", min_interval),
            reserve=_RESERVE,
        )
        self._clock = clock
        self._get, self._close, self._walk = get, close, walk
        self._ids = ids
        self._rules = rules
        self._close_on_breach = close_on_breach
        self._store = store
        self._key = key
        self._budget = spend
        self._sample_rate = sample_rate
        self._staleness = staleness
        self._fill_interval = fill_interval
        self._concurrency = check_int("concurrency", concurrency, low=1)
        self._checkpoint_interval = _positive("checkpoint_interval", checkpoint_interval)
        self._lease_ttl = _positive("lease_ttl", lease_ttl)
        self._given_process = process_exception
        self._process = process_exception or retry_if_transient
        self._queue: asyncio.Queue[_Input] = asyncio.Queue(
            maxsize=check_int("queue_size", queue_size, low=1)
        )
        self._watched: dict[str, Watched] = {}
        self._server = _ServerTime(self._wall)
        self._rechecks: set[str] = set()  # decided accounts read once more (a reset?)
        self._reached = False  # a read succeeded since start-up
        self._outage_since: float | None = None  # first network failure of an outage
        if state is not None:
            self._restore(state)
        self._events: collections.deque[MonitorEvent] = collections.deque()
        self._closing: set[str] = set()
        self._failures: collections.Counter[str] = collections.Counter()
        self._last_sample: dict[str, float] = {}
        self._timers: dict[str, Cancellable] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._watch: TradeWatch | None = None
        self._watch_due = False
        self._lease: Lease | None = None
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._dirty = False
        self._sample_pacer = _Pacer(clock, spend)  # the whole budget until the feed starts
        self._fill_pacer = _Pacer(clock, count / fill_interval if count else 1.0)
        self._slots = asyncio.Semaphore(self._concurrency)
        self._rng = random.Random()
        self._entered = False
        self._finished = False
        #: Counters; read them, don't write them.
        self.stats = MonitorStats(accounts=count)

    # -- what a user reads --------------------------------------------------------------

    @property
    def account_ids(self) -> list[str]:
        """The accounts this monitor watches (its shard's, in the order given)."""
        return list(self._ids)

    @property
    def budget(self) -> float:
        """Requests per second the monitor spends: samples plus trade-feed polls."""
        return self._budget

    @property
    def staleness(self) -> float:
        """No account goes longer than this without a sample (seconds), budget permitting."""
        return self._staleness

    @property
    def fill_interval(self) -> float:
        """Seconds between two polls of one account's trade feed."""
        return self._fill_interval

    @property
    def state(self) -> MonitorState:
        """A checkpoint of every account read so far: pass it as ``state=`` to resume.

        It covers every event handed out, and at most the rest of the events of
        the input being handed out (a decision among them is announced again
        after a restart).
        """
        return MonitorState(accounts={aid: w.progress() for aid, w in self._watched.items()})

    # -- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> FleetMonitor:
        """Start: take the shard's lease and checkpoint (with a ``store``), then read.

        With a ``store`` whose lease another worker holds, this waits (checking
        every ``lease_ttl / 3``) until that worker leaves or its lease expires:
        a second worker on one shard is a standby.

        Raises:
            ClientClosedError: the monitor was entered before.
            StoreUnavailableError, DecodeError: the store failed, or holds no
                MonitorState under the key.
        """
        if self._entered or self._finished:
            raise ClientClosedError("a monitor can be entered only once; create a new one")
        self._entered = True
        try:
            if self._store is not None:
                self._lease = await self._take_lease(self._store)
                saved = await self._store.get(self._key, MonitorState)
                if saved is not None:
                    self._restore(saved)
            await self._begin()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel and await every task, save the last checkpoint and give the lease up.

        Idempotent. A store failing here is logged, not raised.
        """
        self._finished = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = list(self._tasks)
        self._tasks.clear()
        if tasks:
            await cancel_and_wait(tasks)
        watch, self._watch = self._watch, None
        if watch is not None:
            await watch.aclose()
        if not self._queue.full():
            self._queue.put_nowait(_End(None))  # wake a consumer waiting in another task
        lease, self._lease = self._lease, None
        if lease is not None and self._store is not None:
            try:
                await self._store.put(self._key, self.state, lease=lease)
                await self._store.release_lease(lease)
            except (StoreUnavailableError, LeaseLostError) as exc:
                logger.warning("monitor %s: last checkpoint not saved: %s", self._key, exc)

    def __del__(self) -> None:
        # Warn only; no I/O in a finalizer.
        if getattr(self, "_tasks", None):
            warnings.warn(
                "a FleetMonitor was never closed; use 'async with monitor:'",
                ResourceWarning,
                stacklevel=2,
            )

    def __aiter__(self) -> FleetMonitor:
        return self

    async def __anext__(self) -> MonitorEvent:
        """Return the next event, waiting for it.

        Raises:
            StopAsyncIteration: no account is left to judge, or the monitor was closed.
            ClientClosedError: iterated outside its ``async with`` block.
            The error that ended the monitor (see ``accounts.monitor``); the
            monitor is closed first.
        """
        if self._finished:
            raise StopAsyncIteration
        if not self._entered:
            raise ClientClosedError("enter the monitor first: `async with ... as monitor:`")
        while not self._events:
            if not self._scheduler and not self._closing:
                await self.aclose()
                raise StopAsyncIteration
            item = await self._queue.get()
            if isinstance(item, _End):
                await self.aclose()
                if item.error is not None:
                    raise item.error
                raise StopAsyncIteration
            try:
                self._apply(item)
                if self._watch_due:
                    await self._start_watch()
            except Exception:
                await self.aclose()
                raise
        event = self._events.popleft()
        w = self._watched.get(event.account_id)
        if w is not None:
            w.handed_out(event)
        return event

    # -- start-up -------------------------------------------------------------------

    def _restore(self, state: MonitorState) -> None:
        wanted = set(self._ids)
        for aid, progress in state.accounts.items():
            if aid in wanted:
                w = self._watched[aid] = Watched.restore(aid, progress)
                if self._rules is not None:
                    w.with_rules(self._rules)

    async def _begin(self) -> None:
        now = self._clock.now()
        for aid in self._ids:
            w = self._watched.get(aid)
            if w is None:
                self._scheduler.add(aid, now=now)
                continue
            self.stats.started += 1
            self._server.observe(w.evaluator.state.clock)
            self._emit(w.unannounced(self._server.now()))
            if w.active:
                self._scheduler.add(aid, now=now, next_boundary=self._mono(w.next_day_start))
            else:
                self._after_decision(w)
                if not w.closed:  # read once more: it may have been reset since
                    self._rechecks.add(aid)
                    self._scheduler.add(aid, now=now)
        self._spawn(self._sampler)
        if self.stats.ready:
            await self._start_watch()
        if self._store is not None:
            self._spawn(self._keep)

    async def _take_lease(self, store: CheckpointStore) -> Lease:
        while True:
            lease = await store.acquire_lease(self._key, owner=self._owner, ttl=self._lease_ttl)
            if lease is not None:
                return lease
            logger.info("monitor %s: another worker holds the lease; waiting", self._key)
            await self._clock.sleep(self._lease_ttl / 3)

    async def _start_watch(self) -> None:
        """Poll the trade feeds of the accounts still judged, from their watermarks (a
        running watch is replaced: a reset account joined; fills it already queued are
        recognised by their watermark and not judged twice)."""
        self._watch_due = False
        self._sample_pacer.rate = self._sample_rate
        old, self._watch = self._watch, None
        if old is not None:
            await old.aclose()
        marks = {aid: w.watermark for aid, w in self._watched.items() if w.active}
        if not marks:
            return
        watch = self._watch = TradeWatch(
            self._clock,
            self._paced_walk,
            list(marks),
            interval=self._fill_interval,
            since=marks,
            concurrency=_WATCH_CONCURRENCY,
            page_size=MAX_PAGE_SIZE,
            queue_size=self._queue.maxsize,
            process_exception=self._given_process,
        )
        await watch.__aenter__()
        self._spawn(partial(self._forward, watch))

    # -- the tasks ------------------------------------------------------------------

    def _spawn(self, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``run()`` in a task of the monitor; the coroutine is made inside the task,
        so a task cancelled before it starts leaves no coroutine un-awaited."""
        task = asyncio.get_running_loop().create_task(self._guarded(run))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        try:
            await run()
        except Exception as exc:  # the monitor ends with it; CancelledError propagates
            await self._queue.put(_End(exc))

    async def _sampler(self) -> None:
        clock, scheduler, pacer = self._clock, self._scheduler, self._sample_pacer
        slots = self._slots
        while True:
            await slots.acquire()
            try:
                await pacer.turn()
                aid = scheduler.pop(clock.now())
            except BaseException:
                slots.release()
                raise
            if aid is None:  # every account in flight, or sampled too recently
                slots.release()
                await clock.sleep(1.0 / pacer.rate)
                continue
            self._spawn(partial(self._sample, aid))

    async def _sample(self, aid: str) -> None:
        try:
            try:
                state = await self._get(aid)
                self._server.observe(state.updated_at)
                at, mono = self._server.now(), self._clock.now()
                history: list[Trade] = []
                known = self._watched.get(aid)
                if known is None or (aid in self._rechecks and known.is_reset(state, at)):
                    opened = opened_at_of(state, at)
                    if opened < at:
                        history = await self._history(aid, opened)
            except Exception as exc:
                await self._delay(aid, exc)
                return
            self._failures.pop(aid, None)
            self._reached = True
            if self._outage_since is not None:
                self._outage_since = None
                logger.warning("monitor: the server answers again")
            await self._queue.put(_Sampled(aid, state, at, mono, history))
        finally:
            self._slots.release()

    async def _history(self, aid: str, opened: datetime) -> list[Trade]:
        """The account's fills since ``opened``, oldest first (its first read only)."""
        found: list[Trade] = []
        pages = self._walk(aid, MAX_PAGE_SIZE)
        try:
            while True:
                await self._sample_pacer.turn()
                try:
                    page = await anext(pages)
                except StopAsyncIteration:
                    break
                for trade in page.data:
                    if trade.filled_at < opened:
                        found.reverse()
                        return found
                    found.append(trade)
                if not page.next_cursor:
                    break
        finally:
            await aclose_iterator(pages)
        found.reverse()
        return found

    async def _fail(self, aid: str, exc: BaseException) -> None:
        """``exc`` concerns ``aid`` only: report it (an ``"error"`` event); else raise it."""
        if not _account_only(exc):
            raise exc
        await self._queue.put(_Failed(aid, exc))

    async def _delay(self, aid: str, exc: Exception) -> None:
        """A read failed: report or raise what ``process_exception`` makes of it, or
        read again later."""
        fatal = self._process(exc)
        if fatal is not None:
            if fatal is not exc and fatal.__cause__ is None:
                fatal.__cause__ = exc
            await self._fail(aid, fatal)
            return
        self._failures[aid] += 1
        self.stats.retries += 1
        delay = self._backoff(aid, exc)
        if isinstance(exc, TransportError):  # the server, not the account: said once
            now = self._clock.now()
            if self._outage_since is None:
                self._outage_since = now
                logger.warning("monitor: the server is unreachable (%s); reading again", exc)
            if not self._reached and now - self._outage_since >= STARTUP_GRACE:
                raise exc  # nothing ever succeeded: the server is not there
            logger.debug("monitor: account %s read again in %.2fs after %s", aid, delay, exc)
        else:
            logger.warning("monitor: account %s read again in %.2fs after %s", aid, delay, exc)
        self._timers[aid] = self._clock.call_at(self._clock.now() + delay, partial(self._due, aid))

    def _backoff(self, aid: str, exc: Exception) -> float:
        delay = backoff(1.0, _MAX_BACKOFF, self._failures[aid] - 1, self._rng)
        if isinstance(exc, RateLimitError) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        return delay

    def _due(self, aid: str) -> None:
        self._timers.pop(aid, None)
        if aid in self._scheduler:
            self._scheduler.retry(aid, at=self._clock.now())

    async def _close_account(self, aid: str) -> None:
        while True:
            try:
                state = await self._close(aid)
            except Exception as exc:
                # A close is idempotent and each attempt cancels another batch of orders.
                if not isinstance(exc, OrdersNotCancelledError):
                    fatal = self._process(exc)
                    if fatal is not None:
                        if fatal is not exc and fatal.__cause__ is None:
                            fatal.__cause__ = exc
                        await self._fail(aid, fatal)
                        return
                self._failures[aid] += 1
                self.stats.retries += 1
                delay = self._backoff(aid, exc)
                logger.warning("monitor: closing %s again in %.2fs after %s", aid, delay, exc)
                await self._clock.sleep(delay)
                continue
            self._failures.pop(aid, None)
            self._server.observe(state.updated_at)
            await self._queue.put(_Closed(aid, state, self._server.now()))
            return

    async def _paced_walk(self, aid: str, first_page_size: int) -> AsyncGenerator[TradePage, None]:
        """One trade-feed walk of the watch, each page at the trade-feed rate."""
        pages = self._walk(aid, first_page_size)
        try:
            while True:
                await self._fill_pacer.turn()
                try:
                    page = await anext(pages)
                except StopAsyncIteration:
                    return
                yield page
        finally:
            await aclose_iterator(pages)

    async def _forward(self, watch: TradeWatch) -> None:
        async for item in watch:
            await self._queue.put(_Filled(item))

    async def _keep(self) -> None:
        """Renew the lease every ``lease_ttl / 3`` and save a checkpoint every interval."""
        store, clock, ttl = self._store, self._clock, self._lease_ttl
        assert store is not None
        renewed = saved = clock.now()
        tick = min(ttl / 3, self._checkpoint_interval)
        while True:
            await clock.sleep(tick)
            now = clock.now()
            lease = self._lease
            assert lease is not None
            try:
                if now - renewed >= ttl / 3:
                    self._lease = await store.renew_lease(lease)
                    renewed = now
                if now - saved >= self._checkpoint_interval and self._dirty:
                    self._dirty = False
                    await store.put(self._key, self.state, lease=lease)
                    saved = now
            except LeaseLostError:
                self._lease = None
                raise
            except StoreUnavailableError as exc:
                if clock.now() - renewed >= ttl:
                    self._lease = None
                    raise LeaseLostError(
                        f"the lease on {self._key!r} ran out while the store was unavailable"
                    ) from exc
                logger.warning("monitor %s: checkpoint store unavailable: %s", self._key, exc)

    # -- judging (in the consumer's task) ---------------------------------------------

    def _apply(self, item: _Input) -> None:
        self._dirty = True
        if isinstance(item, _Sampled):
            self._on_sample(item)
        elif isinstance(item, _Filled):
            aid = item.item.account_id
            w = self._watched.get(aid)
            self._server.observe(item.item.trade.filled_at)
            trade = item.item.trade
            if w is not None and w.active and Watermark.of(trade) > w.watermark:
                self._emit(w.fill(trade, self._server.now()))
                self._after(w)
        elif isinstance(item, _Closed):
            self._closing.discard(item.account_id)
            self._emit(self._watched[item.account_id].closed_now(item.state, item.at))
        elif isinstance(item, _Failed):
            self._on_failure(item.account_id, item.error)

    def _on_failure(self, aid: str, exc: BaseException) -> None:
        """``aid`` cannot be judged: say so and watch the others."""
        self._closing.discard(aid)
        self._rechecks.discard(aid)
        w = self._watched.get(aid)
        at = self._server.now()
        if w is None:
            self.stats.started += 1  # counted, so the trade feed of the others starts
            self._watch_due = self.stats.ready
        if aid in self._scheduler:
            self._scheduler.discard(aid)
        self.stats.errors += 1
        self._emit([w.error(at, exc) if w is not None else error_event(aid, at, exc)])

    def _on_sample(self, item: _Sampled) -> None:
        aid = item.account_id
        w = self._watched.get(aid)
        prefix: list[MonitorEvent] = []
        if w is not None and aid in self._rechecks:
            self._rechecks.discard(aid)
            if w.active or not w.is_reset(item.state, item.at):
                if not w.active:
                    self._scheduler.discard(aid)
                return
            w = None  # a reset: judge the new attempt
            prefix = [
                MonitorEvent(
                    account_id=aid, kind="restarted", at=item.at, verdict=None, state=item.state
                )
            ]
            self._watch_due = self.stats.ready
        if w is None:
            try:
                w, events = Watched.start(
                    aid, item.state, item.at, rules=self._rules, history=item.history
                )
            except InvalidArgumentError as exc:
                self._on_failure(aid, exc)
                return
            if not prefix:
                self.stats.started += 1
                self._watch_due = self.stats.ready
            self._watched[aid] = w
            events = prefix + events
        elif w.active:
            if self._rules is None:  # stored rules changed on the server apply from here
                try:
                    w.with_rules(RuleSet.from_wire(item.state.rules))
                except InvalidArgumentError as exc:
                    self._on_failure(aid, exc)
                    return
            events = w.sample(item.state, item.at)
        else:
            return  # decided while this read was in flight
        self.stats.samples += 1
        last = self._last_sample.get(aid)
        if last is not None and item.mono - last > self.stats.max_staleness:
            self.stats.max_staleness = item.mono - last
        self._last_sample[aid] = item.mono
        self._emit(events)
        if w.active:
            self._scheduler.observe(
                aid,
                at=item.mono,
                equity=item.state.equity,
                headroom=w.nearest_headroom,
                next_boundary=self._mono(w.next_day_start),
            )
        else:
            self._after(w)

    def _after(self, w: Watched) -> None:
        """An input was judged: a decided or closed account leaves the schedule."""
        if not w.active:
            self._scheduler.discard(w.account_id)
            self._after_decision(w)

    def _after_decision(self, w: Watched) -> None:
        aid = w.account_id
        if (
            self._close_on_breach
            and w.status == "failed"
            and not w.closed
            and aid not in self._closing
        ):
            self._closing.add(aid)
            self._spawn(partial(self._close_account, aid))

    def _emit(self, events: list[MonitorEvent]) -> None:
        stats = self.stats
        for event in events:
            kind = event.kind
            if kind == "fill":
                stats.fills += 1
            elif kind == "warning":
                stats.warnings += 1
            elif kind == "breach":
                stats.breaches += 1
            elif kind == "passed":
                stats.passed += 1
            elif kind == "closed":
                stats.closed += 1
        self._events.extend(events)

    # -- time -----------------------------------------------------------------------

    def _wall(self) -> datetime:
        return datetime.fromtimestamp(self._clock.wall(), timezone.utc)

    def _mono(self, at: datetime) -> float:
        """The client-clock time of the server instant ``at``."""
        return self._clock.now() + (at - self._server.now()).total_seconds()
