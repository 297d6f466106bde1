"""An in-memory CheckpointStore whose leases expire on a test clock, with an off switch.

For tests on virtual time: the SQLite store answers from a thread and Redis
expires leases on its own clock, neither of which a virtual clock can move.
It follows the protocol's contract (the SQLite and Redis stores are held to the
same contract in tests/redis/test_checkpoints.py).
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import msgspec

import polysim_async as ps

T = TypeVar("T")


class MemoryStore:
    """Checkpoints and fenced leases in a dict; ``down = True`` makes every call fail.

    :meth:`view` gives another handle on the same data with its own off switch: a
    worker cut off from the store while the others still reach it.
    """

    def __init__(self, clock: ps.Clock) -> None:
        self.clock = clock
        self.values: dict[str, bytes] = {}
        self.leases: dict[str, tuple[str, int, float]] = {}  # name -> owner, token, expires
        self.tokens: dict[str, int] = {}
        self.down = False
        #: Every write that took effect: key, value, the writing lease's owner.
        self.puts: list[tuple[str, Any, str | None]] = []
        self.renewals = 0

    def view(self) -> MemoryStore:
        """Another handle on the same checkpoints and leases, with its own ``down``."""
        other = MemoryStore(self.clock)
        other.values, other.leases, other.tokens = self.values, self.leases, self.tokens
        other.puts = self.puts
        return other

    def _reach(self) -> None:
        if self.down:
            raise ps.StoreUnavailableError("the memory store is switched off")

    def _current(self, lease: ps.Lease) -> bool:
        held = self.leases.get(lease.name)
        return held is not None and held[1] == lease.token and held[2] > self.clock.now()

    def holder(self, name: str) -> str | None:
        """Who holds ``name`` now (``None`` if nobody)."""
        held = self.leases.get(name)
        return held[0] if held is not None and held[2] > self.clock.now() else None

    def expire(self, name: str) -> None:
        """End the lease on ``name`` now, as its expiry would."""
        owner, token, _ = self.leases[name]
        self.leases[name] = (owner, token, 0.0)

    async def get(self, key: str, type: type[T]) -> T | None:
        await asyncio.sleep(0)
        self._reach()
        data = self.values.get(key)
        return None if data is None else msgspec.json.decode(data, type=type)

    async def put(self, key: str, value: Any, *, lease: ps.Lease | None = None) -> None:
        await asyncio.sleep(0)
        self._reach()
        if lease is not None and not self._current(lease):
            raise ps.LeaseLostError(f"lost {lease.name}")
        self.values[key] = msgspec.json.encode(value)
        self.puts.append((key, value, None if lease is None else lease.owner))

    async def delete(self, key: str, *, lease: ps.Lease | None = None) -> None:
        await asyncio.sleep(0)
        self._reach()
        if lease is not None and not self._current(lease):
            raise ps.LeaseLostError(f"lost {lease.name}")
        self.values.pop(key, None)

    async def acquire_lease(self, name: str, *, owner: str, ttl: float) -> ps.Lease | None:
        await asyncio.sleep(0)
        self._reach()
        if self.holder(name) is not None:
            return None
        token = self.tokens[name] = self.tokens.get(name, 0) + 1
        self.leases[name] = (owner, token, self.clock.now() + ttl)
        return ps.Lease(name=name, owner=owner, token=token, ttl=ttl)

    async def renew_lease(self, lease: ps.Lease) -> ps.Lease:
        await asyncio.sleep(0)
        self._reach()
        if not self._current(lease):
            raise ps.LeaseLostError(f"lost {lease.name}")
        self.leases[lease.name] = (lease.owner, lease.token, self.clock.now() + lease.ttl)
        self.renewals += 1
        return lease

    async def release_lease(self, lease: ps.Lease) -> None:
        await asyncio.sleep(0)
        self._reach()
        if self._current(lease):
            self.expire(lease.name)

    async def aclose(self) -> None:
        pass
