"""Stream: fills/s through ``client.executions.stream()`` from the sandbox, and delivery latency.

The sandbox runs in a separate process. Fills are pushed with the control API
(``POST /_sandbox/fills`` with ``push: true``) to the default trader's sockets.

* Throughput: one burst of N pushed fills; the time from the control call to the
  last fill delivered by ``async for``. The floor is a bare aiohttp WebSocket
  reading the same frames with no decoding, deduplication or queueing.
* Latency: many small bursts (2 fills, one BUY/SELL round trip), each timed from
  just before its control call to each fill's delivery, so it includes the
  control request itself: an upper bound on the stream's own latency.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from ._common import Row, rate
from ._server import ServerInfo, sandbox_available, sandbox_process

__all__ = ["run"]

NAME = "stream"


async def _push(session: Any, info: ServerInfo, count: int) -> None:
    async with session.post(
        f"{info.url}/_sandbox/fills", json={"count": count, "push": True}
    ) as resp:
        resp.raise_for_status()
        await resp.read()


async def ours_throughput(info: ServerInfo, count: int) -> float:
    import aiohttp

    from polysim_async import Client

    key = info.extra["api_key"]
    async with (
        aiohttp.ClientSession() as control,
        Client(key, info.url, rate_limit=None) as client,
        client.executions.stream() as fills,
    ):
        got = 0
        start = time.perf_counter()
        pusher = asyncio.create_task(_push(control, info, count))
        async for _fill in fills:
            got += 1
            if got == count:
                break
        elapsed = time.perf_counter() - start
        await pusher
    return elapsed


async def floor_throughput(info: ServerInfo, count: int) -> float:
    import aiohttp

    key = info.extra["api_key"]
    async with aiohttp.ClientSession(headers={"X-API-Key": key}) as session:
        async with session.post(f"{info.url}/v1/keys/ws-token") as resp:
            token = (await resp.json())["token"]
        ws_url = "ws" + info.url[4:] + f"/v1/ws/executions?token={token}"
        async with session.ws_connect(ws_url) as ws:
            await ws.receive()  # the "connected" greeting
            got = 0
            start = time.perf_counter()
            pusher = asyncio.create_task(_push(session, info, count))
            while got < count:
                msg = await ws.receive()
                if b'"fill"' in (msg.data if isinstance(msg.data, bytes) else msg.data.encode()):
                    got += 1
            elapsed = time.perf_counter() - start
            await pusher
    return elapsed


async def ours_latency(info: ServerInfo, bursts: int) -> list[float]:
    import aiohttp

    from polysim_async import Client

    key = info.extra["api_key"]
    latencies: list[float] = []
    async with (
        aiohttp.ClientSession() as control,
        Client(key, info.url, rate_limit=None) as client,
        client.executions.stream() as fills,
    ):
        it = fills.__aiter__()
        for _ in range(bursts):
            sent = time.perf_counter()
            pusher = asyncio.create_task(_push(control, info, 2))
            for _ in range(2):
                await it.__anext__()
                latencies.append(time.perf_counter() - sent)
            await pusher
    return latencies


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run(*, quick: bool = False) -> list[Row]:
    """Measure the execution stream against the sandbox in another process."""
    if not sandbox_available():
        return [Row(NAME, "did not run", "-", note="polysim_async.sandbox is not available")]
    count = 20_000 if quick else 200_000
    bursts = 200 if quick else 2_000
    rounds = 1 if quick else 3
    with sandbox_process(accounts=0, fills_per_account=0, rate_limits=False) as info:
        best = {"ours": float("inf"), "floor": float("inf")}
        for _ in range(rounds):
            best["ours"] = min(best["ours"], asyncio.run(ours_throughput(info, count)))
            best["floor"] = min(best["floor"], asyncio.run(floor_throughput(info, count)))
        latencies = asyncio.run(ours_latency(info, bursts))
    ours_rate = count / best["ours"]
    p50, p99 = _pct(latencies, 50) * 1000, _pct(latencies, 99) * 1000
    return [
        Row(
            NAME,
            "client.executions.stream()",
            rate(count, best["ours"]) + " fills",
            "1.00x (reference)",
            note=f"{count} pushed fills in {best['ours']:.2f} s",
        ),
        Row(
            NAME,
            "aiohttp WebSocket, no decoding (floor)",
            rate(count, best["floor"]) + " fills",
            f"ours at {best['floor'] / best['ours']:.0%} of it",
        ),
        Row(
            NAME,
            "target: throughput",
            f"{ours_rate:,.0f} fills/s",
            target=">= 50,000/s",
            met=ours_rate >= 50_000,
        ),
        Row(
            NAME,
            "target: p99 delivery latency",
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms",
            target="p99 <= 5 ms",
            met=p99 <= 5.0,
            note=f"{len(latencies)} fills in bursts of 2, timed from before the control call",
        ),
    ]
