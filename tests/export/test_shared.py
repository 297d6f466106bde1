"""``accounts.export(shard=..., store=..., key=...)``: shards split the fleet exactly once, and
the manifest lives in a checkpoint store under a lease (one run of an export at a time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import polysim_async as ps
from polysim_async._shard import select_shard
from polysim_async.export import ExportDirectoryError, ExportFormat

from ._fleet import by_trade, fleet, read_csv, wire_row

FILLS = [3, 5, 7, 9, 11, 13, 2, 4]


@pytest.mark.parametrize("count", [2, 3])
async def test_shards_export_every_account_exactly_once(tmp_path: Path, count: int) -> None:
    async with fleet(FILLS) as f:
        truth = await f.truth()
        summaries = [
            await f.client.partner.accounts.export(
                f.ids, tmp_path / f"shard-{i}", format="csv", shard=(i, count)
            )
            for i in range(count)
        ]
    assert sum(s.accounts for s in summaries) == len(FILLS)
    rows = [read_csv(tmp_path / f"shard-{i}") for i in range(count)]
    for i, got in enumerate(rows):
        assert {r["account_id"] for r in got} == set(select_shard(f.ids, (i, count)))
    merged = by_trade([r for got in rows for r in got])
    assert sum(len(got) for got in rows) == len(merged) == len(truth)
    assert merged == {t.trade_id: wire_row(aid, t) for aid, t in truth}


async def test_the_manifest_lives_in_the_store_under_a_lease(tmp_path: Path) -> None:
    fmt: ExportFormat = "csv"
    store = ps.SQLiteCheckpointStore(tmp_path / "checkpoints.db")
    out = tmp_path / "out"
    # Real time: a lease is renewed on the client's clock, and a FakeClock's renewal
    # loop would spin it forward. Nothing waits for time to pass (the ttl is 30 s).
    async with store, fleet(FILLS[:3], clock=ps.SYSTEM_CLOCK) as f:
        accounts = f.client.partner.accounts

        async def export(**kwargs: Any) -> ps.ExportSummary:
            return await accounts.export(f.ids, out, format=fmt, **kwargs)

        first = await export(store=store, key="nightly")
        assert first.fills == sum(FILLS[:3])
        assert not (out / "_manifest.json").exists()
        saved = await store.get("nightly", dict)
        assert saved is not None and set(saved["accounts"]) == set(f.ids)
        # Released at the end: another worker's lease on the export refuses a run.
        other = await store.acquire_lease("nightly", owner="another-worker", ttl=60)
        assert other is not None
        with pytest.raises(ExportDirectoryError, match="in use"):
            await export(store=store, key="nightly")
        await store.release_lease(other)
        f.sb.generate_fills(6, account_id=f.ids[0])
        again = await export(store=store, key="nightly")
        truth = await f.truth()
    assert again.fills == 6 and again.total_fills == len(truth)
    assert by_trade(read_csv(out)) == {t.trade_id: wire_row(aid, t) for aid, t in truth}


async def test_a_key_used_with_another_directory_names_the_key_the_directory_and_the_remedy(
    tmp_path: Path,
) -> None:
    store = ps.SQLiteCheckpointStore(tmp_path / "checkpoints.db")
    first, second = tmp_path / "machine-a", tmp_path / "machine-b"
    async with store, fleet(FILLS[:2], clock=ps.SYSTEM_CLOCK) as f:
        accounts = f.client.partner.accounts
        await accounts.export(f.ids, first, format="csv", store=store, key="nightly")
        # Nothing but the export's own files is left behind: no lock file after the run.
        assert sorted(p.name for p in first.iterdir()) == ["part-00000001.csv"]
        with pytest.raises(ExportDirectoryError) as got:
            await accounts.export(f.ids, second, format="csv", store=store, key="nightly")
        message = str(got.value)
        assert "'nightly'" in message and str(first.resolve()) in message
        assert str(second) in message and "await store.delete('nightly')" in message
        assert "_manifest.json" not in message and "empty directory" not in message
        assert list(second.iterdir()) == []
        # The remedy works: the key starts afresh in the other directory.
        await store.delete("nightly")
        summary = await accounts.export(f.ids, second, format="csv", store=store, key="nightly")
        truth = await f.truth()
    assert summary.fills == len(truth)
    assert by_trade(read_csv(second)) == {t.trade_id: wire_row(aid, t) for aid, t in truth}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": "x"}, "store="),
        ({"store": "store", "key": "x"}, "CheckpointStore"),
        ({"store": ps.SQLiteCheckpointStore(":memory:")}, "key="),
        ({"shard": (0, 0)}, "shard"),
        ({"store": ps.SQLiteCheckpointStore(":memory:"), "key": "k", "lease_ttl": 0.05}, "1 s"),
    ],
)
async def test_bad_options_are_refused_before_anything_is_touched(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    client = ps.Client("tk_x", "https://api.test")
    with pytest.raises(ps.InvalidArgumentError, match=message):
        await client.partner.accounts.export(["a"], tmp_path / "out", format="csv", **kwargs)
    assert not (tmp_path / "out").exists()
