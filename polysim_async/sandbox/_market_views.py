"""Market-data bodies (markets, books, candles, prices, price frames) from the exchange's state.

Everything here reads the same mids that fill resting orders, so a price a bot
sees on ``/v1/markets``, in a book, in ``POST /v1/prices/batch`` or on the price
WebSocket is the one its next order meets. Choices where the docs are silent
(in API terms):

* Prices are 4-dp strings and volumes 2-dp strings, as on every other sandbox
  answer; the one documented JSON number, a detail's ``tokens[].price``, is a
  JSON number.
* ``volume_total`` is the market's listed volume (``create_market(volume=)``)
  plus the notional of every sandbox fill in it; ``volume_24h`` counts the
  fills of the last 24 simulated hours; ``is_hot`` is ``volume_total`` above
  5,000; ``last_price`` is the first outcome's last fill price (null before one).
* A book has :data:`BOOK_LEVELS` levels per side, one tick apart from the touch
  outward, each of :data:`LEVEL_SIZE` shares; the touch has unlimited depth in the
  exchange, so no order walks past it. Bids ascend and asks descend (best last),
  ``timestamp`` is epoch milliseconds as a string, ``hash`` changes only when the
  levels do, and a closed market's book is empty. ``stale`` is never sent.
* Candles: buckets aligned to the epoch (weeks start on Thursdays), from the one
  holding the market's listing to the current one, at most :data:`MAX_CANDLES`
  (the newest). Each bucket opens at the price in effect at its start (or the
  first price, for the listing bucket), spans every mid recorded in it and
  closes at the last; ``v`` is the caller's own filled shares of that outcome in
  the bucket, as documented.
* Price frames and batch rows: ``buy``/``sell`` are the first and second
  outcome's mids, ``best_bid``/``best_ask`` the first outcome's touch (absent
  once the market is closed), ``volume`` the 24-hour volume, ``source``
  ``"websocket"``.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from decimal import Decimal
from typing import Any

import msgspec

from ._clock import HOUR_US, SECOND_US, format_iso, format_iso_z
from ._exchange import money, units
from ._fields import (
    BOOK,
    BOOK_LEVEL,
    CANDLE,
    LIVE_PRICE,
    MARKET,
    MARKET_DETAIL,
    MARKET_TOKEN,
    OUTCOME_PRICE,
    PRICE_ROW,
    TOKEN_MARKET,
    WS_PRICE,
    WS_TOKEN_PRICE,
)
from ._json import encode
from ._state import Market

__all__ = [
    "BOOK_LEVELS",
    "INTERVALS",
    "LEVEL_SIZE",
    "MAX_CANDLES",
    "book",
    "candles",
    "market_detail",
    "market_row",
    "price_frame",
    "price_row",
    "token_market",
    "volume_24h",
    "volume_total",
]

BOOK_LEVELS = 5
LEVEL_SIZE = Decimal(1_000_000)
MAX_CANDLES = 1000
HOT_VOLUME = Decimal(5000)
DAY_US = 24 * HOUR_US
#: Candle intervals and their bucket sizes (``max`` buckets by day, as documented).
INTERVALS: dict[str, int] = {
    "1h": HOUR_US,
    "6h": 6 * HOUR_US,
    "1d": DAY_US,
    "1w": 7 * DAY_US,
    "max": DAY_US,
}
_SOURCE = "websocket"


def _plain(value: Decimal) -> str:
    return f"{value:f}"


def _number(value: Decimal) -> msgspec.Raw:
    """A decimal as a JSON number, written exactly (no float on the way)."""
    return msgspec.Raw(_plain(value.normalize()).encode())


def volume_total(market: Market) -> Decimal:
    """The listed volume plus every fill's notional."""
    return market.base_volume + sum((n for _, n in market.trades), Decimal(0))


