"""Saving a CSV export to a file, chunk by chunk, never half-written.

The bytes go to a hidden ``.part`` file beside the destination, which replaces
the destination only once the last chunk is written: a failed, cancelled or
refused download leaves the destination as it was, and removes the ``.part``
file. Chunk writes run in a worker thread, off the event loop; a cancelled
download waits for the write in flight (a thread cannot be stopped) before it
removes the file. Opening the ``.part`` file, closing it and renaming it over
the destination are single quick system calls made on the loop, with no
``await`` between them and the end: a cancellation arrives either before the
rename (the destination is untouched) or not at all.

The body is streamed (:meth:`Requester.stream`): each chunk is written as it
arrives and never held whole, with no size cap (``max_response_size`` bounds
what is decoded in memory, not a file). Retries happen only before the first
byte is written; a connection lost mid-body fails the export.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ._errors import InvalidArgumentError
from ._requester import Requester

__all__ = ["CsvExport", "save_csv"]

_TAIL = 512  # bytes kept to read the last line
_TRUNCATED = b"# truncated"


@dataclass(frozen=True, slots=True)
class CsvExport:
    """A CSV export saved to disk.

    Attributes:
        path: where the file was written.
        size: bytes written.
        truncated: the server's row cap cut the export (its last line is a
            ``# truncated`` note): narrow the date range to export the rest.
    """

    path: Path
    size: int
    truncated: bool


def _destination(path: str | os.PathLike[str]) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgumentError(f"path must be a file path, got {path!r}")
    dest = Path(path)
    if dest.is_dir():
        raise InvalidArgumentError(f"path is a directory: {dest}")
    if not dest.parent.is_dir():
        raise InvalidArgumentError(f"the directory of {dest} does not exist")
    return dest


def _write_fully(file: io.FileIO, data: bytes) -> None:
    # Unbuffered: each chunk reaches the file as it arrives; a raw write may be partial.
    view = memoryview(data)
    while view:
        written = file.write(view)
        view = view[written or 0 :]


async def _write(file: io.FileIO, data: bytes) -> None:
    """Write ``data`` in a worker thread; if cancelled, let the write finish first.

    The caller closes and removes the file on cancellation: it must not do so
    while a thread still writes to it (the descriptor could be reused).
    """
    write = asyncio.ensure_future(asyncio.to_thread(_write_fully, file, data))
    try:
        await asyncio.shield(write)
    except asyncio.CancelledError:
        while not write.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait((write,))
        raise


async def _write_all(chunks: AsyncIterator[bytes], file: io.FileIO) -> tuple[int, bytes]:
    size, tail = 0, b""
    async for chunk in chunks:
        if not chunk:
            continue
        await _write(file, chunk)
        size += len(chunk)
        tail = (tail + chunk)[-_TAIL:]
    return size, tail


def _is_truncated(tail: bytes) -> bool:
    lines = [line for line in tail.splitlines() if line.strip()]
    return bool(lines) and lines[-1].lstrip().lower().startswith(_TRUNCATED)


async def save_csv(
    requester: Requester,
    api_path: str,
    dest: str | os.PathLike[str],
    params: Mapping[str, str],
) -> CsvExport:
    """GET ``api_path`` as CSV and save it to ``dest``; see the module docstring.

    Raises:
        InvalidArgumentError: ``dest`` is not a writable file path (nothing sent).
        APIStatusError, TransportError: the request failed; ``dest`` is untouched.
        OSError: the file could not be written; ``dest`` is untouched.

    Cancellation propagates; the partial file is removed.
    """
    target = _destination(dest)
    part = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
    headers = {"Accept": "text/csv"}
    file: io.FileIO | None = None
    try:
        file = io.FileIO(part, "wb")
        async with requester.stream("GET", api_path, params=params, headers=headers) as body:
            size, tail = await _write_all(body.iter_chunks(), file)
        # No await from here on: a cancellation cannot land between these and the return.
        file.close()
        os.replace(part, target)
    except BaseException:
        # Synchronous on purpose: it must run even while this task is being cancelled.
        if file is not None:
            file.close()
            with contextlib.suppress(OSError):
                part.unlink()
        raise
    return CsvExport(path=target, size=size, truncated=_is_truncated(tail))
