"""Frames of the price WebSocket (``/v1/ws/prices``), API.md §10.2 and §10.4.

Server frames form a tagged union on ``type``: ``price`` ticks, the
``subscribed`` acknowledgement (the connection's whole current set, also after
an unsubscribe), ``error``, and the ``connected`` / ``pong`` frames shared with
the executions channel. Prices are exact decimals (JSON strings); ``emit_ts_ms``
is a JSON integer of epoch milliseconds, as documented. Most tick fields are
optional: which ones arrive depends on what last wrote the server's snapshot.

Client frames use the PolySim-native shape ``{"action": ..., "markets": [...]}``;
a connection holds at most :data:`MAX_PRICE_SUBSCRIPTIONS` condition ids.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal, TypeAlias

import msgspec

from .common import Money, MoneyStruct, UTCDateTime
from .executions import _NOT_JSON, ConnectedFrame, FrameError, PongFrame, _frame_type, _why
from .markets import OutcomePrice
from .trading import _MAX_EPOCH_MS

__all__ = [
    "MAX_PRICE_SUBSCRIPTIONS",
    "PriceCommand",
    "PriceErrorFrame",
    "PriceFrame",
    "PriceTick",
    "SubscribedFrame",
    "TokenPrice",
    "decode_price_frame",
]

#: Condition ids one ``/v1/ws/prices`` connection may subscribe to (fixed, not per tier).
MAX_PRICE_SUBSCRIPTIONS = 50


class TokenPrice(MoneyStruct, kw_only=True, frozen=True):
    """One entry of a tick's ``tokens`` index (keyed by token id)."""

    label: str | None = None
    price: Money | None = None


class PriceTick(MoneyStruct, kw_only=True, frozen=True, tag="price", tag_field="type"):
    """One price update for a subscribed market (flat, never nested under ``data``).

    ``buy``/``sell`` are the first and second outcome's prices; ``best_bid``,
    ``best_ask`` and ``last_trade`` come only when the upstream book had them.
    ``source`` is a provenance label (``websocket``, ``gamma_poller``,
    ``updown_resolved_*`` …), not a stable enum. ``emit_ts_ms`` is the server's
    broadcast time (a frame whose ``emit_ts_ms`` lies outside 1970..9999 is
    unreadable, so :attr:`emitted_at` never fails); ``updated_at`` is when the
    price was cached (earlier).
    """

    market_id: str
    condition_id: str | None = None
    buy: Money | None = None
    sell: Money | None = None
    best_bid: Money | None = None
    best_ask: Money | None = None
    last_trade: Money | None = None
    volume: Money | None = None
    outcomes: list[OutcomePrice] = msgspec.field(default_factory=list)
    tokens: dict[str, TokenPrice] = msgspec.field(default_factory=dict)
    active: bool | None = None
    closed: bool | None = None
    source: str | None = None
    emit_ts_ms: Annotated[int, msgspec.Meta(ge=0, le=_MAX_EPOCH_MS)] | None = None
    updated_at: UTCDateTime | None = None
    ws_updated_at: UTCDateTime | None = None

    @property
    def emitted_at(self) -> datetime | None:
        """``emit_ts_ms`` as an aware UTC datetime (``None`` if absent)."""
        if self.emit_ts_ms is None:
            return None
        return datetime.fromtimestamp(self.emit_ts_ms / 1000, timezone.utc)


class SubscribedFrame(
    msgspec.Struct, kw_only=True, frozen=True, tag="subscribed", tag_field="type"
):
    """The server's acknowledgement: every condition id the connection is subscribed to now."""

    markets: list[str] = msgspec.field(default_factory=list)


class PriceErrorFrame(msgspec.Struct, kw_only=True, frozen=True, tag="error", tag_field="type"):
    """A protocol error (bad JSON, unknown action, ``assets_ids`` used, non-list markets)."""

    message: str | None = None


#: Every frame the price channel sends, decoded by its ``type``.
PriceFrame: TypeAlias = PriceTick | SubscribedFrame | PriceErrorFrame | ConnectedFrame | PongFrame


class PriceCommand(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """A client frame: ``{"action": "subscribe"|"unsubscribe", "markets": [...]}`` or a ping.

    The server does not remember subscriptions across connections: every new
    connection must subscribe again.
    """

    action: Literal["subscribe", "unsubscribe", "ping"]
    markets: list[str] | None = None


_frames = msgspec.json.Decoder(PriceFrame)


def decode_price_frame(data: bytes | str) -> PriceFrame | None:
    """Read one frame of the price channel.

    A ``subscribed`` or ``error`` frame whose other fields cannot be read still
    counts as that answer (an empty set, no message): each answers one client
    frame, so none may be lost.

    Returns:
        The typed frame, or ``None`` for an unknown or missing ``type``.

    Raises:
        FrameError: the frame is not a JSON object, or is a ``price`` frame
            that cannot be read.
    """
    try:
        return _frames.decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:
        kind = _frame_type(data)
        if kind == "subscribed":
            return SubscribedFrame()
        if kind == "error":
            return PriceErrorFrame()
        if kind == "price":
            raise FrameError(f"unreadable price frame: {_why(exc)}") from None
        if kind is _NOT_JSON:
            raise FrameError(f"frame is not a JSON object: {_why(exc)}") from None
        return None
