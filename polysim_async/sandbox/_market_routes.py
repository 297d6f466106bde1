"""Market data: ``/v1/markets*``, ``/v1/markets-by-token/{token_id}``, ``/v1/book`` and
``POST /v1/prices/batch`` (API.md §4.1, the market-data pages).

Bodies and the prices in them come from :mod:`._market_views` (the exchange's own
mids). Any valid key may read them (the authentication page puts market data
behind a key; API.md §13 #35). Choices where the docs are silent (in API terms):

* ``GET /v1/markets``: ordered by ``volume_total``, highest first (ties by
  listing order); ``q`` (at most 120 characters, else ``422``) matches question
  or slug, ``category`` is a case-insensitive substring (quotes stripped),
  ``hot_only`` and ``active_only`` as documented; ``limit`` 1..200 (default 50),
  ``offset`` >= 0. A bare array unless ``envelope=true``, which answers
  ``{"data", "next_cursor"}``: ``next_cursor`` is base64 of the next offset after
  a full page and ``"LTE="`` after a short one; ``cursor`` (or ``next_cursor``)
  takes one back (``"LTE="`` answers an empty last page; an undecodable cursor
  is ``422``).
* Unknown ids: ``404 MARKET_NOT_FOUND`` (condition id, slug) or ``404
  TOKEN_NOT_FOUND`` (token id); an ``outcome`` the market lacks is ``422``.
* Candles: ``interval`` outside ``1h 6h 1d 1w max`` is ``400 INVALID_INTERVAL``
  with ``supported_intervals``; ``start_time``/``end_time`` (sent by the SDK,
  not documented) are ignored.
* ``POST /v1/prices/batch``: ``market_ids`` missing, not a list or empty is
  ``400 VALIDATION_FAILED`` (the page's 400), an entry that is not a string of
  at most 256 characters or more than 50 entries ``422``, more than the key's
  tier allows ``400 BATCH_LIMIT_EXCEEDED``. Rows come back in request order.
"""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal

from aiohttp import web

from ._core import Core
from ._errors import ApiError, bad_request, not_found, validation
from ._fields import ERROR_INTERVAL, MARKET_PAGE
from ._json import json_response
from ._market_views import (
    INTERVALS,
    book,
    candles,
    market_detail,
    market_row,
    price_row,
    token_market,
    volume_total,
)
from ._parse import json_body, query_bool, query_int
from ._state import TIERS, Market
from ._trader_routes import caller

__all__ = ["PRICE_BATCH_CEILING", "routes"]

routes = web.RouteTableDef()
END_CURSOR = "LTE="
#: The schema's hard ceiling on ``market_ids`` (no tier reaches it).
PRICE_BATCH_CEILING = 50


def _offset(cursor: str) -> int:
    try:
        value = int(base64.b64decode(cursor.strip().encode("ascii"), validate=True).decode())
    except (binascii.Error, UnicodeError, ValueError):
        raise validation("cursor is malformed; resend next_cursor unchanged") from None
    if value < -1:
        raise validation("cursor is malformed; resend next_cursor unchanged")
    return value


def _listed(core: Core, request: web.Request) -> list[Market]:
    query = request.query
    text = (query.get("q") or "").strip().lower()
    if len(text) > 120:
        raise validation("q must be at most 120 characters")
    category = (query.get("category") or "").strip().strip("'\"").lower()
    hot_only = query_bool(request, "hot_only")
    active_only = query_bool(request, "active_only")
    picked = []
    for market in core.state.markets.values():
        if text and text not in market.question.lower() and text not in market.slug:
            continue
        if category and category not in market.category.lower():
            continue
        if active_only and market.closed:
            continue
        if hot_only and volume_total(market) <= Decimal(5000):
            continue
        picked.append(market)
    picked.sort(key=volume_total, reverse=True)  # stable: ties keep listing order
    return picked


@routes.get("/v1/markets")
async def list_markets(request: web.Request) -> web.Response:
    """Markets by volume; a bare array, or the PM envelope with ``envelope=true``."""
    core, _, _ = caller(request)
    limit = query_int(request, "limit", default=50, low=1, high=200)
    offset = query_int(request, "offset", default=0, low=0)
    envelope = query_bool(request, "envelope")
    cursor = request.query.get("cursor") or request.query.get("next_cursor")
    markets = _listed(core, request)
    now = core.clock.now_us()
    if not envelope:
        return json_response([market_row(m, now) for m in markets[offset : offset + limit]])
    if cursor:
        offset = _offset(cursor)
    if offset < 0:
        return json_response(MARKET_PAGE.make(data=[], next_cursor=END_CURSOR))
    page = markets[offset : offset + limit]
    next_cursor = END_CURSOR
    if len(page) == limit:
        next_cursor = base64.b64encode(str(offset + limit).encode()).decode()
    return json_response(
        MARKET_PAGE.make(data=[market_row(m, now) for m in page], next_cursor=next_cursor)
    )


