"""``client.prices.stream()``: an in-memory price feed on virtual time, then the sandbox.

The fake feed (``MockTransport``) mints tokens, serves the tier table and the
price WebSocket with the server's rules (at most 50 markets per connection,
``subscribed`` answers in order, ``error`` frames, pongs, a per-user connection
cap closing with 4002), and can drop sockets, refuse tokens and push ticks.
Those tests run on virtual time (``@virtual``), so pings, timeouts and backoff
never depend on the machine's speed. The proofs at the end run against the
sandbox over real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

import polysim_async as ps
from polysim_async._pricestream import spread
from polysim_async._wsloop import socket_count
from polysim_async.models.executions import FrameError
from polysim_async.models.prices import decode_price_frame

from ._helpers import BASE, LoopClock, virtual

FAST = ps.StreamPolicy(
    backoff_base=0.5,
    backoff_max=4.0,
    ping_interval=5.0,
    ping_timeout=5.0,
    open_timeout=5.0,
    reconcile_interval=None,
)
TIERS = [
    {"tier": t, "requests_per_second": 10, "requests_per_minute": 600,
     "max_ws_connections": n, "max_batch_size": 5}
    for t, n in (("free", 1), ("pro", 3), ("enterprise", 50))
]  # fmt: skip


def ids(n: int, prefix: str = "0xm") -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(n)]


class Feed:
    """The price channel's server side; knobs are plain attributes."""

    def __init__(self, tier: str = "pro", cap: int = 3) -> None:
        self.tier = tier
        self.cap = cap  # connections per user; more are closed with 4002
        self.sockets: list[ps.MockWebSocket] = []
        self.subs: dict[ps.MockWebSocket, dict[str, None]] = {}
        self.tokens: set[str] = set()
        self.minted = 0
        self.tier_lookups = 0
        self.handshakes = 0
        self.reject_tokens = False
        self.answer_pings = True
        self.unanswered = 0  # leave this many subscribe/unsubscribe frames unanswered
        self.hold_answers = False  # keep answers in ``held`` until ``release()``
        self.prices: dict[str, str] = {}  # each market's current price (REST reads it)
        self.serve_batch = True  # else POST /v1/prices/batch answers 404
        self.batch_reads: list[list[str]] = []
        self.held: list[tuple[ps.MockWebSocket, str]] = []
        self.pings = 0
        self.refuse: str | None = None  # answer the next subscribe with this error
        self.fail_handshakes: Exception | None = None  # raise this on every handshake

    @property
    def open_sockets(self) -> list[ps.MockWebSocket]:
        return [ws for ws in self.sockets if not ws.closed]

    def subscribed(self) -> list[list[str]]:
        """Each open connection's markets (what the server holds)."""
        return [list(self.subs[ws]) for ws in self.open_sockets]

    def handle(self, request: ps.Request) -> ps.Response | ps.MockWebSocket:
        if request.websocket:
            return self.ws(request)
        if request.path == "/v1/keys/ws-token":
            self.minted += 1
            token = f"tok{self.minted}"
            self.tokens.add(token)
            return ps.Response.from_json({"token": token, "expires_in": 60})
        if request.path == "/v1/prices/batch" and self.serve_batch:
            wanted = json.loads(request.body or b"{}")["market_ids"]
            self.batch_reads.append(wanted)
            rows = [
                {"condition_id": m, "buy": p, "sell": str(Decimal(1) - Decimal(p))}
                if (p := self.prices.get(m)) is not None
                else {"condition_id": m}
                for m in wanted
            ]
            return ps.Response.from_json(rows)
        if request.path == "/v1/keys/tiers":
            self.tier_lookups += 1
            return ps.Response.from_json(TIERS, headers={"x-ratelimit-tier": self.tier})
        return ps.Response.from_json({"error": "NOT_FOUND", "message": "x"}, status=404)

    def ws(self, request: ps.Request) -> ps.MockWebSocket:
        assert request.path == "/v1/ws/prices"
        self.handshakes += 1
        if self.fail_handshakes is not None:
            raise self.fail_handshakes
        server = ps.MockWebSocket(on_message=self.on_message)
        token = (request.params or {}).get("token", "")
        if self.reject_tokens or token not in self.tokens:
            server.close(4001, "invalid or expired token")
            return server
        if len(self.open_sockets) >= self.cap:
            server.close(4002, "Maximum WebSocket connections exceeded")
            return server
        self.sockets.append(server)
        self.subs[server] = {}
        server.send(json.dumps({"type": "connected", "user_id": 1, "protocol_version": "1.0"}))
        return server

    def on_message(self, ws: ps.MockWebSocket, data: str | bytes) -> None:
        frame = json.loads(data)
        action, markets = frame.get("action"), frame.get("markets", [])
        if action == "ping":
            self.pings += 1
            if self.answer_pings:
                ws.send(json.dumps({"type": "pong", "ts": 1}))
            return
        held = self.subs[ws]
        if self.unanswered:
            self.unanswered -= 1
            return
        if action == "subscribe":
            if self.refuse is not None:
                ws.send(json.dumps({"type": "error", "message": self.refuse}))
                self.refuse = None
                return
            added = [m for m in dict.fromkeys(markets) if m not in held]
            if len(held) + len(added) > 50:
                ws.send(json.dumps({"type": "error", "message": "at most 50 condition IDs"}))
                return
            held.update(dict.fromkeys(added))
        else:
            for m in markets:
                held.pop(m, None)
        answer = json.dumps({"type": "subscribed", "markets": list(held)})
        if self.hold_answers:
            self.held.append((ws, answer))
        else:
            ws.send(answer)

    def release(self) -> None:
        """Send the answers held back, in order."""
        self.hold_answers = False
        for ws, answer in self.held:
            ws.send(answer)
        self.held = []

    async def tick(self, market_id: str, price: str) -> None:
        """Push a price frame to every connection subscribed to ``market_id``."""
        self.prices[market_id] = price
        other = str(Decimal(1) - Decimal(price))
        frame = json.dumps(
            {"type": "price", "market_id": market_id, "condition_id": market_id,
             "buy": price, "sell": other, "emit_ts_ms": 1_770_000_000_000,
             "outcomes": [{"label": "Yes", "price": price}, {"label": "No", "price": other}]}
        )  # fmt: skip
        for ws in self.open_sockets:
            if market_id in self.subs[ws]:
                ws.send(frame)
        await asyncio.sleep(0)

    async def close_all(self, code: int = 1011) -> None:
        for ws in self.open_sockets:
            ws.close(code, "bye")
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def running(
    feed: Feed | None = None, **client_kwargs: Any
) -> AsyncIterator[tuple[Feed, ps.Client]]:
    """A trader client whose network is the feed, on virtual time (use ``@virtual``)."""
    fd = feed or Feed()
    client_kwargs.setdefault("rate_limit", None)
    client_kwargs.setdefault("clock", LoopClock())
    transport = ps.MockTransport(fd.handle)
    async with ps.Client("ps_live_test", BASE, transport=transport, **client_kwargs) as client:
        yield fd, client


