"""The benchmarks import, and the decode benchmark runs on a tiny input (no timings asserted)."""

from __future__ import annotations

import importlib

import pytest

from benchmarks import decode, run


@pytest.mark.parametrize("name", run.BENCHMARKS)
def test_every_benchmark_module_imports_and_has_run(name: str) -> None:
    module = importlib.import_module(f"benchmarks.{name}")
    assert callable(module.run)


def test_decode_benchmark_runs_on_a_tiny_page() -> None:
    rows = decode.run(quick=True, fills=5)
    variants = {r.variant for r in rows}
    assert {"polysim-async", "json.loads (dicts)", "msgspec plain strings (floor)"} <= variants
    assert all(r.value for r in rows)


def test_the_table_renders() -> None:
    rows = decode.run(quick=True, fills=2)
    text = run.table(rows)
    assert text.startswith("| benchmark")
    assert len(text.splitlines()) == len(rows) + 2
