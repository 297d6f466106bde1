"""Keeping a stream's WebSocket connected: shared by the executions and price streams.

One :class:`Supervisor` per connection runs the cycle: a token (minted by
``POST /v1/keys/ws-token`` and shared by every connection of the stream while
fresh) → the handshake (bounded by ``open_timeout`` on the client's clock) →
the stream's own *session* on the open socket → the drop. Then it goes round
again: at once with a new token after close 4001 (or a handshake refused with
401/403), else after a jittered exponential backoff that resets once a
connection stayed up ``stable_after`` seconds and worked (one dropped for
silence after a ping, or whose subscription was never acknowledged, is a
failure toward ``max_failures`` however long it lasted). What a failure does is decided
by ``StreamPolicy.process_exception`` (by default: reconnect after what
``is_transient`` names, end with anything else, bugs included); a 404
handshake (no such WebSocket) ends it at once.

:func:`pump` is the read loop every session uses: frames to a callback, a JSON
ping when the socket is idle for ``ping_interval``, a replacement when nothing
answers within ``ping_timeout``, and an optional periodic duty.

:class:`SocketCount` counts, per client, the connections its streams hold, so a
stream can tell whether one more fits in the tier's ``max_ws_connections``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn

from ._clock import Clock
from ._config import ProcessException, StreamPolicy
from ._errors import (
    APIStatusError,
    ConnectTimeoutError,
    NetworkError,
    ReadTimeoutError,
    StreamClosedError,
    readable,
)
from ._hooks import ReconnectEvent
from ._requester import Requester
from ._retry import retry_if_transient
from ._tasks import cancel_and_wait
from ._transport import Request, WebSocket
from .models.orders import WsToken

__all__ = [
    "PING",
    "Drop",
    "SocketCount",
    "SocketStats",
    "Supervisor",
    "TokenCache",
    "escalate",
    "pump",
    "socket_count",
]

logger = logging.getLogger("polysim_async")

#: The JSON ping both channels answer with a ``pong`` (API.md §10.4).
PING = '{"action":"ping"}'
_TOKEN_INVALID = 4001

#: What a session does with an open socket: returns how it ended.
Session = Callable[[WebSocket, str, float], Awaitable["Drop"]]


@dataclass
class SocketStats:
    """Connection counters shared by every stream.

    Attributes:
        connects: sockets opened.
        token_mints: tokens minted.
        token_rejections: closes 4001 and handshakes refused with 401/403.
    """

    connects: int = 0
    token_mints: int = 0
    token_rejections: int = 0


@dataclass(frozen=True)
class Drop:
    """How a connection ended: the close code (``None`` if it broke), why, and the error.

    ``failed``: the connection was not working (silent after a ping, or a
    subscription never acknowledged), so it counts as a failed connection
    toward ``max_failures`` however long it stayed open.
    """

    code: int | None
    reason: str
    error: BaseException | None = None
    failed: bool = False


class _NoEndpoint(StreamClosedError):
    """The server has no such WebSocket at this URL (permanent)."""


class _TokenRejected(StreamClosedError):
    """The handshake was refused with 401/403: the token is bad or expired."""


def escalate(process: ProcessException, exc: Exception) -> None:
    """Raise what ``process`` makes of ``exc`` (the error that ends the stream), or
    return when it says to carry on."""
    fatal = process(exc)
    if fatal is exc:
        raise exc
    if fatal is not None:
        raise fatal from exc


class SocketCount:
    """The WebSocket connections one client's streams hold (the tier caps them per user)."""

    def __init__(self) -> None:
        self.held = 0


_counts: weakref.WeakKeyDictionary[Requester, SocketCount] = weakref.WeakKeyDictionary()


def socket_count(requester: Requester) -> SocketCount:
    """Return the :class:`SocketCount` of the client that owns ``requester``."""
    count = _counts.get(requester)
    if count is None:
        count = _counts[requester] = SocketCount()
    return count


@dataclass
class _Token:
    value: str
    expires: float


class TokenCache:
    """One stream's WebSocket token, minted when needed and shared by its connections.

    A token is reused for reconnects during the first 80 % of its life (API.md
    §10.1: it may be reused within its window); concurrent callers share one mint.
    """

    def __init__(
        self, mint: Callable[[], Awaitable[WsToken]], requester: Requester, stats: SocketStats
    ) -> None:
        self._mint = mint
        self._clock = requester.clock
        self._stats = stats
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        """Return a fresh token, minting one if needed.

        Raises:
            APIStatusError, TransportError: minting failed (after the request
                path's retries). Cancellation propagates.
        """
        async with self._lock:
            token = self._token
            if token is None or self._clock.now() >= token.expires:
                minted = await self._mint()
                self._stats.token_mints += 1
                token = _Token(minted.token, self._clock.now() + 0.8 * max(0, minted.expires_in))
                self._token = token
            return token.value

    def forget(self, value: str) -> None:
        """Drop ``value`` (the server refused it), unless a newer token replaced it already."""
        if self._token is not None and self._token.value == value:
            self._token = None


