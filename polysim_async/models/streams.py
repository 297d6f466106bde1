"""Positions and events of the fill streams: the executions stream and the partner trade watch.

A fill's identity is ``(order_id, filled_at)``; fills are ordered by
``(filled_at, order_id)``, the order the partner trade feed pages in (API.md §8.1).
A :class:`Watermark` is one point in that order: "every fill up to and including
this one has been handled". It is what a caller saves to resume after a restart.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import NamedTuple

import msgspec

from .common import UTCDateTime
from .executions import Fill
from .partner import Trade

__all__ = ["AccountTrade", "StreamCheckpoint", "StreamGap", "Watermark"]


class Watermark(msgspec.Struct, kw_only=True, frozen=True, order=True):
    """A position in the fill order: the newest fill already handled.

    Watermarks compare by ``(filled_at, order_id)``, so ``a < b`` means ``a``
    comes first. Encode one with ``msgspec.json.encode`` to save it and decode it
    with ``msgspec.json.decode(data, type=Watermark)`` to resume.
    """

    filled_at: UTCDateTime
    order_id: int

    @classmethod
    def of(cls, fill: Fill | Trade) -> Watermark:
        """Return the position of ``fill`` (an executions ``Fill`` or a partner ``Trade``)."""
        return cls(filled_at=fill.filled_at, order_id=fill.order_id)

    @classmethod
    def beginning(cls) -> Watermark:
        """Return the position before every fill: resuming from it replays the whole history."""
        return cls(filled_at=_EPOCH, order_id=0)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class StreamCheckpoint(msgspec.Struct, kw_only=True, frozen=True):
    """Exactly what an executions stream has handed over: save it to resume without gaps.

    A fill can reach REST without ever reaching the socket (API.md §10.3), and a
    newer live fill can overtake it; the stream recovers it at its next REST check.
    A single :class:`Watermark` (the newest fill handed over) would skip such a fill
    after a restart, so a checkpoint also records the REST-checked boundary and the
    fills handed over since. Its size is the fills of the last REST check interval
    plus the lookback window. Encode it with ``msgspec.json.encode`` and pass it back
    as ``since=``.

    Attributes:
        floor: where the stream originally started; nothing at or below it is due.
        complete_before: every fill with an earlier ``filled_at`` was handed over
            (or lies below the lookback window, as with a live stream).
        delivered: the fills at or after ``complete_before`` handed over, in order.
    """

    floor: Watermark
    complete_before: UTCDateTime
    delivered: tuple[Watermark, ...] = ()


class StreamGap(msgspec.Struct, kw_only=True, frozen=True):
    """Marker yielded (when asked for) after the stream healed a gap from REST.

    It comes just before the fills it recovered, which follow in order.

    Attributes:
        after: the newest fill the stream had handed over before the gap
            (``None`` when it had none yet).
        until: the newest fill recovered from REST, or ``None`` if none was missing.
        recovered: how many fills were recovered from REST (they follow this marker).
        reason: why REST was read: a close code or error after a drop, ``"resume"``
            (started from a saved position), ``"start"`` (fills between entering
            and the socket opening), ``"reconcile"`` (a periodic check found fills
            the socket never carried), ``"unreadable frame"``.
        offline_seconds: time from losing the live feed to having healed the gap.
    """

    after: Watermark | None
    until: Watermark | None
    recovered: int
    reason: str
    offline_seconds: float


class AccountTrade(NamedTuple):
    """One fill of one partner account, as ``trades_many`` and ``watch_trades`` yield them.

    A named pair: read ``item.account_id`` and ``item.trade``, or unpack it as
    ``account_id, trade = item`` (so ``for account_id, trade in trades_many(ids)``
    works, with both names typed).
    """

    account_id: str
    trade: Trade