async def take(prices: ps.PriceStream, n: int, timeout: float = 30.0) -> list[ps.PriceTick]:
    out: list[ps.PriceTick] = []

    async def go() -> None:
        async for tick in prices:
            out.append(tick)
            if len(out) == n:
                return

    await asyncio.wait_for(go(), timeout)
    return out


async def until(predicate: Any, timeout: float = 30.0) -> None:
    async def go() -> None:
        while not predicate():  # noqa: ASYNC110 - polls a server-side condition
            await asyncio.sleep(0.001)

    await asyncio.wait_for(go(), timeout)


# -- pure pieces -----------------------------------------------------------------------


def test_spread_fills_existing_connections_first_then_balances_new_ones() -> None:
    assert spread([], 120, 50) == ([], [40, 40, 40])
    assert spread([], 50, 50) == ([], [50])
    assert spread([], 0, 50) == ([], [])
    assert spread([48, 10], 5, 50) == ([0, 5], [])  # the emptiest first
    assert spread([50, 49], 3, 50) == ([0, 1], [2])
    for loads, count in (([3, 50, 0], 130), ([], 151), ([49] * 4, 1)):
        added, fresh = spread(loads, count, 50)
        assert sum(added) + sum(fresh) == count
        assert all(load + a <= 50 for load, a in zip(loads, added, strict=True))
        assert all(0 < size <= 50 for size in fresh)
        assert len(fresh) == -(-(count - sum(added)) // 50)


def test_price_frames_decode_with_exact_prices_and_odd_frames_are_told_apart() -> None:
    tick = decode_price_frame(
        '{"type":"price","market_id":"0xa","buy":"0.6200","sell":"0.3800","emit_ts_ms":1000}'
    )
    assert isinstance(tick, ps.PriceTick)
    assert tick.buy == Decimal("0.6200") and tick.sell == Decimal("0.3800")
    assert tick.emitted_at is not None and tick.emitted_at.timestamp() == 1.0
    assert decode_price_frame('{"type":"something_new"}') is None
    # An answer whose body cannot be read still answers its frame.
    assert decode_price_frame('{"type":"subscribed","markets":7}') is not None
    assert decode_price_frame('{"type":"error","message":[1]}') is not None
    with pytest.raises(FrameError):
        decode_price_frame('{"type":"price","buy":"0.5"}')  # no market_id
    with pytest.raises(FrameError):
        decode_price_frame("not json")
    # emit_ts_ms outside 1970..9999 is refused at decode (emitted_at could not convert it).
    for ms in (99999999999999999999, -(10**16), 10**15, -1):
        with pytest.raises(FrameError, match="emit_ts_ms"):
            decode_price_frame(f'{{"type":"price","market_id":"0xa","emit_ts_ms":{ms}}}')
    last = decode_price_frame('{"type":"price","market_id":"0xa","emit_ts_ms":253402300799999}')
    assert isinstance(last, ps.PriceTick) and last.emitted_at is not None
    assert last.emitted_at.year == 9999


# -- on the mock feed, virtual time ------------------------------------------------------


@virtual
async def test_ticks_are_typed_and_exact_and_entering_waits_for_the_subscription() -> None:
    async with running() as (feed, client):
        async with client.prices.stream(["0xa", "0xb", "0xa"], policy=FAST) as prices:
            # Entered: the server holds the subscription already, so no tick is missed.
            assert feed.subscribed() == [["0xa", "0xb"]]
            assert prices.markets == ["0xa", "0xb"] and prices.connections == 1
            await feed.tick("0xa", "0.62")
            await feed.tick("0xb", "0.10")
            a, b = await take(prices, 2)
            assert (a.market_id, a.buy, a.sell) == ("0xa", Decimal("0.62"), Decimal("0.38"))
            assert a.outcomes[0].price == Decimal("0.62")
            assert b.market_id == "0xb"
        assert feed.open_sockets == []
        assert feed.tier_lookups == 0  # one connection fits every tier: no lookup


@virtual
async def test_120_markets_go_over_3_connections_and_151_are_refused_before_opening() -> None:
    async with running() as (feed, client):
        markets = ids(120)
        async with client.prices.stream(markets, policy=FAST) as prices:
            assert prices.connections == 3
            held = feed.subscribed()
            assert sorted(len(s) for s in held) == [40, 40, 40]
            assert sorted(m for s in held for m in s) == markets
            for m in markets:
                await feed.tick(m, "0.55")
            got = await take(prices, 120)
            assert sorted(t.market_id for t in got) == markets
            assert prices.stats.token_mints == 1  # one token for every connection
            # 31 more need a 4th connection: the pro tier allows 3.
            with pytest.raises(ps.SubscriptionLimitError) as info:
                await prices.subscribe(ids(31, "0xn"))
            assert (info.value.needed, info.value.available) == (4, 3)
            assert prices.markets == markets  # nothing was added
            await prices.subscribe(ids(30, "0xn"))  # fits the room left
            assert sorted(len(s) for s in feed.subscribed()) == [50, 50, 50]
        handshakes = feed.handshakes
        with pytest.raises(ps.SubscriptionLimitError, match="pro tier allows 3"):
            async with client.prices.stream(ids(151), policy=FAST):
                pass
        assert feed.handshakes == handshakes  # nothing was opened
        assert feed.tier_lookups == 1  # learned once per client


@virtual
async def test_other_streams_of_the_client_count_against_the_tier() -> None:
    async with running(Feed(tier="free", cap=1)) as (feed, client):
        async with client.prices.stream(["0xa"], policy=FAST) as first:
            assert first.connections == 1
            with pytest.raises(ps.SubscriptionLimitError, match="other streams hold 1"):
                async with client.prices.stream(["0xb"], policy=FAST):
                    pass
        async with client.prices.stream(["0xb"], policy=FAST) as second:  # room again
            assert feed.subscribed() == [["0xb"]]
            assert second.connections == 1


@virtual
async def test_a_drop_reconnects_after_backoff_and_subscribes_the_whole_set_again() -> None:
    events: list[ps.ReconnectEvent] = []
    hooks = ps.Hooks(on_reconnect=events.append)
    async with (
        running(hooks=hooks) as (feed, client),
        client.prices.stream(ids(60), policy=FAST) as prices,
    ):
        first = feed.open_sockets
        await feed.close_all(1011)
        await until(lambda: len(feed.open_sockets) == 2)
        await until(lambda: sorted(len(s) for s in feed.subscribed()) == [30, 30])
        assert not set(first) & set(feed.open_sockets)
        assert {e.stream for e in events} == {"prices"}
        assert all(e.wait > 0 and e.failures == 1 for e in events)
        await feed.tick("0xm059", "0.41")
        (tick,) = await take(prices, 1)
        assert tick.buy == Decimal("0.41")
        # An abrupt loss heals the same way.
        for ws in feed.open_sockets:
            ws.abort()
        await until(lambda: len(feed.open_sockets) == 2 and len(feed.subscribed()[0]) == 30)
        assert prices.stats.connects == 6


@virtual
async def test_close_4001_mints_a_new_token_and_resubscribes_at_once() -> None:
    events: list[ps.ReconnectEvent] = []
    async with (
        running(hooks=ps.Hooks(on_reconnect=events.append)) as (feed, client),
        client.prices.stream(["0xa"], policy=FAST) as prices,
    ):
        feed.tokens.clear()  # every token expires
        await feed.close_all(4001)
        await until(lambda: feed.subscribed() == [["0xa"]])
        assert feed.minted == 2 and prices.stats.token_rejections == 1
        assert [e.wait for e in events] == [0.0]
        await feed.tick("0xa", "0.70")
        assert [t.buy for t in await take(prices, 1)] == [Decimal("0.70")]


@virtual
async def test_a_4002_cap_backs_off_until_a_connection_is_free() -> None:
    events: list[ps.ReconnectEvent] = []
    # The tier says 3, but another process of the user holds 2 of them.
    feed = Feed(cap=1)
    async with running(feed, hooks=ps.Hooks(on_reconnect=events.append)) as (_, client):
        entering = asyncio.ensure_future(client.prices.stream(ids(70), policy=FAST).__aenter__())
        await until(lambda: len(events) >= 3)
        assert not entering.done()
        assert [e.reason for e in events[:3]] == [
            "close 4002: Maximum WebSocket connections exceeded"
        ] * 3
        waits = [e.wait for e in events[:3]]
        assert 0 < waits[0] < waits[-1] <= FAST.backoff_max  # growing, jittered, capped
        feed.cap = 2  # the other process let one go
        prices = await asyncio.wait_for(entering, 60)
        try:
            assert sorted(len(s) for s in feed.subscribed()) == [35, 35]
        finally:
            await prices.aclose()
        assert feed.open_sockets == []


@virtual
async def test_subscribe_and_unsubscribe_while_running() -> None:
    async with running() as (feed, client):
        async with client.prices.stream(ids(45), policy=FAST) as prices:
            await prices.subscribe(["0xm000", "0xx1", "0xx2"])  # one already there
            assert feed.subscribed() == [[*ids(45), "0xx1", "0xx2"]]
            await prices.subscribe(ids(10, "0xy"))  # 3 fit, 7 open a second connection
            assert [len(s) for s in feed.subscribed()] == [50, 7]
            # Unread ticks of a market are dropped when it is unsubscribed.
            await feed.tick("0xm001", "0.30")
            await feed.tick("0xm002", "0.31")
            await prices.unsubscribe(["0xm001", "0xnot-subscribed"])
            assert "0xm001" not in feed.subscribed()[0]
            assert [t.market_id for t in await take(prices, 1)] == ["0xm002"]
            # A connection left with no market is closed.
            second = feed.open_sockets[1]
            await prices.unsubscribe(feed.subscribed()[1])
            assert second.closed and prices.connections == 1
            # Ticks of markets no longer subscribed are ignored if they still come.
            second_markets = ids(10, "0xy")[3:]
            await prices.subscribe(["0xz"])
            await feed.tick(second_markets[0], "0.5")  # nobody holds it: nothing is sent
            await feed.tick("0xz", "0.9")
            assert [t.market_id for t in await take(prices, 1)] == ["0xz"]
            with pytest.raises(ps.InvalidArgumentError):
                await prices.subscribe("0xabc")  # a bare string, not a list
        with pytest.raises(ps.ClientClosedError):
            await prices.subscribe(["0xq"])


@virtual
async def test_prices_changed_while_reconnecting_are_read_from_rest_once_resubscribed() -> None:
    async with (
        running() as (feed, client),
        client.prices.stream(["0xa", "0xb", "0xc"], policy=FAST) as prices,
    ):
        await feed.tick("0xa", "0.60")
        await feed.tick("0xc", "0.20")
        assert [t.buy for t in await take(prices, 2)] == [Decimal("0.60"), Decimal("0.20")]
        assert feed.batch_reads == []  # the first connection reads nothing
        await feed.close_all()
        # While it is down: 0xb gets its first price, 0xc moves, 0xa stays.
        feed.prices.update({"0xb": "0.70", "0xc": "0.25"})
        healed = await take(prices, 2)
        assert [(t.market_id, t.buy, t.source) for t in healed] == [
            ("0xb", Decimal("0.70"), "rest"),
            ("0xc", Decimal("0.25"), "rest"),
        ]
        assert healed[0].sell == Decimal("0.30") and healed[0].emit_ts_ms is None
        assert feed.batch_reads == [["0xa", "0xb", "0xc"]] and prices.stats.healed == 2
        assert prices.stats.ticks == 2  # frames received; healed ticks are counted apart
        # A tick the socket brings afterwards still wins.
        await feed.tick("0xc", "0.26")
        assert [t.buy for t in await take(prices, 1)] == [Decimal("0.26")]
        # A REST read that fails is logged and skipped; the stream goes on.
        feed.serve_batch = False
        feed.prices["0xa"] = "0.65"
        await feed.close_all()
        await until(lambda: prices.stats.connects == 3 and feed.subscribed() != [])
        await feed.tick("0xb", "0.71")
        assert [(t.market_id, t.buy) for t in await take(prices, 1)] == [("0xb", Decimal("0.71"))]
        assert prices.stats.healed == 2


@virtual
async def test_a_second_subscribe_of_a_market_in_flight_waits_for_the_same_answer() -> None:
    async with running() as (feed, client), client.prices.stream(["0xa"], policy=FAST) as prices:
        feed.hold_answers = True
        first = asyncio.ensure_future(prices.subscribe(["0xq"]))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(prices.subscribe(["0xa", "0xq"]))
        await asyncio.sleep(0.01)
        assert len(feed.held) == 1 and not first.done() and not second.done()
        first.cancel()  # the first caller gives up: the second still waits for the answer
        await asyncio.sleep(0.01)
        assert not second.done()
        feed.release()
        await second
        assert feed.subscribed() == [["0xa", "0xq"]] and prices.markets == ["0xa", "0xq"]


@virtual
async def test_subscribe_while_a_connection_is_down_waits_for_its_resubscription() -> None:
    async with (
        running() as (feed, client),
        client.prices.stream(["0xa"], policy=FAST) as prices,
    ):
        feed.cap = 0  # reconnects are refused with 4002 for now
        await feed.close_all(1011)
        pending = asyncio.ensure_future(prices.subscribe(["0xb"]))
        await asyncio.sleep(10)
        assert not pending.done() and prices.stats.connects >= 2
        # Cancelling a caller's wait leaves the market subscribed.
        gone = asyncio.ensure_future(prices.subscribe(["0xc"]))
        await asyncio.sleep(0)
        gone.cancel()
        feed.cap = 3
        await asyncio.wait_for(pending, 30)
        assert feed.subscribed() == [["0xa", "0xb", "0xc"]]
        assert prices.markets == ["0xa", "0xb", "0xc"]
        # Unsubscribing while down is done at once: the next connection leaves it out.
        feed.cap = 0
        await feed.close_all(1011)
        await asyncio.wait_for(prices.unsubscribe(["0xa"]), 1)
        feed.cap = 3
        await until(lambda: feed.subscribed() == [["0xb", "0xc"]])


@virtual
async def test_latest_price_wins_for_a_slow_consumer() -> None:
    async with (
        running() as (feed, client),
        client.prices.stream(["0xa", "0xb"], policy=FAST) as prices,
    ):
        for price in ("0.51", "0.52", "0.53"):
            await feed.tick("0xa", price)
        await feed.tick("0xb", "0.20")
        await feed.tick("0xa", "0.54")
        got = await take(prices, 2)
        # 0xa's first unread tick came first; it is read at its newest price.
        assert [(t.market_id, t.buy) for t in got] == [
            ("0xa", Decimal("0.54")),
            ("0xb", Decimal("0.20")),
        ]
        assert prices.stats.ticks == 5 and prices.stats.coalesced == 3


@virtual
async def test_a_refused_subscription_ends_the_stream_and_stray_errors_are_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="polysim_async")
    async with running() as (feed, client):
        async with client.prices.stream(["0xa"], policy=FAST) as prices:
            for ws in feed.open_sockets:  # an error frame nobody asked for
                ws.send(json.dumps({"type": "error", "message": "Invalid JSON"}))
            ws.send("{broken")
            await feed.tick("0xa", "0.6")
            assert [t.buy for t in await take(prices, 1)] == [Decimal("0.6")]
            assert (prices.stats.errors, prices.stats.unreadable) == (1, 1)
            assert "Invalid JSON" in caplog.text
            feed.refuse = "nope, not today"
            with pytest.raises(ps.SubscriptionRefusedError) as info:
                await prices.subscribe(["0xb"])
            assert info.value.markets == ["0xb"] and info.value.server_message == "nope, not today"
            with pytest.raises(ps.SubscriptionRefusedError):
                await take(prices, 1)  # the consumer sees the end once ...
            assert await take(prices, 0, timeout=1) == []  # ... then iteration stops
            with pytest.raises(ps.StreamClosedError):
                await prices.subscribe(["0xc"])
        assert feed.open_sockets == []


