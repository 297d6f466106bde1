"""Walk many cursor feeds at once and merge their items into one async iterator.

It knows no API area: a resource method hands it a key list and a function that
opens one key's page walk. Every request still goes through the client's one
request path, so the shared rate limiter paces all workers together: with
enough workers the budget stays saturated, and it is never exceeded.

Shape::

    keys ──► N worker tasks ──► bounded queue of pages ──► consumer yields pair(key, item)

* Memory is bounded: at most ``concurrency`` pages wait in the queue, one more
  per worker is blocked on a full queue, and the consumer holds one.
* Items of one key arrive in feed order; keys interleave.
* A key's failure is never dropped: ``on_error="raise"`` stops everything and
  raises :class:`FanOutError` at once; ``on_error="continue"`` finishes every
  other key first, then raises :class:`FanOutError` naming every failed key.
  Either way the error carries a resume cursor for every key that did not
  finish (failed, stopped mid-walk, or never started) and the set of keys that did.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, overload

from ._errors import FanOutError, InvalidArgumentError, PolySimError
from ._tasks import aclose_iterator, cancel_and_wait

__all__ = ["DEFAULT_FAN_OUT_CONCURRENCY", "OnError", "fan_out"]

K = TypeVar("K")
P = TypeVar("P")
T = TypeVar("T")
R = TypeVar("R")

#: Accounts pulled at once by ``trades_many`` unless told otherwise.
DEFAULT_FAN_OUT_CONCURRENCY = 8
#: What ``trades_many`` does when one account's feed fails.
OnError = Literal["raise", "continue"]


@dataclass(frozen=True, slots=True)
class _Page(Generic[K, P]):
    key: K
    page: P


@dataclass(frozen=True, slots=True)
class _Failed(Generic[K]):
    key: K
    error: PolySimError


@dataclass(frozen=True, slots=True)
class _Finished(Generic[K]):
    key: K


@dataclass(frozen=True, slots=True)
class _Crashed:
    error: Exception


_DONE = object()


async def _worker(
    keys: Iterator[K],
    walk: Callable[[K], AsyncIterator[P]],
    queue: asyncio.Queue[object],
) -> None:
    try:
        # ``keys`` is shared: each worker takes the next key when it is free.
        for key in keys:
            pages = walk(key)
            try:
                async for page in pages:
                    await queue.put(_Page(key, page))
                await queue.put(_Finished(key))
            except PolySimError as exc:
                await queue.put(_Failed(key, exc))
            finally:
                await aclose_iterator(pages)
    except Exception as exc:
        # A bug rather than an API failure: stop the fan-out with it, unwrapped.
        await queue.put(_Crashed(exc))
        return
    await queue.put(_DONE)


@overload
def fan_out(
    keys: Sequence[K],
    walk: Callable[[K], AsyncIterator[P]],
    *,
    items: Callable[[P], Iterable[T]],
    checkpoint: Callable[[P], str | None],
    start: Callable[[K], str | None] = ...,
    concurrency: int = ...,
    on_error: OnError = ...,
) -> AsyncGenerator[tuple[K, T], None]: ...


@overload
def fan_out(
    keys: Sequence[K],
    walk: Callable[[K], AsyncIterator[P]],
    *,
    items: Callable[[P], Iterable[T]],
    pair: Callable[[K, T], R],
    checkpoint: Callable[[P], str | None],
    start: Callable[[K], str | None] = ...,
    concurrency: int = ...,
    on_error: OnError = ...,
) -> AsyncGenerator[R, None]: ...


def fan_out(
    keys: Sequence[K],
    walk: Callable[[K], AsyncIterator[P]],
    *,
    items: Callable[[P], Iterable[T]],
    pair: Callable[[K, T], Any] | None = None,
    checkpoint: Callable[[P], str | None],
    start: Callable[[K], str | None] = lambda key: None,
    concurrency: int = DEFAULT_FAN_OUT_CONCURRENCY,
    on_error: OnError = "raise",
) -> AsyncGenerator[Any, None]:
    """Walk ``walk(key)`` for every key with ``concurrency`` workers; yield ``pair(key, item)``.

    Args:
        keys: the feeds to walk, each once, in order of starting.
        walk: opens one key's page walk (an async generator; it is closed when done).
        items: the items of a page, yielded in order.
        pair: builds what is yielded from a key and one of its items (by default
            the tuple ``(key, item)``).
        checkpoint: a page's next cursor, recorded once all its items were yielded;
            an empty one marks the key's last page (the key is then complete).
        start: the cursor each key's walk starts from (for ``resume_cursors``).
        concurrency: walks in progress at once (1 or more).
        on_error: ``"raise"`` or ``"continue"``; see the module docstring.

    Returns:
        An async iterator of ``pair(key, item)``.

    Raises:
        InvalidArgumentError: bad ``concurrency`` or ``on_error``, raised by this
            call before anything starts.
        FanOutError: a walk raised a :class:`PolySimError`; ``resume_cursors``
            covers every key not in ``completed``. Any other exception from a
            walk stops the fan-out and is re-raised unchanged.

    Cleanup: when the iterator finishes or raises, every worker is cancelled and
    awaited at once. ``async for`` never closes a generator it leaves early:
    after a ``break``, or when the consumer is cancelled inside its loop body,
    the workers keep running until the iterator is closed (``aclose()``) or
    garbage-collected. For deterministic cleanup, wrap it::

        async with contextlib.aclosing(fan_out(keys, walk, ...)) as pairs:
            async for key, item in pairs:
                ...

    Closing cancels every worker and waits for them, so no task survives the
    fan-out. Cancellation propagates.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidArgumentError(f"concurrency must be a positive integer, got {concurrency!r}")
    if on_error not in ("raise", "continue"):
        raise InvalidArgumentError(f"on_error must be 'raise' or 'continue', got {on_error!r}")
    return _run(keys, walk, items, pair or _tuple, checkpoint, start, concurrency, on_error)


