"""``watch_trades(store=..., key=..., shard=...)``: watermarks saved as fills are acknowledged,
accounts split by shard, taken over from a watcher cut off from the store, handed back when
its shard has a worker again; every fill acknowledged exactly once. On virtual time with an
in-memory store (the Redis proof with a SIGKILLed process is tests/redis/test_watchers.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any

import pytest

import polysim_async as ps
from polysim_async._shard import select_shard

from ._helpers import virtual
from ._memory_store import MemoryStore
from .test_watch import collect, feed_client, ids

KEY = "fills"
ACCOUNTS = [f"acc-{i}" for i in range(8)]
SHARDS = [set(select_shard(ACCOUNTS, (i, 2))) for i in range(2)]


def saved(store: MemoryStore) -> dict[str, list[int]]:
    """Per account, the order ids of the watermarks saved for it, in order."""
    out: dict[str, list[int]] = defaultdict(list)
    for key, value, _owner in store.puts:
        if key.startswith(f"{KEY}:account:"):
            out[key.removeprefix(f"{KEY}:account:")].append(value.order_id)
    return dict(out)


def watch(client: ps.Client, store: MemoryStore, ids: list[str], **kwargs: Any) -> ps.TradeWatch:
    kwargs.setdefault("interval", 0.01)
    return client.partner.accounts.watch_trades(ids, store=store, key=KEY, **kwargs)


@virtual
async def test_one_watcher_saves_as_fills_are_acknowledged_and_resumes_from_the_store() -> None:
    async with feed_client() as (feed, client):
        store = MemoryStore(client.clock)
        feed.add("a", 3)
        feed.trades["b"] = []
        async with watch(client, store, ["a", "b"]) as w:
            await asyncio.sleep(0.05)
            assert w.owned == {"a", "b"}
            # The starting points are saved before any fill is handed over.
            assert saved(store) == {"a": [3], "b": [0]}
            first = feed.add("a", 2) + feed.add("b", 2)
            got = await collect(w, 3)
            # Asking for the third fill acknowledged the second: the third is in hand.
            assert sum(len(v) - 1 for v in saved(store).values()) == 2
        # Leaving the block normally acknowledges the fill in hand; the 4th was never handed.
        acked = saved(store)
        assert acked["a"][1:] + acked["b"][1:] == sorted(ids(got))
        assert store.holder(f"{KEY}:account:a") is None  # released on exit
        later = feed.add("a", 1)
        async with watch(client, store, ["a", "b"]) as w:
            rest = await collect(w, 2)
    assert sorted(ids(got) + ids(rest)) == sorted(first + later)


@virtual
async def test_leaving_with_an_error_does_not_acknowledge_the_fill_in_hand() -> None:
    async with feed_client() as (feed, client):
        store = MemoryStore(client.clock)
        feed.trades["a"] = []
        with pytest.raises(RuntimeError):
            async with watch(client, store, ["a"]) as w:
                await asyncio.sleep(0.05)
                new = feed.add("a", 2)
                await collect(w, 1)
                raise RuntimeError("the handler failed")
        assert saved(store) == {"a": [0]}
        async with watch(client, store, ["a"]) as w:
            again = await collect(w, 2)
    assert ids(again) == new  # the failed fill comes again


@virtual
async def test_a_second_watcher_stands_by_and_takes_over_once_the_lease_runs_out() -> None:
    async with feed_client() as (feed, client):
        store = MemoryStore(client.clock)
        feed.trades["a"] = []
        first = watch(client, store, ["a"], lease_ttl=3.0)
        standby = watch(client, store.view(), ["a"], lease_ttl=3.0)
        async with first, standby:
            await asyncio.sleep(0.5)
            assert first.owned == {"a"} and standby.owned == frozenset()
            store.down = True  # the first is cut off from the store (a crash, for it)
            await asyncio.sleep(5)
            assert standby.owned == {"a"}
            assert first.owned == frozenset() and first.stats.lost == 1
            new = feed.add("a", 2)
            got = await collect(standby, 2)
            store.down = False
    assert ids(got) == new


async def run_until(cond: Any, limit: float = 120.0) -> None:
    """Sleep (virtual time) in small steps until ``cond()`` holds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not cond():
        assert loop.time() < end, "condition never held"
        await asyncio.sleep(0.1)


