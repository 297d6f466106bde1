"""Shared test fixtures. Every test talks only to loopback; none sleeps for real."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aioresponses import aioresponses

from . import _aioresponses_compat
from ._helpers import FakeClock

_aioresponses_compat.install()


@pytest.fixture
def clock() -> FakeClock:
    """Injected as the client's ``clock=`` and ``sleep=``: sleeping advances it at once."""
    return FakeClock()


@pytest.fixture
def mock() -> Iterator[aioresponses]:
    """Intercept every aiohttp request; an unregistered URL fails as a connection error."""
    with aioresponses() as m:
        yield m


@pytest.fixture(autouse=True)
def _no_env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's real keys and base URL out of every test."""
    for name in ("POLYSIM_TENANT_KEY", "POLYSIM_API_KEY", "POLYSIM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
