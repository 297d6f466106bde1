"""The evaluator benchmark runs on a tiny input (no timings asserted)."""

from __future__ import annotations

from benchmarks import evaluator


def test_the_evaluator_benchmark_runs_on_a_few_fills() -> None:
    rows = evaluator.run(quick=True, fills=40)
    variants = {r.variant for r in rows}
    assert {"add_fill, every rule", "read the same attributes (floor)"} <= variants
    assert all(r.value for r in rows)
