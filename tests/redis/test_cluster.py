"""On Redis Cluster: every script's keys share one hash slot (else CROSSSLOT).

A one-node cluster owning all 16,384 slots still refuses a script whose keys
hash to different slots, so it proves the hash tags; ``cluster=True`` runs
through redis-py's ``RedisCluster`` client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis.asyncio as redis_asyncio

import polysim_async as ps

from ._server import RedisServer
from .conftest import ManualClock


@pytest.fixture(scope="module")
def cluster_node() -> Iterator[RedisServer]:
    server = RedisServer("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
    server.start()

    async def assign_slots() -> None:
        async with redis_asyncio.Redis.from_url(server.url) as r:
            await r.execute_command("CLUSTER ADDSLOTS", *range(16384))
            for _ in range(500):  # setup: until the node reports the cluster up
                info = await r.execute_command("CLUSTER INFO")  # parsed into a dict
                if "cluster_state" in str(info) and "ok" in str(info.get("cluster_state")):
                    return
                await asyncio.sleep(0.01)
            raise RuntimeError("the one-node cluster did not come up")

    try:
        asyncio.run(assign_slots())
        yield server
    finally:
        server.close()


async def test_limiter_runs_on_a_cluster(cluster_node: RedisServer, name: str) -> None:
    clock = ManualClock()
    async with (
        ps.RedisRateLimit(
            cluster_node.url,
            name=name,
            per_second=2,
            cluster=True,
            on_unavailable="raise",
            clock=clock,
        ) as limit,
        ps.RedisRateLimit(cluster_node.url, name=name, cluster=True, clock=clock) as other,
    ):
        for _ in range(5):
            await limit.acquire()
        assert clock.t - 1000.0 >= 2.0  # 5 turns at 2/s: two full windows waited
        limit.pause(30)
        assert limit._publisher is not None
        await limit._publisher
        with pytest.raises(ps.DeadlineExceededError):
            await other.acquire(deadline=clock.now() + 5)
        assert limit.stats.shared == 5


async def test_store_runs_on_a_cluster(cluster_node: RedisServer, name: str) -> None:
    async with ps.RedisCheckpointStore(cluster_node.url, namespace=name, cluster=True) as store:
        lease = await store.acquire_lease("account:1", owner="w1", ttl=30)
        assert lease is not None
        await store.put("watch:account:1", {"n": 1}, lease=lease)
        assert await store.get("watch:account:1", dict) == {"n": 1}
        await store.renew_lease(lease)
        await store.delete("watch:account:1", lease=lease)
        await store.release_lease(lease)


async def test_keys_without_a_shared_tag_are_refused(cluster_node: RedisServer) -> None:
    # The control: what the hash tags prevent.
    async with redis_asyncio.Redis.from_url(cluster_node.url) as r:
        with pytest.raises(Exception, match="same slot"):
            await r.eval("return redis.call('MGET', KEYS[1], KEYS[2])", 2, "a", "b")
