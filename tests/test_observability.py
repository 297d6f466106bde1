"""Observability: hooks, aiohttp trace configs with the key masked, POLYSIM_LOG, request ids."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import polysim_async as ps
from polysim_async import _logging

from ._helpers import (
    ACCOUNT_STATE,
    BASE,
    SECRET,
    USER_201,
    FakeClock,
    Routes,
    base_of,
    make_client,
    run_virtual,
    serve,
    trade,
    url,
)


async def test_hooks_see_requests_answers_retries_and_limiter_waits(
    mock: Routes, clock: FakeClock
) -> None:
    events: list[Any] = []
    hooks = ps.Hooks(
        on_request=events.append,
        on_response=events.append,
        on_retry=events.append,
        on_limiter_wait=events.append,
    )
    limits = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2", "X-Request-Id": "r-1"}
    mock.get(url("/v1/partner/users/1"), status=503, headers={"X-Request-Id": "r-0"})
    mock.get(url("/v1/partner/users/1"), payload=USER_201, headers=limits)
    mock.get(url("/v1/partner/users/1"), payload=USER_201)
    async with make_client(clock, hooks=hooks) as client:
        await client.partner.users.get(1)
        await client.partner.users.get(1)  # waits out the exhausted window
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "RequestEvent",
        "ResponseEvent",
        "RetryEvent",
        "RequestEvent",
        "ResponseEvent",
        "LimiterWaitEvent",
        "RequestEvent",
        "ResponseEvent",
    ]
    first, retry, second = events[1], events[2], events[4]
    assert (first.status, first.request_id, first.attempt) == (503, "r-0", 1)
    assert (retry.reason, retry.attempt, type(retry.error)) == ("server", 1, ps.ServerError)
    assert (second.status, second.request_id, second.attempt) == (200, "r-1", 2)
    assert second.rate_limit == {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2"}
    assert events[5].wait == pytest.approx(2.0) and events[5].path == "/v1/partner/users/1"
    assert all(SECRET not in repr(e) for e in events)


def test_hooks_must_be_a_hooks_object() -> None:
    with pytest.raises(ps.InvalidArgumentError, match="Hooks"):
        ps.Client(SECRET, BASE, hooks=print)  # type: ignore[arg-type]


async def test_the_request_id_is_on_pages_states_and_orders(mock: Routes) -> None:
    rid = {"X-Request-Id": "req-77"}
    mock.get(url("/v1/partner/accounts/a"), payload=ACCOUNT_STATE, headers=rid)
    mock.get(url("/v1/partner/accounts/a/trades"), payload={"data": [trade(1)]}, headers=rid)
    mock.post(url("/v1/partner/users"), status=201, payload={**USER_201, "created": False})
    mock.get(url("/v1/orders/1"), payload={**ORDER_ROW}, headers=rid)
    async with make_client() as client:
        state = await client.partner.accounts.get("a")
        pages = client.partner.accounts.trade_pages("a", prefetch=False)
        page = await pages.__anext__()
        await pages.aclose()
        user = await client.partner.users.register("e", "e@x.io")
        row = await client.orders.get(1)
    assert state.request_id == page.request_id == row.request_id == "req-77"
    assert user.created and user.request_id is None  # the answer carried no id
    assert ps.TradePage(data=[]).request_id is None  # built, not received
    assert b"request_id" not in ps.Response.from_json(state).content  # not a wire field


ORDER_ROW = {
    "order_id": 1,
    "market_id": "m",
    "side": "BUY",
    "outcome": "Yes",
    "order_type": "limit",
    "status": "PENDING",
    "quantity": "1",
}


async def test_trace_configs_see_requests_with_the_key_masked() -> None:
    seen: list[dict[str, str]] = []
    ctx_values: list[Any] = []

    async def on_start(session: Any, ctx: Any, params: Any) -> None:
        seen.append(dict(params.headers))
        ctx_values.append(ctx.trace_request_ctx)

    async def on_end(session: Any, ctx: Any, params: Any) -> None:
        seen.append({"status": str(params.response.status), **dict(params.headers)})

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_start)
    config.on_request_end.append(on_end)

    async def handler(request: web.Request) -> web.Response:
        assert request.headers["X-API-Key"] == SECRET  # the server still gets the key
        return web.json_response(USER_201)

    def routes(app: web.Application) -> None:
        app.router.add_get("/v1/partner/users/{uid}", handler)

    async with (
        serve(routes) as server,
        ps.Client(SECRET, base_of(server), trace_configs=[config]) as client,
    ):
        await client.partner.users.get(1)
    assert len(seen) == 2 and seen[1]["status"] == "200"
    assert all(h["X-API-Key"] == "***" for h in seen)
    assert all(SECRET not in repr(h) for h in seen)
    assert ctx_values == [None]


def test_polysim_log_sends_the_library_log_to_stderr() -> None:
    code = (
        "import asyncio, polysim_async as ps\n"
        "c = ps.Client('k_123456789', 'http://127.0.0.1:1', max_retries=1, "
        "clock=ps.SystemClock())\n"
        "async def main():\n"
        "    try:\n"
        "        await c.partner.users.get(1)\n"
        "    except ps.ConnectError:\n"
        "        pass\n"
        "    await c.aclose()\n"
        "asyncio.run(main())\n"
    )
    env = {"POLYSIM_LOG": "debug", "PATH": "", "PYTHONPATH": ":".join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert "DEBUG polysim_async: retrying GET /v1/partner/users/1 (attempt 2)" in out.stderr
    assert "k_123456789" not in out.stderr
    quiet = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "POLYSIM_LOG": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    assert quiet.stderr == ""


def test_an_unknown_polysim_log_value_is_ignored_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_logging, "_configured", False)
    monkeypatch.setenv("POLYSIM_LOG", "loud")
    logger = logging.getLogger("polysim_async")
    handlers = list(logger.handlers)
    with caplog.at_level(logging.WARNING, logger="polysim_async"):
        ps.Client(SECRET, BASE)
    assert "POLYSIM_LOG='loud'" in caplog.text and logger.handlers == handlers


def test_stream_hooks_report_reconnects_and_gaps() -> None:
    from .test_stream import Exchange, running, take, until

    gaps: list[ps.GapEvent] = []
    drops: list[ps.ReconnectEvent] = []
    hooks = ps.Hooks(on_gap=gaps.append, on_reconnect=drops.append)
    policy = ps.StreamPolicy(backoff_base=0.001, backoff_max=0.001, reconcile_interval=None)

    async def main(loop: Any) -> None:
        async with (
            running(Exchange(), hooks=hooks) as (ex, client),
            client.executions.stream(policy=policy) as fills,
        ):
            await until(lambda: ex.live)
            await ex.close_all(1001)
            await ex.fill(2, push=False)
            assert [f.order_id for f in await take(fills, 2)] == [1, 2]

    run_virtual(main)
    assert drops[0].stream == "executions" and drops[0].reason.startswith("close 1001")
    assert any(g.gap.recovered == 2 and g.gap.reason.startswith("close 1001") for g in gaps)


async def test_a_hook_that_raises_surfaces_in_the_call(mock: Routes) -> None:
    def broken(event: Any) -> None:
        raise RuntimeError("hook bug")

    mock.get(url("/v1/partner/users/1"), payload=USER_201)
    async with make_client(hooks=ps.Hooks(on_response=broken)) as client:
        with pytest.raises(RuntimeError, match="hook bug"):
            await client.partner.users.get(1)
