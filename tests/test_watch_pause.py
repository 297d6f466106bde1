"""A watcher whose process was paused past its lease ttl (SIGSTOP, a long GC, a swapped-out
host) hands over no fill queued under a lease that ran out meanwhile, even though its renewal
task has not run yet to notice: another watcher may already deliver that fill."""

from __future__ import annotations

import asyncio

from ._helpers import VirtualTimeLoop, virtual
from ._memory_store import MemoryStore
from .test_watch import feed_client, ids

KEY = "fills"


@virtual
async def test_a_queued_fill_is_not_handed_over_after_a_pause_past_the_lease_ttl() -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    async with feed_client() as (feed, client):
        store = MemoryStore(client.clock)
        feed.trades["a"], feed.trades["b"] = [], []
        watch = client.partner.accounts.watch_trades(
            ["a", "b"], store=store, key=KEY, interval=0.01, lease_ttl=3.0
        )
        async with watch:
            await asyncio.sleep(0.05)  # both starting points read and saved
            feed.add("a", 1)
            feed.add("b", 1)
            await asyncio.sleep(0.05)  # both fills queued
            first = await anext(watch)
            assert watch._out.qsize() == 1  # the other account's fill waits in the queue
            claimed = watch.stats.claimed
            # The process stops for 5 s (ttl 3 s): both leases run out, and the consumer
            # runs before the renewal task, as on resuming from SIGSTOP.
            loop.virtual_now += 5.0
            # Another watcher takes the queued fill's account over in the meantime.
            other = "b" if first.account_id == "a" else "a"
            taken = await store.view().acquire_lease(
                f"{KEY}:account:{other}", owner="successor", ttl=60
            )
            assert taken is not None
            nxt = asyncio.ensure_future(anext(watch))
            await asyncio.sleep(1.0)
            # Only the fill in hand (not acknowledged: its lease ran out too) comes again,
            # once this watcher took its account back; the queued one was dropped.
            assert nxt.done()
            again = nxt.result()
            assert ids([again]) == ids([first]) and again.account_id == first.account_id
            assert (watch.stats.lost, watch.stats.discarded) == (2, 1)
            assert watch.stats.claimed == claimed + 1
            assert watch.owned == {first.account_id}
