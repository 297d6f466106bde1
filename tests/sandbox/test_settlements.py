"""Portfolio, settlements, the API-wallet reset and the CSV exports (API.md §4.3, §4.1)."""

from __future__ import annotations

import csv
import io
from typing import Any

from polysim_async.sandbox import Sandbox

from ._helpers import Api, assert_error


async def _buy(sb: Sandbox, market_id: str, qty: str = "10", **kw: Any) -> dict[str, Any]:
    return await sb.place_order(
        market_id=market_id, side="BUY", outcome="Yes", quantity=qty, price="0.99", **kw
    )


async def test_portfolio_balance_positions_and_win_rate(api: Api, sb: Sandbox) -> None:
    a, b, c = sb.market_ids
    await _buy(sb, a)
    await _buy(sb, b)
    await sb.place_order(market_id=b, side="SELL", outcome="Yes", quantity="10", price="0.01")
    await _buy(sb, c)
    sb.resolve_market(c, "Yes")  # +4.90
    _, _, folio = await api.trader("GET", "/account/portfolio")
    assert folio["balance"]["balance"] == "9999.60"  # -5.10 -5.10 +4.90 -5.10 +10.00
    assert [p["market_id"] for p in folio["positions"]] == [a]
    assert folio["total_trades"] == 4
    assert folio["win_rate"] == "50.0%"  # sold b at a loss, c settled won
    _, account_id = await api.new_account()
    await _buy(sb, a, account_id=account_id)
    _, _, everything = await api.trader("GET", "/account/portfolio?wallet_id=all")
    assert everything == folio  # the partner account belongs to another user
    assert_error(
        *await api.trader("GET", "/account/portfolio?wallet_id=x"), 422, "VALIDATION_FAILED"
    )


async def test_settlements_page_newest_position_first(api: Api, sb: Sandbox) -> None:
    markets = [sb.create_market(question=f"M{i}?") for i in range(5)]
    for market_id in markets:
        await _buy(sb, market_id)
        await sb.place_order(
            market_id=market_id, side="BUY", outcome="No", quantity="6", price="0.99"
        )
    for i, market_id in enumerate(markets):
        sb.advance(hours=1)
        sb.resolve_market(market_id, None if i == 4 else "Yes")
    _, _, page = await api.trader("GET", "/account/settlements?limit=3")
    ids = [row["position_id"] for row in page["data"]]
    assert ids == sorted(ids, reverse=True) and page["next_cursor"] == str(ids[-1])
    rows = list(page["data"])
    while page["next_cursor"]:
        _, _, page = await api.trader(
            "GET", f"/account/settlements?limit=3&cursor={page['next_cursor']}"
        )
        rows += page["data"]
    assert len(rows) == 10 and len({r["position_id"] for r in rows}) == 10
    by_result = {(r["market_id"], r["outcome"]): r for r in rows}
    won = by_result[(markets[0], "Yes")]
    assert (won["quantity"], won["cost_basis"], won["payout"], won["payout_per_share"]) == (
        "10.0000",
        "5.10",
        "10.00",
        "1.0000",
    )
    assert (won["realized_pnl"], won["result"], won["avg_entry_price"]) == ("4.90", "won", "0.5100")
    assert by_result[(markets[0], "No")]["result"] == "lost"
    split = by_result[(markets[4], "No")]
    assert (split["result"], split["payout_per_share"], split["payout"]) == (
        "split",
        "0.5000",
        "3.00",
    )
    _, _, one = await api.trader("GET", f"/account/settlements?market_id={markets[1]}")
    assert {r["market_id"] for r in one["data"]} == {markets[1]} and one["next_cursor"] == ""
    _, _, late = await api.trader("GET", "/account/settlements?from=2026-06-01T03:00:00Z")
    assert {r["market_id"] for r in late["data"]} == set(markets[2:])
    _, _, early = await api.trader("GET", "/account/settlements?to=2026-06-01T02:00:00%2B00:00")
    assert {r["market_id"] for r in early["data"]} == set(markets[:2])
    _, _, day = await api.trader("GET", "/account/settlements?from=2026-06-01&to=2026-06-01")
    assert len(day["data"]) == 10
    for query in ("cursor=abc", "limit=501", "from=yesterday", "wallet_id=7"):
        got = await api.trader("GET", f"/account/settlements?{query}")
        assert got[0] in (404, 422) and "error" in got[2]


