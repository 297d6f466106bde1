"""Static checks of the shared budget and checkpoint store types: run by mypy, never executed."""

from __future__ import annotations

import msgspec
from typing_extensions import assert_type

import polysim_async as ps


class Position(msgspec.Struct):
    cursor: str


async def shared_budget() -> None:
    limit = ps.RedisRateLimit("redis://localhost:6379/0", name="tenant", expected_workers=4)
    limiter: ps.Limiter = limit  # RedisRateLimit implements the protocol
    async with ps.Client("tk_live_x", rate_limit=limiter) as client:
        assert_type(client.limiter, ps.Limiter)
    assert_type(limit.stats, ps.RedisLimiterStats)
    assert_type(limit.available, bool)


async def checkpoints(store: ps.CheckpointStore) -> None:
    for concrete in (ps.SQLiteCheckpointStore("cp.db"), ps.RedisCheckpointStore("redis://r")):
        _: ps.CheckpointStore = concrete
    lease = await store.acquire_lease("account:1", owner="w1", ttl=30)
    assert_type(lease, ps.Lease | None)
    if lease is not None:
        assert_type(await store.renew_lease(lease), ps.Lease)
        await store.put("watch:1", Position(cursor="c"), lease=lease)
    assert_type(await store.get("watch:1", Position), Position | None)
