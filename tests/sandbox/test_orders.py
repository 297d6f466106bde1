"""Trader orders (API.md §4.5, §8.2, §9.1): placement, idempotency, listing, cancels."""

from __future__ import annotations

import asyncio
import base64
from decimal import Decimal
from typing import Any

import msgspec

from polysim_async.models import CancelAllResult, Order, OrderPage, OrderRow
from polysim_async.sandbox import Sandbox

from ._helpers import Api, assert_error


def _order(sb: Sandbox, **kw: Any) -> dict[str, Any]:
    body = {
        "market_id": sb.market_id,
        "side": "BUY",
        "outcome": "Yes",
        "quantity": "10",
        "price": "0.60",
    }
    body.update(kw)
    return body


async def test_market_order_fills_at_the_ask(api: Api, sb: Sandbox) -> None:
    status, _, body = await api.trader("POST", "/orders", json=_order(sb))
    assert status == 200
    order = msgspec.json.decode(msgspec.json.encode(body), type=Order)
    assert order.status == "FILLED" and order.price == Decimal("0.5100")
    assert order.notional == Decimal("5.10") and order.fee == Decimal("0.00")
    assert order.account_balance == Decimal("9994.90") and order.is_replay is False
    assert order.position is not None and order.position.quantity == Decimal("10.0000")
    status, _, body = await api.trader(
        "POST", "/orders", json=_order(sb, side="sell", price="0.45")
    )
    assert status == 200 and body["price"] == "0.4900" and body["position"] is None


async def test_amount_buys_floor_of_amount_over_price(api: Api, sb: Sandbox) -> None:
    body = _order(sb, quantity=None, amount="10", price="0.60")
    del body["quantity"]
    status, _, got = await api.trader("POST", "/orders", json=body)
    assert status == 200 and got["quantity"] == "16.6666"


async def test_limit_rests_reserves_and_fills_at_its_price(api: Api, sb: Sandbox) -> None:
    status, _, body = await api.trader(
        "POST", "/orders", json=_order(sb, order_type="limit", price="0.45")
    )
    assert status == 200 and body["status"] == "PENDING" and body["price"] == "0.4500"
    assert body["account_balance"] == "9995.50"
    assert sb.set_price(sb.market_id, "0.46") == 0  # ask 0.47 > 0.45
    assert sb.set_price(sb.market_id, "0.44") == 1  # ask 0.45 crosses
    status, _, row = await api.trader("GET", f"/orders/{body['order_id']}")
    parsed = msgspec.json.decode(msgspec.json.encode(row), type=OrderRow)
    assert parsed.status == "FILLED" and parsed.fill_price == Decimal("0.4500")
    assert parsed.limit_price == Decimal("0.4500") and parsed.time_in_force == "GTC"
    _, _, bal = await api.trader("GET", "/account/balance")
    assert bal["balance"] == "9995.50"
    # A resting SELL reserves shares.
    _, _, sell = await api.trader(
        "POST", "/orders", json=_order(sb, side="SELL", order_type="limit", price="0.90")
    )
    assert sell["status"] == "PENDING"
    again = await api.trader("POST", "/orders", json=_order(sb, side="SELL", price="0.01"))
    assert_error(*again, 400, "INSUFFICIENT_POSITION")


async def test_gtd_expires_and_ioc_cancels(api: Api, sb: Sandbox) -> None:
    expiry = int(sb.now().timestamp()) + 3600
    _, _, gtd = await api.trader(
        "POST",
        "/orders",
        json=_order(
            sb, order_type="limit", price="0.30", time_in_force="GTD", expiration=str(expiry)
        ),
    )
    assert gtd["status"] == "PENDING"
    sb.advance(hours=2)
    _, _, row = await api.trader("GET", f"/orders/{gtd['order_id']}")
    assert row["status"] == "EXPIRED" and row["cancelled_reason"] == "gtd_expired"
    _, _, ioc = await api.trader(
        "POST", "/orders", json=_order(sb, order_type="limit", price="0.30", time_in_force="FAK")
    )
    assert ioc["status"] == "CANCELLED"
    _, _, row = await api.trader("GET", f"/orders/{ioc['order_id']}")
    assert row["time_in_force"] == "IOC"


