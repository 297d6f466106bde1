"""Several worker processes on one tenant budget and one set of checkpoints, on Redis.

The server limits a tenant as a whole (50 requests/s and 3,000/min). Every worker
here is a separate process (in production: your Kubernetes replicas, Celery or arq
workers) built from the same three pieces:

* ``RedisRateLimit(url, name=...)``: one budget shared by every process that uses
  the same Redis and name, so together they stay inside the tenant's limits;
* ``shard=(i, n)``: worker ``i`` handles only its share of the accounts (a stable
  hash of the id, the same in every process), so no two workers do the same work;
* ``RedisCheckpointStore``: where the watch keeps each account's watermark, under
  a lease, so a worker that dies has its accounts taken over by another one.

Each worker pulls every fill of its shard (``trades_many``), then watches its
shard for new fills for ``--watch`` seconds, and reports its request count and
429s; this script prints them and the aggregate rate.

Needs Redis (``pip install "polysim-async[redis]"``) and POLYSIM_TENANT_KEY
(and POLYSIM_BASE_URL unless you target production).

Usage: python multi_worker.py --redis redis://localhost:6379/0 --workers 4 ACCOUNT_ID [...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import Any

from polysim_async import Client, RedisCheckpointStore, RedisRateLimit

BUDGET = "multi-worker-example"


async def watch(client: Client, store: RedisCheckpointStore, args: Any) -> int:
    """Count the new fills of this worker's shard for ``args.watch`` seconds."""
    seen = 0
    trades = client.partner.accounts.watch_trades(
        args.accounts,
        interval=args.interval,
        shard=(args.worker, args.workers),
        store=store,
        key=BUDGET,
    )

    async def consume() -> None:
        nonlocal seen
        async with trades:
            async for _account_id, _trade in trades:
                seen += 1  # your handling here: it is acknowledged when you ask for the next

    # Stopping by timeout leaves the fill in hand (if any) unacknowledged: the next
    # run delivers it again.
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(consume(), args.watch)
    return seen


async def worker(args: Any) -> dict[str, Any]:
    """One worker process: pull its shard, then watch it; return what it did."""
    limit = RedisRateLimit(args.redis, name=BUDGET, expected_workers=args.workers)
    started = time.time()
    async with (
        limit,
        RedisCheckpointStore(args.redis, namespace=BUDGET) as store,
        Client(rate_limit=limit) as client,
    ):
        pulled = 0
        items = client.partner.accounts.trades_many(
            args.accounts, page_size=args.page_size, shard=(args.worker, args.workers)
        )
        async for _account_id, _trade in items:
            pulled += 1
        watched = await watch(client, store, args) if args.watch > 0 else 0
        return {
            "worker": args.worker,
            "requests": client.stats.attempts,
            "rate_limited": client.stats.retries["rate_limit"],
            "pulled": pulled,
            "watched": watched,
            "start": started,
            "end": time.time(),
        }


async def launch(args: Any) -> list[dict[str, Any]]:
    """Start ``args.workers`` copies of this script as worker processes; collect their reports."""
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, *sys.argv, "--worker", str(i), stdout=asyncio.subprocess.PIPE
        )
        for i in range(args.workers)
    ]
    reports = []
    for proc in procs:
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"a worker failed (exit status {proc.returncode})")
        reports.append(json.loads(out))
    return reports


def show(reports: list[dict[str, Any]]) -> None:
    for r in reports:
        print(
            f"worker {r['worker']}: {r['requests']} requests, {r['rate_limited']} 429s, "
            f"{r['pulled']} fills pulled, {r['watched']} new fills watched"
        )
    span = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    requests = sum(r["requests"] for r in reports)
    print(
        f"aggregate: {requests} requests in {span:.2f} s = {requests / span:.1f} req/s, "
        f"{sum(r['rate_limited'] for r in reports)} 429s, "
        f"{sum(r['pulled'] for r in reports)} fills pulled"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("accounts", nargs="+", metavar="ACCOUNT_ID")
    parser.add_argument("--redis", required=True, help="a Redis URL shared by the workers")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--watch", type=float, default=5.0, help="seconds to watch; 0: skip")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is None:
        show(asyncio.run(launch(args)))
    else:
        print(json.dumps(asyncio.run(worker(args))))
