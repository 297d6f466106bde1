"""Market data (``/v1/markets*``, ``/v1/book``): ``client.markets``.

Reads only, so every call is retried like a read. The docs disagree on whether
these routes need a key (API.md §13 #35); the client always sends its key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ._errors import InvalidArgumentError
from ._pagination import flatten, walk_cursor
from ._requester import Requester
from ._validation import check_enum, check_int, check_str, path_id
from .models.markets import (
    Candle,
    CandleInterval,
    Market,
    MarketDetail,
    MarketPage,
    OrderBook,
    TokenMarket,
)

__all__ = ["MarketsAPI"]

#: ``GET /v1/markets`` page size: default 50, at most 200.
MARKET_PAGE_MAX = 200
#: ``depth`` of a book read: at most 500 levels per side.
BOOK_DEPTH_MAX = 500
#: ``q`` search text: at most 120 characters.
QUERY_MAX = 120


def _segment(name: str, value: object) -> str:
    """A string id, checked and quoted as one path segment."""
    return path_id(name, check_str(name, value, max_len=256))


def _next_market_cursor(page: MarketPage) -> str | None:
    return None if page.last else page.next_cursor


def _page_markets(page: MarketPage) -> list[Market]:
    return page.data


def _book_params(outcome: str | None, depth: int | None) -> dict[str, str]:
    params: dict[str, str] = {}
    if outcome is not None:
        params["outcome"] = check_str("outcome", outcome, max_len=200)
    if depth is not None:
        params["depth"] = str(check_int("depth", depth, low=1, high=BOOK_DEPTH_MAX))
    return params


class MarketsAPI:
    """``client.markets``: find markets, read their books and candles."""

    def __init__(self, requester: Requester) -> None:
        self._r = requester

    def list_pages(
        self,
        *,
        query: str | None = None,
        category: str | None = None,
        hot_only: bool | None = None,
        active_only: bool | None = None,
        page_size: int = 50,
        cursor: str | None = None,
    ) -> AsyncIterator[MarketPage]:
        """Iterate over the markets page by page, by volume as the server orders them.

        ``GET /v1/markets?envelope=true``: each page carries a ``next_cursor``
        (base64 of the next offset); the walk ends on ``"LTE="``, an empty
        cursor or an empty page. Nothing is held open between pages.

        Args:
            query: free text matched against question and slug (sent as ``q``,
                at most 120 characters); it does not find Up/Down markets.
            category: one category, e.g. ``"crypto"``.
            hot_only: only markets with more than $5,000 cumulative volume.
            active_only: only active, unclosed markets.
            page_size: 1 to 200.
            cursor: a saved ``next_cursor`` to resume from (same filters).

        Returns:
            An async iterator of pages.

        Raises:
            InvalidArgumentError: bad filters, raised by this call before anything is sent.
            PaginationError: the server repeated a cursor (raised while iterating).
        """
        params = {
            "envelope": "true",
            "limit": str(check_int("page_size", page_size, low=1, high=MARKET_PAGE_MAX)),
        }
        if query is not None:
            params["q"] = check_str("query", query, max_len=QUERY_MAX)
        if category is not None:
            params["category"] = check_str("category", category, max_len=100)
        for name, flag in (("hot_only", hot_only), ("active_only", active_only)):
            if flag is not None:
                if not isinstance(flag, bool):
                    raise InvalidArgumentError(f"{name} must be a bool, got {flag!r}")
                params[name] = "true" if flag else "false"
        if cursor is not None:
            check_str("cursor", cursor, max_len=4096)

        async def fetch(cur: str | None) -> MarketPage:
            query_params = params if cur is None else {**params, "cursor": cur}
            return await self._r.request(MarketPage, "GET", "/v1/markets", params=query_params)

        return walk_cursor(fetch, _next_market_cursor, cursor)

    async def get(self, condition_id: str, *, include_book: bool = False) -> MarketDetail:
        """Return one market by condition id (``GET /v1/markets/{condition_id}``).

        Args:
            condition_id: the market's condition id (``0x…``).
            include_book: also return the order book (``order_book``).

        Raises:
            InvalidArgumentError: a blank or padded id (nothing sent).
            NotFoundError: ``MARKET_NOT_FOUND`` (also briefly for brand-new markets).
        """
        params = {"include_book": "true"} if include_book else {}
        path = f"/v1/markets/{_segment('condition_id', condition_id)}"
        return await self._r.request(MarketDetail, "GET", path, params=params)

    async def by_slug(self, slug: str) -> MarketDetail:
        """Return one market by its slug (``GET /v1/markets/by-slug/{slug}``).

        Raises:
            InvalidArgumentError: a blank or padded slug (nothing sent).
            NotFoundError: ``MARKET_NOT_FOUND``.
        """
        path = f"/v1/markets/by-slug/{_segment('slug', slug)}"
        return await self._r.request(MarketDetail, "GET", path)

    async def by_token(self, token_id: str) -> TokenMarket:
        """Find the market that mints an outcome token (``GET /v1/markets-by-token/{token_id}``).

        Returns:
            The market's condition id, its primary token and the token's outcome.

        Raises:
            InvalidArgumentError: a blank or padded id (nothing sent).
            NotFoundError: ``TOKEN_NOT_FOUND``.
        """
        path = f"/v1/markets-by-token/{_segment('token_id', token_id)}"
        return await self._r.request(TokenMarket, "GET", path)

    async def book(
        self, condition_id: str, *, outcome: str | None = None, depth: int | None = None
    ) -> OrderBook:
        """Return a market's order book (``GET /v1/markets/{condition_id}/book``).

        Args:
            condition_id: the market.
            outcome: which outcome's book (``"Yes"``, ``"No"`` …); the server
                defaults to the first outcome.
            depth: keep only the best ``depth`` levels per side (1 to 500);
                omitted, the full book.

        Raises:
            InvalidArgumentError: bad arguments (nothing sent).
            NotFoundError: ``MARKET_NOT_FOUND``.
        """
        path = f"/v1/markets/{_segment('condition_id', condition_id)}/book"
        return await self._r.request(OrderBook, "GET", path, params=_book_params(outcome, depth))

    async def book_by_token(self, token_id: str, *, depth: int | None = None) -> OrderBook:
        """Return an outcome token's order book (``GET /v1/book?token_id=``).

        Raises:
            InvalidArgumentError: bad arguments (nothing sent).
            NotFoundError: ``TOKEN_NOT_FOUND``.
        """
        params = _book_params(None, depth)
        params["token_id"] = check_str("token_id", token_id, max_len=256)
        return await self._r.request(OrderBook, "GET", "/v1/book", params=params)

    async def candles(
        self,
        condition_id: str,
        *,
        outcome: str | None = None,
        interval: CandleInterval | str = CandleInterval.HOUR,
    ) -> list[Candle]:
        """Return OHLCV candles, oldest first (``GET /v1/markets/{condition_id}/candles``).

        Args:
            condition_id: the market.
            outcome: which outcome (default: the market's first).
            interval: ``1h``, ``6h``, ``1d``, ``1w`` or ``max`` (a
                :class:`CandleInterval`); anything finer does not exist upstream.

        Raises:
            InvalidArgumentError: bad arguments, including an unsupported
                interval, before anything is sent.
            NotFoundError: ``MARKET_NOT_FOUND``.
        """
        params = {"interval": check_enum("interval", interval, CandleInterval).value}
        if outcome is not None:
            params["outcome"] = check_str("outcome", outcome, max_len=200)
        path = f"/v1/markets/{_segment('condition_id', condition_id)}/candles"
        return await self._r.request(list[Candle], "GET", path, params=params)

    def list(
        self,
        *,
        query: str | None = None,
        category: str | None = None,
        hot_only: bool | None = None,
        active_only: bool | None = None,
        page_size: int = 50,
        cursor: str | None = None,
    ) -> AsyncIterator[Market]:
        """Iterate over every matching market; same arguments as :meth:`list_pages`.

        Returns:
            An async iterator of markets; ``break`` is safe.
        """
        pages = self.list_pages(
            query=query,
            category=category,
            hot_only=hot_only,
            active_only=active_only,
            page_size=page_size,
            cursor=cursor,
        )
        return flatten(pages, _page_markets)
