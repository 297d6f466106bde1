"""Wire shapes of trader orders and keys: orders, cancel-all and the WebSocket token.

API.md §4.2 and §4.5. Status-like fields the docs call unstable stay plain strings.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .common import Money, MoneyStruct, Side, Traced, UTCDateTime, WireEnum

__all__ = [
    "CancelAllResult",
    "Order",
    "OrderPage",
    "OrderPosition",
    "OrderRow",
    "OrderStatus",
    "OrderType",
    "PlaceOrderRequest",
    "TimeInForce",
    "WsToken",
]


class OrderType(WireEnum):
    """How an order executes."""

    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(WireEnum):
    """How long an order may rest (``FAK`` is stored as ``IOC`` by the server)."""

    GTC = "GTC"
    FOK = "FOK"
    FAK = "FAK"
    IOC = "IOC"
    GTD = "GTD"


class OrderStatus(WireEnum):
    """An order's status (``REJECTED``/``ERROR`` only inside batch results)."""

    PENDING = "PENDING"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"
    ERROR = "ERROR"


class PlaceOrderRequest(MoneyStruct, kw_only=True, frozen=True, omit_defaults=True):
    """Body of ``POST /v1/orders``: exactly one of ``quantity`` or ``amount``."""

    market_id: str
    side: Side
    outcome: str
    quantity: Money | None = None
    amount: Money | None = None
    order_type: OrderType  # always sent, so a market order is never implied by omission
    price: Money | None = None
    time_in_force: TimeInForce | None = None
    client_order_id: str | None = None
    expiration: int | None = None
    post_only: bool | None = None


class OrderPosition(MoneyStruct, kw_only=True, frozen=True):
    """The position an order left behind."""

    market_id: str
    outcome: str
    quantity: Money
    avg_entry_price: Money
    status: str | None = None


class Order(Traced, kw_only=True, frozen=True):
    """The answer to placing or cancelling an order (``OrderResponse``)."""

    order_id: int
    status: OrderStatus
    order_type: OrderType | None = None
    side: Side | None = None
    outcome: str | None = None
    market_id: str | None = None
    price: Money | None = None
    quantity: Money | None = None
    notional: Money | None = None
    fee: Money | None = None
    filled_at: UTCDateTime | None = None
    cancelled_reason: str | None = None
    price_source: str | None = None
    #: Fill telemetry (API.md §4.5 O1); the last three are null on idempotent replays.
    slippage_bps: int | None = None
    quote_age_ms: int | None = None
    spread_bps: int | None = None
    impact_bps: int | None = None
    book_walk_levels: int | None = None
    account_balance: Money | None = None
    position: OrderPosition | None = None
    client_order_id: str | None = None
    error: str | None = None
    error_message: str | None = None
    #: How ``amount`` was read, e.g. ``"usd_notional"`` (null when ``quantity`` was sent).
    amount_interpreted_as: str | None = None
    is_replay: bool = False
    warnings: list[str] = msgspec.field(default_factory=list)


class OrderRow(Traced, kw_only=True, frozen=True):
    """One order as listed by ``GET /v1/orders`` and ``GET /v1/orders/{id}``."""

    order_id: int
    market_id: str
    side: Side
    outcome: str
    order_type: OrderType
    status: OrderStatus
    quantity: Money
    limit_price: Money | None = None
    time_in_force: TimeInForce | None = None
    client_order_id: str | None = None
    created_at: UTCDateTime | None = None
    filled_at: UTCDateTime | None = None
    fill_price: Money | None = None
    cancelled_at: UTCDateTime | None = None
    cancelled_reason: str | None = None
    hold_reason: str | None = None


class OrderPage(Traced, kw_only=True, frozen=True):
    """One page of ``GET /v1/orders``; iterate while ``has_more``."""

    orders: list[OrderRow]
    next_cursor: str | None = None
    has_more: bool = False
    total_hint: int | None = None


class CancelAllResult(Traced, kw_only=True, frozen=True):
    """``POST /v1/cancel-all``: cancelled ids (as strings) and the reasons others were not."""

    canceled: list[str] = msgspec.field(default_factory=list)
    not_canceled: dict[str, str] = msgspec.field(default_factory=dict)


class WsToken(msgspec.Struct, kw_only=True, frozen=True):
    """A short-lived WebSocket token from ``POST /v1/keys/ws-token``.

    ``repr`` and ``str`` mask the token (it opens the account's streams until it
    expires); read ``.token`` to use it.
    """

    token: str
    expires_in: int = 60

    def __repr__(self) -> str:
        # The token opens the account's WebSockets until it expires: never shown.
        return f"WsToken(token='…', expires_in={self.expires_in})"

    __str__ = __repr__

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [("token", "…"), ("expires_in", self.expires_in)]
