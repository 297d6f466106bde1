"""The official PolySimulator SDK (``polysimulator`` 0.6.0, ``polysim_sdk``) against the sandbox.

A client nobody on this team wrote, built from the same public reference, drives the
sandbox over loopback through every trader endpoint both cover: identity, keys and the
tier table, wallets, balance, portfolio, positions, history, settlements, equity, the
API-wallet reset, the CSV exports, market data, place/get/list/cancel orders, batches,
cancel-all and cancel by market, the WebSocket token, the execution stream and the
price stream, plus the SDK's mapping of our error answers (API.md §9.3, §11.1).
Heartbeats and batch prices have no SDK method: they go through the SDK's own
transport (``client._transport.request``), as a user of the SDK would have to.

The sandbox follows the docs; where the SDK does not, the difference is asserted here
as an explicit expectation with a comment:

* ``equity(limit=...)`` sends an undocumented ``limit`` and cannot send ``days`` (API.md
  §13 #9): the server ignores the unknown parameter and answers the default 7 days.
* every 400 and 422 becomes ``ValidationError``, business-rule 400s included.
* ``RateLimitError.code`` is always ``RATE_LIMIT_EXCEEDED`` whatever the server sent.
* ``place_orders`` returns the result list only (``succeeded``/``failed`` are dropped),
  and stamps a *fresh* UUID on every entry without a ``client_order_id`` at every call:
  resending the same list places it again; only entries with their own ids dedupe.
* ``get_candles`` sends ``start_time``/``end_time``, which the API does not define.
* A 422 in FastAPI's ``{"detail": [...]}`` envelope (heartbeats) keeps the header code,
  but its message is the raw body text.
* a 402 ``UPGRADE_REQUIRED`` is a plain ``ApiError`` (its ``feature_key`` in ``payload``).

Time is the sandbox's frozen clock (and, for its rate limits, a fake real-time source);
the SDK's retry sleeps are replaced by a fake that records the wait and advances both,
so nothing here sleeps for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import types
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import polysim_sdk._http
import polysim_sdk.ws
import pytest
from polysim_polymarket.streams._adapt import adapt_execution_frame
from polysim_polymarket.streams._specs import UserSpec
from polysim_sdk.aio import AsyncPolySimClient
from polysim_sdk.exceptions import (
    ApiError,
    ApiKeyRequiredError,
    RateLimitError,
    ValidationError,
)
from polysim_sdk.pagination import aiter_history, aiter_markets, aiter_orders, aiter_settlements
from polysim_sdk.ws import aexecutions_stream, aprices_stream

from polysim_async.sandbox import Sandbox

from ._helpers import FakeTime

_UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_FILL_KEYS = {"type", "order_id", "market_id", "side", "outcome", "price", "quantity", "filled_at"}


class Wire:
    """What went over the wire: every request and response the SDK's httpx client saw."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []

    async def on_request(self, request: httpx.Request) -> None:
        self.requests.append(request)

    async def on_response(self, response: httpx.Response) -> None:
        self.responses.append(response)

    @property
    def last(self) -> httpx.Response:
        return self.responses[-1]


class FakeSleep:
    """Stands in for ``asyncio.sleep`` inside the SDK transport: records, advances the sandbox."""

    def __init__(self) -> None:
        self.sb: Sandbox | None = None
        self.time: FakeTime | None = None
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.sb is not None:
            self.sb.advance(seconds)
        if self.time is not None:
            self.time.advance(seconds)
        await asyncio.sleep(0)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK falls back to these; a developer's real key must never reach the sandbox tests.
    monkeypatch.delenv("POLYSIM_API_KEY", raising=False)
    monkeypatch.delenv("POLYSIM_BASE_URL", raising=False)


@pytest.fixture
async def box() -> AsyncIterator[Sandbox]:
    async with Sandbox(seed=11, frozen_clock=True, random_walk=False, rate_limits=False) as sb:
        yield sb


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> FakeSleep:
    fake = FakeSleep()
    # The transport calls ``asyncio.sleep`` through its module global; swap only that name.
    patched = types.SimpleNamespace(sleep=fake, Lock=asyncio.Lock)
    monkeypatch.setattr(polysim_sdk._http, "asyncio", patched)
    return fake


