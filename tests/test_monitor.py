"""``client.partner.accounts.monitor``: scheduling, verdict events, close on breach, restart,
shards, errors and clean-up, on an in-memory partner API and virtual time."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import polysim_async as ps

from ._fleet import events_until, fleet_client, kinds
from ._helpers import virtual


def falling(start: float, per_second: str) -> "ps.Any":
    rate = Decimal(per_second)
    return lambda t: (Decimal("10000.00") - rate * Decimal(max(0.0, t - start))).quantize(
        Decimal("0.01")
    )


@virtual
async def test_smoke() -> None:
    async with fleet_client() as (fleet, client):
        t0 = asyncio.get_running_loop().time()
        fleet.add("a")
        fleet.add("b")
        fleet.add("c", equity=falling(t0, "5"))  # the floor (9,000) at t0 + 200 s
        fleet.refuse_close["c"] = 2
        monitor = client.partner.accounts.monitor(["a", "b", "c"], close_on_breach=True)
        async with monitor:
            events = await events_until(monitor, lambda ev: "closed" in kinds(ev))
        for e in events:
            print(e)
        print(monitor.stats, fleet.closes, {k: len(v) for k, v in fleet.reads.items()}, fleet.polls)