class Watcher:
    """A watch with ``shard`` on a store, and a consumer task recording what it was handed."""

    def __init__(self, client: ps.Client, store: MemoryStore, index: int) -> None:
        self.store = store
        self.watch = watch(client, store, ACCOUNTS, interval=0.05, shard=(index, 2), lease_ttl=3)
        self.handed: list[tuple[str, int]] = []
        self.task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        async with self.watch:
            async for item in self.watch:
                self.handed.append((item.account_id, item.trade.order_id))
                await asyncio.sleep(0.01)  # a consumer doing some work

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@virtual
async def test_two_watchers_split_take_over_and_hand_back_each_fill_acknowledged_once() -> None:
    async with feed_client() as (feed, client):
        store = MemoryStore(client.clock)
        for aid in ACCOUNTS:
            feed.trades[aid] = []
        expected: list[tuple[str, int]] = []

        async def trade(rounds: int) -> None:
            for r in range(rounds):
                aid = ACCOUNTS[r % len(ACCOUNTS)]
                expected.extend((aid, oid) for oid in feed.add(aid, 1 + r % 3))
                await asyncio.sleep(0.1)

        w0, w1 = Watcher(client, store.view(), 0), Watcher(client, store.view(), 1)
        await asyncio.sleep(1)
        assert (w0.watch.owned, w1.watch.owned) == (SHARDS[0], SHARDS[1])  # a split
        await trade(40)
        # w1 is cut off from the store (it keeps running, as a stalled or partitioned
        # process would): its leases run out, w0 takes its accounts over.
        w1.store.down = True
        await trade(100)
        assert w0.watch.owned == set(ACCOUNTS) and w1.watch.owned == frozenset()
        assert w1.watch.stats.lost == len(SHARDS[1])
        # A new worker for shard 1 starts: w0 hands its accounts back.
        w1b = Watcher(client, store.view(), 1)
        await trade(100)
        assert (w0.watch.owned, w1b.watch.owned) == (SHARDS[0], SHARDS[1])
        assert w0.watch.stats.handed_back == len(SHARDS[1])
        live = (w0, w1b)
        # Done when every fill was handed over (by some watcher) and nothing waits.
        await run_until(
            lambda: (
                set(expected) <= {f for w in (w0, w1, w1b) for f in w.handed}
                and all(w.watch._out.empty() for w in live)
            )
        )
        in_hand = {w.handed[-1] for w in live if w.handed}
        for w in (w0, w1, w1b):
            await w.stop()

    # Every fill is acknowledged exactly once, in order, across the three watchers:
    # per account, the saved watermarks are its starting point, then each fill once.
    acked = saved(store)
    for aid in ACCOUNTS:
        fills = [oid for a, oid in expected if a == aid]
        assert acked[aid][0] == 0  # the starting point: no fill yet
        assert acked[aid][1:] == fills[: len(acked[aid]) - 1]
        assert set(fills[len(acked[aid]) - 1 :]) <= {oid for a, oid in in_hand if a == aid}
    # Nothing handed twice by one watcher; a fill handed by two watchers is one the
    # cut-off watcher could not acknowledge any more.
    for w in (w0, w1, w1b):
        assert len(w.handed) == len(set(w.handed))
    acked_by = {
        (key.removeprefix(f"{KEY}:account:"), value.order_id): owner
        for key, value, owner in store.puts
    }
    w1_owner = w1.watch._claims.keeper.owner  # type: ignore[union-attr]
    for fill in set(w1.handed) & (set(w0.handed) | set(w1b.handed)):
        assert acked_by.get(fill) != w1_owner


@virtual
async def test_without_a_store_shard_selects_the_accounts() -> None:
    async with feed_client() as (feed, client):
        for aid in ACCOUNTS:
            feed.add(aid, 1)
        w = client.partner.accounts.watch_trades(ACCOUNTS, interval=0.01, shard=(1, 2))
        async with w:
            await asyncio.sleep(0.05)
            assert w.owned == SHARDS[1] and set(w.watermarks) == SHARDS[1]
        assert set(feed.requests) == SHARDS[1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": "x"}, "store="),
        ({"store": "store"}, "CheckpointStore"),
        ({"store": MemoryStore(ps.SYSTEM_CLOCK)}, "key="),
        ({"store": MemoryStore(ps.SYSTEM_CLOCK), "key": ""}, "key"),
        ({"shard": (2, 2)}, "shard"),
        ({"store": MemoryStore(ps.SYSTEM_CLOCK), "key": "k", "lease_ttl": 0}, "ttl"),
        # Below a second a lease changes hands on every slow round trip.
        ({"store": MemoryStore(ps.SYSTEM_CLOCK), "key": "k", "lease_ttl": 0.05}, "at least 1 s"),
    ],
)
def test_bad_options_are_refused_at_once(kwargs: dict[str, Any], message: str) -> None:
    client = ps.Client("tk_x", "https://api.test")
    with pytest.raises(ps.InvalidArgumentError, match=message):
        client.partner.accounts.watch_trades(["a"], **kwargs)
