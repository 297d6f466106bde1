"""Run an export: walk every account's feed, write parts, record progress in the manifest.

Shape::

    accounts ──► fan_out workers ──► page: filter (watermark), convert ──► consumer
                 (trade_pages on the shared rate budget)                      │
          parts of ≤ part_rows rows ◄── commit task (worker thread) ◄── buffer ┘

* Each worker walks one account's feed newest first (from its saved cursor when
  an earlier run was interrupted), keeps the rows its watermark says are new,
  and converts them at once (so a value that cannot be written fails that
  account, and the page's objects are freed).
* The consumer buffers converted pages; when the next page would overflow
  ``part_rows`` (or ``COMMIT_INTERVAL`` seconds passed), the buffer becomes a part.
* A commit writes the part under a temporary name, fsyncs it, renames it, then
  records it with every account's new position in the manifest (saved
  atomically). While one part is written in a worker thread, the next one fills.

Crash safety: the manifest only ever lists complete parts, and an account's
cursor only ever moves past pages whose rows are in listed parts, so whatever
moment a run is killed at, the next run (which first deletes unlisted parts and
temporary files) fetches exactly the rows that are not in listed parts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from .._checkpoints import CheckpointStore
from .._config import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from .._errors import DecodeError, InvalidArgumentError, PolySimError
from .._fanout import DEFAULT_FAN_OUT_CONCURRENCY, OnError, fan_out
from .._leases import DEFAULT_LEASE_TTL, LeaseKeeper, check_store
from .._requester import Requester
from .._shard import Shard, check_shard, select_shard
from .._tasks import aclose_iterator
from .._validation import account_id_list, check_enum, check_int, check_str
from .._version import __version__
from ..models.common import Side
from ._errors import ExportDirectoryError, ExportError
from ._files import write_atomic
from ._manifest import (
    MANIFEST_NAME,
    MANIFEST_VERSION,
    AccountRecord,
    DirectoryLock,
    FileStore,
    Manifest,
    ManifestStore,
    Mark,
    PartRecord,
    Walk,
    part_name,
    tidy_directory,
    tmp_name,
)
from ._marks import Tracker
from ._progress import ExportProgress, ExportSummary, estimate_eta
from ._schema import MONEY_PRECISION, MONEY_SCALE, SCHEMA_VERSION, describe
from ._writers import ExportFormat, PartFormat, UnwritableRows, make_format

if TYPE_CHECKING:  # partner.py imports this module to delegate to it
    from ..partner import PartnerAccounts

__all__ = ["COMMIT_INTERVAL", "DEFAULT_PART_ROWS", "ProgressCallback", "run_export"]

M = TypeVar("M")

logger = logging.getLogger("polysim_async")

#: Rows per part unless told otherwise: about 20 MB of Arrow data in memory, a few MB on disk.
DEFAULT_PART_ROWS = 100_000
#: A part is also cut when this many seconds passed since the last one, so a long
#: run over many small accounts keeps recording its progress.
COMMIT_INTERVAL = 30.0

ProgressCallback = Callable[[ExportProgress], object]


@dataclass(slots=True)
class _Chunk:
    """One page of one account, filtered and converted, with the account's position after it."""

    account_id: str
    data: Any  # the format's converted rows; None when the page had no new rows
    rows: int
    walk: Walk | None  # the walk to record (None once done)
    mark: Mark | None  # the watermark to record once done
    done: bool  # this page ends a walk
    last: bool  # this is the account's last chunk of this run
    error: PolySimError | None = None


def _budget(requester: Requester) -> float | None:
    """Requests per second the client's rate limiter allows, if it says."""
    limit = getattr(getattr(requester, "limiter", None), "limit", None)
    per_second = getattr(limit, "per_second", None)
    per_minute = getattr(limit, "per_minute", None)
    rates = [float(per_second)] if per_second else []
    if per_minute:
        rates.append(per_minute / 60.0)
    return min(rates) if rates else None


def _monotonic(requester: Requester) -> Callable[[], float]:
    """The request path's monotonic clock (its ``Clock.now``)."""
    return requester.clock.now


