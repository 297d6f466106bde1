"""Keeping leases while working: renewal in the background, on the client's clock.

A :class:`~polysim_async.CheckpointStore` grants a lease for ``ttl`` seconds;
a worker that is busy (waiting for the API, or for its consumer) must renew it
well before then. :class:`LeaseKeeper` does that for every lease it took,
every ``ttl / 3`` seconds on its :class:`~polysim_async.Clock`, so a lease
survives two renewals in a row that could not reach the store.

Locally a lease counts as held until ``ttl`` after the last grant or renewal
was *sent* (earlier than the store's own expiry, which runs from when the
store received it), so this worker stops using a lease no later than the store
lets another worker take it. Every write is still fenced by the store, which is
what makes takeover safe; the local view only stops work early.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ._checkpoints import CheckpointStore, Lease, check_lease_args
from ._clock import SYSTEM_CLOCK, Clock
from ._errors import (
    ClientClosedError,
    InvalidArgumentError,
    LeaseLostError,
    StoreUnavailableError,
)
from ._tasks import cancel_and_wait
from ._validation import check_str

__all__ = ["DEFAULT_LEASE_TTL", "MIN_LEASE_TTL", "LeaseKeeper", "check_store", "default_owner"]

logger = logging.getLogger("polysim_async")

#: Seconds a lease lasts after each grant or renewal unless told otherwise: a
#: dead worker's work is taken over this long after its last renewal.
DEFAULT_LEASE_TTL = 30.0
#: The shortest lease a :class:`LeaseKeeper` (and so a watch, stream, export or
#: monitor) takes: below it a round trip to the store or a busy event loop is a
#: noticeable part of the lease, and leases change hands without any worker dying.
MIN_LEASE_TTL = 1.0
#: Leases renewed at once (a round trip each).
_RENEW_CONCURRENCY = 16


def check_store(store: object, key: object, *, what: str) -> None:
    """Validate the ``store=`` / ``key=`` pair of a feature (``what``: "watch", "stream", ...).

    Raises:
        InvalidArgumentError: ``key`` without ``store``, a ``store`` that is not a
            :class:`CheckpointStore`, or a missing or bad ``key``.
    """
    if store is None:
        if key is not None:
            raise InvalidArgumentError(f"key names the {what} in a store: pass store= too")
        return
    if not isinstance(store, CheckpointStore):
        raise InvalidArgumentError(f"store must be a CheckpointStore, got {store!r}")
    if key is None:
        raise InvalidArgumentError(f"a {what} with a store needs key= (its name there)")
    check_str("key", key, max_len=200)


def default_owner() -> str:
    """A lease owner naming this process: ``host:pid:random`` (random: restarts differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class LeaseKeeper:
    """Takes leases on a store and keeps them, renewing every ``ttl / 3`` seconds in the background.

    Use it as an async context manager; leaving it stops the renewals and
    releases every lease still held, so another worker can take them at once::

        async with LeaseKeeper(store, ttl=30) as keeper:
            if await keeper.acquire("job:nightly") is not None:
                ...  # work; the lease is renewed meanwhile
                await keeper.put("job:nightly", progress, name="job:nightly")

    A lease is *lost* when a renewal is refused (another worker holds it now)
    or when the store could not be reached until it ran out; ``on_lost(name)``
    is then called (from the renewal task; it must not block or raise), and
    :meth:`held` turns false. The execution stream, the trade watch and the
    export use one of these when given a ``store``.

    Args:
        store: where the leases are granted.
        ttl: seconds each grant or renewal lasts.
        owner: who holds the leases, for diagnostics (default: ``host:pid:random``).
        clock: where time is read and the renewals sleep.
        on_lost: called with the name of each lease lost.

    Raises:
        InvalidArgumentError: a bad ``owner``, or a ``ttl`` below
            :data:`MIN_LEASE_TTL` (1 s) or above a day.
    """

    def __init__(
        self,
        store: CheckpointStore,
        *,
        ttl: float = DEFAULT_LEASE_TTL,
        owner: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        on_lost: Callable[[str], object] | None = None,
    ) -> None:
        self.owner = default_owner() if owner is None else owner
        check_lease_args("-", self.owner, ttl)
        if ttl < MIN_LEASE_TTL:
            raise InvalidArgumentError(
                f"lease_ttl must be at least {MIN_LEASE_TTL:g} s, got {ttl!r}: a shorter lease"
                " changes hands on every slow round trip (see 'Choosing lease_ttl' in the README)"
            )
        self.store = store
        self.ttl = float(ttl)
        self._clock = clock
        self._on_lost = on_lost
        self._leases: dict[str, Lease] = {}
        self._valid_until: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._state = "new"
        self._outage = False

    def __repr__(self) -> str:
        return f"LeaseKeeper({self.store!r}, owner={self.owner!r}, ttl={self.ttl})"

    @property
    def names(self) -> frozenset[str]:
        """The names of the leases held now."""
        return frozenset(name for name in self._leases if self.held(name))

    def held(self, name: str) -> bool:
        """Whether the lease on ``name`` is held and has not run out locally."""
        return name in self._leases and self._clock.now() < self._valid_until[name]

    def lease(self, name: str) -> Lease:
        """The lease on ``name``, to pass to the store's fenced writes.

        Raises:
            LeaseLostError: it is not held (never taken, released, or lost).
        """
        lease = self._leases.get(name)
        if lease is None or not self.held(name):
            if lease is not None:
                self._lose(name, lease)  # ran out locally: never renew it again
            raise LeaseLostError(f"{self.owner} does not hold the lease on {name!r}")
        return lease

    def drop_expired(self) -> None:
        """Drop every lease that ran out locally now, calling ``on_lost`` for each.

        The renewal task would notice only when it next runs; a caller about to
        act on a lease (after its process was paused past ``ttl``) calls this first.
        """
        for name, lease in list(self._leases.items()):
            if not self.held(name):
                self._lose(name, lease)

    async def acquire(self, name: str) -> Lease | None:
        """Take the lease on ``name`` and keep it renewed; ``None`` while another worker holds it.

        Returns the lease this keeper already holds, if it does.

        Raises:
            ClientClosedError: the keeper is not entered, or closed.
            StoreUnavailableError: the store could not be reached.
        """
        self._check_open()
        if self.held(name):
            return self._leases[name]
        sent = self._clock.now()
        lease = await self.store.acquire_lease(name, owner=self.owner, ttl=self.ttl)
        if lease is not None:
            self._leases[name] = lease
            self._valid_until[name] = sent + self.ttl
        return lease

    async def release(self, name: str) -> None:
        """Give the lease on ``name`` up so another worker can take it at once.

        Nothing happens if it is not held. A store that cannot be reached is
        logged and left alone: the lease then expires on its own.
        """
        lease = self._leases.pop(name, None)
        self._valid_until.pop(name, None)
        if lease is None:
            return
        try:
            await self.store.release_lease(lease)
        except StoreUnavailableError as exc:
            logger.warning(
                "could not release the lease on %r (%s); it expires on its own", name, exc
            )

    async def put(self, key: str, value: Any, *, name: str) -> None:
        """Store ``value`` under ``key``, fenced by the lease on ``name``.

        While the store cannot be reached the write is repeated (every
        ``ttl / 10`` seconds, at most 1 s apart) as long as the lease is held
        locally.

        Raises:
            LeaseLostError: the lease is not held, was taken over, or ran out
                while the store was unreachable; nothing was written (the lease
                is then dropped and ``on_lost`` called).
            InvalidArgumentError: ``value`` is not msgspec-encodable.

        Cancellation: the write may or may not have happened; either way it is whole.
        """
        while True:
            lease = self.lease(name)
            try:
                await self.store.put(key, value, lease=lease)
            except LeaseLostError:
                self._lose(name, lease)
                raise
            except StoreUnavailableError as exc:
                wait = min(1.0, self.ttl / 10)
                if self._clock.now() + wait >= self._valid_until.get(name, 0.0):
                    self._lose(name, lease)
                    raise LeaseLostError(
                        f"the lease on {name!r} ran out while the store was unreachable"
                    ) from exc
                self._note_outage(exc)
                await self._clock.sleep(wait)
            else:
                return

    # -- the renewals ------------------------------------------------------------

    async def _renew_all(self) -> None:
        gate = asyncio.Semaphore(_RENEW_CONCURRENCY)

        async def renew(name: str, lease: Lease) -> None:
            async with gate:
                await self._renew(name, lease)

        while True:
            await self._clock.sleep(self.ttl / 3)
            try:
                await asyncio.gather(*(renew(n, ls) for n, ls in list(self._leases.items())))
            except Exception:  # a bug, or a closed store: stop using every lease
                logger.exception("%r failed to renew its leases; dropping them", self)
                for name, lease in list(self._leases.items()):
                    self._lose(name, lease)
                raise

    async def _renew(self, name: str, lease: Lease) -> None:
        if not self.held(name):
            logger.warning("the lease on %r ran out before it could be renewed", name)
            self._lose(name, lease)
            return
        sent = self._clock.now()
        try:
            await self.store.renew_lease(lease)
        except LeaseLostError:
            logger.warning("the lease on %r was taken over", name)
            self._lose(name, lease)
            return
        except StoreUnavailableError as exc:
            self._note_outage(exc)
            return  # tried again next round; it runs out locally meanwhile
        if self._leases.get(name) is lease:
            self._valid_until[name] = sent + self.ttl
            if self._outage:
                self._outage = False
                logger.info("%r reaches its store again", self)

    def _note_outage(self, exc: BaseException) -> None:
        if not self._outage:
            self._outage = True
            logger.warning("%r cannot reach its store (%s); retrying", self, exc)

    def _lose(self, name: str, lease: Lease) -> None:
        """Drop ``lease`` if it is still the one held under ``name``, and report it."""
        if self._leases.get(name) is not lease:
            return  # released or replaced meanwhile
        del self._leases[name]
        del self._valid_until[name]
        if self._on_lost is not None:
            self._on_lost(name)

    # -- lifecycle ---------------------------------------------------------------

    def _check_open(self) -> None:
        if self._state != "open":
            raise ClientClosedError(f"{self!r} is not open: use 'async with keeper:'")

    async def __aenter__(self) -> LeaseKeeper:
        """Start the renewals.

        Raises:
            ClientClosedError: the keeper was entered before.
        """
        if self._state != "new":
            raise ClientClosedError("a LeaseKeeper can be entered only once")
        self._state = "open"
        self._task = asyncio.get_running_loop().create_task(self._renew_all())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the renewals and release every lease held. Idempotent.

        Cancellation: the renewals are stopped first; leases not yet released
        then expire on their own.
        """
        if self._state == "closed":
            return
        self._state = "closed"
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait([task])
        for name in list(self._leases):
            await self.release(name)
