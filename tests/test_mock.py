"""``MockTransport`` and ``MockWebSocket``: the shipped in-memory transport for users' tests."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import polysim_async as ps

from ._helpers import LoopClock, virtual


async def test_the_readme_example_answers_from_a_function() -> None:
    def handler(request: ps.Request) -> ps.Response:
        if request.path == "/v1/account/balance":
            return ps.Response.from_json({"balance": "100.00"}, headers={"X-Request-Id": "r"})
        return ps.Response.from_json({"error": "NOT_FOUND", "message": "no"}, status=404)

    transport = ps.MockTransport(handler)
    async with ps.Client("ps_live_test", transport=transport) as client:
        balance = await client.account.balance()
        with pytest.raises(ps.NotFoundError):
            await client.account.positions()
    assert str(balance.balance) == "100.00" and balance.request_id == "r"
    first = transport.requests[0]
    assert (first.method, first.path, first.websocket) == ("GET", "/v1/account/balance", False)
    assert first.headers["X-API-Key"] == "ps_live_test"
    assert transport.closed


async def test_an_async_handler_and_a_simulated_network_failure() -> None:
    calls = 0

    async def handler(request: ps.Request) -> ps.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ps.ConnectError("simulated: connection refused")
        await asyncio.sleep(0)
        return ps.Response.from_json({"balance": "1"})

    async with ps.Client(
        "ps_live_test", transport=ps.MockTransport(handler), clock=LoopClock()
    ) as client:
        await client.account.balance()  # the connect failure was retried
    assert calls == 2 and client.stats.retries["transport"] == 1


async def test_a_wrong_answer_type_is_a_test_bug() -> None:
    transport = ps.MockTransport(lambda request: "nope")  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="Response"):
        await transport.send(ps.Request("GET", "/x"), ps.Timeout())
    with pytest.raises(TypeError, match="MockWebSocket"):
        await transport.websocket(ps.Request("GET", "/x", websocket=True))
    await transport.aclose()
    with pytest.raises(ps.ClientClosedError):
        await transport.send(ps.Request("GET", "/x"), ps.Timeout())


@virtual
async def test_a_mock_websocket_carries_frames_both_ways_and_closes() -> None:
    servers: list[ps.MockWebSocket] = []

    def echo(server: ps.MockWebSocket, data: str | bytes) -> None:
        server.send(f"echo {data!s}")

    def handler(request: ps.Request) -> ps.Response | ps.MockWebSocket:
        assert request.websocket and request.params == {"token": "t"}
        server = ps.MockWebSocket(on_message=echo)
        server.send("hello")  # before the handshake completes: arrives first
        servers.append(server)
        return server

    transport = ps.MockTransport(handler)
    ws = await transport.websocket(ps.Request("GET", "/ws", {"token": "t"}, websocket=True))
    assert await ws.receive() == "hello"
    await ws.send("ping")
    assert servers[0].received == ["ping"] and await ws.receive(1.0) == "echo ping"
    with pytest.raises(ps.ReadTimeoutError):
        await ws.receive(5.0)  # nothing comes: virtual time passes, the socket stays open
    servers[0].close(4001, "expired")
    assert await ws.receive() is None
    assert (ws.close_code, ws.close_reason) == (4001, "expired")
    assert await ws.receive() is None  # and stays closed
    with pytest.raises(ps.NetworkError):
        await ws.send("late")


@virtual
async def test_an_aborted_socket_fails_the_read_and_a_client_close_reaches_the_server() -> None:
    servers: list[ps.MockWebSocket] = []

    def handler(request: ps.Request) -> ps.MockWebSocket:
        servers.append(ps.MockWebSocket())
        return servers[-1]

    transport = ps.MockTransport(handler)
    ws = await transport.websocket(ps.Request("GET", "/ws", websocket=True))
    servers[0].send("one")
    servers[0].abort()
    assert await ws.receive() == "one"
    with pytest.raises(ps.NetworkError):
        await ws.receive()
    other = await transport.websocket(ps.Request("GET", "/ws", websocket=True))
    await other.close(1000)
    await other.close()  # idempotent
    assert servers[1].closed and servers[1].close_code == 1000
    servers[1].send("ignored")  # a closed connection drops it


@virtual
async def test_a_response_refuses_the_handshake_with_its_status() -> None:
    def handler(request: ps.Request) -> ps.Response:
        return ps.Response.from_json({"error": "INVALID_TOKEN", "message": "expired"}, status=401)

    with pytest.raises(ps.AuthenticationError) as info:
        await ps.MockTransport(handler).websocket(ps.Request("GET", "/ws", websocket=True))
    assert info.value.code == "INVALID_TOKEN"


@virtual
async def test_a_stream_runs_entirely_on_the_mock() -> None:
    minted: list[Any] = []
    servers: list[ps.MockWebSocket] = []

    def handler(request: ps.Request) -> ps.Response | ps.MockWebSocket:
        if request.path == "/v1/keys/ws-token":
            minted.append(request)
            return ps.Response.from_json({"token": "t1", "expires_in": 60})
        if request.path == "/v1/account/history":
            return ps.Response.from_json({"data": [], "next_cursor": ""})
        server = ps.MockWebSocket()
        server.send(
            '{"type":"fill","order_id":5,"market_id":"m","side":"BUY","outcome":"Yes",'
            '"price":"0.5","quantity":"2","filled_at":"2026-02-06T12:00:45Z"}'
        )
        servers.append(server)
        return server

    transport = ps.MockTransport(handler)
    async with (
        ps.Client("ps_live_test", transport=transport, clock=LoopClock()) as client,
        client.executions.stream() as fills,
    ):
        fill = await fills.__anext__()
    assert fill.order_id == 5 and len(minted) == 1
    assert servers[0].closed  # leaving the block closed the socket
    ws_request = next(r for r in transport.requests if r.websocket)
    assert "X-API-Key" not in ws_request.headers  # the token authenticates the socket
