"""Order placement with idempotency, and the partner account lifecycle (API.md §4.5, §9.1, P8, P9).

Used by the trader routes and by the control API alike, so an order placed through
``Sandbox.place_order`` follows exactly the rules of ``POST /v1/orders``.

Wire rules and the choices made where the docs are silent (in API terms):

* The body must be a JSON object (a Polymarket-shape array is ``400
  INVALID_ORDER_PAYLOAD``). ``market_id`` (<=256), ``side`` (BUY/SELL, any case),
  ``outcome`` (<=200, matched case-insensitively) are required; type errors and
  overlong strings are ``422 VALIDATION_FAILED``.
* Exactly one of ``quantity``/``amount``, else ``400 INVALID_ORDER_PAYLOAD``;
  ``amount`` only with a market BUY (else the same code) and buys
  ``floor4(amount / price)`` shares (``amount_interpreted_as: "usd_notional"``).
  A non-positive size is ``400 INVALID_QUANTITY``; more than 4 dp is floored to
  4 dp; above 1e9 is ``422``. Below the market's minimum (5 shares by default) is
  ``400 INVALID_ORDER_MIN_SIZE``.
* ``price`` is required for both types (``400 PRICE_REQUIRED``); it must lie in
  (0, 1] for market orders and [0.01, 0.99] for limits (else ``422``) and on the
  tick grid (``400 INVALID_ORDER_MIN_TICK_SIZE``).
* ``time_in_force`` defaults to GTC (limit) / FOK (market); GTC on a market order
  becomes FOK, FAK is stored as IOC. GTD needs a future ``expiration`` (unix
  seconds, an integer or a string of up to 12 ASCII digits) else ``400
  INVALID_ORDER_EXPIRATION``. ``post_only`` with a market order or FOK/IOC is ``400
  INVALID_POST_ONLY_ORDER_TYPE``; a crossing post-only limit ``400 INVALID_POST_ONLY_ORDER``.
* Idempotency: the key is ``Idempotency-Key``, else ``client_order_id``. The body
  fingerprint is its canonical JSON. Identical replay -> the original answer with
  ``is_replay: true`` (``spread_bps``, ``impact_bps``, ``book_walk_levels`` null);
  other body -> ``409 IDEMPOTENCY_KEY_REUSE``; while the first is still executing
  -> ``409 IDEMPOTENCY_CONFLICT_PENDING`` + ``Retry-After: 1``; a ``client_order_id``
  already bound under another key -> ``409 DUPLICATE_CLIENT_ORDER_ID``. Only
  successful placements are remembered (a rejected order frees its key); keys
  never expire within a sandbox's life.
* Close and reset cancel at most ``bulk_cancel_limit`` open orders per call and
  answer ``409 ORDERS_NOT_CANCELLED`` while some remain.
* Batches (API.md O2): entries are placed one after the other with exactly the
  rules above, each deduplicated by its own ``client_order_id`` in the same
  store as single orders (an entry that repeats an earlier order comes back as
  its replay). A refused entry becomes ``REJECTED`` with its code in ``error``
  (an unexpected failure ``ERROR`` / ``INTERNAL_ERROR``); the others stand.
* ``reset-api-balance`` cancels the API wallet's resting orders
  (``balance_reset``), closes its positions as ``CLOSED_BY_RESET`` and refunds it
  to the plan's baseline; free plans get ``402 UPGRADE_REQUIRED``.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import ROUND_DOWN, Decimal
from typing import Any

import msgspec

from ._clock import SECOND_US
from ._core import Core
from ._errors import ApiError, bad_request, upgrade_required, validation
from ._exchange import OrderParams, money
from ._fields import API_RESET, BATCH
from ._parse import decimal_field, string_field
from ._state import TIERS, PartnerAccount, User, Wallet
from ._views import REPLAY_NULLS, order_response, rejected_order

__all__ = [
    "close_account",
    "parse_order",
    "place_batch",
    "place_order",
    "reset_account",
    "reset_api_balance",
]

log = logging.getLogger("polysim_async.sandbox")

_canonical = msgspec.json.Encoder(order="sorted")
_TIFS = ("GTC", "FOK", "FAK", "IOC", "GTD")
_C4 = Decimal("0.0001")
_MAX_SIZE = Decimal("1e9")


def _enum(data: dict[str, Any], name: str, allowed: tuple[str, ...], default: str | None) -> str:
    value = data.get(name)
    if value is None:
        if default is None:
            raise validation(f"{name} is required")
        return default
    if not isinstance(value, str) or value.strip().upper() not in allowed:
        raise validation(f"{name} must be one of {', '.join(allowed)}")
    return value.strip().upper()


def _expiration(raw: Any, now_us: int) -> int:
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        text = raw.strip()
        raw = int(text) if len(text) <= 12 else None
    if type(raw) is not int or not now_us < raw * SECOND_US < 10**13 * SECOND_US:
        raise bad_request("INVALID_ORDER_EXPIRATION", "GTD needs a future expiration")
    return raw * SECOND_US


def parse_order(data: dict[str, Any], now_us: int) -> OrderParams:
    """Validate an order body into :class:`OrderParams`.

    Raises:
        ApiError: 400 with a documented code, or 422 VALIDATION_FAILED.
    """
    market_id = string_field(data, "market_id", required=True, max_len=256)
    side = _enum(data, "side", ("BUY", "SELL"), None)
    outcome = string_field(data, "outcome", required=True, max_len=200)
    order_type = _enum(data, "order_type", ("MARKET", "LIMIT"), "MARKET").lower()
    quantity = decimal_field(data, "quantity", required=False, high=_MAX_SIZE)
    amount = decimal_field(data, "amount", required=False, high=_MAX_SIZE)
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
    expiration_us = _expiration(data.get("expiration"), now_us) if tif == "GTD" else None
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


async def place_order(
    core: Core, user: User, wallet_id: int, data: Any, idem_key: str | None
) -> dict[str, Any]:
    """Place an order on one of ``user``'s wallets with the idempotency rules.

    Returns:
        The ``OrderResponse`` body (a replay's answer when the key was seen).

    Raises:
        ApiError: any documented order error.

    Cancellation: if cancelled during ``order_delay``, the key is freed and
    nothing is placed.
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
            return {**entry[1], "is_replay": True, **REPLAY_NULLS}
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


async def place_batch(core: Core, user: User, wallet_id: int, entries: list[Any]) -> dict[str, Any]:
    """Place each entry of a batch on ``wallet_id``; return the ``BatchResult`` body.

    Cancellation propagates; entries placed before it stand.
    """
    results: list[dict[str, Any]] = []
    for entry in entries:
        try:
            if not isinstance(entry, dict):
                raise validation("each order must be a JSON object")
            results.append(await place_order(core, user, wallet_id, entry, None))
        except ApiError as exc:
            results.append(rejected_order(entry, exc.code, exc.message))
        except Exception:
            log.exception("sandbox batch entry failed")
            results.append(
                rejected_order(entry, "INTERNAL_ERROR", "internal error", status="ERROR")
            )
    failed = sum(1 for r in results if r["order_id"] == 0)
    return BATCH.make(results=results, succeeded=len(results) - failed, failed=failed)


def reset_api_balance(core: Core, user: User, wallet: Wallet) -> dict[str, Any]:
    """Reset the API wallet to the plan's baseline; return the documented answer.

    Raises:
        ApiError: 402 UPGRADE_REQUIRED on the free plan.
    """
    if user.tier == "free":
        raise upgrade_required(
            "api_wallet.reset", "resetting the API wallet needs a paid plan (Pro or above)"
        )
    for order in sorted(wallet.pending.values(), key=lambda o: o.order_id):
        core.exchange.cancel(order, reason="balance_reset")
    closed = len(wallet.positions)
    wallet.starting_balance = TIERS[user.tier].baseline
    core.exchange.reset_wallet(wallet)
    amount = money(wallet.cash)
    return API_RESET.make(
        message=f"API balance reset to ${wallet.cash:,.2f}",
        new_api_balance=amount,
        positions_closed=closed,
        cooldown_days=0,
    )


def _drain(core: Core, account: PartnerAccount) -> None:
    """Cancel up to the bulk-cancel limit of an account's open orders.

    Raises:
        ApiError: 409 ORDERS_NOT_CANCELLED while some remain after this batch.
    """
    left = core.exchange.cancel_batch(account.wallet, core.settings.bulk_cancel_limit)
    if left:
        raise ApiError(
            409,
            "ORDERS_NOT_CANCELLED",
            f"{left} open orders could not be cancelled in this call; retry to cancel the rest",
        )


def close_account(core: Core, account: PartnerAccount) -> bool:
    """Close (idempotently); return ``False`` when it was already closed.

    Raises:
        ApiError: 409 ORDERS_NOT_CANCELLED (see the module docstring).
    """
    if account.status == "closed":
        return False
    _drain(core, account)
    account.status = "closed"
    account.wallet.status = "ARCHIVED"
    account.wallet.updated_us = account.wallet.archived_us = core.clock.stamp()
    return True


def reset_account(core: Core, account: PartnerAccount) -> None:
    """Reset to the starting balance, re-activating; history is kept.

    Raises:
        ApiError: 409 ORDERS_NOT_CANCELLED (see the module docstring).
    """
    _drain(core, account)
    core.exchange.reset_wallet(account.wallet)
    account.status = "active"
