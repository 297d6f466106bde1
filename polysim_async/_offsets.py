"""Walking limit/offset listings that answer with a bare array (wallets, keys).

The walk stops on a short or empty page, as the official SDK's iterators do.
A server that ignores ``offset`` would answer the same full page forever: a
page equal to the one before it raises :class:`PaginationError` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from ._errors import PaginationError

__all__ = ["walk_offsets"]

T = TypeVar("T")


async def walk_offsets(
    fetch: Callable[[int, int], Awaitable[list[T]]], page_size: int
) -> AsyncIterator[T]:
    """Yield every row of ``fetch(limit, offset)`` pages, offset by offset.

    Each page is fully read before its rows are yielded; nothing is held open
    between pages, so ``break`` is safe.

    Raises:
        PaginationError: the server sent the same full page twice in a row.
    """
    offset = 0
    previous: list[T] | None = None
    while True:
        rows = await fetch(page_size, offset)
        if rows and rows == previous:
            raise PaginationError(f"the server repeated the page at offset {offset}; stopping")
        for row in rows:
            yield row
        if len(rows) < page_size:
            return
        previous = rows
        offset += len(rows)
