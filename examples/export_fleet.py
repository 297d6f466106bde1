"""Land every fill of many prop-firm accounts in your storage: Parquet, CSV or NDJSON.

The first run exports every fill; a run killed half-way (Ctrl-C, kill -9, a
crash) continues where it stopped when started again; every later run adds only
the fills that are new. Each fill ends up in the directory exactly once.

Needs POLYSIM_TENANT_KEY (and POLYSIM_BASE_URL unless you target production).
Parquet needs pyarrow: pip install "polysim-async[parquet]".

Usage: python export_fleet.py OUT_DIR ACCOUNT_ID [ACCOUNT_ID ...] [--format csv|ndjson|parquet]

Read the Parquet directory back with
``pyarrow.dataset.dataset(OUT_DIR, format="parquet")``, polars
(``pl.scan_parquet(f"{OUT_DIR}/*.parquet")``) or duckdb
(``SELECT * FROM 'OUT_DIR/*.parquet'``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from polysim_async import Client, ExportError, ExportProgress, ExportSummary


def show(event: ExportProgress) -> None:
    """One status line on stderr, redrawn in place."""
    rate = "-" if event.fills_per_second is None else f"{event.fills_per_second:,.0f}"
    eta = "-" if event.eta is None else f"{event.eta:,.0f}s"
    print(
        f"\r{event.accounts_done}/{event.accounts_total} accounts, "
        f"{event.fills_fetched:,} fills ({rate}/s), ETA {eta}   ",
        end="",
        file=sys.stderr,
        flush=True,
    )


async def main(out_dir: str, accounts: list[str], fmt: str) -> ExportSummary:
    async with Client() as client:
        return await client.partner.accounts.export(
            accounts,
            out_dir,
            format="csv" if fmt == "csv" else "ndjson" if fmt == "ndjson" else "parquet",
            progress=show,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("accounts", nargs="+", metavar="ACCOUNT_ID")
    parser.add_argument("--format", choices=["parquet", "csv", "ndjson"], default="parquet")
    args = parser.parse_args()
    try:
        summary = asyncio.run(main(args.out_dir, args.accounts, args.format))
    except KeyboardInterrupt:
        print(f"\ninterrupted: run the same command again to resume into {args.out_dir}")
        raise SystemExit(130) from None
    except ExportError as exc:
        print(f"\n{exc}")
        raise SystemExit(1) from None
    print(
        f"\nwrote {summary.fills:,} new fills in {len(summary.parts)} part(s); "
        f"{args.out_dir} holds {summary.total_fills:,} fills"
    )