@virtual
async def test_a_refusal_ends_the_stream_even_when_process_exception_would_retry() -> None:
    def retry_everything(exc: Exception) -> Exception | None:
        return None

    policy = ps.StreamPolicy(process_exception=retry_everything, reconcile_interval=None)
    async with running() as (feed, client):
        async with client.prices.stream(["0xa"], policy=policy) as prices:
            feed.refuse = "no"
            with pytest.raises(ps.SubscriptionRefusedError):
                await prices.subscribe(["0xb"])
            handshakes = feed.handshakes
            with pytest.raises(ps.SubscriptionRefusedError):
                await take(prices, 1)
            await asyncio.sleep(60)
            assert feed.handshakes == handshakes  # no reconnect loop
        assert feed.open_sockets == []


@virtual
async def test_a_refusal_while_entering_raises_from_the_async_with() -> None:
    feed = Feed()
    feed.refuse = "'markets' must be a list"
    async with running(feed) as (_, client):
        with pytest.raises(ps.SubscriptionRefusedError, match="must be a list"):
            async with client.prices.stream(["0xa"], policy=FAST):
                pass
        assert feed.open_sockets == []


@virtual
async def test_idle_socket_is_pinged_and_a_silent_one_replaced() -> None:
    async with (
        running() as (feed, client),
        client.prices.stream(["0xa"], policy=FAST) as prices,
    ):
        await asyncio.sleep(FAST.ping_interval + 1)
        assert feed.pings == 1 and prices.stats.connects == 1  # answered: kept
        feed.answer_pings = False
        await asyncio.sleep(FAST.ping_interval + FAST.ping_timeout + 1)
        assert prices.stats.connects == 2
        await until(lambda: feed.subscribed() == [["0xa"]])


