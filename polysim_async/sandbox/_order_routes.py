"""Trader order routes: place, batch, get, list, cancel, cancel-all, cancel by market
(API.md §4.5, §8.2).

Placement rules and idempotency live in :mod:`._trading`. Choices where the docs
are silent (in API terms):

* ``GET /v1/orders``: newest ``created_at`` first; ``created_at`` is strictly
  increasing per user, so the cursor (URL-safe base64 of the last row's
  ``created_at``, no padding; raw ISO also accepted) never skips or repeats.
  ``next_cursor`` is null when ``has_more`` is false. ``wallet_id`` defaults to the
  API wallet. ``total_hint`` is exact without filters, else null.
* ``GET /v1/orders/{id}``: ``source=pending`` matches limit orders only,
  ``source=filled`` market orders only. Non-integer ids are ``422``.
* Cancel-all cancels every resting order of the API wallet; ``DELETE`` is the
  deprecated alias (``X-Deprecation``/``Sunset`` headers).
* ``POST /v1/orders/batch``: the body must be ``{"orders": [...]}`` with at least
  one entry (else ``422``); more entries than the key's tier allows (free 1, pro
  5, pro_plus 10, enterprise 25) is ``400 BATCH_LIMIT_EXCEEDED`` with nothing
  processed; otherwise ``200`` with one result per entry (see :mod:`._trading`).
  It counts as one request against the rate limit.
* ``DELETE /v1/cancel-market-orders``: ``market=<condition_id>`` and/or
  ``asset_id=<token_id>`` (neither: ``422``; both: the orders matching both)
  cancel the API wallet's resting orders in that market (or that outcome);
  unknown ids match nothing, so a repeat answers an empty ``canceled`` list.
"""

from __future__ import annotations

import base64
import binascii
from bisect import bisect_left

from aiohttp import web

from ._clock import format_iso, parse_iso
from ._core import CORE
from ._errors import bad_request, not_found, validation
from ._fields import CANCEL_ALL, ORDER_PAGE
from ._json import json_response
from ._parse import json_body, query_choice, query_int
from ._state import TIERS, Order, User
from ._trader_routes import api_wallet, caller, require_trade, scoped_wallets
from ._trading import place_batch
from ._trading import place_order as place
from ._views import order_response, order_row

__all__ = ["routes"]

routes = web.RouteTableDef()
_STATUS = {
    "PENDING": "PENDING",
    "OPEN": "PENDING",
    "LIVE": "PENDING",
    "ORDER_STATUS_LIVE": "PENDING",
    "FILLED": "FILLED",
    "MATCHED": "FILLED",
    "ORDER_STATUS_MATCHED": "FILLED",
    "CANCELLED": "CANCELLED",
    "CANCELED": "CANCELLED",
    "UNMATCHED": "CANCELLED",
    "ORDER_STATUS_CANCELED": "CANCELLED",
    "EXPIRED": "EXPIRED",
    "ORDER_STATUS_INVALID": "EXPIRED",
}


@routes.post("/v1/orders")
async def place_order(request: web.Request) -> web.Response:
    """Place one order on the API wallet."""
    core, key, user = caller(request)
    require_trade(key)
    wallet = api_wallet(core, user)
    data = await json_body(request)
    idem = request.headers.get("Idempotency-Key")
    idem = idem.strip() if idem and idem.strip() else None
    if idem is not None and len(idem) > 256:
        raise validation("Idempotency-Key must be at most 256 characters")
    return json_response(await place(core, user, wallet.wallet_id, data, idem))


@routes.post("/v1/orders/batch")
async def place_orders(request: web.Request) -> web.Response:
    """Place up to the tier's batch size of orders on the API wallet."""
    core, key, user = caller(request)
    require_trade(key)
    wallet = api_wallet(core, user)
    data = await json_body(request)
    orders = data.get("orders") if isinstance(data, dict) else None
    if not isinstance(orders, list):
        raise validation('request body must be {"orders": [order, ...]}')
    if not orders:
        raise validation("orders must hold at least one order")
    limit = TIERS[key.tier].max_batch
    if len(orders) > limit:
        raise bad_request(
            "BATCH_LIMIT_EXCEEDED", f"Batch size {len(orders)} exceeds tier limit ({limit})"
        )
    return json_response(await place_batch(core, user, wallet.wallet_id, orders))


def _find(request: web.Request, user: User) -> Order:
    try:
        order_id = int(request.match_info["order_id"])
    except ValueError:
        raise validation("order_id must be an integer") from None
    order = request.app[CORE].state.orders.get(order_id)
    if order is None or order.user_id != user.user_id:
        raise not_found("ORDER_NOT_FOUND", f"order {order_id} not found")
    return order


@routes.get("/v1/orders/{order_id}")
async def get_order(request: web.Request) -> web.Response:
    """One order row."""
    _, _, user = caller(request)
    source = query_choice(request, "source", ("pending", "filled"), lower=True)
    wallet_id = None
    wallet_raw = request.query.get("wallet_id")
    if wallet_raw is not None:
        try:
            wallet_id = int(wallet_raw)
        except ValueError:
            raise validation("wallet_id must be an integer") from None
    order = _find(request, user)
    if source is not None and (source == "pending") != (order.order_type == "limit"):
        raise not_found("ORDER_NOT_FOUND", f"order {order.order_id} not found")
    if wallet_id is not None and wallet_id != order.wallet_id:
        raise not_found("ORDER_NOT_FOUND", f"order {order.order_id} not found")
    return json_response(order_row(order))


