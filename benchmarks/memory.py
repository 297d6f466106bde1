"""Memory: peak RSS while streaming 1,000,000 fills with ``async for``.

Measured in a fresh subprocess: its RSS just before the walk is the baseline,
the kernel's peak-RSS mark is reset there (``/proc/self/clear_refs``), and the
peak after the walk is compared with it. The sandbox runs in yet another process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ._common import Row
from ._server import sandbox_process

__all__ = ["run"]

NAME = "memory"

_CHILD = r"""
import asyncio, json, sys, time

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)

async def main(url, key, account):
    from polysim_async import Client
    async with Client(key, url, rate_limit=None) as client:
        # Warm up (session, decoders, first pages), then take the baseline.
        async for _ in client.partner.accounts.trades(account, page_size=10):
            break
        import gc; gc.collect()
        baseline = status("VmRSS")
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS
            reset = True
        except OSError:
            reset = False
        n = 0
        start = time.perf_counter()
        async for _trade in client.partner.accounts.trades(account):
            n += 1
        elapsed = time.perf_counter() - start
        peak = status("VmHWM")
    print(json.dumps({"baseline": baseline, "peak": peak, "fills": n, "reset": reset,
                      "seconds": elapsed}))

asyncio.run(main(*sys.argv[1:4]))
"""


def run(*, quick: bool = False) -> list[Row]:
    """Stream the fills in a subprocess and report peak RSS above its baseline."""
    fills = 50_000 if quick else 1_000_000
    with sandbox_process(accounts=1, fills_per_account=fills, rate_limits=False) as info:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, info.url, info.tenant_key, info.accounts[0]],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
            timeout=900,
        )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["fills"] != fills:
        raise RuntimeError(f"streamed {result['fills']} fills, expected {fills}")
    grown = (result["peak"] - result["baseline"]) / 2**20
    note = f"baseline RSS {result['baseline'] / 2**20:.1f} MB; {fills:,} fills"
    if not result["reset"]:
        note += "; peak mark not resettable: includes start-up"
    return [
        Row(
            NAME,
            f"peak RSS above baseline, {fills:,} fills",
            f"{grown:.1f} MB",
            note=note,
            target="<= 50 MB",
            met=grown <= 50,
        )
    ]