@virtual
async def test_max_failures_and_process_exception_end_the_stream() -> None:
    feed = Feed()
    async with running(feed) as (_, client):
        policy = ps.StreamPolicy(backoff_base=0.1, max_failures=2, reconcile_interval=None)
        async with client.prices.stream(["0xa"], policy=policy) as prices:
            feed.cap = 0  # every reconnect is refused with 4002
            await feed.close_all(1011)
            with pytest.raises(ps.StreamClosedError, match="prices stream gave up after 3"):
                await take(prices, 1)

        def fatal(exc: Exception) -> Exception | None:
            return exc  # nothing is transient

        feed.cap = 3
        policy = ps.StreamPolicy(process_exception=fatal, reconcile_interval=None)
        async with client.prices.stream(["0xa"], policy=policy) as prices:
            feed.fail_handshakes = ps.ConnectError("refused")
            await feed.close_all(1011)
            with pytest.raises(ps.ConnectError):
                await take(prices, 1)


@virtual
async def test_silent_or_unacknowledging_connections_are_failures_whatever_their_length() -> None:
    policy = ps.StreamPolicy(
        backoff_base=0.1,
        backoff_max=0.1,
        stable_after=1.0,
        ping_interval=5.0,
        ping_timeout=5.0,
        open_timeout=5.0,
        max_failures=1,
        reconcile_interval=None,
    )
    # Never acknowledged (pings answered): entering gives up after open_timeout per connection.
    feed = Feed()
    feed.unanswered = 1000
    async with running(feed) as (_, client):
        start = asyncio.get_running_loop().time()
        with pytest.raises(ps.StreamClosedError, match=r"2 failed.*not acknowledged within 5 s"):
            async with client.prices.stream(["0xa"], policy=policy):
                pass
        assert feed.handshakes == 2 and feed.pings >= 1 and feed.open_sockets == []
        assert asyncio.get_running_loop().time() - start < 2 * 2 * policy.open_timeout
    # Entered, then a later subscription goes unanswered: the connection is dropped
    # and resubscribed; answered again, subscribe() returns.
    async with running() as (feed, client), client.prices.stream(["0xa"], policy=policy) as prices:
        feed.unanswered = 1
        await prices.subscribe(["0xb"])
        assert prices.stats.connects == 2
        assert feed.subscribed() == [["0xa", "0xb"]]
    # Acknowledged, then silent: each connection lasts ping_interval + ping_timeout
    # (longer than stable_after) yet counts as failed, so max_failures ends the stream.
    async with running() as (feed, client), client.prices.stream(["0xa"], policy=policy) as prices:
        feed.answer_pings = False
        with pytest.raises(ps.StreamClosedError, match=r"2 failed.*ping_timeout"):
            await take(prices, 1, timeout=100)
        assert prices.stats.connects == 2


