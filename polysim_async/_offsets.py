"""Walking limit/offset listings that answer with a bare array (wallets, keys).

The walk stops on a short or empty page, as the official SDK's iterators do.
A server that ignores ``offset`` would answer the same full page forever: a
page equal to the one before it raises :class:`PaginationError` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

from ._codec import decode
from ._errors import PaginationError
from ._requester import Requester

__all__ = ["Envelope", "walk_listing", "walk_offsets"]

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


class Envelope(Protocol[T]):
    """A keyed list envelope (``{"wallets": [...]}``, ``{"items": [...]}`` …)."""

    @property
    def rows(self) -> list[T]:
        """The listed rows, whichever key carried them."""
        ...


def walk_listing(
    requester: Requester, path: str, wire: Any, row: type[T], page_size: int
) -> AsyncIterator[T]:
    """Walk ``GET path?limit=&offset=`` answered with a bare array or an :class:`Envelope`.

    Args:
        wire: the decode type, ``list[row] | <Envelope of row>``.
        row: the row type (for the caller's static type).
    """

    async def fetch(limit: int, offset: int) -> list[T]:
        params = {"limit": str(limit), "offset": str(offset)}
        response = await requester.send("GET", path, params=params)
        page: list[T] | Envelope[T] = decode(
            wire, response.content, status=response.status, request_id=response.request_id
        )
        return page if isinstance(page, list) else page.rows

    return walk_offsets(fetch, page_size)
