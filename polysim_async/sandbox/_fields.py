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
    "API_KEY",
    "API_RESET",
    "BALANCE",
    "BATCH",
    "BOOK",
    "BOOK_LEVEL",
    "CANCEL_ALL",
    "CANDLE",
    "DETAIL",
    "DETAIL_ITEM",
    "EQUITY_POINT",
    "ERROR",
    "ERROR_INTERVAL",
    "ERROR_UPGRADE",
    "ERROR_VERBOSE",
    "HEALTH",
    "HEARTBEAT",
    "HISTORY_PAGE",
    "HISTORY_ROW",
    "KEY_REVOKED",
    "LIVE_PRICE",
    "LOGIN_LINK",
    "MARKET",
    "MARKET_DETAIL",
    "MARKET_PAGE",
    "MARKET_TOKEN",
    "ME",
    "NEW_API_KEY",
    "OPEN_POSITION",
    "ORDER",
    "ORDER_PAGE",
    "ORDER_POSITION",
    "ORDER_ROW",
    "OUTCOME_PRICE",
    "PARTNER_USER",
    "PORTFOLIO",
    "PORTFOLIO_POSITION",
    "POSITION",
    "POSITION_PAGE",
    "PRICE_ROW",
    "REGISTER",
    "SETTLEMENT",
    "SETTLEMENTS_CSV",
    "SETTLEMENT_PAGE",
    "TIER",
    "TOKEN_MARKET",
    "TRADE",
    "TRADES_CSV",
    "TRADE_PAGE",
    "WALLET",
    "WALLET_ACCOUNT",
    "WALLET_MANAGER",
    "WS_CONNECTED",
    "WS_ERROR",
    "WS_FILL",
    "WS_PONG",
    "WS_PRICE",
    "WS_SUBSCRIBED",
    "WS_TOKEN",
    "WS_TOKEN_PRICE",
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

BATCH = Shape("BatchResult", "API.md O2, batch-orders page", ("results", "succeeded", "failed"))
HEARTBEAT = Shape("HeartbeatResponse", "API.md O8, heartbeats page", ("ok", "expires_at_ms"))
#: FastAPI's validation envelope, which the heartbeat routes send for a bad body (API.md §5.2).
DETAIL = Shape("HTTPValidationError", "API.md §5.2, heartbeats page (Pydantic)", ("detail",))
DETAIL_ITEM = Shape(
    "ValidationErrorItem",
    "Pydantic v2 error (FastAPI)",
    ("type", "loc", "msg", "input", "ctx"),
    sometimes=frozenset({"ctx"}),
)

# -- identity and keys (API.md §4.2, the api-keys page) -----------------------------------
ME = Shape(
    "Me",
    "API.md §4.2 (get-api-me)",
    (
        "user_id",
        "balance",
        "currency",
        "key_count",
        "tier",
        "permissions",
        "auth_user_id",
        "email",
    ),
)
TIER = Shape(
    "RateLimitTierInfo",
    "API.md §4.2 (OAS RateLimitTierInfo)",
    (
        "tier",
        "requests_per_second",
        "requests_per_minute",
        "max_ws_connections",
        "max_batch_size",
    ),
)
API_KEY = Shape(
    "ApiKeyRow",
    "API.md §4.2, api-keys page (list)",
    (
        "id",
        "key_prefix",
        "name",
        "permissions",
        "rate_limit_tier",
        "is_active",
        "created_at",
        "expires_at",
    ),
)
NEW_API_KEY = Shape(
    "ApiKeyCreated",
    "API.md §4.2, api-keys page (201)",
    ("id", "raw_key", "key_prefix", "name", "rate_limit_tier", "permissions", "created_at"),
)
KEY_REVOKED = Shape("KeyRevoked", "API.md §4.2, api-keys page (DELETE)", ("message",))

