"""Field tables: every body the sandbox sends, transcribed from API.md and the seeds.

The sandbox is an oracle for the client, so it never builds an answer from the
client's models (a field the client forgot could then never be sent). Each answer
is a :class:`Shape`: its documented field names, in the documented order, with
the source they were read from. :meth:`Shape.make` builds the body and refuses a
missing or an undocumented field, so a body can only ever hold what its table says.

Adding an endpoint (the pattern every route follows):

1. Transcribe its answer here as a ``Shape`` (fields in the order the docs list
   them; fields the docs send only in some states go in ``sometimes``).
2. Build the body in :mod:`._views` with ``SHAPE.make(field=value, ...)``: values
   are already wire-formatted (decimals as strings with :func:`._views.money` and
   friends, timestamps with :func:`._clock.format_iso` or ``format_iso_z``).
3. Serve it from a route module with :func:`._json.json_response`.
4. Add the endpoint to the table in ``tests/sandbox/test_contract.py`` (transcribed
   from API.md on its own, not copied from here) and a case that calls it: the test
   asserts the documented field set, then decodes the answer with the client's model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACCOUNT",
    "ACCOUNT_STATE",
    "BALANCE",
    "CANCEL_ALL",
    "EQUITY_POINT",
    "ERROR",
    "ERROR_VERBOSE",
    "HEALTH",
    "HISTORY_PAGE",
    "HISTORY_ROW",
    "LOGIN_LINK",
    "OPEN_POSITION",
    "ORDER",
    "ORDER_PAGE",
    "ORDER_POSITION",
    "ORDER_ROW",
    "PARTNER_USER",
    "POSITION",
    "POSITION_PAGE",
    "REGISTER",
    "TRADE",
    "TRADE_PAGE",
    "WS_CONNECTED",
    "WS_FILL",
    "WS_PONG",
    "WS_TOKEN",
    "Shape",
]


@dataclass(frozen=True)
class Shape:
    """The documented fields of one answer (or of one object inside an answer)."""

    name: str
    source: str
    fields: tuple[str, ...]
    sometimes: frozenset[str] = frozenset()
    _all: frozenset[str] = field(init=False, repr=False)
    _required: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_all", frozenset(self.fields))
        object.__setattr__(self, "_required", self._all - self.sometimes)

    def make(self, **values: Any) -> dict[str, Any]:
        """Return the body with ``values`` in the documented order.

        Raises:
            TypeError: a documented field is missing or an undocumented one is given.
        """
        keys = values.keys()
        if not (self._required <= keys <= self._all):
            missing = sorted(self._required - keys)
            extra = sorted(keys - self._all)
            raise TypeError(f"{self.name}: missing {missing}, undocumented {extra}")
        return {name: values[name] for name in self.fields if name in values}


# -- partner (API.md §3, the partner quickstart seed) --------------------------------------
REGISTER = Shape(
    "RegisterResponse",
    "API.md P1, seed step 1",
    ("user_id", "tenant_user_id", "external_id", "email", "created"),
)
#: P2's shape is not documented; the sandbox answers P1's fields plus ``metadata``.
PARTNER_USER = Shape(
    "PartnerUser",
    "API.md P2 (inferred)",
    ("user_id", "tenant_user_id", "external_id", "email", "created", "metadata"),
)
LOGIN_LINK = Shape("LoginLinkAccepted", "API.md P3, seed step 2", ("status",))
ACCOUNT = Shape(
    "PartnerAccount",
    "API.md P4, seed step 3",
    (
        "account_id",
        "wallet_id",
        "user_id",
        "external_id",
        "stage",
        "status",
        "starting_balance",
        "rules",
        "metadata",
    ),
)
OPEN_POSITION = Shape(
    "OpenPosition",
    "API.md P5, seed step 5",
    (
        "market_id",
        "outcome",
        "quantity",
        "avg_entry_price",
        "current_price",
        "market_value",
        "unrealized_pnl",
    ),
)
ACCOUNT_STATE = Shape(
    "AccountState",
    "API.md P5, seed step 5",
    (
        "account_id",
        "external_id",
        "stage",
        "status",
        "balance",
        "starting_balance",
        "equity",
        "unrealized_pnl",
        "realized_pnl",
        "open_positions",
        "rules",
        "metadata",
        "updated_at",
    ),
)
TRADE = Shape(
    "Trade",
    "API.md P6, seed step 6",
    (
        "trade_id",
        "order_id",
        "market_id",
        "side",
        "outcome",
        "price",
        "quantity",
        "notional",
        "fee",
        "filled_at",
        "client_order_id",
        "realized_pnl",
    ),
)
TRADE_PAGE = Shape("TradePage", "API.md P6, §8.1", ("data", "next_cursor"))

# -- trader reads (API.md §4.2, §4.3, the equity-curve seed) -------------------------------
WS_TOKEN = Shape("WsTokenResponse", "API.md §4.2", ("token", "expires_in"))
BALANCE = Shape(
    "Balance",
    "API.md §4.3 B",
    ("balance", "currency", "starting_balance", "unrealized_pnl", "total_value"),
)
POSITION = Shape(
    "Position",
    "API.md §4.3 Po",
    (
        "id",
        "market_id",
        "outcome",
        "quantity",
        "avg_entry_price",
        "current_price",
        "market_value",
        "unrealized_pnl",
        "status",
        "market_question",
    ),
)
POSITION_PAGE = Shape(
    "PositionPage", "API.md §4.3 Po (envelope=true)", ("limit", "count", "next_cursor", "data")
)
HISTORY_ROW = Shape(
    "HistoryRow",
    "API.md §4.3 H",
    (
        "order_id",
        "market_id",
        "side",
        "outcome",
        "price",
        "quantity",
        "notional",
        "fee",
        "status",
        "price_source",
        "price_age_ms",
        "filled_at",
        "created_at",
    ),
)
HISTORY_PAGE = Shape("HistoryPage", "API.md §4.3 H (envelope=true)", ("data", "next_cursor"))
EQUITY_POINT = Shape(
    "EquityPoint",
    "API.md §4.3 E, equity-curve seed",
    ("timestamp", "cash_balance", "position_value", "total_value", "pnl"),
)

# -- orders (API.md §4.5) ------------------------------------------------------------------
ORDER_POSITION = Shape(
    "OrderPosition",
    "API.md §4.5 O1 (position)",
    ("market_id", "outcome", "quantity", "avg_entry_price", "status"),
)
ORDER = Shape(
    "OrderResponse",
    "API.md §4.5 O1",
    (
        "order_id",
        "status",
        "order_type",
        "side",
        "outcome",
        "price",
        "quantity",
        "notional",
        "fee",
        "filled_at",
        "cancelled_reason",
        "price_source",
        "slippage_bps",
        "quote_age_ms",
        "spread_bps",
        "impact_bps",
        "book_walk_levels",
        "account_balance",
        "position",
        "client_order_id",
        "error",
        "error_message",
        "amount_interpreted_as",
        "is_replay",
        "warnings",
    ),
)
ORDER_ROW = Shape(
    "OrderRow",
    "API.md §4.5 O3",
    (
        "order_id",
        "market_id",
        "side",
        "outcome",
        "order_type",
        "limit_price",
        "quantity",
        "time_in_force",
        "status",
        "client_order_id",
        "created_at",
        "filled_at",
        "fill_price",
        "cancelled_at",
        "cancelled_reason",
        "hold_reason",
    ),
    sometimes=frozenset({"hold_reason"}),  # only during venue outages
)
ORDER_PAGE = Shape(
    "OrderPage", "API.md §4.5 O3", ("orders", "next_cursor", "has_more", "total_hint")
)
CANCEL_ALL = Shape("CancelAllResponse", "API.md §4.5 O6", ("canceled", "not_canceled"))

# -- the execution WebSocket (API.md §10, the execution-feed seed) -------------------------
WS_CONNECTED = Shape("Connected", "API.md §10.2", ("type", "user_id", "protocol_version"))
WS_FILL = Shape(
    "Fill",
    "API.md §10.3, execution-feed seed",
    ("type", "order_id", "market_id", "side", "outcome", "price", "quantity", "filled_at"),
)
WS_PONG = Shape("Pong", "API.md §10.2", ("type", "ts"))

# -- errors and health (API.md §5, §4.1) ---------------------------------------------------
ERROR = Shape("Error", "API.md §5.1, §5.2 (two-field)", ("error", "message"))
ERROR_VERBOSE = Shape(
    "VerboseError", "API.md §5.2 (X-Polysim-Verbose)", ("error", "message", "details", "request_id")
)
HEALTH = Shape("Health", "API.md §4.1", ("status", "timestamp", "version"))