class Supervisor:
    """Keeps one connection of a stream alive: token, handshake, session, backoff.

    Args:
        channel: the stream's name in logs, hooks and errors (``"executions"``).
        path: the WebSocket's path.
        requester: the client's request path (transport, clock, hooks).
        tokens: the stream's :class:`TokenCache`.
        headers: sent with every handshake (never the API key: the token is in the query).
        policy: backoff, timeouts and what a failure does.
        stats: counters to update.
        rng: the backoff's jitter.
        reason: what the first session is told it recovers from.
    """

    def __init__(
        self,
        *,
        channel: str,
        path: str,
        requester: Requester,
        tokens: TokenCache,
        headers: Mapping[str, str],
        policy: StreamPolicy,
        stats: SocketStats,
        rng: random.Random,
        reason: str = "start",
    ) -> None:
        self._channel = channel
        self._path = path
        self._transport = requester.transport
        self._clock = requester.clock
        self._hooks = requester.hooks
        self._tokens = tokens
        self._headers = dict(headers)
        self._policy = policy
        self._stats = stats
        self._rng = rng
        self._reason = reason
        #: Decides what a failure does (see ``StreamPolicy.process_exception``).
        self.process: ProcessException = policy.process_exception or retry_if_transient

    async def run(self, session: Session) -> NoReturn:
        """Connect and run ``session(ws, reason, offline_since)`` on every connection, forever.

        ``reason`` says why the previous connection ended (or the ``reason``
        given at construction, the first time); ``offline_since`` is the clock
        time it ended. The socket is closed when the session returns or raises.

        Raises:
            StreamClosedError: ``policy.max_failures`` consecutive failures
                (chained to the last), or no such WebSocket at the base URL.
            The error ``policy.process_exception`` chose to end the stream with.
            Cancellation closes the socket and propagates.
        """
        clock, policy = self._clock, self._policy
        failures = 0
        rejected_before = False
        reason, offline_since = self._reason, clock.now()
        while True:
            opened: float | None = None
            token: str | None = None
            try:
                token = await self._tokens.get()
                ws = await self._open(token)
                opened = clock.now()
                self._stats.connects += 1
                try:
                    drop = await session(ws, reason, offline_since)
                finally:
                    await ws.close()
            except _NoEndpoint:
                raise
            except _TokenRejected as exc:
                drop = Drop(None, str(exc), exc)
            except Exception as exc:
                escalate(self.process, exc)
                drop = Drop(None, f"{type(exc).__name__}: {exc}", exc)
            offline_since = clock.now()
            # A connection that never worked is a failure however long it lasted.
            stable = (
                opened is not None
                and not drop.failed
                and offline_since - opened >= policy.stable_after
            )
            if stable:
                failures = 0
            rejected = drop.code == _TOKEN_INVALID or isinstance(drop.error, _TokenRejected)
            reason = drop.reason if drop.code is None else f"close {drop.code}: {drop.reason}"
            logger.info("%s stream dropped (%s); reconnecting", self._channel, reason)
            if rejected:
                self._stats.token_rejections += 1
                if token is not None:
                    self._tokens.forget(token)
                if stable or not rejected_before:
                    rejected_before = True
                    self._reconnecting(reason, failures, 0.0)
                    continue  # a fresh token, at once (API.md §10.6)
            rejected_before = rejected
            failures += 1
            if policy.max_failures is not None and failures > policy.max_failures:
                raise StreamClosedError(
                    f"{self._channel} stream gave up after {failures} failed connections: {reason}"
                ) from drop.error
            wait = policy.backoff(failures, self._rng)
            if isinstance(drop.error, APIStatusError) and drop.error.retry_after is not None:
                wait = max(wait, drop.error.retry_after)
            self._reconnecting(reason, failures, wait)
            await clock.sleep(wait)

    def _reconnecting(self, reason: str, failures: int, wait: float) -> None:
        if self._hooks.on_reconnect is not None:
            self._hooks.on_reconnect(ReconnectEvent(self._channel, reason, failures, wait))

    async def _open(self, token: str) -> WebSocket:
        """Open the socket within ``policy.open_timeout`` (on the clock).

        The handshake runs as a child task bounded with ``asyncio.wait``: on
        Python < 3.12, ``asyncio.wait_for`` can swallow a cancellation that
        coincides with completion, which would leave this task running after
        the stream is closed.
        """
        request = Request("GET", self._path, {"token": token}, None, self._headers, websocket=True)
        handshake = asyncio.ensure_future(self._transport.websocket(request))
        timer = asyncio.ensure_future(self._clock.sleep(self._policy.open_timeout))
        try:
            await asyncio.wait({handshake, timer}, return_when=asyncio.FIRST_COMPLETED)
            # Still inside the ``try``: a cancellation while the timer winds down
            # must close a socket that has already opened.
            await cancel_and_wait([timer])
        except BaseException:
            # Cancelled (the stream is closing): a socket that opened meanwhile is closed.
            await _discard(handshake)
            await cancel_and_wait([timer])
            raise
        if not handshake.done():
            await _discard(handshake)
            raise ConnectTimeoutError("the WebSocket handshake timed out")
        refused = handshake.exception()
        if isinstance(refused, APIStatusError) and refused.status in (401, 403, 404):
            # Raised here, outside any ``except``: nothing else is chained to it.
            if refused.status == 404:
                raise _NoEndpoint(f"no {self._channel} WebSocket at this base URL (HTTP 404)")
            raise _TokenRejected(f"WebSocket handshake refused with HTTP {refused.status}")
        return handshake.result()


