"""Bulk pull: every fill of one account from the sandbox over loopback, rate limits off.

The sandbox runs in a separate process (``_server``), so its CPU does not share
the client's event loop. Variants, each pulling the same pages (limit=500):

* ``polysim-async``: ``async for trade in client.partner.accounts.trades(id)``
  (typed fills, page pipelining).
* ``requests loop (seed)``: ``all_trades()`` from the partner quickstart seed.
* ``httpx.AsyncClient + .json()``: the official SDK's transport stack, same loop.
* ``aiohttp raw bytes (floor)``: the same requests reading bodies as bytes, the
  cursor found by a byte search, no decoding.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from ._common import Row, rate
from ._server import ServerInfo, sandbox_process

__all__ = ["run"]

NAME = "bulk pull"
_CURSOR = re.compile(rb'"next_cursor"\s*:\s*(?:"([^"]*)"|null)')


def seed_requests_loop(info: ServerInfo, account_id: str) -> int:
    """The seed's ``all_trades`` (partner-quickstart), verbatim apart from the names."""
    import requests

    base = info.url
    h = {"X-API-Key": info.tenant_key, "Content-Type": "application/json"}
    with requests.Session() as session:  # the seed uses module-level requests.get;
        # a Session keeps the connection alive, which only helps the baseline.
        cursor, out = None, []
        while True:
            params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = session.get(
                f"{base}/v1/partner/accounts/{account_id}/trades", headers=h, params=params
            ).json()
            out.extend(page["data"])
            cursor = page["next_cursor"]
            if not cursor:
                return len(out)


async def httpx_loop(info: ServerInfo, account_id: str) -> int:
    import httpx

    h = {"X-API-Key": info.tenant_key}
    out: list[Any] = []
    async with httpx.AsyncClient(base_url=info.url, headers=h) as client:
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            resp = await client.get(f"/v1/partner/accounts/{account_id}/trades", params=params)
            page = resp.json()
            out.extend(page["data"])
            cursor = page["next_cursor"]
            if not cursor:
                return len(out)


async def aiohttp_floor(info: ServerInfo, account_id: str) -> int:
    import aiohttp

    pages = 0
    async with aiohttp.ClientSession(headers={"X-API-Key": info.tenant_key}) as session:
        cursor: str | None = None
        url = f"{info.url}/v1/partner/accounts/{account_id}/trades"
        while True:
            params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
            async with session.get(url, params=params) as resp:
                body = await resp.read()
            pages += 1
            tail = body[-400:]
            match = _CURSOR.search(tail) or _CURSOR.search(body)
            cursor = match.group(1).decode() if match and match.group(1) else None
            if not cursor:
                return pages


async def polysim(info: ServerInfo, account_id: str) -> int:
    from polysim_async import Client

    n = 0
    async with Client(info.tenant_key, info.url, rate_limit=None) as client:
        async for _trade in client.partner.accounts.trades(account_id):
            n += 1
    return n


def run(*, quick: bool = False) -> list[Row]:
    """Run the bulk-pull benchmark against a sandbox in another process."""
    fills = 20_000 if quick else 200_000
    rounds = 1 if quick else 3
    with sandbox_process(accounts=1, fills_per_account=fills, rate_limits=False) as info:
        aid = info.accounts[0]
        variants: dict[str, Any] = {
            "polysim-async": lambda: asyncio.run(polysim(info, aid)),
            "requests loop (seed)": lambda: seed_requests_loop(info, aid),
            "httpx.AsyncClient + .json()": lambda: asyncio.run(httpx_loop(info, aid)),
            "aiohttp raw bytes (floor)": lambda: asyncio.run(aiohttp_floor(info, aid)),
        }
        best = dict.fromkeys(variants, float("inf"))
        for _ in range(rounds):
            for name, fn in variants.items():
                start = time.perf_counter()
                got = fn()
                elapsed = time.perf_counter() - start
                expected = fills if name != "aiohttp raw bytes (floor)" else -(-fills // 500)
                if got < expected:
                    raise RuntimeError(f"{name} pulled {got}, expected {expected}")
                best[name] = min(best[name], elapsed)
    ours = best["polysim-async"]
    rows = []
    for name, secs in best.items():
        ratio = "1.00x (reference)" if name == "polysim-async" else f"{secs / ours:.2f}x ours' time"
        rows.append(Row(NAME, name, rate(fills, secs) + " fills", ratio, note=f"{secs:.2f} s"))
    vs_httpx = best["httpx.AsyncClient + .json()"] / ours
    of_floor = best["aiohttp raw bytes (floor)"] / ours
    rows.append(
        Row(NAME, "target: vs httpx+json", f"{vs_httpx:.2f}x", target=">= 4x", met=vs_httpx >= 4)
    )
    rows.append(
        Row(
            NAME,
            "target: share of raw-bytes floor",
            f"{of_floor:.0%}",
            target=">= 70%",
            met=of_floor >= 0.7,
        )
    )
    return rows
