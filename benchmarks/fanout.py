"""Fan-out: 100 accounts pulled at once under the documented partner limits.

The sandbox enforces 50/s and 3,000/min (API.md §7.1); the client uses the same
budget (its default). Reported: requests/s achieved against the 50/s budget, 429s
the server answered, and errors surfaced to the caller. About 25 s long.
"""

from __future__ import annotations

import asyncio
import time

from ._common import Row
from ._server import ServerInfo, sandbox_process

__all__ = ["run"]

NAME = "fan-out"


async def _pull(info: ServerInfo, page_size: int, concurrency: int) -> dict[str, float]:
    from polysim_async import Client, FanOutError

    fills = 0
    errors = 0
    async with Client(info.tenant_key, info.url) as client:
        start = time.perf_counter()
        try:
            async for _aid, _trade in client.partner.accounts.trades_many(
                info.accounts, concurrency=concurrency, page_size=page_size, on_error="continue"
            ):
                fills += 1
        except FanOutError as exc:
            errors = len(exc.failures)
        elapsed = time.perf_counter() - start
        return {
            "fills": fills,
            "seconds": elapsed,
            "requests": client.stats.attempts,
            "throttled": client.stats.retries["rate_limit"],
            "errors": errors,
        }


def run(*, quick: bool = False) -> list[Row]:
    """Pull every account through ``trades_many`` against a rate-limited sandbox."""
    accounts = 10 if quick else 100
    per_account = 200 if quick else 1_150
    page_size = 100
    with sandbox_process(
        accounts=accounts, fills_per_account=per_account, rate_limits=True
    ) as info:
        r = asyncio.run(_pull(info, page_size, concurrency=8))
    achieved = r["requests"] / r["seconds"]
    share = achieved / 50
    return [
        Row(
            NAME,
            f"{accounts} accounts x {per_account} fills, page {page_size}, concurrency 8",
            f"{achieved:.1f} req/s",
            f"{share:.0%} of 50/s",
            note=f"{int(r['requests'])} requests in {r['seconds']:.1f} s, {int(r['fills'])} fills",
            target=">= 90%",
            met=share >= 0.9,
        ),
        Row(NAME, "429s seen", str(int(r["throttled"])), target="(report)"),
        Row(NAME, "errors surfaced", str(int(r["errors"])), target="0", met=r["errors"] == 0),
    ]
