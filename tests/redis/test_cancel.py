"""A cancellation that arrives in the same loop step as Redis's reply is never swallowed.

redis-py times its commands with ``asyncio.wait_for``, which before Python 3.12 returns the
result instead of raising when the call finished in the step the caller was cancelled in; a
cancelled ``async with watch_trades(..., store=redis)`` then never ends. The fake Redis here
answers through such a ``wait_for``, and the test cancels exactly as the reply lands.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import polysim_async as ps
from polysim_async._tasks import wait_within

from .conftest import ManualClock

URL = "redis://127.0.0.1:1/0"  # never connected to: the fake below answers


class FakeRedis:
    """Answers each command with the next reply the test sets, through ``asyncio.wait_for``."""

    def __init__(self) -> None:
        self.calls = 0
        self.reply: asyncio.Future[Any] | None = None
        self.asked = asyncio.Event()

    async def _answer(self) -> Any:
        self.calls += 1
        self.reply = asyncio.get_running_loop().create_future()
        self.asked.set()
        return await asyncio.wait_for(self.reply, 5)  # as redis-py's send/read do

    async def get(self, key: str) -> Any:
        return await self._answer()

    async def script(self, keys: list[str], args: list[Any]) -> Any:
        return await self._answer()

    async def aclose(self) -> None:
        pass


async def cancel_as_the_reply_lands(fake: FakeRedis, call: Any, reply: Any) -> None:
    task = asyncio.ensure_future(call)
    await fake.asked.wait()
    assert fake.reply is not None
    fake.reply.set_result(reply)
    task.cancel()  # the same loop step
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_a_store_call_cancelled_as_redis_answers_is_cancelled() -> None:
    store = ps.RedisCheckpointStore(URL, namespace="x")
    store._redis = fake = FakeRedis()
    await cancel_as_the_reply_lands(fake, store.get("k", int), b"1")
    await store.aclose()


@pytest.mark.parametrize("deadline", [None, 0.5], ids=["no-deadline", "deadline"])
async def test_a_limiter_turn_cancelled_as_redis_answers_is_cancelled(
    deadline: float | None,
) -> None:
    clock = ManualClock()
    limit = ps.RedisRateLimit(URL, name="n", timeout=1.0, clock=clock)
    limit._redis = fake = FakeRedis()
    limit._acquire_script = fake.script
    at = None if deadline is None else clock.now() + deadline
    await cancel_as_the_reply_lands(fake, limit.acquire(deadline=at), [1, 0, 0])
    assert limit.available and limit.stats.local == 0
    await limit.aclose()


async def test_a_store_call_that_outlasts_the_timeout_is_unavailable() -> None:
    store = ps.RedisCheckpointStore(URL, namespace="x", timeout=0.01)
    store._redis = fake = FakeRedis()
    with pytest.raises(ps.StoreUnavailableError, match=r"did not answer within 0\.010s"):
        await store.get("k", int)
    assert fake.reply is not None and fake.reply.cancelled()  # the call was cancelled
    await store.aclose()


async def test_wait_within_returns_and_raises_what_the_call_does() -> None:
    async def answer() -> int:
        return 7

    async def fail() -> int:
        raise ValueError("no")

    assert await wait_within(answer(), 1.0, "x") == 7
    with pytest.raises(ValueError, match="no"):
        await wait_within(fail(), 1.0, "x")
