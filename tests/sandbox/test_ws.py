"""The execution WebSocket (API.md §10) and its faults."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import msgspec

from polysim_async.models import ConnectedFrame, FillFrame, PongFrame
from polysim_async.sandbox import Sandbox

from ._helpers import Api, assert_error


async def _token(api: Api, key: str | None = None) -> str:
    status, _, body = await api.trader("POST", "/keys/ws-token", **({"key": key} if key else {}))
    assert status == 200 and body["expires_in"] == 60
    return str(body["token"])


async def _connect(api: Api, token: str) -> aiohttp.ClientWebSocketResponse:
    return await api.http.ws_connect(f"{api.sb.ws_url}/v1/ws/executions?token={token}")


async def _recv(ws: aiohttp.ClientWebSocketResponse) -> Any:
    msg = await asyncio.wait_for(ws.receive(), 2)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def _buy(sb: Sandbox, **kw: Any) -> None:
    await sb.place_order(
        market_id=sb.market_id, side="BUY", outcome="Yes", quantity="5", price="0.60", **kw
    )


async def test_greeting_fill_and_pong(api: Api, sb: Sandbox) -> None:
    token = await _token(api)
    ws = await _connect(api, token)
    try:
        hello = msgspec.json.decode(json.dumps(await _recv(ws)), type=ConnectedFrame)
        assert hello.user_id == sb.user_id and hello.protocol_version == "1.0"
        await _buy(sb)
        frame = await _recv(ws)
        assert frame["type"] == "fill" and set(frame) == {
            "type",
            "order_id",
            "market_id",
            "side",
            "outcome",
            "price",
            "quantity",
            "filled_at",
        }
        fill = msgspec.json.decode(json.dumps(frame), type=FillFrame)
        assert fill.price == 0.51 or str(fill.price) == "0.5100"
        for ping in ({"action": "ping"}, {"type": "ping"}):
            await ws.send_json(ping)
            pong = msgspec.json.decode(json.dumps(await _recv(ws)), type=PongFrame)
            assert pong.ts == int(sb.now().timestamp() * 1000)
        await ws.send_str("not json")
        await ws.send_json({"action": "subscribe"})
        await ws.send_json({"action": "ping"})
        assert (await _recv(ws))["type"] == "pong"
    finally:
        await ws.close()
    # The token is reusable inside its 60 s.
    ws2 = await _connect(api, token)
    assert (await _recv(ws2))["type"] == "connected"
    await ws2.close()


async def test_resting_and_partner_fills_are_pushed(api: Api, sb: Sandbox) -> None:
    user_id, account_id = await api.new_account()
    trader = sb.create_trader_key(user_id)
    ws = await _connect(api, await _token(api, trader.api_key))
    try:
        await _recv(ws)
        placed = await sb.place_order(
            account_id=account_id,
            market_id=sb.market_id,
            side="BUY",
            outcome="Yes",
            quantity="5",
            price="0.40",
            order_type="limit",
        )
        sb.set_price(sb.market_id, "0.38")
        frame = await _recv(ws)
        assert frame["order_id"] == placed["order_id"] and frame["price"] == "0.4000"
        sb.configure(push_taker_fills=False)
        await sb.place_order(
            account_id=account_id,
            market_id=sb.market_id,
            side="BUY",
            outcome="Yes",
            quantity="5",
            price="0.60",
        )
        sb.generate_fills(2, account_id=account_id, push=True)
        frames = [await _recv(ws), await _recv(ws)]
        assert [f["side"] for f in frames] == ["BUY", "SELL"]
    finally:
        await ws.close()


async def test_bad_and_expired_tokens_close_4001(api: Api, sb: Sandbox) -> None:
    for token in ("", "garbage"):
        ws = await _connect(api, token)
        msg = await ws.receive()
        assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4001
        await ws.close()
    token = await _token(api)
    sb.advance(61)
    ws = await _connect(api, token)
    await ws.receive()
    assert ws.close_code == 4001
    await ws.close()
    token = await _token(api)
    assert sb.expire_ws_tokens() == 2
    ws = await _connect(api, token)
    await ws.receive()
    assert ws.close_code == 4001
    await ws.close()


async def test_connection_cap_closes_4002(api: Api, sb: Sandbox) -> None:
    token = await _token(api)
    open_ws = [await _connect(api, token) for _ in range(3)]  # pro: 3 sockets
    try:
        for ws in open_ws:
            assert (await _recv(ws))["type"] == "connected"
        extra = await _connect(api, token)
        await extra.receive()
        assert extra.close_code == 4002
        await extra.close()
    finally:
        for ws in open_ws:
            await ws.close()


async def test_plain_get_is_a_json_error(api: Api) -> None:
    got = await api.call("GET", "/v1/ws/executions?token=x")
    assert_error(*got, 404, "WEBSOCKET_UPGRADE_REQUIRED")


async def test_older_frame_shapes(api: Api, sb: Sandbox) -> None:
    ws = await _connect(api, await _token(api))
    try:
        await _recv(ws)
        sb.set_fill_frame_shape("execution_nested")
        await _buy(sb)
        nested = await _recv(ws)
        assert nested["type"] == "execution" and nested["data"]["quantity"] == "5.0000"
        assert "filled_at" in nested["data"]
        sb.set_fill_frame_shape("execution_flat")
        await _buy(sb)
        flat = await _recv(ws)
        assert flat["type"] == "execution" and isinstance(flat["order_id"], str)
        assert flat["status"] == "FILLED" and "timestamp" in flat and "filled_at" not in flat
    finally:
        await ws.close()


async def test_drop_after_n_frames_close_and_abort(api: Api, sb: Sandbox) -> None:
    sb.ws_drop_after(2, code=1011)
    ws = await _connect(api, await _token(api))
    await _recv(ws)
    await _buy(sb)
    await _buy(sb)
    await _recv(ws)
    await _recv(ws)
    msg = await asyncio.wait_for(ws.receive(), 2)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1011
    await ws.close()
    sb.ws_drop_after(1, mode="abort")
    ws = await _connect(api, await _token(api))
    await _recv(ws)
    await _buy(sb)
    await _recv(ws)
    msg = await asyncio.wait_for(ws.receive(), 2)
    assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
    assert ws.close_code != 1000
    await ws.close()


async def test_malformed_frame_and_chaos(api: Api, sb: Sandbox) -> None:
    sb.ws_send_malformed(1)
    ws = await _connect(api, await _token(api))
    await _recv(ws)
    await _buy(sb)
    bad = await asyncio.wait_for(ws.receive(), 2)
    try:
        json.loads(bad.data)
    except ValueError:
        pass
    else:
        raise AssertionError("expected a malformed frame")
    assert (await _recv(ws))["type"] == "fill"
    await ws.close()
    sb.ws_chaos(1.0, seed=3)
    ws = await _connect(api, await _token(api))
    await _recv(ws)
    await _buy(sb)
    await _recv(ws)
    msg = await asyncio.wait_for(ws.receive(), 2)
    assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
    await ws.close()
    sb.clear_faults()


async def test_shutdown_closes_sockets_1001(http: aiohttp.ClientSession) -> None:
    sb = Sandbox(seed=5, rate_limits=False)
    await sb.start()
    api = Api(sb, http)
    ws = await _connect(api, await _token(api))
    await _recv(ws)
    closing = asyncio.ensure_future(sb.aclose())
    msg = await asyncio.wait_for(ws.receive(), 2)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1001
    await ws.close()
    await closing
