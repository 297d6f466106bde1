"""Trader orders: place (with idempotency), get, list, cancel, cancel-all (API.md §4.5, §9.1).

Wire rules and the choices made where the docs are silent (in API terms):

* The body must be a JSON object (a Polymarket-shape array is ``400
  INVALID_ORDER_PAYLOAD``). ``market_id`` (<=256), ``side`` (BUY/SELL, any case),
  ``outcome`` (<=200, matched case-insensitively) are required; type errors and
  overlong strings are ``422 VALIDATION_FAILED``.
* Exactly one of ``quantity``/``amount``, else ``400 INVALID_ORDER_PAYLOAD``;
  ``amount`` only with a market BUY (else the same code) and buys
  ``floor4(amount / price)`` shares. A non-positive size is ``400 INVALID_QUANTITY``;
  more than 4 dp is floored to 4 dp; above 1e9 is ``422``. Below the market's
  minimum (5 shares by default) is ``400 INVALID_ORDER_MIN_SIZE``.
* ``price`` is required for both types (``400 PRICE_REQUIRED``); it must lie in
  (0, 1] for market orders and [0.01, 0.99] for limits (else ``422``) and on the
  tick grid (``400 INVALID_ORDER_MIN_TICK_SIZE``).
* ``time_in_force`` defaults to GTC (limit) / FOK (market); GTC on a market order
  becomes FOK, FAK is stored as IOC. GTD needs a future ``expiration`` (unix
  seconds, int or digit string) else ``400 INVALID_ORDER_EXPIRATION``.
  ``post_only`` with a market order or FOK/IOC is ``400
  INVALID_POST_ONLY_ORDER_TYPE``; a crossing post-only limit ``400 INVALID_POST_ONLY_ORDER``.
* Idempotency: the key is ``Idempotency-Key``, else ``client_order_id``. The body
  fingerprint is its canonical JSON. Identical replay -> the original answer with
  ``is_replay: true``; other body -> ``409 IDEMPOTENCY_KEY_REUSE``; while the first
  is still executing -> ``409 IDEMPOTENCY_CONFLICT_PENDING`` + ``Retry-After: 1``; a
  ``client_order_id`` already bound under another key -> ``409
  DUPLICATE_CLIENT_ORDER_ID``. Only successful placements are remembered (a
  rejected order frees its key); keys never expire within a sandbox's life.
* ``GET /v1/orders``: newest ``created_at`` first; ``created_at`` is strictly
  increasing per user, so the cursor (URL-safe base64 of the last row's
  ``created_at``, no padding; raw ISO also accepted) never skips or repeats.
  ``next_cursor`` is null when ``has_more`` is false. ``wallet_id`` defaults to the
  API wallet. ``total_hint`` is exact without filters, else null.
* ``GET /v1/orders/{id}``: ``source=pending`` matches limit orders only,
  ``source=filled`` market orders only. Non-integer ids are ``422``.
* Cancel-all cancels every resting order of the API wallet; ``DELETE`` is the
  deprecated alias (``X-Deprecation``/``Sunset`` headers).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from bisect import bisect_left
from decimal import ROUND_DOWN, Decimal
from typing import Any

import msgspec
from aiohttp import web

from ..models import CancelAllResult, Order, OrderPage
from ._clock import SECOND_US, format_iso, parse_iso
from ._core import CORE, Core
from ._errors import ApiError, bad_request, not_found, validation
from ._exchange import OrderParams
from ._parse import decimal_field, query_choice, query_int, string_field
from ._state import Order as OrderRec
from ._state import User
from ._trader_routes import api_wallet, caller, require_trade, scoped_wallets
from ._views import json_response, order_response, order_row

__all__ = ["parse_order", "routes"]

routes = web.RouteTableDef()
_canonical = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder()
_TIFS = ("GTC", "FOK", "FAK", "IOC", "GTD")
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
_C4 = Decimal("0.0001")


def _enum(data: dict[str, Any], name: str, allowed: tuple[str, ...], default: str | None) -> str:
    value = data.get(name)
    if value is None:
        if default is None:
            raise validation(f"{name} is required")
        return default
    if not isinstance(value, str) or value.strip().upper() not in allowed:
        raise validation(f"{name} must be one of {', '.join(allowed)}")
    return value.strip().upper()


def parse_order(data: dict[str, Any], now_us: int) -> OrderParams:
    """Validate an order body into :class:`OrderParams`.

    Raises:
        ApiError: 400 with a documented code, or 422 VALIDATION_FAILED.
    """
    market_id = string_field(data, "market_id", required=True, max_len=256)
    side = _enum(data, "side", ("BUY", "SELL"), None)
    outcome = string_field(data, "outcome", required=True, max_len=200)
    order_type = _enum(data, "order_type", ("MARKET", "LIMIT"), "MARKET").lower()
    huge = Decimal("1e9")
    quantity = decimal_field(data, "quantity", required=False, high=huge)
    amount = decimal_field(data, "amount", required=False, high=huge)
    if (quantity is None) == (amount is None):
        raise bad_request("INVALID_ORDER_PAYLOAD", "Specify either quantity or amount, not both")
    if amount is not None and (side != "BUY" or order_type != "market"):
        raise bad_request("INVALID_ORDER_PAYLOAD", "amount is only accepted on market BUY orders")
    size = quantity if quantity is not None else amount
    assert size is not None
    if size <= 0:
        raise bad_request("INVALID_QUANTITY", "quantity must be positive")
    if quantity is not None:
        quantity = quantity.quantize(_C4, rounding=ROUND_DOWN)
        if quantity <= 0:
            raise bad_request("INVALID_QUANTITY", "quantity rounds to zero at 4 dp")
    if data.get("price") is None:
        raise bad_request("PRICE_REQUIRED", "price is required (worst acceptable price)")
    if order_type == "limit":
        price = decimal_field(
            data, "price", required=True, low=Decimal("0.01"), high=Decimal("0.99")
        )
    else:
        price = decimal_field(
            data, "price", required=True, low=Decimal(0), inclusive_low=False, high=Decimal(1)
        )
    assert price is not None and market_id is not None and outcome is not None
    tif = _enum(data, "time_in_force", _TIFS, "GTC" if order_type == "limit" else "FOK")
    if tif == "FAK":
        tif = "IOC"
    if order_type == "market" and tif not in ("FOK", "IOC"):
        tif = "FOK"
    expiration_us = None
    if tif == "GTD":
        raw = data.get("expiration")
        if isinstance(raw, str) and raw.strip().isdigit():
            raw = int(raw.strip())
        if type(raw) is not int or raw * SECOND_US <= now_us:
            raise bad_request("INVALID_ORDER_EXPIRATION", "GTD needs a future expiration")
        expiration_us = raw * SECOND_US
    post_only = data.get("post_only")
    if post_only is not None and not isinstance(post_only, bool):
        raise validation("post_only must be a boolean")
    if post_only and (order_type == "market" or tif in ("FOK", "IOC")):
        raise bad_request("INVALID_POST_ONLY_ORDER_TYPE", "post_only needs a GTC or GTD limit")
    client_order_id = string_field(data, "client_order_id", required=False, max_len=256)
    return OrderParams(
        market_id=market_id,
        side=side,
        outcome=outcome,
        order_type=order_type,
        time_in_force=tif,
        price=price,
        quantity=quantity,
        amount=amount,
        client_order_id=client_order_id,
        expiration_us=expiration_us,
        post_only=bool(post_only),
    )


async def place_for(
    core: Core, user: User, wallet_id: int, data: Any, idem_key: str | None
) -> Order:
    """Place an order on one of ``user``'s wallets with the idempotency rules.

    Cancellation: if cancelled during ``order_delay``, the key is freed and
    nothing is placed.

    Raises:
        ApiError: any documented order error.
    """
    if isinstance(data, list):
        raise bad_request("INVALID_ORDER_PAYLOAD", "send one order object (arrays unsupported)")
    if not isinstance(data, dict):
        raise validation("request body must be a JSON object")
    params = parse_order(data, core.clock.now_us())
    key = idem_key or params.client_order_id
    fingerprint = _canonical.encode(data)
    if key is not None:
        entry = user.idempotency.get(key)
        if entry is not None:
            if entry[0] != fingerprint:
                raise ApiError(409, "IDEMPOTENCY_KEY_REUSE", "key reused with a different body")
            if entry[1] is None:
                raise ApiError(
                    409,
                    "IDEMPOTENCY_CONFLICT_PENDING",
                    "a request with this key is still in flight",
                    headers={"Retry-After": "1"},
                )
            stored: Order = entry[1]
            return msgspec.structs.replace(stored, is_replay=True)
        coid = params.client_order_id
        if coid is not None and user.client_order_ids.get(coid, key) != key:
            raise ApiError(
                409, "DUPLICATE_CLIENT_ORDER_ID", "client_order_id is bound to another order"
            )
        user.idempotency[key] = (fingerprint, None)
    try:
        if core.settings.order_delay > 0:
            await asyncio.sleep(core.settings.order_delay)
        wallet = core.state.wallets[wallet_id]
        order = core.exchange.place(user, wallet, params)
    except BaseException:
        if key is not None:
            user.idempotency.pop(key, None)
        raise
    answer = order_response(order, wallet)
    if key is not None:
        user.idempotency[key] = (fingerprint, answer)
        if params.client_order_id is not None:
            user.client_order_ids[params.client_order_id] = key
    return answer


@routes.post("/v1/orders")
async def place_order(request: web.Request) -> web.Response:
    """Place one order on the API wallet."""
    core, key, user = caller(request)
    require_trade(key)
    wallet = api_wallet(core, user)
    raw = await request.read()
    try:
        data = _decoder.decode(raw) if raw.strip() else None
    except msgspec.DecodeError as exc:
        raise validation(f"request body is not valid JSON: {exc}") from exc
    idem = request.headers.get("Idempotency-Key")
    idem = idem.strip() if idem and idem.strip() else None
    if idem is not None and len(idem) > 256:
        raise validation("Idempotency-Key must be at most 256 characters")
    return json_response(await place_for(core, user, wallet.wallet_id, data, idem))


def _find(request: web.Request, user: User) -> OrderRec:
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
    except (binascii.Error, UnicodeError, ValueError):
        pass
    try:
        return parse_iso(text.replace(" ", "+"))
    except ValueError:
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
    picked: list[OrderRec] = []
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
    page = OrderPage(
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
    return json_response(CancelAllResult(canceled=canceled, not_canceled={}))


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
