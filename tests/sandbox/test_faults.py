"""HTTP fault injection and the control API over HTTP."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from polysim_async.sandbox import Sandbox

from ._helpers import Api, assert_error


async def test_fail_next_with_retry_after(api: Api, sb: Sandbox) -> None:
    sb.fail_next(
        "/v1/partner/accounts/*/trades", status=503, code="SERVER_BUSY", retry_after=2, times=2
    )
    _, account_id = await api.new_account()
    for _ in range(2):
        status, headers, body = await api.partner("GET", f"/accounts/{account_id}/trades")
        assert_error(status, headers, body, 503, "SERVER_BUSY")
        assert headers["Retry-After"] == "2"
    assert (await api.partner("GET", f"/accounts/{account_id}/trades"))[0] == 200


async def test_fault_method_filter_and_clear(api: Api, sb: Sandbox) -> None:
    sb.fail_next("/v1/account/*", method="POST", times=5)
    assert (await api.trader("GET", "/account/balance"))[0] == 200
    sb.fail_next("/v1/account/balance", status=429, code="RATE_LIMIT_EXCEEDED", retry_after=1)
    sb.clear_faults()
    assert (await api.trader("GET", "/account/balance"))[0] == 200


async def test_latency(api: Api, sb: Sandbox) -> None:
    sb.add_latency("/v1/account/balance", 0.05, times=1)
    start = time.perf_counter()
    assert (await api.trader("GET", "/account/balance"))[0] == 200
    assert time.perf_counter() - start >= 0.05
    start = time.perf_counter()
    await api.trader("GET", "/account/balance")
    assert time.perf_counter() - start < 0.05


async def test_malformed_json(api: Api, sb: Sandbox) -> None:
    sb.send_malformed("/v1/account/balance")
    status, _, body = await api.trader("GET", "/account/balance")
    assert status == 200 and isinstance(body, bytes)


async def test_abort_before_does_not_act(api: Api, sb: Sandbox) -> None:
    sb.abort_next("/v1/orders", method="POST")
    order = {
        "market_id": sb.market_id,
        "side": "BUY",
        "outcome": "Yes",
        "quantity": "5",
        "price": "0.60",
    }
    with pytest.raises(aiohttp.ClientError):
        await api.trader("POST", "/orders", json=order)
    _, _, page = await api.trader("GET", "/orders")
    assert page["orders"] == []


async def test_abort_after_acts_but_loses_the_answer(api: Api, sb: Sandbox) -> None:
    sb.abort_next("/v1/orders", method="POST", after=True)
    order = {
        "market_id": sb.market_id,
        "side": "BUY",
        "outcome": "Yes",
        "quantity": "5",
        "price": "0.60",
        "client_order_id": "lost-1",
    }
    with pytest.raises(aiohttp.ClientError):
        await api.trader("POST", "/orders", json=order)
    _, _, page = await api.trader("GET", "/orders")
    assert [o["client_order_id"] for o in page["orders"]] == ["lost-1"]
    # The retry with the same key is a replay, not a second order.
    status, _, again = await api.trader("POST", "/orders", json=order)
    assert status == 200 and again["is_replay"] is True


async def test_control_routes_over_http(api: Api, sb: Sandbox) -> None:
    status, _, state = await api.call("GET", "/_sandbox/state")
    assert status == 200 and state["api_key"] == sb.api_key and state["tenant_key"] == sb.tenant_key
    _, _, clock = await api.call("POST", "/_sandbox/clock/advance", json={"hours": 2})
    assert clock["now"].startswith("2026-06-01T02:00:00")
    assert (await api.call("GET", "/_sandbox/clock"))[2] == clock
    status, _, created = await api.call(
        "POST", "/_sandbox/markets", json={"question": "Q?", "price": "0.30"}
    )
    assert status == 201
    market_id = created["market_id"]
    _, _, markets = await api.call("GET", "/_sandbox/markets")
    assert markets[-1]["asks"]["Yes"] == "0.31" and markets[-1]["mids"]["No"] == "0.70"
    user_id, account_id = await api.new_account()
    status, _, order = await api.call(
        "POST",
        "/_sandbox/orders",
        json={
            "account_id": account_id,
            "market_id": market_id,
            "side": "BUY",
            "outcome": "Yes",
            "quantity": "10",
            "price": "0.25",
            "order_type": "limit",
        },
    )
    assert status == 200 and order["status"] == "PENDING"
    _, _, moved = await api.call(
        "POST", f"/_sandbox/markets/{market_id}/price", json={"price": "0.20"}
    )
    assert moved == {"filled": 1}
    _, _, resting = await api.call(
        "POST", "/_sandbox/orders/resting", json={"count": 2, "account_id": account_id}
    )
    assert len(resting["order_ids"]) == 2
    _, _, gen = await api.call(
        "POST", "/_sandbox/fills", json={"count": 10, "account_id": account_id}
    )
    assert gen["count"] == 10
    _, _, trades = await api.partner("GET", f"/accounts/{account_id}/trades")
    assert len(trades["data"]) == 11
    _, _, tenant = await api.call(
        "POST", "/_sandbox/tenants", json={"name": "Firm B", "scopes": ["accounts:read"]}
    )
    assert tenant["key"] and tenant["slug"] == "firm-b"
    _, _, key = await api.call("POST", f"/_sandbox/tenants/{tenant['tenant_id']}/keys", json={})
    assert key["key"].startswith("pt_sandbox_")
    _, _, trader = await api.call("POST", "/_sandbox/traders", json={"tier": "enterprise"})
    assert trader["api_key"].startswith("ps_live_") and len(trader["api_key"]) == 72
    _, _, keyed = await api.call(
        "POST", f"/_sandbox/users/{user_id}/keys", json={"permissions": ["read"]}
    )
    assert keyed["user_id"] == user_id
    await api.call("POST", "/_sandbox/keys/revoke", json={"key": keyed["api_key"]})
    assert (await api.trader("GET", "/account/balance", key=keyed["api_key"]))[0] == 401
    await api.partner("POST", f"/users/{user_id}/login-link", json={})
    _, _, outbox = await api.call("GET", "/_sandbox/outbox")
    assert len(outbox) == 1
    await api.call("DELETE", "/_sandbox/outbox")
    assert (await api.call("GET", "/_sandbox/outbox"))[2] == []
    await api.call(
        "POST",
        "/_sandbox/faults",
        json={"path": "/v1/health", "status": 502, "code": "BAD_GATEWAY"},
    )
    assert len((await api.call("GET", "/_sandbox/faults"))[2]) == 1
    assert_error(*await api.call("GET", "/v1/health"), 502, "BAD_GATEWAY")
    await api.call("POST", "/_sandbox/faults", json={"path": "/v1/health"})
    await api.call("DELETE", "/_sandbox/faults")
    assert (await api.call("GET", "/v1/health"))[0] == 200
    status, _, _ = await api.call(
        "POST",
        "/_sandbox/ws/faults",
        json={
            "drop_after": 3,
            "mode": "abort",
            "chaos": 0.1,
            "seed": 1,
            "malformed": 1,
            "shape": "execution_flat",
        },
    )
    assert status == 200
    assert (await api.call("POST", "/_sandbox/ws-tokens/expire"))[2] == {"expired": 0}
    assert (await api.call("POST", "/_sandbox/config", json={"bulk_cancel_limit": 2}))[0] == 200


async def test_control_errors(api: Api) -> None:
    assert_error(
        *await api.call("POST", "/_sandbox/config", json={"nope": 1}), 422, "CONTROL_INVALID"
    )
    assert_error(
        *await api.call("POST", "/_sandbox/markets/0xnone/price", json={"price": "0.5"}),
        404,
        "CONTROL_NOT_FOUND",
    )
    assert_error(
        *await api.call(
            "POST",
            "/_sandbox/orders",
            json={
                "market_id": "0xnone",
                "side": "BUY",
                "outcome": "Yes",
                "quantity": "5",
                "price": "0.5",
            },
        ),
        404,
        "MARKET_NOT_FOUND",
    )
    assert_error(
        *await api.call("POST", "/_sandbox/ws/faults", json={"shape": "v9"}), 422, "CONTROL_INVALID"
    )
    assert_error(
        *await api.call("POST", "/_sandbox/faults", json={"path": "/x", "action": "explode"}),
        422,
        "CONTROL_INVALID",
    )
    assert_error(*await api.call("GET", "/_sandbox/nothing"), 404, "NOT_FOUND")


async def test_control_token(http: aiohttp.ClientSession) -> None:
    async with Sandbox(control_token="s3cret", rate_limits=False) as sb:
        api = Api(sb, http)
        assert_error(*await api.call("GET", "/_sandbox/state"), 401, "CONTROL_TOKEN_REQUIRED")
        got = await api.call("GET", "/_sandbox/state", headers={"X-Sandbox-Token": "s3cret"})
        assert got[0] == 200


async def test_sandbox_lifecycle(http: aiohttp.ClientSession) -> None:
    sb = Sandbox()
    with pytest.raises(RuntimeError):
        _ = sb.url
    async with sb:
        with pytest.raises(RuntimeError):
            await sb.start()
        assert sb.url.startswith("http://127.0.0.1:")
    await sb.aclose()
    a, b = Sandbox(seed=9), Sandbox(seed=9)
    assert (a.api_key, a.tenant_key, a.market_ids) == (b.api_key, b.tenant_key, b.market_ids)
    assert a.api_key != Sandbox(seed=10).api_key


async def test_serve_runs_until_cancelled() -> None:
    from polysim_async.sandbox import serve

    lines: list[str] = []
    task = asyncio.ensure_future(serve("127.0.0.1", 0, 3, announce=lines.append, rate_limits=False))
    for _ in range(100):
        if lines:
            break
        await asyncio.sleep(0.01)
    assert lines[0].startswith("PolySimulator sandbox listening on http://127.0.0.1:")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
