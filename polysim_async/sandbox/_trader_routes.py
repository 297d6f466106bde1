"""Trader account reads, the API-wallet reset and the WebSocket token (API.md §4.2, §4.3).

Choices where the docs are silent (in API terms):

* ``wallet_id`` (positions, history, equity): omitted or ``api`` = the API wallet,
  ``all`` = every wallet of the caller (its API wallet and partner-account
  wallets), an integer = that wallet if the caller owns it, else ``404
  WALLET_NOT_FOUND``; anything else ``422``. A caller without an API wallet gets
  ``404 ACCOUNT_NOT_FOUND`` on the default scope.
* positions ``status``: ``OPEN`` or ``CLOSED`` (any case; ``CLOSED`` includes
  ``CLOSED_BY_RESET``); anything else is ``422``. ``envelope`` takes true/false.
* history: ``limit`` 1..200 (default 50), ``offset`` >= 0, ``side``, ``market_id``;
  with ``wallet_id=all`` the wallets' fills are merged newest first.
* equity: one snapshot per wallet per simulated hour, at the hour; ``wallet_id=all``
  sums the wallets' snapshots hour by hour (``pnl`` against the summed baselines).
* portfolio: ``balance`` always the API wallet's, positions (open ones) and
  statistics over the ``wallet_id`` scope.
* settlements: newest ``position_id`` first; ``limit`` 1..500 (default 100);
  ``cursor`` is the last row's ``position_id`` as a string (the next page holds
  the smaller ids), ``next_cursor`` is ``""`` on the last page, a non-integer
  cursor ``422``; ``from``/``to`` bound ``settled_at`` (a date covers its UTC
  day); ``market_id`` filters.
* ``POST /v1/account/reset-api-balance``: see :func:`._trading.reset_api_balance`.
* ``POST /v1/keys/ws-token`` needs any valid key (no ``trade`` scope) and returns a
  reusable 60-second token; it counts against the REST rate limit.
"""

from __future__ import annotations

import heapq
from decimal import Decimal
from typing import Any

from aiohttp import web

from ._account_views import portfolio, settlement_row
from ._clock import HOUR_US
from ._context import CONTEXT
from ._core import CORE, Core
from ._errors import ApiError, not_found, validation
from ._feed import TradeRow
from ._fields import HISTORY_PAGE, POSITION_PAGE, SETTLEMENT_PAGE, WS_TOKEN
from ._json import json_response
from ._parse import query_bool, query_choice, query_int, time_range
from ._state import Settlement, TraderKey, User, Wallet
from ._trading import reset_api_balance
from ._views import balance, equity_point, history_row, positions, price_source
from ._ws import WS_TOKEN_TTL

__all__ = [
    "api_wallet",
    "caller",
    "require_trade",
    "routes",
    "scoped_settlements",
    "scoped_wallets",
]

routes = web.RouteTableDef()


def caller(request: web.Request) -> tuple[Core, TraderKey, User]:
    """The core, the authenticated key and its user."""
    core = request.app[CORE]
    key = CONTEXT.get().trader_key
    assert key is not None
    return core, key, core.state.users[key.user_id]


def api_wallet(core: Core, user: User) -> Wallet:
    """The caller's API wallet.

    Raises:
        ApiError: 404 ACCOUNT_NOT_FOUND when there is none.
    """
    if user.api_wallet_id is None:
        raise not_found("ACCOUNT_NOT_FOUND", "no API wallet for this user")
    return core.state.wallets[user.api_wallet_id]


def scoped_wallets(core: Core, user: User, raw: str | None) -> list[Wallet]:
    """Resolve a ``wallet_id`` query value to wallets.

    Raises:
        ApiError: 422 for an unreadable value, 404 WALLET_NOT_FOUND for a foreign id.
    """
    value = (raw or "api").strip().lower()
    if value == "api":
        return [api_wallet(core, user)]
    if value == "all":
        return [core.state.wallets[w] for w in user.wallet_ids]
    try:
        wallet_id = int(value)
    except ValueError:
        raise validation("wallet_id must be all, api or an integer wallet id") from None
    wallet = core.state.wallets.get(wallet_id)
    if wallet is None or wallet.user_id != user.user_id:
        raise not_found("WALLET_NOT_FOUND", "wallet not found")
    return [wallet]


@routes.get("/v1/account/balance")
async def get_balance(request: web.Request) -> web.Response:
    """The API wallet's cash, baseline and total value."""
    core, _, user = caller(request)
    return json_response(balance(core.exchange, api_wallet(core, user)))


@routes.get("/v1/account/positions")
async def get_positions(request: web.Request) -> web.Response:
    """Position rows (bare array, or the envelope form)."""
    core, _, user = caller(request)
    status = query_choice(request, "status", ("OPEN", "CLOSED"))
    envelope = query_bool(request, "envelope")
    wallets = scoped_wallets(core, user, request.query.get("wallet_id"))
    rows = positions(core.exchange, wallets, status)
    if envelope:
        return json_response(
            POSITION_PAGE.make(limit=len(rows), count=len(rows), next_cursor="", data=rows)
        )
    return json_response(rows)


