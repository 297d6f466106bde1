"""Cursor walking, shared by every paginated resource; it knows no API area."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from ._errors import PaginationError

__all__ = ["walk_cursor"]

P = TypeVar("P")


async def walk_cursor(
    fetch: Callable[[str | None], Awaitable[P]],
    next_cursor: Callable[[P], str | None],
    cursor: str | None = None,
) -> AsyncIterator[P]:
    """Yield pages from ``fetch(cursor)`` until the cursor comes back empty.

    Each page is fully read and decoded before it is yielded, and nothing is
    held open between yields, so breaking out early leaks nothing.

    Raises:
        PaginationError: the server returned a cursor it had already returned.
    """
    seen: set[str] = set() if cursor is None else {cursor}
    while True:
        page = await fetch(cursor)
        yield page
        nxt = next_cursor(page)
        if not nxt:
            return
        if nxt in seen:
            raise PaginationError(f"the server repeated cursor {nxt[:40]!r}; stopping the walk")
        seen.add(nxt)
        cursor = nxt
