"""The reconnecting executions stream: REST backfill, fill tracking, queue.

The socket is kept connected by a :class:`~polysim_async._wsloop.Supervisor`
(token, handshake, pings, backoff, ``process_exception``: the rules shared with
the price stream). One supervisor task per stream owns the socket and feeds a
bounded queue; the consumer reads the queue. Every wait and timer (pings, REST
checks, the handshake timeout, backoff) is on the client's clock.

Each connection: heal from REST (the fills since the previous check) → read
live frames, re-checking REST every ``reconcile_interval``.

With a checkpoint ``store``, the stream is owned under a lease named ``key``
(renewed in the background by a :class:`~._leases.LeaseKeeper`): entering
waits until the lease is free, then resumes from the checkpoint saved under
``key``. A fill is *acknowledged* when the consumer asks for the next item or
leaves the ``async with`` normally; the checkpoint is then saved, fenced by the
lease, before anything else is handed over. So across processes sharing the
store every fill is acknowledged exactly once; the one a crashed process had in
hand, not acknowledged, is delivered again by the next owner (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Generic, TypeVar

from ._checkpoints import CheckpointStore
from ._config import StreamPolicy
from ._errors import ClientClosedError, LeaseLostError, readable
from ._fills import FillTracker, Verdict
from ._hooks import GapEvent
from ._leases import DEFAULT_LEASE_TTL, LeaseKeeper
from ._requester import Requester
from ._tasks import cancel_and_wait
from ._transport import WebSocket
from ._wsloop import Drop, SocketStats, Supervisor, TokenCache, escalate, pump, socket_count
from .account import AccountAPI
from .models.account import HistoryRow
from .models.executions import ErrorFrame, Fill, FrameError, decode_frame
from .models.orders import WsToken
from .models.streams import StreamCheckpoint, StreamGap, Watermark

__all__ = ["FillStream", "StreamStats"]

logger = logging.getLogger("polysim_async")

E = TypeVar("E", Fill, Fill | StreamGap)

_PATH = "/v1/ws/executions"
_DELIVER = (Verdict.NEW, Verdict.LATE)


@dataclass
class StreamStats(SocketStats):
    """Counters of one stream, for applications and tests to read.

    Attributes:
        connects: sockets opened.
        token_mints: tokens minted.
        token_rejections: closes 4001 and handshakes refused with 401/403.
        live: fills queued from live frames.
        recovered: fills queued from the REST backfill.
        duplicates: frames or rows dropped because their fill was already queued.
        late: fills queued out of order because they became visible late.
        stale: unseen fills older than the remembered keys, dropped with a warning.
        unreadable: frames that could not be read (counted and skipped; a REST
            check follows once the frames already received are read, one per burst).
        reconciles: REST checks made while connected.
    """

    live: int = 0
    recovered: int = 0
    duplicates: int = 0
    late: int = 0
    stale: int = 0
    unreadable: int = 0
    reconciles: int = 0


@dataclass(frozen=True)
class _End:
    error: BaseException | None


def _fill(row: HistoryRow) -> Fill | None:
    if row.filled_at is None:
        logger.warning("history row for order %d has no filled_at; skipped", row.order_id)
        return None
    return Fill(
        order_id=row.order_id,
        market_id=row.market_id,
        side=row.side,
        outcome=row.outcome,
        price=row.price,
        quantity=row.quantity,
        filled_at=row.filled_at,
    )


class FillStream(Generic[E]):
    """The key owner's fills, live, healed from REST after every drop; see ``client.executions``.

    Use it as ``async with client.executions.stream() as fills: async for fill in fills:``.
    Fills arrive oldest first by ``(filled_at, order_id)``, each exactly once
    (a fill that becomes visible late is still delivered, out of order, with a
    warning). Save :attr:`checkpoint` to resume after a restart, or give
    ``client.executions.stream`` a checkpoint ``store`` and ``key``.

    Backpressure: frames are read into a queue of ``queue_size`` items; when
    it is full the reader stops reading the socket until the consumer catches
    up. Nothing is dropped; if the server gives up on a slow reader, the
    stream reconnects and heals the gap from REST.

    Cancellation: cancelling the consumer (or leaving the ``async with``)
    cancels the reader task and closes the socket before ``__aexit__`` returns.
    """

    def __init__(
        self,
        *,
        requester: Requester,
        account: AccountAPI,
        mint: Callable[[], Awaitable[WsToken]],
        user_agent: str,
        since: Watermark | StreamCheckpoint | None,
        gaps: bool,
        queue_size: int,
        policy: StreamPolicy,
        wallet_id: str | None,
        rng: random.Random | None = None,
        store: CheckpointStore | None = None,
        key: str = "",
        lease_ttl: float = DEFAULT_LEASE_TTL,
    ) -> None:
        self._requester = requester
        self._clock = requester.clock
        self._hooks = requester.hooks
        self._account = account
        self._gaps = gaps
        self._policy = policy
        self._wallet = wallet_id
        self._tracker: FillTracker | None = None
        self._checkpoint = since if isinstance(since, StreamCheckpoint) else None
        self._position = (
            max(since.delivered, default=since.floor)
            if isinstance(since, StreamCheckpoint)
            else since
        )
        # Keys queued for the consumer but not yet taken: not in a checkpoint yet.
        self._pending: set[Watermark] = set()
        # The first heal after a start without ``since`` is announced only if it finds fills.
        self._fresh_start = since is None
        # An unreadable frame makes one REST check due (see ``_on_frame``).
        self._check_soon = False
        self._queue: asyncio.Queue[Fill | StreamGap | _End] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._finished = False
        self._holding = False  # counted in the client's socket_count
        #: Counters; read them, don't write them.
        self.stats = StreamStats()
        # Built again on entering if a store's checkpoint turns a fresh start into a resume.
        self._make_supervisor = functools.partial(
            Supervisor,
            channel="executions",
            path=_PATH,
            requester=requester,
            tokens=TokenCache(mint, requester, self.stats),
            headers={"User-Agent": user_agent},
            policy=policy,
            stats=self.stats,
            rng=rng or random.Random(),
        )
        self._supervisor = self._make_supervisor(reason="start" if self._fresh_start else "resume")
        self._key = key
        self._keeper = (
            None
            if store is None
            else LeaseKeeper(store, ttl=lease_ttl, clock=self._clock, on_lost=self._lost)
        )
        self._unacked = False  # a fill was handed over since the last save

    @property
    def position(self) -> Watermark | None:
        """The newest fill handed to the consumer (or the starting point).

        ``None`` only before a stream started without ``since`` is entered; for
        an account without any fill it is :meth:`Watermark.beginning`. To resume
        after a restart, save :attr:`checkpoint`: a fill that reached REST but not
        the socket can be older than this position and not yet recovered.
        """
        return self._position

    @property
    def checkpoint(self) -> StreamCheckpoint | None:
        """Exactly what was handed to the consumer so far; save it and pass it as ``since=``.

        A stream resumed from it delivers every fill it had not handed over,
        including ones that reached REST but never the socket, and none twice.
        Fills still buffered for the consumer are not in it. ``None`` before a
        stream started without ``since`` is entered.
        """
        if self._tracker is None:
            return self._checkpoint
        return self._tracker.snapshot(self._pending)

    async def __aenter__(self) -> FillStream[E]:
        """Find the starting point (without ``since``), then start the reader task.

        Without ``since``, the newest fill REST shows is read first, so every
        fill after the ``async with`` is entered is delivered, even one that
        happens before the socket is open (the first connection backfills it).

        With a store: first wait (every ``lease_ttl / 3`` seconds) until the
        lease on ``key`` is free and take it, then start from the checkpoint
        saved there (``since`` counts only when nothing is saved yet), and
        save the starting point before any fill is handed over.

        Raises:
            ClientClosedError: the stream was entered before.
            APIStatusError, TransportError, DecodeError: reading the starting
                point failed after the request path's retries. Cancellation propagates.
            StoreUnavailableError: the store could not be reached.
            LeaseLostError: the lease was lost before the starting point was saved.
        """
        if self._task is not None or self._finished:
            raise ClientClosedError("a fill stream can be entered only once")
        self._finished = True  # until the task runs: a failed entry cannot be retried
        if self._keeper is None:
            await self._start()
        else:
            try:
                await self._own(self._keeper)
                await self._start()
                await self._keeper.put(self._key, self.checkpoint, name=self._key)
            except BaseException:
                await self._keeper.aclose()
                raise
        self._finished = False
        socket_count(self._requester).held += 1
        self._holding = True
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def _own(self, keeper: LeaseKeeper) -> None:
        """Take the stream's lease (waiting while another process holds it) and its checkpoint."""
        await keeper.__aenter__()
        while await keeper.acquire(self._key) is None:
            await self._clock.sleep(keeper.ttl / 3)
        saved = await keeper.store.get(self._key, StreamCheckpoint)
        if saved is not None:
            self._checkpoint = saved
            self._position = max(saved.delivered, default=saved.floor)
            self._fresh_start = False
            self._supervisor = self._make_supervisor(reason="resume")

    async def _start(self) -> None:
        if self._checkpoint is not None:
            self._tracker = FillTracker.restore(self._checkpoint, window=self._policy.lookback)
        else:
            floor = self._position
            if floor is None:
                floor = await self._head() or Watermark.beginning()
                self._position = floor
            self._tracker = FillTracker(floor, window=self._policy.lookback)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop; with a store, leaving normally (``break`` included) acknowledges the fill in hand.

        Leaving with an exception (cancellation included) does not: the next
        owner of the stream delivers that fill again.
        """
        try:
            if exc_type is None:
                await self._acknowledge()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop the reader, close the socket and release the lease; idempotent.

        The fill in hand is not acknowledged. Returns once the reader task has
        finished. If the caller is cancelled while waiting, the reader is
        already cancelled and finishes on its own (the lease then expires).
        """
        task = self._task
        if self._holding:
            self._holding = False
            socket_count(self._requester).held -= 1
        self._finished = True
        if task is not None:
            await cancel_and_wait([task])
        # Wake a consumer waiting in another task (a full queue means nobody waits).
        if task is not None and not self._queue.full():
            self._queue.put_nowait(_End(None))
        if self._keeper is not None:
            await self._keeper.aclose()

    async def _acknowledge(self) -> None:
        """Save the checkpoint (with a store) if a fill was handed over since the last save.

        Raises:
            LeaseLostError: another process owns the stream now; it ends.
        """
        if self._keeper is None or not self._unacked:
            return
        self._unacked = False
        try:
            await self._keeper.put(self._key, self.checkpoint, name=self._key)
        except LeaseLostError:
            self._finished = True
            raise

    def _lost(self, name: str) -> None:
        # Called by the keeper: wake a waiting consumer; the next __anext__ raises.
        if not self._queue.full():
            self._queue.put_nowait(_End(LeaseLostError(f"the lease on {name!r} was lost")))

    def __del__(self) -> None:
        # Warn only; no I/O in a finalizer.
        task = getattr(self, "_task", None)
        if task is not None and not task.done():
            warnings.warn(
                "a FillStream was never closed; use 'async with client.executions.stream()'",
                ResourceWarning,
                stacklevel=2,
            )

    def __aiter__(self) -> FillStream[E]:
        return self

    async def __anext__(self) -> E:
        """Acknowledge the previous fill (with a store), then return the next fill (or gap marker).

        Raises:
            StopAsyncIteration: the stream was closed.
            ClientClosedError: used outside its ``async with`` block.
            LeaseLostError: with a store, the stream's lease was lost (taken over
                after this process could not renew it for ``lease_ttl``): the
                stream ends; the new owner delivers what was not acknowledged.
            AuthenticationError, PermissionDeniedError: minting a token was refused.
            StreamClosedError: ``max_failures`` consecutive failures (chained to
                the last), or no executions WebSocket at the base URL.
            The error ``policy.process_exception`` chose to end the stream with
            (by default any error that is not transient, e.g. a DecodeError).
        """
        if self._finished:
            raise StopAsyncIteration
        if self._task is None:
            raise ClientClosedError("enter the stream first: `async with ... as fills:`")
        await self._acknowledge()
        item = await self._queue.get()
        if isinstance(item, _End):
            self._finished = True
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        if self._keeper is not None and not self._keeper.held(self._key):
            self._finished = True
            raise LeaseLostError(f"the lease on {self._key!r} was lost")
        if isinstance(item, Fill):
            self._unacked = self._keeper is not None
            key = Watermark.of(item)
            self._pending.discard(key)
            if self._position is None or key > self._position:
                self._position = key
        return item  # type: ignore[return-value]  # a StreamGap only when E includes it

    # -- the reader task ------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._supervisor.run(self._session)
        except Exception as exc:  # CancelledError is not an Exception: it propagates.
            await self._queue.put(_End(exc))

    async def _session(self, ws: WebSocket, reason: str, offline_since: float) -> Drop:
        """Heal what the previous connection missed, then read live frames."""
        fresh, self._fresh_start = self._fresh_start, False
        self._check_soon = False  # the heal below covers every frame before it
        await self._heal(reason, offline_since, announce=not fresh)
        return await pump(
            ws,
            clock=self._clock,
            policy=self._policy,
            on_frame=self._on_frame,
            every=self._policy.reconcile_interval,
            duty=self._reconcile,
            soon=lambda: self._check_soon,
        )

    async def _reconcile(self) -> None:
        """A REST check while connected, catching fills that never reached the socket:
        every ``reconcile_interval``, and once after a burst of unreadable frames."""
        reason = "unreadable frame" if self._check_soon else "reconcile"
        self._check_soon = False
        self.stats.reconciles += 1
        try:
            await self._heal(reason, self._clock.now(), announce=False)
        except Exception as exc:
            escalate(self._supervisor.process, exc)
            # The socket is healthy: keep it, and check REST again next interval.
            logger.warning("REST check (%s) failed (%s); will retry", reason, exc)

    async def _on_frame(self, data: str | bytes) -> None:
        try:
            frame = decode_frame(data)
        except FrameError as exc:
            # Counted and skipped; the socket stays. REST has every fill, so one
            # check is made once the frames already received are read: a burst
            # of unreadable frames costs one check, not one each.
            self.stats.unreadable += 1
            if not self._check_soon:
                logger.warning("unreadable executions frame (%s); checking REST", exc)
            self._check_soon = True
            return
        if isinstance(frame, Fill):
            await self._offer(frame, live=True)
        elif isinstance(frame, ErrorFrame):
            logger.warning(
                "executions feed sent an error frame: %s", readable(frame.message or "", 200)
            )

    async def _head(self) -> Watermark | None:
        """The newest fill REST shows now, or ``None`` when there is none."""
        pages = self._account.history_pages(wallet_id=self._wallet, page_size=1)
        async with contextlib.aclosing(pages):
            async for page in pages:
                fills = [fill for fill in map(_fill, page.data) if fill is not None]
                return Watermark.of(fills[0]) if fills else None
        return None

    async def _recent(self, lower: datetime) -> list[Fill]:
        """Every fill REST shows with ``filled_at`` at or after ``lower``, oldest first.

        Walks the history newest first until a page reaches an older fill. Fills
        that land on top while walking shift rows to later pages, so a row may
        be read twice (deduplicated here) but never skipped.
        """
        found: dict[Watermark, Fill] = {}
        pages = self._account.history_pages(wallet_id=self._wallet)
        async with contextlib.aclosing(pages):
            async for page in pages:
                reached = False
                for fill in map(_fill, page.data):
                    if fill is None:
                        continue
                    if fill.filled_at < lower:
                        reached = True
                    else:
                        found[Watermark.of(fill)] = fill
                if reached:
                    break
        return [found[key] for key in sorted(found)]

    async def _heal(self, reason: str, offline_since: float, *, announce: bool) -> None:
        """Queue the fills REST shows in the window below the mark and above it.

        Args:
            announce: report a gap even if nothing was missing (reconnects).
        """
        tracker = self._tracker
        assert tracker is not None
        after = tracker.mark
        rows = await self._recent(tracker.lower_bound())
        fresh = [f for f in rows if tracker.verdict(Watermark.of(f)) in _DELIVER]
        if announce or fresh:
            gap = StreamGap(
                after=after,
                until=max(map(Watermark.of, fresh)) if fresh else None,
                recovered=len(fresh),
                reason=reason,
                offline_seconds=max(0.0, self._clock.now() - offline_since),
            )
            if self._hooks.on_gap is not None:
                self._hooks.on_gap(GapEvent("executions", gap))
            if self._gaps:
                await self._queue.put(gap)
        for fill in fresh:
            await self._offer(fill, live=False)
        if rows:  # only now: raising the bound earlier could make a fresh fill look stale
            tracker.checked_up_to(Watermark.of(rows[-1]))

    async def _offer(self, fill: Fill, *, live: bool) -> None:
        tracker = self._tracker
        assert tracker is not None
        key = Watermark.of(fill)
        verdict = tracker.verdict(key)
        if verdict is Verdict.DUPLICATE:
            self.stats.duplicates += 1
            return
        if verdict is Verdict.STALE:
            self.stats.stale += 1
            logger.warning("fill %s is below what REST checks re-read; taken as seen", key)
            return
        if verdict is Verdict.LATE:
            self.stats.late += 1
            logger.warning("fill %s became visible after newer fills; delivered late", key)
        elif live:
            self.stats.live += 1
        else:
            self.stats.recovered += 1
        tracker.remember(key)
        self._pending.add(key)
        await self._queue.put(fill)
