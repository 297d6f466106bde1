"""Incremental runs over a feed the test controls (``_feed.py``): fills that arrive later
at the watermark's instant with a lower order id are picked up, nothing is duplicated.

The sandbox cannot create such fills (its clock hands out strictly increasing
instants), hence the loopback feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polysim_async as ps
from polysim_async.export import ExportProgress

from ._feed import Feed, at, feed_server
from ._fleet import by_trade, read_ndjson


def exported(out: Path) -> dict[int, str]:
    return {tid: row["account_id"] for tid, row in by_trade(read_ndjson(out)).items()}


def everything(feed: Feed) -> dict[int, str]:
    return {row["trade_id"]: aid for aid, rows in feed.rows.items() for row in rows}


async def export(url: str, out: Path, ids: list[str], **kwargs: object) -> ps.ExportSummary:
    async with ps.Client("tk_test", url, rate_limit=None) as client:
        return await client.partner.accounts.export(ids, out, format="ndjson", **kwargs)


async def test_a_late_fill_at_the_watermark_instant_with_a_lower_order_id_is_exported(
    tmp_path: Path,
) -> None:
    feed = Feed()
    feed.add("A", at(0), 10)
    feed.add("A", at(1), 20)
    feed.add("A", at(2), 50)  # the watermark: instant 2, order 50
    feed.add("B", at(2), 7)
    async with feed_server(feed) as url:
        first = await export(url, tmp_path, ["A", "B"], page_size=2, part_rows=2)
        assert first.fills == 4

        late = feed.add("A", at(2), 40)  # same instant, lower order id: sorts below the mark
        higher = feed.add("A", at(2), 60)  # same instant, higher order id: sorts above it
        newer = feed.add("A", at(3), 1)  # newer, with a low order id
        also = feed.add("B", at(2), 3)
        second = await export(url, tmp_path, ["A", "B"], page_size=2, part_rows=2)
        assert second.fills == 4
        assert exported(tmp_path) == everything(feed)
        assert {late, higher, newer, also} <= set(exported(tmp_path))

        # Instant 3 is the watermark now; another late fill at instant 3.
        later = feed.add("A", at(3), 0)
        third = await export(url, tmp_path, ["A", "B"], page_size=1, part_rows=1)
        assert third.fills == 1
        assert exported(tmp_path)[later] == "A"
        assert (await export(url, tmp_path, ["A", "B"])).fills == 0
    assert exported(tmp_path) == everything(feed)


async def test_a_fill_arriving_mid_walk_above_the_cursor_is_exported_next_time(
    tmp_path: Path,
) -> None:
    feed = Feed()
    for i in range(6):
        feed.add("A", at(i), 100 + i)
    arrived: list[int] = []

    def arrive(request: int) -> None:
        if request == 2:  # after page 1 was served: lands above the walk's cursor
            arrived.append(feed.add("A", at(5), 1))

    feed.on_request = arrive
    async with feed_server(feed) as url:
        first = await export(url, tmp_path, ["A"], page_size=2, part_rows=2)
        assert first.fills == 6
        feed.on_request = None
        second = await export(url, tmp_path, ["A"], page_size=2, part_rows=2)
    assert second.fills == 1
    assert exported(tmp_path) == everything(feed)


async def test_a_long_run_at_one_instant_spanning_pages_keeps_every_id(tmp_path: Path) -> None:
    feed = Feed()
    feed.add("A", at(0), 1)
    for oid in range(10, 17):
        feed.add("A", at(1), oid)  # 7 fills at one instant, over several pages
    async with feed_server(feed) as url:
        await export(url, tmp_path, ["A"], page_size=3, part_rows=3)
        for oid in (2, 9, 17):
            feed.add("A", at(1), oid)
        second = await export(url, tmp_path, ["A"], page_size=3, part_rows=3)
    assert second.fills == 3
    assert exported(tmp_path) == everything(feed)


async def test_a_resumed_walk_is_followed_by_a_walk_from_the_top(tmp_path: Path) -> None:
    feed = Feed()
    for oid in (90, 70, 50, 30):
        feed.add("A", at(0), oid)

    class Stop(Exception):
        pass

    def stop_after_first_part(event: ExportProgress) -> None:
        if event.parts_written == 1:
            raise Stop

    async with feed_server(feed) as url:
        with pytest.raises(Stop):
            await export(
                url, tmp_path, ["A"], page_size=1, part_rows=1, progress=stop_after_first_part
            )
        assert exported(tmp_path) == {1: "A"}  # order 90; the walk's cursor is below it
        above = feed.add("A", at(0), 95)  # arrives above the interrupted walk's cursor
        below = feed.add("A", at(0), 10)  # and below it
        resumed = await export(url, tmp_path, ["A"], page_size=1, part_rows=1)
    assert resumed.resumed == 1
    assert {above, below} <= set(exported(tmp_path))
    assert exported(tmp_path) == everything(feed)


# -- property: whatever arrives when, interrupted or not, every fill ends up exactly once --

arrival = st.tuples(
    st.integers(0, 2),  # account
    st.sampled_from([0, 0, 1]),  # seconds after that account's newest fill (0: same instant)
)
run = st.fixed_dictionaries(
    {
        "page_size": st.integers(1, 4),
        "extra_rows": st.integers(0, 5),
        "stop_after": st.none() | st.integers(1, 12),  # progress events before an interruption
        "during": st.lists(st.tuples(st.integers(1, 8), arrival), max_size=3),
        "before": st.lists(arrival, max_size=6),
    }
)


class Interrupted(Exception):
    pass


async def scenario(runs: list[dict], initial: list[tuple[int, int]], seed: int) -> None:
    import random

    rng = random.Random(seed)
    order_ids = iter(rng.sample(range(1, 100_000), 500))
    feed = Feed()
    newest = {0: 0.0, 1: 0.0, 2: 0.0}
    ids = ["A", "B", "C"]

    def add(account: int, delta: int) -> None:
        newest[account] += delta
        feed.add(ids[account], at(newest[account]), next(order_ids))

    for account, delta in initial:
        add(account, delta)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        async with feed_server(feed) as url:
            for spec in [*runs, {"page_size": 3, "extra_rows": 2, "stop_after": None}]:
                for account, delta in spec.get("before", []):
                    add(account, delta)
                during = dict(spec.get("during", []))
                feed.requests = 0
                feed.on_request = lambda n, during=during: add(*during[n]) if n in during else None
                seen = 0

                def progress(event: ExportProgress, limit: int | None = spec["stop_after"]) -> None:
                    nonlocal seen
                    seen += 1
                    if limit is not None and seen >= limit:
                        raise Interrupted

                with contextlib.suppress(Interrupted):
                    await export(
                        url,
                        out,
                        ids,
                        page_size=spec["page_size"],
                        part_rows=spec["page_size"] + spec["extra_rows"],
                        concurrency=2,
                        progress=progress,
                    )
            feed.on_request = None
            # The last run had no arrivals during it and was not interrupted.
            assert exported(out) == everything(feed)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    runs=st.lists(run, min_size=1, max_size=4),
    initial=st.lists(arrival, max_size=12),
    seed=st.integers(0, 1000),
)
def test_every_fill_is_exported_exactly_once_whatever_arrives_when(
    runs: list[dict], initial: list[tuple[int, int]], seed: int
) -> None:
    asyncio.run(scenario(runs, initial, seed))


# -- values that cannot be written exactly ----------------------------------------------


async def test_parquet_fails_the_account_whose_money_does_not_fit_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    pytest.importorskip("pyarrow")
    from ._fleet import read_parquet

    feed = Feed()
    for i in range(5):
        feed.add("good", at(i), i + 1)
    feed.add("bad", at(0), 1)
    tiny = feed.add("bad", at(1), 2, realized_pnl="0.0000000000000000001")  # 19 decimals
    feed.add("bad", at(2), 3)
    async with feed_server(feed) as url, ps.Client("tk", url, rate_limit=None) as client:
        with pytest.raises(ps.ExportError) as info:
            await client.partner.accounts.export(["good", "bad"], tmp_path, page_size=2)
        error = info.value.failures["bad"]
        assert isinstance(error, ps.ExportValueError)
        assert (error.account_id, error.trade_id, error.field) == ("bad", tiny, "realized_pnl")
        assert error.value == "0.0000000000000000001"
        assert "'bad'" in str(error) and f"trade {tiny}" in str(error)
        assert "decimal128(38, 18)" in str(error)
        rows = read_parquet(tmp_path)
        assert sorted(r["trade_id"] for r in rows) == sorted(
            r["trade_id"] for r in feed.rows["good"]
        )
        # The same value is exact text in CSV: nothing to round there.
        out = tmp_path / "csv"
        summary = await client.partner.accounts.export(["good", "bad"], out, format="csv")
        assert summary.fills == 8
        assert "0.0000000000000000001" in (out / "part-00000001.csv").read_text()


async def test_an_account_found_unwritable_at_a_part_write_stops_and_is_left_out(
    tmp_path: Path,
) -> None:
    from ._fleet import read_parquet

    feed = Feed()
    for i in range(40):
        feed.add("bad", at(i), i)
        feed.add("good", at(i), i)
    feed.add("bad", at(50), 99, price="1e-30")  # the newest: on the first page
    async with feed_server(feed) as url, ps.Client("tk", url, rate_limit=None) as client:
        with pytest.raises(ps.ExportError) as info:
            await client.partner.accounts.export(
                ["bad", "good"], tmp_path, page_size=2, part_rows=4, concurrency=2
            )
    assert set(info.value.failures) == {"bad"}
    assert feed.served["bad"] < 21  # its walk stopped once a part write found the value
    rows = read_parquet(tmp_path)
    assert {r["account_id"] for r in rows} == {"good"} and len(rows) == 40
    manifest = json.loads((tmp_path / "_manifest.json").read_text())
    assert "bad" not in manifest["accounts"]  # nothing of it written: it starts over next time


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
async def test_text_formats_refuse_money_that_is_not_a_number(tmp_path: Path, fmt: str) -> None:
    feed = Feed()
    feed.add("A", at(0), 1)
    bad = feed.add("A", at(1), 2, price="12,5")
    async with feed_server(feed) as url, ps.Client("tk", url, rate_limit=None) as client:
        with pytest.raises(ps.ExportError) as info:
            await client.partner.accounts.export(["A"], tmp_path, format=fmt)
    error = info.value.failures["A"]
    assert isinstance(error, ps.ExportValueError) and isinstance(error, ValueError)
    assert (error.trade_id, error.field, error.value) == (bad, "price", "12,5")
    assert "is not a decimal number" in str(error)