class SdkClient(AsyncPolySimClient):
    """The official async client, recording its traffic in :attr:`wire`."""

    def __init__(self, api_key: str | None, base_url: str, **kw: Any) -> None:
        # floor_interval=0: the SDK's 50 ms pacing is its own business, not the server's.
        super().__init__(api_key=api_key, base_url=base_url, floor_interval=0, **kw)
        self.wire = Wire()
        self._transport._http.event_hooks = {
            "request": [self.wire.on_request],
            "response": [self.wire.on_response],
        }


ClientFactory = Callable[..., SdkClient]


@pytest.fixture
async def make_client(box: Sandbox, sleeps: FakeSleep) -> AsyncIterator[ClientFactory]:
    """Build SDK clients against ``box``; every one is closed at teardown."""
    sleeps.sb = box
    async with contextlib.AsyncExitStack() as stack:

        def make(api_key: str | None = box.api_key) -> SdkClient:
            client = SdkClient(api_key, box.url)
            stack.push_async_callback(client.aclose)
            return client

        yield make


@pytest.fixture
def client(make_client: ClientFactory) -> SdkClient:
    return make_client()


def _d(value: Any) -> Decimal:
    assert isinstance(value, str), value  # money travels as JSON strings
    return Decimal(value)


async def test_account_and_order_lifecycle(box: Sandbox, client: SdkClient) -> None:
    mid = box.market_id
    bal = await client.balance()
    assert bal == {
        "balance": "10000.00",
        "currency": "USD",
        "starting_balance": "10000.00",
        "unrealized_pnl": "0.00",
        "total_value": "10000.00",
    }
    assert client.wire.requests[-1].url.query == b""  # balance takes no params
    assert await client.positions() == []
    assert await client.history() == []
    assert await client.list_orders() == []

    # Market BUY at a worst price of 0.60 crosses the 0.51 ask; the SDK upper-cases the side.
    mkt = await client.place_order(
        market_id=mid, side="buy", outcome="Yes", quantity="10", price="0.60"
    )
    sent = client.wire.requests[-1]
    assert _UUID4.match(sent.headers["Idempotency-Key"])  # the SDK's automatic key
    assert mkt["status"] == "FILLED" and mkt["order_type"] == "market" and mkt["side"] == "BUY"
    assert (_d(mkt["price"]), _d(mkt["quantity"]), _d(mkt["notional"])) == (
        Decimal("0.51"),
        Decimal(10),
        Decimal("5.10"),
    )
    assert _d(mkt["account_balance"]) == Decimal("9994.90") and mkt["is_replay"] is False
    assert mkt["position"]["status"] == "OPEN" and _d(mkt["position"]["quantity"]) == 10

    # A resting limit BUY reserves its cash up front.
    lim = await client.place_order(
        market_id=mid,
        side="BUY",
        outcome="Yes",
        quantity="10",
        price="0.40",
        order_type="limit",
        client_order_id="lim-1",
    )
    assert client.wire.requests[-1].headers["Idempotency-Key"] == "lim-1"
    assert lim["status"] == "PENDING" and lim["order_type"] == "limit"
    assert _d(lim["price"]) == Decimal("0.40") and lim["client_order_id"] == "lim-1"
    assert _d(lim["account_balance"]) == Decimal("9990.90")
    assert lim["order_id"] != mkt["order_id"]

    got = await client.get_order(mkt["order_id"])
    assert got["order_id"] == mkt["order_id"] and got["status"] == "FILLED"
    assert got["order_type"] == "market" and _d(got["fill_price"]) == Decimal("0.51")
    got = await client.get_order(lim["order_id"], source="pending")
    assert got["status"] == "PENDING" and got["time_in_force"] == "GTC"
    assert _d(got["limit_price"]) == Decimal("0.40") and got["filled_at"] is None
    assert client.wire.requests[-1].url.params["source"] == "pending"

    listed = await client.list_orders()
    assert [o["order_id"] for o in listed] == [lim["order_id"], mkt["order_id"]]
    pending = await client.list_orders(status="PENDING", market_id=mid)
    assert [o["order_id"] for o in pending] == [lim["order_id"]]

    rows = await client.positions()
    assert len(rows) == 1 and rows[0]["market_id"] == mid and rows[0]["status"] == "OPEN"
    assert _d(rows[0]["quantity"]) == 10 and _d(rows[0]["avg_entry_price"]) == Decimal("0.51")
    assert _d(rows[0]["current_price"]) == Decimal("0.50")
    assert await client.positions(status="CLOSED") == []

    hist = await client.history(market_id=mid)
    assert [h["order_id"] for h in hist] == [mkt["order_id"]]
    assert hist[0]["status"] == "FILLED" and _d(hist[0]["notional"]) == Decimal("5.10")

    bal = await client.balance()
    assert _d(bal["balance"]) == Decimal("9990.90")
    # total_value = cash + the 4.00 reserved by the resting BUY + 10 shares at the 0.50 mid;
    # unrealized_pnl is really the total P&L against the baseline (API.md §4.3).
    assert _d(bal["total_value"]) == Decimal("9999.90")
    assert _d(bal["unrealized_pnl"]) == Decimal("-0.10")

    cancelled = await client.cancel_order(lim["order_id"])
    assert cancelled["order_id"] == lim["order_id"] and cancelled["status"] == "CANCELLED"
    assert _d(cancelled["account_balance"]) == Decimal("9994.90")
    with pytest.raises(ValidationError) as info:
        await client.cancel_order(lim["order_id"])
    # SDK quirk: every 400 is a ValidationError, even this business-rule one.
    assert info.value.status_code == 400 and info.value.code == "ORDER_NOT_CANCELLABLE"

    ids = []
    for price in ("0.30", "0.35"):
        order = await client.place_order(
            market_id=mid, side="BUY", outcome="No", quantity="5", price=price, order_type="limit"
        )
        ids.append(order["order_id"])
    result = await client.cancel_all()
    sent = client.wire.requests[-1]
    assert sent.method == "POST" and sent.headers["X-Confirm-Cancel-All"] == "true"
    assert result == {"canceled": [str(i) for i in sorted(ids)], "not_canceled": {}}
    assert await client.list_orders(status="PENDING") == []
    assert _d((await client.balance())["balance"]) == Decimal("9994.90")


