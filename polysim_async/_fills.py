"""The executions stream minus its socket: settings, counters, frames, dedupe, REST heals.

Nothing here touches a socket (that is :mod:`._stream`). The rules (see
:mod:`polysim_async.models.streams`):

* A fill is identified by ``(order_id, filled_at)`` and ordered by
  ``(filled_at, order_id)``; :class:`Watermark` is that key.
* The tracker's ``floor`` is where the stream started (a saved position, or the
  newest fill when it started): nothing at or below it is delivered. Its
  ``mark`` is the newest fill already queued for the consumer: a fill above it
  is new. A fill between the two is a duplicate if it was queued (keys are
  remembered down to the oldest fill a heal re-reads); otherwise it is *late*
  (e.g. it never reached the socket and newer fills did) and is still
  delivered, out of order, with a warning: a fill is never dropped silently.
* REST (``GET /v1/account/history``, newest ``filled_at`` first) is the source of
  truth: after every reconnect, and periodically while connected, a heal
  re-reads it from the newest fill the previous heal saw (less a small
  ``lookback`` for fills that become visible out of order) upward.
"""

from __future__ import annotations

import enum
import heapq
import logging
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from ._config import check_positive
from ._errors import APIStatusError, InvalidArgumentError, UsageError
from ._requester import Requester
from ._retry import backoff
from .models.account import HistoryPage, HistoryRow
from .models.common import Money, Side, UTCDateTime
from .models.executions import Fill
from .models.streams import StreamCheckpoint, Watermark

__all__ = [
    "FillTracker",
    "FrameError",
    "StreamPolicy",
    "StreamStats",
    "Verdict",
    "decode_frame",
    "fetch_head",
    "fetch_recent",
    "is_permanent",
]

logger = logging.getLogger("polysim_async")

#: Largest page ``GET /v1/account/history`` serves (API.md §4.3).
HISTORY_PAGE_MAX = 200
_TRANSIENT_4XX = frozenset({408, 425, 429})


def is_permanent(exc: BaseException) -> bool:
    """Whether a long-running loop (stream, watch) should end on ``exc`` rather than retry.

    Misuse and 4xx answers other than 408/425/429 (bad key, missing scope,
    unknown id) are permanent; 429, 5xx, transport and decode errors are not.
    """
    if isinstance(exc, UsageError):
        return True
    return (
        isinstance(exc, APIStatusError)
        and 400 <= exc.status < 500
        and exc.status not in _TRANSIENT_4XX
    )


