"""Frames of the execution WebSocket (``/v1/ws/executions``), API.md §10.

Every frame the feed sends is one member of the tagged union
:data:`ExecutionFeedFrame` (``type`` is the tag). The server emits the current
flat ``fill`` frame; clients must also read the two older shapes (``execution``
with a nested ``data`` object, and flat ``execution`` with ``status``/
``timestamp`` and a string ``order_id``). :func:`decode_frame` reads any of
them into one :class:`Fill`.
"""

from __future__ import annotations

from typing import Union

import msgspec

from .common import Money, MoneyStruct, Side, UTCDateTime

__all__ = [
    "ConnectedFrame",
    "ErrorFrame",
    "ExecutionData",
    "ExecutionFeedFrame",
    "ExecutionFrame",
    "Fill",
    "FillFrame",
    "FrameError",
    "PongFrame",
    "decode_frame",
]


class Fill(MoneyStruct, kw_only=True, frozen=True):
    """One fill of one of the key owner's orders, however the server framed it."""

    order_id: int
    market_id: str
    side: Side
    outcome: str
    price: Money
    quantity: Money
    filled_at: UTCDateTime


class ExecutionData(MoneyStruct, kw_only=True, frozen=True):
    """The fields of a fill, as a ``fill`` frame carries them (or ``execution``'s ``data``)."""

    order_id: int
    market_id: str
    side: Side
    outcome: str
    price: Money
    quantity: Money
    filled_at: UTCDateTime | None = None
    #: The older ``execution`` shape names the fill time ``timestamp``.
    timestamp: UTCDateTime | None = None


class FillFrame(ExecutionData, kw_only=True, frozen=True, tag="fill", tag_field="type"):
    """The current flat fill frame: ``{"type": "fill", "order_id": 42, ...}``."""


class ExecutionFrame(MoneyStruct, kw_only=True, frozen=True, tag="execution", tag_field="type"):
    """The older ``execution`` frame: the fill nested in ``data``, or flat (asyncapi).

    The flat form carries ``status`` (``FILLED``/``PARTIALLY_FILLED``), ``timestamp``
    and ``order_id`` as a string.
    """

    data: ExecutionData | None = None
    order_id: int | None = None
    market_id: str | None = None
    side: Side | None = None
    outcome: str | None = None
    price: Money | None = None
    quantity: Money | None = None
    status: str | None = None
    filled_at: UTCDateTime | None = None
    timestamp: UTCDateTime | None = None


class ConnectedFrame(msgspec.Struct, kw_only=True, frozen=True, tag="connected", tag_field="type"):
    """Greeting sent when a socket opens."""

    user_id: int | None = None
    protocol_version: str | None = None


class PongFrame(msgspec.Struct, kw_only=True, frozen=True, tag="pong", tag_field="type"):
    """Answer to a JSON ``{"action": "ping"}``; ``ts`` is epoch milliseconds."""

    ts: int | None = None


class ErrorFrame(msgspec.Struct, kw_only=True, frozen=True, tag="error", tag_field="type"):
    """The server reports a problem with what the client sent."""

    message: str | None = None


#: Every frame the execution feed is documented to send.
ExecutionFeedFrame = Union[FillFrame, ExecutionFrame, ConnectedFrame, PongFrame, ErrorFrame]  # noqa: UP007


class FrameError(ValueError):
    """A frame that announces a fill (or is not a JSON object at all) could not be read."""


class _Envelope(msgspec.Struct):
    type: str | None = None


# strict=False reads "42" as 42 and epoch seconds as timestamps, as the older shapes need.
_frames = msgspec.json.Decoder(ExecutionFeedFrame, strict=False)
_envelope = msgspec.json.Decoder(_Envelope)


def _fill(body: ExecutionData | ExecutionFrame) -> Fill:
    at = body.filled_at or body.timestamp
    if (
        body.order_id is None
        or body.market_id is None
        or body.side is None
        or body.outcome is None
        or body.price is None
        or body.quantity is None
    ):
        raise FrameError("execution frame without the fields of a fill")
    if at is None:
        raise FrameError(f"fill frame for order {body.order_id} has no time")
    return Fill(
        order_id=body.order_id,
        market_id=body.market_id,
        side=body.side,
        outcome=body.outcome,
        price=body.price,
        quantity=body.quantity,
        filled_at=at,
    )


def decode_frame(data: bytes | str) -> Fill | ErrorFrame | None:
    """Read one execution-feed frame.

    Returns:
        The fill (any of the three documented shapes), an :class:`ErrorFrame`,
        or ``None`` for frames that carry no fill (``connected``, ``pong``,
        unknown or missing types).

    Raises:
        FrameError: the frame is not a JSON object, or announces a fill
            (``fill``/``execution``) that cannot be read.
    """
    try:
        frame = _frames.decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:
        kind = _frame_type(data)
        if kind in ("fill", "execution"):
            raise FrameError(f"unreadable {kind} frame: {_why(exc)}") from None
        if kind is _NOT_JSON:
            raise FrameError(f"frame is not a JSON object: {_why(exc)}") from None
        return None  # another type: nothing for this feed
    if isinstance(frame, FillFrame):
        return _fill(frame)
    if isinstance(frame, ExecutionFrame):
        return _fill(frame.data or frame)
    if isinstance(frame, ErrorFrame):
        return frame
    return None


_NOT_JSON = object()


def _frame_type(data: bytes | str) -> object:
    try:
        return _envelope.decode(data).type
    except (msgspec.DecodeError, RecursionError):
        return _NOT_JSON


def _why(exc: BaseException) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
