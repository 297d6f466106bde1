"""CSV exports, ``GET /v1/export/trades.csv`` and ``/v1/export/settlements.csv`` (API.md §4.1).

Paid plans only: a free plan gets ``402 UPGRADE_REQUIRED`` (``feature_key``
``exports.csv``). Both answer ``text/csv; charset=utf-8`` with a header line,
newest first (trades by fill time, settlements by ``position_id``, the rows of
``GET /v1/account/settlements``), and stop after ``export_row_cap`` rows (a knob,
default 10,000) with a last line ``# truncated: ...`` when more were left out.
Filters: ``wallet_id`` (omitted: **every** wallet, as the SDK documents for the
settlements export; ``api``, ``all`` or an id as elsewhere), ``market_id``, and
``from``/``to`` on the fill or settlement time (a date covers its UTC day). The
trade columns are the history row's plus ``wallet_id`` (inferred: the columns are
not documented); the settlement columns are the settlement row's.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from ._account_views import csv_text, settlement_row
from ._clock import format_iso_z
from ._errors import upgrade_required
from ._feed import TradeRow
from ._fields import SETTLEMENTS_CSV, TRADES_CSV
from ._parse import time_range
from ._state import User, Wallet
from ._trader_routes import caller, scoped_settlements, scoped_wallets

__all__ = ["routes"]

routes = web.RouteTableDef()


def _check_plan(user: User) -> None:
    if user.tier == "free":
        raise upgrade_required("exports.csv", "CSV exports need a paid plan (Pro or above)")


def _csv(text: str, name: str) -> web.Response:
    response = web.Response(text=text, content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _feed(wallet: Wallet, market_id: str | None) -> Iterator[tuple[int, int, int, TradeRow]]:
    for us, row in wallet.fills.iter_newest(market_id=market_id):
        yield us, row.order_id, wallet.wallet_id, row


def _trade_rows(
    wallets: list[Wallet], market_id: str | None, start: int | None, end: int | None
) -> Iterator[dict[str, Any]]:
    feeds = [_feed(w, market_id) for w in wallets]
    for us, _, wallet_id, row in heapq.merge(*feeds, key=lambda t: (t[0], t[1]), reverse=True):
        if end is not None and us >= end:
            continue
        if start is not None and us < start:
            break
        yield TRADES_CSV.make(
            filled_at=format_iso_z(us),
            order_id=row.order_id,
            wallet_id=wallet_id,
            market_id=row.market_id,
            side=row.side,
            outcome=row.outcome,
            price=row.price,
            quantity=row.quantity,
            notional=row.notional,
            fee=row.fee,
        )


@routes.get("/v1/export/trades.csv")
async def export_trades(request: web.Request) -> web.Response:
    """Filled trades as CSV, newest first."""
    core, _, user = caller(request)
    _check_plan(user)
    wallets = scoped_wallets(core, user, request.query.get("wallet_id", "all"))
    start, end = time_range(request)
    market_id = request.query.get("market_id") or None
    rows = _trade_rows(wallets, market_id, start, end)
    return _csv(csv_text(TRADES_CSV, rows, cap=core.settings.export_row_cap), "trades.csv")


@routes.get("/v1/export/settlements.csv")
async def export_settlements(request: web.Request) -> web.Response:
    """Settled positions as CSV, newest position first."""
    core, _, user = caller(request)
    _check_plan(user)
    wallets = scoped_wallets(core, user, request.query.get("wallet_id", "all"))
    rows = (settlement_row(s) for s in scoped_settlements(request, wallets))
    text = csv_text(SETTLEMENTS_CSV, rows, cap=core.settings.export_row_cap)
    return _csv(text, "settlements.csv")