async def test_idempotency_keys(box: Sandbox, client: SdkClient) -> None:
    order = {"market_id": box.market_id, "side": "BUY", "outcome": "Yes", "price": "0.60"}
    first = await client.place_order(**order, quantity="5", idempotency_key="retry-me")
    again = await client.place_order(**order, quantity="5", idempotency_key="retry-me")
    assert again["order_id"] == first["order_id"] and again["is_replay"] is True
    assert _d((await client.balance())["balance"]) == Decimal("9997.45")  # debited once
    with pytest.raises(ApiError) as info:
        await client.place_order(**order, quantity="6", idempotency_key="retry-me")
    assert info.value.status_code == 409 and info.value.code == "IDEMPOTENCY_KEY_REUSE"
    # Without a key the SDK mints a fresh UUID4 per call: two calls are two orders.
    a = await client.place_order(**order, quantity="5")
    b = await client.place_order(**order, quantity="5")
    keys = {r.headers["Idempotency-Key"] for r in client.wire.requests[-2:]}
    assert len(keys) == 2 and a["order_id"] != b["order_id"]
    # Numbers (not strings) in the body are coerced by the server (API.md §1.2).
    c = await client.place_order(**{**order, "price": 0.6}, quantity=5.0)
    assert c["status"] == "FILLED" and _d(c["quantity"]) == 5
    a_amount = await client.place_order(**order, amount="10.20")
    assert _d(a_amount["quantity"]) == 17  # floor4(amount / price): 10.20 / 0.60


async def test_sdk_offset_iterators(box: Sandbox, client: SdkClient) -> None:
    # The SDK pages history and orders by limit/offset (100 a page) until a short page.
    first = box.generate_fills(250)
    rows = [row async for row in aiter_history(client)]
    assert [r["order_id"] for r in rows] == list(range(first + 249, first - 1, -1))
    offsets = [r.url.params["offset"] for r in client.wire.requests]
    assert offsets == ["0", "100", "200"]
    ids = await box.place_resting_orders(120)
    orders = [o async for o in aiter_orders(client, status="PENDING")]
    assert [o["order_id"] for o in orders] == sorted(ids, reverse=True)
    assert {o["status"] for o in orders} == {"PENDING"}


