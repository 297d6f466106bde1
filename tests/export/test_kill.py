"""An export killed with SIGKILL at five different moments, resumed each time, ends with
exactly the sandbox's fills; an incremental run killed mid-way does too.

The export runs in a child process that kills itself at a moment chosen by a
counter (``_killed_export.py``), never by a timer, so the test does not depend
on the machine's speed. After each kill the test checks the leftovers that
prove the moment was hit, and that the manifest only lists complete parts.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pyarrow.parquet as pq

from ._fleet import Fleet, by_trade, fleet, read_parquet, typed_row

CHILD = Path(__file__).with_name("_killed_export.py")


async def run_child(f: Fleet, out: Path, moment: str) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        f.sb.url,
        f.sb.tenant_key,
        str(out),
        json.dumps(f.ids),
        moment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    if moment == "none":
        assert proc.returncode == 0, output.decode()
    else:
        assert proc.returncode == -signal.SIGKILL, output.decode()
    return proc.returncode


def listed_rows_are_unique_and_complete(out: Path) -> set[str]:
    """Every part the manifest lists is a complete Parquet file; no fill is in two."""
    manifest = json.loads((out / "_manifest.json").read_text())
    seen: set[int] = set()
    for part in manifest["parts"]:
        table = pq.read_table(out / part["name"])
        assert table.num_rows == part["rows"] <= 60
        ids = set(table.column("trade_id").to_pylist())
        assert len(ids) == table.num_rows and not ids & seen
        seen |= ids
    return {p["name"] for p in manifest["parts"]}


async def test_killed_five_times_then_resumed_ends_with_every_fill_once(tmp_path: Path) -> None:
    out = tmp_path / "fills"
    async with fleet([260, 0, 190, 75], seed=9) as f:
        await f.buy(f.ids[1])

        await run_child(f, out, "page:7")
        listed = listed_rows_are_unique_and_complete(out)

        await run_child(f, out, "half-part:2")
        assert list(out.glob(".part-*.parquet.tmp")), "killed while a part was half written"
        listed = listed_rows_are_unique_and_complete(out)

        await run_child(f, out, "full-part:1")
        (tmp,) = out.glob(".part-*.parquet.tmp")
        assert pq.read_metadata(tmp).num_rows > 0  # complete, yet not part of the export
        listed = listed_rows_are_unique_and_complete(out)

        await run_child(f, out, "renamed:2")
        listed = listed_rows_are_unique_and_complete(out)
        orphans = {p.name for p in out.glob("part-*.parquet")} - listed
        assert len(orphans) == 1, "killed after a rename, before the manifest listed the part"

        await run_child(f, out, "manifest:3")
        assert (out / "_manifest.json.tmp").exists()
        listed = listed_rows_are_unique_and_complete(out)
        assert listed

        await run_child(f, out, "none")
        truth = await f.truth()
        assert len(truth) == 526
        assert by_trade(read_parquet(out)) == {t.trade_id: typed_row(a, t) for a, t in truth}
        assert not list(out.glob(".*")) and not (out / "_manifest.json.tmp").exists()

        # The next day: new fills, and an incremental run killed before it finishes.
        f.sb.generate_fills(130, account_id=f.ids[0])
        await f.buy(f.ids[1])
        f.sb.generate_fills(41, account_id=f.ids[3])
        await run_child(f, out, "renamed:1")
        await run_child(f, out, "none")
        truth = await f.truth()
    assert len(truth) == 526 + 172
    assert by_trade(read_parquet(out)) == {t.trade_id: typed_row(a, t) for a, t in truth}
    listed_rows_are_unique_and_complete(out)
