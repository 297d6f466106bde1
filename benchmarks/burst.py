"""Rate limiter under bursts: 429s when the client and the sandbox share one event loop.

The sandbox enforces the partner limits (50/s and 3,000/min, sliding windows) and
counts a request when its handler runs, which on a shared event loop can be long
after the client sent it. Each round gathers 150 registrations and 150 account
creations at once with the client's default settings (``rate_limit="auto"``), then
the same with a busy loop (a task burning 20 ms of CPU every 50 ms, as a loaded
service would). Reported: 429s the client had to retry (the target is none) and the
achieved rate against the 50/s budget, per ``RateLimit.margin``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ._common import Row

__all__ = ["run"]

NAME = "limiter burst"


async def _busy(stop: asyncio.Event) -> None:
    while not stop.is_set():
        end = time.perf_counter() + 0.02
        while time.perf_counter() < end:
            pass
        await asyncio.sleep(0.05)


async def _round(margin: float | None, busy: bool, calls: int) -> tuple[int, float]:
    from polysim_async import Client, RateLimit
    from polysim_async.sandbox import Sandbox

    options: dict[str, Any] = {}
    if margin is not None:
        options["rate_limit"] = RateLimit(margin=margin)
    stop = asyncio.Event()
    async with Sandbox(seed=1) as sb, Client(sb.tenant_key, sb.url, **options) as client:
        owner = await client.partner.users.register("owner", "owner@example.com")
        burner = asyncio.create_task(_busy(stop)) if busy else None
        start = time.perf_counter()
        await asyncio.gather(
            *(client.partner.users.register(f"u{i}", f"u{i}@x.io") for i in range(calls)),
            *(
                client.partner.accounts.create(
                    user_id=owner.user_id,
                    external_id=f"a{i}",
                    stage="demo",
                    starting_balance="100",
                )
                for i in range(calls)
            ),
        )
        elapsed = time.perf_counter() - start
        stop.set()
        if burner is not None:
            await burner
        return client.stats.retries["rate_limit"], 2 * calls / elapsed


def run(*, quick: bool = False) -> list[Row]:
    """Bursts of 300 calls (30 with ``quick``) at several margins, idle and busy loop."""
    calls = 15 if quick else 150
    rounds = 1 if quick else 3
    rows = []
    for margin in (None, 0.0, 0.1):
        for busy in (False, True):
            results = [asyncio.run(_round(margin, busy, calls)) for _ in range(rounds)]
            retried = sum(r[0] for r in results)
            rate = min(r[1] for r in results), max(r[1] for r in results)
            label = "default (0.05 s)" if margin is None else f"{margin:.2f} s"
            rows.append(
                Row(
                    NAME,
                    f"margin {label}, {'busy' if busy else 'idle'} loop",
                    f"{retried} 429s in {rounds} x {2 * calls} calls",
                    f"{rate[0] / 50:.0%}-{rate[1] / 50:.0%} of 50/s",
                    target="0 429s",
                    met=retried == 0,
                )
            )
    return rows
