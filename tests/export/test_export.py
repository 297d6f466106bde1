"""``client.partner.accounts.export`` against the sandbox over real sockets."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

import polysim_async as ps
from polysim_async.export import COLUMNS, ExportDirectoryError, ExportProgress

from ._fleet import (
    Fleet,
    by_trade,
    fleet,
    parts,
    read_csv,
    read_ndjson,
    read_parquet,
    typed_row,
    wire_row,
)


def manifest(out: Path) -> dict:
    return json.loads((out / "_manifest.json").read_text())


async def test_parquet_holds_every_fill_once_with_exact_types_and_values(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    async with fleet([0, 137, 260]) as f:
        await f.buy(f.ids[0])  # a real fill: realized_pnl null, exchange prices
        truth = await f.truth()
        summary = await f.client.partner.accounts.export(
            f.ids, tmp_path, page_size=25, part_rows=100
        )

    assert summary.fills == len(truth) == 398
    assert summary.accounts == summary.completed == 3
    assert summary.resumed == 0
    assert summary.total_fills == 398
    assert [p.name for p in parts(tmp_path, "parquet")] == list(summary.parts)
    got = by_trade(read_parquet(tmp_path))
    assert got == {t.trade_id: typed_row(aid, t) for aid, t in truth}

    schema = pq.read_schema(parts(tmp_path, "parquet")[0])
    money = pa.decimal128(38, 18)
    label = pa.dictionary(pa.int32(), pa.string())
    assert schema.names == list(COLUMNS)
    assert [schema.field(n).type for n in ("price", "quantity", "notional", "fee")] == [money] * 4
    assert schema.field("realized_pnl").type == money
    assert schema.field("filled_at").type == pa.timestamp("us", tz="UTC")
    assert [schema.field(n).type for n in ("market_id", "side", "outcome")] == [label] * 3
    assert schema.field("account_id").type == pa.string()
    assert schema.field("trade_id").type == schema.field("order_id").type == pa.int64()
    info = json.loads(schema.metadata[b"polysim.export"])
    assert info["money"] == {"precision": 38, "scale": 18}
    assert info["page_size"] == 25 and info["part_rows"] == 100
    assert info["side"] is None and info["market_id"] is None
    assert [c["name"] for c in info["columns"]] == list(COLUMNS)

    # Parts of bounded size: memory stays flat whatever the number of fills.
    sizes = [pq.read_metadata(p).num_rows for p in parts(tmp_path, "parquet")]
    assert max(sizes) <= 100
    assert sum(sizes) == 398
    m = manifest(tmp_path)
    assert [p["rows"] for p in m["parts"]] == sizes
    assert {aid: m["accounts"][aid]["rows"] for aid in f.ids} == {
        f.ids[0]: 1,
        f.ids[1]: 137,
        f.ids[2]: 260,
    }
    assert all(m["accounts"][aid].get("walk") is None for aid in f.ids)


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
async def test_text_formats_hold_the_exact_wire_strings(tmp_path: Path, fmt: str) -> None:
    async with fleet([3, 90]) as f:
        await f.buy(f.ids[0])
        truth = await f.truth()
        summary = await f.client.partner.accounts.export(
            f.ids, tmp_path, format=fmt, page_size=20, part_rows=40
        )
    rows = read_csv(tmp_path) if fmt == "csv" else read_ndjson(tmp_path)
    assert summary.fills == len(rows) == 94
    assert by_trade(rows) == {t.trade_id: wire_row(aid, t) for aid, t in truth}
    assert all(row["filled_at"].endswith("+00:00") for row in rows)
    header = fmt == "csv"
    assert all(len(p.read_bytes().splitlines()) <= 40 + header for p in parts(tmp_path, fmt))


async def test_an_incremental_run_adds_exactly_the_new_fills(tmp_path: Path) -> None:
    async with fleet([40, 0, 75]) as f:
        accounts = f.client.partner.accounts
        first = await accounts.export(f.ids, tmp_path, page_size=10, part_rows=30)
        assert first.fills == 115

        again = await accounts.export(f.ids, tmp_path, page_size=10, part_rows=30)
        assert again.fills == 0 and again.parts == ()
        assert again.total_fills == 115

        before = {t.trade_id for _, t in await f.truth()}
        await f.buy(f.ids[0])
        await f.buy(f.ids[1])  # its first fill
        f.sb.generate_fills(24, account_id=f.ids[2])
        f.sb.advance(seconds=1)
        await f.buy(f.ids[2])
        truth = await f.truth()
        new = {t.trade_id for _, t in truth} - before
        assert len(new) == 27

        third = await accounts.export(f.ids, tmp_path, page_size=10, part_rows=30)
    assert third.fills == 27
    assert third.total_fills == 142
    got = by_trade(read_parquet(tmp_path))
    assert got == {t.trade_id: typed_row(aid, t) for aid, t in truth}
    added = {r["trade_id"] for p in third.parts for r in read_parquet_part(tmp_path / p)}
    assert added == new


def read_parquet_part(path: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


async def test_new_accounts_join_and_absent_ones_are_left_alone(tmp_path: Path) -> None:
    async with fleet([12, 7]) as f:
        accounts = f.client.partner.accounts
        await accounts.export(f.ids[:1], tmp_path, format="csv")
        f.sb.generate_fills(4, account_id=f.ids[0])
        summary = await accounts.export(f.ids[1:], tmp_path, format="csv")
        assert summary.fills == 7
        m = manifest(tmp_path)
        assert m["accounts"][f.ids[0]]["rows"] == 12  # not named: not walked
        summary = await accounts.export(f.ids, tmp_path, format="csv")
        assert summary.fills == 4
        truth = await f.truth()
    assert by_trade(read_csv(tmp_path)) == {t.trade_id: wire_row(a, t) for a, t in truth}


async def test_filters_are_applied_and_recorded(tmp_path: Path) -> None:
    async with fleet([30]) as f:
        summary = await f.client.partner.accounts.export(
            f.ids, tmp_path, format="ndjson", side="sell"
        )
        sells = [
            (f.ids[0], t) async for t in f.client.partner.accounts.trades(f.ids[0], side="SELL")
        ]
        with pytest.raises(ExportDirectoryError, match=r"side='SELL'.*side=None"):
            await f.client.partner.accounts.export(f.ids, tmp_path, format="ndjson")
        with pytest.raises(ExportDirectoryError, match="format='ndjson'"):
            await f.client.partner.accounts.export(f.ids, tmp_path, side="SELL")
    assert summary.fills == 15
    assert by_trade(read_ndjson(tmp_path)) == {t.trade_id: wire_row(a, t) for a, t in sells}
    assert manifest(tmp_path)["side"] == "SELL"


async def test_a_market_filter_exports_that_market_only(tmp_path: Path) -> None:
    async with fleet([0, 0]) as f:
        other = f.sb.create_market(question="Another?")
        f.sb.generate_fills(6, account_id=f.ids[0], market_id=other)
        f.sb.generate_fills(4, account_id=f.ids[0])
        f.sb.generate_fills(8, account_id=f.ids[1], market_id=other)
        summary = await f.client.partner.accounts.export(
            f.ids, tmp_path, format="csv", market_id=other
        )
        truth = [(a, t) for a, t in await f.truth() if t.market_id == other]
        with pytest.raises(ps.InvalidArgumentError, match="market_id"):
            await f.client.partner.accounts.export(f.ids, tmp_path, format="csv", market_id="")
    assert summary.fills == 14
    assert by_trade(read_csv(tmp_path)) == {t.trade_id: wire_row(a, t) for a, t in truth}
    assert manifest(tmp_path)["market_id"] == other


async def test_progress_reports_counts_that_only_grow(tmp_path: Path) -> None:
    events: list[ExportProgress] = []
    async with fleet([50, 0, 23]) as f:
        summary = await f.client.partner.accounts.export(
            f.ids, tmp_path, format="csv", page_size=10, part_rows=20, progress=events.append
        )
    assert len(events) >= 9  # every page, every part, the end
    for before, after in itertools.pairwise(events):
        for field in ("accounts_done", "fills_fetched", "fills_written", "parts_written"):
            assert getattr(after, field) >= getattr(before, field)
        assert after.elapsed >= before.elapsed
    last = events[-1]
    assert last.accounts_total == last.accounts_done == 3
    assert last.accounts_failed == 0
    assert last.fills_fetched == last.fills_written == summary.fills == 73
    assert last.parts_written == len(summary.parts) == 4
    assert last.requests == 5 + 1 + 3  # pages of 10: 50 fills, none, 23 fills
    assert last.eta == 0.0
    assert any(e.eta is None for e in events)  # before any account finished


async def test_a_part_is_also_cut_when_the_commit_interval_passed(tmp_path: Path) -> None:
    from polysim_async.export import COMMIT_INTERVAL

    async with fleet([60]) as f:

        def thirty_seconds_at_page_two(event: ExportProgress) -> None:
            if event.requests == 2 and event.parts_written == 0:
                f.clock.t += COMMIT_INTERVAL

        summary = await f.client.partner.accounts.export(
            f.ids,
            tmp_path,
            format="csv",
            page_size=10,
            part_rows=50,
            progress=thirty_seconds_at_page_two,
        )
    # 20 rows at 30 s, then 40 (not full: the walk ended).
    assert [len(read_csv_part(tmp_path / p)) for p in summary.parts] == [20, 40]
    assert summary.seconds == COMMIT_INTERVAL


def read_csv_part(path: Path) -> list[str]:
    return path.read_text().splitlines()[1:]


async def test_a_failing_account_is_reported_and_the_others_are_exported(tmp_path: Path) -> None:
    async with fleet([20, 30]) as f:
        accounts = f.client.partner.accounts
        missing = "00000000-0000-4000-8000-000000000000"
        with pytest.raises(ps.ExportError) as info:
            await accounts.export([f.ids[0], missing, f.ids[1]], tmp_path, format="csv")
        err = info.value
        assert set(err.failures) == {missing}
        assert isinstance(err.failures[missing], ps.NotFoundError)
        assert isinstance(err.__cause__, ps.NotFoundError)
        assert err.summary.fills == 50 and err.summary.completed == 2
        assert "1 of 3 account(s) failed" in str(err)
        truth = await f.truth()
    assert by_trade(read_csv(tmp_path)) == {t.trade_id: wire_row(a, t) for a, t in truth}


async def test_on_error_raise_stops_at_the_first_failure_and_a_rerun_finishes(
    tmp_path: Path,
) -> None:
    async with fleet([60, 60]) as f:
        accounts = f.client.partner.accounts
        f.sb.fail_next(f"/v1/partner/accounts/{f.ids[1]}/trades", status=404, code="NOT_FOUND")
        with pytest.raises(ps.ExportError) as info:
            await accounts.export(
                f.ids, tmp_path, format="ndjson", page_size=10, concurrency=2, on_error="raise"
            )
        assert set(info.value.failures) == {f.ids[1]}
        summary = await accounts.export(f.ids, tmp_path, format="ndjson", page_size=10)
        truth = await f.truth()
    assert by_trade(read_ndjson(tmp_path)) == {t.trade_id: wire_row(a, t) for a, t in truth}
    assert summary.fills + info.value.summary.fills == 120


async def test_an_interrupted_export_resumes_where_it_stopped(tmp_path: Path) -> None:
    class Stop(Exception):
        pass

    def stop_after_two_parts(event: ExportProgress) -> None:
        if event.parts_written == 2:
            raise Stop

    async with fleet([90, 45]) as f:
        accounts = f.client.partner.accounts
        with pytest.raises(Stop):
            await accounts.export(
                f.ids,
                tmp_path,
                page_size=10,
                part_rows=30,
                concurrency=1,
                progress=stop_after_two_parts,
            )
        assert len(manifest(tmp_path)["parts"]) == 2
        assert manifest(tmp_path)["accounts"][f.ids[0]]["walk"]["cursor"]
        summary = await accounts.export(f.ids, tmp_path, page_size=10, part_rows=30)
        truth = await f.truth()
    assert summary.resumed == 1
    assert summary.fills == 135 - 60
    assert by_trade(read_parquet(tmp_path)) == {t.trade_id: typed_row(a, t) for a, t in truth}


async def test_cancelling_leaves_no_temporary_file_and_loses_nothing(tmp_path: Path) -> None:
    async with fleet([200]) as f:
        accounts = f.client.partner.accounts
        task: asyncio.Task[ps.ExportSummary]

        def cancel_mid_way(event: ExportProgress) -> None:
            if event.requests == 9:
                task.cancel()

        task = asyncio.create_task(
            accounts.export(
                f.ids, tmp_path, format="csv", page_size=10, part_rows=40, progress=cancel_mid_way
            )
        )
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sorted(n for n in os.listdir(tmp_path) if n.startswith(".")) == []
        assert 0 < len(manifest(tmp_path)["parts"]) < 5
        await accounts.export(f.ids, tmp_path, format="csv", page_size=10, part_rows=40)
        truth = await f.truth()
    assert by_trade(read_csv(tmp_path)) == {t.trade_id: wire_row(a, t) for a, t in truth}


async def test_leftovers_of_a_killed_run_are_removed_and_other_files_kept(tmp_path: Path) -> None:
    async with fleet([10]) as f:
        accounts = f.client.partner.accounts
        await accounts.export(f.ids, tmp_path, format="csv")
        (tmp_path / ".part-00000002.csv.tmp").write_text("half a part")
        (tmp_path / "part-00000002.csv").write_text("renamed, never recorded")
        (tmp_path / "_manifest.json.tmp").write_text("{")
        (tmp_path / "README.txt").write_text("mine")
        f.sb.generate_fills(3, account_id=f.ids[0])
        summary = await accounts.export(f.ids, tmp_path, format="csv")
        truth = await f.truth()
    assert summary.parts == ("part-00000002.csv",)
    assert sorted(os.listdir(tmp_path)) == [
        "README.txt",
        "_manifest.json",
        "part-00000001.csv",
        "part-00000002.csv",
    ]
    assert by_trade(read_csv(tmp_path)) == {t.trade_id: wire_row(a, t) for a, t in truth}


async def test_a_directory_that_cannot_be_continued_is_refused_untouched(tmp_path: Path) -> None:
    async with fleet([10]) as f:
        accounts = f.client.partner.accounts
        await accounts.export(f.ids, tmp_path, format="csv", part_rows=500)
        saved = (tmp_path / "_manifest.json").read_bytes()

        (tmp_path / "part-00000001.csv").rename(tmp_path / "elsewhere.csv")
        with pytest.raises(ExportDirectoryError, match=r"part-00000001\.csv"):
            await accounts.export(f.ids, tmp_path, format="csv")
        (tmp_path / "elsewhere.csv").rename(tmp_path / "part-00000001.csv")

        (tmp_path / "_manifest.json").write_bytes(b'{"format": 1}')
        with pytest.raises(ExportDirectoryError, match="not a valid export manifest"):
            await accounts.export(f.ids, tmp_path, format="csv")
        (tmp_path / "_manifest.json").unlink()
        with pytest.raises(ExportDirectoryError, match=r"no _manifest\.json"):
            await accounts.export(f.ids, tmp_path, format="csv")
        assert (tmp_path / "part-00000001.csv").exists()

        newer = msgspec.json.decode(saved)
        newer["version"] = 99
        (tmp_path / "_manifest.json").write_bytes(msgspec.json.encode(newer))
        with pytest.raises(ExportDirectoryError, match="newer polysim-async"):
            await accounts.export(f.ids, tmp_path, format="csv")


async def test_two_exports_into_one_directory_do_not_run_at_once(tmp_path: Path) -> None:
    from polysim_async.export._manifest import DirectoryLock

    async with fleet([5]) as f:
        with DirectoryLock(tmp_path), pytest.raises(ExportDirectoryError, match="another export"):
            await f.client.partner.accounts.export(f.ids, tmp_path, format="csv")
        summary = await f.client.partner.accounts.export(f.ids, tmp_path, format="csv")
    assert summary.fills == 5


async def test_bad_arguments_are_refused_before_anything_is_touched(tmp_path: Path) -> None:
    async with fleet([1]) as f:
        accounts = f.client.partner.accounts
        out = tmp_path / "out"
        for kwargs, match in [
            ({"format": "xlsx"}, "format must be"),
            ({"page_size": 0}, "page_size"),
            ({"page_size": 200, "part_rows": 100}, "part_rows .* at least page_size"),
            ({"on_error": "ignore"}, "on_error"),
            ({"concurrency": 0}, "concurrency"),
            ({"side": "HOLD"}, "side"),
            ({"progress": 3}, "progress"),
        ]:
            with pytest.raises(ps.InvalidArgumentError, match=match):
                await accounts.export(f.ids, out, **kwargs)
        with pytest.raises(ps.InvalidArgumentError, match="not one string"):
            await accounts.export(f.ids[0], out)
        with pytest.raises(ps.InvalidArgumentError, match="duplicates"):
            await accounts.export(f.ids * 2, out)
        with pytest.raises(ps.InvalidArgumentError, match="must not be"):
            await accounts.export([".."], out)
    assert not out.exists()


async def test_parquet_without_pyarrow_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    async with fleet([2]) as f:
        with pytest.raises(ps.MissingDependencyError, match=r"polysim-async\[parquet\]"):
            await f.client.partner.accounts.export(f.ids, tmp_path)
        summary = await f.client.partner.accounts.export(f.ids, tmp_path, format="ndjson")
    assert summary.fills == 2


def test_csv_and_ndjson_exports_never_import_pyarrow() -> None:
    code = """
