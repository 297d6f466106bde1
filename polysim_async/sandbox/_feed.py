"""The keyset trade-feed index of one wallet (API.md §8.1).

Fills are appended in ascending ``(filled_at, order_id)`` order (the clock's
stamps are strictly increasing), each stored once as its pre-encoded JSON row.
A page is one bisect plus a slice of at most ``limit`` rows joined into bytes,
so its cost does not depend on how many fills the wallet holds. ``side`` and
``market_id`` filters use per-filter position lists that are bisected the same way.

The cursor is standard base64 of the compact JSON
``{"filled_at":"<ISO +00:00, microseconds>","order_id":<int>}`` naming the last
row returned; the next page holds the rows strictly older than that tuple. A
cursor is only a position in the sort order, so a cursor minted for another
account or other filters reveals nothing: it just selects this account's rows
older than that position. An undecodable cursor is ``422 VALIDATION_FAILED``.
"""

from __future__ import annotations

import base64
import binascii
import operator
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from itertools import compress, islice

import msgspec

from ._clock import format_iso, parse_iso

__all__ = ["FillIndex", "TradeRow", "decode_cursor", "encode_cursor"]


class TradeRow(msgspec.Struct, frozen=True):
    """A stored trade row read back with its decimals as the exact strings sent."""

    trade_id: int
    order_id: int
    market_id: str
    side: str
    outcome: str
    price: str
    quantity: str
    notional: str
    fee: str
    filled_at: str
    client_order_id: str | None = None
    realized_pnl: str | None = None


_row_decoder = msgspec.json.Decoder(TradeRow)
_cursor_decoder = msgspec.json.Decoder(dict[str, object])


def encode_cursor(filled_us: int, order_id: int) -> str:
    """Return the opaque cursor naming the row ``(filled_us, order_id)``."""
    raw = f'{{"filled_at":"{format_iso(filled_us)}","order_id":{order_id}}}'
    return base64.b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, int]:
    """Return the ``(filled_us, order_id)`` a cursor names.

    Raises:
        ValueError: the cursor is not one this feed could have minted.
    """
    try:
        raw = base64.b64decode(cursor.encode("ascii"), validate=True)
        data = _cursor_decoder.decode(raw)
    except (binascii.Error, UnicodeEncodeError, msgspec.DecodeError, ValueError) as exc:
        raise ValueError("cursor is not valid base64 JSON") from exc
    filled_at, order_id = data.get("filled_at"), data.get("order_id")
    if not isinstance(filled_at, str) or type(order_id) is not int:
        raise ValueError("cursor lacks filled_at or order_id")
    return parse_iso(filled_at), order_id


