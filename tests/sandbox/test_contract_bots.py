"""Contract tests for the trader API for bots (issue 14): every answer and frame has
exactly the documented fields, and the client's model reads every one of them.

The fields are transcribed here from API.md §4, §5.2, §10 and the trader docs pages
(markets, order-book, price-candles, batch-prices, batch-orders, heartbeats,
api-keys, wallets, portfolio, price-feed) as ``docs/trader-api-notes.md`` lists
them, not copied from the sandbox's ``_fields.py``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from polysim_async import models
from polysim_async._keyadmin import _NewKeyWire
from polysim_async.models import keys, markets, portfolio, prices, trading, wallets
from polysim_async.sandbox import Sandbox

from ._contract import Doc, check_answer, doc
from ._helpers import Api

# -- transcribed from the docs (source in each comment) ------------------------------------
ORDER = doc(  # API.md O1, also every batch result
    "order_id status order_type side outcome price quantity notional fee filled_at"
    " cancelled_reason price_source slippage_bps quote_age_ms spread_bps impact_bps"
    " book_walk_levels account_balance position client_order_id error error_message"
    " amount_interpreted_as is_replay warnings",
    model=models.Order,
)
POSITION = doc(  # portfolio page: position rows without market_question
    "id market_id outcome quantity avg_entry_price current_price market_value unrealized_pnl"
    " status",
    model=models.Position,
)
OUTCOME_PRICE = doc("label price token_id", model=markets.OutcomePrice)  # markets page
MARKET = doc(  # markets page, list row
    "condition_id slug question outcomes active closed is_hot image_url category clob_token_ids"
    " volume_24h volume_total last_price live_price",
    model=markets.Market,
    live_price=doc(
        "buy sell volume outcomes updated_at", model=markets.LivePrice, outcomes=OUTCOME_PRICE
    ),
)
BOOK = doc(  # order-book page (stale only on a cached fallback)
    "token_id market asset_id hash bids asks min_order_size tick_size neg_risk"
    " last_trade_price mid spread timestamp",
    optional="stale",
    model=markets.OrderBook,
    bids=doc("price size", model=markets.BookLevel),
    asks=doc("price size", model=markets.BookLevel),
)
SETTLEMENT = doc(  # API.md §4.3 S: SDK docstring fields, plus the notes' inferred four
    "quantity avg_entry_price cost_basis payout payout_per_share realized_pnl result"
    " position_id market_id outcome settled_at",
    model=portfolio.Settlement,
)
WALLET_FIELDS = (  # API.md §4.4, get-wallet WalletOut
    "id kind label balance baseline status generation parent_wallet_id competition_id"
    " created_at archived_at is_legacy"
)
WALLET = doc(WALLET_FIELDS, model=wallets.Wallet)
PROP_WALLET = doc(
    WALLET_FIELDS + " managed_by b2b_account",
    model=wallets.Wallet,
    managed_by=doc("tenant_slug display_name", model=wallets.WalletManager),
    b2b_account=doc("account_id stage status", model=wallets.WalletAccount),
)
API_KEY = doc(  # api-keys page, list row
    "id key_prefix name permissions rate_limit_tier is_active created_at expires_at",
    model=keys.ApiKey,
)
DOCS: dict[str, Doc] = {
    "me": doc(  # API.md §4.2
        "user_id balance currency key_count tier permissions auth_user_id email", model=keys.Me
    ),
    "tiers": doc(  # API.md §4.2 RateLimitTierInfo
        "tier requests_per_second requests_per_minute max_ws_connections max_batch_size",
        model=keys.TierLimits,
    ),
    "key": API_KEY,
    "new key": doc(  # api-keys page, 201 (decoded by the client's private wire type)
        "id raw_key key_prefix name rate_limit_tier permissions created_at", model=_NewKeyWire
    ),
    "key revoked": doc("message"),  # api-keys page, DELETE
    "wallet": WALLET,
    "prop wallet": PROP_WALLET,
    "portfolio": doc(  # API.md §4.3 Pf
        "balance positions total_trades win_rate",
        model=portfolio.Portfolio,
        balance=doc(
            "balance currency unrealized_pnl total_value starting_balance", model=models.Balance
        ),
        positions=POSITION,
    ),
    "settlements": doc("data next_cursor", model=portfolio.SettlementPage, data=SETTLEMENT),
    "reset-api-balance": doc(  # API.md §4.3 R
        "message new_api_balance positions_closed cooldown_days", model=portfolio.ApiBalanceReset
    ),
    "batch": doc(  # API.md O2
        "results succeeded failed", model=trading.BatchResult, results=ORDER
    ),
    "cancel-market": doc("canceled not_canceled", model=models.CancelAllResult),  # O6/O7
    "heartbeat": doc("ok expires_at_ms", model=trading.Heartbeat),  # O8
    "heartbeat 422": doc(  # §5.2: the Pydantic detail envelope
        "detail", detail=doc("type loc msg input", optional="ctx")
    ),
    "markets": MARKET,
    "markets envelope": doc("data next_cursor", model=markets.MarketPage, data=MARKET),
    "market detail": doc(  # markets page, detail
        " ".join(MARKET.fields)
        + " tokens question_id market_slug neg_risk event_group_id event_title end_date"
        " resolved_outcome archived archived_at",
        optional="order_book",
        model=markets.MarketDetail,
        live_price=MARKET.nested["live_price"],
        tokens=doc("token_id outcome price winner", model=markets.MarketToken),
        order_book=BOOK,
    ),
    "token market": doc(  # SDK get_market_by_token
        "condition_id primary_token_id outcome", model=markets.TokenMarket
    ),
    "book": BOOK,
    "candles": doc("t o h l c v", model=markets.Candle),  # price-candles page
    "prices": doc(  # batch-prices page: an unknown market has only condition_id
        "condition_id",
        optional="buy sell outcomes source",
        model=markets.MarketPrice,
        outcomes=OUTCOME_PRICE,
    ),
    "error 402": doc("error message feature_key upgrade_url"),  # §5.2 carve-out
    "error interval": doc("error message supported_intervals"),  # price-candles page
    # the price WebSocket, §10.2 and the price-feed page
    "ws price": doc(
        "type market_id condition_id buy sell volume outcomes tokens active closed source"
        " emit_ts_ms updated_at ws_updated_at",
        optional="best_bid best_ask last_trade",
        model=prices.PriceTick,
        outcomes=OUTCOME_PRICE,
        values={"tokens": doc("label price", model=prices.TokenPrice)},
    ),
    "ws subscribed": doc("type markets", model=prices.SubscribedFrame),
    "ws error": doc("type message", model=prices.PriceErrorFrame),
    "ws connected": doc("type user_id protocol_version", model=models.ConnectedFrame),
    "ws pong": doc("type ts", model=models.PongFrame),
}
#: CSV columns (the settlement row's, per the SDK; the trade export's are inferred).
TRADES_CSV = "filled_at order_id wallet_id market_id side outcome price quantity notional fee"
SETTLEMENTS_CSV = (
    "position_id market_id outcome quantity avg_entry_price cost_basis payout payout_per_share"
    " realized_pnl result settled_at"
)


# -- a sandbox with something in every answer ---------------------------------------------
@dataclass
class World:
    api: Api
    sb: Sandbox
    partner_key: str
    sandbox_wallet: int
    spare_keys: list[int]
    resolved: str


async def _order(sb: Sandbox, market_id: str, **kw: Any) -> dict[str, Any]:
    base = {"side": "BUY", "outcome": "Yes", "quantity": "10", "price": "0.60"}
    return await sb.place_order(market_id=market_id, **{**base, **kw})


@pytest.fixture
async def world(api: Api, sb: Sandbox) -> World:
    user_id, _ = await api.new_account()  # a PROP_FIRM wallet for trader-1
    partner_key = sb.create_trader_key(user_id).api_key
    resolved = sb.market_ids[2]
    await _order(sb, resolved)  # settled below
    await _order(sb, sb.market_ids[1])
    await _order(sb, sb.market_ids[1], side="SELL", price="0.40")  # a closed exit
    await _order(sb, sb.market_id)  # an open position and a last trade
    await sb.place_order(  # a resting order for cancel-market
        market_id=sb.market_id,
        side="BUY",
        outcome="Yes",
        quantity="5",
        price="0.20",
        order_type="limit",
    )
    sb.advance(hours=3)
    sb.set_price(sb.market_id, "0.55")
    sb.resolve_market(resolved, "Yes")
    wallet_id = sb.create_wallet(label="lab")
    spare = []
    for name in ("spare-1", "spare-2", "spare-3"):
        _, _, body = await api.trader("POST", "/keys", json={"name": name})
        spare.append(body["id"])
    await api.trader("POST", "/heartbeats", json={"interval_ms": 60_000})
    return World(api, sb, partner_key, wallet_id, spare, resolved)


Call = Callable[[World], Awaitable[tuple[int, Any, Any]]]
_ORDER = {"side": "BUY", "outcome": "Yes", "quantity": "5", "price": "0.99"}


def _cid(w: World) -> str:
    return w.sb.market_id


async def _token(w: World) -> str:
    _, _, detail = await w.api.trader("GET", f"/markets/{_cid(w)}")
    return str(detail["clob_token_ids"][1])


async def _by_token(w: World) -> tuple[int, Any, Any]:
    return await w.api.trader("GET", f"/markets-by-token/{await _token(w)}")


async def _book_by_token(w: World) -> tuple[int, Any, Any]:
    return await w.api.trader("GET", f"/book?token_id={await _token(w)}&depth=3")


async def _prop_wallet(w: World) -> tuple[int, Any, Any]:
    _, _, listed = await w.api.trader("GET", "/me/wallets", key=w.partner_key)
    (prop,) = [x["id"] for x in listed if x["kind"] == "PROP_FIRM"]
    return await w.api.trader("GET", f"/me/wallets/{prop}", key=w.partner_key)


async def _free_export(w: World) -> tuple[int, Any, Any]:
    free = w.sb.create_trader(tier="free").api_key
    return await w.api.trader("GET", "/export/trades.csv", key=free)


CASES: dict[str, tuple[str, Call]] = {
    "me": ("me", lambda w: w.api.trader("GET", "/me")),
    "me (wallet_id=all)": ("me", lambda w: w.api.trader("GET", "/me?wallet_id=all")),
    "tiers": ("tiers", lambda w: w.api.trader("GET", "/keys/tiers")),
    "list keys": ("key", lambda w: w.api.trader("GET", "/keys")),
    "create key (201)": ("new key", lambda w: w.api.trader("POST", "/keys", json={"name": "n"})),
    "rename key": (
        "key",
        lambda w: w.api.trader("PATCH", f"/keys/{w.spare_keys[0]}", json={"name": "r"}),
    ),
    "rotate key (201)": (
        "new key",
        lambda w: w.api.trader("POST", f"/keys/{w.spare_keys[1]}/rotate"),
    ),
    "delete key": ("key revoked", lambda w: w.api.trader("DELETE", f"/keys/{w.spare_keys[2]}")),
    "list wallets": ("wallet", lambda w: w.api.trader("GET", "/me/wallets")),
    "get wallet (PROP_FIRM)": ("prop wallet", _prop_wallet),
    "create wallet (201)": (
        "wallet",
        lambda w: w.api.trader("POST", "/me/wallets", json={"label": "x", "kind": "SANDBOX"}),
    ),
    "get wallet": ("wallet", lambda w: w.api.trader("GET", f"/me/wallets/{w.sandbox_wallet}")),
    "update wallet": (
        "wallet",
        lambda w: w.api.trader("PATCH", f"/me/wallets/{w.sandbox_wallet}", json={"label": "y"}),
    ),
    "reset wallet": (
        "wallet",
        lambda w: w.api.trader("POST", f"/me/wallets/{w.sandbox_wallet}/reset"),
    ),
    "archive wallet": (
        "wallet",
        lambda w: w.api.trader("DELETE", f"/me/wallets/{w.sandbox_wallet}"),
    ),
    "portfolio": ("portfolio", lambda w: w.api.trader("GET", "/account/portfolio")),
    "portfolio (all)": (
        "portfolio",
        lambda w: w.api.trader("GET", "/account/portfolio?wallet_id=all"),
    ),
    "settlements": ("settlements", lambda w: w.api.trader("GET", "/account/settlements")),
    "reset-api-balance": (
        "reset-api-balance",
        lambda w: w.api.trader("POST", "/account/reset-api-balance"),
    ),
    "batch": (
        "batch",
        lambda w: w.api.trader(
            "POST",
            "/orders/batch",
            json={
                "orders": [
                    {**_ORDER, "market_id": _cid(w), "client_order_id": "b-1"},
                    {**_ORDER, "market_id": "0xnope", "client_order_id": "b-2"},
                ]
            },
        ),
    ),
    "cancel-market": (
        "cancel-market",
        lambda w: w.api.trader("DELETE", f"/cancel-market-orders?market={_cid(w)}"),
    ),
    "heartbeat": (
        "heartbeat",
        lambda w: w.api.trader("POST", "/heartbeats", json={"interval_ms": 5000}),
    ),
    "heartbeat (root alias)": (
        "heartbeat",
        lambda w: w.api.call(
            "POST",
            "/heartbeats",
            key=w.sb.api_key,
            json={"interval_ms": 5000, "client_label": "b"},
        ),
    ),
    "heartbeat out of bounds (422)": (
        "heartbeat 422",
        lambda w: w.api.trader("POST", "/heartbeats", json={"interval_ms": 999}),
    ),
    "markets": ("markets", lambda w: w.api.trader("GET", "/markets")),
    "markets envelope": (
        "markets envelope",
        lambda w: w.api.trader("GET", "/markets?envelope=true"),
    ),
    "market detail": ("market detail", lambda w: w.api.trader("GET", f"/markets/{_cid(w)}")),
    "market detail with book": (
        "market detail",
        lambda w: w.api.trader("GET", f"/markets/{_cid(w)}?include_book=true"),
    ),
    "resolved market detail": (
        "market detail",
        lambda w: w.api.trader("GET", f"/markets/{w.resolved}"),
    ),
    "market by slug": (
        "market detail",
        lambda w: w.api.trader("GET", "/markets/by-slug/sandbox-market-2"),
    ),
    "market by token": ("token market", _by_token),
    "book": ("book", lambda w: w.api.trader("GET", f"/markets/{_cid(w)}/book?outcome=No")),
    "book by token": ("book", _book_by_token),
    "candles": ("candles", lambda w: w.api.trader("GET", f"/markets/{_cid(w)}/candles")),
    "prices batch": (
        "prices",
        lambda w: w.api.trader(
            "POST", "/prices/batch", json={"market_ids": [_cid(w), w.resolved, "0xnope"]}
        ),
    ),
    "402 on a free plan": ("error 402", _free_export),
    "400 INVALID_INTERVAL": (
        "error interval",
        lambda w: w.api.trader("GET", f"/markets/{_cid(w)}/candles?interval=5m"),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_endpoint_answers_the_documented_fields(world: World, case: str) -> None:
    name, call = CASES[case]
    status, headers, body = await call(world)
    assert (status < 300) != ("error" in name or "422" in name), (status, body)
    if status >= 400:
        assert headers["X-Polysim-Code"] in (
            "UPGRADE_REQUIRED",
            "INVALID_INTERVAL",
            "VALIDATION_FAILED",
        )
    check_answer(DOCS, name, body)


async def test_the_unknown_price_row_has_only_its_id(world: World) -> None:
    _, _, rows = await world.api.trader("POST", "/prices/batch", json={"market_ids": ["0xnope"]})
    assert rows == [{"condition_id": "0xnope"}]


@pytest.mark.parametrize(
    "path, columns", [("trades", TRADES_CSV), ("settlements", SETTLEMENTS_CSV)]
)
async def test_csv_exports_have_the_documented_columns(
    world: World, path: str, columns: str
) -> None:
    status, headers, body = await world.api.trader("GET", f"/export/{path}.csv")
    assert status == 200 and headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0] == columns.split() and len(rows) > 1
    assert all(len(row) == len(rows[0]) for row in rows)


async def _recv(ws: aiohttp.ClientWebSocketResponse) -> Any:
    msg = await asyncio.wait_for(ws.receive(), 2)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


@pytest.mark.parametrize(
    "frame", ["ws connected", "ws subscribed", "ws price", "ws error", "ws pong"]
)
async def test_price_frames_have_the_documented_fields(
    world: World, http: aiohttp.ClientSession, frame: str
) -> None:
    _, _, token = await world.api.trader("POST", "/keys/ws-token")
    url = f"{world.sb.ws_url}/v1/ws/prices?token={token['token']}"
    async with http.ws_connect(url) as ws:
        got = await _recv(ws)
        if frame != "ws connected":
            await ws.send_json({"action": "subscribe", "markets": [_cid(world), world.resolved]})
            got = await _recv(ws)
        if frame == "ws price":
            world.sb.set_price(_cid(world), "0.58")
            got = await _recv(ws)
        elif frame == "ws error":
            await ws.send_str("{not json")
            got = await _recv(ws)
        elif frame == "ws pong":
            await ws.send_json({"type": "ping"})
            got = await _recv(ws)
    check_answer(DOCS, frame, got)
    assert got["type"] == frame.split()[1]


async def test_a_closed_market_price_frame_drops_the_book_fields(
    world: World, http: aiohttp.ClientSession
) -> None:
    _, _, token = await world.api.trader("POST", "/keys/ws-token")
    async with http.ws_connect(f"{world.sb.ws_url}/v1/ws/prices?token={token['token']}") as ws:
        await _recv(ws)
        await ws.send_json({"action": "subscribe", "markets": [world.sb.market_ids[1]]})
        await _recv(ws)
        world.sb.resolve_market(world.sb.market_ids[1])  # a split
        got = await _recv(ws)
    check_answer(DOCS, "ws price", got)
    assert got["closed"] is True and "best_bid" not in got and got["buy"] == "0.5000"


def test_the_contract_table_covers_every_documented_answer() -> None:
    frames = {"ws connected", "ws subscribed", "ws price", "ws error", "ws pong"}
    assert {name for name, _ in CASES.values()} | frames == set(DOCS)
