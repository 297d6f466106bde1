"""Checkpoint stores (SQLite and Redis): atomic values, leases with expiry, fenced writes.

Both stores run the same tests. Lease expiry is made to happen without
waiting: the SQLite store's clock is moved forward; in Redis the lease key is
removed, which is what its expiry does (one test below lets a real lease
expire after its holder was killed).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as redis_asyncio

import polysim_async as ps

from ._server import RedisServer, free_port
from .conftest import ManualClock

ROOT = Path(__file__).resolve().parents[2]


class Position(msgspec.Struct):
    cursor: str
    count: int


Expire = Callable[[ps.Lease], Awaitable[None]]


@pytest.fixture(params=["sqlite", "redis"])
async def store_and_expire(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer, name: str
) -> AsyncIterator[tuple[ps.CheckpointStore, Expire]]:
    if request.param == "sqlite":
        clock = ManualClock()
        sqlite_store = ps.SQLiteCheckpointStore(tmp_path / "cp.db", clock=clock)

        async def advance(lease: ps.Lease) -> None:
            clock.t += lease.ttl + 0.001

        yield sqlite_store, advance
        await sqlite_store.aclose()
    else:
        redis_store = ps.RedisCheckpointStore(redis_server.url, namespace=name)

        async def drop(lease: ps.Lease) -> None:
            async with redis_asyncio.Redis.from_url(redis_server.url) as r:
                await r.delete(f"polysim:cp:{{{name}}}:l:{lease.name}")

        yield redis_store, drop
        await redis_store.aclose()


async def test_values_round_trip(store_and_expire: tuple[ps.CheckpointStore, Expire]) -> None:
    store, _ = store_and_expire
    assert isinstance(store, ps.CheckpointStore)
    assert await store.get("watch:acc-1", Position) is None
    await store.put("watch:acc-1", Position(cursor="c1", count=3))
    await store.put("watch:acc-1", Position(cursor="c2", count=4))
    assert await store.get("watch:acc-1", Position) == Position(cursor="c2", count=4)
    await store.put("manifest", {"files": ["a.parquet"], "done": False})
    assert await store.get("manifest", dict) == {"files": ["a.parquet"], "done": False}
    with pytest.raises(ps.DecodeError, match="manifest"):
        await store.get("manifest", Position)
    with pytest.raises(ps.InvalidArgumentError, match="encodable"):
        await store.put("bad", object())
    await store.delete("watch:acc-1")
    await store.delete("never-there")
    assert await store.get("watch:acc-1", Position) is None


async def test_one_holder_at_a_time(store_and_expire: tuple[ps.CheckpointStore, Expire]) -> None:
    store, _ = store_and_expire
    first = await store.acquire_lease("account:1", owner="w1", ttl=30)
    assert first is not None
    assert (first.name, first.owner, first.ttl) == ("account:1", "w1", 30)
    assert await store.acquire_lease("account:1", owner="w2", ttl=30) is None
    assert await store.acquire_lease("account:1", owner="w1", ttl=30) is None  # held is held
    assert await store.renew_lease(first) == first
    other = await store.acquire_lease("account:2", owner="w2", ttl=30)
    assert other is not None
    await store.release_lease(first)
    second = await store.acquire_lease("account:1", owner="w2", ttl=30)
    assert second is not None and second.token > first.token
    await store.release_lease(first)  # a lost lease: releasing it does nothing
    assert await store.acquire_lease("account:1", owner="w3", ttl=30) is None


async def test_expired_lease_is_taken_over_and_its_writes_are_fenced(
    store_and_expire: tuple[ps.CheckpointStore, Expire],
) -> None:
    store, expire = store_and_expire
    old = await store.acquire_lease("account:1", owner="w1", ttl=10)
    assert old is not None
    await store.put("watch:account:1", Position(cursor="c1", count=1), lease=old)
    await expire(old)
    new = await store.acquire_lease("account:1", owner="w2", ttl=10)
    assert new is not None and new.token > old.token
    assert await store.get("watch:account:1", Position) == Position(cursor="c1", count=1)
    await store.put("watch:account:1", Position(cursor="c2", count=2), lease=new)
    # The worker that lost its lease can neither write, delete, nor renew.
    with pytest.raises(ps.LeaseLostError, match="account:1"):
        await store.put("watch:account:1", Position(cursor="stale", count=9), lease=old)
    with pytest.raises(ps.LeaseLostError):
        await store.delete("watch:account:1", lease=old)
    with pytest.raises(ps.LeaseLostError):
        await store.renew_lease(old)
    assert await store.get("watch:account:1", Position) == Position(cursor="c2", count=2)
    await expire(new)  # expired and not taken over: still lost
    with pytest.raises(ps.LeaseLostError):
        await store.put("watch:account:1", Position(cursor="late", count=3), lease=new)


@pytest.mark.parametrize(
    ("lease_name", "owner", "ttl"),
    [
        ("", "w", 1),
        ("a", "", 1),
        ("a", "w", 0),
        ("a", "w", -1),
        ("a", "w", float("inf")),
        ("a", "w", 86_400.5),  # longer than a day
        ("a", "w", 1e17),  # once left a Redis lease key without expiry
    ],
)
async def test_bad_lease_arguments_are_refused(
    store_and_expire: tuple[ps.CheckpointStore, Expire], lease_name: str, owner: str, ttl: float
) -> None:
    store, _ = store_and_expire
    with pytest.raises(ps.InvalidArgumentError):
        await store.acquire_lease(lease_name, owner=owner, ttl=ttl)
    # Nothing was written: the name is free for a sane lease.
    assert await store.acquire_lease("a", owner="w", ttl=1) is not None


async def test_a_lease_of_one_day_is_granted(
    store_and_expire: tuple[ps.CheckpointStore, Expire],
) -> None:
    store, _ = store_and_expire
    lease = await store.acquire_lease("a", owner="w", ttl=86_400)
    assert lease is not None and lease.ttl == 86_400


async def test_sqlite_is_shared_by_two_handles_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "cp.db"
    async with ps.SQLiteCheckpointStore(path) as a, ps.SQLiteCheckpointStore(path) as b:
        lease = await a.acquire_lease("account:1", owner="a", ttl=60)
        assert lease is not None
        assert await b.acquire_lease("account:1", owner="b", ttl=60) is None
        await a.put("k", Position(cursor="c", count=1), lease=lease)
        assert await b.get("k", Position) == Position(cursor="c", count=1)
    async with ps.SQLiteCheckpointStore(path) as again:
        assert await again.get("k", Position) == Position(cursor="c", count=1)
        assert await again.acquire_lease("account:1", owner="c", ttl=60) is None
    assert "cp.db" in repr(again)
    with pytest.raises(ps.ClientClosedError):
        await again.get("k", Position)


async def test_sqlite_failure_is_a_library_error(tmp_path: Path) -> None:
    async with ps.SQLiteCheckpointStore(tmp_path / "missing-dir" / "cp.db") as store:
        with pytest.raises(ps.StoreUnavailableError, match=r"cp\.db"):
            await store.get("k", Position)


async def test_redis_store_unavailable_and_closed() -> None:
    store = ps.RedisCheckpointStore(f"redis://127.0.0.1:{free_port()}/0", timeout=1)
    async with store:
        with pytest.raises(ps.StoreUnavailableError, match="Redis is unavailable"):
            await store.put("k", 1)
        with pytest.raises(ps.StoreUnavailableError):
            await store.get("k", int)
    with pytest.raises(ps.ClientClosedError):
        await store.acquire_lease("a", owner="w", ttl=1)


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"namespace": "{x}"}, "namespace"), ({"timeout": 0}, "timeout")]
)
def test_redis_store_options_are_checked(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ps.InvalidArgumentError, match=message):
        ps.RedisCheckpointStore("redis://127.0.0.1:1/0", **kwargs)  # type: ignore[arg-type]


_HOLDER = """
import asyncio, json, sys
import polysim_async as ps

