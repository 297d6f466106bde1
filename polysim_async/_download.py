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

Streaming needs the request path to hand over the body as it arrives. When it
offers ``stream(method, path, *, params, headers)`` (an async context manager
whose object has ``iter_chunks()``, the addition proposed for ``Requester`` and
the transport in issue 14), the body is never held whole. Until then the body
is read whole by the transport (bounded only by the server's own row cap) and
written out in slices: the documented gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ._errors import InvalidArgumentError
from ._requester import Requester

__all__ = ["CsvExport", "save_csv"]

_SLICE = 1 << 20  # bytes per write when the body is already in memory
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


class ByteStream(Protocol):
    """A successful response whose body is read as it arrives."""

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """Yield the body in chunks as they arrive."""
        ...


class StreamingRequester(Protocol):
    """The request path's proposed streaming call (limiter, retries before the
    first byte, error mapping as for ``send``)."""

    def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AbstractAsyncContextManager[ByteStream]:
        """Send the request; enter to get the 2xx response, body unread."""
        ...


def _destination(path: str | os.PathLike[str]) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgumentError(f"path must be a file path, got {path!r}")
    dest = Path(path)
    if dest.is_dir():
        raise InvalidArgumentError(f"path is a directory: {dest}")
    if not dest.parent.is_dir():
        raise InvalidArgumentError(f"the directory of {dest} does not exist")
    return dest


async def _slices(data: bytes) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(view), _SLICE):
        yield bytes(view[start : start + _SLICE])


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
        stream = getattr(requester, "stream", None)
        if stream is not None:
            streaming: StreamingRequester = requester  # type: ignore[assignment]
            async with streaming.stream("GET", api_path, params=params, headers=headers) as body:
                size, tail = await _write_all(body.iter_chunks(), file)
        else:
            response = await requester.send("GET", api_path, params=params, headers=headers)
            size, tail = await _write_all(_slices(response.content), file)
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
