"""The export manifest: what is in ``out_dir``, and where each account stands.

``_manifest.json`` (its leading underscore makes dataset readers skip it) is the
single source of truth of a directory. A part file exists for readers once it
is renamed to its final name, but it belongs to the export only once the
manifest lists it: a part the manifest does not list is the leftover of a killed
run, and the next run deletes it and fetches its rows again.

Per account it records the walk in progress (the cursor after the last page
whose rows are in listed parts, and the walk's newest instant) and, once a walk
has finished, the watermark: the newest ``filled_at`` exported and the trade ids
exported at exactly that instant (see :mod:`._marks`).

The manifest is read and written through a :class:`ManifestStore` (``get`` and
``put`` of a msgspec-encodable object by key, the shape of the shared
checkpoint stores); :class:`FileStore` keeps it in a file, written atomically.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol, TypeVar

import msgspec

from .._errors import DecodeError
from ._errors import ExportDirectoryError
from ._files import fsync_dir, write_atomic

__all__ = [
    "LOCK_NAME",
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "AccountRecord",
    "DirectoryLock",
    "FileStore",
    "Manifest",
    "ManifestStore",
    "Mark",
    "PartRecord",
    "Walk",
    "part_name",
    "tidy_directory",
    "tmp_name",
]

MANIFEST_NAME = "_manifest.json"
LOCK_NAME = "_export.lock"
MANIFEST_VERSION = 1
M = TypeVar("M")


class Mark(msgspec.Struct, frozen=True):
    """A watermark: the newest instant exported, and the trade ids exported at it."""

    filled_at: str
    trade_ids: list[int]


class Walk(msgspec.Struct, frozen=True):
    """A walk down an account's feed that has not reached its end (or the watermark) yet."""

    #: Where the next page starts: every row above it is in listed parts.
    cursor: str
    #: ``filled_at`` of the walk's first (newest) row: the next watermark's instant.
    top: str
    #: Trade ids exported by this walk at exactly ``top``.
    top_ids: list[int]
    #: ``filled_at`` of the last row read (``None`` in manifests written before it was kept).
    floor: str | None = None
    #: Trade ids read at exactly ``floor``: a repeat of one on the next page is dropped.
    floor_ids: list[int] = msgspec.field(default_factory=list)


class AccountRecord(msgspec.Struct, omit_defaults=True):
    """Where one account stands."""

    #: Fills of this account in listed parts.
    rows: int = 0
    #: Numbers of the parts holding its fills.
    parts: list[int] = msgspec.field(default_factory=list)
    #: Set once a walk finished: the next run fetches only what is newer.
    watermark: Mark | None = None
    #: Set while a walk is unfinished: the next run continues it.
    walk: Walk | None = None


class PartRecord(msgspec.Struct, frozen=True):
    """One part file of the export."""

    name: str
    rows: int


class Manifest(msgspec.Struct):
    """The whole ``_manifest.json``."""

    format: str
    side: str | None
    market_id: str | None
    version: int = MANIFEST_VERSION
    columns: list[dict[str, str]] = msgspec.field(default_factory=list)
    next_part: int = 1
    parts: list[PartRecord] = msgspec.field(default_factory=list)
    accounts: dict[str, AccountRecord] = msgspec.field(default_factory=dict)
    #: With a checkpoint store (``key=``): the directory the parts were written
    #: to, for the message when the same key is used with another directory.
    out_dir: str | None = None


class ManifestStore(Protocol):
    """Where a manifest is kept: a msgspec-encodable object by key.

    The shape of ``CheckpointStore`` (issue 12): its SQLite and Redis stores fit.
    """

    async def get(self, key: str, type: type[M]) -> M | None:
        """The object saved under ``key``, or ``None`` if there is none.

        Raises:
            DecodeError: what is stored is not a valid ``type``.
        """
        ...

    async def put(self, key: str, value: Any) -> None:
        """Replace what is stored under ``key`` with ``value``, atomically."""
        ...


