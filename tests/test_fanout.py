"""Fan-out: ``client.partner.accounts.trades_many`` and the ``fan_out`` machinery.

Requests are answered in memory by ``MockTransport``; rate-limit timing runs on
virtual time, so nothing sleeps for real.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from polysim_async import (
    Client,
    FanOutError,
    InvalidArgumentError,
    NotFoundError,
    RateLimit,
)
from polysim_async._fanout import fan_out

from ._helpers import LoopClock, VirtualTimeLoop, run_virtual
from .test_pipelining import BASE, FeedServer, other_tasks, settle


def client(**kwargs: Any) -> Client:
    kwargs.setdefault("rate_limit", None)
    kwargs.setdefault("max_retries", 0)
    return Client("tenant-key", BASE, **kwargs)


def feeds(accounts: int, pages: int, per_page: int = 3) -> dict[str, list[list[int]]]:
    """Account ``a<i>`` has ``pages`` pages of distinct, descending trade ids."""
    out: dict[str, list[list[int]]] = {}
    for a in range(accounts):
        base = (a + 1) * 10_000
        ids = list(range(base + pages * per_page, base, -1))
        out[f"a{a}"] = [ids[p * per_page : (p + 1) * per_page] for p in range(pages)]
    return out


async def collect(it: Any) -> list[tuple[str, int]]:
    return [(aid, t.trade_id) async for aid, t in it]


# --------------------------------------------------------------------------- results


async def test_every_fill_of_every_account_once_in_feed_order() -> None:
    pages = feeds(accounts=7, pages=3)
    feed = FeedServer(pages)
    async with client(transport=feed.transport) as c:
        got = await collect(c.partner.accounts.trades_many(list(pages), concurrency=3))
    expected = {aid: [t for page in p for t in page] for aid, p in pages.items()}
    per_account: dict[str, list[int]] = {}
    for aid, tid in got:
        per_account.setdefault(aid, []).append(tid)
    assert per_account == expected  # all fills, none twice, each account newest first
    assert feed.max_in_flight <= 3
    assert len(feed.requests) == 7 * 3


async def test_concurrency_is_used() -> None:
    pages = feeds(accounts=6, pages=2)
    feed = FeedServer(pages)
    feed.gate = asyncio.Event()
    async with client(transport=feed.transport) as c:
        task = asyncio.create_task(
            collect(c.partner.accounts.trades_many(list(pages), concurrency=4))
        )
        await settle(100)
        assert feed.in_flight == 4  # four accounts are being pulled at once
        feed.gate.set()
        got = await task
    assert len(got) == 6 * 2 * 3


async def test_no_accounts_yields_nothing() -> None:
    async with client() as c:
        assert await collect(c.partner.accounts.trades_many([])) == []


async def test_resume_cursors_are_honoured() -> None:
    pages = feeds(accounts=2, pages=3)
    feed = FeedServer(pages)
    async with client(transport=feed.transport) as c:
        got = await collect(c.partner.accounts.trades_many(["a0", "a1"], cursors={"a1": "c2"}))
    assert Counter(aid for aid, _ in got) == {"a0": 9, "a1": 3}
    assert ("a1", 0) not in feed.requests


# --------------------------------------------------------------------------- errors


async def test_on_error_raise_cancels_the_rest_and_names_the_account() -> None:
    pages = feeds(accounts=5, pages=4)
    feed = FeedServer(pages, fail={"a2": (1, 404)})
    async with client(transport=feed.transport) as c:
        with pytest.raises(FanOutError) as info:
            await collect(c.partner.accounts.trades_many(list(pages), concurrency=5))
    err = info.value
    assert list(err.failures) == ["a2"]
    assert isinstance(err.failures["a2"], NotFoundError)
    assert err.__cause__ is err.failures["a2"]
    assert "a2" in str(err)
    assert other_tasks() == set()


async def test_on_error_continue_finishes_the_others_then_raises_with_resume_cursors() -> None:
    pages = feeds(accounts=4, pages=3)
    feed = FeedServer(pages, fail={"a1": (2, 404), "a3": (0, 404)})
    got: list[tuple[str, int]] = []
    async with client(transport=feed.transport) as c:
        with pytest.raises(FanOutError) as info:
            async for aid, trade in c.partner.accounts.trades_many(
                list(pages), concurrency=2, on_error="continue"
            ):
                got.append((aid, trade.trade_id))
    counts = Counter(aid for aid, _ in got)
    assert counts == {"a0": 9, "a2": 9, "a1": 6}  # a1 delivered two full pages, a3 none
    err = info.value
    assert set(err.failures) == {"a1", "a3"}
    assert err.resume_cursors == {"a1": "c2", "a3": None}
    assert err.completed == {"a0", "a2"}


async def test_on_error_raise_gives_a_resume_cursor_for_every_unfinished_key() -> None:
    go = asyncio.Event()
    never = asyncio.Event()

    async def walk(key: str) -> AsyncIterator[tuple[list[str], str | None]]:
        if key == "done":
            yield [f"{key}0"], None  # its only page
        elif key == "stuck":
            yield [f"{key}0"], "stuck-c1"
            await never.wait()  # cancelled mid-walk
        elif key == "bad":
            yield [f"{key}0"], "bad-c1"
            await go.wait()
            raise NotFoundError("no such account", status=404)
        else:
            await never.wait()  # "later1" starts but delivers nothing; "later2" never starts
            yield [key], None

    keys = ["done", "stuck", "bad", "later1", "later2"]
    got: list[str] = []
    with pytest.raises(FanOutError) as info:
        async for _, item in fan_out(
            keys,
            walk,
            items=lambda p: p[0],
            pair=lambda key, item: (key, item),
            checkpoint=lambda p: p[1],
            start=lambda key: f"{key}-start",
            concurrency=3,
            on_error="raise",
        ):
            got.append(item)
            if {"done0", "stuck0", "bad0"} <= set(got):
                go.set()
    err = info.value
    assert list(err.failures) == ["bad"]
    assert err.resume_cursors == {
        "bad": "bad-c1",
        "stuck": "stuck-c1",
        "later1": "later1-start",
        "later2": "later2-start",
    }
    assert err.completed == {"done"}
    assert other_tasks() == set()


async def test_a_bug_in_a_walk_propagates_unwrapped() -> None:
    async def walk(key: str) -> Any:
        if key == "bad":
            raise KeyError(key)
        yield [1, 2]

    with pytest.raises(KeyError):
        async for _ in fan_out(
            ["ok", "bad"],
            walk,
            items=lambda p: p,
            pair=lambda key, item: (key, item),
            checkpoint=lambda p: None,
            concurrency=2,
        ):
            pass
    assert other_tasks() == set()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": True}, "concurrency"),
        ({"on_error": "ignore"}, "on_error"),
        ({"page_size": 501}, "page_size"),
        ({"side": "HOLD"}, "side"),
    ],
)
async def test_bad_options_fail_before_anything_is_sent(
    kwargs: dict[str, Any], message: str
) -> None:
    async with client() as c:
        with pytest.raises(InvalidArgumentError, match=message):
            c.partner.accounts.trades_many(["a0"], **kwargs)


@pytest.mark.parametrize("ids", ["a0", ["a0", "a0"], ["a0", " "], [None]])
async def test_bad_account_ids_fail_before_anything_is_sent(ids: Any) -> None:
    async with client() as c:
        with pytest.raises(InvalidArgumentError):
            c.partner.accounts.trades_many(ids)


@pytest.mark.parametrize(
    ("cursors", "message"),
    [
        ({"a1": ""}, r"cursors\['a1'\]"),  # only a later account's cursor is bad
        ({"a1": "c" * 5000}, r"cursors\['a1'\]"),
        ({"a1": 7}, r"cursors\['a1'\]"),
        ({"a0": "c1", "zz": "c1"}, "not in account_ids"),
        (["a0"], "cursors must be a mapping"),
    ],
)
async def test_every_cursor_is_checked_before_anything_is_sent(cursors: Any, message: str) -> None:
    pages = feeds(accounts=2, pages=2)
    feed = FeedServer(pages)
    async with client(transport=feed.transport) as c:
        with pytest.raises(InvalidArgumentError, match=message):
            c.partner.accounts.trades_many(list(pages), cursors=cursors)
        await settle(20)
    assert feed.requests == []
    assert other_tasks() == set()


# --------------------------------------------------------------------------- cleanup


async def test_early_exit_cancels_every_worker() -> None:
    pages = feeds(accounts=6, pages=5)
    feed = FeedServer(pages)
    async with client(transport=feed.transport) as c:
        many = c.partner.accounts.trades_many(list(pages), concurrency=4)
        async with contextlib.aclosing(many):
            async for _ in many:
                await settle(20)
                feed.gate = asyncio.Event()  # the workers' next requests hang
                await settle(50)
                break
    assert other_tasks() == set()
    assert len(feed.requests) < 6 * 5


async def test_cancelling_the_consumer_cancels_every_worker() -> None:
    pages = feeds(accounts=6, pages=5)
    feed = FeedServer(pages)
    feed.gate = asyncio.Event()
    async with client(transport=feed.transport) as c:

        async def consume() -> None:
            many = c.partner.accounts.trades_many(list(pages), concurrency=4)
            async with contextlib.aclosing(many):
                async for _ in many:
                    pass

        task = asyncio.create_task(consume())
        await settle(100)
        assert feed.in_flight == 4
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert other_tasks() == set()


async def test_cancelling_the_consumer_in_its_loop_body_with_aclosing_leaves_no_worker() -> None:
    # ``async for`` alone would leave the generator suspended and its workers running
    # until garbage collection; ``aclosing`` (as the docstring shows) closes it at once.
    pages = feeds(accounts=6, pages=5)
    feed = FeedServer(pages)
    holding = asyncio.Event()
    never = asyncio.Event()
    async with client(transport=feed.transport) as c:

        async def consume() -> None:
            many = c.partner.accounts.trades_many(list(pages), concurrency=4)
            async with contextlib.aclosing(many) as pairs:
                async for _ in pairs:
                    feed.gate = asyncio.Event()  # the workers' next requests hang
                    holding.set()
                    await never.wait()  # cancelled here, inside the loop body

        task = asyncio.create_task(consume())
        await holding.wait()
        await settle(50)
        assert len(other_tasks() - {task}) == 4  # the workers are pulling
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert other_tasks() == set()


# --------------------------------------------------------------------------- rate budget


def test_the_shared_budget_is_saturated_but_never_exceeded() -> None:
    grants: list[float] = []
    pages = feeds(accounts=20, pages=3, per_page=2)
    feed = FeedServer(pages)
    budget = RateLimit(margin=0, per_second=5, per_minute=40)

    async def main(loop: VirtualTimeLoop) -> list[tuple[str, int]]:
        async with client(
            transport=feed.transport, rate_limit=budget, clock=LoopClock(), deadline=None
        ) as c:
            acquire = c.limiter.acquire

            async def recording_acquire(deadline: float | None = None) -> None:
                await acquire(deadline)
                grants.append(loop.time())

            c.limiter.acquire = recording_acquire  # type: ignore[method-assign]
            return await collect(c.partner.accounts.trades_many(list(pages), concurrency=6))

    got = run_virtual(main)
    assert len(got) == 20 * 3 * 2
    assert len(grants) == len(feed.requests) == 60
    # Never exceeded: no sliding one-second window holds more than 5 grants, no
    # sixty-second window more than 40.
    for i, s in enumerate(grants):
        assert sum(1 for x in grants[i:] if x < s + 1.0) <= 5
        assert sum(1 for x in grants[i:] if x < s + 60.0) <= 40
    # Saturated: 5 per second until the minute budget (40) is spent, then the
    # rest as soon as the minute window rolls over, 5 per second again.
    assert grants[39] - grants[0] == pytest.approx(7.0, abs=0.01)
    assert grants[40] - grants[0] == pytest.approx(60.0, abs=0.01)
    assert grants[-1] - grants[40] == pytest.approx(3.0, abs=0.01)
