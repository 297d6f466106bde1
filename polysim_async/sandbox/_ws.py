"""The execution WebSocket, ``/v1/ws/executions?token=`` (API.md §10), and its tokens.

On open the server sends ``{"type":"connected","user_id":..,"protocol_version":"1.0"}``,
then one frame per fill of any of the user's wallets (API and partner accounts;
taker fills too, unless ``push_taker_fills`` is off) in the current flat ``fill``
shape, or an older ``execution`` shape when a fault selects it. JSON pings
(``{"action":"ping"}`` or ``{"type":"ping"}``) get ``{"type":"pong","ts":<ms>}``;
protocol pings are answered by aiohttp; other client frames (unreadable or
deeply nested ones included) are ignored and the socket stays open.

A missing, unknown or expired token is accepted then closed with ``4001``; a
socket over the tier's connection cap is closed with ``4002``. A plain GET
without an upgrade answers ``404 WEBSOCKET_UPGRADE_REQUIRED`` in the standard
envelope (the docs file the "upgrade hint" under the 404 schema). Each socket
has an unbounded outbound queue drained by its own sender task; both end with
the socket, and sandbox shutdown closes every socket with ``1001``.

:class:`Hub` is built from what it needs (the clock, the WebSocket faults and the
token store), not from the whole sandbox.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Callable

import msgspec
from aiohttp import WSMsgType, web

from ._clock import SandboxClock, format_iso_z
from ._errors import ApiError
from ._faults import WsFaults
from ._fields import WS_CONNECTED, WS_FILL, WS_PONG
from ._json import encode
from ._state import TIERS

__all__ = ["WS_TOKEN_TTL", "Conn", "Hub", "WsTokens"]

#: Lifetime of a WebSocket token, in simulated seconds (API.md §2.3).
WS_TOKEN_TTL = 60
_decoder = msgspec.json.Decoder()


class WsTokens:
    """Issued WebSocket tokens: reusable until they expire on the simulated clock.

    Args:
        clock: the simulated clock (token lifetimes are simulated time).
        hex_source: returns ``n`` random hex characters (seeded by the sandbox).
    """

    def __init__(self, clock: SandboxClock, hex_source: Callable[[int], str]) -> None:
        self._clock = clock
        self._hex = hex_source
        #: token -> (user_id, tier, expires_us)
        self._tokens: dict[str, tuple[int, str, int]] = {}

    def mint(self, user_id: int, tier: str) -> str:
        """Issue a JWT-shaped token valid for :data:`WS_TOKEN_TTL` simulated seconds."""
        expires = self._clock.now_us() + WS_TOKEN_TTL * 1_000_000

        def b64(data: dict[str, object]) -> str:
            return base64.urlsafe_b64encode(encode(data)).decode().rstrip("=")

        head = b64({"alg": "HS256", "typ": "JWT"})
        body = b64({"sub": str(user_id), "exp": expires // 1_000_000, "jti": self._hex(16)})
        sig = base64.urlsafe_b64encode(bytes.fromhex(self._hex(64))).decode().rstrip("=")
        token = f"{head}.{body}.{sig}"
        self._tokens[token] = (user_id, tier, expires)
        return token

    def check(self, token: str) -> tuple[int, str] | None:
        """Return ``(user_id, tier)`` for a live token, ``None`` for an unknown or expired one."""
        entry = self._tokens.get(token)
        if entry is None or entry[2] <= self._clock.now_us():
            return None
        return entry[0], entry[1]

    def expire_all(self) -> int:
        """Expire every token now; return how many there were."""
        now = self._clock.now_us()
        for token, (user_id, tier, _) in list(self._tokens.items()):
            self._tokens[token] = (user_id, tier, now)
        return len(self._tokens)


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

    def __init__(self, clock: SandboxClock, faults: WsFaults, tokens: WsTokens) -> None:
        self.clock = clock
        self.faults = faults
        self.tokens = tokens
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
        shape = self.faults.shape
        ts = format_iso_z(filled_us)
        fill = WS_FILL.make(
            type="fill",
            order_id=order_id,
            market_id=market_id,
            side=side,
            outcome=outcome,
            price=price,
            quantity=quantity,
            filled_at=ts,
        )
        data: dict[str, object] = fill
        # The older shapes of API.md §10.3, kept only as faults a client must survive.
        if shape == "execution_nested":
            del fill["type"]
            data = {"type": "execution", "data": fill}
        elif shape == "execution_flat":
            del fill["filled_at"]
            data = {**fill, "type": "execution", "order_id": str(order_id)}
            data.update(status="FILLED", timestamp=ts)
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
        faults = self.faults
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

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/ws/executions``: upgrade and serve, or a JSON error for a plain GET.

        Raises:
            ApiError: 404 WEBSOCKET_UPGRADE_REQUIRED without an upgrade.
        """
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise ApiError(
                404,
                "WEBSOCKET_UPGRADE_REQUIRED",
                "this is a WebSocket endpoint: connect with ws:// and ?token=<ws-token>",
            )
        return await self._serve(request)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        """Run one executions socket until either side closes it."""
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 16)
        await ws.prepare(request)
        entry = self.tokens.check(request.query.get("token", ""))
        if entry is None:
            await ws.close(code=4001, message=b"invalid or expired token")
            return ws
        user_id, tier = entry

        if self.count(user_id) >= TIERS[tier].ws_connections:
            await ws.close(code=4002, message=b"too many WebSocket connections for this tier")
            return ws
        conn = Conn(ws, request, user_id)
        self.conns.setdefault(user_id, set()).add(conn)
        hello = WS_CONNECTED.make(type="connected", user_id=user_id, protocol_version="1.0")
        await ws.send_str(encode(hello).decode())
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
        except (msgspec.DecodeError, RecursionError):
            return  # unreadable or nested too deeply to read: ignored, like any other frame
        if isinstance(frame, dict) and "ping" in (frame.get("action"), frame.get("type")):
            pong = WS_PONG.make(type="pong", ts=self.clock.now_us() // 1000)
            await ws.send_str(encode(pong).decode())