class FileStore:
    """Keeps each object as JSON in the file named by its key, replaced atomically.

    A ``put`` writes ``<key>.tmp``, fsyncs it, renames it over the key and fsyncs
    the directory, in a worker thread. Cancelling it leaves either the old or the
    new file, never a mix.
    """

    async def get(self, key: str, type: type[M]) -> M | None:
        """Read and decode the file ``key``; ``None`` if it does not exist.

        Raises:
            DecodeError: the file is not a valid ``type``.
        """
        try:
            data = await asyncio.to_thread(Path(key).read_bytes)
        except FileNotFoundError:
            return None
        try:
            return msgspec.json.decode(data, type=type)
        except msgspec.DecodeError as exc:
            raise DecodeError(f"{key}: {exc}") from None

    async def put(self, key: str, value: Any) -> None:
        """Encode ``value`` and replace the file ``key`` with it, durably."""
        data = msgspec.json.format(msgspec.json.encode(value), indent=1)
        path = Path(key)

        def write(at: Path) -> None:
            at.write_bytes(data)

        tmp = path.with_name(path.name + ".tmp")
        await asyncio.to_thread(write_atomic, path, tmp, write)


def part_name(number: int, extension: str) -> str:
    """``part-00000042.parquet``."""
    return f"part-{number:08d}.{extension}"


def tmp_name(final: str) -> str:
    """The name a part is written under before it is complete (readers skip dot files)."""
    return f".{final}.tmp"


_OURS = re.compile(r"\.?part-\d{8}\.(?:parquet|csv|ndjson)(?:\.tmp)?")


def tidy_directory(
    out_dir: Path, manifest: Manifest | None, *, key: str | None = None
) -> list[str]:
    """Remove what a killed export left in ``out_dir``; return the names removed.

    ``key``: the manifest's key in a checkpoint store (``None``: it is
    ``out_dir/_manifest.json``); the error then names the key, the directory
    the manifest was written for and the remedy, ``store.delete(key)``.

    Leftovers are temporary files (``.part-*.tmp``, ``_manifest.json.tmp``) and
    part files the manifest does not list. Files of any other name are never
    touched. Blocking.

    Raises:
        ExportDirectoryError: a part the manifest lists is missing, or part files
            exist but there is no manifest (so whose they are is unknown).
    """
    names = set(os.listdir(out_dir))
    ours = {n for n in names if _OURS.fullmatch(n)}
    if manifest is None:
        if ours and key is not None:
            raise ExportDirectoryError(
                f"{out_dir} holds export part files but the store key {key!r} holds no"
                " manifest (a new key for this directory, or a store that lost its data):"
                " use an empty out_dir, or remove the part files"
            )
        if ours:
            raise ExportDirectoryError(
                f"{out_dir} holds export part files but no {MANIFEST_NAME}; "
                "use an empty directory (or restore the manifest)"
            )
        listed: set[str] = set()
    else:
        listed = {p.name for p in manifest.parts}
        missing = sorted(listed - names)
        if missing and key is not None:
            written = f"written to {manifest.out_dir}" if manifest.out_dir else "written elsewhere"
            raise ExportDirectoryError(
                f"the export manifest under the store key {key!r} lists {len(missing)} part(s)"
                f" {written}, not in {out_dir} (first: {missing[0]}). Continue it with that"
                f" out_dir, or start this key afresh: await store.delete({key!r})"
            )
        if missing:
            raise ExportDirectoryError(
                f"{out_dir}: {len(missing)} part(s) listed in {MANIFEST_NAME} are missing "
                f"(first: {missing[0]}); the export cannot continue without losing fills. "
                "Restore them, or start again in an empty directory"
            )
    removed = sorted((ours - listed) | (names & {MANIFEST_NAME + ".tmp"}))
    for name in removed:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(out_dir / name)
    if removed:
        fsync_dir(out_dir)
    return removed


class DirectoryLock:
    """An exclusive advisory lock on ``out_dir`` (``_export.lock``), held while an export runs.

    The file exists only while an export runs (or after one was killed: then
    it is taken over by the next run and removed again).

    The operating system drops it when the process dies (``kill -9`` included),
    so a crash never leaves the directory locked. Where ``fcntl`` does not exist
    (Windows) it locks nothing.
    """

    def __init__(self, out_dir: Path) -> None:
        self._path = out_dir / LOCK_NAME
        self._file: IO[bytes] | None = None

    def __enter__(self) -> DirectoryLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        while True:
            file = open(self._path, "ab")  # held open (and locked) until __exit__
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.close()
                raise ExportDirectoryError(
                    f"another export is writing to {self._path.parent}; wait for it to finish"
                ) from None
            # The holder before us removes the file as it leaves: a lock on a file no
            # longer at the path locks nothing, so open the path again.
            try:
                same = os.stat(self._path).st_ino == os.fstat(file.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._file = file
                return self
            file.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            # Removed while still locked (see __enter__), so the directory keeps
            # only the export's own files; a killed run leaves it, harmlessly.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)
            self._file.close()  # closing the file releases the lock
            self._file = None
