"""Static checks of the export's public types: run by mypy in CI, never executed."""

from __future__ import annotations

from pathlib import Path

from typing_extensions import assert_type

import polysim_async as ps
from polysim_async.export import ExportFormat


async def export(client: ps.Client, ids: list[str], fmt: ExportFormat) -> None:
    seen: list[ps.ExportProgress] = []
    summary = await client.partner.accounts.export(ids, Path("out"), format=fmt)
    assert_type(summary, ps.ExportSummary)
    assert_type(summary.parts, tuple[str, ...])
    assert_type(summary.out_dir, Path)
    summary = await client.partner.accounts.export(
        ids, "out", format="csv", side="BUY", on_error="raise", progress=seen.append
    )
    assert_type(seen[0].eta, float | None)
    try:
        await client.partner.accounts.export(ids, "out")
    except ps.ExportError as exc:
        assert_type(exc.failures, dict[str, ps.PolySimError])
        assert_type(exc.summary, ps.ExportSummary)
    except ps.ExportValueError as exc:
        assert_type(exc.trade_id, int)


def stores(path: Path) -> None:
    from polysim_async.export._manifest import FileStore, ManifestStore

    # The shared checkpoint stores fit the export's manifest store as they are.
    store: ManifestStore = ps.SQLiteCheckpointStore(path)
    store = FileStore()
    assert store
