"""One tenant budget shared by several processes: RedisRateLimit against a budget split by hand.

For 1, 2 and 4 worker processes pulling at once from a sandbox that enforces
the tenant limits (50/s and 3,000/min), each process runs ``Client`` with
either one ``RedisRateLimit`` on a shared name, or its own in-process
``RateLimit`` with the budget divided by the number of processes. Reported:
aggregate requests/s (share of 50/s) and the 429s the processes saw. Then the
limiter's own cost: the time one ``acquire()`` takes when the budget has room
(one round trip to a loopback Redis), against the in-process limiter.

A fresh sandbox serves each run, so no run inherits another's minute window.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import time
import uuid
from typing import Any

from benchmarks._common import Row
from benchmarks._server import ServerInfo, sandbox_process

NAME = "redis_limiter"
PROCESSES = (1, 2, 4)


async def _worker(info: ServerInfo, limit: Any, requests: int) -> dict[str, float]:
    from polysim_async import Client, PolySimError

    errors = 0
    async with Client(info.tenant_key, info.url, rate_limit=limit, deadline=None) as client:
        todo = iter(range(requests))

        async def task() -> None:
            nonlocal errors
            for _ in todo:
                try:
                    await client.partner.accounts.get(info.accounts[0])
                except PolySimError:
                    errors += 1

        start = time.time()
        await asyncio.gather(*(task() for _ in range(8)))
        end = time.time()
        return {
            "start": start,
            "end": end,
            "throttled": client.stats.retries["rate_limit"],
            "errors": errors,
            "late": getattr(getattr(limit, "stats", None), "late", 0),
        }


def _child(info: ServerInfo, kind: str, redis_url: str, name: str, n: int, requests: int) -> Any:
    from polysim_async import RateLimit, RedisRateLimit

    limit: Any
    if kind == "redis":
        limit = RedisRateLimit(redis_url, name=name, expected_workers=n)
    else:
        limit = RateLimit(per_second=50 // n, per_minute=3000 // n)
    return asyncio.run(_worker(info, limit, requests))


def _round(info: ServerInfo, kind: str, redis_url: str, n: int, requests: int) -> dict[str, float]:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    with mp.get_context("spawn").Pool(n) as pool:
        results = pool.starmap(
            _child, [(info, kind, redis_url, name, n, requests)] * n, chunksize=1
        )
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {
        "rate": n * requests / seconds,
        "seconds": seconds,
        "throttled": sum(r["throttled"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "late": sum(r["late"] for r in results),
    }


async def _latency(redis_url: str, calls: int) -> tuple[list[float], list[float]]:
    from polysim_async import RateLimit, RedisRateLimit
    from polysim_async._clock import SYSTEM_CLOCK
    from polysim_async.redis._limiter import _local_limiter

    big = {"per_second": 10**6, "per_minute": 10**8}
    shared = RedisRateLimit(redis_url, name=f"bench-{uuid.uuid4().hex[:8]}", **big)
    local = _local_limiter(RateLimit(**big), SYSTEM_CLOCK)
    timings: tuple[list[float], list[float]] = ([], [])
    await shared.acquire()  # connect and load the script first
    for _ in range(calls):  # interleaved, so load on the machine hits both alike
        for limiter, out in ((shared, timings[0]), (local, timings[1])):
            t0 = time.perf_counter()
            await limiter.acquire()
            out.append(time.perf_counter() - t0)
    await shared.aclose()
    return timings


def run(*, quick: bool = False) -> list[Row]:
    """Aggregate rate and 429s for 1, 2, 4 processes, then the per-call cost."""
    from tests.redis._server import RedisServer

    per_process = 30 if quick else 1000
    server = RedisServer()
    server.start()
    rows: list[Row] = []
    try:
        for n in PROCESSES:
            for kind, label in (("redis", "RedisRateLimit shared"), ("split", "budget split")):
                with sandbox_process(accounts=1, fills_per_account=0, rate_limits=True) as info:
                    r = _round(info, kind, server.url, n, per_process)
                share = r["rate"] / 50
                rows.append(
                    Row(
                        NAME,
                        f"{n} proc x {per_process}: {label}"
                        + ("" if kind == "redis" else f" ({50 // n}/s each)"),
                        f"{r['rate']:.1f} req/s",
                        f"{share:.0%} of 50/s",
                        note=f"{int(r['throttled'])} 429s, {int(r['errors'])} errors,"
                        f" {r['seconds']:.1f} s"
                        + (f", {int(r['late'])} late turns retaken" if kind == "redis" else ""),
                        target=">= 90%, 0 429s" if kind == "redis" else "(baseline)",
                        met=(share >= 0.9 and r["throttled"] == 0) if kind == "redis" else None,
                    )
                )
        shared, local = asyncio.run(_latency(server.url, 200 if quick else 5000))
    finally:
        server.close()
    med_shared, med_local = statistics.median(shared), statistics.median(local)
    p99 = sorted(shared)[int(len(shared) * 0.99)]
    rows.append(
        Row(
            NAME,
            "acquire() cost, budget has room",
            f"{med_shared * 1e3:.3f} ms median",
            f"{med_shared / med_local:.0f}x in-process ({med_local * 1e6:.1f} us)",
            note=f"p99 {p99 * 1e3:.3f} ms, {len(shared)} calls, loopback Redis",
            target="<= 1 ms median",
            met=med_shared <= 0.001,
        )
    )
    return rows
