"""Wire shapes of the market-data reads: markets, order books, candles, batch prices.

Sources, field by field, in ``docs/trader-api-notes.md``. Prices, sizes and
volumes are exact decimals sent as JSON strings, except where the docs name a
JSON number (a detail's ``tokens[].price``): ``Decimal`` reads both exactly.
Timestamps whose format the docs do not fix (``end_date``, ``archived_at``)
stay the server's strings rather than fail a whole market on a surprise.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import msgspec

from .common import Money, MoneyStruct, UTCDateTime, WireEnum

__all__ = [
    "BookLevel",
    "Candle",
    "CandleInterval",
    "LivePrice",
    "Market",
    "MarketDetail",
    "MarketPage",
    "MarketPrice",
    "MarketToken",
    "OrderBook",
    "OutcomePrice",
    "TokenMarket",
]

#: The PM-shape cursor that ends a walk: base64 of ``-1`` (API.md §8.3).
END_CURSOR = "LTE="


class CandleInterval(WireEnum):
    """Bucket size of ``GET /v1/markets/{condition_id}/candles`` (``max`` buckets by day)."""

    HOUR = "1h"
    SIX_HOURS = "6h"
    DAY = "1d"
    WEEK = "1w"
    MAX = "max"


class OutcomePrice(MoneyStruct, kw_only=True, frozen=True):
    """One outcome's price: ``{label, price, token_id}``."""

    label: str
    price: Money | None = None
    token_id: str | None = None


class LivePrice(MoneyStruct, kw_only=True, frozen=True):
    """A market's real-time snapshot inside a market row.

    ``buy`` is the first (Yes) outcome's price, ``sell`` the second's; ``volume``
    is the upstream headline volume (window not guaranteed).
    """

    buy: Money | None = None
    sell: Money | None = None
    volume: Money | None = None
    outcomes: list[OutcomePrice] = msgspec.field(default_factory=list)
    updated_at: UTCDateTime | None = None


class Market(MoneyStruct, kw_only=True, frozen=True):
    """One market as listed by ``GET /v1/markets`` (volume-ordered by the server).

    ``clob_token_ids`` is ordered ``[yes_id, no_id]``. ``None`` on a display field
    means "not known yet", not "zero".
    """

    condition_id: str
    slug: str | None = None
    question: str | None = None
    outcomes: list[str] | None = None
    active: bool | None = None
    closed: bool | None = None
    is_hot: bool | None = None
    image_url: str | None = None
    category: str | None = None
    clob_token_ids: list[str] | None = None
    volume_24h: Money | None = None
    volume_total: Money | None = None
    last_price: Money | None = None
    live_price: LivePrice | None = None


class MarketToken(MoneyStruct, kw_only=True, frozen=True):
    """One outcome token of a market detail (the Polymarket ``tokens[]`` shape).

    ``price`` arrives as a JSON number; it is read exactly into a Decimal.
    ``winner`` is true only on a resolved market's winning outcome.
    """

    token_id: str
    outcome: str
    price: Money | None = None
    winner: bool = False


class BookLevel(MoneyStruct, kw_only=True, frozen=True):
    """One price level of a book side."""

    price: Money
    size: Money


class OrderBook(MoneyStruct, kw_only=True, frozen=True):
    """An L2 order-book snapshot (``OrderBookSnapshot``).

    As on Polymarket's wire, the best level is the *last* entry of each side
    (bids ascending, asks descending); :attr:`best_bid` and :attr:`best_ask`
    read the inside market whatever the order. ``spread`` is capped at 0.10 by
    the server. ``timestamp`` is epoch milliseconds as the server sent it (a
    string); :attr:`time` turns it into a datetime.
    """

    token_id: str | None = None
    market: str | None = None
    asset_id: str | None = None
    hash: str | None = None
    bids: list[BookLevel] = msgspec.field(default_factory=list)
    asks: list[BookLevel] = msgspec.field(default_factory=list)
    min_order_size: Money | None = None
    tick_size: Money | None = None
    neg_risk: bool | None = None
    last_trade_price: Money | None = None
    mid: Money | None = None
    spread: Money | None = None
    timestamp: str | int | None = None
    stale: bool | None = None

    @property
    def best_bid(self) -> Decimal | None:
        """The highest bid price, or ``None`` on an empty side."""
        return max((level.price for level in self.bids), default=None)

    @property
    def best_ask(self) -> Decimal | None:
        """The lowest ask price, or ``None`` on an empty side."""
        return min((level.price for level in self.asks), default=None)

    @property
    def time(self) -> datetime | None:
        """The snapshot time (UTC), or ``None`` when absent or unreadable."""
        try:
            millis = int(self.timestamp) if self.timestamp is not None else None
        except ValueError:
            return None
        return None if millis is None else datetime.fromtimestamp(millis / 1000, timezone.utc)


class MarketDetail(Market, kw_only=True, frozen=True):
    """``GET /v1/markets/{condition_id}`` and ``/v1/markets/by-slug/{slug}``.

    The list row plus the Polymarket parity fields (``tokens``, ``question_id``,
    ``market_slug``, ``neg_risk``), the detail fields, and ``order_book`` when
    asked for with ``include_book=True``.
    """

    tokens: list[MarketToken] | None = None
    question_id: str | None = None
    market_slug: str | None = None
    neg_risk: bool | None = None
    event_group_id: str | int | None = None
    event_title: str | None = None
    end_date: str | None = None
    resolved_outcome: str | None = None
    archived: bool | None = None
    archived_at: str | None = None
    order_book: OrderBook | None = None


class MarketPage(msgspec.Struct, kw_only=True, frozen=True):
    """One page of ``GET /v1/markets?envelope=true``.

    ``next_cursor`` is base64 of the next offset; ``"LTE="`` (or empty) ends
    the walk. Save it to resume with the same filters.
    """

    data: list[Market]
    next_cursor: str | None = None

    @property
    def last(self) -> bool:
        """Whether this is the last page."""
        return not self.data or not self.next_cursor or self.next_cursor == END_CURSOR


class TokenMarket(msgspec.Struct, kw_only=True, frozen=True):
    """``GET /v1/markets-by-token/{token_id}``: the market that mints a token."""

    condition_id: str
    primary_token_id: str | None = None
    outcome: str | None = None


class Candle(MoneyStruct, kw_only=True, frozen=True):
    """One OHLCV bucket of ``GET /v1/markets/{condition_id}/candles``.

    Prices come from Polymarket's hourly ticks; ``volume`` counts only your own
    simulated fills in the bucket.
    """

    timestamp: int = msgspec.field(name="t")
    open: Money = msgspec.field(name="o")
    high: Money = msgspec.field(name="h")
    low: Money = msgspec.field(name="l")
    close: Money = msgspec.field(name="c")
    volume: Money = msgspec.field(name="v")

    @property
    def start(self) -> datetime:
        """The start of the bucket (UTC); ``timestamp`` is its unix seconds."""
        return datetime.fromtimestamp(self.timestamp, timezone.utc)


class MarketPrice(MoneyStruct, kw_only=True, frozen=True):
    """One row of ``POST /v1/prices/batch``.

    A market without a cached price comes back with only ``condition_id``: every
    price field is then ``None``. ``source`` is informational, not an enum.
    """

    condition_id: str
    buy: Money | None = None
    sell: Money | None = None
    outcomes: list[OutcomePrice] = msgspec.field(default_factory=list)
    source: str | None = None