class _Export:
    def __init__(
        self,
        accounts: PartnerAccounts,
        ids: list[str],
        out_dir: Path,
        fmt: PartFormat[Any],
        *,
        side: str | None,
        market_id: str | None,
        page_size: int,
        part_rows: int,
        concurrency: int,
        on_error: OnError,
        progress: ProgressCallback | None,
        store: ManifestStore,
        now: Callable[[], float],
        budget: float | None,
        commit_interval: float | None,
        key: str | None = None,
    ) -> None:
        self.accounts = accounts
        self.ids = ids
        self.out_dir = out_dir
        self.fmt = fmt
        self.side = side
        self.market_id = market_id
        self.page_size = page_size
        self.part_rows = part_rows
        self.concurrency = concurrency
        self.on_error = on_error
        self.progress = progress
        self.store = store
        self.key = str(out_dir / MANIFEST_NAME) if key is None else key
        self.keyed = key  # the manifest's key in a checkpoint store, if it is kept there
        self.now = now
        self.budget = budget
        self.commit_interval = commit_interval
        self.manifest = Manifest(format=fmt.name, side=side, market_id=market_id)
        self.started = now()
        self.last_commit = self.started
        self.starts: dict[str, tuple[Mark | None, Walk | None]] = {}
        self.pending: list[_Chunk] = []
        self.pending_rows = 0
        self.commit_task: asyncio.Task[None] | None = None
        self.failures: dict[str, PolySimError] = {}
        # Accounts a part write found unwritable rows of: their chunks still
        # buffered sit past the bad rows, so they are dropped. (A fetch failure
        # comes after every chunk of its account: those are written.)
        self.unwritable: set[str] = set()
        self.pages_open: dict[str, int] = {}
        self.pages_of_done = 0
        self.requests = 0
        self.done: set[str] = set()
        self.fetched = 0
        self.written = 0
        self.parts: list[str] = []

    # -- the directory ---------------------------------------------------------

    async def open(self) -> None:
        """Load (or create) the manifest, check it matches, remove leftovers."""
        try:
            found = await self.store.get(self.key, Manifest)
        except DecodeError as exc:
            raise ExportDirectoryError(f"{self.key} is not a valid export manifest: {exc}") from exc
        if found is None:
            self.manifest.columns = describe()
        else:
            if found.version > MANIFEST_VERSION:
                raise ExportDirectoryError(
                    f"{self.out_dir} was written by a newer polysim-async "
                    f"(manifest version {found.version}); upgrade to continue it"
                )
            asked = (self.fmt.name, self.side, self.market_id)
            had = (found.format, found.side, found.market_id)
            if asked != had:
                raise ExportDirectoryError(
                    f"{self.out_dir} holds an export with format={had[0]!r}, side={had[1]!r}, "
                    f"market_id={had[2]!r}; this call asks for format={asked[0]!r}, "
                    f"side={asked[1]!r}, market_id={asked[2]!r}. Use the same parameters "
                    "to continue it, or another directory"
                )
            self.manifest = found
        await asyncio.to_thread(tidy_directory, self.out_dir, found, key=self.keyed)
        if found is None:
            if self.keyed is not None:
                self.manifest.out_dir = str(self.out_dir.resolve())
            # Recorded before any part exists, so a part file without it is never ours.
            await self.store.put(self.key, self.manifest)
        for aid in self.ids:
            record = self.manifest.accounts.get(aid)
            self.starts[aid] = (None, None) if record is None else (record.watermark, record.walk)

    # -- the walks (in fan_out's worker tasks) ---------------------------------

    async def walk(self, account_id: str) -> AsyncIterator[_Chunk]:
        """The account's pages as chunks: the walk an earlier run left unfinished, if
        any, then a walk from the top down to the watermark."""
        mark, unfinished = self.starts[account_id]
        while True:
            resumed = unfinished is not None
            tracker = Tracker(mark, unfinished)
            pages = self.accounts.trade_pages(
                account_id,
                side=self.side,
                market_id=self.market_id,
                page_size=self.page_size,
                cursor=None if unfinished is None else unfinished.cursor,
                prefetch=False,  # the workers already overlap requests
            )
            try:
                async for page in pages:
                    if account_id in self.unwritable:
                        return  # a part write found an unwritable value of this account
                    repeated = tracker.repeated
                    keep, reached = tracker.page(page.data)
                    if tracker.repeated > repeated:
                        logger.warning(
                            "account %r: the server repeated %d fill(s) of an earlier page; "
                            "dropped (exported once)",
                            account_id,
                            tracker.repeated - repeated,
                        )
                    data = self.fmt.convert(account_id, keep) if keep else None
                    cursor = page.next_cursor
                    if reached or not cursor:
                        mark = tracker.finished()
                        yield _Chunk(account_id, data, len(keep), None, mark, True, not resumed)
                        break
                    walk = tracker.walk(cursor)
                    yield _Chunk(account_id, data, len(keep), walk, None, False, False)
            except PolySimError as exc:
                # Reported as a chunk so the consumer counts it as it happens; the
                # account's pages before it stay valid and are written with their
                # cursor, so the next run resumes after them.
                yield _Chunk(account_id, None, 0, None, None, False, True, error=exc)
                return
            finally:
                await aclose_iterator(pages)
            if not resumed:
                return
            # Fills that arrived while the walk was interrupted sit above its cursor:
            # walk again from the top, down to the watermark just reached.
            unfinished = None

    # -- the consumer ------------------------------------------------------------

    async def run(self) -> None:
        chunks = fan_out(
            self.ids,
            self.walk,
            items=lambda chunk: (chunk,),
            checkpoint=lambda chunk: None if chunk.walk is None else chunk.walk.cursor,
            concurrency=self.concurrency,
        )
        try:
            async for _aid, chunk in chunks:
                if chunk.error is not None:
                    self.fail(chunk.account_id, chunk.error)
                else:
                    await self.take(chunk)
                if self.failures and self.on_error == "raise":
                    break
        finally:
            await aclose_iterator(chunks)
        await self.flush()
        await self.wait_commit()
        self.report()

    def fail(self, account_id: str, error: PolySimError) -> None:
        """Record a failed account. Its chunks taken before the failure are still
        committed (see :meth:`commit`); nothing follows a fetch failure."""
        self.failures.setdefault(account_id, error)
        self.pages_of_done += self.pages_open.pop(account_id, 0)
        self.done.discard(account_id)
        self.report()

    async def take(self, chunk: _Chunk) -> None:
        aid = chunk.account_id
        if aid in self.unwritable:  # pragma: no cover - a race: queued before a write failed it
            return
        self.requests += 1
        pages = self.pages_open[aid] = self.pages_open.get(aid, 0) + 1
        if self.pending_rows + chunk.rows > self.part_rows:
            await self.flush()
        self.pending.append(chunk)
        self.pending_rows += chunk.rows
        self.fetched += chunk.rows
        if chunk.last:
            self.done.add(aid)
            self.pages_of_done += pages
            del self.pages_open[aid]
        self.report()
        interval = self.commit_interval
        if self.pending_rows >= self.part_rows or (
            interval is not None and self.now() - self.last_commit >= interval
        ):
            await self.flush()

    async def flush(self) -> None:
        """Hand the buffer to a commit task (after the previous commit finished)."""
        if not self.pending:
            return
        batch, self.pending, self.pending_rows = self.pending, [], 0
        await self.wait_commit()
        self.last_commit = self.now()
        self.commit_task = asyncio.create_task(self.commit(batch))

    async def wait_commit(self) -> None:
        """Wait for the running commit, raising its error. Cancelling the caller
        does not cancel the commit (see :meth:`settle`)."""
        task, self.commit_task = self.commit_task, None
        if task is not None:
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                self.commit_task = task  # still running: settle() waits for it
                raise

    async def settle(self) -> None:
        """Let a commit that is still writing finish, so nothing writes after we return."""
        task, self.commit_task = self.commit_task, None
        if task is not None:
            await asyncio.wait((task,))
            if not task.cancelled():
                task.exception()  # retrieved: the error that matters is already propagating

    async def commit(self, batch: list[_Chunk]) -> None:
        """Write the batch's part (if it has rows), then record it in the manifest.

        An account whose fetch failed meanwhile keeps its chunks (all from before
        the failure): they are written and its position moves past them. Accounts
        whose rows the format finds unwritable fail here and are left out (their
        position stays where their last written page left it).
        """
        manifest = self.manifest
        number = manifest.next_part
        batch = [c for c in batch if c.account_id not in self.unwritable]
        while rows := sum(c.rows for c in batch):
            name = part_name(number, self.fmt.extension)
            data = [c.data for c in batch if c.rows]
            write = functools.partial(self.fmt.write, chunks=data, metadata=self.metadata(name))
            try:
                await asyncio.to_thread(
                    write_atomic, self.out_dir / name, self.out_dir / tmp_name(name), write
                )
            except UnwritableRows as exc:
                for aid, error in exc.errors.items():
                    self.unwritable.add(aid)
                    self.fail(aid, error)
                batch = [c for c in batch if c.account_id not in self.unwritable]
                continue
            manifest.next_part = number + 1
            manifest.parts.append(PartRecord(name=name, rows=rows))
            self.parts.append(name)
            self.written += rows
            break
        for chunk in batch:
            record = manifest.accounts.get(chunk.account_id)
            if record is None:
                record = manifest.accounts[chunk.account_id] = AccountRecord()
            if chunk.rows:
                record.rows += chunk.rows
                if not record.parts or record.parts[-1] != number:
                    record.parts.append(number)
            if chunk.done:
                record.walk = None
                record.watermark = chunk.mark
            else:
                record.walk = chunk.walk
        await self.store.put(self.key, manifest)
        self.report()

    def metadata(self, part: str) -> dict[str, str]:
        """What each Parquet part carries under ``polysim.export``."""
        info = {
            "schema_version": SCHEMA_VERSION,
            "library": f"polysim-async {__version__}",
            "part": part,
            "format": self.fmt.name,
            "side": self.side,
            "market_id": self.market_id,
            "page_size": self.page_size,
            "part_rows": self.part_rows,
            "money": {"precision": MONEY_PRECISION, "scale": MONEY_SCALE},
            "columns": describe(),
        }
        return {"polysim.export": msgspec.json.encode(info).decode()}

    # -- reporting ---------------------------------------------------------------

    def elapsed(self) -> float:
        return max(0.0, self.now() - self.started)

    def report(self) -> None:
        if self.progress is None:
            return
        elapsed = self.elapsed()
        finished = len(self.done) + len(self.failures)
        self.progress(
            ExportProgress(
                accounts_total=len(self.ids),
                accounts_done=len(self.done),
                accounts_failed=len(self.failures),
                fills_fetched=self.fetched,
                fills_written=self.written,
                parts_written=len(self.parts),
                requests=self.requests,
                elapsed=elapsed,
                fills_per_second=self.fetched / elapsed if elapsed > 0 else None,
                eta=estimate_eta(
                    accounts_total=len(self.ids),
                    accounts_done=finished,
                    pages_of_done=self.pages_of_done,
                    pages_of_open=sum(self.pages_open.values()),
                    budget=self.budget,
                    observed=self.requests / elapsed if elapsed > 0 else None,
                ),
            )
        )

    def summary(self) -> ExportSummary:
        return ExportSummary(
            out_dir=self.out_dir,
            format=self.fmt.name,
            accounts=len(self.ids),
            completed=len(self.done),
            resumed=sum(1 for _, walk in self.starts.values() if walk is not None),
            fills=self.written,
            parts=tuple(self.parts),
            total_fills=sum(p.rows for p in self.manifest.parts),
            seconds=self.elapsed(),
        )