@virtual
async def test_must_be_entered_once_and_nothing_outlives_the_block() -> None:
    async with running() as (feed, client):
        stream = client.prices.stream(["0xa"], policy=FAST)
        with pytest.raises(ps.ClientClosedError, match="enter the stream first"):
            await stream.__anext__()
        with pytest.raises(ps.ClientClosedError):
            await stream.subscribe(["0xb"])
        with pytest.raises(ps.InvalidArgumentError):
            client.prices.stream("0xa")
        with pytest.raises(ps.InvalidArgumentError):
            client.prices.stream(["0xa"], policy="fast")  # type: ignore[arg-type]
        tasks = asyncio.all_tasks()

        async def consume() -> None:
            async with stream as prices:
                async for _ in prices:
                    pass

        consumer = asyncio.ensure_future(consume())
        await until(lambda: feed.subscribed() == [["0xa"]])
        assert stream.connections == 1
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert feed.open_sockets == [] and stream.connections == 0
        assert asyncio.all_tasks() == tasks
        with pytest.raises(ps.ClientClosedError, match="only once"):
            await stream.__aenter__()
        # A waiting consumer in another task ends when the stream is closed.
        async with client.prices.stream(["0xa"], policy=FAST) as prices:
            waiting = asyncio.ensure_future(take(prices, 1))
            await asyncio.sleep(0.01)
            await prices.aclose()
            assert await waiting == []


