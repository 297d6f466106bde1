"""Sandbox start-up: the cost of a fresh sandbox per test (target: under 50 ms in-process).

Each round starts a server on a loopback port, optionally answers one request over
a kept-alive client connection (so stopping has an open connection to close), and
stops it. Baseline, measured in the same run: a bare ``aiohttp.web`` application
with one route, started and stopped the same way. Variants are interleaved round
by round and each keeps its median.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from ._common import Row

__all__ = ["run"]

NAME = "sandbox start/stop"
TARGET_MS = 50.0


async def _bare(request: bool) -> None:
    import aiohttp
    from aiohttp import web

    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/v1/health", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    if request:
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/v1/health") as resp:
                await resp.read()
            await runner.cleanup()
    else:
        await runner.cleanup()


async def _sandbox(request: bool) -> None:
    import aiohttp

    from polysim_async.sandbox import Sandbox

    sb = Sandbox(seed=0, frozen_clock=True)
    await sb.start()
    if request:
        async with aiohttp.ClientSession() as http:
            async with http.get(
                sb.url + "/v1/account/balance", headers={"X-API-Key": sb.api_key}
            ) as r:
                await r.read()
            await sb.aclose()
    else:
        await sb.aclose()


async def _rounds(
    variants: dict[str, Callable[[], Awaitable[None]]], rounds: int
) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():  # warm up imports and code paths
        await fn()
    for _ in range(rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            await fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def run(*, quick: bool = False) -> list[Row]:
    """Median start-to-stop time of a sandbox against a bare aiohttp app."""
    variants: dict[str, Callable[[], Awaitable[None]]] = {
        "bare aiohttp app (baseline)": lambda: _bare(False),
        "Sandbox()": lambda: _sandbox(False),
        "bare aiohttp app + 1 request": lambda: _bare(True),
        "Sandbox() + 1 request": lambda: _sandbox(True),
    }
    med = asyncio.run(_rounds(variants, 20 if quick else 200))
    rows = []
    for name, seconds in med.items():
        base = (
            "bare aiohttp app + 1 request" if "request" in name else "bare aiohttp app (baseline)"
        )
        is_sandbox = name.startswith("Sandbox")
        rows.append(
            Row(
                NAME,
                name,
                f"{seconds * 1e3:.2f} ms",
                ratio=f"{seconds / med[base]:.2f}x" if is_sandbox else "1.00x",
                target=f"< {TARGET_MS:.0f} ms" if is_sandbox else "",
                met=seconds * 1e3 < TARGET_MS if is_sandbox else None,
                note="median of start, (request,) stop",
            )
        )
    return rows
