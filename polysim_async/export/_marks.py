"""Which fills of a newest-first walk are new: the watermark logic, pure (no I/O).

The feed is ordered ``(filled_at DESC, order_id DESC)`` and new fills land at
its top (API.md §8.1), with one catch: a fill can arrive later with the *same*
``filled_at`` as the newest one exported but a lower ``order_id``. It then sorts
*below* that row, so "stop at the newest row exported" would skip it.

So a watermark is an instant plus the trade ids exported at exactly that
instant, and an incremental walk:

* keeps every row newer than the instant;
* keeps a row at the instant unless its trade id is in the watermark;
* stops at the first row strictly older than the instant.

When the walk finishes, the new watermark is the walk's first (newest) row's
instant, with the trade ids exported at it by this walk, plus the old ones if
the instant did not move. A walk that found an empty feed keeps the old mark.

What this does not cover, by the API's contract: a fill that appears *older*
than fills already in the feed (a backdated fill) is not picked up by an
incremental run.

A server that breaks its keyset pagination is caught where it is cheap: a walk
remembers its *floor* (the instant of the last row it read, and the trade ids
read at it, also across a resume). A row of a later page at the floor with one
of those ids is a repeat and is dropped; a row *above* the floor means the
pages are out of order, and the walk stops with :class:`PaginationError` (what
it read before stays exported). Rows within one page are taken as the server
ordered them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from .._errors import PaginationError
from ..models.partner import Trade
from ._manifest import Mark, Walk
from ._schema import iso_utc

__all__ = ["Tracker", "parse_instant", "select"]


def parse_instant(text: str) -> datetime:
    """Parse an instant the manifest stored (``2026-06-04T14:09:31.220148+00:00``)."""
    return datetime.fromisoformat(text)


def _instant(value: datetime) -> str:
    return iso_utc([value])[0]


def select(
    trades: Sequence[Trade], at: datetime | None, seen: frozenset[int]
) -> tuple[Sequence[Trade], bool]:
    """The rows of one newest-first page not yet exported, and whether the walk is over.

    Args:
        trades: one page, newest first.
        at: the watermark's instant (``None``: no watermark, every row is new).
        seen: trade ids exported at exactly ``at``.

    Returns:
        ``(rows to export, reached)``: ``reached`` is true once a row strictly
        older than ``at`` was met (the rows from it on are not returned).
    """
    if at is None or not trades or trades[-1].filled_at > at:
        return trades, False  # the whole page is newer (the common case: no per-row work)
    keep: list[Trade] = []
    for trade in trades:
        when = trade.filled_at
        if when < at:
            return keep, True
        if when == at and trade.trade_id in seen:
            continue
        keep.append(trade)
    return keep, False


class Tracker:
    """One account's walk: filters its pages and builds its next watermark.

    Args:
        mark: the account's watermark (``None``: export everything).
        walk: an unfinished walk to continue (``None``: start at the top).
    """

    __slots__ = ("_at", "_floor", "_floor_ids", "_mark", "_seen", "_top", "_top_ids", "repeated")

    def __init__(self, mark: Mark | None, walk: Walk | None) -> None:
        self._mark = mark
        self._at = None if mark is None else parse_instant(mark.filled_at)
        self._seen = frozenset(() if mark is None else mark.trade_ids)
        self._top = None if walk is None else parse_instant(walk.top)
        self._top_ids: list[int] = [] if walk is None else list(walk.top_ids)
        floor = None if walk is None else walk.floor
        self._floor = None if floor is None else parse_instant(floor)
        self._floor_ids: set[int] = set() if walk is None else set(walk.floor_ids)
        #: Rows dropped because an earlier page of this walk held them already.
        self.repeated = 0

    def page(self, trades: Sequence[Trade]) -> tuple[Sequence[Trade], bool]:
        """Filter the walk's next page; see :func:`select`.

        Raises:
            PaginationError: the page holds a row newer than the previous page's last.
        """
        trades = self._unseen(trades)
        if self._top is None and trades:
            self._top = trades[0].filled_at
        keep, reached = select(trades, self._at, self._seen)
        top = self._top
        if keep and keep[0].filled_at == top:
            for trade in keep:
                if trade.filled_at != top:
                    break
                self._top_ids.append(trade.trade_id)
        return keep, reached

    def _unseen(self, trades: Sequence[Trade]) -> Sequence[Trade]:
        """The page without the rows the walk read already, and the floor moved below it."""
        floor = self._floor
        if floor is not None and trades and trades[0].filled_at >= floor:
            fresh: list[Trade] = []
            for i, trade in enumerate(trades):
                when = trade.filled_at
                if when < floor:
                    fresh.extend(trades[i:])
                    break
                if when > floor:
                    raise PaginationError(
                        f"the server's pages are out of order: trade {trade.trade_id} "
                        f"({_instant(when)}) follows rows at {_instant(floor)}; stopping the walk"
                    )
                if trade.trade_id in self._floor_ids:
                    self.repeated += 1
                else:
                    fresh.append(trade)
            trades = fresh
        if trades:
            last = trades[-1].filled_at
            if last != floor:
                self._floor, self._floor_ids = last, set()
            for trade in reversed(trades):
                if trade.filled_at != last:
                    break
                self._floor_ids.add(trade.trade_id)
        return trades

    def walk(self, cursor: str) -> Walk:
        """The unfinished walk to record, continuing at ``cursor``."""
        assert self._top is not None, "a walk with a next page has seen a row"
        floor = self._floor
        return Walk(
            cursor=cursor,
            top=_instant(self._top),
            top_ids=list(self._top_ids),
            floor=None if floor is None else _instant(floor),
            floor_ids=sorted(self._floor_ids),
        )

    def finished(self) -> Mark | None:
        """The watermark once the walk is over."""
        if self._top is None:
            return self._mark
        ids = list(self._top_ids)
        if self._mark is not None and self._at == self._top:
            ids = sorted({*self._mark.trade_ids, *ids})
        return Mark(filled_at=_instant(self._top), trade_ids=ids)
