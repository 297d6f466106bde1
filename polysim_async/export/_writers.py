"""The three part formats: Parquet, CSV and NDJSON.

Each format does two things:

* ``convert(account_id, trades)`` turns one page of fills into the format's
  in-memory form (a record batch of plain columns, or encoded lines) as the page
  arrives, so the page's ``Trade`` objects are freed at once. A money string
  that is not a decimal number fails its account here (:class:`ExportValueError`).
* ``write(path, chunks, metadata)`` writes a whole part from its chunks. It blocks
  (the export calls it in a worker thread). Parquet's bulk work happens here,
  including the cast of money to ``decimal128``: a value that does not fit raises
  :class:`UnwritableRows` naming every such account, and the export writes the
  part without them.

Column work is done in bulk: fields are pulled out of a page's trades as whole
columns, timestamps are formatted by msgspec in C, money strings are cast by
pyarrow (Parquet) or checked a column at a time (CSV, NDJSON).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import msgspec

from .._errors import InvalidArgumentError
from .._extras import require
from ..models.common import Side
from ..models.partner import Trade
from ._errors import ExportValueError
from ._schema import (
    COLUMNS,
    MONEY_COLUMNS,
    MONEY_PRECISION,
    MONEY_SCALE,
    bad_decimal,
    column,
    iso_utc,
    parquet_schema,
    transpose,
)

__all__ = ["ExportFormat", "PartFormat", "UnwritableRows", "make_format"]

#: The file formats an export writes.
ExportFormat = Literal["parquet", "csv", "ndjson"]
C = TypeVar("C")


class PartFormat(Protocol[C]):
    """How one format converts pages and writes parts (see the module docstring)."""

    name: ExportFormat
    extension: str

    def convert(self, account_id: str, trades: Sequence[Trade]) -> C:
        """One page (one or more fills) of one account, converted.

        Raises:
            ExportValueError: a money string is not a decimal number (CSV, NDJSON;
                Parquet finds it when writing).
        """
        ...

    def write(self, path: Path, chunks: Sequence[C], metadata: dict[str, str]) -> None:
        """Write a complete part at ``path`` (blocking; the caller fsyncs and renames it).

        Raises:
            UnwritableRows: some accounts' rows cannot be written; what is at
                ``path`` is incomplete (the caller removes it).
        """
        ...


def _check_money(account_id: str, trades: Sequence[Trade], columns: list[tuple[Any, ...]]) -> None:
    for name in MONEY_COLUMNS:
        index = bad_decimal(column(columns, name))
        if index is not None:
            raise ExportValueError(
                account_id,
                trades[index].trade_id,
                name,
                column(columns, name)[index],
                "is not a decimal number",
            )


def _text_columns(account_id: str, columns: list[tuple[Any, ...]]) -> list[Sequence[Any]]:
    """Every column in ``COLUMNS`` order, timestamps as ISO text with ``+00:00``."""
    n = len(columns[0])
    out: list[Sequence[Any]] = [list(repeat(account_id, n))]
    for name in list(COLUMNS)[1:]:
        values = column(columns, name)
        out.append(iso_utc(values) if name == "filled_at" else values)
    return out


_NEEDS_QUOTES = re.compile(r'[,"\r\n]')
_SIDE_TEXT = {side: side.value for side in Side}


class CsvFormat:
    """CSV (RFC 4180: ``\\r\\n`` line ends), UTF-8, a header in every part, the exact
    wire strings. A null (``client_order_id``, ``realized_pnl``) is an empty field.

    ``\\r\\n`` rather than ``\\n``: the csv module quotes a field holding a bare
    ``\\r`` only when ``\\r`` is part of the line end, and an unquoted one would
    split the row for every reader.
    """

    name: ExportFormat = "csv"
    extension = "csv"
    header = (",".join(COLUMNS) + "\r\n").encode()

    def convert(self, account_id: str, trades: Sequence[Trade]) -> bytes:
        columns = transpose(trades)
        _check_money(account_id, trades, columns)
        coid = ["" if v is None else v for v in column(columns, "client_order_id")]
        texts = [account_id, *column(columns, "market_id"), *column(columns, "outcome"), *coid]
        if _NEEDS_QUOTES.search("".join(texts)):
            return self.convert_rows(account_id, columns)
        # Fast path: no field needs quoting (money, ids and timestamps never do), so
        # a row is one f-string, several times cheaper than the csv module.
        pnl = ["" if v is None else v for v in column(columns, "realized_pnl")]
        rows = zip(
            column(columns, "trade_id"),
            column(columns, "order_id"),
            column(columns, "market_id"),
            map(_SIDE_TEXT.__getitem__, column(columns, "side")),
            column(columns, "outcome"),
            column(columns, "price"),
            column(columns, "quantity"),
            column(columns, "notional"),
            column(columns, "fee"),
            iso_utc(column(columns, "filled_at")),
            coid,
            pnl,
            strict=True,
        )
        a = account_id
        return "".join(
            [
                f"{a},{t},{o},{m},{s},{oc},{p},{q},{n},{fe},{at},{c},{r}\r\n"
                for t, o, m, s, oc, p, q, n, fe, at, c, r in rows
            ]
        ).encode()

    def convert_rows(self, account_id: str, columns: list[tuple[Any, ...]]) -> bytes:
        """The same lines through the csv module, which quotes what needs quoting."""
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(
            zip(*_text_columns(account_id, columns), strict=True)
        )
        return buffer.getvalue().encode()

    def write(self, path: Path, chunks: Sequence[bytes], metadata: dict[str, str]) -> None:
        with open(path, "wb") as file:
            file.write(self.header)
            file.writelines(chunks)


class _JsonRow(msgspec.Struct):
    """One NDJSON line, for fills the fast path does not cover."""

    account_id: str
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
    client_order_id: str | None
    realized_pnl: str | None


_encoder = msgspec.json.Encoder()
# A UTC instant with microseconds as msgspec writes it, followed by the next key.
# Quotes inside JSON strings are escaped, so this byte sequence only occurs here.
_UTC_STAMP = re.compile(rb'Z(?<=\.\d{6}Z)(?=","client_order_id":)')
_ROW_START = b'{"trade_id":'


class NdjsonFormat:
    """NDJSON: one JSON object per fill and line, keys in ``COLUMNS`` order, the exact
    wire strings for money, ISO-8601 UTC timestamps with ``+00:00``."""

    name: ExportFormat = "ndjson"
    extension = "ndjson"

    def convert(self, account_id: str, trades: Sequence[Trade]) -> bytes:
        columns = transpose(trades)
        _check_money(account_id, trades, columns)
        # Fast path: msgspec encodes the trades in C with their wire keys; the
        # account id goes in front and "Z" becomes "+00:00", each in one pass.
        lines, converted = _UTC_STAMP.subn(b"+00:00", _encoder.encode_lines(trades))
        if converted == len(trades):
            start = b'{"account_id":' + _encoder.encode(account_id) + b',"trade_id":'
            return lines.replace(_ROW_START, start)
        return self.convert_rows(account_id, columns)

    def convert_rows(self, account_id: str, columns: list[tuple[Any, ...]]) -> bytes:
        """The same lines, one row object at a time (another offset, no microseconds)."""
        rows = [_JsonRow(*row) for row in zip(*_text_columns(account_id, columns), strict=True)]
        return _encoder.encode_lines(rows)

    def write(self, path: Path, chunks: Sequence[bytes], metadata: dict[str, str]) -> None:
        with open(path, "wb") as file:
            file.writelines(chunks)


#: Rows per Parquet row group: also what a part's conversion holds at once beyond its pages.
ROW_GROUP_ROWS = 32_768


def _row_groups(chunks: Sequence[tuple[str, Any]], rows: int) -> Iterator[list[tuple[str, Any]]]:
    """Consecutive runs of pages holding about ``rows`` rows each (whole pages)."""
    group: list[tuple[str, Any]] = []
    count = 0
    for chunk in chunks:
        group.append(chunk)
        count += chunk[1].num_rows
        if count >= rows:
            yield group
            group, count = [], 0
    if group:
        yield group


class UnwritableRows(Exception):
    """Raised by a part write: these accounts' rows hold values that cannot be written.

    The export drops those accounts' rows from the part, fails the accounts, and
    writes the rest.
    """

    def __init__(self, errors: dict[str, ExportValueError]) -> None:
        super().__init__(f"{len(errors)} account(s) hold unwritable values")
        self.errors = errors


class ParquetFormat:
    """Parquet (zstd), one row group per part, the schema of :func:`parquet_schema`,
    the export's parameters under the ``polysim.export`` key of the file metadata.

    A page becomes a record batch of plain strings and integers (the only part
    that needs Python objects, so the only part on the event loop). The bulk
    work of a part (money cast to decimal128, timestamps parsed, labels
    dictionary-encoded, Parquet encoding) is Arrow C++ code that releases the GIL,
    run in the writing thread.
    """

    name: ExportFormat = "parquet"
    extension = "parquet"

    def __init__(self) -> None:
        pa = self._pa = require("pyarrow", "parquet", feature="Parquet export")
        self._pq = require("pyarrow.parquet", "parquet", feature="Parquet export")
        self._pc = require("pyarrow.compute", "parquet", feature="Parquet export")
        self.schema = parquet_schema()
        self._money = pa.decimal128(MONEY_PRECISION, MONEY_SCALE)
        # A page as converted on the loop: integers as int64, everything else as the text.
        self._raw = pa.schema(
            [
                (name, pa.int64() if name in ("trade_id", "order_id") else pa.string())
                for name in COLUMNS
                if name != "account_id"
            ]
        )
        self._names = self._raw.names
        # malloc/free rather than Arrow's default pool (mimalloc), which keeps tens
        # of MB of a part's short-lived buffers resident; see benchmarks/export.py.
        self._pool = pa.system_memory_pool()

    def convert(self, account_id: str, trades: Sequence[Trade]) -> tuple[str, Any]:
        pa = self._pa
        columns = transpose(trades)
        arrays = []
        for name, type_ in zip(self._names, self._raw.types, strict=True):
            values = column(columns, name)
            if name == "filled_at":
                values = msgspec.to_builtins(values)  # ISO text, formatted in C
            arrays.append(pa.array(values, type_, memory_pool=self._pool))
        return account_id, pa.RecordBatch.from_arrays(arrays, schema=self._raw)

    def write(
        self, path: Path, chunks: Sequence[tuple[str, Any]], metadata: dict[str, str]
    ) -> None:
        """Build the typed rows from the part's pages and write them, a row group at a time.

        Converting and writing one row group (about ``ROW_GROUP_ROWS`` rows) at a
        time bounds the memory a part needs beyond its pages.

        Raises:
            UnwritableRows: money that does not fit ``decimal128(38, 18)`` exactly;
                every such account is named.
        """
        schema = self.schema.with_metadata({**(self.schema.metadata or {}), **metadata})
        errors: dict[str, ExportValueError] = {}
        with self._pq.ParquetWriter(
            str(path), schema, compression="zstd", memory_pool=self._pool
        ) as writer:
            for group in _row_groups(chunks, ROW_GROUP_ROWS):
                table = self._typed(group, schema, errors)
                if not errors:
                    writer.write_table(table)
        if errors:
            raise UnwritableRows(errors)

    def _typed(
        self, chunks: Sequence[tuple[str, Any]], schema: Any, errors: dict[str, ExportValueError]
    ) -> Any:
        """The typed table of some pages; unwritable money goes to ``errors`` instead."""
        pa, pool = self._pa, self._pool
        raw = pa.Table.from_batches([batch for _, batch in chunks], schema=self._raw)
        raw = raw.combine_chunks(memory_pool=pool)
        accounts = pa.concat_arrays(
            [
                pa.repeat(pa.scalar(aid, pa.string()), batch.num_rows, memory_pool=pool)
                for aid, batch in chunks
            ],
            memory_pool=pool,
        )
        arrays = [accounts]
        for name, field in zip(self._names, self.schema.types[1:], strict=True):
            values = raw.column(name)
            if name in MONEY_COLUMNS:
                try:
                    # Arrow's cast raises on anything it would have to round or
                    # truncate (tests/export/test_export.py holds it to that).
                    values = self._pc.cast(values, self._money, memory_pool=pool)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    errors.update(self._unwritable(chunks, name, errors))
            elif name == "filled_at":
                values = self._pc.cast(values, field, memory_pool=pool)
            elif pa.types.is_dictionary(field):
                values = self._pc.dictionary_encode(values, memory_pool=pool)
            arrays.append(values)
        return None if errors else pa.Table.from_arrays(arrays, schema=schema)

    def _unwritable(
        self, chunks: Sequence[tuple[str, Any]], name: str, known: dict[str, ExportValueError]
    ) -> dict[str, ExportValueError]:
        """The first value of ``name`` that does not cast, for each account that has one."""
        pa = self._pa
        found: dict[str, ExportValueError] = {}
        for aid, batch in chunks:
            if aid in known or aid in found:
                continue
            values = batch.column(name)
            try:
                values.cast(self._money)
                continue
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
            for index, value in enumerate(values.to_pylist()):
                try:
                    pa.array([value], pa.string()).cast(self._money)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    reason = (
                        f"cannot be stored exactly as decimal128({MONEY_PRECISION}, "
                        f"{MONEY_SCALE}) ({exc})"
                    )
                    trade_id = batch.column("trade_id")[index].as_py()
                    found[aid] = ExportValueError(aid, trade_id, name, value, reason)
                    break
        return found


def make_format(name: str) -> CsvFormat | NdjsonFormat | ParquetFormat:
    """The format called ``name``.

    Raises:
        InvalidArgumentError: an unknown format.
        MissingDependencyError: ``"parquet"`` without pyarrow installed.
    """
    if name == "parquet":
        return ParquetFormat()
    if name == "csv":
        return CsvFormat()
    if name == "ndjson":
        return NdjsonFormat()
    raise InvalidArgumentError(f"format must be 'parquet', 'csv' or 'ndjson', got {name!r}")
