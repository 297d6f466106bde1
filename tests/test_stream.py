"""``client.executions.stream()``: an in-memory exchange on virtual time, then the sandbox.

The fake exchange (``MockTransport``) mints tokens, serves the execution
WebSocket and the REST history, and can drop sockets, close them with
4001/4002, push duplicates, odd frames, and fills without pushing them (fills
the socket never sees). Those tests run on virtual time (``@virtual``), so
pings, timeouts and backoff never depend on the machine's speed. The proofs at
the end run against the sandbox over real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

import polysim_async as ps
from polysim_async._fills import FillTracker, Verdict
from polysim_async.models.executions import ErrorFrame, FrameError, decode_frame

from ._helpers import BASE, LoopClock, virtual

T0 = datetime(2026, 2, 6, 12, 0, tzinfo=timezone.utc)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FAST = ps.StreamPolicy(
    backoff_base=0.001,
    backoff_max=0.004,
    ping_interval=5.0,
    ping_timeout=5.0,
    open_timeout=5.0,
    reconcile_interval=None,
)
#: For the sandbox proofs: also re-check REST often, for fills that never reach the socket.
CHECKING = ps.StreamPolicy(
    backoff_base=0.001,
    backoff_max=0.004,
    ping_interval=5.0,
    ping_timeout=5.0,
    reconcile_interval=0.05,
    lookback=0.01,  # the sandbox never makes a fill visible out of order
)


def iso(i: int) -> str:
    return (T0 + timedelta(milliseconds=i)).isoformat()


class Exchange:
    """Fills ``1..n`` at ``T0 + i ms``; order id = i. Knobs are plain attributes."""

    def __init__(self) -> None:
        self.fills: list[dict[str, Any]] = []
        self.sockets: list[ps.MockWebSocket] = []
        self.tokens: set[str] = set()
        self.minted = 0
        self.mint_errors: list[tuple[int, str]] = []  # popped one per mint
        self.reject_tokens = False  # close every new socket with 4001
        self.close_new_with: int | None = None  # close every new socket with this code
        self.answer_pings = True
        self.pings = 0
        self.history_calls = 0
        self.connects = 0
        self.handshake_status: int | None = None
        self.max_open = 0
        self.healed = False  # a history read came after the newest socket opened
        self.history_body: bytes | None = None  # answer every history read with this

    @property
    def open_sockets(self) -> list[ps.MockWebSocket]:
        return [ws for ws in self.sockets if not ws.closed]

    @property
    def live(self) -> bool:
        """The client has an open socket and finished healing it: pushes now arrive live."""
        return self.healed and bool(self.open_sockets)

    # -- knobs ------------------------------------------------------------------------

    def row(self, i: int) -> dict[str, Any]:
        return {
            "order_id": i,
            "market_id": "0xabc",
            "side": "BUY" if i % 2 else "SELL",
            "outcome": "Yes",
            "price": "0.65",
            "quantity": "10.0",
            "notional": "6.50",
            "fee": "0.00",
            "status": "FILLED",
            "filled_at": iso(i),
        }

    async def fill(self, count: int = 1, *, push: bool = True) -> list[int]:
        ids = []
        for _ in range(count):
            i = len(self.fills) + 1
            self.fills.append(self.row(i))
            ids.append(i)
            if push:
                await self.push({"type": "fill", **self.row(i)})
        return ids

    async def push(self, frame: Any) -> None:
        data = frame if isinstance(frame, str) else json.dumps(frame)
        for ws in self.open_sockets:
            ws.send(data)
        await asyncio.sleep(0)

    async def close_all(self, code: int = 1001) -> None:
        for ws in self.open_sockets:
            ws.close(code, "bye")
        await asyncio.sleep(0)

    def abort_all(self) -> None:
        for ws in self.open_sockets:
            ws.abort()

    # -- the server -------------------------------------------------------------------

    def handle(self, request: ps.Request) -> ps.Response | ps.MockWebSocket:
        if request.websocket:
            return self.ws(request)
        if request.path == "/v1/keys/ws-token":
            return self.mint()
        if request.path == "/v1/account/history":
            return self.history(request)
        return ps.Response.from_json({"error": "NOT_FOUND", "message": "x"}, status=404)

    def mint(self) -> ps.Response:
        if self.mint_errors:
            status, code = self.mint_errors.pop(0)
            return ps.Response.from_json({"error": code, "message": "no"}, status=status)
        self.minted += 1
        token = f"tok{self.minted}"
        self.tokens.add(token)
        return ps.Response.from_json({"token": token, "expires_in": 60})

    def ws(self, request: ps.Request) -> ps.Response | ps.MockWebSocket:
        if self.handshake_status is not None:
            return ps.Response.from_json({"error": "NOPE"}, status=self.handshake_status)
        self.connects += 1
        server = ps.MockWebSocket(on_message=self.on_message)
        token = (request.params or {}).get("token", "")
        if self.reject_tokens or token not in self.tokens:
            server.close(4001, "invalid or expired token")
            return server
        if self.close_new_with is not None:
            server.close(self.close_new_with, "go away")
            return server
        self.healed = False
        self.sockets.append(server)
        self.max_open = max(self.max_open, len(self.open_sockets))
        server.send(json.dumps({"type": "connected", "user_id": 1, "protocol_version": "1.0"}))
        return server

    def on_message(self, ws: ps.MockWebSocket, data: str | bytes) -> None:
        if json.loads(data).get("action") == "ping":
            self.pings += 1
            if self.answer_pings:
                ws.send(json.dumps({"type": "pong", "ts": 1}))

    def history(self, request: ps.Request) -> ps.Response:
        self.history_calls += 1
        self.healed = True
        query = request.params or {}
        assert query.get("envelope") == "true"
        if self.history_body is not None:
            return ps.Response(200, {}, self.history_body)
        limit = int(query["limit"])
        offset = int(query.get("offset", "0"))
        newest_first = self.fills[::-1]
        rows = newest_first[offset : offset + limit]
        nxt = str(offset + limit) if len(rows) == limit else ""
        return ps.Response.from_json({"data": rows, "next_cursor": nxt})


@contextlib.asynccontextmanager
async def running(
    exchange: Exchange | None = None, **client_kwargs: Any
) -> AsyncIterator[tuple[Exchange, ps.Client]]:
    """A trader client whose network is the exchange, on virtual time (use ``@virtual``)."""
    ex = exchange or Exchange()
    client_kwargs.setdefault("rate_limit", None)
    client_kwargs.setdefault("clock", LoopClock())
    transport = ps.MockTransport(ex.handle)
    async with ps.Client("ps_live_test", BASE, transport=transport, **client_kwargs) as client:
        yield ex, client


async def take(stream: AsyncIterator[Any], n: int, timeout: float = 30.0) -> list[Any]:
    """Read until ``n`` fills came (gap markers on the way are kept too)."""
    out: list[Any] = []

    async def go() -> None:
        count = 0
        async for item in stream:
            out.append(item)
            count += isinstance(item, ps.Fill)
            if count == n:
                return

    await asyncio.wait_for(go(), timeout)
    return out


async def until(predicate: Any, timeout: float = 30.0) -> None:
    async def go() -> None:
        while not predicate():  # noqa: ASYNC110 - polls a server-side condition
            await asyncio.sleep(0.001)

    await asyncio.wait_for(go(), timeout)


def ids(items: list[Any]) -> list[int]:
    return [f.order_id for f in items if isinstance(f, ps.Fill)]


# -- frame decoding (pure) -------------------------------------------------------------


def test_three_documented_frame_shapes_become_one_fill() -> None:
    flat = {
        "type": "fill",
        "order_id": 42,
        "market_id": "0x1",
        "side": "BUY",
        "outcome": "Yes",
        "price": "0.65",
        "quantity": "10.0",
        "filled_at": "2026-02-06T12:00:45Z",
    }
    nested = {"type": "execution", "data": {k: v for k, v in flat.items() if k != "type"}}
    legacy = {
        "type": "execution",
        "order_id": "42",
        "market_id": "0x1",
        "side": "BUY",
        "outcome": "Yes",
        "price": "0.65",
        "quantity": "10.0",
        "status": "FILLED",
        "timestamp": "2026-02-06T12:00:45+00:00",
    }
    fills = [decode_frame(json.dumps(f).encode()) for f in (flat, nested, legacy)]
    assert fills[0] == fills[1] == fills[2]
    assert fills[0] == ps.Fill(
        order_id=42,
        market_id="0x1",
        side=ps.Side.BUY,
        outcome="Yes",
        price=Decimal("0.65"),
        quantity=Decimal("10.0"),
        filled_at=datetime(2026, 2, 6, 12, 0, 45, tzinfo=timezone.utc),
    )


def test_frames_without_fills_are_ignored_and_broken_fills_are_errors() -> None:
    for frame in (
        {"type": "connected", "user_id": 1},
        {"type": "pong", "ts": 5},
        {"type": "subscribed"},
        {"no": "type"},
    ):
        assert decode_frame(json.dumps(frame)) is None
    assert decode_frame(json.dumps({"type": "error", "message": "x"})) == ErrorFrame(message="x")
    with pytest.raises(FrameError):
        decode_frame(b"not json")
    with pytest.raises(FrameError):
        decode_frame(json.dumps({"type": "fill", "order_id": 1}))
    with pytest.raises(FrameError):  # a fill without any time cannot be placed in order
        decode_frame(
            json.dumps(
                {
                    "type": "fill",
                    "order_id": 1,
                    "market_id": "m",
                    "side": "BUY",
                    "outcome": "Yes",
                    "price": "1",
                    "quantity": "1",
                }
            )
        )


def test_tracker_tells_new_duplicate_late_and_stale_apart() -> None:
    def key(ms: int, oid: int) -> ps.Watermark:
        return ps.Watermark(filled_at=T0 + timedelta(milliseconds=ms), order_id=oid)

    tracker = FillTracker(key(0, 1), window=1.0)  # the stream started after fill #1
    assert tracker.verdict(key(0, 1)) is Verdict.DUPLICATE  # at or below the floor
    assert tracker.verdict(key(-5, 0)) is Verdict.DUPLICATE
    tracker.remember(key(3000, 10))
    assert tracker.mark == key(3000, 10)
    assert tracker.verdict(key(3000, 11)) is Verdict.NEW
    assert tracker.verdict(key(3000, 10)) is Verdict.DUPLICATE  # queued already
    assert tracker.verdict(key(500, 3)) is Verdict.LATE  # above the floor, never queued
    assert tracker.lower_bound() == T0  # REST not read yet: down to the floor
    tracker.checked_up_to(key(3000, 10))  # a heal read REST up to #10 (from the floor)
    assert tracker.lower_bound() == T0 + timedelta(milliseconds=2000)  # the next heal's
    assert tracker.verdict(key(500, 3)) is Verdict.LATE  # keys kept from the last heal's bound
    tracker.remember(key(9000, 12))
    tracker.checked_up_to(key(9000, 12))  # this heal re-read from 2000 ms
    assert tracker.verdict(key(2500, 4)) is Verdict.LATE
    assert tracker.verdict(key(3000, 10)) is Verdict.DUPLICATE
    assert tracker.verdict(key(500, 3)) is Verdict.STALE  # REST showed that time twice


def test_watermark_orders_by_time_then_id_and_round_trips() -> None:
    a = ps.Watermark(filled_at=T0, order_id=9)
    b = ps.Watermark(filled_at=T0, order_id=10)
    c = ps.Watermark(filled_at=T0 + timedelta(microseconds=1), order_id=1)
    assert a < b < c
    assert msgspec.json.decode(msgspec.json.encode(b), type=ps.Watermark) == b


# -- live stream -----------------------------------------------------------------------


@virtual
async def test_live_fills_in_order_after_starting_at_the_newest_rest_fill() -> None:
    async with running() as (ex, client):
        await ex.fill(3, push=False)  # history before the stream: not delivered
        async with client.executions.stream(policy=FAST) as fills:
            await until(lambda: ex.live)
            assert fills.position == ps.Watermark(
                filled_at=T0 + timedelta(milliseconds=3), order_id=3
            )
            await ex.fill(4)
            got = await take(fills, 4)
            assert ids(got) == [4, 5, 6, 7]
            assert fills.position == ps.Watermark.of(got[-1])
            assert got[0].price == Decimal("0.65")
        await until(lambda: not ex.open_sockets)  # the server saw the close
        assert fills.stats.connects == 1 and fills.stats.live == 4


@virtual
async def test_drop_is_healed_from_rest_exactly_once_in_order_with_a_gap_marker() -> None:
    async with running() as (ex, client):
        async with client.executions.stream(gaps=True, policy=FAST) as fills:
            await until(lambda: ex.live)
            await ex.fill(3)
            first = await take(fills, 3)
            before = fills.position
            ex.close_new_with = 1011  # keep it down while fills happen
            await ex.close_all(1001)
            await ex.fill(5, push=False)  # missed by the socket
            ex.close_new_with = None
            await until(lambda: ex.live)
            await ex.push({"type": "fill", **ex.row(8)})  # overlaps the backfill: a duplicate
            await ex.fill(2)
            rest = await take(fills, 5 + 2)
        # every reconnect heals (the 1011 ones too); exactly one found the 5 missed fills
        gaps = [g for g in rest if isinstance(g, ps.StreamGap)]
        assert rest[0] is gaps[0] and sum(g.recovered for g in gaps) == 5
        gap = next(g for g in gaps if g.recovered)
        assert rest.index(gap) + 5 < len(rest) or rest[-1] is not gap
        assert gap.after == before
        assert gap.until == ps.Watermark(filled_at=T0 + timedelta(milliseconds=8), order_id=8)
        assert "1001" in gap.reason or "1011" in gap.reason
        assert ids(first + rest) == list(range(1, 11))
        assert fills.stats.duplicates >= 1 and fills.stats.recovered == 5


@virtual
async def test_abrupt_connection_loss_reconnects_and_heals() -> None:
    async with running() as (ex, client):
        async with client.executions.stream(policy=FAST) as fills:
            await until(lambda: ex.live)
            await ex.fill(2)
            got = await take(fills, 2)
            ex.abort_all()
            await ex.fill(3, push=False)
            await until(lambda: ex.connects >= 2 and ex.live)
            await ex.fill(1)
            got += await take(fills, 4)
        assert ids(got) == [1, 2, 3, 4, 5, 6]


@virtual
async def test_close_4001_mints_a_new_token_and_reconnects_without_backoff() -> None:
    events: list[ps.ReconnectEvent] = []
    policy = ps.StreamPolicy(backoff_base=60.0, backoff_max=60.0, stable_after=0.001)
    async with running(hooks=ps.Hooks(on_reconnect=events.append)) as (ex, client):
        async with client.executions.stream(policy=policy) as fills:
            await until(lambda: ex.live)
            await ex.fill(1)
            await take(fills, 1)
            await asyncio.sleep(0.01)  # the connection has been stable
            ex.tokens.clear()  # the token expired server-side
            await ex.close_all(4001)
            await until(lambda: ex.connects == 2 and ex.live)
            await ex.fill(1)
            assert ids(await take(fills, 1)) == [2]
        assert ex.minted == 2 and [e.wait for e in events] == [0.0]
        assert events[0].reason.startswith("close 4001")
        assert fills.stats.token_rejections == 1


@virtual
async def test_repeated_4001_backs_off_instead_of_spinning() -> None:
    async with running() as (ex, client):
        ex.reject_tokens = True
        async with client.executions.stream(policy=FAST) as fills:
            await until(lambda: ex.connects >= 6)
            ex.reject_tokens = False
            await until(lambda: ex.live)
            await ex.fill(1)
            assert ids(await take(fills, 1)) == [1]
        # the first rejection is retried at once, later ones after a backoff
        assert fills.stats.token_rejections >= 6 and ex.minted >= 6


@virtual
async def test_close_4002_backs_off_with_growing_jittered_waits() -> None:
    events: list[ps.ReconnectEvent] = []
    policy = ps.StreamPolicy(backoff_base=1.0, backoff_max=4.0)
    async with running(hooks=ps.Hooks(on_reconnect=events.append)) as (ex, client):
        ex.close_new_with = 4002
        async with client.executions.stream(policy=policy):
            await until(lambda: len(events) >= 5, timeout=60)
    sleeps = [e.wait for e in events]
    assert [e.failures for e in events[:5]] == [1, 2, 3, 4, 5]
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0 and 2.0 <= sleeps[2] <= 4.0
    assert all(2.0 <= s <= 4.0 for s in sleeps[3:5])


@virtual
async def test_mint_failures_back_off_and_a_401_ends_the_stream() -> None:
    # max_retries=0: the stream's own backoff handles the 503s, not the request path's
    async with running(max_retries=0) as (ex, client):
        ex.mint_errors = [(503, "SERVER_BUSY")] * 5 + [(401, "INVALID_KEY")]
        async with client.executions.stream(policy=FAST) as fills:
            with pytest.raises(ps.AuthenticationError):
                await take(fills, 1)
            with pytest.raises(StopAsyncIteration):
                await fills.__anext__()
        assert ex.connects == 0 and not ex.mint_errors


@virtual
async def test_missing_endpoint_is_permanent_and_max_failures_gives_up() -> None:
    async with running() as (ex, client):
        ex.handshake_status = 404
        async with client.executions.stream(policy=FAST) as fills:
            with pytest.raises(ps.StreamClosedError, match="404") as info:
                await take(fills, 1)
        assert "tok" not in str(info.value) and info.value.__cause__ is None  # no token leak
    policy = ps.StreamPolicy(backoff_base=0.001, backoff_max=0.001, max_failures=3)
    async with running() as (ex, client):
        ex.close_new_with = 1011
        async with client.executions.stream(policy=policy) as fills:
            with pytest.raises(ps.StreamClosedError, match="4 failed connections"):
                await take(fills, 1)
        assert ex.connects == 4


@virtual
async def test_idle_socket_is_pinged_and_a_silent_one_replaced() -> None:
    policy = ps.StreamPolicy(
        backoff_base=0.001, backoff_max=0.001, ping_interval=0.02, ping_timeout=0.02
    )
    async with running() as (ex, client), client.executions.stream(policy=policy) as fills:
        await until(lambda: ex.pings >= 3)
        assert ex.connects == 1  # pongs keep it alive
        ex.answer_pings = False
        await until(lambda: ex.connects >= 2)
        ex.answer_pings = True
        await until(lambda: ex.live)
        await ex.fill(1)
        assert ids(await take(fills, 1)) == [1]


@virtual
async def test_a_server_gone_silent_counts_as_failed_connections_whatever_their_length() -> None:
    # Each silent connection lasts ping_interval + ping_timeout, longer than
    # stable_after; it still failed, so max_failures ends the stream.
    policy = ps.StreamPolicy(
        backoff_base=0.001,
        backoff_max=0.001,
        stable_after=1.0,
        ping_interval=5.0,
        ping_timeout=5.0,
        max_failures=2,
        reconcile_interval=None,
    )
    async with running() as (ex, client), client.executions.stream(policy=policy) as fills:
        ex.answer_pings = False
        with pytest.raises(ps.StreamClosedError, match=r"3 failed connections.*ping_timeout"):
            await take(fills, 1, timeout=100)
        assert ex.connects == 3


@virtual
async def test_unreadable_fill_frame_is_healed_from_rest() -> None:
    async with running() as (ex, client):
        async with client.executions.stream(policy=FAST, gaps=True) as fills:
            await until(lambda: ex.live)
            await ex.fill(1, push=False)
            await ex.push({"type": "fill", "order_id": "garbled"})
            got = await take(fills, 1)
            await ex.push("not json at all")
            await ex.fill(1)
            got += await take(fills, 1)
        assert isinstance(got[0], ps.StreamGap) and got[0].reason == "unreadable frame"
        assert ids(got) == [1, 2] and fills.stats.unreadable == 2


@virtual
async def test_late_fill_is_delivered_not_dropped_and_duplicates_are() -> None:
    async with running() as (ex, client):
        async with client.executions.stream(policy=FAST) as fills:
            await until(lambda: ex.live)
            await ex.fill(3, push=False)
            await ex.push({"type": "fill", **ex.row(3)})
            await ex.push({"type": "fill", **ex.row(3)})
            await ex.push({"type": "fill", **ex.row(1)})  # became visible after #3
            await ex.push({"type": "fill", **ex.row(2)})
            await ex.push({"type": "fill", **ex.row(2)})
            got = await take(fills, 3)
        assert ids(got) == [3, 1, 2]
        assert fills.stats.late == 2 and fills.stats.duplicates == 2
        assert fills.position == ps.Watermark.of(got[0])


@virtual
async def test_fills_that_never_reach_the_socket_are_found_by_the_rest_check() -> None:
    policy = ps.StreamPolicy(backoff_base=0.001, reconcile_interval=0.01, lookback=60.0)
    async with running() as (ex, client):
        async with client.executions.stream(policy=policy, gaps=True) as fills:
            await until(lambda: ex.live)
            await ex.fill(2, push=False)  # matched elsewhere: no frame ever comes
            got = await take(fills, 2)
            await ex.fill(1)
            got += await take(fills, 1)
            await ex.fill(1, push=False)  # missed, and overtaken by a live fill
            await ex.push({"type": "fill", **ex.row(len(ex.fills) + 1)})
            ex.fills.append(ex.row(len(ex.fills) + 1))
            got += await take(fills, 2)
        assert isinstance(got[0], ps.StreamGap) and got[0].reason == "reconcile"
        assert got[0].recovered == 2 and ex.connects == 1
        assert ids(got) == [1, 2, 3, 5, 4]  # #4 is late: delivered, out of order
        assert fills.stats.late == 1 and fills.stats.reconciles >= 2
        assert fills.position == ps.Watermark.of(next(f for f in got if ids([f]) == [5]))


@virtual
async def test_resume_from_a_saved_position_delivers_only_what_came_after() -> None:
    async with running() as (ex, client):
        async with client.executions.stream(policy=FAST) as fills:
            await until(lambda: ex.live)
            await ex.fill(6)
            await take(fills, 4)  # 5 and 6 are queued but never handed over
            saved = msgspec.json.encode(fills.position)
        await ex.fill(3, push=False)  # while the process is down
        since = msgspec.json.decode(saved, type=ps.Watermark)
        async with client.executions.stream(since=since, gaps=True, policy=FAST) as fills:
            got = await take(fills, 5)
            await ex.fill(1)
            got += await take(fills, 1)
        assert isinstance(got[0], ps.StreamGap) and got[0].reason == "resume"
        assert got[0].recovered == 5
        assert ids(got) == [5, 6, 7, 8, 9, 10]


@virtual
async def test_slow_consumer_gets_backpressure_not_loss() -> None:
    async with running() as (ex, client):
        async with client.executions.stream(queue_size=2, policy=FAST) as fills:
            await until(lambda: ex.live)
            pushing = asyncio.create_task(ex.fill(200))
            got = []
            async for fill in fills:
                assert fills._queue.qsize() <= 2  # the bound holds
                got.append(fill)
                if len(got) % 50 == 0:
                    await asyncio.sleep(0.01)
                if len(got) == 200:
                    break
            await pushing
        assert ids(got) == list(range(1, 201))


@virtual
async def test_cancelling_the_consumer_closes_the_socket_and_the_task() -> None:
    async with running() as (ex, client):
        before = asyncio.all_tasks()

        async def consume() -> None:
            async with client.executions.stream(policy=FAST) as fills:
                async for _ in fills:
                    pass

        task = asyncio.create_task(consume())
        await until(lambda: ex.live)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert asyncio.all_tasks() - before == set()
        await until(lambda: not ex.open_sockets)


@virtual
async def test_stream_must_be_entered_and_validates_arguments() -> None:
    async with running() as (_, client):
        stream = client.executions.stream()
        with pytest.raises(ps.ClientClosedError):
            await stream.__anext__()
        with pytest.raises(ps.InvalidArgumentError):
            client.executions.stream(queue_size=0)
        with pytest.raises(ps.InvalidArgumentError):
            client.executions.stream(wallet_id="mine")
        with pytest.raises(ps.InvalidArgumentError):
            ps.StreamPolicy(ping_interval=0)
        async with stream:
            pass
        with pytest.raises(ps.ClientClosedError):
            await stream.__aenter__()


def test_ws_url_swaps_the_scheme_and_keeps_a_path_prefix() -> None:
    from polysim_async._transport import ws_url

    assert ws_url("https://api.polysimulator.com", "/v1/ws/executions") == (
        "wss://api.polysimulator.com/v1/ws/executions"
    )
    assert ws_url("http://127.0.0.1:8080/base/", "/v1/x") == "ws://127.0.0.1:8080/base/v1/x"


@virtual
async def test_process_exception_decides_and_a_bug_or_bad_page_ends_the_stream() -> None:
    # Everything fatal: the first transient failure (a 503 on minting) ends the stream.
    strict = ps.StreamPolicy(backoff_base=0.001, process_exception=lambda exc: exc)
    async with running(max_retries=0) as (ex, client):
        ex.mint_errors = [(503, "SERVER_BUSY")]
        async with client.executions.stream(policy=strict) as fills:
            with pytest.raises(ps.ServerError):
                await take(fills, 1)
    # By default a REST answer that does not decode is not transient: it ends the stream.
    async with running() as (ex, client):
        async with client.executions.stream(policy=FAST) as fills:
            await until(lambda: ex.live)
            ex.history_body = b'{"data": "not rows"}'
            await ex.close_all(1011)  # the reconnect heals from REST, which is broken
            with pytest.raises(ps.DecodeError):
                await take(fills, 1)
        assert fills.stats.connects == 2  # not retried in a loop


@virtual
async def test_closing_while_the_handshake_completes_closes_the_new_socket() -> None:
    """Found by running four copies of the suite at once: a socket that opened just as
    the stream was closed was never closed (aiohttp warned "Unclosed connection")."""
    gate = asyncio.Event()

    class Slow(Exchange):
        async def handle_async(self, request: ps.Request) -> ps.Response | ps.MockWebSocket:
            if request.websocket:
                await gate.wait()
            return self.handle(request)

    ex = Slow()
    transport = ps.MockTransport(ex.handle_async)
    async with ps.Client(
        "ps_live_test", BASE, transport=transport, clock=LoopClock(), rate_limit=None
    ) as client:
        fills = client.executions.stream(policy=FAST)
        await fills.__aenter__()
        await until(lambda: any(r.websocket for r in transport.requests))
        gate.set()  # the handshake completes...
        await fills.aclose()  # ...while the stream is being closed
    assert ex.sockets and all(ws.closed for ws in ex.sockets)


@virtual
async def test_a_bug_in_the_transport_surfaces_instead_of_looping() -> None:
    class Buggy(Exchange):
        def mint(self) -> ps.Response:
            raise KeyError("token")  # a bug, not a transient failure

    async with running(Buggy()) as (ex, client):
        async with client.executions.stream(policy=FAST) as fills:
            with pytest.raises(KeyError):
                await take(fills, 1)
        assert ex.connects == 0


# -- proofs against the sandbox (real sockets, real server) ------------------------------

ENTERPRISE = ps.RateLimit(per_second=100, per_minute=6000)


@contextlib.asynccontextmanager
async def sandboxed(seed: int) -> AsyncIterator[tuple[Any, ps.Client]]:
    from polysim_async.sandbox import Sandbox

    async with (
        Sandbox(seed=seed, tier="enterprise") as sb,
        ps.Client(sb.api_key, sb.url, rate_limit=ENTERPRISE) as client,
    ):
        yield sb, client


async def test_sandbox_10000_fills_across_20_drops_and_3_token_expiries_exactly_once() -> None:
    rng = random.Random(11)
    got: list[ps.Fill] = []
    expected: list[int] = []
    async with sandboxed(11) as (sb, client), client.executions.stream(policy=CHECKING) as fills:

        async def consume() -> None:
            async for fill in fills:
                got.append(fill)
                if len(got) == 10_000:
                    return

        consumer = asyncio.create_task(consume())
        sb.ws_chaos(0.006, seed=11)  # abort sockets at random fill frames
        expiries = 0
        while len(expected) < 10_000:
            n = min(2 * rng.randint(20, 200), 10_000 - len(expected))
            pushed = rng.random() < 0.85  # the others never reach any socket
            first = sb.generate_fills(n, push=pushed)
            expected += range(first, first + n)
            if expiries < 3 and len(expected) >= 2_000 * (expiries + 1):
                sb.expire_ws_tokens()
                expiries += 1
            # Let the consumer (nearly) catch up, so most fills go out live and get
            # chaos-dropped. Fills that never reach a socket are found by the REST
            # check; wait for all of them, else they would be overtaken (then they
            # are still delivered, but late, and this test checks the order).
            target = len(expected) - (rng.randint(0, 100) if pushed else 0)
            await until(lambda target=target: len(got) >= target, timeout=30)
        await asyncio.wait_for(consumer, 30)
        stats = fills.stats
    assert [f.order_id for f in got] == expected
    keys = [ps.Watermark.of(f) for f in got]
    assert all(a < b for a, b in itertools.pairwise(keys))
    assert stats.connects >= 21, stats
    assert stats.token_rejections >= 3, stats
    assert stats.live + stats.recovered == 10_000 and stats.late == 0, stats


@pytest.mark.parametrize("shape", ["fill", "execution_nested", "execution_flat"])
async def test_sandbox_frame_shapes_and_malformed_frames(shape: str) -> None:
    async with sandboxed(5) as (sb, client):
        sb.set_fill_frame_shape(shape)
        async with client.executions.stream(policy=FAST) as fills:
            first = sb.generate_fills(10, push=True)
            sb.ws_send_malformed(2)
            second = sb.generate_fills(10, push=True)
            got = await take(fills, 20)
    assert ids(got) == [*range(first, first + 10), *range(second, second + 10)]


async def test_sandbox_consumer_restarts_from_saved_position_and_misses_nothing() -> None:
    async with sandboxed(3) as (sb, client):
        async with client.executions.stream(policy=FAST) as fills:
            first = sb.generate_fills(300, push=True)
            seen = await take(fills, 120)
            saved = msgspec.json.encode(fills.position)  # what an app persists
        second = sb.generate_fills(200)  # while the consumer is down
        since = msgspec.json.decode(saved, type=ps.Watermark)
        async with client.executions.stream(since=since, policy=FAST) as fills:
            rest = await take(fills, 380)
            third = sb.generate_fills(20, push=True)
            rest += await take(fills, 20)
    expected = [*range(first, first + 300), *range(second, second + 200), *range(third, third + 20)]
    assert ids(seen) == expected[:120]
    assert ids(rest) == expected[120:]


async def test_example_fill_listener_resumes_after_a_restart(tmp_path: Path) -> None:
    from polysim_async.sandbox import Sandbox

    position = tmp_path / "position.json"
    async with Sandbox(seed=21) as sb:
        env = {**os.environ, "POLYSIM_API_KEY": sb.api_key, "POLYSIM_BASE_URL": sb.url}
        env.pop("POLYSIM_TENANT_KEY", None)

        async def run(max_fills: int, fills_after_start: int) -> tuple[list[str], int]:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(EXAMPLES / "fill_listener.py"),
                "--position", str(position), "--max", str(max_fills),
                env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            assert proc.stdout is not None
            first = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert b"listening" in first, first + await proc.stdout.read()
            start = sb.generate_fills(fills_after_start, push=True)
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, out.decode()
            return out.decode().splitlines(), start

        lines, first = await run(5, 6)  # handles 5 of the 6, saves the 5th
        fills = [_order(line) for line in lines if not line.startswith("recovered")]
        assert fills == list(range(first, first + 5))
        missed = sb.generate_fills(4)  # while the listener is down
        lines, later = await run(6, 2)
    # 5 or more recovered: the fills made before the socket opened come from REST too
    assert lines[0].startswith("recovered ") and lines[0].endswith("(resume)")
    fills = [_order(line) for line in lines if not line.startswith("recovered")]
    assert fills == [first + 5, *range(missed, missed + 4), later]


def _order(line: str) -> int:
    assert line.startswith("fill order="), line
    return int(line.split()[1].removeprefix("order="))


# -- checkpoints, closing from another task, memory of keys ----------------------------


async def test_sandbox_a_checkpoint_recovers_fills_that_never_reached_the_socket() -> None:
    """A position alone would skip them: the live fills overtook them (review finding)."""
    async with sandboxed(31) as (sb, client):
        async with client.executions.stream(policy=FAST) as fills:
            warm = sb.generate_fills(1, push=True)
            assert ids(await take(fills, 1)) == [warm]  # connected, first heal done
            quiet = sb.generate_fills(2, push=False)  # in REST only, never on the socket
            loud = sb.generate_fills(2, push=True)
            seen = await take(fills, 2)
            assert ids(seen) == [loud, loud + 1]
            saved = msgspec.json.encode(fills.checkpoint)
            position = fills.position
        assert position == ps.Watermark.of(seen[-1])
        since = msgspec.json.decode(saved, type=ps.StreamCheckpoint)
        async with client.executions.stream(since=since, policy=FAST) as fills:
            recovered = await take(fills, 2)
            later = sb.generate_fills(2, push=True)
            recovered += await take(fills, 2)
            assert fills.stats.duplicates >= 0
    assert ids(recovered) == [quiet, quiet + 1, later, later + 1]  # nothing twice


async def test_sandbox_a_checkpoint_leaves_out_fills_still_buffered() -> None:
    async with sandboxed(32) as (sb, client):
        async with client.executions.stream(policy=FAST, queue_size=1000) as fills:
            warm = sb.generate_fills(1, push=True)
            assert ids(await take(fills, 1)) == [warm]
            first = sb.generate_fills(10, push=True)
            got = await take(fills, 4)
            await until(lambda: fills.stats.live + fills.stats.recovered >= 11)  # 6 wait queued
            checkpoint = fills.checkpoint
        assert checkpoint is not None
        assert ids(got) == list(range(first, first + 4))
        async with client.executions.stream(since=checkpoint, policy=FAST) as fills:
            rest = await take(fills, 6)
    assert ids(rest) == list(range(first + 4, first + 10))


async def test_aclose_from_another_task_ends_a_waiting_consumer() -> None:
    async with sandboxed(33) as (_sb, client):
        fills = client.executions.stream(policy=FAST)
        async with fills:
            consumer = asyncio.create_task(take(fills, 1))
            await asyncio.sleep(0.01)  # the consumer now waits for a fill
            await fills.aclose()
            assert await asyncio.wait_for(consumer, 10.0) == []


def test_keys_a_heal_re_reads_are_never_forgotten() -> None:
    """Forgetting by count re-delivered fills the next heal re-read (review finding)."""
    from datetime import datetime, timedelta, timezone

    from polysim_async._fills import FillTracker, Verdict

    t0 = datetime(2026, 6, 1, tzinfo=timezone.utc)
    tracker = FillTracker(ps.Watermark(filled_at=t0, order_id=0), window=10.0)
    keys = [
        ps.Watermark(filled_at=t0 + timedelta(milliseconds=i), order_id=i)
        for i in range(1, 300_001)
    ]
    for key in keys:
        tracker.remember(key)
    assert all(tracker.verdict(key) is Verdict.DUPLICATE for key in keys[:1000])
