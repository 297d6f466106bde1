"""``executions.stream(store=..., key=...)``: one owner at a time under a lease, the checkpoint
saved as fills are acknowledged, resumed after a restart or by a standby that takes over.
On virtual time with an in-memory store (the same on a real Redis: tests/redis/test_streams.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import polysim_async as ps

from ._helpers import virtual
from ._memory_store import MemoryStore
from .test_stream import FAST, ids, running, take, until

KEY = "executions:alice"


def stream(client: ps.Client, store: Any, **kwargs: Any) -> Any:
    return client.executions.stream(policy=FAST, store=store, key=KEY, **kwargs)


@virtual
async def test_the_checkpoint_is_saved_as_fills_are_acknowledged_and_a_restart_resumes() -> None:
    async with running() as (ex, client):
        store = MemoryStore(client.clock)
        await ex.fill(2, push=False)  # before the first start: history, not delivered
        async with stream(client, store) as fills:
            await until(lambda: ex.live)
            await ex.fill(5)
            got = await take(fills, 3)  # 1..2 acknowledged, 3 in hand
            assert len(store.puts) == 1 + 2  # the starting point, then one save per ack
            assert store.holder(KEY) is not None
        # Leaving normally acknowledged the fill in hand (5), then released the lease.
        assert len(store.puts) == 1 + 3 and store.holder(KEY) is None
        await ex.fill(2, push=False)  # while no process runs
        async with stream(client, store, gaps=True) as fills:
            rest = await take(fills, 4)
    # Started from the saved checkpoint: a resume, announced as one.
    assert isinstance(rest[0], ps.StreamGap) and rest[0].reason == "resume"
    # Fills 6 and 7 (queued, never handed over) and 8, 9 (made while down) come after a restart.
    assert ids(got) == [3, 4, 5] and ids(rest) == [6, 7, 8, 9]


@virtual
async def test_leaving_with_an_error_does_not_acknowledge_the_fill_in_hand() -> None:
    async with running() as (ex, client):
        store = MemoryStore(client.clock)
        with pytest.raises(RuntimeError):
            async with stream(client, store) as fills:
                await until(lambda: ex.live)
                await ex.fill(3)
                await take(fills, 2)
                raise RuntimeError("the handler failed on fill 2")
        async with stream(client, store) as fills:
            again = await take(fills, 2)
    assert ids(again) == [2, 3]


@virtual
async def test_a_standby_waits_for_the_lease_and_takes_over_from_the_last_acknowledged_fill() -> (
    None
):
    async with running() as (ex, client):
        store = MemoryStore(client.clock)
        first = stream(client, store, lease_ttl=3.0)
        standby = stream(client, store.view(), lease_ttl=3.0)
        async with first:
            await until(lambda: ex.live)
            await ex.fill(4)
            assert ids(await take(first, 2)) == [1, 2]  # 1 acknowledged, 2 in hand
            entering = asyncio.ensure_future(standby.__aenter__())
            await asyncio.sleep(10)
            assert not entering.done()  # the lease is held: the standby waits
            store.down = True  # the first process is cut off from the store (a crash, for it)
            await entering
            assert ids(await take(standby, 3)) == [2, 3, 4]  # 2 again: it was never acknowledged
            with pytest.raises(ps.LeaseLostError):
                await take(first, 1)
            store.down = False
        await standby.__aexit__(None, None, None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": "x"}, "store="),
        ({"store": "store", "key": "x"}, "CheckpointStore"),
        ({"store": MemoryStore(ps.SYSTEM_CLOCK)}, "key="),
        ({"store": MemoryStore(ps.SYSTEM_CLOCK), "key": ""}, "key"),
        ({"store": MemoryStore(ps.SYSTEM_CLOCK), "key": "k", "lease_ttl": -1}, "ttl"),
        ({"store": MemoryStore(ps.SYSTEM_CLOCK), "key": "k", "lease_ttl": 0.5}, "at least 1 s"),
    ],
)
def test_bad_store_options_are_refused_at_once(kwargs: dict[str, Any], message: str) -> None:
    client = ps.Client("ps_live_x", "https://api.test")
    with pytest.raises(ps.InvalidArgumentError, match=message):
        client.executions.stream(**kwargs)
