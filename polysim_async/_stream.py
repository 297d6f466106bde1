"""The reconnecting executions stream: token, socket, pings, backoff, REST backfill, queue.

With :mod:`._transport`, the only module that touches aiohttp's WebSocket
classes; their exceptions are translated here. One supervisor task per stream
owns the socket and feeds a bounded queue; the consumer reads the queue.

Connection cycle: mint a token (reused while fresh) → open the socket → heal
from REST (the fills above the queued watermark) → read live frames. Any drop
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

from ._config import RetryPolicy
from ._errors import (
    APIStatusError,
    ClientClosedError,
    ConnectError,
    ConnectTimeoutError,
    InvalidArgumentError,
    NetworkError,
    StreamClosedError,
    UsageError,
)
from ._fills import FillTracker, FrameError, Verdict, decode_frame, fetch_head, fetch_since
from ._requester import Requester
from .models.executions import Fill
from .models.orders import WsToken
from .models.streams import StreamGap, Watermark

__all__ = ["FillStream", "ReconnectPolicy", "SessionFactory", "StreamStats"]

logger = logging.getLogger("polysim_async")

E = TypeVar("E", Fill, Fill | StreamGap)
SessionFactory = Callable[[], aiohttp.ClientSession]
Socket = aiohttp.ClientWebSocketResponse[bool]

_PING = '{"action":"ping"}'
_TOKEN_INVALID = 4001
_CLOSE_TIMEOUT = 5.0


@dataclass(frozen=True)
class ReconnectPolicy:
    """How the executions stream reconnects and keeps its socket alive.

    Attributes:
        backoff_base: first wait after a drop, in seconds; doubles per
            consecutive failure, each wait shortened at random by up to half.
        backoff_max: ceiling of one wait.
        stable_after: a connection that stayed up this long resets the backoff.
        max_failures: consecutive failed connections (without a stable one in
            between) after which the stream ends with :class:`StreamClosedError`;
            ``None`` retries forever.
        ping_interval: idle seconds before a JSON ping is sent.
        ping_timeout: seconds to wait for any frame after a ping before the
            socket is taken for dead and replaced.
        open_timeout: seconds allowed for the WebSocket handshake.
        dedupe_window: seconds of fill time below the newest fill for which seen
            fills are remembered, to tell a duplicate from a late fill.
    """

    backoff_base: float = 0.5
    backoff_max: float = 30.0
    stable_after: float = 10.0
    max_failures: int | None = None
    ping_interval: float = 20.0
    ping_timeout: float = 10.0
    open_timeout: float = 10.0
    dedupe_window: float = 600.0

    def __post_init__(self) -> None:
        # RetryPolicy validates the same kind of numbers; reuse its messages.
        RetryPolicy(backoff_base=self.backoff_base, backoff_max=self.backoff_max)
        for name in ("stable_after", "ping_interval", "ping_timeout", "open_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise InvalidArgumentError(f"ReconnectPolicy.{name} must be > 0, got {value!r}")
        if not isinstance(self.dedupe_window, (int, float)) or self.dedupe_window < 0:
            raise InvalidArgumentError("ReconnectPolicy.dedupe_window must be >= 0")
        if self.max_failures is not None and (
            isinstance(self.max_failures, bool)
            or not isinstance(self.max_failures, int)
            or self.max_failures < 0
        ):
            raise InvalidArgumentError("ReconnectPolicy.max_failures must be an int >= 0 or None")

    def backoff(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after ``failures`` consecutive failures (>= 1), with equal jitter."""
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** max(0, failures - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass
class StreamStats:
    """Counters of one stream, for applications and tests to read.

    Attributes:
        connects: sockets opened.
        token_mints: tokens minted.
        token_rejections: closes 4001 and handshakes refused with 401/403.
        live: fills queued from live frames.
        recovered: fills queued from the REST backfill.
        duplicates: frames or rows dropped because their fill was already queued.
        late: fills queued out of order because they became visible late.
        stale: unseen fills older than the dedupe window, dropped with a warning.
        unreadable: frames that could not be read (each triggers a REST heal).
    """

    connects: int = 0
    token_mints: int = 0
    token_rejections: int = 0
    live: int = 0
    recovered: int = 0
    duplicates: int = 0
    late: int = 0
    stale: int = 0
    unreadable: int = 0


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


def _permanent(exc: BaseException) -> bool:
    if isinstance(exc, (UsageError, _NoEndpoint)):
        return True
    return (
        isinstance(exc, APIStatusError)
        and 400 <= exc.status < 500
        and exc.status
        not in (
            408,
            425,
            429,
        )
    )


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
        since: Watermark | None,
        gaps: bool,
        queue_size: int,
        policy: ReconnectPolicy,
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
        self._tracker = FillTracker(since, window=policy.dedupe_window)
        self._position = since
        # The first connection after a start without ``since`` heals quietly.
        self._quiet_heal = since is None
        self._queue: asyncio.Queue[Fill | StreamGap | _End] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._finished = False
        #: Counters; read them, don't write them.
        self.stats = StreamStats()

    @property
    def position(self) -> Watermark | None:
        """The newest fill handed to the consumer (or the starting point); save it to resume.

        ``None`` only before a stream started without ``since`` is entered; for
        an account without any fill it is :meth:`Watermark.beginning`.
        """
        return self._position

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
        if self._position is None:
            tracker = self._tracker
            await fetch_head(self._r, tracker, page_size=self._page_size, scope=self._scope)
            if tracker.mark is None:  # no fill yet: every fill to come is new
                tracker.mark = Watermark.beginning()
            self._position = tracker.mark
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
        reason, offline_since = "resume", clock()
        while True:
            opened: float | None = None
            try:
                if token is None or clock() >= token.expires:
                    token = await self._new_token()
                ws = await self._open(token.value)
                opened = clock()
                self.stats.connects += 1
                try:
                    await self._heal(reason, offline_since)
                    drop = await self._pump(ws)
                finally:
                    await ws.close()
            except Exception as exc:
                if _permanent(exc):
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
        session = self._session()
        try:
            connecting = session.ws_connect(
                self._url,
                params={"token": token},
                decode_text=False,
                autoping=True,
                autoclose=True,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=_CLOSE_TIMEOUT),
            )
            return await asyncio.wait_for(connecting, self._policy.open_timeout)
        except aiohttp.WSServerHandshakeError as exc:
            # The message names the status only: the URL carries the token.
            if exc.status in (401, 403):
                raise _TokenRejected(f"handshake refused with HTTP {exc.status}") from exc
            if exc.status == 404:
                raise _NoEndpoint("no executions WebSocket at this base URL (HTTP 404)") from exc
            raise NetworkError(f"handshake refused with HTTP {exc.status}") from exc
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(f"cannot connect the executions WebSocket: {exc.os_error}") from exc
        except asyncio.TimeoutError as exc:
            raise ConnectTimeoutError("the WebSocket handshake timed out") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise NetworkError(f"cannot open the executions WebSocket: {exc!r}") from exc

    async def _pump(self, ws: Socket) -> _Drop:
        """Read frames until the socket ends; return why it ended."""
        policy = self._policy
        pinged = False
        while True:
            try:
                msg = await ws.receive(policy.ping_timeout if pinged else policy.ping_interval)
            except asyncio.TimeoutError:
                if pinged:
                    return _Drop(None, "no frame within ping_timeout after a ping")
                pinged = True
                try:
                    await ws.send_str(_PING)
                except (aiohttp.ClientError, OSError) as exc:
                    return _Drop(None, f"ping failed: {exc!r}", NetworkError(str(exc)))
                continue
            pinged = False
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
            logger.warning("unreadable executions frame (%s); healing from REST", exc)
            await self._heal("unreadable frame", self._r.clock())
            return
        if fill is not None:
            await self._offer(fill, live=True)

    async def _heal(self, reason: str, offline_since: float) -> None:
        tracker = self._tracker
        after = tracker.mark
        fills = await fetch_since(self._r, tracker, page_size=self._page_size, scope=self._scope)
        quiet, self._quiet_heal = self._quiet_heal, False
        if self._gaps and not quiet:
            gap = StreamGap(
                after=after,
                until=Watermark.of(fills[-1]) if fills else None,
                recovered=len(fills),
                reason=reason,
                offline_seconds=max(0.0, self._r.clock() - offline_since),
            )
            await self._queue.put(gap)
        for fill in fills:
            await self._offer(fill, live=False)

    async def _offer(self, fill: Fill, *, live: bool) -> None:
        key = Watermark.of(fill)
        verdict = self._tracker.verdict(key)
        if verdict is Verdict.DUPLICATE:
            self.stats.duplicates += 1
            return
        if verdict is Verdict.STALE:
            self.stats.stale += 1
            logger.warning("fill %s is older than the dedupe window; taken as seen", key)
            return
        if verdict is Verdict.LATE:
            self.stats.late += 1
            logger.warning("fill %s became visible after newer fills; delivered late", key)
        elif live:
            self.stats.live += 1
        else:
            self.stats.recovered += 1
        self._tracker.remember(key)
        await self._queue.put(fill)