async def test_trading_errors(api: Api, sb: Sandbox) -> None:
    cases: list[tuple[dict[str, Any], int, str]] = [
        (_order(sb, price=None), 400, "PRICE_REQUIRED"),
        (_order(sb, price="0.605"), 400, "INVALID_ORDER_MIN_TICK_SIZE"),
        (_order(sb, quantity="1"), 400, "INVALID_ORDER_MIN_SIZE"),
        (_order(sb, quantity="0"), 400, "INVALID_QUANTITY"),
        (_order(sb, quantity="-5"), 400, "INVALID_QUANTITY"),
        (_order(sb, quantity="0.00001"), 400, "INVALID_QUANTITY"),
        (_order(sb, quantity="25000"), 400, "INSUFFICIENT_BALANCE"),
        (_order(sb, side="SELL"), 400, "INSUFFICIENT_POSITION"),
        (_order(sb, price="0.50"), 400, "FOK_ORDER_NOT_FILLED_ERROR"),
        (_order(sb, amount="5"), 400, "INVALID_ORDER_PAYLOAD"),
        (
            _order(sb, order_type="limit", price="0.40", post_only=True, time_in_force="IOC"),
            400,
            "INVALID_POST_ONLY_ORDER_TYPE",
        ),
        (
            _order(sb, order_type="limit", price="0.60", post_only=True),
            400,
            "INVALID_POST_ONLY_ORDER",
        ),
        (
            _order(sb, order_type="limit", price="0.40", time_in_force="GTD"),
            400,
            "INVALID_ORDER_EXPIRATION",
        ),
        (
            _order(sb, order_type="limit", price="0.40", time_in_force="GTD", expiration=1),
            400,
            "INVALID_ORDER_EXPIRATION",
        ),
        (_order(sb, market_id="0xunknown"), 404, "MARKET_NOT_FOUND"),
        (_order(sb, outcome="Maybe"), 422, "VALIDATION_FAILED"),
        (_order(sb, side="HOLD"), 422, "VALIDATION_FAILED"),
        (_order(sb, order_type="stop"), 422, "VALIDATION_FAILED"),
        (_order(sb, time_in_force="DAY"), 422, "VALIDATION_FAILED"),
        (_order(sb, price="1.5"), 422, "VALIDATION_FAILED"),
        (_order(sb, price="abc"), 422, "VALIDATION_FAILED"),
        (_order(sb, quantity="NaN"), 422, "VALIDATION_FAILED"),
        (_order(sb, quantity="1e12"), 422, "VALIDATION_FAILED"),
        (_order(sb, quantity=True), 422, "VALIDATION_FAILED"),
        (_order(sb, post_only="yes"), 422, "VALIDATION_FAILED"),
        (_order(sb, market_id="x" * 257), 422, "VALIDATION_FAILED"),
        (_order(sb, client_order_id="c" * 257), 422, "VALIDATION_FAILED"),
        (_order(sb, outcome=7), 422, "VALIDATION_FAILED"),
    ]
    cases[0][0].pop("price")
    for body, status, code in cases:
        assert_error(*await api.trader("POST", "/orders", json=body), status, code)
    sb.set_market_closed(sb.market_id)
    assert_error(*await api.trader("POST", "/orders", json=_order(sb)), 400, "MARKET_CLOSED")
    both = dict(_order(sb, market_id=sb.market_ids[1]), amount="5")
    assert_error(*await api.trader("POST", "/orders", json=both), 400, "INVALID_ORDER_PAYLOAD")
    assert_error(
        *await api.trader("POST", "/orders", json=[_order(sb)]), 400, "INVALID_ORDER_PAYLOAD"
    )


async def test_idempotency_replay_reuse_and_duplicate(api: Api, sb: Sandbox) -> None:
    hdr = {"Idempotency-Key": "k-1"}
    status, _, first = await api.trader("POST", "/orders", json=_order(sb), headers=hdr)
    assert status == 200 and first["is_replay"] is False
    assert first["spread_bps"] == 400 and first["book_walk_levels"] == 1
    status, _, again = await api.trader("POST", "/orders", json=_order(sb), headers=hdr)
    assert status == 200 and again["is_replay"] is True
    # A replay is the original answer; the documented telemetry goes null (API.md §9.1).
    nulls = {"spread_bps": None, "impact_bps": None, "book_walk_levels": None}
    assert again == {**first, "is_replay": True, **nulls}
    assert_error(
        *await api.trader("POST", "/orders", json=_order(sb, quantity="11"), headers=hdr),
        409,
        "IDEMPOTENCY_KEY_REUSE",
    )
    # client_order_id doubles as the key.
    _, _, a = await api.trader("POST", "/orders", json=_order(sb, client_order_id="c-1"))
    _, _, b = await api.trader("POST", "/orders", json=_order(sb, client_order_id="c-1"))
    assert b["is_replay"] is True and b["order_id"] == a["order_id"]
    got = await api.trader(
        "POST",
        "/orders",
        json=_order(sb, client_order_id="c-1"),
        headers={"Idempotency-Key": "k-2"},
    )
    assert_error(*got, 409, "DUPLICATE_CLIENT_ORDER_ID")
    # A refused order frees its key.
    bad = await api.trader(
        "POST", "/orders", json=_order(sb, quantity="1"), headers={"Idempotency-Key": "k-3"}
    )
    assert bad[0] == 400
    ok = await api.trader("POST", "/orders", json=_order(sb), headers={"Idempotency-Key": "k-3"})
    assert ok[0] == 200
    _, _, listing = await api.trader("GET", "/orders")
    assert len(listing["orders"]) == 3


async def test_idempotency_in_flight_conflict(api: Api, sb: Sandbox) -> None:
    sb.configure(order_delay=0.05)
    hdr = {"Idempotency-Key": "same"}
    first, second = await asyncio.gather(
        api.trader("POST", "/orders", json=_order(sb), headers=hdr),
        api.trader("POST", "/orders", json=_order(sb), headers=hdr),
    )
    statuses = sorted([first[0], second[0]])
    assert statuses == [200, 409]
    loser = first if first[0] == 409 else second
    assert_error(*loser, 409, "IDEMPOTENCY_CONFLICT_PENDING")
    assert loser[1]["Retry-After"] == "1"


