"""Judge a fleet of prop-firm accounts live against their challenge rules, and close breaches.

Each account is judged by the rule set stored in its ``rules`` (see the README,
"Challenge rules"). Samples go where the risk is, inside the client's rate budget;
new fills come from the trade feeds. With --close-on-breach a breached account is
closed at once. The monitor's state (high-water marks, day references, trading
days, fill watermarks) is saved to a file at most once a second and on exit; a
restarted monitor resumes from it with the same marks.

Needs POLYSIM_TENANT_KEY (and POLYSIM_BASE_URL unless you target production).

Usage: python monitor_fleet.py ACCOUNT_ID [ACCOUNT_ID ...] [--state FILE]
       [--close-on-breach] [--seconds N]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import msgspec

from polysim_async import Client, FleetMonitor, MonitorState

_state = msgspec.json.Decoder(MonitorState)


def load_state(path: Path) -> MonitorState | None:
    """The saved state, or ``None`` on the first run."""
    return _state.decode(path.read_bytes()) if path.exists() else None


def save_state(path: Path, state: MonitorState) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(state))
    tmp.replace(path)  # atomic: a crash never leaves half a file


async def follow(monitor: FleetMonitor, state: Path) -> None:
    """Print every event but the routine samples; save the state at most once a second."""
    saved_at = time.monotonic()
    async for event in monitor:
        if event.kind != "sample":
            print(event, flush=True)  # one line: "<at> <account> <kind> <detail>"
        if time.monotonic() - saved_at >= 1.0:
            await asyncio.to_thread(save_state, state, monitor.state)
            saved_at = time.monotonic()
    print("every account is decided", flush=True)


async def main(accounts: list[str], state: Path, close: bool, seconds: float | None) -> None:
    saved = await asyncio.to_thread(load_state, state)
    async with Client() as client:  # key and URL from POLYSIM_TENANT_KEY / POLYSIM_BASE_URL
        monitor = client.partner.accounts.monitor(accounts, close_on_breach=close, state=saved)
        async with monitor:
            resumed = "" if saved is None else f", resumed {len(saved.accounts)} from {state}"
            print(
                f"monitoring {len(accounts)} accounts at {monitor.budget:g} requests/s, "
                f"none staler than {monitor.staleness:.0f}s{resumed}",
                flush=True,
            )
            try:
                await asyncio.wait_for(follow(monitor, state), seconds)
            except asyncio.TimeoutError:
                print(f"stopped after {seconds:g}s", flush=True)
            finally:  # on a stop, an error or Ctrl-C: keep what was judged
                save_state(state, monitor.state)
                stats = monitor.stats
                print(
                    f"samples={stats.samples} fills={stats.fills} breaches={stats.breaches} "
                    f"passed={stats.passed} closed={stats.closed}",
                    flush=True,
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("accounts", nargs="+", help="partner account ids")
    parser.add_argument("--state", type=Path, default=Path("monitor-state.json"))
    parser.add_argument("--close-on-breach", action="store_true", help="close breached accounts")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    args = parser.parse_args()
    asyncio.run(main(args.accounts, args.state, args.close_on_breach, args.seconds))
