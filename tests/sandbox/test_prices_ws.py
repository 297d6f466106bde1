"""The price WebSocket, ``/v1/ws/prices`` (API.md §10, the price-feed page)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from polysim_async.sandbox import Sandbox

from ._helpers import Api, assert_error


async def _token(api: Api, key: str | None = None) -> str:
    _, _, body = await api.trader("POST", "/keys/ws-token", **({"key": key} if key else {}))
    return str(body["token"])


async def _open(api: Api, token: str, path: str = "prices") -> aiohttp.ClientWebSocketResponse:
    return await api.http.ws_connect(f"{api.sb.ws_url}/v1/ws/{path}?token={token}")


async def _recv(ws: aiohttp.ClientWebSocketResponse) -> Any:
    msg = await asyncio.wait_for(ws.receive(), 2)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def _send(ws: aiohttp.ClientWebSocketResponse, frame: Any) -> Any:
    await ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))
    return await _recv(ws)


@pytest.fixture
async def ws(api: Api) -> Any:
    socket = await _open(api, await _token(api))
    hello = await _recv(socket)
    assert hello == {"type": "connected", "user_id": api.sb.user_id, "protocol_version": "1.0"}
    yield socket
    await socket.close()


async def test_subscribe_in_both_shapes_and_unsubscribe(ws: Any, sb: Sandbox) -> None:
    a, b, c = sb.market_ids
    got = await _send(ws, {"action": "subscribe", "markets": [a, b, a]})
    assert got == {"type": "subscribed", "markets": [a, b]}
    got = await _send(ws, {"type": "SUBSCRIBE", "conditions": [c]})
    assert got == {"type": "subscribed", "markets": [a, b, c]}
    got = await _send(ws, {"action": "unsubscribe", "markets": [b, "0xnever"]})
    assert got == {"type": "subscribed", "markets": [a, c]}
    got = await _send(ws, {"type": "unsubscribe", "conditions": [a, c]})
    assert got == {"type": "subscribed", "markets": []}
    # Another key (the legacy condition_ids) subscribes nothing, and says so.
    got = await _send(ws, {"action": "subscribe", "condition_ids": [a]})
    assert got == {"type": "subscribed", "markets": []}


async def test_prices_are_pushed_when_the_exchange_moves(ws: Any, sb: Sandbox) -> None:
    a, b, _ = sb.market_ids
    await _send(ws, {"action": "subscribe", "markets": [a]})
    sb.set_price(b, "0.30")  # not subscribed: nothing
    sb.set_price(a, "0.62")
    frame = await _recv(ws)
    assert frame["type"] == "price" and frame["market_id"] == frame["condition_id"] == a
    assert (frame["buy"], frame["sell"], frame["best_bid"], frame["best_ask"]) == (
        "0.6200",
        "0.3800",
        "0.6100",
        "0.6300",
    )
    assert frame["emit_ts_ms"] == int(sb.now().timestamp() * 1000)
    assert [o["label"] for o in frame["outcomes"]] == ["Yes", "No"]
    yes_token = frame["outcomes"][0]["token_id"]
    assert frame["tokens"][yes_token] == {"label": "Yes", "price": "0.6200"}
    # A resting order fills at the very price the frame carried.
    order = await sb.place_order(
        market_id=a, side="BUY", outcome="Yes", quantity="5", price="0.55", order_type="limit"
    )
    sb.set_price(a, "0.54")
    frame = await _recv(ws)
    assert frame["best_ask"] == "0.5500" and "last_trade" in frame
    assert frame["last_trade"] == "0.5500" and order["status"] == "PENDING"


async def test_the_hourly_walk_pushes_a_frame_per_step(http: aiohttp.ClientSession) -> None:
    async with Sandbox(seed=5, frozen_clock=True, rate_limits=False) as walking:
        api = Api(walking, http)
        socket = await _open(api, await _token(api))
        await _recv(socket)
        await _send(socket, {"action": "subscribe", "markets": [walking.market_id]})
        walking.advance(hours=3)
        frames = [await _recv(socket) for _ in range(3)]
        await socket.close()
        mid = walking.markets()[0]["mids"]["Yes"]
    assert [f["type"] for f in frames] == ["price"] * 3
    # Each step is stamped at its hour; all three are broadcast now, after the jump.
    assert [f["updated_at"][11:19] for f in frames] == ["01:00:00", "02:00:00", "03:00:00"]
    assert {f["emit_ts_ms"] for f in frames} == {1780272000000 + 3 * 3_600_000}
    assert Decimal(frames[-1]["buy"]) == Decimal(mid)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("{nope", "Invalid JSON"),
        ({"action": "subscribe", "markets": "0xabc"}, "'markets' must be a list"),
        ({"type": "subscribe", "conditions": {"a": 1}}, "'markets' must be a list"),
        ({"action": "invalid", "markets": []}, "Unknown action: 'invalid'"),
        ([1, 2], "Unknown action: None"),
        ({"action": "subscribe", "assets_ids": ["7132"]}, "not a valid subscribe field"),
        ({"action": "unsubscribe", "assets_ids": ["7132"]}, "not a valid unsubscribe field"),
        ({"action": "subscribe", "markets": [1]}, "list of condition_id strings"),
    ],
)
async def test_bad_frames_get_an_error_frame_and_keep_the_socket(
    ws: Any, frame: Any, message: str
) -> None:
    got = await _send(ws, frame)
    assert got["type"] == "error" and message in got["message"]
    for ping in ({"action": "ping"}, {"type": "ping"}):
        assert (await _send(ws, ping))["type"] == "pong"


async def test_at_most_fifty_markets_per_connection(ws: Any) -> None:
    ids = [f"0x{i:064x}" for i in range(50)]
    assert len((await _send(ws, {"action": "subscribe", "markets": ids}))["markets"]) == 50
    got = await _send(ws, {"action": "subscribe", "markets": ["0xone-more"]})
    assert got["type"] == "error" and "at most 50" in got["message"]
    got = await _send(ws, {"action": "subscribe", "markets": ids[:3]})  # already held: fine
    assert len(got["markets"]) == 50


async def test_subscriptions_end_with_the_connection(api: Api, sb: Sandbox) -> None:
    token = await _token(api)
    first = await _open(api, token)
    await _recv(first)
    await _send(first, {"action": "subscribe", "markets": [sb.market_id]})
    await first.close()
    second = await _open(api, token)
    await _recv(second)
    sb.set_price(sb.market_id, "0.44")
    got = await _send(second, {"action": "ping"})
    assert got["type"] == "pong"  # no price frame: the new connection subscribed to nothing
    await second.close()


async def test_tokens_and_the_connection_cap_are_shared_with_executions(
    api: Api, sb: Sandbox
) -> None:
    bad = await _open(api, "garbage")
    await bad.receive()
    assert bad.close_code == 4001
    await bad.close()
    free = sb.create_trader(tier="free").api_key
    token = await _token(api, free)
    executions = await _open(api, token, "executions")  # free: one connection in all
    assert (await _recv(executions))["type"] == "connected"
    over = await _open(api, token)
    await over.receive()
    assert over.close_code == 4002
    await over.close()
    await executions.close()
    prices = await _open(api, token)
    assert (await _recv(prices))["type"] == "connected"  # the slot is free again
    await prices.close()


async def test_websocket_faults_apply_to_price_sockets(api: Api, sb: Sandbox) -> None:
    token = await _token(api)
    socket = await _open(api, token)
    await _recv(socket)
    sb.ws_send_malformed(1)
    sb.ws_drop_after(2, code=1011)
    await socket.send_json({"action": "subscribe", "markets": [sb.market_id]})
    msg = await asyncio.wait_for(socket.receive(), 2)
    assert msg.data.startswith('{"type": "price"') and msg.data.endswith(": ")  # malformed
    assert (await _recv(socket))["type"] == "subscribed"
    sb.set_price(sb.market_id, "0.52")
    assert (await _recv(socket))["type"] == "price"
    msg = await asyncio.wait_for(socket.receive(), 2)
    assert msg.type == aiohttp.WSMsgType.CLOSE and socket.close_code == 1011
    await socket.close()


async def test_a_plain_get_gets_the_upgrade_hint(api: Api) -> None:
    got = await api.call("GET", "/v1/ws/prices")
    assert_error(*got, 404, "WEBSOCKET_UPGRADE_REQUIRED")
    assert "/v1/ws/prices" in got[2]["message"]
