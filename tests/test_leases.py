"""LeaseKeeper: leases renewed in the background on the clock, lost when taken over or
unreachable past their time, released on exit. All on virtual time."""

from __future__ import annotations

import asyncio
import logging

import pytest

import polysim_async as ps

from ._helpers import LoopClock, virtual
from ._memory_store import MemoryStore


def keeper(store: MemoryStore, lost: list[str] | None = None, ttl: float = 30.0) -> ps.LeaseKeeper:
    return ps.LeaseKeeper(
        store,
        ttl=ttl,
        owner="w1",
        clock=store.clock,
        on_lost=None if lost is None else lost.append,
    )


@virtual
async def test_a_lease_is_kept_while_working_and_released_on_exit() -> None:
    store = MemoryStore(LoopClock())
    async with keeper(store) as k:
        lease = await k.acquire("job")
        assert lease is not None and lease.owner == "w1"
        assert await k.acquire("job") is lease  # already held here
        await asyncio.sleep(300)  # ten times the ttl, busy elsewhere
        assert k.held("job") and k.names == {"job"}
        assert store.holder("job") == "w1"
        assert 25 <= store.renewals <= 31  # every ttl / 3
        await k.put("progress", {"n": 1}, name="job")
        # Another worker cannot take it meanwhile.
        assert await store.acquire_lease("job", owner="w2", ttl=30) is None
    # Released on exit: the next worker takes it at once.
    assert store.holder("job") is None
    assert await store.acquire_lease("job", owner="w2", ttl=30) is not None


@virtual
async def test_a_lease_taken_over_is_reported_lost_and_fences_writes() -> None:
    store = MemoryStore(LoopClock())
    lost: list[str] = []
    async with keeper(store, lost) as k:
        await k.acquire("job")
        store.expire("job")  # as if this worker had stalled past its ttl
        assert await store.acquire_lease("job", owner="w2", ttl=300) is not None
        with pytest.raises(ps.LeaseLostError):
            await k.put("progress", {"n": 2}, name="job")
        assert lost == ["job"] and not k.held("job")
        await asyncio.sleep(60)
        assert lost == ["job"]  # reported once; never renewed again
    assert store.holder("job") == "w2"
    assert "progress" not in store.values


@virtual
async def test_a_renewal_refused_reports_the_lease_lost_before_any_write() -> None:
    store = MemoryStore(LoopClock())
    lost: list[str] = []
    async with keeper(store, lost) as k:
        await k.acquire("job")
        store.expire("job")
        await asyncio.sleep(11)  # the next renewal finds it lost
        assert lost == ["job"] and k.names == frozenset()
        with pytest.raises(ps.LeaseLostError, match="does not hold"):
            k.lease("job")


@virtual
async def test_a_short_outage_is_ridden_out(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore(LoopClock())
    lost: list[str] = []
    async with keeper(store, lost) as k:
        await k.acquire("job")
        store.down = True
        loop = asyncio.get_running_loop()
        loop.call_later(15, setattr, store, "down", False)  # one renewal fails
        with caplog.at_level(logging.WARNING, logger="polysim_async"):
            await k.put("progress", {"n": 3}, name="job")  # repeated until the store is back
        assert store.values["progress"] == b'{"n":3}'
        await asyncio.sleep(60)
        assert k.held("job") and lost == []
    assert sum("cannot reach its store" in r.message for r in caplog.records) == 1


@virtual
async def test_an_outage_longer_than_the_ttl_loses_the_lease() -> None:
    store = MemoryStore(LoopClock())
    lost: list[str] = []
    async with keeper(store, lost) as k:
        await k.acquire("job")
        store.down = True
        with pytest.raises(ps.LeaseLostError, match="unreachable") as info:
            await k.put("progress", {"n": 4}, name="job")
        assert isinstance(info.value.__cause__, ps.StoreUnavailableError)
        assert lost == ["job"]
        assert asyncio.get_running_loop().time() < 1000.0 + 30.0  # given up within the ttl
        store.down = False
        await asyncio.sleep(60)
        assert not k.held("job")  # not renewed after it was given up
    assert store.holder("job") is None  # expired on the store's side too


@virtual
async def test_a_lease_running_out_unrenewed_is_dropped() -> None:
    store = MemoryStore(LoopClock())
    lost: list[str] = []
    async with keeper(store, lost) as k:
        await k.acquire("job")
        store.down = True  # every renewal fails until the lease runs out locally
        await asyncio.sleep(45)
        assert lost == ["job"] and not k.held("job")
        store.down = False
        assert await k.acquire("job") is not None  # expired in the store: taken anew


@virtual
async def test_misuse_is_refused() -> None:
    store = MemoryStore(LoopClock())
    k = keeper(store)
    with pytest.raises(ps.ClientClosedError, match="async with"):
        await k.acquire("job")
    async with k:
        with pytest.raises(ps.ClientClosedError):
            await k.__aenter__()
    with pytest.raises(ps.ClientClosedError):
        await k.acquire("job")
    await k.aclose()  # idempotent
    with pytest.raises(ps.InvalidArgumentError):
        ps.LeaseKeeper(store, ttl=0)
    with pytest.raises(ps.InvalidArgumentError, match="lease_ttl must be at least 1 s"):
        ps.LeaseKeeper(store, ttl=0.05)
    assert ps.LeaseKeeper(store, ttl=1).ttl == 1.0  # the minimum itself is fine
    with pytest.raises(ps.InvalidArgumentError):
        ps.LeaseKeeper(store, owner="")
    assert ps.LeaseKeeper(store).owner != ps.LeaseKeeper(store).owner  # restarts tell apart


@virtual
async def test_a_broken_store_drops_every_lease(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore(LoopClock())
    lost: list[str] = []
    async with keeper(store, lost) as k:
        await k.acquire("a")
        await k.acquire("b")

        async def broken(lease: ps.Lease) -> ps.Lease:
            raise RuntimeError("bug")

        store.renew_lease = broken  # type: ignore[method-assign]
        with caplog.at_level(logging.ERROR, logger="polysim_async"):
            await asyncio.sleep(11)
        assert sorted(lost) == ["a", "b"] and k.names == frozenset()
    assert any("failed to renew" in r.message for r in caplog.records)
