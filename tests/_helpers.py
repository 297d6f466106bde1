"""Test helpers: a fake clock, client factory, request inspection and loopback servers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import selectors
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import aioresponses

import polysim_async as ps

T = TypeVar("T")

#: A key that must never show up in reprs, messages or logs.
SECRET = "tk_live_SUPERSECRET_0123456789abcdef"
BASE = "https://api.test"


class FakeClock:
    """A monotonic clock whose ``sleep`` advances time at once instead of waiting."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)

    @property
    def slept(self) -> float:
        return sum(self.sleeps)


def make_client(clock: FakeClock | None = None, **kwargs: Any) -> ps.Client:
    """A client for ``BASE`` whose time (limiter, backoff, deadline) is ``clock``."""
    clock = clock or FakeClock()
    kwargs.setdefault("api_key", SECRET)
    kwargs.setdefault("base_url", BASE)
    return ps.Client(clock=clock, sleep=clock.sleep, wall_clock=lambda: 1_800_000_000.0, **kwargs)


def url(path: str) -> re.Pattern[str]:
    """Match ``BASE + path`` with or without a query string."""
    return re.compile("^" + re.escape(BASE + path) + r"(\?.*)?$")


def calls(mock: aioresponses, method: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """Every request aioresponses saw, as (method, url, kwargs)."""
    out = []
    for (meth, u), reqs in mock.requests.items():
        if method is None or meth == method:
            out.extend((meth, str(u), r.kwargs) for r in reqs)
    return out


def sent_json(kwargs: dict[str, Any]) -> Any:
    """The JSON body a recorded request carried (``None`` if it had none)."""
    data = kwargs.get("data")
    return None if data is None else json.loads(data)


def error_body(code: str, message: str = "nope") -> dict[str, str]:
    return {"error": code, "message": message}


@contextlib.asynccontextmanager
async def serve(
    routes: Callable[[web.Application], None], **kwargs: Any
) -> AsyncIterator[TestServer]:
    """Run an aiohttp.web app on 127.0.0.1, port 0, for the duration of the block."""
    app = web.Application(**kwargs)
    routes(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


def base_of(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


# Payloads from the partner quickstart seed and the equity seed.
USER_201 = {
    "user_id": 12345,
    "tenant_user_id": "6a2f0c4e-1b7d-4e2a-9f3c-1a2b3c4d5e6f",
    "external_id": "pc_trader_123",
    "email": "trader@example.com",
    "created": True,
}
ACCOUNT_ID = "0b1d8e2a-3c4f-5a6b-7c8d-9e0f1a2b3c4d"
ACCOUNT_201 = {
    "account_id": ACCOUNT_ID,
    "wallet_id": 9911,
    "user_id": 12345,
    "external_id": "pc_challenge_001",
    "stage": "challenge",
    "status": "active",
    "starting_balance": "10000.00",
    "rules": {"profit_target_pct": 20, "max_drawdown_pct": 10},
    "metadata": {"plan": "10k", "attempt": 1},
}
ACCOUNT_STATE = {
    "account_id": ACCOUNT_ID,
    "external_id": "pc_challenge_001",
    "stage": "challenge",
    "status": "active",
    "balance": "9875.12",
    "starting_balance": "10000.00",
    "equity": "10142.42",
    "unrealized_pnl": "267.30",
    "realized_pnl": None,
    "open_positions": [
        {
            "market_id": "0xabc",
            "outcome": "Yes",
            "quantity": "100.0000",
            "avg_entry_price": "0.4100",
            "current_price": "0.4350",
            "market_value": "43.50",
            "unrealized_pnl": "2.50",
        }
    ],
    "rules": {"profit_target_pct": 20, "max_drawdown_pct": 10},
    "metadata": {"plan": "10k", "attempt": 1},
    "updated_at": "2026-06-04T14:10:08.055516+00:00",
}


def trade(trade_id: int, **overrides: Any) -> dict[str, Any]:
    row = {
        "trade_id": trade_id,
        "order_id": trade_id,
        "market_id": "0xabc",
        "side": "BUY",
        "outcome": "Yes",
        "price": "0.4100",
        "quantity": "10.0000",
        "notional": "4.10",
        "fee": "0.00",
        "filled_at": "2026-06-04T14:09:31.220148+00:00",
        "client_order_id": "trader-key",
        "realized_pnl": None,
    }
    row.update(overrides)
    return row


EQUITY = [
    {
        "timestamp": "2026-02-06T10:00:00Z",
        "cash_balance": "9993.50",
        "position_value": "6.30",
        "total_value": "9999.80",
        "pnl": "-0.20",
    },
    {
        "timestamp": "2026-02-06T11:00:00+00:00",
        "cash_balance": "9993.50",
        "position_value": "7.00",
        "total_value": "10000.50",
        "pnl": "0.50",
    },
]


class _VirtualSelector(selectors.DefaultSelector):
    """Never blocks on a timer: rather than wait ``timeout`` seconds, it moves the loop's clock."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[Any]:
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None or self.loop is None:
            return super().select(timeout)
        self.loop.virtual_now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer whenever nothing is ready to run.

    With it, ``asyncio.sleep`` (and every timer) takes no real time, and concurrent
    sleepers wake in the order of their deadlines, each at its exact virtual time.
    Inject ``clock=loop.time, sleep=asyncio.sleep`` into a client to test pacing of many
    concurrent calls; only in-memory I/O (aioresponses) may run on it.
    """

    def __init__(self) -> None:
        selector = _VirtualSelector()
        self.virtual_now = 1000.0
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        return self.virtual_now


def run_virtual(main: Callable[[VirtualTimeLoop], Coroutine[Any, Any, T]]) -> T:
    """Run ``main(loop)`` to completion on a fresh :class:`VirtualTimeLoop`."""
    # asyncio.Runner(loop_factory=...) is 3.11+; the library supports 3.10.
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