class _Leased:
    """The manifest in a checkpoint store, every write fenced by the export's lease."""

    def __init__(self, keeper: LeaseKeeper, name: str) -> None:
        self.keeper = keeper
        self.name = name

    async def get(self, key: str, type: type[M]) -> M | None:
        return await self.keeper.store.get(key, type)

    async def put(self, key: str, value: Any) -> None:
        await self.keeper.put(key, value, name=self.name)


async def run_export(
    accounts: PartnerAccounts,
    requester: Requester,
    account_ids: Iterable[str],
    out_dir: str | os.PathLike[str],
    *,
    format: ExportFormat = "parquet",
    side: Side | str | None = None,
    market_id: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    part_rows: int = DEFAULT_PART_ROWS,
    concurrency: int = DEFAULT_FAN_OUT_CONCURRENCY,
    on_error: OnError = "continue",
    progress: ProgressCallback | None = None,
    store: ManifestStore | None = None,
    commit_interval: float | None = COMMIT_INTERVAL,
    shard: Shard | None = None,
    checkpoints: CheckpointStore | None = None,
    key: str | None = None,
    lease_ttl: float = DEFAULT_LEASE_TTL,
) -> ExportSummary:
    """Export every fill of ``account_ids`` into ``out_dir``; see ``PartnerAccounts.export``.

    Args:
        accounts: ``client.partner.accounts`` (its ``trade_pages``).
        requester: the client's request path (read for its clock and rate budget).
        store: where the manifest is kept (a file in ``out_dir`` by default).
        checkpoints, key, lease_ttl: ``PartnerAccounts.export``'s ``store``, ``key``
            and ``lease_ttl`` (the manifest kept there under a lease; overrides ``store``).
        commit_interval: seconds after which a part is cut even if not full
            (``None``: only full parts, and the last one).
        The other arguments are those of ``PartnerAccounts.export``.

    Returns:
        What this call wrote.

    Raises:
        InvalidArgumentError, MissingDependencyError, ExportDirectoryError: before
            anything is fetched.
        ExportError: accounts failed (after the others were exported, with
            ``on_error="continue"``). OSError: writing failed.
    """
    ids = account_id_list(account_ids)
    if shard is not None:
        ids = select_shard(ids, check_shard(shard))
    check_store(checkpoints, key, what="export")
    fmt = make_format(format)
    size = check_int("page_size", page_size, low=1, high=MAX_PAGE_SIZE)
    rows = check_int("part_rows", part_rows, low=1)
    if rows < size:
        raise InvalidArgumentError(
            f"part_rows ({rows}) must be at least page_size ({size}): a page is never split"
        )
    if on_error not in ("raise", "continue"):
        raise InvalidArgumentError(f"on_error must be 'raise' or 'continue', got {on_error!r}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidArgumentError(f"concurrency must be a positive integer, got {concurrency!r}")
    if progress is not None and not callable(progress):
        raise InvalidArgumentError(f"progress must be a callable or None, got {progress!r}")
    side_value = None if side is None else check_enum("side", side, Side).value
    if market_id is not None:
        check_str("market_id", market_id, max_len=256)
    path = Path(out_dir)
    export = _Export(
        accounts,
        ids,
        path,
        fmt,
        side=side_value,
        market_id=market_id,
        page_size=size,
        part_rows=rows,
        concurrency=concurrency,
        on_error=on_error,
        progress=progress,
        store=FileStore() if store is None else store,
        now=_monotonic(requester),
        budget=_budget(requester),
        commit_interval=commit_interval,
        key=key,
    )
    keeper = (
        None
        if checkpoints is None
        else LeaseKeeper(checkpoints, ttl=lease_ttl, clock=requester.clock)
    )
    await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
    lock = DirectoryLock(path)
    await asyncio.to_thread(lock.__enter__)
    try:
        async with contextlib.AsyncExitStack() as stack:
            if keeper is not None and key is not None:
                await stack.enter_async_context(keeper)
                if await keeper.acquire(key) is None:
                    raise ExportDirectoryError(
                        f"the export {key!r} is in use by another worker (its lease is held)"
                    )
                export.store = _Leased(keeper, key)
            await export.open()
            try:
                await export.run()
            finally:
                await export.settle()
    finally:
        lock.__exit__(None, None, None)
    if export.failures:
        first = next(iter(export.failures.values()))
        raise ExportError(export.failures, export.summary()) from first
    return export.summary()