def test_an_unclosed_stream_only_warns() -> None:
    async def main() -> None:
        async with running() as (_, client):
            prices = client.prices.stream(["0xa"], policy=FAST)
            await prices.__aenter__()
            lanes = list(prices._lanes)
            for lane in lanes:  # simulate a leak: forget the stream while its tasks run
                assert lane.task is not None
            with pytest.warns(ResourceWarning, match="never closed"):
                prices.__del__()
            await prices.aclose()

    from ._helpers import run_virtual

    run_virtual(lambda loop: main())
    gc.collect()


# -- proofs against the sandbox (real sockets, real server) ------------------------------

SANDBOX = ps.StreamPolicy(
    backoff_base=0.01, backoff_max=0.05, ping_interval=5.0, ping_timeout=5.0,
    reconcile_interval=None,
)  # fmt: skip


@contextlib.asynccontextmanager
async def sandboxed(
    tier: str = "pro", markets: int = 3, hooks: ps.Hooks | None = None
) -> AsyncIterator[tuple[Any, ps.Client]]:
    from polysim_async.sandbox import Sandbox

    async with (
        Sandbox(seed=7, tier=tier, markets=markets, random_walk=False) as sb,
        ps.Client(sb.api_key, sb.url, rate_limit=None, hooks=hooks) as client,
    ):
        yield sb, client


