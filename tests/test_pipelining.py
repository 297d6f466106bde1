"""Page pipelining: `walk_cursor_prefetch` and its wiring into `trade_pages`/`trades`.

The fake feed (`FeedServer`) is shared with test_fanout.py. No test sleeps for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from polysim_async import Client, MockTransport, NotFoundError, PaginationError, Request, Response
from polysim_async._pagination import flatten, walk_cursor, walk_cursor_prefetch

BASE = "http://127.0.0.1:9"
_TRADES = re.compile(r"^http://127\.0\.0\.1:9/v1/partner/accounts/([^/]+)/trades(\?.*)?$")


def fill(n: int) -> dict[str, Any]:
    """One trade row in the wire shape of API.md §3 P6."""
    return {
        "trade_id": n,
        "order_id": n,
        "market_id": "0xabc",
        "side": "BUY" if n % 2 else "SELL",
        "outcome": "Yes",
        "price": "0.4100",
        "quantity": "10.0000",
        "notional": "4.10",
        "fee": "0.00",
        "filled_at": "2026-06-04T14:09:31.220148+00:00",
        "client_order_id": None,
        "realized_pnl": None,
    }


class FeedServer:
    """Serves ``pages[account][i]`` at cursor ``c<i>``; records every request in order.

    ``fail`` maps an account to ``(page_index, status)`` answered instead of that page.
    ``gate`` (if set) is awaited before answering, so tests control timing.
    """

    def __init__(
        self,
        pages: dict[str, list[list[int]]],
        *,
        fail: dict[str, tuple[int, int]] | None = None,
        on_request: Callable[[str, int], None] | None = None,
    ) -> None:
        self.pages = pages
        self.fail = fail or {}
        self.requests: list[tuple[str, int]] = []
        self.on_request = on_request
        self.gate: asyncio.Event | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def transport(self) -> MockTransport:
        return MockTransport(self._answer)

    async def _answer(self, request: Request) -> Response:
        match = _TRADES.match(BASE + request.path)
        assert match is not None
        account = match.group(1)
        params = request.params or {}
        cursor = params.get("cursor")
        index = 0 if cursor is None else int(cursor[1:])
        self.requests.append((account, index))
        if self.on_request is not None:
            self.on_request(account, index)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
        finally:
            self.in_flight -= 1
        failing = self.fail.get(account)
        if failing is not None and failing[0] == index:
            return Response.from_json(
                {"error": "NOT_FOUND", "message": "no such account"}, status=failing[1]
            )
        pages = self.pages[account]
        nxt = f"c{index + 1}" if index + 1 < len(pages) else None
        body = {"data": [fill(n) for n in pages[index]], "next_cursor": nxt}
        return Response(200, {}, msgspec.json.encode(body))


# --------------------------------------------------------------------------- helpers


def client(**kwargs: Any) -> Client:
    kwargs.setdefault("rate_limit", None)
    kwargs.setdefault("max_retries", 0)
    return Client("tenant-key", BASE, **kwargs)


async def settle(rounds: int = 20) -> None:
    """Let every ready task run (no real time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def other_tasks() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]


class Pages:
    """An in-memory fetch: page i has cursor ``c<i>``; records calls; optional gates."""

    def __init__(self, count: int, *, cursors: list[str | None] | None = None) -> None:
        self.count = count
        self.cursors = cursors
        self.calls: list[str | None] = []
        self.active = 0
        self.max_active = 0
        self.gates: dict[str | None, asyncio.Event] = {}
        self.errors: dict[str | None, Exception] = {}
        self.cancelled: list[str | None] = []

    def next_of(self, page: tuple[int, str | None]) -> str | None:
        return page[1]

    async def fetch(self, cursor: str | None) -> tuple[int, str | None]:
        self.calls.append(cursor)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            gate = self.gates.get(cursor)
            if gate is not None:
                await gate.wait()
            await asyncio.sleep(0)
            if cursor in self.errors:
                raise self.errors[cursor]
        except asyncio.CancelledError:
            self.cancelled.append(cursor)
            raise
        finally:
            self.active -= 1
        index = 0 if cursor is None else int(cursor[1:])
        if self.cursors is not None:
            return index, self.cursors[index]
        return index, (f"c{index + 1}" if index + 1 < self.count else None)


# --------------------------------------------------------------------------- the walker


