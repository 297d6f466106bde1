"""``client.orders``: validation, the idempotency key, retry rules, reads, cancels.

Edge cases through MockTransport; the lost-answer proofs over real sockets (an
inline server, then the sandbox).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

import polysim_async as ps

from ._helpers import (
    FakeClock,
    Routes,
    SkipClock,
    base_of,
    calls,
    error_body,
    make_client,
    sent_json,
    serve,
    url,
)

ORDERS = url("/v1/orders")
LIMIT: dict[str, Any] = {
    "market_id": "0xabc",
    "side": "buy",
    "outcome": "Yes",
    "order_type": "limit",
    "price": "0.60",
    "quantity": "10",
}
ORDER = {
    "order_id": 42,
    "status": "PENDING",
    "order_type": "limit",
    "side": "BUY",
    "outcome": "Yes",
    "price": "0.60",
    "quantity": "10.0000",
    "client_order_id": "limit-001",
}


CLIENT: dict[str, Any] = {"api_key": "ps_live_x", "rate_limit": None}
ROW = {
    "order_id": 42,
    "market_id": "0xabc",
    "side": "BUY",
    "outcome": "Yes",
    "order_type": "limit",
    "status": "PENDING",
    "quantity": "10.0000",
    "limit_price": "0.60",
    "time_in_force": "GTC",
    "created_at": "2026-02-06T11:55:00+00:00",
}


def keys_sent(mock: Routes) -> list[str]:
    return [kw["headers"]["Idempotency-Key"] for _, _, kw in calls(mock, "POST")]


# -- validation (nothing is sent) ------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"quantity": None}, "exactly one of quantity"),
        ({"amount": "5"}, "exactly one of quantity"),
        ({"quantity": None, "amount": "5"}, "only allowed on a BUY market"),
        ({"order_type": "market", "side": "SELL", "quantity": None, "amount": "5"}, "BUY market"),
        ({"price": None}, "price is required: the limit price"),
        ({"order_type": "market", "price": None}, "worst acceptable price"),
        ({"price": 0.6}, "not float"),
        ({"quantity": 10.5}, "not float"),
        ({"price": "0.00001"}, "more than 4 decimal places"),
        ({"quantity": "1.23456"}, "more than 4 decimal places"),
        ({"price": "1"}, "below 1"),
        ({"order_type": "market", "price": "1.01"}, "at most 1"),
        ({"price": "-0.5"}, "greater than zero"),
        ({"quantity": "0"}, "greater than zero"),
        ({"side": "HOLD"}, "side must be one of"),
        ({"order_type": "stop"}, "order_type must be one of"),
        ({"time_in_force": "GTD"}, "expiration is required with GTD"),
        ({"expiration": 1_900_000_000}, "only with GTD"),
        ({"time_in_force": "GTD", "expiration": datetime(2030, 1, 1)}, "timezone-aware"),
        ({"post_only": True, "time_in_force": "IOC"}, "post_only needs a resting"),
        ({"post_only": True, "order_type": "market"}, "post_only needs a resting"),
        ({"market_id": ""}, "market_id must be"),
        ({"outcome": "x" * 201}, "outcome must be"),
        ({"client_order_id": "k" * 257}, "client_order_id must be"),
    ],
)
async def test_bad_orders_are_refused_before_sending(
    mock: Routes, changes: dict[str, Any], message: str
) -> None:
    async with make_client() as client:
        with pytest.raises(ps.InvalidArgumentError, match=message):
            await client.orders.place(**{**LIMIT, **changes})
    assert calls(mock) == []


# -- the request --------------------------------------------------------------------------


async def test_body_is_exact_and_client_order_id_is_the_idempotency_key(
    mock: Routes,
) -> None:
    mock.post(ORDERS, payload=ORDER)
    async with make_client() as client:
        order = await client.orders.place(
            **LIMIT, time_in_force="gtc", client_order_id="limit-001", post_only=True
        )
    assert order.order_id == 42 and order.status is ps.OrderStatus.PENDING
    [(_, _, kwargs)] = calls(mock)
    assert kwargs["headers"]["Idempotency-Key"] == "limit-001"
    assert sent_json(kwargs) == {
        "market_id": "0xabc",
        "side": "BUY",
        "outcome": "Yes",
        "quantity": "10",
        "order_type": "limit",
        "price": "0.60",
        "time_in_force": "GTC",
        "client_order_id": "limit-001",
        "post_only": True,
    }


async def test_a_key_is_generated_and_also_sent_as_client_order_id(mock: Routes) -> None:
    mock.post(ORDERS, payload=ORDER, repeat=True)
    async with make_client() as client:
        await client.orders.place(
            market_id="0xabc",
            side=ps.Side.BUY,
            outcome="Yes",
            order_type=ps.OrderType.MARKET,
            price=Decimal("0.99"),
            amount=Decimal("25.50"),
        )
        await client.orders.place(**LIMIT)
    first, second = keys_sent(mock)
    assert first != second and len(first) == 32
    bodies = [sent_json(kw) for _, _, kw in calls(mock, "POST")]
    assert bodies[0]["client_order_id"] == first and bodies[0]["amount"] == "25.50"
    # PlaceOrderRequest omits defaults, and "market" is the default (the server's too)
    assert "quantity" not in bodies[0] and bodies[0].get("order_type", "market") == "market"


async def test_gtd_expiration_accepts_an_aware_datetime(mock: Routes) -> None:
    mock.post(ORDERS, payload=ORDER)
    when = datetime(2030, 1, 1, tzinfo=timezone.utc)
    async with make_client() as client:
        await client.orders.place(**LIMIT, time_in_force="GTD", expiration=when)
    [(_, _, kwargs)] = calls(mock)
    assert sent_json(kwargs)["expiration"] == int(when.timestamp())


# -- retries: always the same key ---------------------------------------------------------


@pytest.mark.parametrize(
    "first",
    [
        {"exception": ps.NetworkError("connection lost")},  # the answer was lost
        {
            "status": 409,
            "headers": {"Retry-After": "1"},
            "payload": error_body("IDEMPOTENCY_CONFLICT_PENDING"),
        },
        {
            "status": 409,
            "headers": {"Retry-After": "1", "X-Polysim-Code": "LOCK_BUSY_RETRY"},
            "payload": error_body("TRADE_IN_PROGRESS"),
        },
        {"status": 503, "headers": {"Retry-After": "1"}, "payload": error_body("SERVER_BUSY")},
        {"status": 429, "headers": {"Retry-After": "1"}, "payload": error_body("RATE_LIMITED")},
    ],
)
async def test_retries_reuse_the_same_key(mock: Routes, first: dict[str, Any]) -> None:
    clock = FakeClock()
    mock.post(ORDERS, **first)
    mock.post(ORDERS, payload={**ORDER, "is_replay": True})
    async with make_client(clock) as client:
        order = await client.orders.place(**LIMIT)
    sent = keys_sent(mock)
    assert len(sent) == 2 and sent[0] == sent[1]
    assert order.order_id == 42
    if "status" in first:
        assert clock.sleeps == [1.0]


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (503, "PERSISTENCE_UNKNOWN", ps.ServerError),
        (503, "DEADLINE_OVERSHOT_BUT_PERSISTED", ps.ServerError),
        (503, "VENUE_UNAVAILABLE", ps.VenueUnavailableError),
        (409, "IDEMPOTENCY_KEY_REUSE", ps.ConflictError),
        (409, "DUPLICATE_CLIENT_ORDER_ID", ps.ConflictError),
        (400, "INSUFFICIENT_BALANCE", ps.ValidationError),
        (500, "EXECUTION_ERROR", ps.ServerError),
    ],
)
async def test_uncertain_or_final_outcomes_are_never_retried(
    mock: Routes, status: int, code: str, error: type[ps.APIStatusError]
) -> None:
    headers = {"X-Polysim-Code": code, "Retry-After": "1", "X-Polysim-Order-Id": "77"}
    mock.post(ORDERS, status=status, headers=headers, payload=error_body(code))
    async with make_client() as client:
        with pytest.raises(error) as info:
            await client.orders.place(**LIMIT)
    assert info.value.code == code and len(calls(mock)) == 1
    assert info.value.headers["X-Polysim-Order-Id"] == "77"


# -- reads and cancels --------------------------------------------------------------------


async def test_get_forwards_source_and_wallet_and_validates(mock: Routes) -> None:
    mock.get(url("/v1/orders/42"), payload=ROW)
    async with make_client() as client:
        row = await client.orders.get(42, source="pending", wallet_id=7)
        with pytest.raises(ps.InvalidArgumentError):
            await client.orders.get(42, source="both")
        with pytest.raises(ps.InvalidArgumentError):
            await client.orders.get(0)
    assert row.limit_price == Decimal("0.60") and row.time_in_force is ps.TimeInForce.GTC
    [(_, sent_url, _)] = calls(mock)
    assert "source=pending" in sent_url and "wallet_id=7" in sent_url


async def test_list_walks_every_page_until_has_more_is_false(mock: Routes) -> None:
    mock.get(url("/v1/orders"), payload={"orders": [ROW], "next_cursor": "c1", "has_more": True})
    page2 = {"orders": [{**ROW, "order_id": 41}], "next_cursor": "c2", "has_more": False}
    mock.get(url("/v1/orders"), payload=page2)
    async with make_client() as client:
        rows = [r.order_id async for r in client.orders.list(status="filled", page_size=1)]
        with pytest.raises(ps.InvalidArgumentError):
            client.orders.list(status="REJECTED")
        with pytest.raises(ps.InvalidArgumentError):
            client.orders.list(page_size=201)
    assert rows == [42, 41]
    urls = [u for _, u, _ in calls(mock)]
    assert "status=FILLED" in urls[0] and "cursor" not in urls[0] and "cursor=c1" in urls[1]


async def test_cancel_and_cancel_all(mock: Routes) -> None:
    mock.delete(url("/v1/orders/42"), payload={**ORDER, "status": "CANCELLED"})
    mock.post(url("/v1/cancel-all"), payload={"canceled": ["42"], "not_canceled": {"43": "busy"}})
    async with make_client() as client:
        cancelled = await client.orders.cancel(42)
        swept = await client.orders.cancel_all()
    assert cancelled.status is ps.OrderStatus.CANCELLED
    assert swept == ps.CancelAllResult(canceled=["42"], not_canceled={"43": "busy"})
    sweep = calls(mock, "POST")[0][2]
    assert sweep["headers"]["X-Confirm-Cancel-All"] == "true"


async def test_a_repeated_cancel_refused_as_not_cancellable_succeeds_if_the_order_is_cancelled(
    mock: Routes,
) -> None:
    # The first DELETE cancelled the order but its answer was lost; the repeat is refused.
    mock.delete(url("/v1/orders/42"), exception=ConnectionResetError("answer lost"))
    mock.delete(
        url("/v1/orders/42"), status=400, payload=error_body("ORDER_NOT_CANCELLABLE", "CANCELLED")
    )
    mock.get(url("/v1/orders/42"), payload={**ROW, "status": "CANCELLED"})
    async with make_client() as client:
        cancelled = await client.orders.cancel(42)
    assert cancelled.status is ps.OrderStatus.CANCELLED and cancelled.order_id == 42
    assert cancelled.price == Decimal("0.60") and cancelled.market_id == ROW["market_id"]
    [(_, read, _)] = calls(mock, "GET")
    assert "source=pending" in read


async def test_a_repeated_cancel_of_an_order_that_filled_meanwhile_is_refused(
    mock: Routes,
) -> None:
    mock.delete(url("/v1/orders/42"), exception=ConnectionResetError("answer lost"))
    mock.delete(
        url("/v1/orders/42"), status=400, payload=error_body("ORDER_NOT_CANCELLABLE", "FILLED")
    )
    mock.get(url("/v1/orders/42"), payload={**ROW, "status": "FILLED"})
    async with make_client() as client:
        with pytest.raises(ps.ValidationError) as info:
            await client.orders.cancel(42)
    assert info.value.code == "ORDER_NOT_CANCELLABLE"


async def test_a_first_cancel_refused_as_not_cancellable_is_raised_without_a_read(
    mock: Routes,
) -> None:
    mock.delete(url("/v1/orders/42"), status=400, payload=error_body("ORDER_NOT_CANCELLABLE"))
    async with make_client() as client:
        with pytest.raises(ps.ValidationError):
            await client.orders.cancel(42)
    assert calls(mock, "GET") == []


# -- over real sockets ---------------------------------------------------------------------


async def test_lost_answer_is_retried_with_the_same_key_and_yields_one_order() -> None:
    orders: dict[str, dict[str, Any]] = {}
    seen_keys: list[str] = []

    async def place(request: web.Request) -> web.StreamResponse:
        key = request.headers["Idempotency-Key"]
        seen_keys.append(key)
        if key in orders:
            return web.json_response({**orders[key], "is_replay": True})
        body = json.loads(await request.read())
        orders[key] = {
            **ORDER,
            "order_id": len(orders) + 1,
            "client_order_id": body["client_order_id"],
        }
        assert request.transport is not None
        request.transport.abort()  # acted, then the connection dies: the answer is lost
        return web.Response()

    routes = lambda app: app.router.add_post("/v1/orders", place)  # noqa: E731
    async with (
        serve(routes) as server,
        ps.Client(base_url=base_of(server), clock=SkipClock(), **CLIENT) as client,
    ):
        order = await client.orders.place(**LIMIT)
    assert len(orders) == 1 and order.is_replay and order.order_id == 1
    assert len(seen_keys) == 2 and seen_keys[0] == seen_keys[1]


async def test_order_writes_of_one_client_are_serialised() -> None:
    in_flight = peak = 0

    async def place(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        return web.json_response(ORDER)

    routes = lambda app: app.router.add_post("/v1/orders", place)  # noqa: E731
    async with (
        serve(routes) as server,
        ps.Client(base_url=base_of(server), clock=SkipClock(), **CLIENT) as client,
    ):
        await asyncio.gather(*(client.orders.place(**LIMIT) for _ in range(5)))
    assert peak == 1


async def test_sandbox_lost_answer_retried_with_the_same_key_makes_one_order() -> None:
    from polysim_async.sandbox import Sandbox

    async with Sandbox(seed=2) as sb:
        sb.abort_next("/v1/orders", after=True, method="POST")
        async with ps.Client(sb.api_key, sb.url, rate_limit=None, clock=SkipClock()) as client:
            order = await client.orders.place(
                market_id=sb.market_id,
                side="BUY",
                outcome="Yes",
                order_type="limit",
                price="0.10",
                quantity="10",
                client_order_id="once",
            )
            listed = [row async for row in client.orders.list()]
    assert order.is_replay and order.client_order_id == "once"
    assert [row.order_id for row in listed] == [order.order_id]
    assert client.stats.retries["transport"] == 1


async def test_sandbox_conflict_pending_is_waited_out_with_the_same_key() -> None:
    from polysim_async.sandbox import Sandbox

    clock = SkipClock(scale=0.02)  # Retry-After: 1 waits 20 ms for real
    options: dict[str, Any] = {"rate_limit": None, "clock": clock, "max_retries": 20}
    async with Sandbox(seed=4) as sb:
        sb.configure(order_delay=0.03)  # the first placement holds its key in flight
        order = {**LIMIT, "market_id": sb.market_id, "price": "0.10", "client_order_id": "k-1"}
        async with (
            ps.Client(sb.api_key, sb.url, **options) as one,
            ps.Client(sb.api_key, sb.url, **options) as two,
        ):  # two clients: one client's own writes never overlap
            first, second = await asyncio.gather(
                one.orders.place(**order), two.orders.place(**order)
            )
            listed = [row.order_id async for row in one.orders.list()]
    assert first.order_id == second.order_id and listed == [first.order_id]
    assert first.is_replay != second.is_replay  # one placed it, the other got the replay
    assert 1.0 in clock.sleeps  # the 409's Retry-After


async def test_a_market_order_names_its_order_type_on_the_wire(mock: Routes) -> None:
    mock.post(ORDERS, payload={**ORDER, "order_type": "market", "status": "FILLED"})
    async with make_client() as client:
        await client.orders.place(
            market_id="0xabc", side="BUY", outcome="Yes", order_type="market",
            price="0.99", quantity="10",
        )  # fmt: skip
    [(_, _, kwargs)] = calls(mock)
    assert sent_json(kwargs)["order_type"] == "market"


async def test_list_and_list_pages_take_page_size_and_cursor(mock: Routes) -> None:
    page = {"orders": [ROW], "next_cursor": "c2", "has_more": True}
    mock.get(url("/v1/orders"), payload=page)
    mock.get(url("/v1/orders"), payload={"orders": [ROW], "next_cursor": None, "has_more": False})
    async with make_client() as client:
        rows = [row async for row in client.orders.list(cursor="c1")]
    assert len(rows) == 2
    (_, _, first), (_, _, second) = calls(mock)
    assert first["params"] == {"limit": "200", "cursor": "c1"}  # None: the largest page
    assert second["params"]["cursor"] == "c2"


async def test_pages_is_a_deprecated_alias_of_list_pages(mock: Routes) -> None:
    mock.get(url("/v1/orders"), payload={"orders": [ROW], "has_more": False})
    async with make_client() as client:
        with pytest.warns(DeprecationWarning, match="list_pages"):
            pages = client.orders.pages(page_size=20)
        got = [page async for page in pages]
    assert len(got) == 1 and calls(mock)[0][2]["params"]["limit"] == "20"