def _history_row(core: Core, filled_us: int, row: TradeRow) -> dict[str, Any]:
    order = core.state.orders.get(row.order_id)
    return history_row(
        row,
        filled_us=filled_us,
        created_us=filled_us if order is None else order.created_us,
        price_source="generated" if order is None else price_source(order),
    )


@routes.get("/v1/account/history")
async def get_history(request: web.Request) -> web.Response:
    """Filled orders, newest ``filled_at`` first, by limit/offset."""
    core, _, user = caller(request)
    limit = query_int(request, "limit", default=50, low=1, high=200)
    offset = query_int(request, "offset", default=0, low=0)
    side = query_choice(request, "side", ("BUY", "SELL"))
    market_id = request.query.get("market_id") or None
    envelope = query_bool(request, "envelope")
    wallets = scoped_wallets(core, user, request.query.get("wallet_id"))
    if len(wallets) == 1:
        picked = wallets[0].fills.newest(offset=offset, limit=limit, side=side, market_id=market_id)
    else:
        merged = heapq.merge(
            *(w.fills.iter_newest(side=side, market_id=market_id) for w in wallets),
            key=lambda item: (item[0], item[1].order_id),
            reverse=True,
        )
        picked = []
        for i, item in enumerate(merged):
            if i >= offset + limit:
                break
            if i >= offset:
                picked.append(item)
    rows = [_history_row(core, f, r) for f, r in picked]
    if envelope:
        next_cursor = str(offset + limit) if len(rows) == limit else ""
        return json_response(HISTORY_PAGE.make(data=rows, next_cursor=next_cursor))
    return json_response(rows)


@routes.get("/v1/account/equity")
async def get_equity(request: web.Request) -> web.Response:
    """Hourly snapshots of the last ``days`` days, oldest first."""
    core, _, user = caller(request)
    days = query_int(request, "days", default=7, low=1, high=90)
    wallets = scoped_wallets(core, user, request.query.get("wallet_id"))
    since = core.clock.now_us() - days * 24 * HOUR_US
    by_hour: dict[int, list[Decimal]] = {}
    for wallet in wallets:
        for hour, cash, value, start in reversed(wallet.snapshots):
            if hour <= since:
                break
            acc = by_hour.setdefault(hour, [Decimal(0), Decimal(0), Decimal(0)])
            acc[0] += cash
            acc[1] += value
            acc[2] += start
    points = [
        equity_point(hour, cash, value, start)
        for hour, (cash, value, start) in sorted(by_hour.items())
    ]
    return json_response(points)


@routes.get("/v1/account/portfolio")
async def get_portfolio(request: web.Request) -> web.Response:
    """The API wallet's balance with the scope's open positions and trade statistics."""
    core, _, user = caller(request)
    wallets = scoped_wallets(core, user, request.query.get("wallet_id"))
    return json_response(portfolio(core.exchange, api_wallet(core, user), wallets))


def scoped_settlements(request: web.Request, wallets: list[Wallet]) -> list[Settlement]:
    """The scope's settlements that pass ``market_id`` and ``from``/``to``, newest position first.

    Raises:
        ApiError: 422 for a bad filter.
    """
    market_id = request.query.get("market_id") or None
    start, end = time_range(request)
    rows = [
        s
        for w in wallets
        for s in w.settlements
        if (market_id is None or s.market_id == market_id)
        and (start is None or s.settled_us >= start)
        and (end is None or s.settled_us < end)
    ]
    rows.sort(key=lambda s: s.position_id, reverse=True)
    return rows


@routes.get("/v1/account/settlements")
async def get_settlements(request: web.Request) -> web.Response:
    """One page of settled positions, newest position first, by ``position_id`` keyset."""
    core, _, user = caller(request)
    limit = query_int(request, "limit", default=100, low=1, high=500)
    raw = (request.query.get("cursor") or "").strip()
    before: int | None = None
    if raw:
        try:
            before = int(raw)
        except ValueError:
            raise validation("cursor is malformed; resend next_cursor unchanged") from None
    wallets = scoped_wallets(core, user, request.query.get("wallet_id"))
    rows = scoped_settlements(request, wallets)
    if before is not None:
        rows = [s for s in rows if s.position_id < before]
    page = rows[:limit]
    next_cursor = str(page[-1].position_id) if len(rows) > limit else ""
    return json_response(
        SETTLEMENT_PAGE.make(data=[settlement_row(s) for s in page], next_cursor=next_cursor)
    )


@routes.post("/v1/account/reset-api-balance")
async def reset_api(request: web.Request) -> web.Response:
    """Reset the API wallet to the plan's baseline (not idempotent)."""
    core, _, user = caller(request)
    return json_response(reset_api_balance(core, user, api_wallet(core, user)))


@routes.post("/v1/keys/ws-token")
async def ws_token(request: web.Request) -> web.Response:
    """Mint a 60-second, reusable WebSocket token."""
    core, key, user = caller(request)
    token = core.tokens.mint(user.user_id, key.tier)
    return json_response(WS_TOKEN.make(token=token, expires_in=WS_TOKEN_TTL))


def require_trade(key: TraderKey) -> None:
    """Check the ``trade`` permission.

    Raises:
        ApiError: 403 INSUFFICIENT_PERMISSION.
    """
    if "trade" not in key.permissions:
        raise ApiError(403, "INSUFFICIENT_PERMISSION", "this API key lacks the trade permission")