async def test_yields_every_page_in_order_and_stops_on_empty_cursor() -> None:
    pages = Pages(4)
    got = [p[0] async for p in walk_cursor_prefetch(pages.fetch, pages.next_of)]
    assert got == [0, 1, 2, 3]
    assert pages.calls == [None, "c1", "c2", "c3"]
    assert pages.max_active == 1


async def test_next_page_is_fetched_while_the_consumer_holds_the_current_one() -> None:
    pages = Pages(3)
    walk = walk_cursor_prefetch(pages.fetch, pages.next_of)
    async with contextlib.aclosing(walk):
        first = await walk.__anext__()
        assert first[0] == 0
        await settle()
        # Page 1 was requested while page 0 is still in the consumer's hands ...
        assert pages.calls == [None, "c1"]
        # ... but not page 2: the walk runs one page ahead, no further.
        assert "c2" not in pages.calls
        second = await walk.__anext__()
        assert second[0] == 1
        await settle()
        assert pages.calls == [None, "c1", "c2"]


async def test_resume_from_a_cursor() -> None:
    pages = Pages(4)
    got = [p[0] async for p in walk_cursor_prefetch(pages.fetch, pages.next_of, "c2")]
    assert got == [2, 3]


async def test_repeated_cursor_raises_after_the_page_and_is_never_requested() -> None:
    pages = Pages(3, cursors=["c1", "c2", "c1"])
    got: list[int] = []
    with pytest.raises(PaginationError, match="repeated cursor"):
        async for p in walk_cursor_prefetch(pages.fetch, pages.next_of):
            got.append(p[0])
    assert got == [0, 1, 2]
    assert pages.calls == [None, "c1", "c2"]


async def test_the_starting_cursor_counts_as_seen() -> None:
    pages = Pages(3, cursors=["c1", "c2", "c1"])
    with pytest.raises(PaginationError):
        async for _ in walk_cursor_prefetch(pages.fetch, pages.next_of, "c1"):
            pass
    assert pages.calls == ["c1", "c2"]


async def test_a_failed_prefetch_raises_when_the_consumer_reaches_it() -> None:
    pages = Pages(3)
    pages.errors["c1"] = RuntimeError("boom")
    got: list[int] = []
    with pytest.raises(RuntimeError, match="boom"):
        async for p in walk_cursor_prefetch(pages.fetch, pages.next_of):
            got.append(p[0])
    assert got == [0]


async def test_early_exit_cancels_the_prefetch_and_leaves_no_task() -> None:
    pages = Pages(5)
    pages.gates["c1"] = asyncio.Event()  # the prefetch of page 1 never completes by itself
    walk = walk_cursor_prefetch(pages.fetch, pages.next_of)
    async with contextlib.aclosing(walk):
        async for p in walk:
            assert p[0] == 0
            await settle()
            assert pages.calls == [None, "c1"]
            break
    assert pages.cancelled == ["c1"]
    assert other_tasks() == set()


async def test_a_failed_abandoned_prefetch_is_not_reported_as_unretrieved() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, ctx: reported.append(ctx))
    try:
        pages = Pages(3)
        pages.errors["c1"] = RuntimeError("nobody asked for this page")
        walk = walk_cursor_prefetch(pages.fetch, pages.next_of)
        async with contextlib.aclosing(walk):
            await walk.__anext__()
            await settle()  # the prefetch has failed by now
        gc.collect()
        await settle()
    finally:
        loop.set_exception_handler(None)
    assert reported == []
    assert other_tasks() == set()


async def test_plain_break_is_cleaned_up_by_the_finalizer() -> None:
    pages = Pages(5)
    pages.gates["c1"] = asyncio.Event()

    async def consume() -> None:
        async for _ in walk_cursor_prefetch(pages.fetch, pages.next_of):
            await settle()
            break

    await consume()
    gc.collect()
    await settle()
    assert pages.cancelled == ["c1"]
    assert other_tasks() == set()


async def test_cancelling_the_consumer_while_it_waits_for_the_prefetch() -> None:
    pages = Pages(5)
    pages.gates["c1"] = asyncio.Event()
    holding = asyncio.Event()

    async def consume() -> None:
        async with contextlib.aclosing(walk_cursor_prefetch(pages.fetch, pages.next_of)) as w:
            async for _ in w:
                holding.set()

    task = asyncio.create_task(consume())
    await holding.wait()
    await settle()  # the consumer is now waiting for page 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pages.cancelled == ["c1"]
    assert other_tasks() == set()


