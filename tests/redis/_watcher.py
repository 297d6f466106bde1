"""One watcher process: ``watch_trades`` on a Redis checkpoint store, logging the fills handed over.

Run as ``python -m tests.redis._watcher '<json>'``. Appends one JSON line per
fill it is handed (``[account_id, order_id]``) to ``cfg["log"]``, written
straight to the file (a SIGKILL loses nothing written), and runs until killed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any, TextIO

import polysim_async as ps


async def run(cfg: dict[str, Any], log: TextIO) -> None:
    store = ps.RedisCheckpointStore(cfg["redis"], namespace=cfg["namespace"])
    async with store, ps.Client(cfg["key"], base_url=cfg["server"], deadline=None) as client:
        watch = client.partner.accounts.watch_trades(
            cfg["accounts"],
            interval=cfg["interval"],
            shard=tuple(cfg["shard"]),
            store=store,
            key="fills",
            lease_ttl=cfg["ttl"],
        )
        async with watch:
            async for item in watch:
                log.write(json.dumps([item.account_id, item.trade.order_id]) + "\n")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(relativeCreated)d %(message)s")
    config = json.loads(sys.argv[1])
    with open(config["log"], "a", buffering=1, encoding="utf-8") as out:
        asyncio.run(run(config, out))