async def test_equity_ignores_the_sdks_limit(box: Sandbox, client: SdkClient) -> None:
    await client.place_order(
        market_id=box.market_id, side="BUY", outcome="Yes", quantity="100", price="0.60"
    )
    box.advance(days=8)  # one snapshot per simulated hour
    # SDK quirk (API.md §13 #9): equity(limit=3) sends ?limit=3, which the API does not
    # define; the server ignores it and answers the documented default of days=7.
    points = await client.equity(limit=3)
    assert client.wire.requests[-1].url.params["limit"] == "3"
    assert len(points) == 7 * 24
    stamps = [p["timestamp"] for p in points]
    assert stamps == sorted(stamps) and stamps[-1] == box.now().strftime("%Y-%m-%dT%H:00:00Z")
    last = points[-1]
    assert set(last) == {"timestamp", "cash_balance", "position_value", "total_value", "pnl"}
    assert _d(last["cash_balance"]) == Decimal("9949.00")
    assert _d(last["position_value"]) == Decimal("50.00")
    assert _d(last["total_value"]) == Decimal("9999.00") and _d(last["pnl"]) == Decimal("-1.00")
    # The same list as an explicit days=7 (which the SDK cannot send), and wallet_id passes.
    raw = await client._transport.request("GET", "/v1/account/equity", params={"days": 7})
    assert raw == {"_list": points}  # the transport wraps a bare JSON array under "_list"
    assert await client.equity(wallet_id="api") == points


async def test_execution_stream(box: Sandbox, client: SdkClient) -> None:
    token = await client.ws_token()
    assert set(token) == {"token", "expires_in"} and token["expires_in"] == 60
    async with contextlib.aclosing(aexecutions_stream(client, max_reconnects=0)) as stream:

        async def next_frame() -> dict[str, Any]:
            frame: dict[str, Any] = await asyncio.wait_for(stream.__anext__(), 2)
            return frame

        hello = await next_frame()
        assert hello == {"type": "connected", "user_id": box.user_id, "protocol_version": "1.0"}

        first = box.generate_fills(4, push=True)
        fills = [await next_frame() for _ in range(4)]
        assert [f["order_id"] for f in fills] == list(range(first, first + 4))
        assert [f["side"] for f in fills] == ["BUY", "SELL", "BUY", "SELL"]
        for f in fills:
            assert f["type"] == "fill" and set(f) == _FILL_KEYS and f["market_id"] == box.market_id

        resting = await client.place_order(
            market_id=box.market_id,
            side="BUY",
            outcome="Yes",
            quantity="5",
            price="0.45",
            order_type="limit",
        )
        assert box.set_price(box.market_id, "0.40") == 1
        fill = await next_frame()
        assert fill["order_id"] == resting["order_id"] and set(fill) == _FILL_KEYS
        assert (fill["side"], fill["outcome"], fill["price"], fill["quantity"]) == (
            "BUY",
            "Yes",
            "0.4500",
            "5.0000",
        )
        filled_at = datetime.fromisoformat(fill["filled_at"].replace("Z", "+00:00"))
        assert fill["filled_at"].endswith("Z") and abs(filled_at - box.now()) < timedelta(seconds=1)
        # The SDK's Polymarket mirror turns each flat fill into a trade and an order event.
        trade, order = adapt_execution_frame(fill, UserSpec())
        assert trade.type == "trade" and order.type == "order"
        assert (await client.get_order(resting["order_id"]))["status"] == "FILLED"


