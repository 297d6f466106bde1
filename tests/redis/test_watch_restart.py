"""A running trade watch whose Redis restarts without its memory (no persistence).

The watch loses its leases, takes them again and finds nothing saved: it must go
on after the last fill it handed over (the watermark it holds in memory), not
from each account's newest fill, which would skip the fills made meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import polysim_async as ps
from tests.test_watch import collect, feed_client, ids

from ._server import RedisServer

KEY = "fills"


async def until(cond: Callable[[], object], what: str, limit: float = 60.0) -> None:
    # Real time (Redis expires and refuses on its own clock); the limit only ends a hung test.
    for _ in range(int(limit / 0.01)):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_watch_resumes_from_its_own_watermark_when_redis_comes_back_empty(
    own_redis: RedisServer, name: str
) -> None:
    async with (
        feed_client() as (feed, client),
        ps.RedisCheckpointStore(own_redis.url, namespace=name) as store,
    ):
        feed.add("a", 3)
        feed.trades["b"] = []
        watch = client.partner.accounts.watch_trades(
            ["a", "b"], interval=0.01, store=store, key=KEY, lease_ttl=1.0
        )
        async with watch as w:
            await until(lambda: w.owned == {"a", "b"}, "both accounts claimed")
            await until(lambda: w.stats.polls >= 4, "the starting points read")
            before = feed.add("a", 2) + feed.add("b", 1)
            got = await collect(w, 3, timeout=60)
            own_redis.stop()
            own_redis.restart()  # empty: no lease, no watermark
            during = feed.add("a", 2) + feed.add("b", 2)
            await until(lambda: w.stats.claimed >= 4, "the accounts claimed again")
            after = feed.add("b", 1)
            rest = await collect(w, 5, timeout=60)
        saved = {aid: await store.get(f"{KEY}:account:{aid}", ps.Watermark) for aid in "ab"}
    assert w.stats.lost >= 2
    assert sorted(ids(got)) == sorted(before)
    # Every fill made around the restart comes, none twice, each account in order.
    assert sorted(ids(rest)) == sorted(during + after)
    assert ids(rest, "a") == sorted(ids(rest, "a")) and ids(rest, "b") == sorted(ids(rest, "b"))
    # And the new watermarks went to the restarted Redis.
    assert saved["a"] is not None and saved["a"].order_id == max(ids(rest, "a"))
    assert saved["b"] is not None and saved["b"].order_id == max(ids(rest, "b"))