class FillIndex:
    """Append-only, bisectable store of one wallet's fills as pre-encoded rows."""

    __slots__ = ("_by_market", "_by_market_side", "_by_side", "_filled", "_oids", "_rows")

    def __init__(self) -> None:
        self._filled = array("q")
        self._oids = array("q")
        self._rows: list[bytes] = []
        self._by_side: dict[str, array[int]] = {"BUY": array("q"), "SELL": array("q")}
        self._by_market: dict[str, array[int]] = {}
        self._by_market_side: dict[tuple[str, str], array[int]] = {}

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def last_key(self) -> tuple[int, int] | None:
        """The newest ``(filled_us, order_id)``, or ``None`` when empty."""
        if not self._rows:
            return None
        return self._filled[-1], self._oids[-1]

    def append(self, filled_us: int, order_id: int, side: str, market_id: str, row: bytes) -> None:
        """Add one fill; its key must sort after every stored key.

        Raises:
            ValueError: the key would break the ascending order.
        """
        if self._rows and (filled_us, order_id) <= (self._filled[-1], self._oids[-1]):
            raise ValueError("fills must be appended in ascending (filled_at, order_id) order")
        pos = len(self._rows)
        self._filled.append(filled_us)
        self._oids.append(order_id)
        self._rows.append(row)
        self._by_side[side].append(pos)
        by_market = self._by_market.get(market_id)
        if by_market is None:
            by_market = self._by_market[market_id] = array("q")
        by_market.append(pos)
        pair = self._by_market_side.get((market_id, side))
        if pair is None:
            pair = self._by_market_side[(market_id, side)] = array("q")
        pair.append(pos)

    def extend(
        self,
        filled: array[int],
        oids: array[int],
        sides: list[str],
        market_id: str,
        rows: list[bytes],
    ) -> None:
        """Append many fills of one market at once (bulk generation).

        Raises:
            ValueError: the keys are not ascending or do not follow the stored ones.
        """
        if not rows:
            return
        if len(sides) != len(rows):
            raise ValueError("bulk fills need one side per row")
        if not all(map(operator.lt, filled, islice(filled, 1, None))):
            raise ValueError("bulk fills must have strictly increasing filled_at")
        last = self.last_key
        if last is not None and (filled[0], oids[0]) <= last:
            raise ValueError("bulk fills must follow the stored fills")
        base = len(self._rows)
        self._filled.extend(filled)
        self._oids.extend(oids)
        self._rows.extend(rows)
        positions = range(base, base + len(rows))
        market = self._by_market.setdefault(market_id, array("q"))
        market.extend(positions)
        for side in ("BUY", "SELL"):
            picked = array("q", compress(positions, map(side.__eq__, sides)))
            self._by_side[side].extend(picked)
            self._by_market_side.setdefault((market_id, side), array("q")).extend(picked)

    def _positions(self, side: str | None, market_id: str | None) -> array[int] | None:
        """The position list for a filter, ``None`` for "every row", empty when nothing matches."""
        if side is None and market_id is None:
            return None
        if market_id is None:
            return self._by_side.get(side or "", array("q"))
        if side is None:
            return self._by_market.get(market_id, array("q"))
        return self._by_market_side.get((market_id, side), array("q"))

    def _older_than(self, positions: array[int] | None, key: tuple[int, int] | None) -> int:
        """How many (filtered) rows sort strictly before ``key`` (all of them when ``None``)."""
        count = len(self._rows) if positions is None else len(positions)
        if key is None:
            return count
        filled_us, order_id = key
        if positions is None:
            j = bisect_left(self._filled, filled_us)
            while j < count and self._filled[j] == filled_us and self._oids[j] < order_id:
                j += 1
            return j
        filled = self._filled
        j = bisect_left(positions, filled_us, key=filled.__getitem__)
        while (
            j < count and filled[positions[j]] == filled_us and self._oids[positions[j]] < order_id
        ):
            j += 1
        return j

    def page(
        self,
        limit: int,
        *,
        before: tuple[int, int] | None = None,
        side: str | None = None,
        market_id: str | None = None,
    ) -> tuple[bytes, str | None]:
        """Return one newest-first page as ``(JSON array bytes, next_cursor)``.

        ``next_cursor`` is ``None`` when the page reaches the oldest matching row.
        """
        positions = self._positions(side, market_id)
        end = self._older_than(positions, before)
        start = max(0, end - limit)
        if positions is None:
            picked = self._rows[start:end]
            last = start
        else:
            idx = positions[start:end]
            rows = self._rows
            picked = [rows[i] for i in idx]
            last = idx[0] if idx else 0
        picked.reverse()
        body = b"[" + b",".join(picked) + b"]"
        if start == 0 or not picked:
            return body, None
        return body, encode_cursor(self._filled[last], self._oids[last])

    def newest(
        self, *, offset: int, limit: int, side: str | None = None, market_id: str | None = None
    ) -> list[tuple[int, TradeRow]]:
        """Rows by newest-first offset (history); each paired with its ``filled_us``."""
        positions = self._positions(side, market_id)
        count = len(self._rows) if positions is None else len(positions)
        end = max(0, count - offset)
        start = max(0, end - limit)
        out: list[tuple[int, TradeRow]] = []
        for k in range(end - 1, start - 1, -1):
            i = k if positions is None else positions[k]
            out.append((self._filled[i], _row_decoder.decode(self._rows[i])))
        return out

    def iter_newest(
        self, *, side: str | None = None, market_id: str | None = None
    ) -> Iterator[tuple[int, TradeRow]]:
        """Every matching row, newest first, decoded lazily."""
        positions = self._positions(side, market_id)
        count = len(self._rows) if positions is None else len(positions)
        for k in range(count - 1, -1, -1):
            i = k if positions is None else positions[k]
            yield self._filled[i], _row_decoder.decode(self._rows[i])
