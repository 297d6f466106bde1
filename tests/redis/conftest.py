"""Fixtures: a real redis-server on loopback (see ``_server.py``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator

import pytest

from ._server import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One server for the session; tests keep apart by using unique names."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A server of this test's own, for tests that stop and restart it."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def name() -> str:
    """A budget or store name no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


class ManualClock:
    """A :class:`~polysim_async._clock.Clock` whose ``sleep`` advances time at once."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return 1_800_000_000.0 + self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)

    def call_at(self, when: float, callback: Callable[[], object]) -> asyncio.TimerHandle:
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, when - self.t), callback)