# -- wallets (API.md §4.4, get-wallet WalletOut) -------------------------------------------
WALLET = Shape(
    "WalletOut",
    "API.md §4.4, api-reference get-wallet",
    (
        "id",
        "kind",
        "label",
        "balance",
        "baseline",
        "status",
        "generation",
        "parent_wallet_id",
        "competition_id",
        "created_at",
        "archived_at",
        "is_legacy",
        "managed_by",
        "b2b_account",
    ),
    sometimes=frozenset({"managed_by", "b2b_account"}),  # PROP_FIRM wallets only
)
WALLET_MANAGER = Shape(
    "WalletManagedByOut", "API.md §4.4 (PROP_FIRM)", ("tenant_slug", "display_name")
)
WALLET_ACCOUNT = Shape(
    "WalletB2BAccountOut", "API.md §4.4 (PROP_FIRM)", ("account_id", "stage", "status")
)

# -- account reads for bots (API.md §4.3 Pf, S, R) -----------------------------------------
PORTFOLIO_POSITION = Shape(
    "PortfolioPosition",
    "API.md §4.3 Pf (position rows without market_question)",
    tuple(name for name in POSITION.fields if name != "market_question"),
)
PORTFOLIO = Shape(
    "Portfolio",
    "API.md §4.3 Pf, portfolio page",
    ("balance", "positions", "total_trades", "win_rate"),
)
SETTLEMENT = Shape(
    "Settlement",
    "API.md §4.3 S (SDK docstring; position_id, market_id, outcome, settled_at inferred)",
    (
        "position_id",
        "market_id",
        "outcome",
        "quantity",
        "avg_entry_price",
        "cost_basis",
        "payout",
        "payout_per_share",
        "realized_pnl",
        "result",
        "settled_at",
    ),
)
SETTLEMENT_PAGE = Shape("SettlementPage", "API.md §4.3 S, §8.3", ("data", "next_cursor"))
API_RESET = Shape(
    "ApiBalanceReset",
    "API.md §4.3 R, wallets page",
    ("message", "new_api_balance", "positions_closed", "cooldown_days"),
)
#: CSV columns of ``GET /v1/export/trades.csv`` (inferred: history row fields and the wallet).
TRADES_CSV = Shape(
    "TradesCsv",
    "API.md §4.1 Export (columns inferred)",
    (
        "filled_at",
        "order_id",
        "wallet_id",
        "market_id",
        "side",
        "outcome",
        "price",
        "quantity",
        "notional",
        "fee",
    ),
)
#: CSV columns of ``GET /v1/export/settlements.csv``: the settlement row's (SDK docstring).
SETTLEMENTS_CSV = Shape("SettlementsCsv", "SDK export_settlements_csv", SETTLEMENT.fields)

# -- market data (API.md §4.1; markets, order-book, price-candles, batch-prices pages) ----
OUTCOME_PRICE = Shape("OutcomePrice", "markets page", ("label", "price", "token_id"))
LIVE_PRICE = Shape("LivePrice", "markets page", ("buy", "sell", "volume", "outcomes", "updated_at"))
MARKET = Shape(
    "Market",
    "markets page (list row)",
    (
        "condition_id",
        "slug",
        "question",
        "outcomes",
        "active",
        "closed",
        "is_hot",
        "image_url",
        "category",
        "clob_token_ids",
        "volume_24h",
        "volume_total",
        "last_price",
        "live_price",
    ),
)
MARKET_TOKEN = Shape(
    "MarketToken", "markets page (detail)", ("token_id", "outcome", "price", "winner")
)
MARKET_DETAIL = Shape(
    "MarketDetail",
    "markets page (detail: the list row plus parity and detail fields)",
    (
        *MARKET.fields,
        "tokens",
        "question_id",
        "market_slug",
        "neg_risk",
        "event_group_id",
        "event_title",
        "end_date",
        "resolved_outcome",
        "archived",
        "archived_at",
        "order_book",
    ),
    sometimes=frozenset({"order_book"}),  # with include_book=true only
)
MARKET_PAGE = Shape(
    "MarketPage", "markets page (envelope=true), API.md §8.3", ("data", "next_cursor")
)
TOKEN_MARKET = Shape(
    "TokenMarket", "SDK get_market_by_token", ("condition_id", "primary_token_id", "outcome")
)
BOOK_LEVEL = Shape("BookLevel", "order-book page", ("price", "size"))
BOOK = Shape(
    "OrderBookSnapshot",
    "order-book page",
    (
        "token_id",
        "market",
        "asset_id",
        "hash",
        "bids",
        "asks",
        "min_order_size",
        "tick_size",
        "neg_risk",
        "last_trade_price",
        "mid",
        "spread",
        "timestamp",
        "stale",
    ),
    sometimes=frozenset({"stale"}),  # only on a cached fallback, which the sandbox never serves
)
CANDLE = Shape("Candle", "price-candles page", ("t", "o", "h", "l", "c", "v"))
PRICE_ROW = Shape(
    "BatchPrice",
    "batch-prices page",
    ("condition_id", "buy", "sell", "outcomes", "source"),
    sometimes=frozenset({"buy", "sell", "outcomes", "source"}),  # absent without a price
)

