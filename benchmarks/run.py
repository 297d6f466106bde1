"""Run every benchmark (or some) and print one table.

    python benchmarks/run.py                 # all
    python benchmarks/run.py --only decode   # one (repeatable: --only decode --only memory)
    python benchmarks/run.py --quick         # a short smoke run

Every comparison is measured in the same run: read the ratios, not absolute rates.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Row

BENCHMARKS = [
    "decode",
    "bulk_pull",
    "memory",
    "fanout",
    "stream",
    "sandbox_pages",
    "sandbox_startup",
    "evaluator",
    "redis_limiter",
    "export",
    "burst",
    "cli_startup",
    "monitor",
]


def machine() -> str:
    """One line naming the machine and the library versions."""
    from importlib import metadata

    def ver(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "-"

    mem = "?"
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem = f"{pages / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        pass
    libs = " ".join(
        f"{n} {ver(n)}"
        for n in ("polysim-async", "aiohttp", "msgspec", "pydantic", "httpx", "requests")
    )
    return (
        f"{time.strftime('%Y-%m-%d')} | {os.cpu_count()} cores, {mem} RAM | "
        f"Python {platform.python_version()} ({platform.system()}) | {libs}"
    )


def table(rows: list[Row]) -> str:
    """Render rows as a Markdown table."""
    head = ["benchmark", "variant", "result", "ratio", "target", "met", "note"]
    body = [
        [
            r.bench,
            r.variant,
            r.value,
            r.ratio,
            r.target,
            "" if r.met is None else ("yes" if r.met else "NO"),
            r.note,
        ]
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    out = [line, sep]
    for b in body:
        out.append(
            "| " + " | ".join(str(x).ljust(w) for x, w in zip(b, widths, strict=True)) + " |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run only this one")
    parser.add_argument("--quick", action="store_true", help="short smoke run, small inputs")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    for name in args.only or BENCHMARKS:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            rows.extend(module.run(quick=args.quick))
        except Exception as exc:  # one broken benchmark must not hide the others
            traceback.print_exc()
            rows.append(Row(name, "did not run", "-", note=f"{type(exc).__name__}: {exc}"))
    print()
    print(machine())
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