def _market(core: Core, market_id: str) -> Market:
    market = core.state.markets.get(market_id)
    if market is None:
        raise not_found("MARKET_NOT_FOUND", f"Market not found: {market_id}")
    return market


def _token(core: Core, token_id: str) -> tuple[str, str]:
    """The ``(market_id, outcome)`` an outcome token stands for.

    Raises:
        ApiError: 404 TOKEN_NOT_FOUND.
    """
    entry = core.state.tokens.get(token_id)
    if entry is None:
        raise not_found("TOKEN_NOT_FOUND", f"token not found: {token_id[:80]}")
    return entry


def _depth(request: web.Request) -> int | None:
    if "depth" not in request.query:
        return None
    return query_int(request, "depth", default=0, low=1, high=500)


def _outcome(request: web.Request, market: Market) -> str:
    raw = request.query.get("outcome")
    if raw is None:
        return market.outcomes[0]
    name = market.outcome_name(raw.strip())
    if name is None:
        raise validation(f"outcome must be one of {', '.join(market.outcomes)}")
    return name


@routes.get("/v1/markets/by-slug/{slug}")
async def market_by_slug(request: web.Request) -> web.Response:
    """One market's detail by its slug."""
    core, _, _ = caller(request)
    slug = request.match_info["slug"]
    market_id = core.state.slugs.get(slug)
    if market_id is None:
        raise not_found("MARKET_NOT_FOUND", f"Market not found: {slug}")
    include = query_bool(request, "include_book")
    return json_response(
        market_detail(core.state.markets[market_id], core.clock.now_us(), include_book=include)
    )


@routes.get("/v1/markets/{condition_id}")
async def get_market(request: web.Request) -> web.Response:
    """One market's detail, with its book on ``include_book=true``."""
    core, _, _ = caller(request)
    market = _market(core, request.match_info["condition_id"])
    include = query_bool(request, "include_book")
    return json_response(market_detail(market, core.clock.now_us(), include_book=include))


@routes.get("/v1/markets/{condition_id}/book")
async def market_book(request: web.Request) -> web.Response:
    """One outcome's order book (the first outcome by default)."""
    core, _, _ = caller(request)
    market = _market(core, request.match_info["condition_id"])
    outcome = _outcome(request, market)
    return json_response(book(market, outcome, _depth(request), core.clock.now_us()))


@routes.get("/v1/book")
async def token_book(request: web.Request) -> web.Response:
    """One outcome token's order book."""
    core, _, _ = caller(request)
    token_id = request.query.get("token_id")
    if not token_id:
        raise validation("token_id is required")
    market_id, outcome = _token(core, token_id)
    market = core.state.markets[market_id]
    return json_response(book(market, outcome, _depth(request), core.clock.now_us()))


@routes.get("/v1/markets-by-token/{token_id}")
async def market_by_token(request: web.Request) -> web.Response:
    """The market that mints an outcome token."""
    core, _, _ = caller(request)
    market_id, outcome = _token(core, request.match_info["token_id"])
    return json_response(token_market(core.state.markets[market_id], outcome))


@routes.get("/v1/markets/{condition_id}/candles")
async def market_candles(request: web.Request) -> web.Response:
    """OHLCV candles of one outcome, oldest first."""
    core, _, user = caller(request)
    market = _market(core, request.match_info["condition_id"])
    interval = request.query.get("interval", "1h")
    if interval not in INTERVALS:
        raise ApiError(
            400,
            "INVALID_INTERVAL",
            f"interval must be one of {', '.join(INTERVALS)}",
            shape=ERROR_INTERVAL,
            extra={"supported_intervals": list(INTERVALS)},
        )
    outcome = _outcome(request, market)
    fills = sorted(
        (us, Decimal(row.quantity))
        for wallet_id in user.wallet_ids
        for us, row in core.state.wallets[wallet_id].fills.iter_newest(market_id=market.market_id)
        if row.outcome == outcome
    )
    rows = candles(market, outcome, INTERVALS[interval], core.clock.now_us(), fills)
    return json_response(rows)


@routes.post("/v1/prices/batch")
async def prices_batch(request: web.Request) -> web.Response:
    """Live prices of up to the tier's batch size of markets."""
    core, key, _ = caller(request)
    data = await json_body(request)
    ids = data.get("market_ids") if isinstance(data, dict) else None
    if not isinstance(ids, list) or not ids:
        raise bad_request(
            "VALIDATION_FAILED", "market_ids must be a non-empty list of condition ids"
        )
    if not all(isinstance(i, str) and 0 < len(i) <= 256 for i in ids):
        raise validation("market_ids must hold condition id strings of at most 256 characters")
    if len(ids) > PRICE_BATCH_CEILING:
        raise validation(f"market_ids holds at most {PRICE_BATCH_CEILING} ids")
    limit = TIERS[key.tier].max_batch
    if len(ids) > limit:
        raise bad_request(
            "BATCH_LIMIT_EXCEEDED", f"Batch size {len(ids)} exceeds tier limit ({limit})"
        )
    markets = core.state.markets
    return json_response([price_row(i, markets.get(i)) for i in ids])
