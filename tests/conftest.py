"""Shared test fixtures. Every test talks only to loopback; none sleeps for real."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from ._helpers import FakeClock, Routes, VirtualTimeLoop, routes


@pytest.fixture
def clock() -> FakeClock:
    """Injected as the client's ``clock=``: sleeping advances it at once."""
    return FakeClock()


@pytest.fixture
def mock() -> Iterator[Routes]:
    """Canned answers over ``MockTransport``, used by ``make_client``; an unanswered
    request fails as a refused connection."""
    with routes() as r:
        yield r


class VirtualTimePolicy(asyncio.DefaultEventLoopPolicy):
    """Every test of a module that uses it runs on a :class:`VirtualTimeLoop`."""

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return VirtualTimeLoop()


@pytest.fixture(autouse=True)
def _no_env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's real keys and base URL out of every test."""
    for name in ("POLYSIM_TENANT_KEY", "POLYSIM_API_KEY", "POLYSIM_BASE_URL", "POLYSIM_LOG"):
        monkeypatch.delenv(name, raising=False)