def _decode_created(cursor: str) -> int:
    text = cursor.strip()
    try:
        padded = text + "=" * (-len(text) % 4)
        return parse_iso(base64.urlsafe_b64decode(padded.encode("ascii")).decode())
    except (binascii.Error, UnicodeError, ValueError, OverflowError):
        pass
    try:
        return parse_iso(text.replace(" ", "+"))
    except (ValueError, OverflowError):
        raise validation("cursor is malformed; resend next_cursor unchanged") from None


@routes.get("/v1/orders")
async def list_orders(request: web.Request) -> web.Response:
    """A page of orders, newest first, with a created_at cursor."""
    core, _, user = caller(request)
    query = request.query
    status = query.get("status")
    if status is not None:
        status = _STATUS.get(status.strip().upper())
        if status is None:
            raise validation("status must be PENDING, FILLED, CANCELLED or EXPIRED")
    side = query_choice(request, "side", ("BUY", "SELL"))
    market_id = query.get("market_id") or None
    limit = query_int(request, "limit", default=50, low=1, high=200)
    offset = query_int(request, "offset", default=0, low=0)
    wallet_ids = {w.wallet_id for w in scoped_wallets(core, user, query.get("wallet_id"))}
    cursor = query.get("cursor") or query.get("next_cursor")
    end = len(user.orders)
    if cursor:
        end = bisect_left(user.order_created, _decode_created(cursor))
        offset = 0
    picked: list[Order] = []
    skipped = 0
    has_more = False
    for k in range(end - 1, -1, -1):
        order = user.orders[k]
        if order.wallet_id not in wallet_ids:
            continue
        if (status and order.status != status) or (side and order.side != side):
            continue
        if market_id and order.market_id != market_id:
            continue
        if skipped < offset:
            skipped += 1
            continue
        if len(picked) == limit:
            has_more = True
            break
        picked.append(order)
    next_cursor = None
    if has_more and picked:
        raw = format_iso(picked[-1].created_us).encode()
        next_cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    filtered = status or side or market_id or query.get("wallet_id")
    page = ORDER_PAGE.make(
        orders=[order_row(o) for o in picked],
        next_cursor=next_cursor,
        has_more=has_more,
        total_hint=None if filtered else sum(1 for o in user.orders if o.wallet_id in wallet_ids),
    )
    return json_response(page)


@routes.delete("/v1/orders/{order_id}")
async def cancel_order(request: web.Request) -> web.Response:
    """Cancel one resting order."""
    core, key, user = caller(request)
    require_trade(key)
    order = _find(request, user)
    if order.status != "PENDING":
        raise bad_request("ORDER_NOT_CANCELLABLE", f"order is already {order.status}")
    core.exchange.cancel(order)
    return json_response(order_response(order, core.state.wallets[order.wallet_id]))


async def _cancel_all(request: web.Request) -> web.Response:
    core, key, user = caller(request)
    require_trade(key)
    confirm = request.query.get("confirm", "").strip().lower() in ("true", "1")
    header = request.headers.get("X-Confirm-Cancel-All", "").strip().lower() == "true"
    if not (confirm or header):
        raise bad_request(
            "CONFIRMATION_REQUIRED",
            "cancel-all needs ?confirm=true or the X-Confirm-Cancel-All: true header",
        )
    wallet = api_wallet(core, user)
    canceled = []
    for order in sorted(wallet.pending.values(), key=lambda o: o.order_id):
        core.exchange.cancel(order)
        canceled.append(str(order.order_id))
    return json_response(CANCEL_ALL.make(canceled=canceled, not_canceled={}))


@routes.post("/v1/cancel-all")
async def cancel_all(request: web.Request) -> web.Response:
    """Cancel every resting order (needs confirmation)."""
    return await _cancel_all(request)


@routes.delete("/v1/cancel-all")
async def cancel_all_deprecated(request: web.Request) -> web.Response:
    """Deprecated ``DELETE`` alias of cancel-all."""
    response = await _cancel_all(request)
    response.headers["X-Deprecation"] = "use POST /v1/cancel-all"
    response.headers["Sunset"] = "Wed, 31 Dec 2026 23:59:59 GMT"
    return response


@routes.delete("/v1/cancel-market-orders")
async def cancel_market_orders(request: web.Request) -> web.Response:
    """Cancel the API wallet's resting orders in one market (or one outcome token)."""
    core, key, user = caller(request)
    require_trade(key)
    market_id = request.query.get("market") or None
    asset_id = request.query.get("asset_id") or None
    if market_id is None and asset_id is None:
        raise validation("give market=<condition_id> or asset_id=<token_id>")
    for name, value in (("market", market_id), ("asset_id", asset_id)):
        if value is not None and len(value) > 256:
            raise validation(f"{name} must be at most 256 characters")
    wallet = api_wallet(core, user)
    outcome = None
    if asset_id is not None:
        token = core.state.tokens.get(asset_id)
        if token is None or (market_id is not None and token[0] != market_id):
            return json_response(CANCEL_ALL.make(canceled=[], not_canceled={}))
        market_id, outcome = token
    ids = core.exchange.cancel_where(wallet, market_id=market_id, outcome=outcome)
    return json_response(CANCEL_ALL.make(canceled=[str(i) for i in ids], not_canceled={}))