def server_sets(sb: Any) -> dict[int, list[str]]:
    """The sandbox's price connections (by identity) and each one's markets: a probe
    of the server's own state, to know when a re-subscription has landed."""
    hub = sb._core.prices
    return {id(c): list(c.markets) for conns in hub.conns.values() for c in conns}


async def test_sandbox_ticks_follow_set_price_with_exact_prices() -> None:
    async with sandboxed() as (sb, client):
        a, b, _ = sb.market_ids
        async with client.prices.stream([a, b], policy=SANDBOX) as prices:
            sb.set_price(a, "0.62")
            sb.set_price(b, "0.07")
            got = {t.market_id: t for t in await take(prices, 2)}
            sb.set_price(a, "0.64")
            (later,) = await take(prices, 1)
    assert got[a].buy == Decimal("0.6200") and got[a].sell == Decimal("0.3800")
    assert got[a].condition_id == a and got[a].source is not None
    assert got[b].buy == Decimal("0.0700")
    assert later.buy == Decimal("0.6400")


async def test_sandbox_120_markets_over_3_connections_then_subscribe_and_unsubscribe() -> None:
    async with sandboxed(markets=125) as (sb, client):
        markets, extra = sb.market_ids[:120], sb.market_ids[120:]
        async with client.prices.stream(markets, policy=SANDBOX) as prices:
            assert prices.connections == 3  # the pro tier's cap
            for m in markets:
                sb.set_price(m, "0.55")
            assert sorted(t.market_id for t in await take(prices, 120)) == sorted(markets)
            with pytest.raises(ps.SubscriptionLimitError):
                await prices.subscribe([f"0x{i:064x}" for i in range(31)])
            await prices.subscribe(extra)
            await prices.unsubscribe(markets[:40])
            for m in markets[:40] + extra:
                sb.set_price(m, "0.45")
            got = await take(prices, len(extra))
            assert sorted(t.market_id for t in got) == sorted(extra)
            assert prices.stats.ignored == 0  # the server really stopped sending them
            assert prices.connections == 3


