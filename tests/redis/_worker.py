"""One worker process: ``clients`` clients, each with its own RedisRateLimit on one budget.

Run as ``python -m tests.redis._worker '<json>'``; prints one JSON line of results.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import polysim_async as ps


async def run(cfg: dict[str, Any]) -> dict[str, Any]:
    failures: list[str] = []
    retries = 0
    all_retries = 0

    async def one_client() -> None:
        nonlocal retries, all_retries
        limit = ps.RedisRateLimit(
            cfg["redis"],
            name=cfg["name"],
            per_second=cfg["per_second"],
            per_minute=cfg["per_minute"],
        )
        async with ps.Client(
            "tk_live_worker", base_url=cfg["server"], rate_limit=limit, deadline=None
        ) as client:
            queue = iter(range(cfg["requests"]))

            async def task() -> None:
                for _ in queue:
                    try:
                        await client.partner.accounts.get("0b1d8e2a-3c4f-5a6b-7c8d-9e0f1a2b3c4d")
                    except ps.PolySimError as exc:
                        failures.append(repr(exc))

            await asyncio.gather(*(task() for _ in range(cfg["concurrency"])))
            retries += client.stats.retries["rate_limit"]
            all_retries += sum(client.stats.retries.values())

    await asyncio.gather(*(one_client() for _ in range(cfg["clients"])))
    return {"failures": failures, "rate_limit_retries": retries, "retries": all_retries}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(json.loads(sys.argv[1])))))