def volume_24h(market: Market, now_us: int) -> Decimal:
    """The notional of the fills of the last 24 hours."""
    start = bisect_left(market.trades, now_us - DAY_US, key=lambda t: t[0])
    return sum((n for _, n in market.trades[start:]), Decimal(0))


def _outcome_prices(market: Market) -> list[dict[str, Any]]:
    return [
        OUTCOME_PRICE.make(
            label=name, price=units(market.mids[name]), token_id=market.token_ids[name]
        )
        for name in market.outcomes
    ]


def _buy_sell(market: Market) -> tuple[str, str]:
    first, second = market.outcomes[0], market.outcomes[1]
    return units(market.mids[first]), units(market.mids[second])


def market_row(market: Market, now_us: int) -> dict[str, Any]:
    """One ``GET /v1/markets`` row."""
    return MARKET.make(**_row_fields(market, now_us))


def _row_fields(market: Market, now_us: int) -> dict[str, Any]:
    total = volume_total(market)
    buy, sell = _buy_sell(market)
    last = market.last_trade.get(market.outcomes[0])
    return {
        "condition_id": market.market_id,
        "slug": market.slug,
        "question": market.question,
        "outcomes": list(market.outcomes),
        "active": not market.closed,
        "closed": market.closed,
        "is_hot": total > HOT_VOLUME,
        "image_url": None,
        "category": market.category,
        "clob_token_ids": [market.token_ids[name] for name in market.outcomes],
        "volume_24h": money(volume_24h(market, now_us)),
        "volume_total": money(total),
        "last_price": None if last is None else units(last),
        "live_price": LIVE_PRICE.make(
            buy=buy,
            sell=sell,
            volume=money(total),
            outcomes=_outcome_prices(market),
            updated_at=format_iso_z(market.updated_us),
        ),
    }


def market_detail(market: Market, now_us: int, *, include_book: bool) -> dict[str, Any]:
    """``GET /v1/markets/{condition_id}`` (and by slug): the row plus the detail fields."""
    tokens = [
        MARKET_TOKEN.make(
            token_id=market.token_ids[name],
            outcome=name,
            price=_number(market.mids[name]),
            winner=market.resolved_outcome == name,
        )
        for name in market.outcomes
    ]
    extra: dict[str, Any] = {}
    if include_book:
        extra["order_book"] = book(market, market.outcomes[0], None, now_us)
    return MARKET_DETAIL.make(
        **_row_fields(market, now_us),
        tokens=tokens,
        question_id=market.market_id,
        market_slug=market.slug,
        neg_risk=False,
        event_group_id=None,
        event_title=None,
        end_date=None,
        resolved_outcome=market.resolved_outcome,
        archived=False,
        archived_at=None,
        **extra,
    )


def token_market(market: Market, outcome: str) -> dict[str, Any]:
    """``GET /v1/markets-by-token/{token_id}``."""
    return TOKEN_MARKET.make(
        condition_id=market.market_id,
        primary_token_id=market.token_ids[market.outcomes[0]],
        outcome=outcome,
    )


def _levels(market: Market, outcome: str) -> tuple[list[Decimal], list[Decimal]]:
    """Bid and ask prices, each best first."""
    if market.closed:
        return [], []
    bid, ask, tick = market.bid(outcome), market.ask(outcome), market.tick
    bids = [bid - k * tick for k in range(BOOK_LEVELS) if bid - k * tick > 0]
    asks = [ask + k * tick for k in range(BOOK_LEVELS) if ask + k * tick < 1]
    return bids, asks


