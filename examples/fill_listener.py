"""Print every fill of your orders exactly once, across disconnects and restarts.

The stream reconnects on its own and heals every gap from REST. After each
fill, the listener saves the stream's checkpoint to a file; a restarted listener
resumes from it, so nothing is missed and nothing is printed twice (a checkpoint,
unlike the newest fill's position alone, also covers fills that reached REST but
never the socket).

Needs POLYSIM_API_KEY (your ``ps_live_`` trader key) and POLYSIM_BASE_URL unless
you target production. Against the local sandbox: run ``polysim sandbox`` and
export what it prints.

Usage: python fill_listener.py [--position FILE] [--max N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

import msgspec

from polysim_async import Client, RateLimit, StreamCheckpoint, StreamGap


def load_position(path: Path) -> StreamCheckpoint | None:
    """The saved checkpoint, or ``None`` on the first run (start with the next fill)."""
    if not path.exists():
        return None
    return msgspec.json.decode(path.read_bytes(), type=StreamCheckpoint)


def save_position(path: Path, position: StreamCheckpoint) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(position))
    tmp.replace(path)  # atomic: a crash never leaves half a file


async def main(position_file: Path, max_fills: int | None) -> None:
    since = await asyncio.to_thread(load_position, position_file)
    # Pace REST calls (token, backfill) to your tier's limits; these are Pro's.
    limit = RateLimit(per_second=10, per_minute=600)
    async with (
        Client(os.environ["POLYSIM_API_KEY"], rate_limit=limit) as client,
        client.executions.stream(since=since, gaps=True) as fills,
    ):
        print("listening for fills", flush=True)
        handled = 0
        async for event in fills:
            if isinstance(event, StreamGap):
                print(f"recovered {event.recovered} fill(s) from REST ({event.reason})")
                continue
            print(
                f"fill order={event.order_id} {event.side.value} {event.quantity} "
                f"{event.outcome} @ {event.price} at {event.filled_at.isoformat()}",
                flush=True,
            )
            # Handle the fill first, then save: a crash in between re-delivers it, never skips it.
            assert fills.checkpoint is not None
            await asyncio.to_thread(save_position, position_file, fills.checkpoint)
            handled += 1
            if max_fills is not None and handled >= max_fills:
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--position", type=Path, default=Path("fill_position.json"))
    parser.add_argument("--max", type=int, default=None, help="stop after this many fills")
    args = parser.parse_args()
    asyncio.run(main(args.position, args.max))