async def pump(
    ws: WebSocket,
    *,
    clock: Clock,
    policy: StreamPolicy,
    on_frame: Callable[[str | bytes], Awaitable[None]],
    send: Callable[[str], Awaitable[None]] | None = None,
    every: float | None = None,
    duty: Callable[[], Awaitable[Drop | None]] | None = None,
    soon: Callable[[], bool] | None = None,
) -> Drop:
    """Read frames until the socket ends, pinging when idle.

    Args:
        on_frame: called with every frame, in order, before the next is read.
        send: how to send the ping (``ws.send`` unless the stream serialises its sends).
        every: seconds between calls of ``duty`` (``None``: never periodically).
        duty: a periodic task run between frames (the executions stream's REST
            check, the price stream's acknowledgement check); a :class:`Drop` it
            returns ends the read loop with that drop.
        soon: asked before each read; while it returns true, ``duty`` also runs
            as soon as no frame is waiting (the frames already received are read
            first, so a burst of triggers costs one run). ``duty`` must make it
            return false, or it runs at every quiet moment.

    Returns:
        How the socket ended: closed by the server (its code and reason), broken,
        or silent for ``ping_timeout`` after a ping (a failed connection
        whatever its duration), or what ``duty`` returned. Errors of
        ``on_frame`` and ``duty`` propagate; so does cancellation.
    """
    send = send or ws.send
    next_due = None if every is None or duty is None else clock.now() + every
    ping_due, answer_due = clock.now() + policy.ping_interval, None
    while True:
        now = clock.now()
        if next_due is not None and duty is not None and now >= next_due:
            if (ended := await duty()) is not None:
                return ended
            now = clock.now()
            next_due = now + (every or 0.0)
        deadline = answer_due if answer_due is not None else ping_due
        if next_due is not None:
            deadline = min(deadline, next_due)
        urgent = duty is not None and soon is not None and soon()
        try:
            # When the duty is urgent, only a frame already waiting is read first.
            data = await ws.receive(0.0 if urgent else max(0.0, deadline - now))
        except ReadTimeoutError:
            if urgent and duty is not None:
                if (ended := await duty()) is not None:
                    return ended
                if next_due is not None:
                    next_due = clock.now() + (every or 0.0)
                continue
            now = clock.now()
            if answer_due is not None and now >= answer_due:
                return Drop(None, "no frame within ping_timeout after a ping", failed=True)
            if answer_due is None and now >= ping_due:
                answer_due = now + policy.ping_timeout
                try:
                    await send(PING)
                except NetworkError as exc:
                    return Drop(None, f"ping failed: {exc}", exc)
            continue
        except NetworkError as exc:
            return Drop(None, f"socket error: {exc}", exc)
        if data is None:
            return Drop(ws.close_code, readable(ws.close_reason, 120) or "closed")
        ping_due, answer_due = clock.now() + policy.ping_interval, None
        await on_frame(data)


async def _discard(handshake: asyncio.Future[WebSocket]) -> None:
    """Cancel a handshake, wait for it to end, and close the socket if it opened anyway."""
    await cancel_and_wait([handshake])
    if not handshake.cancelled() and handshake.exception() is None:
        await handshake.result().close()
