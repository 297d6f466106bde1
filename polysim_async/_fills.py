"""Fill tracking for the executions stream: what was delivered, what is new, late or a duplicate.

Pure logic, no I/O (the socket and REST reads are :mod:`._stream`). The rules (see
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
from collections.abc import Iterable
from datetime import datetime, timedelta

from .models.streams import StreamCheckpoint, Watermark

__all__ = ["FillTracker", "Verdict"]


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
