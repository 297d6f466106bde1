"""Trader orders (``/v1/orders``, ``/v1/cancel-all``, personal key): ``client.orders``."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import AsyncGenerator
from datetime import datetime
from decimal import Decimal

import msgspec

from ._errors import APIStatusError, InvalidArgumentError, from_response
from ._pagination import flatten, walk_cursor
from ._requester import Requester
from ._validation import (
    check_enum,
    check_int,
    check_str,
    page_limit,
    path_id,
    to_money,
    wallet_number,
    wallet_param,
)
from .models.common import Side
from .models.orders import (
    CancelAllResult,
    Order,
    OrderPage,
    OrderRow,
    OrderStatus,
    OrderType,
    PlaceOrderRequest,
    TimeInForce,
)

__all__ = ["OrdersAPI"]


def _already_settled(error: APIStatusError) -> bool:
    # A repeated cancel finds the order no longer resting: maybe cancelled by the lost attempt.
    return error.code == "ORDER_NOT_CANCELLABLE"


_RESTING = frozenset({TimeInForce.GTC, TimeInForce.GTD})
_LISTABLE = frozenset(
    {OrderStatus.PENDING, OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}
)
#: The finest tick of any market (API.md §4.5) and the share quantum: 4 decimal places.
_MAX_PLACES = 4
#: Largest page ``GET /v1/orders`` serves (API.md §4.5, O3).
_ORDERS_PAGE_MAX = 200


def _places(name: str, value: Decimal, places: int = _MAX_PLACES) -> Decimal:
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        raise InvalidArgumentError(f"{name} has more than {places} decimal places: {value}")
    return value


def _expiration(value: int | datetime | None) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidArgumentError("expiration must be timezone-aware")
        return int(value.timestamp())
    raise InvalidArgumentError(f"expiration must be unix seconds or a datetime, got {value!r}")


def build_order(
    *,
    market_id: str,
    side: Side | str,
    outcome: str,
    order_type: OrderType | str,
    price: Decimal | int | str | None,
    quantity: Decimal | int | str | None,
    amount: Decimal | int | str | None,
    time_in_force: TimeInForce | str | None,
    client_order_id: str | None,
    expiration: int | datetime | None,
    post_only: bool | None,
) -> PlaceOrderRequest:
    """Validate order arguments and build the request body; see :meth:`OrdersAPI.place`.

    Raises:
        InvalidArgumentError: any rule of :meth:`OrdersAPI.place` is broken.
    """
    kind = check_enum("order_type", order_type, OrderType)
    direction = check_enum("side", side, Side)
    if (quantity is None) == (amount is None):
        raise InvalidArgumentError("give exactly one of quantity (shares) or amount (USD)")
    if amount is not None and (kind is not OrderType.MARKET or direction is not Side.BUY):
        raise InvalidArgumentError("amount is only allowed on a BUY market order; use quantity")
    if price is None:
        what = "the limit price" if kind is OrderType.LIMIT else "the worst acceptable price"
        raise InvalidArgumentError(f"price is required: {what}")
    px = _places("price", to_money("price", price))
    ceiling_ok = px < 1 if kind is OrderType.LIMIT else px <= 1
    if not ceiling_ok:
        raise InvalidArgumentError(
            f"price must be a probability below 1 (at most 1 on a market order), got {px}"
        )
    tif = None if time_in_force is None else check_enum("time_in_force", time_in_force, TimeInForce)
    expires = _expiration(expiration)
    if (tif is TimeInForce.GTD) != (expires is not None):
        raise InvalidArgumentError("expiration is required with GTD and allowed only with GTD")
    if post_only and (kind is not OrderType.LIMIT or (tif is not None and tif not in _RESTING)):
        raise InvalidArgumentError("post_only needs a resting limit order (GTC or GTD)")
    return PlaceOrderRequest(
        market_id=check_str("market_id", market_id, max_len=256),
        side=direction,
        outcome=check_str("outcome", outcome, max_len=200),
        quantity=None if quantity is None else _places("quantity", to_money("quantity", quantity)),
        amount=None if amount is None else to_money("amount", amount),
        order_type=kind,
        price=px,
        time_in_force=tif,
        client_order_id=(
            None
            if client_order_id is None
            else check_str("client_order_id", client_order_id, max_len=256)
        ),
        expiration=expires,
        post_only=post_only,
    )


class OrdersAPI:
    """``client.orders``: place, read, list and cancel the key owner's orders.

    Order writes (place, cancel, cancel-all) of one client are serialised: the
    server holds a per-account write lock and answers a concurrent write with
    409 ``TRADE_IN_PROGRESS`` (API.md §7.2), so queueing them here avoids the
    round trip. Reads run concurrently.
    """

    def __init__(self, requester: Requester) -> None:
        self._r = requester
        self._write_lock = asyncio.Lock()

    async def place(
        self,
        *,
        market_id: str,
        side: Side | str,
        outcome: str,
        order_type: OrderType | str,
        price: Decimal | int | str | None = None,
        quantity: Decimal | int | str | None = None,
        amount: Decimal | int | str | None = None,
        time_in_force: TimeInForce | str | None = None,
        client_order_id: str | None = None,
        expiration: int | datetime | None = None,
        post_only: bool | None = None,
    ) -> Order:
        """Place one order (``POST /v1/orders``).

        Every placement carries an ``Idempotency-Key``: ``client_order_id`` if
        given, else a fresh UUID that is also sent as ``client_order_id`` (so a
        lost answer can be reconciled with :meth:`list`). The same key is reused
        on every retry, so a repeated placement is answered with the original
        order and can never fill twice. It is therefore retried like an
        idempotent call: transport errors, 429, 425/502/503/504 (503
        ``SERVER_BUSY``), and 409 ``IDEMPOTENCY_CONFLICT_PENDING`` /
        ``TRADE_IN_PROGRESS`` after their ``Retry-After``. Outcomes where the
        server may or may not have stored the order are never retried.

        Args:
            market_id: the market's condition id.
            side: ``BUY`` or ``SELL`` (any case).
            outcome: the outcome label, e.g. ``"Yes"``.
            order_type: ``"limit"`` or ``"market"``; required, so a market order
                is never sent by default.
            price: limit price, or a market order's worst acceptable price (BUY
                cap / SELL floor); required for both. An exact decimal (not a
                float) with at most 4 decimal places.
            quantity: shares, at most 4 decimal places. Exactly one of
                ``quantity`` or ``amount``.
            amount: USD to spend; only on a BUY market order.
            time_in_force: ``GTC``/``FOK``/``FAK``/``IOC``/``GTD``; the server
                defaults to GTC for limit and FOK for market orders.
            client_order_id: your id for the order (at most 256 characters); also the
                idempotency key. Reuse it to retry a placement yourself.
            expiration: unix seconds or an aware datetime; required with GTD only.
            post_only: refuse to cross; resting limit orders (GTC/GTD) only.

        Returns:
            The order: ``FILLED``/``CANCELLED`` at once for market and FOK/FAK/IOC
            orders, ``PENDING`` for a resting limit. ``is_replay`` is true when
            the server answered from its idempotency store.

        Raises:
            InvalidArgumentError: the arguments break a rule above (nothing sent).
            ValidationError: refused by the server (e.g. ``INSUFFICIENT_BALANCE``,
                ``INVALID_ORDER_MIN_TICK_SIZE``, ``PRICE_REQUIRED``).
            ConflictError: ``IDEMPOTENCY_KEY_REUSE`` (same key, other body),
                ``DUPLICATE_CLIENT_ORDER_ID``, or still busy after the retries.
            VenueUnavailableError: the venue is down (``retry_after`` says when to try).
            ServerError: ``PERSISTENCE_UNKNOWN`` (the order may exist: reconcile
                with :meth:`list` by ``client_order_id``) or
                ``DEADLINE_OVERSHOT_BUT_PERSISTED`` (the order exists; its id is
                in the ``X-Polysim-Order-Id`` header of ``error.headers``).
            TransportError: no answer after the retries; the order may exist.

        Cancellation propagates unchanged; a placement already sent may still be
        executed by the server (place it again with the same ``client_order_id``
        to learn its fate).
        """
        body = build_order(
            market_id=market_id,
            side=side,
            outcome=outcome,
            order_type=order_type,
            price=price,
            quantity=quantity,
            amount=amount,
            time_in_force=time_in_force,
            client_order_id=client_order_id,
            expiration=expiration,
            post_only=post_only,
        )
        key = body.client_order_id or uuid.uuid4().hex
        if body.client_order_id is None:
            body = msgspec.structs.replace(body, client_order_id=key)
        async with self._write_lock:
            return await self._r.request(
                Order,
                "POST",
                "/v1/orders",
                json=body,
                headers={"Idempotency-Key": key},
                idempotent=True,
            )

    async def get(
        self, order_id: int, *, source: str | None = None, wallet_id: int | None = None
    ) -> OrderRow:
        """Return one order (``GET /v1/orders/{order_id}``).

        Args:
            order_id: the order's id.
            source: ``"pending"`` or ``"filled"`` to force one table; pending and
                filled ids are separate sequences, so the same number can name two orders.
            wallet_id: a wallet the order must belong to.

        Returns:
            The order row; ``order_type`` tells which table matched.

        Raises:
            InvalidArgumentError: bad arguments (nothing sent).
            NotFoundError: ``ORDER_NOT_FOUND`` (or on another wallet).
        """
        oid = check_int("order_id", order_id, low=1)
        params: dict[str, str] = {}
        if source is not None:
            if source not in ("pending", "filled"):
                raise InvalidArgumentError(f'source must be "pending" or "filled", got {source!r}')
            params["source"] = source
        if wallet_id is not None:
            params["wallet_id"] = str(wallet_number(wallet_id))
        return await self._r.request(OrderRow, "GET", f"/v1/orders/{oid}", params=params)

    def list_pages(
        self,
        *,
        status: OrderStatus | str | None = None,
        market_id: str | None = None,
        side: Side | str | None = None,
        wallet_id: int | str | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
    ) -> AsyncGenerator[OrderPage, None]:
        """Iterate over the orders page by page, newest first, until ``has_more`` is false.

        Nothing is held open between pages, so ``break`` is safe.

        Args:
            status: ``PENDING``, ``FILLED``, ``CANCELLED`` or ``EXPIRED``.
            market_id, side: filters.
            wallet_id: ``"all"``, ``"api"`` or a wallet id.
            page_size: 1 to 200; ``None`` asks for the largest page (200).
            cursor: a saved ``next_cursor`` to resume from (same filters).

        Returns:
            An async iterator of pages; each page's ``next_cursor`` is where to resume.

        Raises:
            InvalidArgumentError: bad filters, raised by this call before anything is sent.
            PaginationError: the server repeated a cursor (raised while iterating).
        """
        params: dict[str, str] = {"limit": page_limit(page_size, _ORDERS_PAGE_MAX)}
        if status is not None:
            state = check_enum("status", status, OrderStatus)
            if state not in _LISTABLE:
                raise InvalidArgumentError(f"cannot list orders by status {state.value}")
            params["status"] = state.value
        if market_id is not None:
            params["market_id"] = check_str("market_id", market_id, max_len=256)
        if side is not None:
            params["side"] = check_enum("side", side, Side).value
        scope = wallet_param(wallet_id)
        if scope is not None:
            params["wallet_id"] = scope
        if cursor is not None:
            check_str("cursor", cursor, max_len=4096)

        async def fetch(cur: str | None) -> OrderPage:
            query = params if cur is None else {**params, "cursor": cur}
            return await self._r.request(OrderPage, "GET", "/v1/orders", params=query)

        return walk_cursor(fetch, _next_orders_cursor, cursor)

    def pages(
        self,
        *,
        status: OrderStatus | str | None = None,
        market_id: str | None = None,
        side: Side | str | None = None,
        wallet_id: int | str | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
    ) -> AsyncGenerator[OrderPage, None]:
        """Deprecated alias of :meth:`list_pages`."""
        warnings.warn(
            "client.orders.pages() is deprecated; use client.orders.list_pages()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.list_pages(
            status=status,
            market_id=market_id,
            side=side,
            wallet_id=wallet_id,
            page_size=page_size,
            cursor=cursor,
        )

    async def cancel(self, order_id: int) -> Order:
        """Cancel a resting order (``DELETE /v1/orders/{order_id}``); its reserve is returned.

        Retried on transport errors. When a repeated attempt answers 400
        ``ORDER_NOT_CANCELLABLE`` (an earlier attempt cancelled the order and
        its answer was lost), the order is read back (``GET``): if it is
        ``CANCELLED`` the call succeeds with that state, built from the order's
        row (fields only the cancel answer carries, such as ``fee`` and
        ``account_balance``, are ``None``); otherwise the refusal is raised.
        The first attempt's refusal is always raised.

        Returns:
            The order with ``status`` ``CANCELLED``.

        Raises:
            NotFoundError: ``ORDER_NOT_FOUND``.
            ValidationError: ``ORDER_NOT_CANCELLABLE`` (already filled, cancelled or expired).
            ConflictError: the account's write lock stayed busy through the retries.

        Cancellation propagates unchanged; the cancel may still reach the server.
        """
        number = check_int("order_id", order_id, low=1)
        oid = path_id("order_id", number)
        async with self._write_lock:
            response = await self._r.send(
                "DELETE", f"/v1/orders/{oid}", done_on_retry=_already_settled
            )
        if 200 <= response.status < 300:
            return self._r.decode(Order, response)
        row = await self.get(number, source="pending")
        if row.status is not OrderStatus.CANCELLED:
            raise from_response(
                response.status, response.headers, response.content, reason=response.reason
            )
        return Order(
            order_id=row.order_id,
            status=row.status,
            order_type=row.order_type,
            side=row.side,
            outcome=row.outcome,
            market_id=row.market_id,
            price=row.limit_price,
            quantity=row.quantity,
            cancelled_reason=row.cancelled_reason,
            client_order_id=row.client_order_id,
        )

    async def cancel_all(self) -> CancelAllResult:
        """Cancel every resting order of the account (``POST /v1/cancel-all``).

        Sends the required confirmation header. A repeat finds nothing left to
        cancel, so it is retried like an idempotent call.

        Returns:
            The cancelled ids and, per id, why the others were not cancelled.

        Raises:
            APIStatusError: as mapped from the server's answer.

        Cancellation propagates unchanged; the sweep may still run on the server.
        """
        async with self._write_lock:
            return await self._r.request(
                CancelAllResult,
                "POST",
                "/v1/cancel-all",
                headers={"X-Confirm-Cancel-All": "true"},
                idempotent=True,
            )

    def list(
        self,
        *,
        status: OrderStatus | str | None = None,
        market_id: str | None = None,
        side: Side | str | None = None,
        wallet_id: int | str | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
    ) -> AsyncGenerator[OrderRow, None]:
        """Iterate over every order across pages, newest first.

        Same arguments and errors as :meth:`list_pages`; ``break`` is safe.

        Returns:
            An async iterator of order rows.
        """
        return flatten(
            self.list_pages(
                status=status,
                market_id=market_id,
                side=side,
                wallet_id=wallet_id,
                page_size=page_size,
                cursor=cursor,
            ),
            _page_orders,
        )


def _page_orders(page: OrderPage) -> list[OrderRow]:
    return page.orders


def _next_orders_cursor(page: OrderPage) -> str | None:
    return page.next_cursor if page.has_more else None
