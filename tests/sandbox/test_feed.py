"""The keyset trade feed (API.md §3 P6, §8.1): order, cursors, filters, limits."""

from __future__ import annotations

import base64
import json

import msgspec

from polysim_async.models import TradePage
from polysim_async.sandbox import Sandbox

from ._helpers import Api, assert_error


async def _walk(api: Api, account_id: str, **params: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    cursor = None
    while True:
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        status, _, page = await api.partner("GET", f"/accounts/{account_id}/trades", params=query)
        assert status == 200, page
        rows.extend(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


async def test_feed_pages_newest_first_without_gaps(api: Api, sb: Sandbox) -> None:
    _, account_id = await api.new_account()
    sb.generate_fills(1001, account_id=account_id)
    rows = await _walk(api, account_id, limit="97")
    assert len(rows) == 1001
    keys = [(r["filled_at"], r["order_id"]) for r in rows]
    assert keys == sorted(keys, reverse=True)
    assert len(set(keys)) == 1001
    _status, _, page = await api.partner("GET", f"/accounts/{account_id}/trades")
    assert len(page["data"]) == 100  # default limit
    msgspec.json.decode(msgspec.json.encode(page), type=TradePage)


async def test_cursor_format_matches_the_seed(api: Api, sb: Sandbox) -> None:
    _, account_id = await api.new_account()
    for _ in range(2):
        await sb.place_order(
            account_id=account_id,
            market_id=sb.market_id,
            side="BUY",
            outcome="Yes",
            quantity="10",
            price="0.60",
            client_order_id=None,
        )
    _, _, page = await api.partner("GET", f"/accounts/{account_id}/trades", params={"limit": "1"})
    row = page["data"][0]
    raw = base64.b64decode(page["next_cursor"], validate=True)
    assert (
        raw
        == json.dumps(
            {"filled_at": row["filled_at"], "order_id": row["order_id"]}, separators=(",", ":")
        ).encode()
    )
    assert row["filled_at"].endswith("+00:00") and len(row["filled_at"]) == 32
    assert row["price"] == "0.5100" and row["quantity"] == "10.0000" and row["notional"] == "5.10"
    assert (
        row["fee"] == "0.00" and row["realized_pnl"] is None and row["trade_id"] == row["order_id"]
    )
    _, _, last = await api.partner(
        "GET",
        f"/accounts/{account_id}/trades",
        params={"limit": "1", "cursor": page["next_cursor"]},
    )
    assert len(last["data"]) == 1 and last["next_cursor"] is None


async def test_new_fills_land_above_the_walk(api: Api, sb: Sandbox) -> None:
    _, account_id = await api.new_account()
    sb.generate_fills(10, account_id=account_id)
    _, _, first = await api.partner("GET", f"/accounts/{account_id}/trades", params={"limit": "4"})
    await sb.place_order(
        account_id=account_id,
        market_id=sb.market_id,
        side="BUY",
        outcome="Yes",
        quantity="5",
        price="0.60",
    )
    rest = await _walk(api, account_id, limit="4")
    assert rest[0]["order_id"] > first["data"][0]["order_id"]  # newest is on top
    _, _, second = await api.partner(
        "GET",
        f"/accounts/{account_id}/trades",
        params={"limit": "4", "cursor": first["next_cursor"]},
    )
    ids = [r["order_id"] for r in first["data"] + second["data"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 8


async def test_filters_side_and_market(api: Api, sb: Sandbox) -> None:
    _, account_id = await api.new_account()
    m1, m2 = sb.market_ids[:2]
    sb.generate_fills(40, account_id=account_id, market_id=m1)
    await sb.place_order(
        account_id=account_id, market_id=m2, side="BUY", outcome="No", quantity="5", price="0.60"
    )
    sb.generate_fills(20, account_id=account_id, market_id=m1)
    buys = await _walk(api, account_id, side="buy", limit="7")
    assert len(buys) == 31 and {r["side"] for r in buys} == {"BUY"}
    sells = await _walk(api, account_id, side="SELL", limit="7")
    assert len(sells) == 30
    only_m2 = await _walk(api, account_id, market_id=m2)
    assert [r["outcome"] for r in only_m2] == ["No"]
    both = await _walk(api, account_id, market_id=m1, side="SELL", limit="6")
    assert len(both) == 30
    assert await _walk(api, account_id, market_id="0xnothing") == []
    assert await _walk(api, account_id, market_id=m2, side="SELL") == []


async def test_foreign_cursor_does_not_leak(api: Api, sb: Sandbox) -> None:
    _, a = await api.new_account("a")
    _, b = await api.new_account("b", user="trader-2")
    sb.generate_fills(6, account_id=a)
    sb.generate_fills(6, account_id=b)
    _, _, page_a = await api.partner("GET", f"/accounts/{a}/trades", params={"limit": "2"})
    status, _, page_b = await api.partner(
        "GET", f"/accounts/{b}/trades", params={"cursor": page_a["next_cursor"]}
    )
    assert status == 200
    ids_a = {r["order_id"] for r in await _walk(api, a)}
    assert not ids_a & {r["order_id"] for r in page_b["data"]}
    # A cursor minted under a side filter is just a position when reused without it.
    _, _, sells = await api.partner(
        "GET", f"/accounts/{a}/trades", params={"limit": "1", "side": "SELL"}
    )
    status, _, rest = await api.partner(
        "GET", f"/accounts/{a}/trades", params={"cursor": sells["next_cursor"]}
    )
    assert status == 200 and all(r["order_id"] < sells["data"][0]["order_id"] for r in rest["data"])


async def test_bad_feed_queries_are_422(api: Api) -> None:
    _, account_id = await api.new_account()
    path = f"/accounts/{account_id}/trades"
    garbage = base64.b64encode(b'{"filled_at": 5, "order_id": "x"}').decode()
    naive = base64.b64encode(b'{"filled_at":"2026-01-01T00:00:00","order_id":1}').decode()
    for params in (
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "ten"},
        {"side": "HOLD"},
        {"cursor": "!!!not-base64"},
        {"cursor": base64.b64encode(b"[1,2]").decode()},
        {"cursor": base64.b64encode(b"\xff\xfe").decode()},
        {"cursor": garbage},
        {"cursor": naive},
        {"cursor": "é"},
        {"market_id": "0x" + "a" * 300},
    ):
        assert_error(*await api.partner("GET", path, params=params), 422, "VALIDATION_FAILED")
    status, _, page = await api.partner("GET", path, params={"limit": "500"})
    assert status == 200 and page == {"data": [], "next_cursor": None}