@dataclass(frozen=True)
class StreamPolicy:
    """How the executions stream reconnects, keeps its socket alive and checks REST.

    Attributes:
        backoff_base: first wait after a drop, in seconds; doubles per
            consecutive failure, each wait shortened at random by up to half.
        backoff_max: ceiling of one wait.
        stable_after: a connection that stayed up this long resets the backoff.
        max_failures: consecutive failed connections (without a stable one in
            between) after which the stream ends with :class:`StreamClosedError`;
            ``None`` retries forever.
        ping_interval: idle seconds before a JSON ping is sent.
        ping_timeout: seconds to wait for any frame after a ping before the
            socket is taken for dead and replaced.
        open_timeout: seconds allowed for the WebSocket handshake.
        reconcile_interval: seconds between REST checks while connected, which
            catch fills that never reached the socket; ``None`` checks only after
            reconnects.
        lookback: seconds of fill time below the newest fill REST showed at the
            previous check that the next check re-reads, to catch fills that
            became visible in REST after newer ones.
    """

    backoff_base: float = 0.5
    backoff_max: float = 30.0
    stable_after: float = 10.0
    max_failures: int | None = None
    ping_interval: float = 20.0
    ping_timeout: float = 10.0
    open_timeout: float = 10.0
    reconcile_interval: float | None = 30.0
    lookback: float = 10.0

    def __post_init__(self) -> None:
        positive = ["stable_after", "ping_interval", "ping_timeout", "open_timeout"]
        if self.reconcile_interval is not None:
            positive.append("reconcile_interval")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise InvalidArgumentError(f"StreamPolicy.{name} must be > 0, got {value!r}")
        check_positive("backoff_base", self.backoff_base, allow_none=False)
        check_positive("backoff_max", self.backoff_max, allow_none=False)
        if isinstance(self.lookback, bool) or not isinstance(self.lookback, (int, float)):
            raise InvalidArgumentError("StreamPolicy.lookback must be a number of seconds")
        if self.lookback < 0:
            raise InvalidArgumentError("StreamPolicy.lookback must be >= 0")
        failures = self.max_failures
        if failures is not None and (
            isinstance(failures, bool) or not isinstance(failures, int) or failures < 0
        ):
            raise InvalidArgumentError("StreamPolicy.max_failures must be an int >= 0 or None")

    def backoff(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after ``failures`` consecutive failures (>= 1), with equal jitter."""
        return backoff(self.backoff_base, self.backoff_max, max(0, failures - 1), rng)


@dataclass
class StreamStats:
    """Counters of one stream, for applications and tests to read.

    Attributes:
        connects: sockets opened.
        token_mints: tokens minted.
        token_rejections: closes 4001 and handshakes refused with 401/403.
        live: fills queued from live frames.
        recovered: fills queued from the REST backfill.
        duplicates: frames or rows dropped because their fill was already queued.
        late: fills queued out of order because they became visible late.
        stale: unseen fills older than the remembered keys, dropped with a warning.
        unreadable: frames that could not be read (each triggers a REST check).
        reconciles: REST checks made while connected.
    """

    connects: int = 0
    token_mints: int = 0
    token_rejections: int = 0
    live: int = 0
    recovered: int = 0
    duplicates: int = 0
    late: int = 0
    stale: int = 0
    unreadable: int = 0
    reconciles: int = 0


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
    #: Unseen, but older than the remembered keys: taken for a duplicate, with a warning.
    STALE = "stale"


class FillTracker:
    """Where the stream started, what it queued, what REST showed, and the keys in between.

    Args:
        floor: where the stream started; fills at or below it are never delivered.
        window: seconds of ``filled_at`` below the REST high-water mark that a heal
            re-reads, for fills that became visible in REST after newer ones.

    Attributes:
        mark: the newest fill queued for the consumer.
        checked: the newest fill REST showed at the last heal (the floor at first).
        keep_from: keys of fills from here on are remembered: the bound the last
            heal re-read from, so a live frame still buffered for a fill that heal
            delivered is recognised. Keys are forgotten only below it, never by
            count: a key the next heal re-reads must still be known, or its fill
            would be delivered twice (so memory holds the fills of one REST check
            interval plus the lookback window).
    """

    def __init__(self, floor: Watermark, *, window: float) -> None:
        self.floor = floor
        self.mark = floor
        self.checked = floor
        self.keep_from = floor.filled_at
        self.window = timedelta(seconds=window)
        self._seen: set[Watermark] = set()
        self._heap: list[Watermark] = []
        # After a resume from a checkpoint: the next heal re-reads from here.
        self._resume_from: datetime | None = None

    @classmethod
    def restore(cls, checkpoint: StreamCheckpoint, *, window: float) -> FillTracker:
        """A tracker that knows exactly what ``checkpoint`` says was handed over."""
        tracker = cls(checkpoint.floor, window=window)
        tracker.keep_from = max(checkpoint.floor.filled_at, checkpoint.complete_before)
        tracker._resume_from = tracker.keep_from
        for key in checkpoint.delivered:
            tracker.remember(key)
        return tracker

    def snapshot(self, pending: Iterable[Watermark] = ()) -> StreamCheckpoint:
        """What was handed over, leaving out ``pending`` (queued, not yet consumed)."""
        waiting = set(pending)
        complete_before = min([self.keep_from, *(k.filled_at for k in waiting)])
        delivered = sorted(
            k for k in self._seen if k not in waiting and k.filled_at >= complete_before
        )
        return StreamCheckpoint(
            floor=self.floor, complete_before=complete_before, delivered=tuple(delivered)
        )

    def lower_bound(self) -> datetime:
        """Oldest ``filled_at`` the next heal re-reads."""
        if self._resume_from is not None:
            return max(self.floor.filled_at, self._resume_from)
        return max(self.floor.filled_at, self.checked.filled_at - self.window)

    def verdict(self, key: Watermark) -> Verdict:
        """Classify ``key`` without recording it."""
        if key > self.mark:
            return Verdict.NEW
        if key <= self.floor or key in self._seen:
            return Verdict.DUPLICATE
        if key.filled_at < self.keep_from:
            return Verdict.STALE
        return Verdict.LATE

    def remember(self, key: Watermark) -> None:
        """Record ``key`` as queued; the mark moves up to it if it is newer."""
        if key in self._seen:
            return
        self._seen.add(key)
        heapq.heappush(self._heap, key)
        if key > self.mark:
            self.mark = key

    def checked_up_to(self, key: Watermark) -> None:
        """Record that a heal read REST up to ``key`` (its newest fill)."""
        if key > self.checked or self._resume_from is not None:
            self.keep_from = self.lower_bound()
            self.checked = max(self.checked, key)
            self._resume_from = None
            self._prune()

    def _prune(self) -> None:
        cutoff = self.keep_from
        heap = self._heap
        while heap and heap[0].filled_at < cutoff:
            self._seen.discard(heapq.heappop(heap))


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


async def fetch_head(requester: Requester, *, scope: Mapping[str, str]) -> Watermark | None:
    """Return the newest fill REST shows now, or ``None`` when there is none.

    Raises:
        Whatever the request path raises (APIStatusError, TransportError, DecodeError).
    """
    page = await _history(requester, 0, 1, scope)
    fills = [fill for fill in map(_fill, page.data) if fill is not None]
    return Watermark.of(fills[0]) if fills else None


async def fetch_recent(
    requester: Requester, lower: datetime, *, page_size: int, scope: Mapping[str, str]
) -> list[Fill]:
    """Read from REST every fill with ``filled_at`` at or after ``lower``.

    Walks the history newest first, page by page, until a page reaches an
    older fill or the history ends. Fills that land on top while walking shift
    rows to later offsets, so a row may be read twice but never skipped.

    Returns:
        The fills, oldest first by ``(filled_at, order_id)``, without duplicates.

    Raises:
        Whatever the request path raises (APIStatusError, TransportError, DecodeError).
    """
    found: dict[Watermark, Fill] = {}
    offset = 0
    while True:
        page = await _history(requester, offset, page_size, scope)
        reached = False
        for row in page.data:
            fill = _fill(row)
            if fill is None:
                continue
            if fill.filled_at < lower:
                reached = True
            else:
                found[Watermark.of(fill)] = fill
        if reached or len(page.data) < page_size or not page.next_cursor:
            break
        cursor = page.next_cursor
        following = int(cursor) if cursor.isdigit() else 0
        offset = following if following > offset else offset + len(page.data)
    return [found[key] for key in sorted(found)]
