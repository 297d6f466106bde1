"""The execution WebSocket, ``/v1/ws/executions?token=`` (API.md §10).

On open the server sends ``{"type":"connected","user_id":..,"protocol_version":"1.0"}``,
then one frame per fill of any of the user's wallets (API and partner accounts;
taker fills too, unless ``push_taker_fills`` is off) in the current flat ``fill``
shape, or an older ``execution`` shape when a fault selects it. JSON pings
(``{"action":"ping"}`` or ``{"type":"ping"}``) get ``{"type":"pong","ts":<ms>}``;
protocol pings are answered by aiohttp; other client frames are ignored.

A missing, unknown or expired token is accepted then closed with ``4001``; a
socket over the tier's connection cap is closed with ``4002``. A plain GET
without an upgrade answers ``404 WEBSOCKET_UPGRADE_REQUIRED`` in the standard
envelope (the docs file the "upgrade hint" under the 404 schema). Each socket
has an unbounded outbound queue drained by its own sender task; both end with
the socket, and sandbox shutdown closes every socket with ``1001``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import msgspec
from aiohttp import WSMsgType, web

from .._codec import encode
from ._clock import format_iso_z
from ._errors import ApiError
from ._state import TIERS

if TYPE_CHECKING:
    from ._core import Core

__all__ = ["Conn", "Hub", "executions_handler"]

_decoder = msgspec.json.Decoder()


class Conn:
    """One open executions socket: its queue of frames and its sender task."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, user_id: int) -> None:
        self.ws = ws
        self.request = request
        self.user_id = user_id
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.sent = 0

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()


class Hub:
    """Open sockets by user, and the fan-out of fill frames."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.conns: dict[int, set[Conn]] = {}

    def count(self, user_id: int) -> int:
        """How many executions sockets the user has open."""
        return len(self.conns.get(user_id, ()))

    def frame(
        self,
        order_id: int,
        market_id: str,
        side: str,
        outcome: str,
        price: str,
        quantity: str,
        filled_us: int,
    ) -> str:
        """Encode one fill in the configured shape."""
        shape = self.core.ws_faults.shape
        ts = format_iso_z(filled_us)
        fields: dict[str, object] = {
            "order_id": order_id,
            "market_id": market_id,
            "side": side,
            "outcome": outcome,
            "price": price,
            "quantity": quantity,
        }
        data: dict[str, object]
        if shape == "execution_nested":
            data = {"type": "execution", "data": {**fields, "filled_at": ts}}
        elif shape == "execution_flat":
            data = {"type": "execution", **fields, "order_id": str(order_id)}
            data.update(status="FILLED", timestamp=ts)
        else:
            data = {"type": "fill", **fields, "filled_at": ts}
        return encode(data).decode()

    def push_fill(
        self,
        user_id: int,
        order_id: int,
        market_id: str,
        side: str,
        outcome: str,
        price: str,
        quantity: str,
        filled_us: int,
    ) -> None:
        """Queue a fill frame on every executions socket of ``user_id``."""
        conns = self.conns.get(user_id)
        if not conns:
            return
        text = self.frame(order_id, market_id, side, outcome, price, quantity, filled_us)
        for conn in conns:
            conn.queue.put_nowait(text)

    async def close_all(self, code: int = 1001) -> None:
        """Close every socket (shutdown)."""
        for conns in list(self.conns.values()):
            for conn in list(conns):
                await conn.ws.close(code=code, message=b"sandbox shutting down")

    async def _send(self, conn: Conn) -> None:
        faults = self.core.ws_faults
        while True:
            text = await conn.queue.get()
            if faults.malformed > 0:
                faults.malformed -= 1
                await conn.ws.send_str('{"type": "fill", "order_id": ')
            await conn.ws.send_str(text)
            conn.sent += 1
            if faults.after_frames is not None and conn.sent >= faults.after_frames:
                if faults.mode == "abort":
                    conn.abort()
                else:
                    await conn.ws.close(code=faults.close_code, message=b"injected close")
                return
            if faults.chaos and faults.rng.random() < faults.chaos:
                conn.abort()
                return

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """Run one executions socket until either side closes it."""
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 16)
        await ws.prepare(request)
        core = self.core
        entry = core.ws_tokens.get(request.query.get("token", ""))
        if entry is None or entry[2] <= core.clock.now_us():
            await ws.close(code=4001, message=b"invalid or expired token")
            return ws
        user_id, tier, _ = entry

        if self.count(user_id) >= TIERS[tier].ws_connections:
            await ws.close(code=4002, message=b"too many WebSocket connections for this tier")
            return ws
        conn = Conn(ws, request, user_id)
        self.conns.setdefault(user_id, set()).add(conn)
        await ws.send_str(
            encode({"type": "connected", "user_id": user_id, "protocol_version": "1.0"}).decode()
        )
        sender = asyncio.create_task(self._send(conn))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_text(ws, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.conns.get(user_id, set()).discard(conn)
            if not self.conns.get(user_id):
                self.conns.pop(user_id, None)
            sender.cancel()
            # Wait for the sender without swallowing a cancellation of this task.
            await asyncio.wait([sender])
            if not sender.cancelled():
                with contextlib.suppress(Exception):
                    sender.result()
        return ws

    async def _on_text(self, ws: web.WebSocketResponse, data: str) -> None:
        try:
            frame = _decoder.decode(data)
        except msgspec.DecodeError:
            return
        if isinstance(frame, dict) and "ping" in (frame.get("action"), frame.get("type")):
            ts = self.core.clock.now_us() // 1000
            await ws.send_str(f'{{"type":"pong","ts":{ts}}}')


async def executions_handler(request: web.Request) -> web.StreamResponse:
    """``GET /v1/ws/executions``: upgrade, or a JSON error for a plain GET.

    Raises:
        ApiError: 404 WEBSOCKET_UPGRADE_REQUIRED without an upgrade.
    """
    from ._core import CORE

    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise ApiError(
            404,
            "WEBSOCKET_UPGRADE_REQUIRED",
            "this is a WebSocket endpoint: connect with ws:// and ?token=<ws-token>",
        )
    return await request.app[CORE].hub.serve(request)
