"""Which accounts of a trade watch this worker polls, when watchers share a checkpoint store.

Each account is polled by the one watcher holding its lease
(``<key>:account:<id>``), and its watermark (the newest fill acknowledged) is
kept under the same name, written only with that lease. Every ``ttl / 3``
seconds a round:

* takes the lease of every *preferred* account this watcher does not hold
  (all accounts without ``shard``; the accounts of its own shard with one);
* with ``shard=(i, n)``, holds the shard's *presence* lease
  (``<key>:shard:<i>-of-<n>``), which tells the other watchers that shard
  ``i`` has a live worker;
* takes the accounts of another shard only while that shard has no live worker
  (its presence lease is free), and not during the first ``ttl`` after
  starting, so watchers started together settle without churn;
* hands such an account back once its shard's worker is alive again.

So two watchers with ``shard=(0, 2)`` and ``shard=(1, 2)`` split the accounts;
when one dies its leases run out and the other takes its accounts over (from
their saved watermarks), and gives them back when it returns. Without
``shard``, the first watcher takes every account and the others stand by.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from ._checkpoints import CheckpointStore
from ._clock import Clock
from ._errors import StoreUnavailableError
from ._leases import LeaseKeeper
from ._shard import Shard, shard_of
from .models.streams import Watermark

__all__ = ["Claims"]

logger = logging.getLogger("polysim_async")

_CONCURRENCY = 16


class Claims:
    """The leases and saved watermarks of one watcher's accounts (see the module docstring).

    Args:
        store: the shared store.
        key: the watch's name in the store.
        ttl: seconds each lease lasts after each renewal.
        shard: this watcher's shard, or ``None``.
        clock: where time is read and rounds sleep.
        account_ids: every account the watcher may poll.
        gained: called with an account id once its lease is taken.
        lost: called with an account id whose lease was lost (not released).
        hand_back: awaited with an account id to give back to its shard's worker;
            it releases the lease (at once, or once the consumer is done with it).
    """

    def __init__(
        self,
        store: CheckpointStore,
        *,
        key: str,
        ttl: float,
        shard: Shard | None,
        clock: Clock,
        account_ids: Sequence[str],
        gained: Callable[[str], None],
        lost: Callable[[str], None],
        hand_back: Callable[[str], Awaitable[None]],
    ) -> None:
        self.store = store
        self.keeper = LeaseKeeper(store, ttl=ttl, clock=clock, on_lost=self._on_lost)
        self._key = key
        self._ttl = ttl
        self._shard = shard
        self._clock = clock
        self._names = {self.name(aid): aid for aid in account_ids}
        self._gained = gained
        self._lost = lost
        self._hand_back = hand_back
        self._presence = None if shard is None else self._presence_name(shard[0])
        self._gate = asyncio.Semaphore(_CONCURRENCY)

    def name(self, account_id: str) -> str:
        """The account's lease name and checkpoint key."""
        return f"{self._key}:account:{account_id}"

    def _presence_name(self, index: int) -> str:
        assert self._shard is not None
        return f"{self._key}:shard:{index}-of-{self._shard[1]}"

    def _home(self, account_id: str) -> int | None:
        """The shard whose worker should poll ``account_id`` (``None``: any watcher)."""
        return None if self._shard is None else shard_of(account_id, self._shard[1])

    def holds(self, account_id: str) -> bool:
        """Whether this watcher holds the account's lease now."""
        return self.keeper.held(self.name(account_id))

    async def load(self, account_id: str) -> Watermark | None:
        """The account's saved watermark, or ``None`` if none was saved yet.

        Raises:
            StoreUnavailableError: the store could not be reached.
            DecodeError: what is saved is not a watermark.
        """
        return await self.store.get(self.name(account_id), Watermark)

    async def save(self, account_id: str, mark: Watermark) -> None:
        """Save the account's watermark, fenced by its lease.

        Raises:
            LeaseLostError: the lease is lost; nothing was written.
        """
        name = self.name(account_id)
        await self.keeper.put(name, mark, name=name)

    async def release(self, account_id: str) -> None:
        """Give the account's lease up."""
        await self.keeper.release(self.name(account_id))

    def _on_lost(self, name: str) -> None:
        account_id = self._names.get(name)
        if account_id is not None:
            self._lost(account_id)

    async def run(self) -> None:
        """Claim, keep and hand back accounts every ``ttl / 3`` seconds until cancelled."""
        settled_at = self._clock.now() + self._ttl
        while True:
            try:
                await self._round(foreign=self._clock.now() >= settled_at)
            except StoreUnavailableError as exc:
                logger.warning("watch: cannot reach the checkpoint store (%s); retrying", exc)
            await self._clock.sleep(self._ttl / 3)

    async def _round(self, *, foreign: bool) -> None:
        if self._presence is not None and not self.keeper.held(self._presence):
            await self.keeper.acquire(self._presence)
        orphaned = await self._orphaned_shards()
        own = None if self._shard is None else self._shard[0]

        async def claim(name: str, account_id: str) -> None:
            async with self._gate:
                if await self.keeper.acquire(name) is not None:
                    self._gained(account_id)

        wanted = []
        for name, account_id in self._names.items():
            home = self._home(account_id)
            mine = home is None or home == own
            if self.keeper.held(name):
                if not mine and home not in orphaned:
                    await self._hand_back(account_id)
            elif mine or (foreign and home in orphaned):
                wanted.append(claim(name, account_id))
        await asyncio.gather(*wanted)

    async def _orphaned_shards(self) -> set[int]:
        """The other shards with no live worker (their presence lease is free)."""
        if self._shard is None:
            return set()
        index, count = self._shard
        free = set()
        for other in range(count):
            if other == index:
                continue
            probe = await self.store.acquire_lease(
                self._presence_name(other), owner=self.keeper.owner, ttl=self._ttl
            )
            if probe is not None:
                await self.store.release_lease(probe)
                free.add(other)
        return free
