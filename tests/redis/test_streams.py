"""The execution stream on a RedisCheckpointStore: it resumes from the store after a restart,
and a second process's stream waits while the first holds the lease."""

from __future__ import annotations

import asyncio
import contextlib

import polysim_async as ps
from tests.test_stream import FAST, ids, running, take, until

from ._server import RedisServer


async def test_the_stream_resumes_from_redis_after_a_restart(
    redis_server: RedisServer, name: str
) -> None:
    async with (
        running() as (ex, client),
        ps.RedisCheckpointStore(redis_server.url, namespace=name) as store,
    ):

        def stream() -> ps.FillStream[ps.Fill]:
            return client.executions.stream(policy=FAST, store=store, key="executions")

        async with stream() as fills:
            await until(lambda: ex.live)
            await ex.fill(5)
            got = await take(fills, 3)
            # Another process's stream on the same key waits while this one runs.
            other = stream()
            entering = asyncio.ensure_future(other.__aenter__())
            await asyncio.sleep(0.2)
            assert not entering.done()
            entering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await entering
        saved = await store.get("executions", ps.StreamCheckpoint)
        assert saved is not None and max(saved.delivered).order_id == 3
        await ex.fill(2, push=False)  # while no process runs
        async with stream() as fills:
            rest = await take(fills, 4)
    assert ids(got) == [1, 2, 3] and ids(rest) == [4, 5, 6, 7]


async def test_a_stream_whose_redis_lost_its_memory_ends_and_resumes_from_its_checkpoint(
    own_redis: RedisServer, name: str
) -> None:
    """It never restarts from "newest" on its own: it ends with LeaseLostError, and a new stream
    given ``since=old.checkpoint`` (which counts while nothing is saved) skips nothing."""
    async with (
        running() as (ex, client),
        ps.RedisCheckpointStore(own_redis.url, namespace=name) as store,
    ):

        def stream(**kwargs: object) -> ps.FillStream[ps.Fill]:
            return client.executions.stream(
                policy=FAST, store=store, key="executions", lease_ttl=1.0, **kwargs
            )

        fills = stream()
        with contextlib.suppress(ps.LeaseLostError):
            async with fills:
                await until(lambda: ex.live)
                await ex.fill(3)
                got = await take(fills, 3)
                own_redis.stop()
                own_redis.restart()  # empty: no lease, no checkpoint
                await ex.fill(2, push=False)  # made while nobody listens
                await take(fills, 10)  # ends with the lease
        checkpoint = fills.checkpoint
        assert checkpoint is not None
        assert await store.get("executions", ps.StreamCheckpoint) is None
        async with stream(since=checkpoint) as again:
            rest = await take(again, 2)
    assert ids(got) == [1, 2, 3] and ids(rest) == [4, 5]
