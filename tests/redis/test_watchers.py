"""Two watcher processes sharing one checkpoint store on a real Redis, one SIGKILLed mid-run.

"Delivered" means handed to the consumer and acknowledged (the consumer asked
for the next fill, so the watermark was saved under the lease). Across the two
processes every fill is handed over, each process hands over each fill at most
once, and the only fill both hand over is the one the killed process had in
hand, not yet acknowledged: every fill is delivered exactly once, and at least
once counting the one in hand at the crash.

Real processes and Redis's own key expiry run on real time: the test waits for
conditions (with generous limits), never for durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import polysim_async as ps
from polysim_async._shard import select_shard
from polysim_async.models.streams import Watermark
from polysim_async.sandbox import Sandbox
from tests._helpers import open_account

from ._server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
TTL = 1.0


def handed(log: Path) -> list[tuple[str, int]]:
    if not log.exists():
        return []
    lines = log.read_text(encoding="utf-8").splitlines()
    return [(a, o) for a, o in (json.loads(line) for line in lines if line.endswith("]"))]


async def until(cond: Callable[[], object], what: str, limit: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not cond():
        assert loop.time() < end, f"never: {what}"
        await asyncio.sleep(0.05)


async def test_a_killed_watchers_accounts_are_taken_over_and_every_fill_delivered_once(
    redis_server: RedisServer, name: str, tmp_path: Path
) -> None:
    async with (
        Sandbox(seed=12, random_walk=False) as sb,
        ps.Client(sb.tenant_key, sb.url, deadline=None) as client,
        ps.RedisCheckpointStore(redis_server.url, namespace=name) as store,
        contextlib.AsyncExitStack() as stack,
    ):
        accounts: list[str] = []
        for i in range(40):  # until each shard has 3 accounts (the ids are seeded)
            if min(len(select_shard(accounts, (k, 2))) for k in range(2)) >= 3:
                break
            accounts.append(await open_account(client, f"w{i}"))
        shards = [set(select_shard(accounts, (i, 2))) for i in range(2)]
        logs = [tmp_path / "w0.log", tmp_path / "w1.log"]
        errs = [stack.enter_context((tmp_path / f"w{i}.err").open("wb")) for i in range(2)]
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.redis._watcher",
                json.dumps(
                    {
                        "redis": redis_server.url,
                        "namespace": name,
                        "server": sb.url,
                        "key": sb.tenant_key,
                        "accounts": accounts,
                        "shard": [i, 2],
                        "interval": 0.25,
                        "ttl": TTL,
                        "log": str(logs[i]),
                    }
                ),
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stderr=errs[i],
            )
            for i in range(2)
        ]
        try:
            # Every account's starting point is saved before any fill is made.
            async def started() -> bool:
                marks = [await store.get(f"fills:account:{a}", Watermark) for a in accounts]
                return all(m is not None for m in marks)

            loop = asyncio.get_running_loop()
            end = loop.time() + 60
            while not await started():
                assert loop.time() < end and all(p.returncode is None for p in procs)
                await asyncio.sleep(0.05)

            def trade_round() -> None:
                for aid in accounts:
                    sb.generate_fills(2, account_id=aid)

            # Trade until the second watcher has handed fills of its shard over, then kill it.
            while len(handed(logs[1])) < 4:
                assert loop.time() < end and all(p.returncode is None for p in procs)
                trade_round()
                await asyncio.sleep(0.1)
            procs[1].send_signal(signal.SIGKILL)
            await procs[1].wait()
            killed_at = len(handed(logs[0]))
            # Keep trading across the lease's expiry, until the survivor has handed over
            # fills of the dead watcher's accounts.
            while not {a for a, _ in handed(logs[0])[killed_at:]} & shards[1]:
                assert loop.time() < end and procs[0].returncode is None
                trade_round()
                await asyncio.sleep(0.1)
            trade_round()
            truth = {
                (item.account_id, item.trade.order_id)
                async for item in client.partner.accounts.trades_many(accounts)
            }
            await until(
                lambda: set(handed(logs[0])) | set(handed(logs[1])) >= truth,
                "every fill handed over",
            )
        finally:
            for p in procs:
                if p.returncode is None:
                    p.send_signal(signal.SIGKILL)
                    await p.wait()

    first, second = handed(logs[0]), handed(logs[1])
    assert set(first) | set(second) == truth
    # Each watcher hands a fill over once, except the fill in hand when a starved process
    # lost its own lease (at least once, as documented; logged as not acknowledged).
    for i, log in enumerate((first, second)):
        unacked = Counter(
            re.findall(r"fill of (\S+) not acknowledged", (tmp_path / f"w{i}.err").read_text())
        )
        again = Counter(log) - Counter(set(log))
        assert all(n <= unacked[account] for (account, _), n in again.items()), again
    # The only fill both handed over is the one the killed watcher had in hand.
    assert set(first) & set(second) <= {second[-1]}
    # The survivor took the dead watcher's accounts over.
    assert {a for a, _ in first[killed_at:]} & shards[1]