async def test_list_orders_cursor_paging(api: Api, sb: Sandbox) -> None:
    ids = []
    for _i in range(7):
        _, _, body = await api.trader(
            "POST", "/orders", json=_order(sb, order_type="limit", price="0.30")
        )
        ids.append(body["order_id"])
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": "3"}
        if cursor:
            params["cursor"] = cursor
        _status, _, page = await api.trader("GET", "/orders", params=params)
        parsed = msgspec.json.decode(msgspec.json.encode(page), type=OrderPage)
        seen += [o.order_id for o in parsed.orders]
        if not parsed.has_more:
            assert parsed.next_cursor is None
            break
        cursor = parsed.next_cursor
        assert cursor is not None and "=" not in cursor
        assert (
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().endswith("+00:00")
        )
    assert seen == ids[::-1]
    _, _, page = await api.trader("GET", "/orders", params={"limit": "2", "offset": "5"})
    assert [o["order_id"] for o in page["orders"]] == ids[1::-1] and page["total_hint"] == 7
    raw = base64.urlsafe_b64decode(cursor + "==").decode()
    _, _, iso = await api.trader("GET", "/orders", params={"next_cursor": raw.replace("+", " ")})
    assert [o["order_id"] for o in iso["orders"]] == seen[6:]
    _, _, pend = await api.trader("GET", "/orders", params={"status": "open", "side": "buy"})
    assert len(pend["orders"]) == 7 and pend["total_hint"] is None
    _, _, none = await api.trader("GET", "/orders", params={"status": "matched"})
    assert none["orders"] == [] and none["has_more"] is False
    for bad in (
        {"status": "x"},
        {"limit": "0"},
        {"limit": "201"},
        {"cursor": "%%%"},
        {"side": "no"},
        {"offset": "-2"},
    ):
        assert_error(*await api.trader("GET", "/orders", params=bad), 422, "VALIDATION_FAILED")


async def test_get_order_and_cancel(api: Api, sb: Sandbox) -> None:
    _, _, limit = await api.trader(
        "POST", "/orders", json=_order(sb, order_type="limit", price="0.30")
    )
    _, _, market = await api.trader("POST", "/orders", json=_order(sb))
    oid = limit["order_id"]
    assert (await api.trader("GET", f"/orders/{oid}?source=pending"))[0] == 200
    assert_error(*await api.trader("GET", f"/orders/{oid}?source=filled"), 404, "ORDER_NOT_FOUND")
    assert (await api.trader("GET", f"/orders/{market['order_id']}?source=filled"))[0] == 200
    assert_error(*await api.trader("GET", f"/orders/{oid}?source=x"), 422, "VALIDATION_FAILED")
    assert_error(*await api.trader("GET", f"/orders/{oid}?wallet_id=1"), 404, "ORDER_NOT_FOUND")
    assert_error(*await api.trader("GET", "/orders/999999"), 404, "ORDER_NOT_FOUND")
    assert_error(*await api.trader("GET", "/orders/abc"), 422, "VALIDATION_FAILED")
    other = sb.create_trader()
    assert_error(
        *await api.trader("GET", f"/orders/{oid}", key=other.api_key), 404, "ORDER_NOT_FOUND"
    )
    status, _, cancelled = await api.trader("DELETE", f"/orders/{oid}")
    assert status == 200 and cancelled["status"] == "CANCELLED"
    assert cancelled["account_balance"] == "9994.90"
    assert_error(*await api.trader("DELETE", f"/orders/{oid}"), 400, "ORDER_NOT_CANCELLABLE")
    assert_error(*await api.trader("DELETE", "/orders/999999"), 404, "ORDER_NOT_FOUND")


async def test_cancel_all_needs_confirmation(api: Api, sb: Sandbox) -> None:
    for _ in range(3):
        await api.trader("POST", "/orders", json=_order(sb, order_type="limit", price="0.30"))
    assert_error(*await api.trader("POST", "/cancel-all"), 400, "CONFIRMATION_REQUIRED")
    assert_error(
        *await api.trader("POST", "/cancel-all?confirm=false"), 400, "CONFIRMATION_REQUIRED"
    )
    status, _, body = await api.trader(
        "POST", "/cancel-all", headers={"X-Confirm-Cancel-All": "true"}
    )
    result = msgspec.json.decode(msgspec.json.encode(body), type=CancelAllResult)
    assert status == 200 and len(result.canceled) == 3 and result.not_canceled == {}
    await api.trader("POST", "/orders", json=_order(sb, order_type="limit", price="0.30"))
    status, headers, body = await api.trader("DELETE", "/cancel-all?confirm=true")
    assert status == 200 and len(body["canceled"]) == 1 and headers["X-Deprecation"]
    _, _, bal = await api.trader("GET", "/account/balance")
    assert bal["balance"] == "10000.00"
