"""Batch placement (API.md O2) and cancel by market (O7)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from polysim_async.sandbox import Sandbox

from ._helpers import Api, FakeTime, assert_error


def _entry(sb: Sandbox, coid: str, **kw: Any) -> dict[str, Any]:
    base = {
        "market_id": sb.market_id,
        "side": "BUY",
        "outcome": "Yes",
        "quantity": "5",
        "order_type": "limit",
        "price": "0.20",
        "client_order_id": coid,
    }
    return {**base, **kw}


async def _pending(api: Api, key: str | None = None) -> list[int]:
    kw = {} if key is None else {"key": key}
    _, _, page = await api.trader("GET", "/orders?status=PENDING", **kw)
    return sorted(row["order_id"] for row in page["orders"])


async def test_each_entry_succeeds_or_fails_on_its_own(api: Api, sb: Sandbox) -> None:
    entries = [
        _entry(sb, "a"),
        _entry(sb, "b", market_id="0xnope"),
        _entry(sb, "c", order_type="market", price="0.99"),
        _entry(sb, "d", quantity="1"),
        "not an order",
    ]
    status, _, body = await api.trader("POST", "/orders/batch", json={"orders": entries})
    assert status == 200 and (body["succeeded"], body["failed"]) == (2, 3)
    got = [(r["status"], r["error"], r["client_order_id"]) for r in body["results"]]
    assert got == [
        ("PENDING", None, "a"),
        ("REJECTED", "MARKET_NOT_FOUND", "b"),
        ("FILLED", None, "c"),
        ("REJECTED", "INVALID_ORDER_MIN_SIZE", "d"),
        ("REJECTED", "VALIDATION_FAILED", None),
    ]
    rejected = body["results"][1]
    assert rejected["order_id"] == 0 and rejected["error_message"] == "Market not found: 0xnope"
    assert (rejected["price"], rejected["notional"], rejected["fee"]) == ("0", "0", "0")
    assert await _pending(api) == [body["results"][0]["order_id"]]  # no roll-back


async def test_a_replayed_batch_dedupes_entry_by_entry(api: Api, sb: Sandbox) -> None:
    entries = [_entry(sb, "x-1"), _entry(sb, "x-2", price="0.21")]
    _, _, first = await api.trader("POST", "/orders/batch", json={"orders": entries})
    _, _, again = await api.trader("POST", "/orders/batch", json={"orders": entries})
    assert [r["order_id"] for r in again["results"]] == [r["order_id"] for r in first["results"]]
    assert [r["is_replay"] for r in again["results"]] == [True, True]
    assert again["results"][0]["spread_bps"] is None  # replays null the telemetry
    assert len(await _pending(api)) == 2
    # The same store as single orders: a single order with an entry's id is its replay,
    changed = [_entry(sb, "x-1", quantity="6"), _entry(sb, "x-3")]
    _, _, mixed = await api.trader("POST", "/orders/batch", json={"orders": changed})
    # and another body under that id is refused for that entry only.
    assert [(r["status"], r["error"]) for r in mixed["results"]] == [
        ("REJECTED", "IDEMPOTENCY_KEY_REUSE"),
        ("PENDING", None),
    ]
    _, _, single = await api.trader("POST", "/orders", json=_entry(sb, "x-2", price="0.21"))
    assert single["is_replay"] is True and single["order_id"] == first["results"][1]["order_id"]


@pytest.mark.parametrize(
    ("tier", "size", "code", "status"),
    [("free", 2, "BATCH_LIMIT_EXCEEDED", 400), ("pro", 6, "BATCH_LIMIT_EXCEEDED", 400)],
)
async def test_an_oversize_batch_is_refused_whole(
    api: Api, sb: Sandbox, tier: str, size: int, code: str, status: int
) -> None:
    key = sb.create_trader(tier=tier).api_key
    entries = [_entry(sb, f"o-{i}") for i in range(size)]
    got = await api.trader("POST", "/orders/batch", key=key, json={"orders": entries})
    assert_error(*got, status, code)
    limit = {"free": 1, "pro": 5}[tier]
    assert got[2]["message"] == f"Batch size {size} exceeds tier limit ({limit})"
    assert await _pending(api, key) == []  # nothing processed
    ok = await api.trader("POST", "/orders/batch", key=key, json={"orders": entries[:limit]})
    assert ok[0] == 200 and ok[2]["succeeded"] == limit


@pytest.mark.parametrize("body", [{}, {"orders": []}, {"orders": {"a": 1}}, [], None])
async def test_a_malformed_batch_is_422(api: Api, body: Any) -> None:
    assert_error(*await api.trader("POST", "/orders/batch", json=body), 422, "VALIDATION_FAILED")


async def test_a_batch_needs_the_trade_permission(api: Api, sb: Sandbox) -> None:
    reader = sb.create_trader(permissions={"read"}).api_key
    got = await api.trader("POST", "/orders/batch", key=reader, json={"orders": [_entry(sb, "r")]})
    assert_error(*got, 403, "INSUFFICIENT_PERMISSION")


async def test_a_batch_counts_as_one_request(http: aiohttp.ClientSession) -> None:
    time = FakeTime()
    async with Sandbox(seed=2, frozen_clock=True, random_walk=False, rate_clock=time) as sb:
        api = Api(sb, http)
        entries = [_entry(sb, f"t-{i}") for i in range(5)]
        status, headers, _ = await api.trader("POST", "/orders/batch", json={"orders": entries})
        assert status == 200
        assert headers["x-ratelimit-remaining"] == "599"  # one tick for five orders
        assert headers["x-ratelimit-tier"] == "pro"


async def _cancel(api: Api, query: str) -> tuple[int, Any, Any]:
    return await api.trader("DELETE", f"/cancel-market-orders?{query}")


async def test_cancel_by_market_or_by_outcome_token(api: Api, sb: Sandbox) -> None:
    other = sb.market_ids[1]
    yes = [await _place(sb, sb.market_id, "Yes") for _ in range(2)]
    no = await _place(sb, sb.market_id, "No")
    elsewhere = await _place(sb, other, "Yes")
    _, _, detail = await api.trader("GET", f"/markets/{sb.market_id}")
    no_token = detail["clob_token_ids"][1]
    status, _, body = await _cancel(api, f"asset_id={no_token}")
    assert status == 200 and body == {"canceled": [str(no)], "not_canceled": {}}
    _, _, body = await _cancel(api, f"market={sb.market_id}")
    assert body == {"canceled": [str(i) for i in yes], "not_canceled": {}}
    _, _, body = await _cancel(api, f"market={sb.market_id}")  # a repeat finds nothing
    assert body == {"canceled": [], "not_canceled": {}}
    _, _, body = await _cancel(api, f"market={sb.market_id}&asset_id={no_token}")
    assert body["canceled"] == []
    _, _, body = await _cancel(api, "market=0xnope")
    assert body["canceled"] == []
    assert await _pending(api) == [elsewhere]
    _, _, bal = await api.trader("GET", "/account/balance")
    assert bal["balance"] == "9999.00"  # the one order left holds 5 x 0.20


async def test_cancel_by_market_needs_one_id_and_the_trade_permission(
    api: Api, sb: Sandbox
) -> None:
    assert_error(*await _cancel(api, ""), 422, "VALIDATION_FAILED")
    reader = sb.create_trader(permissions={"read"}).api_key
    got = await api.trader("DELETE", f"/cancel-market-orders?market={sb.market_id}", key=reader)
    assert_error(*got, 403, "INSUFFICIENT_PERMISSION")


async def _place(sb: Sandbox, market_id: str, outcome: str) -> int:
    placed = await sb.place_order(
        market_id=market_id,
        side="BUY",
        outcome=outcome,
        quantity="5",
        price="0.20",
        order_type="limit",
    )
    return int(placed["order_id"])
