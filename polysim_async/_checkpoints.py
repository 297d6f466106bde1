"""Checkpoints shared by workers: the store protocol, leases, and the local SQLite store.

A checkpoint is any msgspec-encodable value (a ``StreamCheckpoint``, a watch
watermark, a monitor's state, an export manifest) kept under a string key, so a
worker can resume where another stopped. Writes are atomic: a reader sees the
old value or the new one, never a mix.

Leases keep two workers from owning one account at once. A worker acquires a
lease on a name (say ``"account:<id>"``) for ``ttl`` seconds and renews it
well before it runs out; if the worker dies, the lease expires and another
worker acquires it. Every grant carries a *fencing token* that grows with each
new grant of that name (also across a restart of the store that lost its
memory: see :class:`~polysim_async.RedisCheckpointStore`), and a write, renewal
or release made with a lease is refused
(:class:`~polysim_async.LeaseLostError`) unless that lease is still the
current one, checked in the same atomic step as the write. So a worker that
paused past its lease (a long GC, a frozen VM) cannot overwrite the progress
of the worker that took over.

Two stores implement :class:`CheckpointStore`: :class:`SQLiteCheckpointStore`
(one file, for the processes of one machine) and
:class:`~polysim_async.RedisCheckpointStore` (for every machine).
"""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import msgspec

from ._clock import SYSTEM_CLOCK, Clock
from ._config import check_positive
from ._errors import (
    ClientClosedError,
    DecodeError,
    InvalidArgumentError,
    LeaseLostError,
    StoreUnavailableError,
)

__all__ = [
    "MAX_LEASE_TTL",
    "CheckpointStore",
    "Lease",
    "SQLiteCheckpointStore",
    "check_lease_args",
    "decode_checkpoint",
    "encode_checkpoint",
]

T = TypeVar("T")

#: The longest lease a store grants, in seconds (one day): a worker renews
#: its lease well within ``ttl``, so a longer one only delays the takeover
#: after the worker dies.
MAX_LEASE_TTL = 86_400.0


class Lease(msgspec.Struct, frozen=True, kw_only=True):
    """A worker's exclusive claim on ``name`` until it expires.

    Attributes:
        name: what is leased (``"account:<id>"``).
        owner: who holds it (a worker id, for diagnostics).
        token: the fencing token; every new grant of ``name`` gets a larger one.
        ttl: seconds the lease lasts after each grant or renewal.
    """

    name: str
    owner: str
    token: int
    ttl: float


@runtime_checkable
class CheckpointStore(Protocol):
    """Where workers keep checkpoints and leases; implement it to use another store.

    Every method may raise :class:`~polysim_async.StoreUnavailableError` when
    the store cannot be reached. A cancelled call may or may not have taken
    effect; either way each write is all or nothing.
    """

    async def get(self, key: str, type: type[T]) -> T | None:
        """The value under ``key`` decoded as ``type``, or ``None`` if there is none.

        Raises:
            DecodeError: the stored value does not match ``type``.
        """
        ...

    async def put(self, key: str, value: Any, *, lease: Lease | None = None) -> None:
        """Store ``value`` (msgspec-encodable) under ``key``, atomically.

        Raises:
            LeaseLostError: ``lease`` was given and is no longer the current
                grant of its name; nothing was written.
        """
        ...

    async def delete(self, key: str, *, lease: Lease | None = None) -> None:
        """Remove ``key`` (no error if absent).

        Raises:
            LeaseLostError: as for :meth:`put`; nothing was removed.
        """
        ...

    async def acquire_lease(self, name: str, *, owner: str, ttl: float) -> Lease | None:
        """Take the lease on ``name`` for ``ttl`` seconds, or ``None`` while another holds it.

        A lease whose holder let it expire (or released it) is granted anew,
        with a larger fencing token. Holding it already is no exception: the
        caller gets ``None`` until it expires.

        Raises:
            InvalidArgumentError: an empty ``name`` or ``owner``, or ``ttl``
                not in (0, :data:`MAX_LEASE_TTL`]; nothing was written.
        """
        ...

    async def renew_lease(self, lease: Lease) -> Lease:
        """Extend ``lease`` by its ``ttl`` from now.

        Raises:
            LeaseLostError: it expired or was taken over; renew well before ``ttl``.
        """
        ...

    async def release_lease(self, lease: Lease) -> None:
        """Give ``lease`` up so another worker can take it at once (no error if already lost)."""
        ...

    async def aclose(self) -> None:
        """Release the store's connections or files. Idempotent."""
        ...


def encode_checkpoint(value: Any) -> bytes:
    """``value`` as JSON bytes.

    Raises:
        InvalidArgumentError: msgspec cannot encode it.
    """
    try:
        return msgspec.json.encode(value)
    except (TypeError, msgspec.EncodeError) as exc:
        raise InvalidArgumentError(f"a checkpoint must be msgspec-encodable: {exc}") from exc


def decode_checkpoint(data: bytes, tp: type[T], key: str) -> T:
    """Decode stored JSON ``data`` as ``tp``.

    Raises:
        DecodeError: it does not match ``tp``.
    """
    try:
        return msgspec.json.decode(data, type=tp)
    except msgspec.DecodeError as exc:
        raise DecodeError(f"checkpoint {key!r} is not a {tp!r}: {exc}", body=data) from exc


