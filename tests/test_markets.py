"""``client.markets``: listing by PM-shape cursor, detail, by slug/token, books, candles."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

import polysim_async as ps

from ._helpers import Routes, calls, error_body, make_client, url
from ._trader import BOOK, CID, MARKET, YES, params

MARKETS = url("/v1/markets")


def cursor(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode()


class TestList:
    async def test_pages_follow_the_pm_cursor_until_the_end_sentinel(self, mock: Routes) -> None:
        second = {**MARKET, "condition_id": "0x02"}
        mock.get(MARKETS, payload={"data": [MARKET], "next_cursor": cursor(1)})
        mock.get(MARKETS, payload={"data": [second], "next_cursor": "LTE="})
        async with make_client() as client:
            pages = [page async for page in client.markets.list_pages(page_size=1)]
        assert [p.data[0].condition_id for p in pages] == [CID, "0x02"]
        assert pages[-1].last and not pages[0].last
        assert params(mock, "/v1/markets") == [
            {"envelope": "true", "limit": "1"},
            {"envelope": "true", "limit": "1", "cursor": "MQ=="},
        ]

    @pytest.mark.parametrize("end", ["", None])
    async def test_an_empty_cursor_also_ends(self, mock: Routes, end: Any) -> None:
        mock.get(MARKETS, payload={"data": [MARKET], "next_cursor": end})
        async with make_client() as client:
            rows = [m async for m in client.markets.list()]
        assert [m.condition_id for m in rows] == [CID]

    async def test_an_empty_page_ends_even_with_a_cursor(self, mock: Routes) -> None:
        mock.get(MARKETS, payload={"data": [], "next_cursor": cursor(50)})
        async with make_client() as client:
            assert [m async for m in client.markets.list()] == []
        assert len(calls(mock)) == 1

    async def test_filters_and_resume_cursor_are_sent_as_documented(self, mock: Routes) -> None:
        mock.get(MARKETS, payload={"data": [], "next_cursor": "LTE="})
        async with make_client() as client:
            pages = client.markets.list_pages(
                query="trump",
                category="crypto",
                hot_only=True,
                active_only=False,
                page_size=200,
                cursor="NTA=",
            )
            assert [p.data async for p in pages] == [[]]
        assert params(mock, "/v1/markets") == [
            {
                "envelope": "true",
                "limit": "200",
                "q": "trump",
                "category": "crypto",
                "hot_only": "true",
                "active_only": "false",
                "cursor": "NTA=",
            }
        ]

    async def test_a_repeated_cursor_stops_the_walk(self, mock: Routes) -> None:
        mock.get(MARKETS, payload={"data": [MARKET], "next_cursor": "MQ=="}, repeat=True)
        async with make_client() as client:
            with pytest.raises(ps.PaginationError):
                async for _ in client.markets.list():
                    pass

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"page_size": 0},
            {"page_size": 201},
            {"query": "x" * 121},
            {"query": ""},
            {"hot_only": "yes"},
            {"cursor": ""},
        ],
    )
    async def test_bad_filters_are_refused_before_sending(
        self, mock: Routes, kwargs: dict[str, Any]
    ) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError):
                client.markets.list(**kwargs)
        assert calls(mock) == []

    async def test_rows_decode_exactly_and_ignore_unknown_fields(self, mock: Routes) -> None:
        mock.get(MARKETS, payload={"data": [MARKET], "next_cursor": "LTE="})
        async with make_client() as client:
            [market] = [m async for m in client.markets.list()]
        assert isinstance(market, ps.Market)
        assert market.volume_24h == Decimal("125000.50")
        assert market.live_price is not None
        assert market.live_price.outcomes[0] == ps.OutcomePrice(
            label="Yes", price=Decimal("0.65"), token_id=YES
        )
        assert market.live_price.updated_at == datetime(2026, 2, 6, 12, 0, 45, tzinfo=timezone.utc)

    async def test_null_display_fields_mean_not_known_yet(self, mock: Routes) -> None:
        fresh = {"condition_id": CID, "volume_24h": None, "last_price": None, "live_price": None}
        mock.get(MARKETS, payload={"data": [fresh], "next_cursor": "LTE="})
        async with make_client() as client:
            [market] = [m async for m in client.markets.list()]
        assert market.volume_24h is None and market.live_price is None


class TestDetail:
    async def test_get_by_condition_id_with_the_book(self, mock: Routes) -> None:
        detail = {
            **MARKET,
            "tokens": [
                {"token_id": YES, "outcome": "Yes", "price": 0.65, "winner": False},
                {"token_id": "2", "outcome": "No", "price": 0.35, "winner": False},
            ],
            "question_id": CID,
            "market_slug": MARKET["slug"],
            "neg_risk": False,
            "end_date": "2026-12-31",
            "order_book": BOOK,
        }
        mock.get(url(f"/v1/markets/{CID}"), payload=detail)
        async with make_client() as client:
            market = await client.markets.get(CID, include_book=True)
        assert params(mock, f"/v1/markets/{CID}") == [{"include_book": "true"}]
        assert isinstance(market, ps.MarketDetail)
        # ``tokens[].price`` is a JSON number on the wire; it is read exactly.
        assert market.tokens is not None and market.tokens[0].price == Decimal("0.65")
        assert market.end_date == "2026-12-31"
        assert market.order_book is not None and market.order_book.best_bid == Decimal("0.64")

    async def test_get_without_the_book_sends_no_query(self, mock: Routes) -> None:
        mock.get(url(f"/v1/markets/{CID}"), payload=MARKET)
        async with make_client() as client:
            market = await client.markets.get(CID)
        assert params(mock, f"/v1/markets/{CID}") == [{}]
        assert market.tokens is None and market.order_book is None

    async def test_by_slug_quotes_the_segment(self, mock: Routes) -> None:
        mock.get(url("/v1/markets/by-slug/a%2Fb"), payload=MARKET)
        async with make_client() as client:
            market = await client.markets.by_slug("a/b")
        assert market.condition_id == CID

    async def test_by_token(self, mock: Routes) -> None:
        body = {"condition_id": CID, "primary_token_id": YES, "outcome": "Yes"}
        mock.get(url(f"/v1/markets-by-token/{YES}"), payload=body)
        async with make_client() as client:
            found = await client.markets.by_token(YES)
        assert found == ps.TokenMarket(condition_id=CID, primary_token_id=YES, outcome="Yes")

    async def test_unknown_market_is_not_found(self, mock: Routes) -> None:
        mock.get(url(f"/v1/markets/{CID}"), status=404, payload=error_body("MARKET_NOT_FOUND"))
        async with make_client() as client:
            with pytest.raises(ps.NotFoundError) as info:
                await client.markets.get(CID)
        assert info.value.code == "MARKET_NOT_FOUND"

    @pytest.mark.parametrize("bad", ["", " 0x1", "..", 5])
    async def test_bad_ids_are_refused(self, mock: Routes, bad: Any) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError):
                await client.markets.get(bad)
        assert calls(mock) == []

    async def test_reads_are_retried(self, mock: Routes) -> None:
        mock.get(url(f"/v1/markets/{CID}"), status=503, payload=error_body("SERVER_BUSY"))
        mock.get(url(f"/v1/markets/{CID}"), payload=MARKET)
        async with make_client() as client:
            assert (await client.markets.get(CID)).condition_id == CID
        assert len(calls(mock)) == 2


class TestBook:
    async def test_book_by_condition_id(self, mock: Routes) -> None:
        mock.get(url(f"/v1/markets/{CID}/book"), payload=BOOK)
        async with make_client() as client:
            book = await client.markets.book(CID, outcome="Yes", depth=5)
        assert params(mock, "/book") == [{"outcome": "Yes", "depth": "5"}]
        # The best level is the last of each side on the wire; read order-independently.
        assert book.best_bid == Decimal("0.64") and book.best_ask == Decimal("0.66")
        assert book.bids[-1] == ps.BookLevel(price=Decimal("0.64"), size=Decimal("500.0"))
        assert book.tick_size == Decimal("0.01") and book.spread == Decimal("0.02")
        assert book.time == datetime(2026, 5, 17, 5, 21, 23, 697000, tzinfo=timezone.utc)

    async def test_book_by_token(self, mock: Routes) -> None:
        mock.get(url("/v1/book"), payload={**BOOK, "bids": [], "asks": [], "timestamp": None})
        async with make_client() as client:
            book = await client.markets.book_by_token(YES, depth=500)
        assert params(mock, "/v1/book") == [{"depth": "500", "token_id": YES}]
        assert book.best_bid is None and book.best_ask is None and book.time is None

    @pytest.mark.parametrize("depth", [0, 501, True])
    async def test_depth_bounds(self, mock: Routes, depth: Any) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError):
                await client.markets.book(CID, depth=depth)
        assert calls(mock) == []

    def test_an_unreadable_timestamp_is_none(self) -> None:
        assert ps.OrderBook(timestamp="soon").time is None


class TestCandles:
    async def test_candles_decode_with_readable_names(self, mock: Routes) -> None:
        rows = [
            {
                "t": 1777939200,
                "o": "0.2615",
                "h": "0.2680",
                "l": "0.2595",
                "c": "0.2625",
                "v": "98",
            },
        ]
        mock.get(url(f"/v1/markets/{CID}/candles"), payload=rows)
        async with make_client() as client:
            [candle] = await client.markets.candles(
                CID, outcome="Yes", interval=ps.CandleInterval.DAY
            )
        assert params(mock, "/candles") == [{"interval": "1d", "outcome": "Yes"}]
        assert (candle.open, candle.high, candle.low, candle.close, candle.volume) == (
            Decimal("0.2615"),
            Decimal("0.2680"),
            Decimal("0.2595"),
            Decimal("0.2625"),
            Decimal("98"),
        )
        assert candle.start == datetime(2026, 5, 5, tzinfo=timezone.utc)

    async def test_the_default_interval_is_one_hour(self, mock: Routes) -> None:
        mock.get(url(f"/v1/markets/{CID}/candles"), payload=[])
        async with make_client() as client:
            assert await client.markets.candles(CID) == []
        assert params(mock, "/candles") == [{"interval": "1h"}]

    @pytest.mark.parametrize("interval", ["5m", "1m", "all", ""])
    async def test_unsupported_intervals_are_refused(self, mock: Routes, interval: str) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError, match="interval"):
                await client.markets.candles(CID, interval=interval)
        assert calls(mock) == []
