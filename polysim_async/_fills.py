"""Fill identity, ordering and de-duplication for the executions stream, and its REST backfill.

Nothing here touches a socket. Rules (see :mod:`polysim_async.models.streams`):

* A fill is identified by ``(order_id, filled_at)`` and ordered by
  ``(filled_at, order_id)``; :class:`Watermark` is that key.
* The tracker's ``mark`` is the newest fill already queued for the consumer.
  A fill above it is new. A fill at or below it is a duplicate if the tracker
  has seen its key (delivered, or read from REST at or below the mark);
  otherwise it is *late* (it became visible after newer fills) and is still
  delivered, out of order, with a warning: a fill is never dropped silently.
* REST (``GET /v1/account/history``, newest ``filled_at`` first) is the source of
  truth: after every reconnect the fills above the mark are read from it.
"""

from __future__ import annotations

import enum
import heapq
import logging
from collections.abc import Mapping
from datetime import timedelta

import msgspec

from ._requester import Requester
from .models.account import HistoryPage, HistoryRow
from .models.common import Money, Side, UTCDateTime
from .models.executions import Fill
from .models.streams import Watermark

__all__ = ["FillTracker", "FrameError", "Verdict", "decode_frame", "fetch_head", "fetch_since"]

logger = logging.getLogger("polysim_async")

#: Largest page ``GET /v1/account/history`` serves (API.md §4.3).
HISTORY_PAGE_MAX = 200


class FrameError(ValueError):
    """A frame that announces a fill (or is not JSON at all) could not be read."""


class _Envelope(msgspec.Struct):
    type: str | None = None
    data: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)


class _Body(msgspec.Struct):
    # One body for the three documented shapes: flat ``fill``, ``execution`` with
    # nested ``data``, flat ``execution`` with ``timestamp`` and a string ``order_id``.
    order_id: int
    market_id: str
    side: Side
    outcome: str
    price: Money
    quantity: Money
    filled_at: UTCDateTime | None = None
    timestamp: UTCDateTime | None = None


_envelope = msgspec.json.Decoder(_Envelope)
# strict=False reads "42" as 42 and epoch seconds as timestamps, as the older shapes need.
_body = msgspec.json.Decoder(_Body, strict=False)
_FILL_TYPES = frozenset({"fill", "execution"})


def decode_frame(data: bytes | str) -> Fill | None:
    """Normalise one execution-feed frame.

    Returns:
        The fill, or ``None`` for frames that carry none (``connected``,
        ``pong``, ``error``, unknown types).

    Raises:
        FrameError: the frame is not JSON, or announces a fill that cannot be read.
    """
    try:
        envelope = _envelope.decode(data)
    except msgspec.DecodeError as exc:
        raise FrameError(f"frame is not a JSON object: {exc}") from exc
    if envelope.type not in _FILL_TYPES:
        if envelope.type == "error":
            logger.warning("executions feed sent an error frame: %r", data[:200])
        return None
    nested = bytes(envelope.data)
    raw = nested if nested and nested != b"null" else data
    try:
        body = _body.decode(raw)
    except msgspec.DecodeError as exc:
        raise FrameError(f"unreadable {envelope.type} frame: {exc}") from exc
    filled_at = body.filled_at or body.timestamp
    if filled_at is None:
        raise FrameError(f"{envelope.type} frame for order {body.order_id} has no time")
    return Fill(
        order_id=body.order_id,
        market_id=body.market_id,
        side=body.side,
        outcome=body.outcome,
        price=body.price,
        quantity=body.quantity,
        filled_at=filled_at,
    )


class Verdict(enum.Enum):
    """What to do with a fill offered to the tracker."""

    NEW = "new"
    LATE = "late"
    DUPLICATE = "duplicate"
    #: Unseen, but older than the remembered window: taken for a duplicate, with a warning.
    STALE = "stale"