def check_lease_args(name: str, owner: str, ttl: float) -> None:
    """Refuse an empty name or owner or a ``ttl`` not in (0, :data:`MAX_LEASE_TTL`].

    Raises:
        InvalidArgumentError: one of them is bad.
    """
    for label, value in (("name", name), ("owner", owner)):
        if not isinstance(value, str) or not value:
            raise InvalidArgumentError(f"lease {label} must be a non-empty string, got {value!r}")
    check_positive("ttl", ttl, allow_none=False)
    if ttl > MAX_LEASE_TTL:
        raise InvalidArgumentError(
            f"ttl must be at most {MAX_LEASE_TTL:.0f} s (a day), got {ttl!r}:"
            " renew a shorter lease instead"
        )


_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY, owner TEXT NOT NULL, token INTEGER NOT NULL, expires REAL NOT NULL
);
"""


class SQLiteCheckpointStore:
    """Checkpoints and leases in one SQLite file, shared by the processes of one machine.

    SQLite makes each write one transaction (WAL journal, ``synchronous=FULL``):
    after a crash or power loss the file holds every completed write and no
    partial one. Lease expiry is measured on ``clock.wall()`` (epoch seconds),
    which all processes of a machine share. Calls run on one background thread,
    so the event loop never blocks on the disk.

    For workers on several machines use :class:`~polysim_async.RedisCheckpointStore`
    (a SQLite file on a network share is not safe).

    Args:
        path: the database file (created if missing).
        clock: time source for lease expiry.
    """

    def __init__(self, path: str | Path, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.path = Path(path)
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="polysim-checkpoints"
        )
        self._db: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SQLiteCheckpointStore({str(self.path)!r})"

    # Everything below ``_in_thread`` runs on the store's own thread.

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        if self._executor is None:
            raise ClientClosedError(f"{self!r} is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"{self!r} failed: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def _transaction(self, body: Any) -> Any:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            result = body(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    @staticmethod
    def _check(db: sqlite3.Connection, lease: Lease | None, now: float) -> None:
        if lease is None:
            return
        row = db.execute("SELECT token, expires FROM leases WHERE name = ?", (lease.name,))
        current = row.fetchone()
        if current is None or current[0] != lease.token or current[1] <= now:
            raise LeaseLostError(f"the lease on {lease.name!r} (token {lease.token}) is lost")

    async def get(self, key: str, type: type[T]) -> T | None:
        """See :meth:`CheckpointStore.get`."""
        row = await self._in_thread(
            lambda: (
                self._connection()
                .execute("SELECT value FROM checkpoints WHERE key = ?", (key,))
                .fetchone()
            )
        )
        return None if row is None else decode_checkpoint(row[0], type, key)

    async def put(self, key: str, value: Any, *, lease: Lease | None = None) -> None:
        """See :meth:`CheckpointStore.put`."""
        data = encode_checkpoint(value)
        now = self._clock.wall()

        def write(db: sqlite3.Connection) -> None:
            self._check(db, lease, now)
            db.execute("INSERT OR REPLACE INTO checkpoints (key, value) VALUES (?, ?)", (key, data))

        await self._in_thread(self._transaction, write)

    async def delete(self, key: str, *, lease: Lease | None = None) -> None:
        """See :meth:`CheckpointStore.delete`."""
        now = self._clock.wall()

        def remove(db: sqlite3.Connection) -> None:
            self._check(db, lease, now)
            db.execute("DELETE FROM checkpoints WHERE key = ?", (key,))

        await self._in_thread(self._transaction, remove)

    async def acquire_lease(self, name: str, *, owner: str, ttl: float) -> Lease | None:
        """See :meth:`CheckpointStore.acquire_lease`."""
        check_lease_args(name, owner, ttl)
        now = self._clock.wall()

        def grant(db: sqlite3.Connection) -> Lease | None:
            row = db.execute("SELECT token, expires FROM leases WHERE name = ?", (name,)).fetchone()
            if row is not None and row[1] > now:
                return None
            token = (row[0] if row is not None else 0) + 1
            db.execute(
                "INSERT OR REPLACE INTO leases (name, owner, token, expires) VALUES (?, ?, ?, ?)",
                (name, owner, token, now + ttl),
            )
            return Lease(name=name, owner=owner, token=token, ttl=ttl)

        result: Lease | None = await self._in_thread(self._transaction, grant)
        return result

    async def renew_lease(self, lease: Lease) -> Lease:
        """See :meth:`CheckpointStore.renew_lease`."""
        now = self._clock.wall()

        def extend(db: sqlite3.Connection) -> None:
            self._check(db, lease, now)
            db.execute(
                "UPDATE leases SET expires = ? WHERE name = ?", (now + lease.ttl, lease.name)
            )

        await self._in_thread(self._transaction, extend)
        return lease

    async def release_lease(self, lease: Lease) -> None:
        """See :meth:`CheckpointStore.release_lease`."""

        def give_up(db: sqlite3.Connection) -> None:
            # Keep the row: its token is where the next grant's token counts from.
            db.execute(
                "UPDATE leases SET expires = 0 WHERE name = ? AND token = ?",
                (lease.name, lease.token),
            )

        await self._in_thread(self._transaction, give_up)

    async def aclose(self) -> None:
        """Close the database and stop the store's thread. Idempotent."""
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await asyncio.get_running_loop().run_in_executor(executor, close)
        executor.shutdown(wait=False)

    async def __aenter__(self) -> SQLiteCheckpointStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