import asyncio, sys, tempfile
from polysim_async import Client
from polysim_async.sandbox import Sandbox

async def main():
    async with Sandbox(rate_limits=False) as sb, Client(sb.tenant_key, sb.url) as client:
        user = await client.partner.users.register("x", "x@y.z")
        acc = await client.partner.accounts.create(
            user_id=user.user_id, external_id="a", stage="demo", starting_balance="100")
        sb.generate_fills(3, account_id=acc.account_id)
        for fmt in ("csv", "ndjson"):
            out = tempfile.mkdtemp()
            s = await client.partner.accounts.export([acc.account_id], out, format=fmt)
            assert s.fills == 3
    assert "pyarrow" not in sys.modules, "pyarrow was imported"

asyncio.run(main())
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_money_is_never_rounded_on_the_way_to_parquet() -> None:
    """pyarrow's string → decimal128 cast, which the export relies on, raises
    instead of rounding or truncating, and keeps exact values exact."""
    import pyarrow as pa

    money = pa.decimal128(38, 18)
    exact = ["0.4100", "-242.50000000000000000", "99999999999999999999.999999999999999999"]
    assert pa.array(exact).cast(money).to_pylist() == [Decimal(v) for v in exact]
    for value in [
        "0.0000000000000000001",  # a 19th decimal digit
        "123456789012345678901",  # a 21st integer digit
        "1e21",
        "NaN",
        "abc",
        "",
    ]:
        with pytest.raises(pa.ArrowInvalid):
            pa.array([value]).cast(money)


async def test_fleet_helper_sanity(tmp_path: Path) -> None:
    async with fleet([3]) as f:
        assert isinstance(f, Fleet)
        assert len(await f.truth()) == 3