async def test_cancelling_the_consumer_while_it_holds_a_page() -> None:
    pages = Pages(5)
    pages.gates["c1"] = asyncio.Event()
    holding = asyncio.Event()
    never = asyncio.Event()

    async def consume() -> None:
        async with contextlib.aclosing(walk_cursor_prefetch(pages.fetch, pages.next_of)) as w:
            async for _ in w:
                holding.set()
                await never.wait()

    task = asyncio.create_task(consume())
    await holding.wait()
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pages.cancelled == ["c1"]
    assert other_tasks() == set()


async def test_flatten_closes_the_walk_underneath() -> None:
    pages = Pages(5)
    pages.gates["c1"] = asyncio.Event()
    items = flatten(walk_cursor_prefetch(pages.fetch, pages.next_of), lambda p: [p[0], p[0]])
    async with contextlib.aclosing(items):
        assert await items.__anext__() == 0
        await settle()
    assert pages.cancelled == ["c1"]
    assert other_tasks() == set()


async def test_plain_walker_fetches_only_on_demand() -> None:
    pages = Pages(3)
    walk = walk_cursor(pages.fetch, pages.next_of)
    async with contextlib.aclosing(walk):
        await walk.__anext__()
        await settle()
        assert pages.calls == [None]


# --------------------------------------------------------------------------- wiring into partner


async def test_trades_pipelines_pages_of_the_feed() -> None:
    feed = FeedServer({"acc-1": [[9, 8], [7, 6], [5]]})
    async with client(transport=feed.transport) as c:
        trades = c.partner.accounts.trades("acc-1")
        async with contextlib.aclosing(trades):
            first = await trades.__anext__()
            await settle(50)
            # While the consumer holds the first fill, page 2 is already in.
            assert feed.requests == [("acc-1", 0), ("acc-1", 1)]
            rest = [t async for t in trades]
    assert [first.trade_id] + [t.trade_id for t in rest] == [9, 8, 7, 6, 5]
    assert first.price == Decimal("0.4100")
    assert feed.requests == [("acc-1", 0), ("acc-1", 1), ("acc-1", 2)]


async def test_trade_pages_without_prefetch_requests_on_demand() -> None:
    feed = FeedServer({"acc-1": [[3], [2], [1]]})
    async with client(transport=feed.transport) as c:
        pages = c.partner.accounts.trade_pages("acc-1", prefetch=False)
        async with contextlib.aclosing(pages):
            page = await pages.__anext__()
            await settle(50)
            assert feed.requests == [("acc-1", 0)]
            assert page.next_cursor == "c1"


async def test_breaking_out_of_trades_leaves_nothing_running() -> None:
    feed = FeedServer({"acc-1": [[4, 3], [2], [1]]})
    async with (
        client(transport=feed.transport) as c,
        contextlib.aclosing(c.partner.accounts.trades("acc-1")) as trades,
    ):
        async for trade in trades:
            assert trade.trade_id == 4
            break
    assert other_tasks() == set()


async def test_cancelling_a_trades_consumer_in_its_loop_body_with_aclosing() -> None:
    # The consumer is cancelled while it works on a fill (not inside the generator):
    # ``aclosing`` still cancels and awaits the prefetch at once.
    feed = FeedServer({"acc-1": [[4, 3], [2], [1]]})
    holding = asyncio.Event()
    never = asyncio.Event()
    async with client(transport=feed.transport) as c:

        async def consume() -> None:
            async with contextlib.aclosing(c.partner.accounts.trades("acc-1")) as trades:
                async for _ in trades:
                    feed.gate = asyncio.Event()  # the prefetch of page 2 hangs
                    holding.set()
                    await never.wait()

        task = asyncio.create_task(consume())
        await holding.wait()
        await settle(50)
        assert feed.in_flight == 1  # the prefetch is running
        assert len(other_tasks() - {task}) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert feed.in_flight == 0
        assert other_tasks() == set()


async def test_an_error_page_surfaces_when_reached() -> None:
    feed = FeedServer({"acc-1": [[4], [3], [2]]}, fail={"acc-1": (1, 404)})
    got: list[int] = []
    async with client(transport=feed.transport) as c:
        with pytest.raises(NotFoundError):
            async for trade in c.partner.accounts.trades("acc-1"):
                got.append(trade.trade_id)
    assert got == [4]
