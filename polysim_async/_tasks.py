"""Small helpers for the library's own tasks and async iterators: cancel, await, close, wake.

Shared by the prefetching pager, the fan-out, the execution stream and the
trade watch, so every one of them cleans up the same way and never swallows
the cancellation of the task that cleans up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import Any, TypeVar

__all__ = ["aclose_iterator", "cancel_and_wait", "consume_outcome", "wait_within", "wake"]

T = TypeVar("T")


def consume_outcome(task: asyncio.Future[Any]) -> None:
    """Mark a finished task's exception as retrieved, so asyncio does not log
    "Task exception was never retrieved" for a result nobody asked for."""
    if task.done() and not task.cancelled():
        task.exception()


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has finished, whatever its outcome.

    ``asyncio.wait`` never raises a task's own error or cancellation, so only a
    cancellation of the *calling* task propagates from here (never swallowed);
    the tasks are already cancelled then, and finish on their own.
    """
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    pending = [task for task in tasks if not task.done()]
    if pending:
        await asyncio.wait(pending)
    for task in tasks:
        consume_outcome(task)


async def wait_within(awaitable: Awaitable[T], timeout: float, what: str) -> T:
    """Await ``awaitable`` (run as its own task) for at most ``timeout`` seconds of loop time.

    Unlike ``asyncio.wait_for`` before Python 3.12, this never swallows the
    caller's cancellation when the call finishes in the same loop step: the
    call is cancelled and awaited, and the ``CancelledError`` propagates.

    Returns:
        What ``awaitable`` returned (also when it finished as the time ran out).

    Raises:
        TimeoutError: (the builtin, an ``OSError``) ``awaitable`` did not finish
            in time; it was cancelled and awaited first. The message names ``what``.
        Whatever ``awaitable`` raised.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        await asyncio.wait((task,), timeout=timeout)
    finally:  # the caller was cancelled, or the time ran out
        if task.done():
            consume_outcome(task)
        else:
            await cancel_and_wait([task])
    if task.cancelled():
        raise TimeoutError(f"{what} did not answer within {timeout:.3f}s")
    return task.result()


async def aclose_iterator(iterator: AsyncIterator[Any]) -> None:
    """Close ``iterator`` if it can be closed (async generators can)."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


def wake(waiter: asyncio.Future[None] | None) -> None:
    """Resolve ``waiter`` if it is still waiting (a timer or an event fired)."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
