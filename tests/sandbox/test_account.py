"""Trader account reads (API.md §4.3): balance, positions, history, equity."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec

from polysim_async.models import Balance, EquityPoint, HistoryPage, HistoryRow, Position
from polysim_async.sandbox import Sandbox

from ._helpers import Api, assert_error


async def _buy(sb: Sandbox, qty: str = "100", **kw: object) -> None:
    await sb.place_order(
        market_id=sb.market_id, side="BUY", outcome="Yes", quantity=qty, price="0.60", **kw
    )


async def test_balance_reports_total_pnl(api: Api, sb: Sandbox) -> None:
    await _buy(sb)
    sb.set_price(sb.market_id, "0.61")
    status, _, body = await api.trader("GET", "/account/balance")
    assert status == 200
    bal = msgspec.json.decode(msgspec.json.encode(body), type=Balance)
    assert bal.balance == Decimal("9949.00") and bal.starting_balance == Decimal("10000.00")
    assert bal.total_value == Decimal("10010.00")
    assert bal.unrealized_pnl == bal.total_value - bal.starting_balance
    assert body["currency"] == "USD"


async def test_positions_filters_and_envelope(api: Api, sb: Sandbox) -> None:
    await _buy(sb)
    await sb.place_order(
        market_id=sb.market_ids[1], side="BUY", outcome="No", quantity="5", price="0.60"
    )
    await sb.place_order(
        market_id=sb.market_ids[1], side="SELL", outcome="No", quantity="5", price="0.40"
    )
    _, _, rows = await api.trader("GET", "/account/positions")
    parsed = msgspec.json.decode(msgspec.json.encode(rows), type=list[Position])
    assert {p.status for p in parsed} == {"OPEN", "CLOSED"}
    _, _, open_rows = await api.trader("GET", "/account/positions?status=open")
    assert [r["status"] for r in open_rows] == ["OPEN"]
    assert open_rows[0]["market_question"] and open_rows[0]["current_price"] == "0.5000"
    _, _, closed = await api.trader("GET", "/account/positions?status=CLOSED")
    assert [r["status"] for r in closed] == ["CLOSED"]
    _, _, env = await api.trader("GET", "/account/positions?envelope=true")
    assert env["count"] == 2 and env["next_cursor"] == "" and len(env["data"]) == 2
    assert_error(
        *await api.trader("GET", "/account/positions?status=weird"), 422, "VALIDATION_FAILED"
    )
    assert_error(
        *await api.trader("GET", "/account/positions?envelope=maybe"), 422, "VALIDATION_FAILED"
    )


async def test_wallet_id_scoping(api: Api, sb: Sandbox) -> None:
    user_id, account_id = await api.new_account()
    trader = sb.create_trader_key(user_id)
    wallet_id = (
        await api.partner(
            "POST",
            "/accounts",
            json={
                "user_id": user_id,
                "external_id": "acc-1",
                "stage": "demo",
                "starting_balance": "1.00",
            },
        )
    )[2]["wallet_id"]
    await sb.place_order(
        account_id=account_id,
        market_id=sb.market_id,
        side="BUY",
        outcome="Yes",
        quantity="5",
        price="0.60",
    )
    for value, count in (("api", 0), ("API", 0), ("all", 1), (str(wallet_id), 1)):
        status, _, rows = await api.trader(
            "GET", f"/account/positions?wallet_id={value}", key=trader.api_key
        )
        assert status == 200 and len(rows) == count, value
    foreign = sb.create_trader().api_wallet_id
    for path in ("positions", "history", "equity"):
        assert_error(
            *await api.trader("GET", f"/account/{path}?wallet_id={foreign}", key=trader.api_key),
            404,
            "WALLET_NOT_FOUND",
        )
        assert_error(
            *await api.trader("GET", f"/account/{path}?wallet_id=main", key=trader.api_key),
            422,
            "VALIDATION_FAILED",
        )


async def test_history_newest_first_with_offset(api: Api, sb: Sandbox) -> None:
    for qty in ("5", "6", "7"):
        await _buy(sb, qty)
    await sb.place_order(
        market_id=sb.market_id, side="SELL", outcome="Yes", quantity="5", price="0.40"
    )
    _status, _, rows = await api.trader("GET", "/account/history")
    parsed = msgspec.json.decode(msgspec.json.encode(rows), type=list[HistoryRow])
    assert [r.quantity for r in parsed] == [Decimal(5), Decimal(7), Decimal(6), Decimal(5)]
    assert all(r.status == "FILLED" for r in parsed)
    _, _, page = await api.trader("GET", "/account/history?limit=2&offset=1&envelope=true")
    env = msgspec.json.decode(msgspec.json.encode(page), type=HistoryPage)
    assert [r.quantity for r in env.data] == [Decimal(7), Decimal(6)] and env.next_cursor == "3"
    _, _, page = await api.trader("GET", "/account/history?limit=2&offset=3&envelope=true")
    assert len(page["data"]) == 1 and page["next_cursor"] == ""
    _, _, sells = await api.trader("GET", "/account/history?side=sell")
    assert [r["side"] for r in sells] == ["SELL"]
    _, _, none = await api.trader("GET", "/account/history?market_id=0xabc")
    assert none == []
    for bad in ("limit=0", "limit=201", "offset=-1", "side=x", "limit=a"):
        assert_error(*await api.trader("GET", f"/account/history?{bad}"), 422, "VALIDATION_FAILED")


async def test_history_all_wallets_merges(api: Api, sb: Sandbox) -> None:
    user_id, account_id = await api.new_account()
    trader = sb.create_trader_key(user_id)
    await sb.place_order(
        user_id=user_id,
        market_id=sb.market_id,
        side="BUY",
        outcome="Yes",
        quantity="5",
        price="0.60",
    )
    await sb.place_order(
        account_id=account_id,
        market_id=sb.market_id,
        side="BUY",
        outcome="Yes",
        quantity="6",
        price="0.60",
    )
    sb.generate_fills(4, user_id=user_id)
    _, _, rows = await api.trader(
        "GET", "/account/history?wallet_id=all&limit=3&offset=1", key=trader.api_key
    )
    assert len(rows) == 3
    _, _, every = await api.trader("GET", "/account/history?wallet_id=all", key=trader.api_key)
    assert len(every) == 6 and rows == every[1:4]
    stamps = [datetime.fromisoformat(r["filled_at"].replace("Z", "+00:00")) for r in every]
    assert stamps == sorted(stamps, reverse=True)


async def test_equity_hourly_snapshots(api: Api, sb: Sandbox) -> None:
    await _buy(sb)
    sb.advance(hours=3)
    sb.set_price(sb.market_id, "0.60")
    sb.advance(days=2)
    status, _, rows = await api.trader("GET", "/account/equity")
    assert status == 200
    points = msgspec.json.decode(msgspec.json.encode(rows), type=list[EquityPoint])
    assert len(points) == 51
    assert points[0].timestamp.minute == 0 and rows[0]["timestamp"].endswith("Z")
    assert points == sorted(points, key=lambda p: p.timestamp)
    assert points[0].total_value == Decimal("9999.00") and points[0].pnl == Decimal("-1.00")
    assert points[-1].cash_balance == Decimal("9949.00")
    assert points[-1].position_value == Decimal("60.00") and points[-1].pnl == Decimal("9.00")
    _, _, day = await api.trader("GET", "/account/equity?days=1")
    assert len(day) == 24
    _, _, all_w = await api.trader("GET", "/account/equity?wallet_id=all&days=90")
    assert len(all_w) == 51
    for bad in ("days=0", "days=91", "days=x", "wallet_id=-"):
        assert_error(*await api.trader("GET", f"/account/equity?{bad}"), 422, "VALIDATION_FAILED")


async def test_partner_user_without_api_wallet(api: Api, sb: Sandbox) -> None:
    trader = sb.create_trader()
    status, _, _ = await api.trader("GET", "/account/balance", key=trader.api_key)
    assert status == 200
