"""The reconnecting executions stream: token, socket, pings, backoff, REST backfill, queue.

With :mod:`._transport`, the only module that touches aiohttp's WebSocket
classes; their exceptions are translated here. One supervisor task per stream
owns the socket and feeds a bounded queue; the consumer reads the queue.

Connection cycle: mint a token (reused while fresh) → open the socket → heal
from REST (the fills since the previous check) → read live frames,
re-checking REST every ``reconcile_interval``. Any drop
goes round again: at once with a new token after close 4001, else after a
jittered exponential backoff that resets once a connection stayed up
``stable_after`` seconds. A permanent error (401/403 minting, a missing
endpoint) ends the stream with that error.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar

import aiohttp

from ._errors import (
    APIStatusError,
    ClientClosedError,
    ConnectError,
    ConnectTimeoutError,
    DecodeError,
    NetworkError,
    StreamClosedError,
    TransportError,
)
from ._fills import (
    FillTracker,
    FrameError,
    StreamPolicy,
    StreamStats,
    Verdict,
    decode_frame,
    fetch_head,
    fetch_recent,
    is_permanent,
)
from ._requester import Requester
from .models.executions import Fill
from .models.orders import WsToken
from .models.streams import StreamCheckpoint, StreamGap, Watermark

__all__ = ["FillStream", "SessionFactory", "StreamPolicy", "StreamStats"]

logger = logging.getLogger("polysim_async")

E = TypeVar("E", Fill, Fill | StreamGap)
SessionFactory = Callable[[], aiohttp.ClientSession]
Socket = aiohttp.ClientWebSocketResponse[bool]

_PING = '{"action":"ping"}'
_TOKEN_INVALID = 4001
_CLOSE_TIMEOUT = 5.0
_DELIVER = (Verdict.NEW, Verdict.LATE)


class _NoEndpoint(StreamClosedError):
    """The server has no executions WebSocket at this URL (permanent)."""


class _TokenRejected(StreamClosedError):
    """The handshake was refused with 401/403: the token is bad or expired."""


@dataclass(frozen=True)
class _End:
    error: BaseException | None


@dataclass(frozen=True)
class _Drop:
    code: int | None
    reason: str
    error: BaseException | None = None


@dataclass
class _Token:
    value: str
    expires: float


async def _discard(handshake: asyncio.Future[Socket]) -> None:
    """Cancel a handshake, wait for it to end, and close the socket if it opened anyway."""
    handshake.cancel()
    await asyncio.wait({handshake})
    if not handshake.cancelled() and handshake.exception() is None:
        await handshake.result().close()


class FillStream(Generic[E]):
    """The key owner's fills, live, healed from REST after every drop; see ``client.executions``.

    Use it as ``async with client.executions.stream() as fills: async for fill in fills:``.
    Fills arrive oldest first by ``(filled_at, order_id)``, each exactly once
    (a fill that becomes visible late is still delivered, out of order, with a
    warning). Save :attr:`position` to resume after a restart.

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
        mint: Callable[[], Awaitable[WsToken]],
        session: SessionFactory,
        url: str,
        since: Watermark | StreamCheckpoint | None,
        gaps: bool,
        queue_size: int,
        policy: StreamPolicy,
        page_size: int,
        scope: Mapping[str, str],
        rng: random.Random | None = None,
    ) -> None:
        self._r = requester
        self._mint = mint
        self._session = session
        self._url = url
        self._gaps = gaps
        self._policy = policy
        self._page_size = page_size
        self._scope = dict(scope)
        self._rng = rng or random.Random()
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
        self._queue: asyncio.Queue[Fill | StreamGap | _End] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._finished = False
        #: Counters; read them, don't write them.
        self.stats = StreamStats()

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

        Raises:
            ClientClosedError: the stream was entered before.
            APIStatusError, TransportError: reading the starting point failed
                after the request path's retries. Cancellation propagates.
        """
        if self._task is not None or self._finished:
            raise ClientClosedError("a fill stream can be entered only once")
        self._finished = True  # until the task runs: a failed entry cannot be retried
        if self._checkpoint is not None:
            self._tracker = FillTracker.restore(self._checkpoint, window=self._policy.lookback)
        else:
            floor = self._position
            if floor is None:
                floor = await fetch_head(self._r, scope=self._scope) or Watermark.beginning()
                self._position = floor
            self._tracker = FillTracker(floor, window=self._policy.lookback)
        self._finished = False
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the reader and close the socket; idempotent.

        Returns once the reader task has finished. If the caller is cancelled
        while waiting, the reader is already cancelled and finishes on its own.
        """
        self._finished = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})
        # Wake a consumer waiting in another task (a full queue means nobody waits).
        if task is not None and not self._queue.full():
            self._queue.put_nowait(_End(None))

    def __aiter__(self) -> FillStream[E]:
        return self

    async def __anext__(self) -> E:
        """Return the next fill (or gap marker), waiting for it.

        Raises:
            StopAsyncIteration: the stream was closed.
            ClientClosedError: used outside its ``async with`` block.
            AuthenticationError, PermissionDeniedError: minting a token was refused.
            StreamClosedError: ``max_failures`` consecutive failures (chained to the last).
        """
        if self._finished:
            raise StopAsyncIteration
        if self._task is None:
            raise ClientClosedError("enter the stream first: `async with ... as fills:`")
        item = await self._queue.get()
        if isinstance(item, _End):
            self._finished = True
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        if isinstance(item, Fill):
            key = Watermark.of(item)
            self._pending.discard(key)
            if self._position is None or key > self._position:
                self._position = key
        return item  # type: ignore[return-value]  # a StreamGap only when E includes it

    # -- the reader task ------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._supervise()
        except Exception as exc:  # CancelledError is not an Exception: it propagates.
            await self._queue.put(_End(exc))

    async def _supervise(self) -> None:
        clock, policy = self._r.clock, self._policy
        failures = 0
        token: _Token | None = None
        rejected_before = False
        reason, offline_since = ("start" if self._fresh_start else "resume"), clock()
        while True:
            opened: float | None = None
            try:
                if token is None or clock() >= token.expires:
                    token = await self._new_token()
                ws = await self._open(token.value)
                opened = clock()
                self.stats.connects += 1
                try:
                    fresh, self._fresh_start = self._fresh_start, False
                    await self._heal(reason, offline_since, announce=not fresh)
                    drop = await self._pump(ws)
                finally:
                    await ws.close()
            except Exception as exc:
                if is_permanent(exc) or isinstance(exc, _NoEndpoint):
                    raise
                drop = _Drop(None, f"{type(exc).__name__}: {exc}", exc)
            offline_since = clock()
            stable = opened is not None and offline_since - opened >= policy.stable_after
            if stable:
                failures = 0
            rejected = drop.code == _TOKEN_INVALID or isinstance(drop.error, _TokenRejected)
            reason = drop.reason if drop.code is None else f"close {drop.code}: {drop.reason}"
            logger.info("executions stream dropped (%s); reconnecting", reason)
            if rejected:
                self.stats.token_rejections += 1
                token = None
                if stable or not rejected_before:
                    rejected_before = True
                    continue  # a fresh token, at once (API.md §10.6)
            rejected_before = rejected
            failures += 1
            if policy.max_failures is not None and failures > policy.max_failures:
                raise StreamClosedError(
                    f"executions stream gave up after {failures} failed connections: {reason}"
                ) from drop.error
            wait = policy.backoff(failures, self._rng)
            if isinstance(drop.error, APIStatusError) and drop.error.retry_after is not None:
                wait = max(wait, drop.error.retry_after)
            await self._r.sleep(wait)

    async def _new_token(self) -> _Token:
        minted = await self._mint()
        self.stats.token_mints += 1
        # Reuse it for reconnects during the first 80 % of its life (API.md §10.1).
        return _Token(minted.token, self._r.clock() + 0.8 * max(0, minted.expires_in))

    async def _open(self, token: str) -> Socket:
        # The handshake runs as a child task bounded with asyncio.wait: on Python
        # < 3.12, asyncio.wait_for can swallow a cancellation that coincides with
        # completion, which would leave this task running after aclose().
        handshake = asyncio.ensure_future(
            self._session().ws_connect(
                self._url,
                params={"token": token},
                decode_text=False,
                autoping=True,
                autoclose=True,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=_CLOSE_TIMEOUT),
            )
        )
        try:
            await asyncio.wait({handshake}, timeout=self._policy.open_timeout)
        except BaseException:
            await _discard(handshake)
            raise
        if not handshake.done():
            await _discard(handshake)
            raise ConnectTimeoutError("the WebSocket handshake timed out")
        try:
            return handshake.result()
        except aiohttp.WSServerHandshakeError as exc:
            # Status only, and no chained error: aiohttp's text includes the URL, and
            # with it the token.
            status = exc.status
            if status in (401, 403):
                raise _TokenRejected(f"handshake refused with HTTP {status}") from None
            if status == 404:
                raise _NoEndpoint("no executions WebSocket at this base URL (HTTP 404)") from None
            raise NetworkError(f"handshake refused with HTTP {status}") from None
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(f"cannot connect the executions WebSocket: {exc.os_error}") from exc
        except asyncio.TimeoutError as exc:  # aiohttp's own connect timeouts
            raise ConnectTimeoutError("the WebSocket handshake timed out") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise NetworkError(
                f"cannot open the executions WebSocket: {type(exc).__name__}"
            ) from exc

    async def _pump(self, ws: Socket) -> _Drop:
        """Read frames until the socket ends, pinging when idle and checking REST periodically."""
        policy, loop = self._policy, asyncio.get_running_loop()
        every = policy.reconcile_interval
        next_check = None if every is None else loop.time() + every
        ping_due, answer_due = loop.time() + policy.ping_interval, None
        while True:
            now = loop.time()
            if next_check is not None and now >= next_check:
                self.stats.reconciles += 1
                try:
                    await self._heal("reconcile", self._r.clock(), announce=False)
                except (APIStatusError, TransportError, DecodeError) as exc:
                    if is_permanent(exc):
                        raise
                    # The socket is healthy: keep it, and check REST again next interval.
                    logger.warning("periodic REST check failed (%s); will retry", exc)
                now = loop.time()
                next_check = now + (every or 0.0)
            deadline = answer_due if answer_due is not None else ping_due
            if next_check is not None:
                deadline = min(deadline, next_check)
            try:
                msg = await ws.receive(max(0.0, deadline - now) or 1e-6)
            except asyncio.TimeoutError:
                now = loop.time()
                if answer_due is not None and now >= answer_due:
                    return _Drop(None, "no frame within ping_timeout after a ping")
                if answer_due is None and now >= ping_due:
                    answer_due = now + policy.ping_timeout
                    try:
                        await ws.send_str(_PING)
                    except (aiohttp.ClientError, OSError) as exc:
                        failed = f"ping failed: {type(exc).__name__}"
                        return _Drop(None, failed, NetworkError(failed))
                continue
            ping_due, answer_due = loop.time() + policy.ping_interval, None
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                await self._on_frame(msg.data)
            elif msg.type is aiohttp.WSMsgType.ERROR:
                return _Drop(
                    ws.close_code, f"socket error: {msg.data!r}", NetworkError(str(msg.data))
                )
            else:  # CLOSE, CLOSING, CLOSED
                return _Drop(ws.close_code, str(msg.extra or "closed"))

    async def _on_frame(self, data: bytes | str) -> None:
        try:
            fill = decode_frame(data)
        except FrameError as exc:
            self.stats.unreadable += 1
            logger.warning("unreadable executions frame (%s); checking REST", exc)
            await self._heal("unreadable frame", self._r.clock(), announce=False)
            return
        if fill is not None:
            await self._offer(fill, live=True)

    async def _heal(self, reason: str, offline_since: float, *, announce: bool) -> None:
        """Queue the fills REST shows in the window below the mark and above it.

        Args:
            announce: yield a gap marker even if nothing was missing (reconnects).
        """
        tracker = self._tracker
        assert tracker is not None
        after = tracker.mark
        rows = await fetch_recent(
            self._r, tracker.lower_bound(), page_size=self._page_size, scope=self._scope
        )
        fresh = [f for f in rows if tracker.verdict(Watermark.of(f)) in _DELIVER]
        if self._gaps and (announce or fresh):
            gap = StreamGap(
                after=after,
                until=max(map(Watermark.of, fresh)) if fresh else None,
                recovered=len(fresh),
                reason=reason,
                offline_seconds=max(0.0, self._r.clock() - offline_since),
            )
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