# -- the execution WebSocket (API.md §10, the execution-feed seed) -------------------------
WS_CONNECTED = Shape("Connected", "API.md §10.2", ("type", "user_id", "protocol_version"))
WS_FILL = Shape(
    "Fill",
    "API.md §10.3, execution-feed seed",
    ("type", "order_id", "market_id", "side", "outcome", "price", "quantity", "filled_at"),
)
WS_PONG = Shape("Pong", "API.md §10.2", ("type", "ts"))

# -- the price WebSocket (API.md §10.2, §10.4, the price-feed page) -------------------------
WS_PRICE = Shape(
    "PriceFrame",
    "API.md §10.2, price-feed page",
    (
        "type",
        "market_id",
        "condition_id",
        "buy",
        "sell",
        "best_bid",
        "best_ask",
        "last_trade",
        "volume",
        "outcomes",
        "tokens",
        "active",
        "closed",
        "source",
        "emit_ts_ms",
        "updated_at",
        "ws_updated_at",
    ),
    # "sometimes" on the page: the sandbox omits last_trade until a first fill and
    # best_bid/best_ask once the market is closed.
    sometimes=frozenset({"best_bid", "best_ask", "last_trade"}),
)
WS_TOKEN_PRICE = Shape("TokenPrice", "price-feed page (tokens{})", ("label", "price"))
WS_SUBSCRIBED = Shape("Subscribed", "API.md §10.2, price-feed page", ("type", "markets"))
WS_ERROR = Shape("ErrorFrame", "API.md §10.2, price-feed page", ("type", "message"))

# -- errors and health (API.md §5, §4.1) ---------------------------------------------------
ERROR = Shape("Error", "API.md §5.1, §5.2 (two-field)", ("error", "message"))
ERROR_VERBOSE = Shape(
    "VerboseError", "API.md §5.2 (X-Polysim-Verbose)", ("error", "message", "details", "request_id")
)
#: The documented carve-outs that add fields to the envelope (API.md §5.2, the
#: price-candles page); the verbose header adds ``details`` and ``request_id``.
ERROR_UPGRADE = Shape(
    "UpgradeRequired",
    "API.md §5.2 (402 UPGRADE_REQUIRED)",
    ("error", "message", "feature_key", "upgrade_url", "details", "request_id"),
    sometimes=frozenset({"details", "request_id"}),
)
ERROR_INTERVAL = Shape(
    "InvalidInterval",
    "price-candles page (400 INVALID_INTERVAL)",
    ("error", "message", "supported_intervals", "details", "request_id"),
    sometimes=frozenset({"details", "request_id"}),
)
HEALTH = Shape("Health", "API.md §4.1", ("status", "timestamp", "version"))