async def test_sandbox_drops_and_token_expiry_heal_with_resubscription() -> None:
    events: list[ps.ReconnectEvent] = []
    hooks = ps.Hooks(on_reconnect=events.append)
    async with (
        sandboxed(markets=60, hooks=hooks) as (sb, client),
        client.prices.stream(sb.market_ids, policy=SANDBOX) as prices,
    ):
        price = Decimal("0.30")
        for round_ in range(6):
            before = server_sets(sb)
            assert sorted(len(m) for m in before.values()) == [30, 30]
            if round_ == 3:
                sb.expire_ws_tokens()  # the cached token is refused at the next handshake
            # Every connection has sent its subscription answer: its next frame drops it.
            sb.ws_drop_after(2, mode="abort" if round_ % 2 else "close")
            for m in sb.market_ids:
                sb.set_price(m, str(price))
            await until(lambda before=before: not set(server_sets(sb)) & set(before))
            sb.clear_faults()
            # Both new connections hold their whole set again: every market ticks.
            await until(lambda: sorted(len(m) for m in server_sets(sb).values()) == [30, 30])
            price += Decimal("0.01")
            for m in sb.market_ids:
                sb.set_price(m, str(price))
            got: list[ps.PriceTick] = []
            while not {t.market_id for t in got if t.buy == price} >= set(sb.market_ids):
                got += await take(prices, 1)
        # One or both connections met the expired token (they share the fresh one).
        assert prices.stats.token_rejections >= 1
        assert prices.stats.token_mints >= 2
        assert prices.stats.connects >= 14
    assert any(e.wait == 0 for e in events) and any(e.wait > 0 for e in events)


async def test_sandbox_a_price_change_while_reconnecting_is_delivered() -> None:
    async with sandboxed() as (sb, client):
        a, b = sb.market_ids[0], sb.market_ids[1]
        async with client.prices.stream([a, b], policy=SANDBOX) as prices:
            sb.ws_drop_after(1)
            sb.set_price(a, "0.61")  # this frame is sent, then the socket drops
            sb.set_price(b, "0.77")  # moves while the client is disconnected
            got: dict[str, Decimal | None] = {}
            while got.get(b) != Decimal("0.77"):
                tick = (await take(prices, 1))[0]
                got[tick.market_id] = tick.buy
                if tick.market_id == a:
                    sb.clear_faults()
            assert prices.stats.healed >= 1


async def test_sandbox_a_4002_cap_backs_off_until_the_other_connection_goes() -> None:
    from polysim_async.sandbox import Sandbox

    events: list[ps.ReconnectEvent] = []
    async with (
        Sandbox(seed=3, tier="free", random_walk=False) as sb,
        ps.Client(sb.api_key, sb.url, rate_limit=None) as holder,
        ps.Client(
            sb.api_key, sb.url, rate_limit=None, hooks=ps.Hooks(on_reconnect=events.append)
        ) as client,
    ):
        a = sb.market_id
        # Another process of the same user holds the free tier's one connection.
        async with holder.executions.stream(policy=SANDBOX):
            entering = asyncio.ensure_future(client.prices.stream([a], policy=SANDBOX).__aenter__())
            await until(lambda: len(events) >= 2)
            assert all("4002" in e.reason for e in events)
            assert not entering.done()
        prices = await asyncio.wait_for(entering, 30)
        try:
            sb.set_price(a, "0.58")
            assert [t.buy for t in await take(prices, 1)] == [Decimal("0.5800")]
        finally:
            await prices.aclose()


async def test_sandbox_no_aiohttp_error_is_chained_when_the_server_is_gone() -> None:
    import aiohttp

    policy = ps.StreamPolicy(backoff_base=0.01, backoff_max=0.02, max_failures=1,
                             reconcile_interval=None)  # fmt: skip
    async with (
        sandboxed() as (sb, client),
        client.prices.stream([sb.market_id], policy=policy) as prices,
    ):
        await sb.aclose()  # the server is gone: reconnects fail
        with pytest.raises(ps.StreamClosedError) as info:
            await take(prices, 1)
    seen: list[BaseException] = []
    error: BaseException | None = info.value
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    assert not [e for e in seen if isinstance(e, aiohttp.ClientError)], seen


class _SlowTimerClock(LoopClock):
    """A clock whose cancelled sleeps take a while to end (``release`` lets them go)."""

    def __init__(self) -> None:
        self.winding = asyncio.Event()
        self.release = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        try:
            await asyncio.sleep(max(0.0, seconds))
        except asyncio.CancelledError:
            self.winding.set()
            await self.release.wait()
            raise


@virtual
async def test_cancelled_right_after_the_handshake_the_socket_is_closed() -> None:
    # The handshake's timer is still winding down when the stream is cancelled:
    # the socket that already opened must be closed, and no connection counted.
    clock = _SlowTimerClock()
    async with running(clock=clock) as (feed, client):
        stream = client.prices.stream(["0xa"], policy=FAST)
        entering = asyncio.ensure_future(stream.__aenter__())
        await until(clock.winding.is_set)
        assert len(feed.sockets) == 1 and not feed.sockets[0].closed
        entering.cancel()
        await asyncio.sleep(0)
        clock.release.set()
        with pytest.raises(asyncio.CancelledError):
            await entering
        assert feed.open_sockets == [] and stream.connections == 0
        assert socket_count(client._requester).held == 0