async def main(url, namespace):
    store = ps.RedisCheckpointStore(url, namespace=namespace)
    lease = await store.acquire_lease("account:1", owner="doomed", ttl=2.0)
    await store.put("watch:account:1", {"count": 7}, lease=lease)
    print(json.dumps({"token": lease.token}), flush=True)
    while True:  # renew well within the ttl until killed
        await asyncio.sleep(0.2)
        await store.renew_lease(lease)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_a_killed_workers_lease_is_taken_over_after_it_expires(
    redis_server: RedisServer, name: str
) -> None:
    holder = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", _HOLDER, redis_server.url, name),
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout is not None
        line = await holder.stdout.readline()
        dead_token = json.loads(line)["token"]
        async with ps.RedisCheckpointStore(redis_server.url, namespace=name) as store:
            assert await store.acquire_lease("account:1", owner="heir", ttl=2.0) is None
            holder.send_signal(signal.SIGKILL)
            await holder.wait()
            lease = None
            for _ in range(2000):  # the lease expires on the server's clock, 2 s after renewal
                lease = await store.acquire_lease("account:1", owner="heir", ttl=2.0)
                if lease is not None:
                    break
                await asyncio.sleep(0.01)
            assert lease is not None and lease.token > dead_token
            # The heir resumes from the dead worker's checkpoint, and the dead worker's
            # lease (if its process had only been frozen) could not write any more.
            assert await store.get("watch:account:1", dict) == {"count": 7}
            await store.put("watch:account:1", {"count": 8}, lease=lease)
            stale = ps.Lease(name="account:1", owner="doomed", token=dead_token, ttl=2.0)
            with pytest.raises(ps.LeaseLostError):
                await store.put("watch:account:1", {"count": 99}, lease=stale)
            assert await store.get("watch:account:1", dict) == {"count": 8}
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()


