"""The WebSocket channels' shared machinery, the execution channel
``/v1/ws/executions?token=`` (API.md §10), and the tokens.

On open the server sends ``{"type":"connected","user_id":..,"protocol_version":"1.0"}``,
then one frame per fill of any of the user's wallets (API and partner accounts;
taker fills too, unless ``push_taker_fills`` is off) in the current flat ``fill``
shape, or an older ``execution`` shape when a fault selects it. JSON pings
(``{"action":"ping"}`` or ``{"type":"ping"}``) get ``{"type":"pong","ts":<ms>}``;
protocol pings are answered by aiohttp; other client frames (unreadable or
deeply nested ones included) are ignored and the socket stays open.

Every channel (this one and the price channel, :mod:`._prices`) shares the
rules of :class:`Channel`: a missing, unknown or expired token is accepted then
closed with ``4001``; a socket that would exceed the tier's connection cap
(``max_ws_connections``, counted per user over *both* channels: the docs count
"active connections for your user account") is closed with ``4002``. A plain
GET without an upgrade answers ``404 WEBSOCKET_UPGRADE_REQUIRED`` in the
standard envelope (the docs file the "upgrade hint" under the 404 schema). Each
socket has an unbounded outbound queue drained by its own sender task, where the
WebSocket faults apply (drop after N frames, chaos, malformed frames); both end
with the socket, and sandbox shutdown closes every socket with ``1001``.

The channels are built from what they need (the clock, the WebSocket faults, the
token store and the shared connection count), not from the whole sandbox.
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

__all__ = ["WS_TOKEN_TTL", "Channel", "Conn", "Hub", "Slots", "WsTokens"]

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


class Slots:
    """Open WebSocket connections per user, over every channel (the tier's cap)."""

    def __init__(self) -> None:
        self._open: dict[int, int] = {}

    def take(self, user_id: int, cap: int) -> bool:
        """Count one more connection for ``user_id``, unless ``cap`` are already open."""
        count = self._open.get(user_id, 0)
        if count >= cap:
            return False
        self._open[user_id] = count + 1
        return True

    def release(self, user_id: int) -> None:
        """Forget one connection of ``user_id``."""
        count = self._open.get(user_id, 0) - 1
        if count > 0:
            self._open[user_id] = count
        else:
            self._open.pop(user_id, None)


class Conn:
    """One open socket: its queue of frames, its sender task's count, its subscriptions."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, user_id: int) -> None:
        self.ws = ws
        self.request = request
        self.user_id = user_id
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.sent = 0
        #: Subscribed condition ids, in subscription order (price channel only).
        self.markets: dict[str, None] = {}

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()


class Channel:
    """What both WebSocket channels share: the upgrade, token and cap checks, the
    greeting, the sender loop with its faults, and shutdown."""

    #: The channel's path, for the upgrade hint.
    path = ""
    #: The truncated frame the malformed-frame fault sends.
    malformed = '{"type": "fill", "order_id": '

    def __init__(
        self, clock: SandboxClock, faults: WsFaults, tokens: WsTokens, slots: Slots
    ) -> None:
        self.clock = clock
        self.faults = faults
        self.tokens = tokens
        self.slots = slots
        self.conns: dict[int, set[Conn]] = {}

    def count(self, user_id: int) -> int:
        """How many sockets of this channel the user has open."""
        return len(self.conns.get(user_id, ()))

    async def close_all(self, code: int = 1001) -> None:
        """Close every socket (shutdown)."""
        for conns in list(self.conns.values()):
            for conn in list(conns):
                await conn.ws.close(code=code, message=b"sandbox shutting down")

    def pong(self) -> str:
        """A ``pong`` frame stamped with the simulated now."""
        return encode(WS_PONG.make(type="pong", ts=self.clock.now_us() // 1000)).decode()

    async def _send(self, conn: Conn) -> None:
        faults = self.faults
        while True:
            text = await conn.queue.get()
            if faults.malformed > 0:
                faults.malformed -= 1
                await conn.ws.send_str(self.malformed)
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
        """Upgrade and serve, or a JSON error for a plain GET.

        Raises:
            ApiError: 404 WEBSOCKET_UPGRADE_REQUIRED without an upgrade.
        """
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise ApiError(
                404,
                "WEBSOCKET_UPGRADE_REQUIRED",
                f"this is a WebSocket endpoint: connect with ws:// to {self.path}?token=<ws-token>",
            )
        return await self._serve(request)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        """Run one socket until either side closes it."""
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 16)
        await ws.prepare(request)
        entry = self.tokens.check(request.query.get("token", ""))
        if entry is None:
            await ws.close(code=4001, message=b"invalid or expired token")
            return ws
        user_id, tier = entry
        if not self.slots.take(user_id, TIERS[tier].ws_connections):
            await ws.close(code=4002, message=b"Maximum WebSocket connections exceeded")
            return ws
        conn = Conn(ws, request, user_id)
        self.conns.setdefault(user_id, set()).add(conn)
        sender: asyncio.Task[None] | None = None
        try:
            hello = WS_CONNECTED.make(type="connected", user_id=user_id, protocol_version="1.0")
            await ws.send_str(encode(hello).decode())
            sender = asyncio.create_task(self._send(conn))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self.on_text(conn, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.slots.release(user_id)
            self.conns.get(user_id, set()).discard(conn)
            if not self.conns.get(user_id):
                self.conns.pop(user_id, None)
            self.forget(conn)
            if sender is not None:
                sender.cancel()
                # Wait for the sender without swallowing a cancellation of this task.
                await asyncio.wait([sender])
                if not sender.cancelled():
                    with contextlib.suppress(Exception):
                        sender.result()
        return ws

    async def on_text(self, conn: Conn, data: str) -> None:
        """Handle one client text frame (each channel has its own protocol)."""
        raise NotImplementedError

    def forget(self, conn: Conn) -> None:
        """Drop what the channel keeps about a closed socket (nothing by default)."""


class Hub(Channel):
    """The executions channel: open sockets by user, and the fan-out of fill frames."""

    path = "/v1/ws/executions"

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

    async def on_text(self, conn: Conn, data: str) -> None:
        """JSON pings get a pong; every other frame is ignored."""
        try:
            frame = _decoder.decode(data)
        except (msgspec.DecodeError, RecursionError):
            return  # unreadable or nested too deeply to read: ignored, like any other frame
        if isinstance(frame, dict) and "ping" in (frame.get("action"), frame.get("type")):
            await conn.ws.send_str(self.pong())