async def test_a_resolution_pays_out_and_closes_the_market(api: Api, sb: Sandbox) -> None:
    market = sb.market_id
    await _buy(sb, market)
    resting = await sb.place_order(
        market_id=market, side="BUY", outcome="No", quantity="5", price="0.10", order_type="limit"
    )
    assert sb.resolve_market(market, "no") == 1
    _, _, row = await api.trader("GET", f"/orders/{resting['order_id']}")
    assert (row["status"], row["cancelled_reason"]) == ("CANCELLED", "market_resolved")
    _, _, bal = await api.trader("GET", "/account/balance")
    assert bal["balance"] == "9994.90"  # 10 Yes shares paid nothing
    _, _, detail = await api.trader("GET", f"/markets/{market}")
    assert detail["closed"] is True and detail["resolved_outcome"] == "No"
    assert [t["winner"] for t in detail["tokens"]] == [False, True]
    got = await api.trader(
        "POST",
        "/orders",
        json={
            "market_id": market,
            "side": "BUY",
            "outcome": "Yes",
            "quantity": "5",
            "price": "0.5",
        },
    )
    assert_error(*got, 400, "MARKET_CLOSED")
    _, _, positions = await api.trader("GET", "/account/positions?status=CLOSED")
    assert [p["status"] for p in positions] == ["CLOSED"]
    assert_error(
        *await api.call("POST", f"/_sandbox/markets/{market}/resolve", json={}),
        422,
        "CONTROL_INVALID",
    )


async def test_reset_api_balance_is_not_idempotent(api: Api, sb: Sandbox) -> None:
    await _buy(sb, sb.market_id)
    await _buy(sb, sb.market_ids[1])
    resting = await sb.place_order(
        market_id=sb.market_id,
        side="BUY",
        outcome="Yes",
        quantity="5",
        price="0.10",
        order_type="limit",
    )
    status, _, body = await api.trader("POST", "/account/reset-api-balance")
    assert status == 200 and body == {
        "message": "API balance reset to $10,000.00",
        "new_api_balance": "10000.00",
        "positions_closed": 2,
        "cooldown_days": 0,
    }
    _, _, row = await api.trader("GET", f"/orders/{resting['order_id']}")
    assert row["cancelled_reason"] == "balance_reset"
    _, _, closed = await api.trader("GET", "/account/positions")
    assert {p["status"] for p in closed} == {"CLOSED_BY_RESET"}
    _, _, again = await api.trader("POST", "/account/reset-api-balance")
    assert again["positions_closed"] == 0  # a second call resets again
    sb.set_tier("pro_plus")
    _, _, plus = await api.trader("POST", "/account/reset-api-balance")
    assert plus["new_api_balance"] == "25000.00"
    free = sb.create_trader(tier="free").api_key
    status, _, body = await api.trader("POST", "/account/reset-api-balance", key=free)
    assert status == 402 and body["error"] == "UPGRADE_REQUIRED" and body["feature_key"]


def _csv(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode())))


async def test_exports_write_csv_capped_and_filtered(api: Api, sb: Sandbox) -> None:
    _, account_id = await api.new_account(user="trader-9")
    for market_id in sb.market_ids:
        await _buy(sb, market_id, qty="5")
    first = sb.generate_fills(4)
    status, headers, body = await api.trader("GET", "/export/trades.csv")
    assert status == 200 and headers["Content-Disposition"] == 'attachment; filename="trades.csv"'
    rows = _csv(body)
    assert len(rows) == 1 + 7 and rows[1][1] == str(first + 3)  # newest first
    _, _, one = await api.trader("GET", f"/export/trades.csv?market_id={sb.market_ids[1]}")
    assert [r[3] for r in _csv(one)[1:]] == [sb.market_ids[1]]
    sb.configure(export_row_cap=3)
    _, _, capped = await api.trader("GET", "/export/trades.csv")
    lines = capped.decode().splitlines()
    assert len(lines) == 5 and lines[-1].startswith("# truncated")
    _, _, late = await api.trader("GET", "/export/trades.csv?from=2027-01-01")
    assert late.decode().splitlines() == [",".join(_csv(body)[0])]
    sb.resolve_market(sb.market_id, "Yes")
    _, _, settled = await api.trader("GET", "/export/settlements.csv")
    assert [r[0] for r in _csv(settled)[1:]] == ["1"]
    free = sb.create_trader(tier="free").api_key
    for path in ("/export/trades.csv", "/export/settlements.csv"):
        status, headers, body = await api.trader("GET", path, key=free)
        assert status == 402 and headers["X-Polysim-Code"] == "UPGRADE_REQUIRED"
        assert body["feature_key"] == "exports.csv"
    assert account_id  # a partner user's fills are not the default trader's
