"""The export's row: its columns, their Parquet types, and pulling columns out of trades.

One row per fill: ``account_id`` plus every field of the trade feed, named as on
the wire (API.md §3, P6). Money is exact everywhere: the wire strings in CSV and
NDJSON, ``decimal128(MONEY_PRECISION, MONEY_SCALE)`` in Parquet.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import msgspec

from ..models.partner import Trade

__all__ = [
    "COLUMNS",
    "MONEY_COLUMNS",
    "MONEY_PRECISION",
    "MONEY_SCALE",
    "SCHEMA_VERSION",
    "bad_decimal",
    "column",
    "describe",
    "iso_utc",
    "parquet_schema",
    "transpose",
]

#: Total decimal digits of the Parquet money columns (the most ``decimal128`` holds).
MONEY_PRECISION = 38
#: Digits after the point: 20 before it, 18 after; values needing more raise, never round.
MONEY_SCALE = 18
#: Bumped when the columns or their types change; written in every part's metadata.
SCHEMA_VERSION = 1

#: Column name → what it holds (also written as Parquet field metadata).
COLUMNS: dict[str, str] = {
    "account_id": "the partner account the fill belongs to",
    "trade_id": "the fill's id",
    "order_id": "the order that filled",
    "market_id": "market (condition id)",
    "side": "BUY or SELL",
    "outcome": "the outcome traded (Yes, No, or a named outcome)",
    "price": "fill price, exact",
    "quantity": "filled shares, exact",
    "notional": "price * quantity in USD as the server rounded it, exact",
    "fee": "fee charged in USD, exact",
    "filled_at": "when the fill happened (UTC, microseconds)",
    "client_order_id": "the trader's own order id, or null",
    "realized_pnl": "realized P&L of a closing fill in USD, exact, or null",
}
MONEY_COLUMNS = ("price", "quantity", "notional", "fee", "realized_pnl")
_DICTIONARY = ("market_id", "side", "outcome")

# Wire name → the Trade attribute holding it (money keeps the exact strings in raw_*).
_FIELDS = [name for name in COLUMNS if name != "account_id"]
_ATTRIBUTE = {name: f"raw_{name}" if name in MONEY_COLUMNS else name for name in _FIELDS}
_INDEX = {name: Trade.__struct_fields__.index(attr) for name, attr in _ATTRIBUTE.items()}


def transpose(trades: Sequence[Trade]) -> list[tuple[Any, ...]]:
    """The trades' fields as columns, in ``Trade`` field order (C-level, no per-value code)."""
    return list(zip(*map(msgspec.structs.astuple, trades), strict=True))


def column(columns: Sequence[tuple[Any, ...]], name: str) -> tuple[Any, ...]:
    """The column of wire field ``name`` from :func:`transpose`'s result."""
    return columns[_INDEX[name]]


_UTC = timezone.utc


def iso_utc(stamps: Sequence[datetime]) -> list[str]:
    """Format instants as ``2026-06-04T14:09:31.220148+00:00`` (UTC, always microseconds).

    msgspec formats the whole column in C (``...220148Z`` for UTC); only instants
    with another offset or no microseconds take the slow path.
    """
    texts: list[str] = msgspec.to_builtins(stamps)
    return [
        text[:-1] + "+00:00"
        if len(text) == 27 and text[26] == "Z"
        else stamp.astimezone(_UTC).isoformat(timespec="microseconds")
        for text, stamp in zip(texts, stamps, strict=True)
    ]


# What a decimal number may be made of; float() then checks the structure, in C.
_NUMBER_CHARS = re.compile(r"[-+0-9.eE]+")
_COLUMN_CHARS = re.compile(r"[-+0-9.eE\n]*")


def _is_decimal(value: str) -> bool:
    if not _NUMBER_CHARS.fullmatch(value):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def bad_decimal(values: Sequence[str | None]) -> int | None:
    """Index of the first value that is not a finite decimal number (``None`` is fine).

    A decimal number is what ``Decimal`` parses, in ASCII, minus NaN,
    infinities, spaces and underscores: ``-12.50``, ``+1``, ``.5``, ``1e-3``.
    In the common case (all good) no Python code runs per value: one regular
    expression checks the characters of the whole column, and ``float`` (the
    values are discarded) checks each one's structure.

    Returns:
        ``None`` when every value is ``None`` or a decimal number.
    """
    texts = [v for v in values if v is not None]
    if _COLUMN_CHARS.fullmatch("\n".join(texts)):
        try:
            deque(map(float, texts), maxlen=0)
            return None
        except ValueError:
            pass
    for index, value in enumerate(values):
        if value is not None and not _is_decimal(value):
            return index
    return None  # pragma: no cover - both checks agree


def describe() -> list[dict[str, str]]:
    """The columns and their types in words, for file metadata and the manifest."""
    money = f"decimal128({MONEY_PRECISION}, {MONEY_SCALE})"
    types = {
        "account_id": "string",
        "trade_id": "int64",
        "order_id": "int64",
        "filled_at": "timestamp[us, tz=UTC]",
        "client_order_id": "string",
        **dict.fromkeys(_DICTIONARY, "dictionary<int32, string>"),
        **dict.fromkeys(MONEY_COLUMNS, money),
    }
    return [{"name": name, "type": types[name], "description": d} for name, d in COLUMNS.items()]


def parquet_schema() -> Any:
    """The Parquet files' Arrow schema (a ``pyarrow.Schema``).

    Raises:
        MissingDependencyError: pyarrow is not installed (the ``parquet`` extra).
    """
    from .._extras import require

    pa = require("pyarrow", "parquet", feature="Parquet export")
    money = pa.decimal128(MONEY_PRECISION, MONEY_SCALE)
    label = pa.dictionary(pa.int32(), pa.string())
    types = {
        "account_id": pa.string(),
        "trade_id": pa.int64(),
        "order_id": pa.int64(),
        "filled_at": pa.timestamp("us", tz="UTC"),
        "client_order_id": pa.string(),
        **dict.fromkeys(_DICTIONARY, label),
        **dict.fromkeys(MONEY_COLUMNS, money),
    }
    nullable = {"client_order_id", "realized_pnl"}
    return pa.schema(
        [
            pa.field(name, types[name], nullable=name in nullable, metadata={"description": text})
            for name, text in COLUMNS.items()
        ]
    )