class FillTracker:
    """The queued watermark plus the keys seen near it.

    Args:
        mark: the newest fill already handled (``None``: every fill is new).
        window: seconds of ``filled_at`` below the mark for which seen keys are
            kept; an unseen fill older than that is :attr:`Verdict.STALE`.
        max_keys: cap on the remembered keys.
    """

    def __init__(self, mark: Watermark | None, *, window: float, max_keys: int = 100_000) -> None:
        self.mark = mark
        self._window = timedelta(seconds=window)
        self._max_keys = max_keys
        self._seen: set[Watermark] = set()
        self._heap: list[Watermark] = []

    def verdict(self, key: Watermark) -> Verdict:
        """Classify ``key`` without recording it."""
        mark = self.mark
        if mark is None or key > mark:
            return Verdict.NEW
        if key in self._seen:
            return Verdict.DUPLICATE
        if key.filled_at < mark.filled_at - self._window:
            return Verdict.STALE
        return Verdict.LATE

    def remember(self, key: Watermark) -> None:
        """Record ``key`` as handled; the mark moves up to it if it is newer."""
        if key in self._seen:
            return
        self._seen.add(key)
        heapq.heappush(self._heap, key)
        if self.mark is None or key > self.mark:
            self.mark = key
        cutoff = self.mark.filled_at - self._window
        while self._heap and (self._heap[0].filled_at < cutoff or len(self._heap) > self._max_keys):
            self._seen.discard(heapq.heappop(self._heap))


def _fill(row: HistoryRow) -> Fill | None:
    if row.filled_at is None:
        logger.warning("history row for order %d has no filled_at; skipped", row.order_id)
        return None
    return Fill(
        order_id=row.order_id,
        market_id=row.market_id,
        side=row.side,
        outcome=row.outcome,
        price=row.price,
        quantity=row.quantity,
        filled_at=row.filled_at,
    )


async def _history(
    requester: Requester, offset: int, limit: int, scope: Mapping[str, str]
) -> HistoryPage:
    params = {"limit": str(limit), "offset": str(offset), "envelope": "true", **scope}
    return await requester.request(HistoryPage, "GET", "/v1/account/history", params=params)


async def fetch_head(
    requester: Requester, tracker: FillTracker, *, page_size: int, scope: Mapping[str, str]
) -> None:
    """Start the tracker at the newest fill REST shows now (used when no position is given).

    Every fill on the first page is remembered, so a live frame for one of
    them is recognised as having happened before the start.
    """
    page = await _history(requester, 0, page_size, scope)
    for row in page.data:
        fill = _fill(row)
        if fill is not None:
            tracker.remember(Watermark.of(fill))


async def fetch_since(
    requester: Requester, tracker: FillTracker, *, page_size: int, scope: Mapping[str, str]
) -> list[Fill]:
    """Read from REST every fill above the tracker's mark.

    Walks the history newest first, page by page, until a page reaches a fill
    older than the mark's ``filled_at`` (ties on ``filled_at`` are read in full,
    since their order within a page is not documented) or the history ends.
    Fills that land on top while walking shift rows to later offsets, so a row
    may be read twice but never skipped. Rows at or below the mark are
    remembered as seen; nothing is recorded for the new ones, the caller does
    that as it delivers them.

    Returns:
        The new fills, oldest first, without duplicates.

    Raises:
        Whatever the request path raises (APIStatusError, TransportError, DecodeError).
    """
    mark = tracker.mark
    found: dict[Watermark, Fill] = {}
    offset = 0
    while True:
        page = await _history(requester, offset, page_size, scope)
        reached = False
        for row in page.data:
            fill = _fill(row)
            if fill is None:
                continue
            key = Watermark.of(fill)
            if mark is not None and key <= mark:
                tracker.remember(key)
                reached = reached or fill.filled_at < mark.filled_at
            else:
                found[key] = fill
        if reached or len(page.data) < page_size or not page.next_cursor:
            break
        cursor = page.next_cursor
        following = int(cursor) if cursor.isdigit() else 0
        offset = following if following > offset else offset + len(page.data)
    return [found[key] for key in sorted(found)]