def book(market: Market, outcome: str, depth: int | None, now_us: int) -> dict[str, Any]:
    """The ``OrderBookSnapshot`` of one outcome (best level last on both sides)."""
    bids, asks = _levels(market, outcome)
    if depth is not None:
        bids, asks = bids[:depth], asks[:depth]
    size = units(LEVEL_SIZE)
    bid_rows = [BOOK_LEVEL.make(price=units(p), size=size) for p in reversed(bids)]
    ask_rows = [BOOK_LEVEL.make(price=units(p), size=size) for p in reversed(asks)]
    token = market.token_ids[outcome]
    digest = hashlib.sha1(encode([token, bid_rows, ask_rows])).hexdigest()
    spread = None
    if bids and asks:
        spread = units(min(asks[0] - bids[0], Decimal("0.10")))
    last = market.last_trade.get(outcome)
    return BOOK.make(
        token_id=token,
        market=market.market_id,
        asset_id=token,
        hash="0x" + digest,
        bids=bid_rows,
        asks=ask_rows,
        min_order_size=_plain(market.min_size),
        tick_size=_plain(market.tick),
        neg_risk=False,
        last_trade_price=None if last is None else units(last),
        mid=units(market.mids[outcome]),
        spread=spread,
        timestamp=str(now_us // 1000),
    )


def candles(
    market: Market,
    outcome: str,
    interval_us: int,
    now_us: int,
    fills: list[tuple[int, Decimal]],
) -> list[dict[str, Any]]:
    """OHLCV buckets of an outcome's recorded mids; ``fills`` are the caller's
    ``(instant, shares)`` in that outcome, ascending."""
    ticks = [t for t in market.history[outcome] if t[0] <= now_us]
    if not ticks:
        return []
    first = ticks[0][0] // interval_us
    last = now_us // interval_us
    start = max(first, last - MAX_CANDLES + 1)
    i = bisect_left(ticks, start * interval_us, key=lambda t: t[0])
    carry = ticks[i - 1][1] if i else None
    j = bisect_left(fills, start * interval_us, key=lambda f: f[0])
    out: list[dict[str, Any]] = []
    for bucket in range(start, last + 1):
        end = (bucket + 1) * interval_us
        prices = [] if carry is None else [carry]
        while i < len(ticks) and ticks[i][0] < end:
            prices.append(ticks[i][1])
            i += 1
        volume = Decimal(0)
        while j < len(fills) and fills[j][0] < end:
            volume += fills[j][1]
            j += 1
        if not prices:
            continue
        out.append(
            CANDLE.make(
                t=bucket * interval_us // SECOND_US,
                o=units(prices[0]),
                h=units(max(prices)),
                l=units(min(prices)),
                c=units(prices[-1]),
                v=units(volume),
            )
        )
        carry = prices[-1]
    return out


def price_row(market_id: str, market: Market | None) -> dict[str, Any]:
    """One ``POST /v1/prices/batch`` row; an unknown market has only its id."""
    if market is None:
        return PRICE_ROW.make(condition_id=market_id)
    buy, sell = _buy_sell(market)
    return PRICE_ROW.make(
        condition_id=market_id,
        buy=buy,
        sell=sell,
        outcomes=_outcome_prices(market),
        source=_SOURCE,
    )


def price_frame(market: Market, now_us: int) -> dict[str, Any]:
    """One ``price`` frame of the price WebSocket (flat, as documented)."""
    buy, sell = _buy_sell(market)
    first = market.outcomes[0]
    extra: dict[str, Any] = {}
    if not market.closed:
        extra.update(best_bid=units(market.bid(first)), best_ask=units(market.ask(first)))
    last = market.last_trade.get(first)
    if last is not None:
        extra["last_trade"] = units(last)
    updated = format_iso(market.updated_us)
    return WS_PRICE.make(
        type="price",
        market_id=market.market_id,
        condition_id=market.market_id,
        buy=buy,
        sell=sell,
        volume=money(volume_24h(market, now_us)),
        outcomes=_outcome_prices(market),
        tokens={
            market.token_ids[name]: WS_TOKEN_PRICE.make(label=name, price=units(market.mids[name]))
            for name in market.outcomes
        },
        active=not market.closed,
        closed=market.closed,
        source=_SOURCE,
        emit_ts_ms=now_us // 1000,
        updated_at=updated,
        ws_updated_at=updated,
        **extra,
    )
