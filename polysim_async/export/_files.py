"""Crash-safe file writing: write under a temporary name, fsync, rename, fsync the directory.

A reader (or a resumed export) sees either the old file or the complete new one,
never a half-written one: ``os.replace`` is atomic on POSIX and Windows. The
fsyncs make the same hold after a power cut, not only after a killed process:
the data reaches the disk before the rename that publishes it, and the rename
reaches the disk before the manifest that lists the file.

Every function here blocks; the export calls them in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["fsync_dir", "fsync_file", "publish", "write_atomic"]


def fsync_file(path: Path) -> None:
    """Flush ``path``'s data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make renames and deletions in directory ``path`` durable (a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def publish(tmp: Path, final: Path) -> None:
    """Rename a complete, fsynced ``tmp`` to ``final`` atomically, and make it durable."""
    os.replace(tmp, final)
    fsync_dir(final.parent)


def write_atomic(final: Path, tmp: Path, write: Callable[[Path], None]) -> None:
    """Create or replace ``final`` through ``tmp``: write, fsync, rename, fsync the directory.

    Args:
        final: the file to create or replace.
        tmp: the temporary name (one readers skip); removed if writing fails.
        write: writes the complete file at the path it is given.

    Raises:
        Whatever ``write`` raises, or OSError: ``final`` is untouched and ``tmp`` removed.
    """
    try:
        write(tmp)
        fsync_file(tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    publish(tmp, final)
