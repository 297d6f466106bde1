"""The manifest store (load/save by key, atomic) and the watermark tracker, without a server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from polysim_async import DecodeError
from polysim_async.export._manifest import (
    FileStore,
    Manifest,
    Mark,
    PartRecord,
    Walk,
    tidy_directory,
)
from polysim_async.export._marks import Tracker

from ._feed import Feed, at, feed_server, trade
from ._fleet import by_trade, read_csv

M = TypeVar("M")


async def test_the_file_store_saves_atomically_and_loads_back(tmp_path: Path) -> None:
    store = FileStore()
    key = str(tmp_path / "_manifest.json")
    assert await store.get(key, Manifest) is None
    manifest = Manifest(format="csv", side=None, market_id="0xabc")
    await store.put(key, manifest)
    assert await store.get(key, Manifest) == manifest
    assert os.listdir(tmp_path) == ["_manifest.json"]  # no temporary file left
    (tmp_path / "_manifest.json").write_text("[1, 2]")
    with pytest.raises(DecodeError, match=r"_manifest\.json"):
        await store.get(key, Manifest)


class MemoryStore:
    """Another store, shaped like the shared ``CheckpointStore``: JSON by key."""

    def __init__(self) -> None:
        self.saved: dict[str, bytes] = {}

    async def get(self, key: str, type: type[M]) -> M | None:
        data = self.saved.get(key)
        return None if data is None else msgspec.json.decode(data, type=type)

    async def put(self, key: str, value: object, *, lease: object = None) -> None:
        self.saved[key] = msgspec.json.encode(value)


async def test_the_manifest_can_live_in_another_store(tmp_path: Path) -> None:
    import polysim_async as ps
    from polysim_async.export._run import run_export

    feed = Feed()
    for i in range(5):
        feed.add("A", at(i), i)
    store = MemoryStore()
    async with feed_server(feed) as url, ps.Client("tk", url, rate_limit=None) as client:
        accounts = client.partner.accounts
        r = accounts._r
        first = await run_export(accounts, r, ["A"], tmp_path, format="csv", store=store)
        feed.add("A", at(9), 99)
        second = await run_export(accounts, r, ["A"], tmp_path, format="csv", store=store)
    assert (first.fills, second.fills) == (5, 1)
    assert list(store.saved) == [str(tmp_path / "_manifest.json")]
    assert not (tmp_path / "_manifest.json").exists()
    saved: Any = msgspec.json.decode(store.saved[str(tmp_path / "_manifest.json")])
    assert saved["accounts"]["A"]["rows"] == 6
    assert len(by_trade(read_csv(tmp_path))) == 6


def test_tidy_touches_only_its_own_names(tmp_path: Path) -> None:
    names = [
        "part-00000001.csv",  # listed: kept
        "part-00000002.csv",  # not listed: a leftover
        ".part-00000003.parquet.tmp",
        "_manifest.json.tmp",
        "part-1.csv",  # not our pattern
        "part-00000004.csv.bak",
        "notes.md",
    ]
    for name in names:
        (tmp_path / name).write_text("x")
    manifest = Manifest(format="csv", side=None, market_id=None)
    manifest.parts.append(PartRecord(name="part-00000001.csv", rows=1))
    removed = tidy_directory(tmp_path, manifest)
    assert removed == [".part-00000003.parquet.tmp", "_manifest.json.tmp", "part-00000002.csv"]
    assert sorted(os.listdir(tmp_path)) == sorted(set(names) - set(removed))


def instant(second: int) -> str:
    return at(second).isoformat(timespec="microseconds")


def test_the_tracker_builds_the_next_watermark() -> None:
    mark = Mark(filled_at=instant(5), trade_ids=[7])
    tracker = Tracker(mark, None)
    keep, reached = tracker.page([trade(9, 5), trade(7, 5), trade(8, 5), trade(3, 4)])
    assert [t.trade_id for t in keep] == [9, 8] and reached
    assert tracker.finished() == Mark(filled_at=mark.filled_at, trade_ids=[7, 8, 9])

    # A walk that moves the instant forward keeps only the new instant's ids.
    tracker = Tracker(mark, None)
    keep, reached = tracker.page([trade(11, 6), trade(10, 6)])
    assert not reached
    six = at(6).isoformat(timespec="microseconds")
    assert tracker.walk("c") == Walk(
        cursor="c", top=six, top_ids=[11, 10], floor=six, floor_ids=[10, 11]
    )
    keep, reached = tracker.page([trade(9, 5), trade(7, 5), trade(1, 1)])
    assert [t.trade_id for t in keep] == [9] and reached
    assert tracker.finished() == Mark(
        filled_at=at(6).isoformat(timespec="microseconds"), trade_ids=[11, 10]
    )

    # An empty feed keeps the mark; no mark means every row is new.
    assert Tracker(mark, None).finished() == mark
    tracker = Tracker(None, None)
    assert tracker.page([trade(2, 1), trade(1, 0)]) == ([trade(2, 1), trade(1, 0)], False)


async def test_a_shared_checkpoint_store_keeps_the_manifest(tmp_path: Path) -> None:
    """The SQLite checkpoint store (issue 12) plugs in as the manifest store as it is."""
    import polysim_async as ps
    from polysim_async.export._run import run_export

    feed = Feed()
    for i in range(7):
        feed.add("A", at(i), i)
    out = tmp_path / "out"
    store = ps.SQLiteCheckpointStore(tmp_path / "checkpoints.db")
    try:
        async with feed_server(feed) as url, ps.Client("tk", url, rate_limit=None) as client:
            accounts = client.partner.accounts
            first = await run_export(accounts, accounts._r, ["A"], out, format="csv", store=store)
            feed.add("A", at(8), 80)
            second = await run_export(accounts, accounts._r, ["A"], out, format="csv", store=store)
        saved = await store.get(str(out / "_manifest.json"), Manifest)
    finally:
        await store.aclose()
    assert (first.fills, second.fills) == (7, 1)
    assert saved is not None and saved.accounts["A"].rows == 8
    assert not (out / "_manifest.json").exists()
    assert len(by_trade(read_csv(out))) == 8
