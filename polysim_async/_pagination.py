"""Cursor walking, shared by every paginated resource; it knows no API area.

Two walkers share one contract (each page fully read and decoded before it is
yielded, stop on an empty cursor, :class:`PaginationError` on a repeated one):

* :func:`walk_cursor` fetches a page only when the consumer asks for it.
* :func:`walk_cursor_prefetch` fetches page N+1 in a background task while the
  consumer works through page N (the next cursor is known as soon as page N is
  decoded). It runs at most one request ahead, so memory stays flat: the page
  the consumer holds plus the one being fetched.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

from ._errors import PaginationError
from ._tasks import aclose_iterator, cancel_and_wait

__all__ = ["flatten", "walk_cursor", "walk_cursor_prefetch"]

P = TypeVar("P")
T = TypeVar("T")


def _repeated(cursor: str) -> PaginationError:
    return PaginationError(f"the server repeated cursor {cursor[:40]!r}; stopping the walk")


async def walk_cursor(
    fetch: Callable[[str | None], Awaitable[P]],
    next_cursor: Callable[[P], str | None],
    cursor: str | None = None,
) -> AsyncGenerator[P, None]:
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
            raise _repeated(nxt)
        seen.add(nxt)
        cursor = nxt


async def walk_cursor_prefetch(
    fetch: Callable[[str | None], Coroutine[Any, Any, P]],
    next_cursor: Callable[[P], str | None],
    cursor: str | None = None,
) -> AsyncGenerator[P, None]:
    """Yield pages like :func:`walk_cursor`, fetching one page ahead of the consumer.

    As soon as page N is decoded and its cursor checked, a task starts fetching
    page N+1, and then page N is yielded. At most one request is in flight, and
    at most two pages are alive at once (the consumer's and the prefetched one).

    Consequence to know: a consumer that stops early has spent one extra
    request (the prefetch), which counts against the rate budget.

    Cleanup: reaching the last page, or an error raised by the walk, cancels
    and awaits the prefetch at once. ``async for`` never closes a generator it
    leaves early: after a ``break``, or when the consumer is cancelled inside
    its loop body, the prefetch keeps running until the generator is closed
    (``aclose()``) or garbage-collected. For deterministic cleanup, wrap it::

        async with contextlib.aclosing(walk_cursor_prefetch(fetch, next_cursor)) as pages:
            async for page in pages:
                ...

    Closing cancels the prefetch and waits for it to finish, so no task outlives
    the walk. Cancellation of the consuming task always propagates.

    Args:
        fetch: coroutine function returning the page for a cursor (``None`` = first).
        next_cursor: reads the next cursor from a page; falsy means last page.
        cursor: where to start (a saved ``next_cursor``), or ``None``.

    Returns:
        An async iterator of pages, in server order.

    Raises:
        PaginationError: the server returned a cursor it had already returned;
            raised after the page carrying it has been yielded, and before any
            request for it is sent.
        Whatever ``fetch`` raises, when the consumer reaches that page.
    """
    seen: set[str] = set() if cursor is None else {cursor}
    pending: asyncio.Task[P] | None = None
    try:
        page = await fetch(cursor)
        while True:
            nxt = next_cursor(page)
            if nxt and nxt not in seen:
                seen.add(nxt)
                pending = asyncio.create_task(fetch(nxt))
            yield page
            if not nxt:
                return
            if pending is None:
                raise _repeated(nxt)
            # ``pending`` stays set while awaited: if the consumer is cancelled
            # here, the ``finally`` still waits for the prefetch to wind down.
            page = await pending
            pending = None
    finally:
        if pending is not None:
            await cancel_and_wait([pending])


async def flatten(
    pages: AsyncIterator[P], items: Callable[[P], Iterable[T]]
) -> AsyncGenerator[T, None]:
    """Yield every item of every page, in order.

    Closing this iterator (``aclose()``, e.g. by leaving ``contextlib.aclosing``)
    closes ``pages`` too, so a prefetching walk underneath stops at once instead
    of at garbage collection; so does finishing it or an error from ``pages``.

    Returns:
        An async iterator of the items.
    """
    try:
        async for page in pages:
            for item in items(page):
                yield item
    finally:
        await aclose_iterator(pages)
