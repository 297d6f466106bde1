"""The three formats on hand-made trades: exact values, awkward strings, unwritable money."""

from __future__ import annotations

import csv
import functools
import json
import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import polysim_async as ps
from polysim_async.export import COLUMNS, MONEY_PRECISION, MONEY_SCALE, parquet_schema
from polysim_async.export._files import write_atomic
from polysim_async.export._schema import bad_decimal, describe, iso_utc
from polysim_async.export._writers import (
    CsvFormat,
    NdjsonFormat,
    ParquetFormat,
    UnwritableRows,
    make_format,
)

from ._fleet import wire_row

UTC = timezone.utc
T = datetime(2026, 6, 4, 14, 9, 31, 220148, tzinfo=UTC)


def trade(trade_id: int, **fields: Any) -> ps.Trade:
    wire = {
        "trade_id": trade_id,
        "order_id": 1000 + trade_id,
        "market_id": "0xabc",
        "side": "SELL",
        "outcome": "Yes",
        "price": "0.4100",
        "quantity": "10.0000",
        "notional": "4.10",
        "fee": "0.00",
        "filled_at": T.isoformat(),
        "client_order_id": None,
        "realized_pnl": None,
        **fields,
    }
    return msgspec.json.decode(msgspec.json.encode(wire), type=ps.Trade)


AWKWARD = [
    trade(1, client_order_id='a,b "quoted"\nnext line\rand a bare CR', outcome="Team, Inc."),
    trade(2, client_order_id='Z","client_order_id":{"trade_id":1}', realized_pnl="-12.34"),
    trade(3, filled_at="2026-06-04T16:09:31.5+02:00", price="0.0001"),  # another offset
    trade(4, filled_at="2026-06-04T14:09:31+00:00", quantity="123456789.1234"),  # no micros
    trade(5, outcome="Ja ✓ ünïcode", realized_pnl="99999999999999999999.999999999999999999"),
    trade(6, fee="0.000000000000000001", notional="-0.00"),
]


def test_ndjson_lines_are_the_wire_row_with_the_account_in_front(tmp_path: Path) -> None:
    fmt = NdjsonFormat()
    path = tmp_path / "part.ndjson"
    fmt.write(path, [fmt.convert("acc-1", AWKWARD[:3]), fmt.convert("acc-2", AWKWARD[3:])], {})
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert [list(row) for row in rows] == [list(COLUMNS)] * 6
    accounts = ["acc-1"] * 3 + ["acc-2"] * 3
    assert rows == [wire_row(a, t) for a, t in zip(accounts, AWKWARD, strict=True)]
    assert rows[2]["filled_at"] == "2026-06-04T14:09:31.500000+00:00"
    assert rows[3]["filled_at"] == "2026-06-04T14:09:31.000000+00:00"


def test_ndjson_fast_path_writes_the_same_bytes_as_the_row_by_row_path() -> None:
    from polysim_async.export._schema import transpose

    fmt = NdjsonFormat()
    utc_with_micros = [t for t in AWKWARD if t.trade_id not in (3, 4)]
    fast = fmt.convert("acc-1", utc_with_micros)
    assert fast == fmt.convert_rows("acc-1", transpose(utc_with_micros))


awkward_text = st.text(alphabet=st.sampled_from(list("ab ,\"\r\n'é✓;\t")), max_size=6)


@given(
    st.lists(
        st.tuples(awkward_text, st.none() | awkward_text, st.sampled_from("BS")),
        min_size=1,
        max_size=5,
    )
)
def test_csv_fast_path_writes_what_the_csv_module_writes(
    rows: list[tuple[str, str | None, str]],
) -> None:
    from polysim_async.export._schema import transpose

    trades = [
        trade(i, outcome=o, client_order_id=c, side="BUY" if s == "B" else "SELL")
        for i, (o, c, s) in enumerate(rows)
    ]
    fmt = CsvFormat()
    assert fmt.convert("acc-1", trades) == fmt.convert_rows("acc-1", transpose(trades))


def test_csv_reads_back_as_the_exact_wire_strings(tmp_path: Path) -> None:
    fmt = CsvFormat()
    path = tmp_path / "part.csv"
    fmt.write(path, [fmt.convert("acc-1", AWKWARD), fmt.convert("acc-2", [trade(7)])], {})
    assert path.read_bytes().startswith(b"account_id,trade_id,")
    assert path.read_bytes().endswith(b"\r\n")  # RFC 4180 line ends
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(AWKWARD) + 1
    assert rows.pop()["account_id"] == "acc-2"
    assert list(rows[0]) == list(COLUMNS)
    for row, t in zip(rows, AWKWARD, strict=True):
        expected = wire_row("acc-1", t)
        # CSV has no null: a null is an empty field.
        expected = {k: "" if v is None else str(v) for k, v in expected.items()}
        assert row == expected


