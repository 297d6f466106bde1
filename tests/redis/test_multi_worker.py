"""examples/multi_worker.py: two worker processes on one Redis budget against the sandbox
(50/s + 3,000/min per tenant). Safety only: every fill pulled exactly once across the
shards, and the workers together never sent more than the budget allows."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import polysim_async as ps
from polysim_async.sandbox import Sandbox
from tests._helpers import open_account

from ._server import RedisServer

ROOT = Path(__file__).resolve().parents[2]


async def test_multi_worker_example_keeps_the_shared_budget(redis_server: RedisServer) -> None:
    async with (
        Sandbox(seed=21, random_walk=False) as sb,
        ps.Client(sb.tenant_key, sb.url) as client,
    ):
        ids = []
        for i in range(6):
            ids.append(await open_account(client, f"m{i}"))
            sb.generate_fills(150, account_id=ids[-1])
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "examples" / "multi_worker.py"),
            "--redis",
            redis_server.url,
            "--workers",
            "2",
            "--page-size",
            "10",
            "--watch",
            "0.5",
            *ids,
            env={**os.environ, "POLYSIM_BASE_URL": sb.url, "POLYSIM_TENANT_KEY": sb.tenant_key},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    text = out.decode()
    assert proc.returncode == 0, text
    workers = re.findall(r"worker (\d): (\d+) requests, (\d+) 429s, (\d+) fills pulled", text)
    assert sorted(w[0] for w in workers) == ["0", "1"], text
    found = re.search(
        r"aggregate: (\d+) requests in ([\d.]+) s = ([\d.]+) req/s, (\d+) 429s, (\d+) fills", text
    )
    assert found, text
    requests, span = int(found[1]), float(found[2])
    # Every fill once across the two shards (each account is in exactly one).
    assert int(found[5]) == 6 * 150 == sum(int(w[3]) for w in workers)
    # The aggregate is the sum of what each worker counted. Each account's 150 fills take
    # at least 15 pages of 10 (the walk may end on the 15th page, or ask a 16th, empty
    # one); the watch's polls come on top, as many as the machine's speed allows (none
    # on a slow one).
    assert requests == sum(int(w[1]) for w in workers)
    assert requests >= 6 * 15
    # Together within the tenant's budget: at most 50 in any second (so 50 per
    # started second of the run) and 3,000 a minute, whatever the machine's speed.
    assert requests <= 50 * (span + 1)
