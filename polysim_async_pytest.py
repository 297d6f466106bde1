"""pytest fixtures for code that talks to PolySimulator: a sandbox and a client per test.

Installed with polysim-async and loaded by pytest automatically (entry point
``pytest11``, name ``polysim``; ``-p no:polysim`` turns it off)::

    async def test_provisioning(polysim_sandbox, polysim_client):
        user = await polysim_client.partner.users.register("t-1", "t@example.com")
        assert polysim_sandbox.outbox() == []

``polysim_sandbox``
    A running :class:`polysim_async.sandbox.Sandbox`: seeded (``seed=0``), its
    simulated clock frozen (time moves only with ``advance()``), the documented
    rate limits on real time (so they never wedge a test), one tenant, one trader,
    three markets. A fresh one per test: starting and stopping costs about a
    millisecond (see ``benchmarks/``).
``polysim_client``
    A :class:`polysim_async.Client` on that sandbox, with its tenant (partner) key.

``@pytest.mark.polysim(**options)`` changes them for one test: any ``Sandbox``
keyword (``seed=3``, ``tier="free"``, ``rate_limits=False``, ...), and
``key="trader"`` for a client holding the trader's key instead.

The fixtures are coroutines. With pytest-asyncio installed (the common case, and
part of polysim-async's ``test`` extra) they are pytest-asyncio fixtures and work
in its ``auto`` mode and, for tests marked ``@pytest.mark.asyncio``, in ``strict``
mode; they follow pytest-asyncio's default fixture loop scope, so keep tests on
that same loop scope. Without pytest-asyncio they are plain async fixtures, which
anyio's pytest plugin runs for tests on its asyncio backend; with no async plugin
at all, pytest refuses them, and nothing else in your suite is affected.

Importing this module is cheap: ``polysim_async`` (and aiohttp) load only when a
test asks for a fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from polysim_async import Client
    from polysim_async.sandbox import Sandbox

__all__ = ["polysim_client", "polysim_sandbox"]

F = TypeVar("F", bound=Callable[..., Any])

#: What the sandbox fixture starts with, unless a ``polysim`` marker says otherwise.
DEFAULTS: dict[str, Any] = {"seed": 0, "frozen_clock": True}

_asyncio_fixture: Any
try:
    from pytest_asyncio import fixture as _asyncio_fixture
except ImportError:  # no pytest-asyncio: plain async fixtures (see the module docstring)
    _asyncio_fixture = None


def _async_fixture(function: F) -> F:
    """Declare an async fixture: pytest-asyncio's decorator when installed, else pytest's."""
    decorate: Any = pytest.fixture if _asyncio_fixture is None else _asyncio_fixture
    return cast(F, decorate(function))


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``polysim`` marker."""
    config.addinivalue_line(
        "markers",
        "polysim(**options): Sandbox keywords for the polysim_sandbox fixture, and"
        ' key="trader" for a polysim_client holding the trader key',
    )


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    options = dict(DEFAULTS)
    for marker in reversed(list(request.node.iter_markers("polysim"))):
        if marker.args:
            raise pytest.UsageError("@pytest.mark.polysim takes keyword arguments only")
        options.update(marker.kwargs)
    return options


@_async_fixture
async def polysim_sandbox(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
    """A running sandbox for this test (see the module docstring)."""
    from polysim_async.sandbox import Sandbox

    options = _options(request)
    options.pop("key", None)
    async with Sandbox(**options) as sandbox:
        yield sandbox


@_async_fixture
async def polysim_client(
    request: pytest.FixtureRequest, polysim_sandbox: Sandbox
) -> AsyncIterator[Client]:
    """A client on ``polysim_sandbox``: the tenant key, or the trader key with ``key="trader"``."""
    from polysim_async import Client

    role = _options(request).get("key", "tenant")
    if role not in ("tenant", "trader"):
        raise pytest.UsageError('@pytest.mark.polysim(key=...) is "tenant" or "trader"')
    key = polysim_sandbox.api_key if role == "trader" else polysim_sandbox.tenant_key
    async with Client(key, polysim_sandbox.url) as client:
        yield client
