"""Test helpers: clocks, a client factory, canned answers over MockTransport, loopback servers."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import re
import selectors
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

import polysim_async as ps
from polysim_async._transport import _translate

T = TypeVar("T")

#: A key that must never show up in reprs, messages or logs.
SECRET = "tk_live_SUPERSECRET_0123456789abcdef"
BASE = "https://api.test"
#: Epoch seconds of the test clocks' start.
WALL = 1_800_000_000.0


class FakeClock:
    """A :class:`ps.Clock` whose ``sleep`` advances time at once instead of waiting.

    For one task at a time (the request path): concurrent sleepers would each
    move time forward. ``t`` is the current time; ``sleeps`` what was slept.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self._start = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def __call__(self) -> float:
        return self.t

    def wall(self) -> float:
        return WALL + (self.t - self._start)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)

    def call_at(self, when: float, callback: Callable[[], object]) -> ps.Cancellable:
        # Fires as soon as the loop runs if due, else when a sleep moves time past it.
        loop = asyncio.get_running_loop()
        return loop.call_later(0 if when <= self.t else 3600.0, callback)

    @property
    def slept(self) -> float:
        return sum(self.sleeps)


class SkipClock(ps.SystemClock):
    """The system clock, except that a sleep waits only ``scale`` of its length (none
    by default) and moves this clock forward by the rest: backoff and pacing without
    the waiting, on real sockets. ``sleeps`` records what was asked."""

    def __init__(self, scale: float = 0.0) -> None:
        self.skipped = 0.0
        self.scale = scale
        self.sleeps: list[float] = []

    def now(self) -> float:  # type: ignore[override]
        return time.monotonic() + self.skipped

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        self.skipped += seconds * (1 - self.scale)
        await asyncio.sleep(seconds * self.scale)

    def call_at(self, when: float, callback: Callable[[], object]) -> ps.Cancellable:
        return asyncio.get_running_loop().call_later(max(0.0, when - self.now()), callback)


