"""Contract tests: every answer the sandbox sends has exactly the documented fields.

The table below is transcribed from API.md and the seeds on its own (not copied
from the sandbox's ``_fields.py``), so it checks the sandbox against the docs. Each
answer is then decoded with the client's model, and every documented field must be
one the model reads: a field the client forgot fails here, not in production.

One test per endpoint (and per frame of the execution WebSocket).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from polysim_async import models
from polysim_async.sandbox import Sandbox

from ._contract import Doc, check_answer, doc
from ._helpers import Api

# -- transcribed from API.md (section in the comment) and the seeds -------------------------
TRADE = doc(  # P6 row; seed step 6
    "trade_id order_id market_id side outcome price quantity notional fee filled_at"
    " client_order_id realized_pnl",
    model=models.Trade,
)
OPEN_POSITION = doc(  # P5 open_positions[]; seed step 5
    "market_id outcome quantity avg_entry_price current_price market_value unrealized_pnl",
    model=models.OpenPosition,
)
ACCOUNT_STATE = doc(  # P5 (also P7, P8, P9); seed step 5
    "account_id external_id stage status balance starting_balance equity unrealized_pnl"
    " realized_pnl open_positions rules metadata updated_at",
    model=models.AccountState,
    open_positions=OPEN_POSITION,
)
ORDER_POSITION = doc(  # O1 position
    "market_id outcome quantity avg_entry_price status", model=models.OrderPosition
)
ORDER = doc(  # O1 OrderResponse
    "order_id status order_type side outcome price quantity notional fee filled_at"
    " cancelled_reason price_source slippage_bps quote_age_ms spread_bps impact_bps"
    " book_walk_levels account_balance position client_order_id error error_message"
    " amount_interpreted_as is_replay warnings",
    model=models.Order,
    position=ORDER_POSITION,
)
ORDER_ROW = doc(  # O3 row (hold_reason only during venue outages)
    "order_id market_id side outcome order_type limit_price quantity time_in_force status"
    " client_order_id created_at filled_at fill_price cancelled_at cancelled_reason",
    optional="hold_reason",
    model=models.OrderRow,
)
POSITION = doc(  # §4.3 Po row
    "id market_id outcome quantity avg_entry_price current_price market_value unrealized_pnl"
    " status market_question",
    model=models.Position,
)
HISTORY_ROW = doc(  # §4.3 H row
    "order_id market_id side outcome price quantity notional fee status price_source"
    " price_age_ms filled_at created_at",
    model=models.HistoryRow,
)
DOCS: dict[str, Doc] = {
    "P1": doc("user_id tenant_user_id external_id email created", model=models.PartnerUser),
    "P2": doc(  # inferred in API.md: P1's fields plus metadata
        "user_id tenant_user_id external_id email created metadata", model=models.PartnerUser
    ),
    "P3": doc("status", model=models.LoginLink),
    "P4": doc(
        "account_id wallet_id user_id external_id stage status starting_balance rules metadata",
        model=models.PartnerAccount,
    ),
    "P5": ACCOUNT_STATE,
    "P6": doc("data next_cursor", model=models.TradePage, data=TRADE),
    "balance": doc(
        "balance currency starting_balance unrealized_pnl total_value", model=models.Balance
    ),
    "positions": POSITION,
    "positions envelope": doc("limit count next_cursor data", data=POSITION),
    "history": HISTORY_ROW,
    "history envelope": doc("data next_cursor", model=models.HistoryPage, data=HISTORY_ROW),
    "equity": doc(  # §4.3 E; equity-curve seed
        "timestamp cash_balance position_value total_value pnl", model=models.EquityPoint
    ),
    "ws-token": doc("token expires_in", model=models.WsToken),
    "order": ORDER,
    "orders": doc(
        "orders next_cursor has_more total_hint", model=models.OrderPage, orders=ORDER_ROW
    ),
    "order row": ORDER_ROW,
    "cancel-all": doc("canceled not_canceled", model=models.CancelAllResult),
    "health": doc("status timestamp version"),  # §4.1
    "error": doc("error message"),  # §5.1, §5.2 two-field
    "error verbose": doc("error message details request_id"),  # §5.2 X-Polysim-Verbose
    "ws connected": doc("type user_id protocol_version", model=models.ConnectedFrame),  # §10.2
    "ws fill": doc(  # §10.3; execution-feed seed
        "type order_id market_id side outcome price quantity filled_at", model=models.FillFrame
    ),
    "ws pong": doc("type ts", model=models.PongFrame),  # §10.2
}


# -- a sandbox with something in every answer ---------------------------------------------
@dataclass
class World:
    api: Api
    sb: Sandbox
    user_id: int
    account_id: str
    resting_id: int


@pytest.fixture
async def world(api: Api, sb: Sandbox) -> World:
    user_id, account_id = await api.new_account()
    for kw in ({"quantity": "100"}, {"quantity": "40", "side": "SELL", "price": "0.40"}):
        await sb.place_order(
            account_id=account_id,
            market_id=sb.market_id,
            outcome="Yes",
            **{"side": "BUY", "price": "0.60", **kw},
        )
    sb.generate_fills(3, account_id=account_id)  # generated rows must match the table too
    base = {"market_id": sb.market_id, "side": "BUY", "outcome": "Yes", "quantity": "10"}
    await api.trader("POST", "/orders", json={**base, "price": "0.60"})
    _, _, resting = await api.trader(
        "POST", "/orders", json={**base, "price": "0.30", "order_type": "limit"}
    )
    sb.advance(hours=3)  # equity snapshots
    sb.set_price(sb.market_id, "0.55")
    return World(api, sb, user_id, account_id, resting["order_id"])


Call = Callable[[World], Awaitable[tuple[int, Any, Any]]]


async def _get_account(w: World) -> tuple[int, Any, Any]:
    return await w.api.partner("GET", f"/accounts/{w.account_id}")


CASES: dict[str, tuple[str, Call]] = {
    "P1 register (201)": (
        "P1",
        lambda w: w.api.partner("POST", "/users", json={"external_id": "n", "email": "n@e.co"}),
    ),
    "P1 register replay (200)": (
        "P1",
        lambda w: w.api.partner(
            "POST", "/users", json={"external_id": "trader-1", "email": "trader-1@example.com"}
        ),
    ),
    "P2 get user": ("P2", lambda w: w.api.partner("GET", f"/users/{w.user_id}")),
    "P3 login link": (
        "P3",
        lambda w: w.api.partner("POST", f"/users/{w.user_id}/login-link", json={}),
    ),
    "P4 create account (201)": (
        "P4",
        lambda w: w.api.partner(
            "POST",
            "/accounts",
            json={
                "user_id": w.user_id,
                "external_id": "acc-2",
                "stage": "demo",
                "starting_balance": "500.00",
                "rules": {"profit_target_pct": 20, "daily_loss_pct": 5},
                "metadata": {"plan": "x"},
            },
        ),
    ),
    "P4 create account replay (200)": (
        "P4",
        lambda w: w.api.partner(
            "POST",
            "/accounts",
            json={
                "user_id": w.user_id,
                "external_id": "acc-1",
                "stage": "demo",
                "starting_balance": "500.00",
            },
        ),
    ),
    "P5 account state": ("P5", _get_account),
    "P6 trade feed": ("P6", lambda w: w.api.partner("GET", f"/accounts/{w.account_id}/trades")),
    "P7 update account": (
        "P5",
        lambda w: w.api.partner("PATCH", f"/accounts/{w.account_id}", json={"stage": "funded"}),
    ),
    "P8 close": ("P5", lambda w: w.api.partner("POST", f"/accounts/{w.account_id}/close")),
    "P9 reset": ("P5", lambda w: w.api.partner("POST", f"/accounts/{w.account_id}/reset")),
    "balance": ("balance", lambda w: w.api.trader("GET", "/account/balance")),
    "positions": ("positions", lambda w: w.api.trader("GET", "/account/positions?wallet_id=all")),
    "positions envelope": (
        "positions envelope",
        lambda w: w.api.trader("GET", "/account/positions?wallet_id=all&envelope=true"),
    ),
    "history": ("history", lambda w: w.api.trader("GET", "/account/history?wallet_id=all")),
    "history envelope": (
        "history envelope",
        lambda w: w.api.trader("GET", "/account/history?envelope=true"),
    ),
    "equity": ("equity", lambda w: w.api.trader("GET", "/account/equity")),
    "ws-token": ("ws-token", lambda w: w.api.trader("POST", "/keys/ws-token")),
    "place order (filled)": (
        "order",
        lambda w: w.api.trader(
            "POST",
            "/orders",
            json={
                "market_id": w.sb.market_id,
                "side": "BUY",
                "outcome": "Yes",
                "amount": "10",
                "price": "0.99",
            },
        ),
    ),
    "place order (pending)": (
        "order",
        lambda w: w.api.trader(
            "POST",
            "/orders",
            json={
                "market_id": w.sb.market_id,
                "side": "BUY",
                "outcome": "Yes",
                "quantity": "5",
                "price": "0.20",
                "order_type": "limit",
                "client_order_id": "c-1",
            },
        ),
    ),
    "list orders": ("orders", lambda w: w.api.trader("GET", "/orders?limit=1")),
    "get order": ("order row", lambda w: w.api.trader("GET", f"/orders/{w.resting_id}")),
    "cancel order": ("order", lambda w: w.api.trader("DELETE", f"/orders/{w.resting_id}")),
    "cancel-all": ("cancel-all", lambda w: w.api.trader("POST", "/cancel-all?confirm=true")),
    "cancel-all (deprecated DELETE)": (
        "cancel-all",
        lambda w: w.api.trader("DELETE", "/cancel-all?confirm=true"),
    ),
    "health": ("health", lambda w: w.api.call("GET", "/v1/health")),
    "error": ("error", lambda w: w.api.trader("GET", "/orders/1")),
    "error verbose": (
        "error verbose",
        lambda w: w.api.trader("GET", "/orders/1", headers={"X-Polysim-Verbose": "true"}),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_endpoint_answers_the_documented_fields(world: World, case: str) -> None:
    name, call = CASES[case]
    status, _, body = await call(world)
    assert status < 300 or name.startswith("error"), (status, body)
    check_answer(DOCS, name, body)


async def test_replayed_order_keeps_the_documented_fields(world: World) -> None:
    order = {"market_id": world.sb.market_id, "side": "BUY", "outcome": "Yes", "quantity": "5"}
    order["price"] = "0.60"
    hdr = {"Idempotency-Key": "same"}
    await world.api.trader("POST", "/orders", json=order, headers=hdr)
    _, _, again = await world.api.trader("POST", "/orders", json=order, headers=hdr)
    check_answer(DOCS, "order", again)
    assert again["is_replay"] is True


@pytest.mark.parametrize("frame", ["ws connected", "ws fill", "ws pong"])
async def test_websocket_frames_have_the_documented_fields(
    world: World, http: aiohttp.ClientSession, frame: str
) -> None:
    _, _, token = await world.api.trader("POST", "/keys/ws-token")
    url = f"{world.sb.ws_url}/v1/ws/executions?token={token['token']}"
    async with http.ws_connect(url) as ws:
        hello = await ws.receive_json()
        got = hello
        if frame == "ws fill":
            await world.sb.place_order(
                market_id=world.sb.market_id, side="BUY", outcome="Yes", quantity="5", price="0.6"
            )
            got = await ws.receive_json()
        elif frame == "ws pong":
            await ws.send_str('{"action": "ping"}')
            got = await ws.receive_json()
    check_answer(DOCS, frame, got)
    assert got["type"] == frame.split()[1]


def test_the_contract_table_covers_every_documented_answer() -> None:
    """Each documented answer in the table is exercised by at least one case."""
    used = {name for name, _ in CASES.values()} | {"ws connected", "ws fill", "ws pong"}
    assert used == set(DOCS)
