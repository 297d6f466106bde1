"""Sandbox: pages of 500 fills served per second, and independence from the account's size.

The sandbox runs in a separate process with two accounts, 10,000 and 1,000,000 fills.
A bare aiohttp client (no decoding beyond finding ``next_cursor``) walks pages of 500:
the first 20 pages of each account (per-page time must not grow with the account),
then every page of the 1,000,000-fill account (target: at least 1,500 pages/s, so the
sandbox is never the bottleneck of the client's benchmarks).
"""

from __future__ import annotations

import asyncio
import re
import time

from ._common import Row
from ._server import ServerInfo, sandbox_available, sandbox_process

__all__ = ["run"]

NAME = "sandbox"
_CURSOR = re.compile(rb'"next_cursor"\s*:\s*(?:"([^"]*)"|null)')


async def walk(info: ServerInfo, account_id: str, max_pages: int | None) -> tuple[int, float]:
    """Walk pages of 500 with one connection; return (pages, seconds)."""
    import aiohttp

    url = f"{info.url}/v1/partner/accounts/{account_id}/trades"
    async with aiohttp.ClientSession(headers={"X-API-Key": info.tenant_key}) as session:
        pages, cursor = 0, None
        start = time.perf_counter()
        while max_pages is None or pages < max_pages:
            params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
            async with session.get(url, params=params) as resp:
                body = await resp.read()
            pages += 1
            match = _CURSOR.search(body[-400:]) or _CURSOR.search(body)
            cursor = match.group(1).decode() if match and match.group(1) else None
            if not cursor:
                break
        return pages, time.perf_counter() - start


def run(*, quick: bool = False) -> list[Row]:
    """Measure the sandbox's page rate against a client in this process."""
    if not sandbox_available():
        return [Row(NAME, "did not run", "-", note="polysim_async.sandbox is not available")]
    big = 100_000 if quick else 1_000_000
    sizes = [10_000, big]
    with sandbox_process(accounts=2, fills_per_account=sizes, rate_limits=False) as info:
        small_id, big_id = info.accounts
        per_page = {}
        for name, aid in (("small", small_id), ("big", big_id)):
            best = min(asyncio.run(walk(info, aid, 20))[1] for _ in range(5))
            per_page[name] = best / 20
        pages, secs = asyncio.run(walk(info, big_id, None))
    rate = pages / secs
    growth = per_page["big"] / per_page["small"]
    return [
        Row(
            NAME,
            f"every page of a {big:,}-fill account",
            f"{rate:,.0f} pages/s",
            note=f"{pages} pages of 500 in {secs:.2f} s, one connection",
        ),
        Row(
            NAME,
            "target: pages of 500 per second",
            f"{rate:,.0f}",
            target=">= 1,500",
            met=rate >= 1500,
        ),
        Row(
            NAME,
            f"per-page time, {big:,} vs 10,000 fills",
            f"{growth:.2f}x",
            target="~1x (an index, not a scan)",
            met=growth < 1.5,
            note=f"{per_page['big'] * 1e3:.3f} ms vs {per_page['small'] * 1e3:.3f} ms",
        ),
    ]