def _tuple(key: Any, item: Any) -> tuple[Any, Any]:
    return key, item


async def _run(
    keys: Sequence[K],
    walk: Callable[[K], AsyncIterator[P]],
    items: Callable[[P], Iterable[T]],
    pair: Callable[[K, T], R],
    checkpoint: Callable[[P], str | None],
    start: Callable[[K], str | None],
    concurrency: int,
    on_error: OnError,
) -> AsyncGenerator[R, None]:
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=concurrency)
    shared = iter(keys)
    tasks = [
        asyncio.create_task(_worker(shared, walk, queue))
        for _ in range(min(concurrency, len(keys)))
    ]
    failures: dict[K, PolySimError] = {}
    progress: dict[K, str | None] = {}
    completed: set[K] = set()
    try:
        live = len(tasks)
        while live:
            item = await queue.get()
            if item is _DONE:
                live -= 1
            elif isinstance(item, _Page):
                key = item.key
                for value in items(item.page):
                    yield pair(key, value)
                cursor = checkpoint(item.page)
                progress[key] = cursor
                if not cursor:
                    # Its last page is delivered: done, even if stopped before _Finished.
                    completed.add(key)
            elif isinstance(item, _Finished):
                completed.add(item.key)
            elif isinstance(item, _Failed):
                failures[item.key] = item.error
                if on_error == "raise":
                    break
            elif isinstance(item, _Crashed):
                raise item.error
        if failures:
            first = next(iter(failures.values()))
            # Failed keys first, then those cancelled mid-walk or never started.
            unfinished = [*failures, *(k for k in keys if k not in completed and k not in failures)]
            raise FanOutError(
                {str(k): e for k, e in failures.items()},
                {str(k): progress[k] if k in progress else start(k) for k in unfinished},
                completed={str(k) for k in completed if k not in failures},
            ) from first
    finally:
        await cancel_and_wait(tasks)