async def test_fencing_tokens_keep_growing_when_redis_loses_its_memory(
    own_redis: RedisServer, name: str
) -> None:
    """A restart without persistence must not hand the old token out again."""
    async with (
        ps.RedisCheckpointStore(own_redis.url, namespace=name) as old_worker,
        ps.RedisCheckpointStore(own_redis.url, namespace=name) as new_worker,
    ):
        old = await old_worker.acquire_lease("account:1", owner="old", ttl=30)
        assert old is not None
        await old_worker.put("watch:account:1", {"count": 100}, lease=old)
        own_redis.stop()
        own_redis.restart()  # empty memory: no lease, no counter, no value
        new = None
        for _ in range(100):  # until the new worker's connection is re-established
            try:
                new = await new_worker.acquire_lease("account:1", owner="new", ttl=30)
                break
            except ps.StoreUnavailableError:
                await asyncio.sleep(0.05)
        assert new is not None and new.token > old.token
        await new_worker.put("watch:account:1", {"count": 500}, lease=new)
        # The old worker (paused through the restart) can neither write, delete, renew nor
        # release the new owner's lease.
        for _ in range(100):
            try:
                with pytest.raises(ps.LeaseLostError):
                    await old_worker.put("watch:account:1", {"count": 100}, lease=old)
                break
            except ps.StoreUnavailableError:
                await asyncio.sleep(0.05)
        with pytest.raises(ps.LeaseLostError):
            await old_worker.delete("watch:account:1", lease=old)
        with pytest.raises(ps.LeaseLostError):
            await old_worker.renew_lease(old)
        await old_worker.release_lease(old)
        assert await old_worker.acquire_lease("account:1", owner="third", ttl=30) is None
        assert await new_worker.get("watch:account:1", dict) == {"count": 500}
        await new_worker.renew_lease(new)


async def test_keys_of_the_wrong_kind_are_a_coordination_error_not_an_outage(
    redis_server: RedisServer, name: str
) -> None:
    prefix = f"polysim:cp:{{{name}}}"
    async with (
        redis_asyncio.Redis.from_url(redis_server.url) as raw,
        ps.RedisCheckpointStore(redis_server.url, namespace=name) as store,
    ):
        await raw.hset(f"{prefix}:v:acct", mapping={"a": "1"})
        await raw.set(f"{prefix}:l:acct", "junk")
        await raw.set(f"{prefix}:f:other", "junk")
        with pytest.raises(ps.CoordinationError, match=r"v:acct.*WRONGTYPE") as got:
            await store.get("acct", dict)
        assert not isinstance(got.value, ps.StoreUnavailableError)
        with pytest.raises(ps.CoordinationError, match=r"l:acct.*holds a string") as got:
            await store.acquire_lease("acct", owner="w", ttl=5)
        assert not isinstance(got.value, ps.StoreUnavailableError)
        stale = ps.Lease(name="acct", owner="w", token=1, ttl=5)
        for call in (store.renew_lease(stale), store.put("x", 1, lease=stale)):
            with pytest.raises(ps.CoordinationError, match="l:acct") as got:
                await call
            assert not isinstance(got.value, (ps.StoreUnavailableError, ps.LeaseLostError))
        with pytest.raises(ps.CoordinationError, match=r"f:other.*not a number"):
            await store.acquire_lease("other", owner="w", ttl=5)
        assert not await raw.exists(f"{prefix}:l:other")  # the failed grant wrote nothing


async def test_the_grant_script_checks_the_ttl_before_writing(
    redis_server: RedisServer, name: str
) -> None:
    """A ttl that reaches the script unchecked fails before any write: no lease without expiry."""
    from polysim_async.redis._store import _ACQUIRE

    lease_key, counter = f"polysim:cp:{{{name}}}:l:a", f"polysim:cp:{{{name}}}:f:a"
    async with (
        redis_asyncio.Redis.from_url(redis_server.url) as raw,
        ps.RedisCheckpointStore(redis_server.url, namespace=name) as store,
    ):
        for bad in ("100000000000000000", "0", "x"):
            with pytest.raises(ps.CoordinationError, match="ttl"):
                await store._run(_ACQUIRE, [lease_key, counter], ["w", bad])
        assert await raw.exists(lease_key, counter) == 0
        lease = await store.acquire_lease("a", owner="w", ttl=5)
        assert lease is not None
        assert 0 < await raw.pttl(lease_key) <= 5000
