"""Fixtures for the sandbox contract tests: a running sandbox and a plain aiohttp client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from polysim_async.sandbox import Sandbox

from ._helpers import Api


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    """A deterministic sandbox: frozen clock, no random walk, no rate limits."""
    async with Sandbox(seed=1, frozen_clock=True, random_walk=False, rate_limits=False) as box:
        yield box


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def api(sb: Sandbox, http: aiohttp.ClientSession) -> Api:
    """The request helper bound to the sandbox."""
    return Api(sb, http)
