"""Follow the fills of many prop-firm accounts, each fill exactly once, across restarts.

Partners have no push channel: the watch polls every account's trade feed
within the client's rate budget (50/s, 3,000/min per tenant), fairly, and keeps
429s to itself. Watermarks are saved at most once a second and on exit; a
restarted watcher resumes from them.

Needs POLYSIM_TENANT_KEY (and POLYSIM_BASE_URL unless you target production).

Usage: python watch_accounts.py ACCOUNT_ID [ACCOUNT_ID ...] [--state FILE]
       [--interval SECONDS] [--max N]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import msgspec

from polysim_async import Client, Watermark

_marks = msgspec.json.Decoder(dict[str, Watermark])


def load_state(path: Path) -> dict[str, Watermark]:
    """Saved watermarks by account id (empty on the first run: start at the newest fill)."""
    return _marks.decode(path.read_bytes()) if path.exists() else {}


def save_state(path: Path, marks: dict[str, Watermark]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(marks))
    tmp.replace(path)  # atomic: a crash never leaves half a file


async def main(accounts: list[str], state: Path, interval: float, max_fills: int | None) -> None:
    since = await asyncio.to_thread(load_state, state)
    async with Client() as client:  # key and URL from POLYSIM_TENANT_KEY / POLYSIM_BASE_URL
        watch = client.partner.accounts.watch_trades(accounts, interval=interval, since=since)
        async with watch:
            print(f"watching {len(accounts)} accounts", flush=True)
            handled, saved_at = 0, time.monotonic()
            try:
                async for item in watch:
                    trade = item.trade
                    print(
                        f"{item.account_id} order={trade.order_id} {trade.side.value} "
                        f"{trade.quantity} {trade.outcome} @ {trade.price}",
                        flush=True,
                    )
                    handled += 1
                    if time.monotonic() - saved_at >= 1.0:
                        await asyncio.to_thread(save_state, state, watch.watermarks)
                        saved_at = time.monotonic()
                    if max_fills is not None and handled >= max_fills:
                        break
            finally:  # on a stop, an error or Ctrl-C: keep what was handled
                save_state(state, watch.watermarks)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("accounts", nargs="+", help="partner account ids")
    parser.add_argument("--state", type=Path, default=Path("watermarks.json"))
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    parser.add_argument("--max", type=int, default=None, help="stop after this many fills")
    args = parser.parse_args()
    asyncio.run(main(args.accounts, args.state, args.interval, args.max))