async def test_execution_stream_reconnects(
    box: Sandbox, client: SdkClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stream's back-off sleeps through the ws module's ``asyncio``; record instead of wait.
    waits: list[float] = []

    async def no_wait(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(polysim_sdk.ws, "asyncio", types.SimpleNamespace(sleep=no_wait))
    box.ws_drop_after(1, code=1011)
    stream = aexecutions_stream(client, max_reconnects=1)
    async with contextlib.aclosing(stream):
        assert (await asyncio.wait_for(stream.__anext__(), 2))["type"] == "connected"
        first = box.generate_fills(1, push=True)
        assert (await asyncio.wait_for(stream.__anext__(), 2))["order_id"] == first
        # The server closed with 1011; the SDK waits its back-off, re-mints and reconnects.
        box.clear_faults()
        assert (await asyncio.wait_for(stream.__anext__(), 2))["type"] == "connected"
        assert len(waits) == 1 and 0.25 <= waits[0] <= 0.5
        mints = [r for r in client.wire.requests if r.url.path == "/v1/keys/ws-token"]
        assert len(mints) == 2
        second = box.generate_fills(1, push=True)
        assert (await asyncio.wait_for(stream.__anext__(), 2))["order_id"] == second


async def test_error_mapping(box: Sandbox, make_client: ClientFactory) -> None:
    client = make_client()
    w = client.wire

    def matches_headers(exc: ApiError) -> None:
        # The SDK takes the code from X-Polysim-Code and the id from X-Request-Id.
        assert exc.code == w.last.headers["X-Polysim-Code"]
        assert exc.request_id == w.last.headers["X-Request-Id"] and exc.request_id
        assert exc.payload == {"error": exc.code, "message": exc.payload["message"]}

    with pytest.raises(ApiError) as info:
        await client.get_order(987654)
    assert type(info.value) is ApiError and info.value.status_code == 404
    assert info.value.code == "ORDER_NOT_FOUND"
    matches_headers(info.value)

    with pytest.raises(ValidationError) as vinfo:
        await client.place_order(
            market_id=box.market_id,
            side="BUY",
            outcome="Yes",
            quantity="5",
            price="1.50",
            order_type="limit",
        )
    assert vinfo.value.status_code == 422 and vinfo.value.code == "VALIDATION_FAILED"
    matches_headers(vinfo.value)
    with pytest.raises(ValidationError) as vinfo:
        await client.get_order("not-a-number")
    assert vinfo.value.status_code == 422 and vinfo.value.code == "VALIDATION_FAILED"
    with pytest.raises(ValidationError) as vinfo:
        await client.place_order(
            market_id=box.market_id, side="BUY", outcome="Yes", quantity="1", price="0.60"
        )
    assert vinfo.value.status_code == 400 and vinfo.value.code == "INVALID_ORDER_MIN_SIZE"

    # 500 is terminal for the SDK (API.md §9.3): one request, no retry.
    box.fail_next("/v1/account/balance", status=500, code="INTERNAL_ERROR")
    sent = len(w.requests)
    with pytest.raises(ApiError) as info:
        await client.balance()
    assert info.value.status_code == 500 and info.value.code == "INTERNAL_ERROR"
    assert len(w.requests) == sent + 1
    matches_headers(info.value)

    bad = make_client(api_key="ps_live_" + "0" * 64)
    with pytest.raises(ApiError) as info:
        await bad.balance()
    # A client that has a key gets a plain ApiError on 401 (the key was rejected).
    assert type(info.value) is ApiError and info.value.status_code == 401
    assert info.value.code == "INVALID_KEY" and info.value.request_id

    keyless = make_client(api_key=None)
    assert "X-API-Key" not in keyless._transport._http.headers
    with pytest.raises(ApiKeyRequiredError) as kinfo:
        await keyless.balance()
    # Balance takes a key or a JWT: MISSING_AUTH (API.md §4.3); key-only routes differ.
    assert kinfo.value.status_code == 401 and kinfo.value.code == "MISSING_AUTH"
    with pytest.raises(ApiKeyRequiredError) as kinfo:
        await keyless.positions()
    assert kinfo.value.code == "MISSING_API_KEY" and kinfo.value.request_id


async def test_rate_limit_retry_after(
    box: Sandbox, make_client: ClientFactory, sleeps: FakeSleep
) -> None:
    client = make_client()
    w = client.wire
    # Retry-After: 0 -> the SDK still waits its 0.1 s floor, then succeeds.
    box.fail_next("/v1/account/balance", status=429, code="RATE_LIMIT_EXCEEDED", retry_after=0)
    assert (await client.balance())["balance"] == "10000.00"
    assert sleeps.waits == [0.1]
    assert [r.status_code for r in w.responses] == [429, 200]
    assert w.responses[0].headers["Retry-After"] == "0"

    # Retry-After: 2 on every attempt -> three waits of 2 s (fake), then RateLimitError.
    sleeps.waits.clear()
    box.fail_next(
        "/v1/account/positions", status=429, code="RATE_LIMIT_EXCEEDED", retry_after=2, times=4
    )
    with pytest.raises(RateLimitError) as info:
        await client.positions()
    assert sleeps.waits == [2.0, 2.0, 2.0]
    assert info.value.retry_after == 2.0 and info.value.status_code == 429
    assert info.value.code == "RATE_LIMIT_EXCEEDED" and info.value.request_id

    # Above the SDK's max_retry_after ceiling (60 s) it raises at once, without sleeping.
    sleeps.waits.clear()
    box.fail_next("/v1/account/history", status=429, code="RATE_LIMITED", retry_after=120)
    with pytest.raises(RateLimitError) as info:
        await client.history()
    assert sleeps.waits == [] and info.value.retry_after == 120.0
    # SDK quirk: RateLimitError.code is fixed; the server's code stays in the payload.
    assert (
        info.value.code == "RATE_LIMIT_EXCEEDED" and info.value.payload["error"] == "RATE_LIMITED"
    )


async def test_real_rate_limiter(sleeps: FakeSleep) -> None:
    """The sandbox's own per-key limiter (tier pro: 10/s) and the SDK's honouring of it."""
    start = datetime(2026, 6, 1, 12, 0, 30, tzinfo=timezone.utc)
    # Rate limits count real time: here a fake real time, moved only by the SDK's sleeps.
    sleeps.time = FakeTime(wall=start.timestamp())
    async with Sandbox(
        seed=12, start=start, frozen_clock=True, random_walk=False, rate_clock=sleeps.time
    ) as sb:
        sleeps.sb = sb
        async with SdkClient(sb.api_key, sb.url) as c:
            for _ in range(11):
                assert (await c.balance())["currency"] == "USD"
        w = c.wire
        first = w.responses[0].headers
        assert (first["x-ratelimit-limit"], first["x-ratelimit-remaining"]) == ("600", "599")
        # Trader resets are epoch seconds of the next clock minute (API.md §7.2, §13 #11).
        assert int(first["x-ratelimit-reset"]) == start.timestamp() + 30
        codes = [r.status_code for r in w.responses]
        assert codes == [200] * 10 + [429, 200]
        limited = w.responses[10]
        assert limited.headers["Retry-After"] == "1"
        assert limited.headers["X-Polysim-Code"] == "RATE_LIMIT_EXCEEDED"
        assert limited.headers["x-ratelimit-tier"] == "pro"
        assert limited.headers["x-ratelimit-remaining-per-second"] == "0"
        assert sleeps.waits == [1.0]  # time moved on by exactly the Retry-After


async def test_identity_keys_and_wallets(box: Sandbox, client: SdkClient) -> None:
    me = await client.me()
    assert (me["user_id"], me["tier"], me["balance"]) == (box.user_id, "pro", "10000.00")
    assert (await client.me(wallet_id="all"))["balance"] == "10000.00"
    assert client.wire.requests[-1].url.params["wallet_id"] == "all"
    tiers = await client.tiers()
    assert [t["tier"] for t in tiers] == ["free", "pro", "pro_plus", "enterprise"]
    created = await client.create_key(name="sdk-bot", permissions=["read"])
    assert created["raw_key"].startswith("ps_live_") and created["permissions"] == ["read"]
    assert client.wire.last.status_code == 201
    renamed = await client.rename_key(created["id"], name="sdk-bot-2")
    assert renamed["name"] == "sdk-bot-2" and "raw_key" not in renamed
    rotated = await client.rotate_key(created["id"])
    assert rotated["id"] != created["id"] and rotated["raw_key"] != created["raw_key"]
    assert await client.delete_key(rotated["id"]) == {"message": "Key revoked successfully"}
    keys = await client.list_keys()
    assert [(k["name"], k["is_active"]) for k in keys] == [
        ("default", True),
        ("sdk-bot-2", True),  # the rotated half, until its 24 h overlap ends
        ("sdk-bot-2", False),
    ]
    assert keys[1]["expires_at"] is not None
    # The SDK's create_wallet takes ``name`` and sends it as ``label``.
    wallet = await client.create_wallet(name="lab", kind="SANDBOX")
    assert client.wire.requests[-1].content == b'{"label":"lab","kind":"SANDBOX"}'
    assert (wallet["kind"], wallet["label"], wallet["generation"]) == ("SANDBOX", "lab", 1)
    assert await client.get_wallet(wallet["id"]) == wallet
    assert (await client.update_wallet(wallet["id"], name="lab-2"))["label"] == "lab-2"
    fresh = await client.reset_wallet(wallet["id"])
    assert (fresh["generation"], fresh["parent_wallet_id"]) == (2, wallet["id"])
    assert (await client.archive_wallet(fresh["id"]))["status"] == "ARCHIVED"
    listed = await client.list_wallets(limit=2, offset=1)
    assert [w["id"] for w in listed] == [wallet["id"], fresh["id"]]
    with pytest.raises(ApiError) as info:
        await client.get_wallet(1)
    assert info.value.status_code == 404 and info.value.code == "WALLET_NOT_FOUND"


async def test_market_data(box: Sandbox, client: SdkClient) -> None:
    hot = box.create_market(question="Will BTC reach 100k?", category="crypto", volume="9000")
    box.set_price(hot, "0.65")
    rows = await client.list_markets(limit=10, q="btc", hot_only=True)
    assert [m["condition_id"] for m in rows] == [hot]  # a bare array without envelope=true
    assert rows[0]["live_price"]["buy"] == "0.6500"
    every = [m["condition_id"] async for m in aiter_markets(client, page_size=2)]
    assert every[0] == hot and len(every) == 4
    assert [r.url.params["offset"] for r in client.wire.requests[-3:]] == ["0", "2", "4"]
    detail = await client.get_market(hot)
    assert detail["tokens"][0]["price"] == 0.65  # the one documented JSON number
    assert (await client.get_market_by_slug(detail["slug"]))["condition_id"] == hot
    yes, no = detail["clob_token_ids"]
    assert await client.get_market_by_token(no) == {
        "condition_id": hot,
        "primary_token_id": yes,
        "outcome": "No",
    }
    book = await client.get_book(hot, outcome="No", depth=2)
    assert [lv["price"] for lv in book["bids"]] == ["0.3300", "0.3400"]  # best level last
    assert await client.get_book_by_token(no, depth=2) == book
    box.advance(hours=2)
    # SDK quirk: get_candles sends start_time/end_time, which the API does not define;
    # the server ignores them.
    candles = await client.get_candles(hot, interval="1h", start_time=1, end_time=2)
    assert client.wire.requests[-1].url.params["start_time"] == "1"
    assert [c["c"] for c in candles] == ["0.6500"] * 3
    # No SDK method for batch prices: through its transport.
    got = await client._transport.request(
        "POST", "/v1/prices/batch", json_body={"market_ids": [hot, "0xnope"]}
    )
    assert got["_list"] == [
        {
            "condition_id": hot,
            "buy": "0.6500",
            "sell": "0.3500",
            "outcomes": got["_list"][0]["outcomes"],
            "source": "websocket",
        },
        {"condition_id": "0xnope"},
    ]
    with pytest.raises(ApiError) as info:
        await client.get_market("0xnope")
    assert info.value.status_code == 404 and info.value.code == "MARKET_NOT_FOUND"
    with pytest.raises(ValidationError) as vinfo:
        await client.get_candles(hot, interval="5m")
    assert vinfo.value.code == "INVALID_INTERVAL"
    assert vinfo.value.payload["supported_intervals"] == ["1h", "6h", "1d", "1w", "max"]


async def test_batch_orders_cancel_by_market_and_heartbeats(
    box: Sandbox, client: SdkClient
) -> None:
    entry = {
        "market_id": box.market_id,
        "side": "BUY",
        "outcome": "Yes",
        "order_type": "limit",
        "price": "0.30",
        "quantity": "5",
    }
    results = await client.place_orders([entry, {**entry, "market_id": "0xnope"}])
    sent = json.loads(client.wire.requests[-1].content)
    assert "Idempotency-Key" not in client.wire.requests[-1].headers
    assert len({o["client_order_id"] for o in sent["orders"]}) == 2  # one UUID per entry
    # SDK quirk: the counts are dropped; the list is all a caller gets.
    assert [(r["status"], r["error"]) for r in results] == [
        ("PENDING", None),
        ("REJECTED", "MARKET_NOT_FOUND"),
    ]
    # SDK quirk: a resend of the same entries gets fresh UUIDs, so it places again ...
    await client.place_orders([entry])
    assert len(await client.list_orders(status="PENDING")) == 2
    # ... while entries carrying their own ids dedupe, entry by entry.
    keyed = [{**entry, "client_order_id": "sdk-1"}, {**entry, "client_order_id": "sdk-2"}]
    first = await client.place_orders(keyed)
    again = await client.place_orders(keyed)
    assert [r["order_id"] for r in again] == [r["order_id"] for r in first]
    assert [r["is_replay"] for r in again] == [True, True]
    with pytest.raises(ValidationError) as vinfo:
        await client.place_orders([entry] * 6)  # pro: 5
    assert vinfo.value.status_code == 400 and vinfo.value.code == "BATCH_LIMIT_EXCEEDED"
    cancelled = await client.cancel_market_orders(box.market_id)
    assert client.wire.requests[-1].url.params["market"] == box.market_id
    assert len(cancelled["canceled"]) == 4 and cancelled["not_canceled"] == {}
    # No SDK method for heartbeats: through its transport.
    beat = await client._transport.request(
        "POST", "/v1/heartbeats", json_body={"interval_ms": 5000, "client_label": "sdk"}
    )
    assert beat == {"ok": True, "expires_at_ms": int(box.now().timestamp() * 1000) + 6250}
    resting = await client.place_order(**entry)
    box.advance(6.251)  # no further beat: the switch fires
    assert (await client.get_order(resting["order_id"]))["cancelled_reason"] == (
        "heartbeat_expired"
    )
    with pytest.raises(ValidationError) as vinfo:
        await client._transport.request("POST", "/heartbeats", json_body={"interval_ms": 10})
    # SDK quirk: the header code survives, the message is the raw detail body.
    assert vinfo.value.code == "VALIDATION_FAILED" and vinfo.value.status_code == 422
    assert "greater_than_equal" in str(vinfo.value)


async def test_portfolio_settlements_reset_and_exports(
    box: Sandbox, make_client: ClientFactory
) -> None:
    client = make_client()
    markets = [box.create_market(question=f"S{i}?") for i in range(3)]
    for market_id in markets:
        await client.place_order(
            market_id=market_id, side="BUY", outcome="Yes", quantity="10", price="0.99"
        )
    folio = await client.portfolio()
    assert len(folio["positions"]) == 3 and folio["total_trades"] == 3
    assert "market_question" not in folio["positions"][0]
    box.resolve_market(markets[0], "Yes")
    box.resolve_market(markets[1], "No")
    page = await client.settlements(limit=1)
    assert [r["market_id"] for r in page["data"]] == [markets[1]] and page["next_cursor"]
    rows = [r async for r in aiter_settlements(client, page_size=1)]
    assert [(r["result"], r["payout"]) for r in rows] == [("lost", "0.00"), ("won", "10.00")]
    assert (await client.portfolio())["win_rate"] == "50.0%"
    trades = await client.export_trades_csv(market_id=markets[2])
    assert trades.splitlines()[0].startswith("filled_at,order_id,wallet_id,market_id")
    assert len(trades.splitlines()) == 2
    settled = await client.export_settlements_csv(from_="2026-06-01")
    assert client.wire.requests[-1].url.params["from"] == "2026-06-01"
    assert len(settled.splitlines()) == 3
    reset = await client.reset_api_balance()
    assert reset == {
        "message": "API balance reset to $10,000.00",
        "new_api_balance": "10000.00",
        "positions_closed": 1,
        "cooldown_days": 0,
    }
    free = make_client(api_key=box.create_trader(tier="free").api_key)
    with pytest.raises(ApiError) as info:
        await free.export_trades_csv()
    # SDK quirk: a 402 is a plain ApiError; the feature stays in the payload.
    assert type(info.value) is ApiError and info.value.status_code == 402
    assert info.value.code == "UPGRADE_REQUIRED"
    assert info.value.payload["feature_key"] == "exports.csv"


async def test_prices_stream(box: Sandbox, client: SdkClient) -> None:
    stream = aprices_stream(client, [box.market_id], max_reconnects=0)
    async with contextlib.aclosing(stream):

        async def next_frame() -> dict[str, Any]:
            frame: dict[str, Any] = await asyncio.wait_for(stream.__anext__(), 2)
            return frame

        assert (await next_frame())["type"] == "connected"
        # The SDK subscribes with the PolySim-native frame right after connecting.
        assert await next_frame() == {"type": "subscribed", "markets": [box.market_id]}
        box.set_price(box.market_id, "0.58")
        tick = await next_frame()
        assert (tick["type"], tick["market_id"], tick["buy"], tick["best_bid"]) == (
            "price",
            box.market_id,
            "0.5800",
            "0.5700",
        )
        # The doc's own recipe skips frames without best_bid (the subscribe ack) and reads
        # last_trade; it is present once the market has traded.
        await client.place_order(
            market_id=box.market_id, side="BUY", outcome="Yes", quantity="5", price="0.99"
        )
        box.set_price(box.market_id, "0.60")
        assert (await next_frame())["last_trade"] == "0.5900"