class LoopClock:
    """The running event loop's time as a :class:`ps.Clock`: virtual on a
    :class:`VirtualTimeLoop`, so every timer and sleep of a client (and of the
    mock sockets) runs on one virtual time line."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def wall(self) -> float:
        return WALL + self.now()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_at(self, when: float, callback: Callable[[], object]) -> ps.Cancellable:
        return asyncio.get_running_loop().call_at(when, callback)


@dataclass
class CallbackResult:
    """What a route callback returns (as aioresponses' ``CallbackResult``)."""

    status: int = 200
    payload: Any = None
    body: bytes | str | None = None
    headers: Mapping[str, str] | None = None
    reason: str | None = None


@dataclass
class _Route:
    method: str
    url: str | re.Pattern[str]
    reply: CallbackResult | None
    callback: Callable[..., CallbackResult | ps.Response] | None
    exception: BaseException | None
    repeat: bool
    used: bool = False


def _response(result: CallbackResult | ps.Response) -> ps.Response:
    if isinstance(result, ps.Response):
        return result
    headers = dict(result.headers or {})
    if result.payload is not None:
        headers.setdefault("Content-Type", "application/json")
        body = json.dumps(result.payload).encode()
    else:
        body = result.body.encode() if isinstance(result.body, str) else (result.body or b"")
    return ps.Response(
        result.status, ps.Response.from_json({}, headers=headers).headers, body, result.reason
    )


class Routes:
    """Canned answers by method and URL, served by a :class:`ps.MockTransport`.

    The same calls as aioresponses (``get(url, payload=..., status=...,
    headers=..., body=..., repeat=..., callback=..., exception=...)``); a URL
    is ``BASE + path`` (a string, or a pattern from :func:`url`). Each answer
    is used once unless ``repeat=True``; a request without an answer fails as
    a refused connection (``ConnectError``).
    """

    def __init__(self) -> None:
        self._routes: list[_Route] = []
        self.seen: list[tuple[str, str, dict[str, Any]]] = []
        self._timeout: ps.Timeout | None = None

    @property
    def transport(self) -> ps.MockTransport:
        """A new transport (one per client) answering from these routes."""
        routes = self

        class Recording(ps.MockTransport):
            async def send(self, request: ps.Request, timeout: ps.Timeout) -> ps.Response:
                routes._timeout = timeout
                return await super().send(request, timeout)

        return Recording(self._handle)

    def add(
        self,
        url: str | re.Pattern[str],
        method: str = "GET",
        *,
        status: int = 200,
        payload: Any = None,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        reason: str | None = None,
        content_type: str | None = None,
        repeat: bool = False,
        callback: Callable[..., CallbackResult | ps.Response] | None = None,
        exception: BaseException | None = None,
    ) -> None:
        if content_type is not None:
            headers = {**(headers or {}), "Content-Type": content_type}
        reply = CallbackResult(status, payload, body, headers, reason)
        self._routes.append(_Route(method, url, reply, callback, exception, repeat))

    def get(self, url: str | re.Pattern[str], **kwargs: Any) -> None:
        self.add(url, "GET", **kwargs)

    def post(self, url: str | re.Pattern[str], **kwargs: Any) -> None:
        self.add(url, "POST", **kwargs)

    def patch(self, url: str | re.Pattern[str], **kwargs: Any) -> None:
        self.add(url, "PATCH", **kwargs)

    def delete(self, url: str | re.Pattern[str], **kwargs: Any) -> None:
        self.add(url, "DELETE", **kwargs)

    def put(self, url: str | re.Pattern[str], **kwargs: Any) -> None:
        self.add(url, "PUT", **kwargs)

    @staticmethod
    def _matches(route: _Route, method: str, full: str, path: str) -> bool:
        if route.method != method:
            return False
        if isinstance(route.url, re.Pattern):
            return route.url.match(full) is not None
        return route.url in (full, path) or (
            "?" not in route.url and full.split("?")[0] == route.url
        )

    def _handle(self, request: ps.Request) -> ps.Response:
        path = BASE + request.path
        full = path + ("?" + urlencode(dict(request.params)) if request.params else "")
        kwargs = {
            "data": request.body,
            "params": request.params,
            "headers": request.headers,
            "timeout": self._timeout,
        }
        self.seen.append((request.method, full, kwargs))
        for route in self._routes:
            if route.used or not self._matches(route, request.method, full, path):
                continue
            route.used = not route.repeat
            try:
                if route.exception is not None:
                    raise route.exception
                if route.callback is not None:
                    return _response(route.callback(full, **kwargs))
            except ps.PolySimError:
                raise
            except (OSError, asyncio.TimeoutError, aiohttp.ClientError) as exc:
                # As the real transport translates a socket error (aioresponses-style).
                error = _translate(exc, f"{request.method} {request.path}", BASE)
            else:
                assert route.reply is not None
                return _response(route.reply)
            raise error
        raise ps.ConnectError(f"no canned answer for {request.method} {full}")


_routes: contextvars.ContextVar[Routes | None] = contextvars.ContextVar("routes", default=None)


@contextlib.contextmanager
def routes() -> Any:
    """Install a :class:`Routes` that :func:`make_client` uses while the block runs."""
    r = Routes()
    token = _routes.set(r)
    try:
        yield r
    finally:
        _routes.reset(token)


def make_client(clock: ps.Clock | None = None, **kwargs: Any) -> ps.Client:
    """A client for ``BASE`` whose time (limiter, backoff, deadline) is ``clock`` and whose
    network is the active :class:`Routes` (the ``mock`` fixture)."""
    kwargs.setdefault("api_key", SECRET)
    kwargs.setdefault("base_url", BASE)
    active = _routes.get()
    if active is not None:
        kwargs.setdefault("transport", active.transport)
    return ps.Client(clock=clock or FakeClock(), **kwargs)


def url(path: str) -> re.Pattern[str]:
    """Match ``BASE + path`` with or without a query string."""
    return re.compile("^" + re.escape(BASE + path) + r"(\?.*)?$")


def calls(mock: Routes, method: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """Every request the routes saw, as (method, url, kwargs with data/params/headers)."""
    return [c for c in mock.seen if method is None or c[0] == method]


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
    Give a client ``clock=LoopClock()`` to run all its timing on it; only
    in-memory I/O (``MockTransport``) may run on it, never real sockets.
    """

    def __init__(self) -> None:
        selector = _VirtualSelector()
        self.virtual_now = 1000.0
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        return self.virtual_now


def virtual(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh :class:`VirtualTimeLoop` (give clients ``LoopClock()``)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        run_virtual(lambda loop: test(*args, **kwargs))

    return run


def run_virtual(main: Callable[[VirtualTimeLoop], Coroutine[Any, Any, T]]) -> T:
    """Run ``main(loop)`` to completion on a fresh :class:`VirtualTimeLoop`."""
    # asyncio.Runner(loop_factory=...) is 3.11+; the library supports 3.10.
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def open_account(client: ps.Client, name: str) -> str:
    """Register trader ``name`` and open a challenge account for it; return the account id."""
    user = await client.partner.users.register(name, f"{name}@example.com")
    account = await client.partner.accounts.create(
        user_id=user.user_id, external_id=name, stage="challenge", starting_balance="10000.00"
    )
    return account.account_id
