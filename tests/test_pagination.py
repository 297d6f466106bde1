"""The trade feed's cursor walk, end to end against a loopback feed server (API.md §8.1)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

import polysim_async as ps
from polysim_async._pagination import walk_cursor

from ._helpers import ACCOUNT_ID, SECRET, base_of, serve, trade


class Feed:
    """``count`` fills, newest (highest id) first, paged by an opaque keyset cursor."""

    def __init__(self, count: int, *, repeat_cursor_after: int | None = None) -> None:
        self.ids = list(range(count, 0, -1))
        self.queries: list[dict[str, str]] = []
        self.repeat_after = repeat_cursor_after

    @staticmethod
    def cursor(order_id: int) -> str:
        key = {"filled_at": "2026-05-31T12:30:00+00:00", "order_id": order_id}
        return base64.b64encode(json.dumps(key).encode()).decode()

    async def handle(self, request: web.Request) -> web.Response:
        assert request.headers["X-API-Key"] == SECRET
        assert request.match_info["account_id"] == ACCOUNT_ID
        query = dict(request.query)
        self.queries.append(query)
        limit = int(query["limit"])
        start = 0
        if "cursor" in query:
            last = json.loads(base64.b64decode(query["cursor"]))["order_id"]
            start = self.ids.index(last) + 1
        rows = self.ids[start : start + limit]
        more = start + limit < len(self.ids)
        nxt = self.cursor(rows[-1]) if more else None
        if self.repeat_after is not None and len(self.queries) > self.repeat_after:
            nxt = self.queries[-1].get("cursor") or self.cursor(rows[-1])
        return web.json_response({"data": [trade(i) for i in rows], "next_cursor": nxt})

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/partner/accounts/{account_id}/trades", self.handle)


@contextlib.asynccontextmanager
async def feed_client(feed: Feed) -> AsyncIterator[ps.Client]:
    async with serve(feed.routes) as server, ps.Client(SECRET, base_of(server)) as client:
        yield client


async def test_trades_walks_every_page_newest_first() -> None:
    feed = Feed(7)
    async with feed_client(feed) as client:
        got = [t async for t in client.partner.accounts.trades(ACCOUNT_ID, page_size=3)]
    assert [t.trade_id for t in got] == [7, 6, 5, 4, 3, 2, 1]
    assert all(isinstance(t, ps.Trade) for t in got)
    assert [q.get("cursor") for q in feed.queries] == [None, Feed.cursor(5), Feed.cursor(2)]
    assert all(q["limit"] == "3" for q in feed.queries)


async def test_trade_pages_exposes_each_cursor() -> None:
    feed = Feed(4)
    async with feed_client(feed) as client:
        pages = [p async for p in client.partner.accounts.trade_pages(ACCOUNT_ID, page_size=2)]
    assert [[t.trade_id for t in p.data] for p in pages] == [[4, 3], [2, 1]]
    assert [p.next_cursor for p in pages] == [Feed.cursor(3), None]


async def test_default_page_size_is_the_server_maximum() -> None:
    feed = Feed(1)
    async with feed_client(feed) as client:
        [p async for p in client.partner.accounts.trade_pages(ACCOUNT_ID)]
    assert feed.queries == [{"limit": str(ps.DEFAULT_PAGE_SIZE)}]
    assert ps.DEFAULT_PAGE_SIZE == 500


async def test_filters_are_sent_on_every_page() -> None:
    feed = Feed(3)
    async with feed_client(feed) as client:
        walk = client.partner.accounts.trades(
            ACCOUNT_ID, side="sell", market_id="0xabc", page_size=2
        )
        assert len([t async for t in walk]) == 3
    assert len(feed.queries) == 2
    for query in feed.queries:
        assert (query["side"], query["market_id"], query["limit"]) == ("SELL", "0xabc", "2")


async def test_resume_from_a_saved_cursor() -> None:
    feed = Feed(6)
    async with feed_client(feed) as client:
        got = [
            t.trade_id
            async for t in client.partner.accounts.trades(
                ACCOUNT_ID, page_size=2, cursor=Feed.cursor(3)
            )
        ]
    assert got == [2, 1]
    assert feed.queries[0]["cursor"] == Feed.cursor(3)


async def test_a_cursor_sent_back_twice_raises_instead_of_looping() -> None:
    feed = Feed(50, repeat_cursor_after=1)  # from page 2 on, the server echoes the cursor
    got: list[int] = []
    async with feed_client(feed) as client:
        with pytest.raises(ps.PaginationError, match="repeated cursor"):
            async for t in client.partner.accounts.trades(ACCOUNT_ID, page_size=5):
                got.append(t.trade_id)
    assert got == list(range(50, 40, -1))  # two pages, then the error
    assert len(feed.queries) == 2  # the repeated cursor is never requested


async def test_an_empty_string_cursor_ends_the_walk() -> None:
    async def handle(request: web.Request) -> web.Response:
        return web.json_response({"data": [trade(1)], "next_cursor": ""})

    def routes(app: web.Application) -> None:
        app.router.add_get("/v1/partner/accounts/{aid}/trades", handle)

    async with serve(routes) as server, ps.Client(SECRET, base_of(server)) as client:
        got = [t async for t in client.partner.accounts.trades(ACCOUNT_ID)]
    assert len(got) == 1


async def test_breaking_out_early_leaks_nothing() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: reported.append(ctx))
    feed = Feed(20)
    try:
        async with feed_client(feed) as client:
            async for t in client.partner.accounts.trades(ACCOUNT_ID, page_size=2):
                assert t.trade_id == 20
                break
            async for page in client.partner.accounts.trade_pages(ACCOUNT_ID, page_size=2):
                assert page.data[0].trade_id == 20
                break
        gc.collect()
        for _ in range(5):
            await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    # filterwarnings=error turns any unclosed-session ResourceWarning into a failure.
    assert reported == []
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert len(feed.queries) <= 4  # at most one page fetched ahead per walk


@pytest.mark.parametrize(
    "kwargs",
    [
        {"page_size": 0},
        {"page_size": 501},
        {"page_size": True},
        {"page_size": "100"},
        {"side": "HOLD"},
        {"side": 1},
        {"market_id": ""},
        {"market_id": 42},
        {"cursor": ""},
    ],
)
async def test_bad_arguments_fail_at_the_call_before_any_request(kwargs: dict[str, Any]) -> None:
    feed = Feed(3)
    async with feed_client(feed) as client:
        with pytest.raises(ps.InvalidArgumentError):
            client.partner.accounts.trades(ACCOUNT_ID, **kwargs)
        with pytest.raises(ps.InvalidArgumentError):
            client.partner.accounts.trade_pages(ACCOUNT_ID, **kwargs)
        for bad_id in ("", " padded ", None, True):
            with pytest.raises(ps.InvalidArgumentError):
                client.partner.accounts.trades(bad_id)  # type: ignore[arg-type]
    assert feed.queries == []


async def test_an_error_on_a_later_page_surfaces_when_reached() -> None:
    calls = 0

    async def handle(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return web.json_response({"data": [trade(2)], "next_cursor": "next"})
        return web.json_response({"error": "NOT_FOUND", "message": "gone"}, status=404)

    def routes(app: web.Application) -> None:
        app.router.add_get("/v1/partner/accounts/{aid}/trades", handle)

    got: list[int] = []
    async with serve(routes) as server, ps.Client(SECRET, base_of(server)) as client:
        with pytest.raises(ps.NotFoundError):
            async for t in client.partner.accounts.trades(ACCOUNT_ID):
                got.append(t.trade_id)
    assert got == [2]


class TestWalkCursor:
    async def test_stops_on_a_falsy_cursor_and_passes_each_cursor_on(self) -> None:
        seen: list[str | None] = []
        chain = {None: "a", "a": "b", "b": None}

        async def fetch(cursor: str | None) -> str | None:
            seen.append(cursor)
            return chain[cursor]

        pages = [p async for p in walk_cursor(fetch, lambda nxt: nxt)]
        assert pages == ["a", "b", None]
        assert seen == [None, "a", "b"]

    async def test_the_starting_cursor_counts_as_seen(self) -> None:
        async def fetch(cursor: str | None) -> str:
            return "start"  # the server sends the resume cursor straight back

        walk = walk_cursor(fetch, lambda nxt: nxt, "start")
        with pytest.raises(ps.PaginationError):
            async for _ in walk:
                pass
