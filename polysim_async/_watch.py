"""Watching many partner accounts for new fills by polling their keyset trade feeds.

Partners get no push channel, so each account's feed (newest first by
``(filled_at, order_id)``, API.md §8.1) is polled and read down to the newest
fill already seen. The pages come from the partner trade walk
(``PartnerAccounts``), so the repeated-cursor guard of the one cursor walker
applies here too. Scheduling, fairness and budget:

* Every account is a job in one due-time heap; a dispatcher moves due jobs to a
  FIFO ready queue and ``concurrency`` workers run them. An account is in at
  most one place at a time, so its polls never overlap.
* One *turn* is one request (one page). An account with a backlog keeps its
  walk (the keyset cursor) and goes to the back of the ready queue after each
  page, so the busiest account costs one request per round, like every other,
  and cannot starve the rest.
* Every request goes through the client's shared limiter, so the watch stays
  within the rate budget alongside the application's other calls. A failure
  ``process_exception`` lets pass (by default, what ``is_transient`` names: a
  429 that outlasts the request path's own retries, a 5xx, a dropped
  connection) only delays that account, with backoff; any other error ends
  the watch and is raised to the consumer.
* Time (due times, timers) comes from the client's clock.

With a checkpoint ``store``, each account is polled only while this watcher
holds its lease (:mod:`._claims` decides which), and a fill is *acknowledged*
when the consumer asks for the next item (or leaves the ``async with``
normally): its watermark is then saved, fenced by the lease, before anything
else is handed over. A watcher that takes an account over starts after the
last acknowledged fill; one that takes back an account it polled before and
finds nothing saved (the store lost its data) goes on from the watermark it
holds in memory, never from the account's newest fill. Fills queued for an
account whose lease was lost are dropped (its new holder delivers them).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import warnings
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Final

from ._checkpoints import CheckpointStore
from ._claims import Claims
from ._clock import Clock
from ._config import ProcessException, backoff
from ._errors import (
    ClientClosedError,
    InvalidArgumentError,
    LeaseLostError,
    RateLimitError,
    StoreUnavailableError,
)
from ._leases import DEFAULT_LEASE_TTL, check_store
from ._retry import retry_if_transient
from ._shard import Shard, check_shard, select_shard
from ._tasks import aclose_iterator, cancel_and_wait, wake
from ._validation import account_id_list, check_int
from .models.partner import Trade, TradePage
from .models.streams import AccountTrade, Watermark

__all__ = [
    "DEFAULT_WATCH_CONCURRENCY",
    "DEFAULT_WATCH_INTERVAL",
    "TradeWatch",
    "WatchStats",
]

logger = logging.getLogger("polysim_async")

#: Seconds between two polls of one account when it has nothing new.
DEFAULT_WATCH_INTERVAL = 5.0
#: Requests a watch keeps in flight at once.
DEFAULT_WATCH_CONCURRENCY = 8
_MIN_PROBE = 10
_MAX_BACKOFF = 60.0

#: Opens one account's trade walk: ``(account_id, first_page_size) -> pages``.
Walk = Callable[[str, int], AsyncGenerator[TradePage, None]]


class _Unset:
    """Marks an account whose starting point has not been read yet."""


_UNSET: Final = _Unset()


@dataclass(eq=False)
class _Account:
    id: str
    mark: Watermark | _Unset  # newest fill queued
    found: list[Trade] = field(default_factory=list)  # this poll's new fills, newest first
    pages: AsyncGenerator[TradePage, None] | None = None  # this poll's walk, between turns
    last_new: int = 0  # new fills found by the previous poll, to size the first page
    failures: int = 0
    # With a store: polled only while owned; ``gen`` grows with every gain or loss, so
    # fills queued under an older ownership are recognised; ``load``: read the saved
    # watermark before the next poll; ``queued``: in the heap, the ready queue or a worker.
    owned: bool = True
    gen: int = 0
    load: bool = False
    queued: bool = False
    release_after_ack: bool = False


@dataclass(frozen=True, slots=True)
class _Queued:
    account: _Account
    gen: int
    item: AccountTrade


@dataclass
class WatchStats:
    """Counters of one watch.

    Attributes:
        requests: trade-feed pages requested.
        polls: polls completed (walks that reached the newest fill already seen).
        trades: fills queued for the consumer.
        retries: failures that only delayed an account (429s included).
        claimed: account leases taken (with a ``store``).
        lost: account leases lost: taken over, or the store unreachable past their time.
        handed_back: accounts given back to their own shard's watcher.
        discarded: queued fills dropped because their account's lease was lost or
            handed back (its new holder delivers them).
    """

    requests: int = 0
    polls: int = 0
    trades: int = 0
    retries: int = 0
    claimed: int = 0
    lost: int = 0
    handed_back: int = 0
    discarded: int = 0


@dataclass(frozen=True)
class _End:
    error: BaseException | None


class TradeWatch:
    """New fills on many partner accounts, each exactly once; see ``watch_trades``.

    Use it as ``async with watch: async for item in watch:``. Iterating a watch
    that was not entered raises :class:`ClientClosedError`, so no polling task
    can outlive the block; a watch dropped while still running warns
    (``ResourceWarning``). Save :attr:`watermarks` to resume, or give it a
    checkpoint ``store``.

    Backpressure: at most ``queue_size`` fills wait for the consumer; when the
    queue is full, polling pauses. Nothing is dropped.

    Cancellation: cancelling the consumer or leaving the ``async with`` cancels
    and awaits every task of the watch.
    """

    def __init__(
        self,
        clock: Clock,
        walk: Walk,
        account_ids: Iterable[str],
        *,
        interval: float,
        since: Mapping[str, Watermark] | None,
        concurrency: int,
        page_size: int,
        queue_size: int,
        process_exception: ProcessException | None = None,
        shard: Shard | None = None,
        store: CheckpointStore | None = None,
        key: str | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
    ) -> None:
        ids = account_id_list(account_ids)
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            raise InvalidArgumentError(f"interval must be a positive number, got {interval!r}")
        if process_exception is not None and not callable(process_exception):
            raise InvalidArgumentError("process_exception must be callable")
        shard = None if shard is None else check_shard(shard)
        check_store(store, key, what="watch")
        if store is None:
            ids = select_shard(ids, shard)
        self._interval = float(interval)
        self._concurrency = check_int("concurrency", concurrency, low=1)
        self._page_size = check_int("page_size", page_size, low=1, high=500)
        start = dict(since or {})
        for aid, mark in start.items():
            if not isinstance(mark, Watermark):
                raise InvalidArgumentError(f"since[{aid!r}] must be a Watermark, got {mark!r}")
        self._clock = clock
        self._walk = walk
        self._process = process_exception or retry_if_transient
        self._since = start
        self._accounts = [_Account(aid, start.get(aid, _UNSET)) for aid in ids]
        self._by_id = {acc.id: acc for acc in self._accounts}
        self._delivered: dict[str, Watermark] = (
            {aid: start[aid] for aid in ids if aid in start} if store is None else {}
        )
        self._claims: Claims | None = None
        if store is not None:
            assert key is not None
            self._claims = Claims(
                store,
                key=key,
                ttl=lease_ttl,
                shard=shard,
                clock=clock,
                account_ids=ids,
                gained=self._gain,
                lost=self._lose,
                hand_back=self._hand_back,
            )
            for acc in self._accounts:
                acc.owned = False
        self._out: asyncio.Queue[_Queued | _End] = asyncio.Queue(
            maxsize=check_int("queue_size", queue_size, low=1)
        )
        self._in_hand: _Queued | None = None  # the fill the consumer has, not yet acknowledged
        self._ready: asyncio.Queue[_Account] = asyncio.Queue()
        self._heap: list[tuple[float, int, _Account]] = []
        self._seq = itertools.count()
        self._waiter: asyncio.Future[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._entered = False
        self._finished = False
        self._rng = random.Random()
        #: Counters; read them, don't write them.
        self.stats = WatchStats()

    @property
    def watermarks(self) -> dict[str, Watermark]:
        """Per account, the newest fill handed to the consumer; pass it as ``since`` to resume.

        An account that had no fill when the watch started on it shows
        :meth:`Watermark.beginning` (every fill it gets is new). Accounts whose
        starting point was not read yet are absent: on a restart they start
        from their newest fill then.
        """
        return dict(self._delivered)

    @property
    def owned(self) -> frozenset[str]:
        """The accounts this watcher polls now: all of them without a store; with one,
        those whose lease it holds."""
        return frozenset(acc.id for acc in self._accounts if acc.owned)

    async def __aenter__(self) -> TradeWatch:
        """Start polling (with a store: start claiming accounts).

        Raises:
            ClientClosedError: the watch was entered before.
        """
        if self._entered or self._finished:
            raise ClientClosedError("a trade watch can be entered only once; create a new one")
        self._entered = True
        loop = asyncio.get_running_loop()
        now = self._clock.now()
        for acc in self._accounts:
            if acc.owned:
                self._schedule(acc, now)
        self._tasks.append(loop.create_task(self._dispatch()))
        self._tasks += [loop.create_task(self._work()) for _ in range(self._concurrency)]
        if self._claims is not None:
            await self._claims.keeper.__aenter__()
            self._tasks.append(loop.create_task(self._claim()))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop; leaving normally (end, ``break``, ``return``) acknowledges the fill in hand.

        Leaving with an exception (cancellation included) does not: with a
        store, the watcher that next holds its account delivers it again.
        """
        try:
            if exc_type is None and not self._finished:
                await self._acknowledge()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Cancel and await every task of the watch, close the walks, and release the
        leases; idempotent. The fill in hand is not acknowledged.

        If the caller is cancelled while waiting, the tasks are already
        cancelled and finish on their own.
        """
        self._finished = True
        tasks, self._tasks = self._tasks, []
        if tasks:
            await cancel_and_wait(tasks)
            # Wake a consumer waiting in another task (a full queue means nobody waits).
            if not self._out.full():
                self._out.put_nowait(_End(None))
        for acc in self._accounts:
            pages, acc.pages = acc.pages, None
            if pages is not None:
                await aclose_iterator(pages)
        if self._claims is not None:
            await self._claims.keeper.aclose()

    def __del__(self) -> None:
        # Warn only; no I/O in a finalizer.
        if getattr(self, "_tasks", None):
            warnings.warn(
                "a TradeWatch was never closed; use 'async with watch:'",
                ResourceWarning,
                stacklevel=2,
            )

    def __aiter__(self) -> TradeWatch:
        return self

    async def __anext__(self) -> AccountTrade:
        """Acknowledge the previous fill (with a store), then return the next new fill.

        Raises:
            StopAsyncIteration: the watch was closed.
            ClientClosedError: iterated outside its ``async with`` block.
            The error that ended the watch (see ``watch_trades``); the watch is
            closed first.
        """
        if self._finished:
            raise StopAsyncIteration
        if not self._entered:
            raise ClientClosedError("enter the watch first: `async with ... as watch:`")
        await self._acknowledge()
        while True:
            item = await self._out.get()
            if isinstance(item, _End):
                await self.aclose()
                if item.error is not None:
                    raise item.error
                raise StopAsyncIteration
            if self._claims is not None:
                self._claims.keeper.drop_expired()  # paused past the ttl: lost, not yet noticed
            if item.gen == item.account.gen:
                break
            self.stats.discarded += 1  # its account changed hands since it was queued
        self._in_hand = item
        trade = item.item
        self._delivered[trade.account_id] = Watermark.of(trade.trade)
        return trade

    async def _acknowledge(self) -> None:
        """Save the watermark of the fill in hand (with a store), fenced by its lease."""
        held, self._in_hand = self._in_hand, None
        if held is None or self._claims is None:
            return
        acc = held.account
        try:
            if held.gen == acc.gen or acc.release_after_ack:
                await self._claims.save(acc.id, Watermark.of(held.item.trade))
        except LeaseLostError as exc:
            logger.warning("watch: fill of %s not acknowledged: %s", acc.id, exc)
        finally:
            if acc.release_after_ack:
                acc.release_after_ack = False
                await self._claims.release(acc.id)

    # -- ownership (with a store) -----------------------------------------------------

    async def _claim(self) -> None:
        assert self._claims is not None
        try:
            await self._claims.run()
        except Exception as exc:  # the watch ends with it; CancelledError propagates
            await self._out.put(_End(exc))

    def _gain(self, account_id: str) -> None:
        acc = self._by_id[account_id]
        acc.owned, acc.load, acc.failures = True, True, 0
        acc.gen += 1
        acc.release_after_ack = False
        self.stats.claimed += 1
        logger.info("watch: took account %s", account_id)
        if not acc.queued:
            self._schedule(acc, self._clock.now())

    def _lose(self, account_id: str) -> None:
        acc = self._by_id[account_id]
        if acc.owned:
            acc.owned = False
            acc.gen += 1
            self.stats.lost += 1
            logger.warning("watch: lost the lease on account %s", account_id)

    async def _hand_back(self, account_id: str) -> None:
        acc = self._by_id[account_id]
        if not acc.owned:
            return
        acc.owned = False
        acc.gen += 1
        self.stats.handed_back += 1
        logger.info("watch: handing account %s back to its shard's watcher", account_id)
        assert self._claims is not None
        if self._in_hand is not None and self._in_hand.account is acc:
            acc.release_after_ack = True  # the consumer's fill is acknowledged first
        else:
            await self._claims.release(account_id)

    # -- scheduling -------------------------------------------------------------------

    def _schedule(self, acc: _Account, due: float) -> None:
        acc.queued = True
        heapq.heappush(self._heap, (due, next(self._seq), acc))
        wake(self._waiter)

    async def _dispatch(self) -> None:
        # Sleeps on a plain future woken by a clock timer or by _schedule;
        # asyncio.wait_for can swallow a cancellation on Python < 3.12.
        loop, clock = asyncio.get_running_loop(), self._clock
        while True:
            now = clock.now()
            while self._heap and self._heap[0][0] <= now:
                self._ready.put_nowait(heapq.heappop(self._heap)[2])
            waiter = self._waiter = loop.create_future()
            timer = clock.call_at(self._heap[0][0], partial(wake, waiter)) if self._heap else None
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()

    async def _work(self) -> None:
        try:
            while True:
                acc = await self._ready.get()
                delay = await self._turn(acc)
                if delay is None and not acc.owned:
                    acc.queued = False
                else:  # (taken again while its turn ended: at once)
                    self._schedule(acc, self._clock.now() + (delay or 0.0))
        except Exception as exc:  # the watch ends with it; CancelledError propagates
            await self._out.put(_End(exc))

    async def _turn(self, acc: _Account) -> float | None:
        """Run one request for ``acc``; return the seconds until its next turn, or
        ``None`` when this watcher no longer polls it."""
        if not acc.owned:
            await self._end_walk(acc)
            acc.found = []
            return None
        try:
            if acc.load:
                await self._load(acc)
            delay = await self._poll(acc)
        except Exception as exc:
            pages, acc.pages, acc.found = acc.pages, None, []
            if pages is not None:
                await aclose_iterator(pages)
            if isinstance(exc, LeaseLostError):
                return None  # the keeper reported it; the account is not ours any more
            fatal = None if isinstance(exc, StoreUnavailableError) else self._process(exc)
            if fatal is exc:
                raise
            if fatal is not None:
                raise fatal from exc
            acc.failures += 1
            self.stats.retries += 1
            delay = backoff(self._interval, _MAX_BACKOFF, acc.failures - 1, self._rng)
            if isinstance(exc, RateLimitError) and exc.retry_after is not None:
                delay = max(delay, exc.retry_after)
            logger.warning("watch: account %s delayed %.2fs after %s", acc.id, delay, exc)
            return delay
        acc.failures = 0
        return delay

    async def _load(self, acc: _Account) -> None:
        """Start from the account's saved watermark (after taking its lease).

        With nothing saved, a watermark this watcher holds in memory for the
        account (it polled it before) wins over ``since`` and over "newest".
        """
        assert self._claims is not None
        gen = acc.gen
        saved = await self._claims.load(acc.id)
        if gen != acc.gen:
            return
        await self._end_walk(acc)
        acc.found, acc.last_new = [], 0
        held = self._delivered.get(acc.id)
        if saved is None and held is not None:
            # Polled here before and nothing saved now (a store restarted empty, or
            # its keys were deleted): go on after the newest fill handed over,
            # never from the account's newest fill, and save that first.
            await self._claims.save(acc.id, held)
            if gen != acc.gen:
                return
            logger.warning(
                "watch: nothing saved for account %s; resuming from this watcher's watermark",
                acc.id,
            )
            saved = held
        acc.mark = saved if saved is not None else self._since.get(acc.id, _UNSET)
        if not isinstance(acc.mark, _Unset):
            self._delivered[acc.id] = acc.mark
        acc.load = False

    async def _page(self, acc: _Account, first_page_size: int) -> TradePage | None:
        """The next page of this poll's walk (opened if needed), or ``None`` at its end."""
        if acc.pages is None:
            acc.pages = self._walk(acc.id, first_page_size)
        self.stats.requests += 1
        try:
            return await anext(acc.pages)
        except StopAsyncIteration:
            self.stats.requests -= 1  # the walk ended without a request
            return None

    async def _poll(self, acc: _Account) -> float:
        mark, gen = acc.mark, acc.gen
        if isinstance(mark, _Unset):
            page = await self._page(acc, 1)
            await self._end_walk(acc)
            newest = page.data[0] if page is not None and page.data else None
            start = Watermark.of(newest) if newest is not None else Watermark.beginning()
            if gen != acc.gen:
                return self._interval  # changed hands meanwhile
            if self._claims is not None:
                # Saved before any fill is handed over, so a successor starts here too.
                await self._claims.save(acc.id, start)
            acc.mark = start
            self._delivered[acc.id] = start
            return self._interval
        probe = min(self._page_size, max(_MIN_PROBE, 2 * acc.last_new + 1))
        page = await self._page(acc, probe)
        reached = page is None or not page.next_cursor
        for trade in page.data if page is not None else ():
            if Watermark.of(trade) <= mark:
                reached = True
                break
            acc.found.append(trade)
        if not reached:
            return 0.0  # continue the walk, behind every account already due
        await self._end_walk(acc)
        found, acc.found = acc.found, []
        acc.last_new = len(found)
        self.stats.polls += 1
        if found and gen == acc.gen:
            acc.mark = Watermark.of(found[0])
            for trade in reversed(found):
                self.stats.trades += 1
                await self._out.put(_Queued(acc, gen, AccountTrade(acc.id, trade)))
        return self._interval

    async def _end_walk(self, acc: _Account) -> None:
        pages, acc.pages = acc.pages, None
        if pages is not None:
            await aclose_iterator(pages)