def test_parquet_holds_exact_decimals_and_utc_instants(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    fmt = ParquetFormat()
    path = tmp_path / "part.parquet"
    meta = {"polysim.export": '{"part": "x"}'}
    fmt.write(path, [fmt.convert("acc-1", AWKWARD[:4]), fmt.convert("acc-2", AWKWARD[4:])], meta)
    table = pq.read_table(path)
    assert table.schema.equals(parquet_schema(), check_metadata=False)
    assert table.schema.metadata[b"polysim.export"] == b'{"part": "x"}'
    for row, t in zip(table.to_pylist(), AWKWARD, strict=True):
        assert row["account_id"] == ("acc-1" if t.trade_id <= 4 else "acc-2")
        for name in ("price", "quantity", "notional", "fee"):
            assert row[name] == Decimal(getattr(t, "raw_" + name))
        assert row["realized_pnl"] == t.realized_pnl
        assert row["filled_at"] == t.filled_at
        assert row["filled_at"].utcoffset() == timedelta(0)
        assert row["side"] == t.side.value and row["client_order_id"] == t.client_order_id
    assert table.column("price").type.precision == MONEY_PRECISION == 38
    assert table.column("price").type.scale == MONEY_SCALE == 18


def test_parquet_names_every_account_whose_money_does_not_fit(tmp_path: Path) -> None:
    fmt = ParquetFormat()
    chunks = [
        fmt.convert("ok", [trade(1)]),
        fmt.convert("big", [trade(2), trade(3, quantity="123456789012345678901")]),
        fmt.convert("fine", [trade(4, fee="1.000000000000000000000")]),  # trailing zeros fit
        fmt.convert("long", [trade(5, realized_pnl="1.0000000000000000001"), trade(6)]),
    ]
    final, tmp = tmp_path / "part.parquet", tmp_path / ".part.parquet.tmp"
    with pytest.raises(UnwritableRows) as info:
        write_atomic(final, tmp, functools.partial(fmt.write, chunks=chunks, metadata={}))
    errors = info.value.errors
    assert set(errors) == {"big", "long"}
    assert (errors["big"].trade_id, errors["big"].field) == (3, "quantity")
    assert (errors["long"].trade_id, errors["long"].field) == (5, "realized_pnl")
    assert errors["long"].value == "1.0000000000000000001"
    assert "does not fit" in str(errors["big"]) or "precision" in str(errors["big"])
    assert os.listdir(tmp_path) == []  # nothing published, the temporary file removed
    fmt.write(final, [chunks[0], chunks[2]], {})  # the rest is writable


@pytest.mark.parametrize("fmt", [CsvFormat(), NdjsonFormat()])
@pytest.mark.parametrize("bad", ["", "1.2.3", "NaN", "Infinity", " 1", "1_000", "0x10", "--1"])
def test_text_formats_refuse_money_that_is_not_a_decimal_number(fmt: Any, bad: str) -> None:
    with pytest.raises(ps.ExportValueError) as info:
        fmt.convert("acc-9", [trade(1), trade(2, notional=bad)])
    assert (info.value.account_id, info.value.trade_id, info.value.field) == (
        "acc-9",
        2,
        "notional",
    )


def test_make_format_knows_three_formats() -> None:
    assert [make_format(n).extension for n in ("parquet", "csv", "ndjson")] == [
        "parquet",
        "csv",
        "ndjson",
    ]
    with pytest.raises(ps.InvalidArgumentError, match="format must be"):
        make_format("xml")


# -- pure helpers -------------------------------------------------------------------------


def reference_is_decimal(value: str) -> bool:
    """A decimal number as Decimal reads it, in ASCII, minus NaN/infinities, spaces and
    underscores."""
    from decimal import InvalidOperation

    if not value.isascii() or value != value.strip() or "_" in value:
        return False
    try:
        return Decimal(value).is_finite()
    except InvalidOperation:
        return False


number_text = st.from_regex(
    r"[+-]?([0-9]{1,25}(\.[0-9]{0,25})?|\.[0-9]{1,25})([eE][+-]?[0-9]{1,3})?", fullmatch=True
)


@given(st.lists(st.none() | number_text | st.text(max_size=6), max_size=8))
def test_bad_decimal_agrees_with_decimal(values: list[str | None]) -> None:
    expected = next(
        (i for i, v in enumerate(values) if v is not None and not reference_is_decimal(v)), None
    )
    assert bad_decimal(values) == expected


@given(st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7, minutes=-30))])))
def test_iso_utc_always_has_micros_and_plus_zero(value: datetime) -> None:
    (text,) = iso_utc([value])
    assert text == value.astimezone(UTC).isoformat(timespec="microseconds")
    assert text.endswith("+00:00")
    assert datetime.fromisoformat(text) == value


def test_the_documented_types_are_the_parquet_types() -> None:
    schema = parquet_schema()
    assert [c["name"] for c in describe()] == schema.names == list(COLUMNS)
    for column in describe():
        text = str(schema.field(column["name"]).type)
        documented = column["type"].replace("dictionary<int32, string>", "dictionary<values=")
        assert text.startswith(documented), (text, column)


def test_a_parquet_part_is_converted_and_written_a_row_group_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    from polysim_async.export import _writers

    monkeypatch.setattr(_writers, "ROW_GROUP_ROWS", 4)
    fmt = ParquetFormat()
    pages = [fmt.convert(f"acc-{i}", [trade(10 * i + j) for j in range(3)]) for i in range(5)]
    fmt.write(tmp_path / "p.parquet", pages, {})
    meta = pq.read_metadata(tmp_path / "p.parquet")
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [6, 6, 3]
    assert pq.read_table(tmp_path / "p.parquet").column("trade_id").to_pylist() == [
        10 * i + j for i in range(5) for j in range(3)
    ]
