"""Frames of the execution WebSocket (``/v1/ws/executions``), API.md §10.

The server emits the current flat ``fill`` frame; clients must also read the two
older shapes (nested ``execution`` with ``data``, and flat ``execution`` with
``status``/``timestamp`` and a string ``order_id``), which the streams layer
normalises into :class:`Fill`.
"""

from __future__ import annotations

import msgspec

from .common import Money, Side, UTCDateTime

__all__ = ["ConnectedFrame", "Fill", "FillFrame", "PongFrame"]


class Fill(msgspec.Struct, kw_only=True, frozen=True):
    """One fill of one of the key owner's orders, however the server framed it."""

    order_id: int
    market_id: str
    side: Side
    outcome: str
    price: Money
    quantity: Money
    filled_at: UTCDateTime


class FillFrame(msgspec.Struct, kw_only=True, frozen=True, tag="fill", tag_field="type"):
    """The current flat fill frame: ``{"type": "fill", "order_id": 42, ...}``."""

    order_id: int
    market_id: str
    side: Side
    outcome: str
    price: Money
    quantity: Money
    filled_at: UTCDateTime


class ConnectedFrame(msgspec.Struct, kw_only=True, frozen=True, tag="connected", tag_field="type"):
    """Greeting sent when a socket opens."""

    user_id: int | None = None
    protocol_version: str | None = None


class PongFrame(msgspec.Struct, kw_only=True, frozen=True, tag="pong", tag_field="type"):
    """Answer to a JSON ``{"action": "ping"}``; ``ts`` is epoch milliseconds."""

    ts: int | None = None
