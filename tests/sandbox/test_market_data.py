"""Market data (API.md §4.1, the market-data pages): lists, details, books, candles, prices.

Every price here is the exchange's own mid, the one that fills resting orders.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest

from polysim_async.sandbox import Sandbox

from ._helpers import Api, assert_error


def _b64(n: int) -> str:
    return base64.b64encode(str(n).encode()).decode()


@pytest.fixture
async def listed(sb: Sandbox) -> list[str]:
    """Three more markets with volumes, categories and one closed."""
    ids = [
        sb.create_market(question="Will BTC hit 100k?", category="crypto", volume="8000"),
        sb.create_market(question="Who wins the cup?", category="Sports", volume="6000"),
        sb.create_market(question="Will ETH flip BTC?", category="crypto", volume="100"),
    ]
    sb.set_market_closed(ids[2])
    return ids


async def _ids(api: Api, query: str) -> list[str]:
    status, _, rows = await api.trader("GET", f"/markets?{query}")
    assert status == 200, rows
    return [row["condition_id"] for row in rows]


async def test_markets_are_volume_ordered_and_filtered(
    api: Api, sb: Sandbox, listed: list[str]
) -> None:
    seeded = sb.market_ids[:3]
    assert await _ids(api, "") == [listed[0], listed[1], listed[2], *seeded]
    assert await _ids(api, "hot_only=true") == listed[:2]  # more than 5,000
    assert await _ids(api, "active_only=true") == [listed[0], listed[1], *seeded]
    assert await _ids(api, "category=CRYPTO") == [listed[0], listed[2]]
    assert await _ids(api, 'category="sport"') == [listed[1]]  # quotes stripped, substring
    assert await _ids(api, "q=btc") == [listed[0], listed[2]]
    assert await _ids(api, "q=will-btc") == [listed[0]]  # the slug matches too
    assert await _ids(api, "limit=2&offset=1") == listed[1:3]
    # A fill moves the volume: 19,000 x 0.51 lifts a seeded market to the top.
    await sb.place_order(
        market_id=seeded[2], side="BUY", outcome="Yes", quantity="19000", price="0.99"
    )
    assert (await _ids(api, ""))[:3] == [seeded[2], listed[0], listed[1]]
    assert_error(*await api.trader("GET", "/markets?q=" + "x" * 121), 422, "VALIDATION_FAILED")


async def test_the_envelope_pages_with_base64_offsets(
    api: Api, sb: Sandbox, listed: list[str]
) -> None:
    seen: list[str] = []
    cursors: list[str] = []
    query = "envelope=true&limit=4"
    while True:
        _, _, page = await api.trader("GET", f"/markets?{query}")
        seen += [row["condition_id"] for row in page["data"]]
        cursors.append(page["next_cursor"])
        if page["next_cursor"] == "LTE=":
            break
        query = f"envelope=true&limit=4&cursor={page['next_cursor']}"
    assert seen == await _ids(api, "limit=200")
    assert cursors == [_b64(4), "LTE="]  # 6 markets: the second page is short
    _, _, last = await api.trader("GET", "/markets?envelope=true&next_cursor=LTE%3D")
    assert last == {"data": [], "next_cursor": "LTE="}
    _, _, start = await api.trader("GET", "/markets?envelope=true&limit=1&cursor=MA%3D%3D")
    assert [r["condition_id"] for r in start["data"]] == seen[:1]
    got = await api.trader("GET", "/markets?envelope=true&cursor=%%%")
    assert_error(*got, 422, "VALIDATION_FAILED")


async def test_a_detail_by_id_slug_and_token(api: Api, sb: Sandbox) -> None:
    _, _, detail = await api.trader("GET", f"/markets/{sb.market_id}")
    yes, no = detail["clob_token_ids"]
    assert detail["question_id"] == sb.market_id and detail["market_slug"] == detail["slug"]
    assert [t["token_id"] for t in detail["tokens"]] == [yes, no]
    assert detail["tokens"][0]["price"] == 0.5 and "order_book" not in detail
    _, _, by_slug = await api.trader("GET", f"/markets/by-slug/{detail['slug']}")
    assert by_slug == detail
    _, _, token = await api.trader("GET", f"/markets-by-token/{no}")
    assert token == {"condition_id": sb.market_id, "primary_token_id": yes, "outcome": "No"}
    for path, code in (
        ("/markets/0xnope", "MARKET_NOT_FOUND"),
        ("/markets/by-slug/nope", "MARKET_NOT_FOUND"),
        ("/markets-by-token/123", "TOKEN_NOT_FOUND"),
        ("/book?token_id=123", "TOKEN_NOT_FOUND"),
    ):
        assert_error(*await api.trader("GET", path), 404, code)


async def test_the_book_shows_the_exchange_touch_best_last(api: Api, sb: Sandbox) -> None:
    sb.set_price(sb.market_id, "0.40")
    _, _, book = await api.trader("GET", f"/markets/{sb.market_id}/book")
    bids = [Decimal(level["price"]) for level in book["bids"]]
    asks = [Decimal(level["price"]) for level in book["asks"]]
    assert bids == sorted(bids) and asks == sorted(asks, reverse=True)  # best level last
    assert (bids[-1], asks[-1]) == (Decimal("0.39"), Decimal("0.41"))  # mid 0.40, spread 0.02
    assert (book["mid"], book["spread"], book["tick_size"]) == ("0.4000", "0.0200", "0.01")
    assert book["timestamp"] == str(int(sb.now().timestamp() * 1000))
    # A market BUY fills at exactly that ask.
    order = await sb.place_order(
        market_id=sb.market_id, side="BUY", outcome="Yes", quantity="5", price="0.99"
    )
    assert order["price"] == "0.4100"
    _, _, again = await api.trader("GET", f"/markets/{sb.market_id}/book")
    assert again["last_trade_price"] == "0.4100" and again["hash"] == book["hash"]
    _, _, no = await api.trader("GET", f"/markets/{sb.market_id}/book?outcome=no&depth=2")
    assert [lv["price"] for lv in no["bids"]] == ["0.5800", "0.5900"] and len(no["asks"]) == 2
    assert no["hash"] != book["hash"]
    _, _, by_token = await api.trader("GET", f"/book?token_id={no['token_id']}&depth=2")
    assert by_token == no
    sb.set_price(sb.market_id, "0.45")
    _, _, moved = await api.trader("GET", f"/markets/{sb.market_id}/book")
    assert moved["hash"] != book["hash"]
    got = await api.trader("GET", f"/markets/{sb.market_id}/book?outcome=Maybe")
    assert_error(*got, 422, "VALIDATION_FAILED")
    got = await api.trader("GET", f"/markets/{sb.market_id}/book?depth=501")
    assert_error(*got, 422, "VALIDATION_FAILED")


async def _candles(api: Api, sb: Sandbox, query: str = "") -> list[dict[str, Any]]:
    status, _, rows = await api.trader("GET", f"/markets/{sb.market_id}/candles?{query}")
    assert status == 200, rows
    return list(rows)


async def test_candles_bucket_the_recorded_prices_and_count_own_fills(
    api: Api, sb: Sandbox
) -> None:
    sb.advance(minutes=30)
    sb.set_price(sb.market_id, "0.60")
    sb.advance(minutes=10)
    sb.set_price(sb.market_id, "0.45")
    await sb.place_order(
        market_id=sb.market_id, side="BUY", outcome="Yes", quantity="7", price="0.99"
    )
    sb.advance(hours=2)
    rows = await _candles(api, sb)
    start = int(sb.now().timestamp()) // 3600 * 3600 - 2 * 3600
    assert [r["t"] for r in rows] == [start, start + 3600, start + 7200]
    first = rows[0]
    assert (first["o"], first["h"], first["l"], first["c"], first["v"]) == (
        "0.5000",
        "0.6000",
        "0.4500",
        "0.4500",
        "7.0000",
    )
    assert {(r["o"], r["c"], r["v"]) for r in rows[1:]} == {("0.4500", "0.4500", "0.0000")}
    no = await _candles(api, sb, "outcome=No")
    assert (no[0]["o"], no[0]["h"], no[0]["l"]) == ("0.5000", "0.5500", "0.4000")
    assert no[0]["v"] == "0.0000"  # the fill was in Yes
    daily = await _candles(api, sb, "interval=1d")
    assert len(daily) == 1 and daily[0]["t"] % 86400 == 0 and daily[0]["h"] == "0.6000"
    assert await _candles(api, sb, "interval=max") == daily
    status, headers, body = await api.trader("GET", f"/markets/{sb.market_id}/candles?interval=5m")
    assert status == 400 and headers["X-Polysim-Code"] == "INVALID_INTERVAL"
    assert body["supported_intervals"] == ["1h", "6h", "1d", "1w", "max"]


async def test_prices_in_batch_follow_the_tier(api: Api, sb: Sandbox) -> None:
    sb.set_price(sb.market_id, "0.70")
    ids = [sb.market_id, "0xnope"]
    _, _, rows = await api.trader("POST", "/prices/batch", json={"market_ids": ids})
    assert [(r["condition_id"], r.get("buy"), r.get("sell")) for r in rows] == [
        (sb.market_id, "0.7000", "0.3000"),
        ("0xnope", None, None),
    ]
    for body in ({}, {"market_ids": []}, {"market_ids": "0xabc"}):
        assert_error(
            *await api.trader("POST", "/prices/batch", json=body), 400, "VALIDATION_FAILED"
        )
    got = await api.trader("POST", "/prices/batch", json={"market_ids": [1]})
    assert_error(*got, 422, "VALIDATION_FAILED")
    got = await api.trader("POST", "/prices/batch", json={"market_ids": ["0x1"] * 51})
    assert_error(*got, 422, "VALIDATION_FAILED")
    got = await api.trader("POST", "/prices/batch", json={"market_ids": ["0x1"] * 6})
    assert_error(*got, 400, "BATCH_LIMIT_EXCEEDED")
    enterprise = sb.create_trader(tier="enterprise").api_key
    status, _, rows = await api.trader(
        "POST", "/prices/batch", key=enterprise, json={"market_ids": ["0x1"] * 25}
    )
    assert status == 200 and len(rows) == 25


async def test_market_data_needs_a_key(api: Api) -> None:
    assert_error(*await api.call("GET", "/v1/markets"), 401, "MISSING_API_KEY")
