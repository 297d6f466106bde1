"""The price stream: ``async with client.prices.stream(market_ids) as prices:``.

Markets are spread over *lanes*, one WebSocket connection each to
``/v1/ws/prices``, holding at most :data:`MAX_PRICE_SUBSCRIPTIONS` condition
ids (the server's cap per connection). Each lane is kept connected by a
:class:`~polysim_async._wsloop.Supervisor`, the code the executions stream
uses: the same token reuse, handshake timeout, pings, backoff, 4001 handling
and ``process_exception`` rule. The server forgets subscriptions with the
connection, so every (re)connection starts by subscribing the lane's whole set;
after a reconnection's subscription is answered, the lane's REST prices
(``POST /v1/prices/batch``) fill in the changes made while it was down.

Every subscribe or unsubscribe frame is answered, in order, by one
``subscribed`` frame (or an ``error`` frame, a refusal), so the lane keeps the
frames it sent in a queue and pairs each answer with the oldest. A caller of
:meth:`PriceStream.subscribe` waits for its answer; one whose connection drops
first waits for the answer to the next connection's subscription. A frame left
unanswered for ``policy.open_timeout`` (checked every half of it) drops the
connection as a failed one (toward ``max_failures``), and the next connection
subscribes again.

Buffering ("latest price wins"): the stream keeps, per market, only the newest
tick not yet read, and hands markets out in the order their unread ticks first
arrived. Memory is bounded by the number of markets, the socket is never
throttled by a slow consumer, and a consumer never acts on a price that was
already superseded when it read it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import warnings
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal

from ._clock import Clock
from ._codec import encode
from ._config import StreamPolicy
from ._errors import (
    APIStatusError,
    ClientClosedError,
    DecodeError,
    InvalidArgumentError,
    NetworkError,
    StreamClosedError,
    SubscriptionLimitError,
    SubscriptionRefusedError,
    TransportError,
    readable,
)
from ._requester import Requester
from ._tasks import cancel_and_wait, consume_outcome
from ._tiers import tier_book, ws_connection_limit
from ._transport import WebSocket
from ._validation import check_str
from ._wsloop import Drop, SocketStats, Supervisor, TokenCache, pump, socket_count
from .models.executions import FrameError
from .models.markets import MarketPrice
from .models.orders import WsToken
from .models.prices import (
    MAX_PRICE_SUBSCRIPTIONS,
    PriceCommand,
    PriceErrorFrame,
    PriceTick,
    SubscribedFrame,
    decode_price_frame,
)

__all__ = ["PriceStream", "PriceStreamStats", "market_list", "spread"]

logger = logging.getLogger("polysim_async")

_PATH = "/v1/ws/prices"


@dataclass
class PriceStreamStats(SocketStats):
    """Counters of one price stream (all its connections), for applications and tests.

    Attributes:
        connects: sockets opened.
        token_mints: tokens minted.
        token_rejections: closes 4001 and handshakes refused with 401/403.
        ticks: price frames received for subscribed markets.
        coalesced: ticks replaced by a newer one of the same market before
            they were read ("latest price wins").
        ignored: ticks of markets not (or no longer) subscribed.
        errors: ``error`` frames received (each is logged as a WARNING).
        unreadable: frames that could not be read (counted, logged, skipped).
        healed: ticks made from ``POST /v1/prices/batch`` after a reconnection,
            for markets whose price changed while the connection was down.
    """

    ticks: int = 0
    healed: int = 0
    coalesced: int = 0
    ignored: int = 0
    errors: int = 0
    unreadable: int = 0


def spread(loads: Sequence[int], count: int, per: int) -> tuple[list[int], list[int]]:
    """Place ``count`` new markets on connections holding ``loads`` markets each (pure).

    Existing connections are filled first, the emptiest first, up to ``per``
    each; the rest go to as few new connections as can hold them, balanced.

    Returns:
        How many new markets each existing connection takes, and the sizes of
        the new connections needed.
    """
    added = [0] * len(loads)
    left = count
    while left:
        room = [i for i, load in enumerate(loads) if load + added[i] < per]
        if not room:
            break
        emptiest = min(room, key=lambda i: loads[i] + added[i])
        added[emptiest] += 1
        left -= 1
    lanes = -(-left // per)
    fresh = [left // lanes + (1 if i < left % lanes else 0) for i in range(lanes)]
    return added, fresh


def market_list(market_ids: Sequence[str]) -> list[str]:
    """The condition ids of ``market_ids``, checked, in order.

    Raises:
        InvalidArgumentError: a bare string, not a sequence, or a bad id.
    """
    if isinstance(market_ids, (str, bytes)) or not isinstance(market_ids, Sequence):
        raise InvalidArgumentError("market_ids must be a list of condition ids")
    return [check_str("market_id", market_id, max_len=256) for market_id in market_ids]


@dataclass(eq=False)
class _Command:
    """A subscribe or unsubscribe frame sent, and who waits for its answer."""

    action: Literal["subscribe", "unsubscribe"]
    markets: list[str]
    waiters: list[asyncio.Future[None]]
    sent_at: float = 0.0  # the clock's time it was sent
    heal: bool = False  # a reconnection's subscription: read REST prices once answered


def _resolve(waiters: list[asyncio.Future[None]], error: BaseException | None = None) -> None:
    for waiter in waiters:
        if not waiter.done():
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)


def _answer() -> asyncio.Future[None]:
    """A future for a server's answer; its error never goes unretrieved (a caller
    that stopped waiting leaves it behind)."""
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiter.add_done_callback(consume_outcome)
    return waiter


@dataclass(eq=False)
class _Lane:
    """One connection of the stream: its markets, its socket, its unanswered frames."""

    number: int
    supervisor: Supervisor
    clock: Clock
    markets: dict[str, None] = field(default_factory=dict)
    ws: WebSocket | None = None
    sent: deque[_Command] = field(default_factory=deque)
    # Waiting for the next connection's subscription to be answered.
    waiting: list[asyncio.Future[None]] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    task: asyncio.Task[None] | None = None
    connected: bool = False  # a connection was opened before (the next one heals)

    async def send_text(self, text: str) -> None:
        """Send a frame on the current socket (one sender at a time).

        Raises:
            NetworkError: not connected, or the socket broke.
        """
        async with self.lock:
            if self.ws is None:
                raise NetworkError("the price connection is closed")
            await self.ws.send(text)

    async def command(self, cmd: _Command) -> None:
        """Send ``cmd``, to be answered in order; never raises a transport error.

        Not connected: a subscription waits for the next connection's answer
        (which covers the lane's whole set), an unsubscription is done (the next
        connection will not subscribe those markets). If sending fails, the
        reader sees the broken socket and :meth:`roll_over` settles ``cmd``.
        """
        async with self.lock:
            ws = self.ws
            if ws is not None:
                cmd.sent_at = self.clock.now()
                self.sent.append(cmd)
                text = encode(PriceCommand(action=cmd.action, markets=cmd.markets)).decode()
                try:
                    await ws.send(text)
                except NetworkError as exc:
                    logger.debug("price %s not sent (%s); reconnecting settles it", cmd.action, exc)
                return
        self._settle_unanswered(cmd)

    def roll_over(self) -> None:
        """The connection ended: settle every frame it did not answer."""
        unanswered, self.sent = self.sent, deque()
        for cmd in unanswered:
            self._settle_unanswered(cmd)

    def _settle_unanswered(self, cmd: _Command) -> None:
        if cmd.action == "subscribe":
            self.waiting += cmd.waiters
        else:
            _resolve(cmd.waiters)

    def all_waiters(self) -> list[asyncio.Future[None]]:
        waiters = list(self.waiting)
        for cmd in self.sent:
            waiters += cmd.waiters
        return waiters


class PriceStream:
    """Live prices of a set of markets over one or more WebSockets; see ``client.prices.stream``.

    Use it as ``async with client.prices.stream(ids) as prices: async for tick in prices:``.
    Entering returns once every connection has subscribed its markets, so every
    price change after that is delivered. :meth:`subscribe` and
    :meth:`unsubscribe` change the set while it runs.

    Buffering, "latest price wins": per market only the newest unread tick is
    kept (``stats.coalesced`` counts the ones replaced); markets come out in
    the order their unread ticks first arrived. A slow consumer never slows the
    socket and never reads a price that was already superseded.

    Cancellation: cancelling the consumer (or leaving the ``async with``)
    cancels every connection's task and closes its socket before ``__aexit__``
    returns.
    """

    def __init__(
        self,
        *,
        requester: Requester,
        mint: Callable[[], Awaitable[WsToken]],
        fetch: Callable[[list[str]], Awaitable[list[MarketPrice]]],
        user_agent: str,
        markets: list[str],
        policy: StreamPolicy,
        rng: random.Random | None = None,
    ) -> None:
        self._requester = requester
        self._policy = policy
        self._fetch = fetch
        self._rng = rng or random.Random()
        self._headers = {"User-Agent": user_agent}
        self._initial = markets
        #: Counters; read them, don't write them.
        self.stats = PriceStreamStats()
        self._tokens = TokenCache(mint, requester, self.stats)
        self._sockets = socket_count(requester)
        self._lanes: list[_Lane] = []
        self._lane_of: dict[str, _Lane] = {}
        self._numbered = 0
        self._latest: dict[str, PriceTick] = {}
        self._seen: dict[str, PriceTick] = {}  # the last tick of each market, read or not
        # The answer each market's subscription in flight waits for (later callers share it).
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self._ready = asyncio.Event()
        self._plan = asyncio.Lock()
        self._entered = False
        self._closed = False
        self._failure: BaseException | None = None
        self._raised = False

    @property
    def markets(self) -> list[str]:
        """The subscribed condition ids, in the order they were added."""
        return list(self._lane_of)

    @property
    def connections(self) -> int:
        """The WebSocket connections the stream holds (each re-opened after a drop)."""
        return len(self._lanes)

    async def __aenter__(self) -> PriceStream:
        """Open the connections the markets need and wait until each has subscribed.

        Transient failures meanwhile are retried as the policy says, so this
        may wait through an outage (bound it with ``asyncio.timeout`` or
        ``policy.max_failures``). A connection whose subscription is not
        acknowledged within ``policy.open_timeout``, or that goes silent after
        a ping, counts as a failed connection however long it stayed open.

        Raises:
            ClientClosedError: the stream was entered before.
            SubscriptionLimitError: the markets need more connections than the
                tier allows (nothing was opened).
            The error that ended the stream before the subscriptions were
            answered (see :meth:`__anext__`). Cancellation closes everything.
        """
        if self._entered:
            raise ClientClosedError("a price stream can be entered only once")
        self._entered = True
        try:
            await self._settle(await self._add(self._initial))
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
        """Close every connection and stop its task; idempotent.

        A consumer waiting in another task ends (``StopAsyncIteration``);
        pending :meth:`subscribe` calls raise ``ClientClosedError``. If the
        caller is cancelled while waiting, the tasks are already cancelled and
        finish on their own.
        """
        self._closed = True
        lanes, self._lanes = self._lanes, []
        self._sockets.held -= len(lanes)
        self._lane_of.clear()
        self._latest.clear()
        self._seen.clear()
        self._ready.set()
        closed = ClientClosedError("the price stream was closed")
        for lane in lanes:
            _resolve(lane.all_waiters(), closed)
        await cancel_and_wait([lane.task for lane in lanes if lane.task is not None])

    def __del__(self) -> None:
        # Warn only; no I/O in a finalizer.
        lanes: list[_Lane] = getattr(self, "_lanes", [])
        if any(lane.task is not None and not lane.task.done() for lane in lanes):
            warnings.warn(
                "a PriceStream was never closed; use 'async with client.prices.stream(...)'",
                ResourceWarning,
                stacklevel=2,
            )

    def __aiter__(self) -> PriceStream:
        return self

    async def __anext__(self) -> PriceTick:
        """Return the newest unread tick of the market whose unread ticks are oldest.

        Raises:
            StopAsyncIteration: the stream was closed.
            ClientClosedError: used before entering its ``async with`` block.
            AuthenticationError, PermissionDeniedError: minting a token was refused.
            SubscriptionRefusedError: the server refused a subscription.
            StreamClosedError: ``max_failures`` consecutive failures of one
                connection, or no price WebSocket at the base URL.
            The error ``policy.process_exception`` chose to end the stream with.
            The error is raised once, at once (unread ticks are dropped: they are
            stale); iterating again then stops.
        """
        if not self._entered:
            raise ClientClosedError("enter the stream first: `async with ... as prices:`")
        while True:
            if self._failure is not None and not self._raised:
                self._raised = True
                raise self._failure
            if self._closed or self._failure is not None:
                raise StopAsyncIteration
            while self._latest:
                key = next(iter(self._latest))
                tick = self._latest.pop(key)
                if key in self._lane_of:
                    return tick
            self._ready.clear()
            await self._ready.wait()

    async def subscribe(self, market_ids: Sequence[str]) -> None:
        """Add markets to the stream; return once the server has acknowledged them.

        New markets go to connections with room first (at most 50 each), then
        to new connections, within the tier's ``max_ws_connections`` (learned
        from ``GET /v1/keys/tiers`` and the key's tier, once per client, and
        counting the connections of this client's other streams). Markets
        already subscribed are left as they are; one whose subscription another
        caller is still waiting for is waited for too (this returns only once
        the server acknowledged it). If a connection drops before
        its answer, this waits for the reconnection's subscription; an answer
        that does not come within ``policy.open_timeout`` drops the connection
        (a failed one, toward ``max_failures``) and the reconnection subscribes
        again.

        Raises:
            InvalidArgumentError: a bare string or a bad id (nothing sent).
            SubscriptionLimitError: the markets do not fit (nothing subscribed).
            SubscriptionRefusedError: the server refused; the stream ends with it.
            ClientClosedError: the stream is not entered, or was closed meanwhile.
            StreamClosedError: the stream has ended (chained to why).

        Cancellation stops the wait only; the markets stay subscribed.
        """
        await self._settle(await self._add(market_list(market_ids)))

    async def unsubscribe(self, market_ids: Sequence[str]) -> None:
        """Remove markets from the stream; return once the server has acknowledged it.

        No tick of these markets is yielded after this returns (unread ones are
        dropped). Ids that are not subscribed are ignored. A connection left
        with no market is closed.

        Raises:
            InvalidArgumentError: a bare string or a bad id.
            SubscriptionRefusedError: the server refused; the stream ends with it.
            ClientClosedError, StreamClosedError: as :meth:`subscribe`.

        Cancellation stops the wait only; the markets are already removed.
        """
        ids = market_list(market_ids)
        waiters: list[asyncio.Future[None]] = []
        async with self._plan:
            self._check_open()
            gone: dict[_Lane, list[str]] = {}
            for market_id in dict.fromkeys(ids):
                lane = self._lane_of.pop(market_id, None)
                self._latest.pop(market_id, None)
                self._seen.pop(market_id, None)
                if lane is not None:
                    del lane.markets[market_id]
                    gone.setdefault(lane, []).append(market_id)
            for lane, markets in gone.items():
                if not lane.markets:
                    await self._close_lane(lane)
                    continue
                waiter = _answer()
                waiters.append(waiter)
                await lane.command(_Command("unsubscribe", markets, [waiter]))
        await self._settle(waiters)

    # -- planning ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if not self._entered:
            raise ClientClosedError("enter the stream first: `async with ... as prices:`")
        if self._failure is not None:
            raise StreamClosedError(f"the price stream has ended: {self._failure}") from (
                self._failure
            )
        if self._closed:
            raise ClientClosedError("the price stream was closed")

    async def _add(self, ids: list[str]) -> list[asyncio.Future[None]]:
        """Place ``ids`` on connections and send their subscriptions; return the waiters."""
        async with self._plan:
            self._check_open()
            wanted = dict.fromkeys(ids)
            new = [m for m in wanted if m not in self._lane_of]
            # Markets another caller is subscribing: wait for the same answer.
            waiters = list(
                dict.fromkeys(
                    waiter
                    for m in wanted
                    if (waiter := self._inflight.get(m)) is not None and not waiter.done()
                )
            )
            if not new:
                return waiters
            added, fresh = spread(
                [len(lane.markets) for lane in self._lanes], len(new), MAX_PRICE_SUBSCRIPTIONS
            )
            if fresh:
                await self._check_room(len(fresh), len(self._lane_of) + len(new))
                self._check_open()
            queue = iter(new)
            for lane, count in zip(list(self._lanes), added, strict=True):
                if count:
                    markets = [next(queue) for _ in range(count)]
                    self._assign(lane, markets)
                    waiter = self._answer_for(markets)
                    waiters.append(waiter)
                    await lane.command(_Command("subscribe", markets, [waiter]))
            loop = asyncio.get_running_loop()
            for size in fresh:
                lane = self._open_lane()
                markets = [next(queue) for _ in range(size)]
                self._assign(lane, markets)
                waiter = self._answer_for(markets)
                waiters.append(waiter)
                lane.waiting.append(waiter)
                lane.task = loop.create_task(self._run_lane(lane))
            return waiters

    async def _check_room(self, new_lanes: int, total_markets: int) -> None:
        """Refuse when ``new_lanes`` more connections do not fit in the tier's cap."""
        mine = len(self._lanes)
        others = self._sockets.held - mine
        if others + mine + new_lanes <= 1:
            return  # every tier allows one connection: no lookup needed
        limit = await ws_connection_limit(self._requester)
        if limit is None or others + mine + new_lanes <= limit:
            return  # unknown: the server decides (close 4002, then backoff)
        tier = tier_book(self._requester).tier or "key's"
        needed = mine + new_lanes
        raise SubscriptionLimitError(
            f"{total_markets} markets need {needed} WebSocket connection(s) of at most "
            f"{MAX_PRICE_SUBSCRIPTIONS} markets each, but the {tier} tier allows {limit} per "
            f"user and this client's other streams hold {others}; subscribe fewer markets "
            "or close another stream",
            needed=needed,
            available=max(0, limit - others),
        )

    def _answer_for(self, markets: list[str]) -> asyncio.Future[None]:
        """A future for the answer to subscribing ``markets``, shared by later callers."""
        waiter = _answer()
        for market_id in markets:
            self._inflight[market_id] = waiter

        def done(future: asyncio.Future[None]) -> None:
            for market_id in markets:
                if self._inflight.get(market_id) is future:
                    del self._inflight[market_id]

        waiter.add_done_callback(done)
        return waiter

    def _assign(self, lane: _Lane, markets: list[str]) -> None:
        for market_id in markets:
            lane.markets[market_id] = None
            self._lane_of[market_id] = lane

    def _open_lane(self) -> _Lane:
        self._numbered += 1
        supervisor = Supervisor(
            channel="prices",
            path=_PATH,
            requester=self._requester,
            tokens=self._tokens,
            headers=self._headers,
            policy=self._policy,
            stats=self.stats,
            rng=self._rng,
        )
        lane = _Lane(self._numbered, supervisor, self._requester.clock)
        self._lanes.append(lane)
        self._sockets.held += 1
        return lane

    async def _close_lane(self, lane: _Lane) -> None:
        self._lanes.remove(lane)
        self._sockets.held -= 1
        _resolve(lane.all_waiters())  # their markets are gone: nothing left to wait for
        if lane.task is not None:
            await cancel_and_wait([lane.task])

    async def _settle(self, waiters: list[asyncio.Future[None]]) -> None:
        """Wait for every answer; raise the first failure (every one is retrieved).

        Cancellation stops this caller's wait only: another caller may wait for
        the same answer.
        """
        if not waiters:
            return
        await asyncio.wait(waiters)
        errors = [waiter.exception() for waiter in waiters]
        for error in errors:
            if error is not None:
                raise error

    # -- the connections ---------------------------------------------------------------

    async def _run_lane(self, lane: _Lane) -> None:
        try:
            await lane.supervisor.run(functools.partial(self._session, lane))
        except Exception as exc:  # CancelledError is not an Exception: it propagates.
            self._fail(exc)

    def _fail(self, error: BaseException) -> None:
        """A connection ended the stream: stop the others, fail every waiter, wake the consumer."""
        if self._closed or self._failure is not None:
            return
        self._failure = error
        self._ready.set()
        for lane in self._lanes:
            _resolve(lane.all_waiters(), error)
            if lane.task is not None and lane.task is not asyncio.current_task():
                lane.task.cancel()

    async def _session(self, lane: _Lane, ws: WebSocket, reason: str, since: float) -> Drop:
        """Subscribe the lane's whole set, then read frames until the socket ends."""
        lane.ws = ws
        heal, lane.connected = lane.connected, True
        try:
            if lane.markets:
                waiters, lane.waiting = lane.waiting, []
                cmd = _Command("subscribe", list(lane.markets), waiters, heal=heal)
                await lane.command(cmd)
            return await pump(
                ws,
                clock=self._requester.clock,
                policy=self._policy,
                on_frame=functools.partial(self._on_frame, lane),
                send=lane.send_text,
                every=self._policy.open_timeout / 2,
                duty=functools.partial(self._check_answered, lane),
            )
        finally:
            lane.ws = None
            lane.roll_over()

    async def _check_answered(self, lane: _Lane) -> Drop | None:
        """Drop the connection when its oldest frame went unanswered for ``open_timeout``.

        A server that keeps the socket open (even answering pings) but never
        acknowledges a subscription is not working: the drop counts as a failed
        connection toward ``max_failures``, and the reconnection subscribes again.
        """
        if not lane.sent:
            return None
        oldest, limit = lane.sent[0], self._policy.open_timeout
        if self._requester.clock.now() - oldest.sent_at < limit:
            return None
        return Drop(None, f"a {oldest.action} was not acknowledged within {limit:g} s", failed=True)

    async def _on_frame(self, lane: _Lane, data: str | bytes) -> None:
        try:
            frame = decode_price_frame(data)
        except FrameError as exc:
            self.stats.unreadable += 1
            logger.warning("unreadable price frame (%s); skipped", exc)
            return
        if isinstance(frame, PriceTick):
            self._offer(frame)
        elif isinstance(frame, SubscribedFrame):
            if lane.sent:
                answered = lane.sent.popleft()
                _resolve(answered.waiters)
                if answered.heal:
                    await self._heal(answered.markets)
                    # The time spent reading REST was ours, not the server's: frames
                    # still unanswered get their full ``open_timeout`` from now.
                    now = self._requester.clock.now()
                    for cmd in lane.sent:
                        cmd.sent_at = max(cmd.sent_at, now)
        elif isinstance(frame, PriceErrorFrame):
            self.stats.errors += 1
            message = readable(frame.message or "", 200)
            if not lane.sent:
                logger.warning("the price feed sent an error frame: %s", message)
                return
            cmd = lane.sent.popleft()
            refused = SubscriptionRefusedError(
                f"the price feed refused to {cmd.action} {len(cmd.markets)} market(s): {message}",
                markets=cmd.markets,
                server_message=message,
            )
            logger.warning("%s", refused)
            _resolve(cmd.waiters, refused)
            # Permanent whatever ``process_exception`` says (the same frame would be
            # refused again): end the stream, this connection included.
            self._fail(refused)
            current = asyncio.current_task()
            if current is not None and current is lane.task:
                current.cancel()
            raise refused

    async def _heal(self, markets: list[str]) -> None:
        """After a reconnection's subscription is answered: offer a tick for every
        market whose REST price differs from its last tick (or that had none).

        Runs before the connection's next frame is read, so any tick the socket
        brings afterwards (a newer price) replaces the one made here. A failed
        read is logged and skipped (the next tick of each market still comes).
        """
        ids = [market_id for market_id in markets if market_id in self._lane_of]
        if not ids:
            return
        try:
            rows = await self._fetch(ids)
        except (APIStatusError, DecodeError, TransportError) as exc:
            logger.warning("cannot read prices missed while reconnecting (%s)", exc)
            return
        for row in rows:
            key, seen = row.condition_id, self._seen.get(row.condition_id)
            if row.buy is None and row.sell is None:
                continue  # no price cached
            if seen is not None and (seen.buy, seen.sell) == (row.buy, row.sell):
                continue  # unchanged
            tick = PriceTick(
                market_id=key,
                condition_id=key,
                buy=row.buy,
                sell=row.sell,
                outcomes=row.outcomes,
                source="rest",
            )
            if self._offer(tick, counted=False):
                self.stats.healed += 1

    def _offer(self, tick: PriceTick, *, counted: bool = True) -> bool:
        """Queue ``tick`` for the consumer; return whether its market is subscribed."""
        key = tick.condition_id or tick.market_id
        if key not in self._lane_of:
            self.stats.ignored += counted
            return False
        self.stats.ticks += counted
        self._seen[key] = tick
        if key in self._latest:
            self.stats.coalesced += 1  # replacing a key keeps its place in line
        self._latest[key] = tick
        self._ready.set()
        return True
