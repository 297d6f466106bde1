"""``trades_many(shard=(i, n))`` against the sandbox: the shards cover each account once."""

from __future__ import annotations

import pytest

import polysim_async as ps
from polysim_async._shard import select_shard
from polysim_async.sandbox import Sandbox

from ._helpers import SkipClock, open_account


@pytest.mark.parametrize("count", [1, 2, 3])
async def test_trades_many_shards_cover_every_account_exactly_once(count: int) -> None:
    async with (
        Sandbox(seed=4, frozen_clock=True, random_walk=False) as sb,
        ps.Client(sb.tenant_key, sb.url, clock=SkipClock()) as client,
    ):
        ids = []
        for i in range(9):
            ids.append(await open_account(client, f"s{i}"))
            sb.generate_fills(2 + 2 * i, account_id=ids[-1])
        got: list[list[tuple[str, int]]] = []
        for index in range(count):
            items = client.partner.accounts.trades_many(ids, shard=(index, count))
            got.append([(a, t.order_id) async for a, t in items])
        every = [(a, t.order_id) async for a, t in client.partner.accounts.trades_many(ids)]
    for index, pulled in enumerate(got):
        assert {a for a, _ in pulled} == set(select_shard(ids, (index, count)))
    merged = [item for pulled in got for item in pulled]
    assert len(merged) == len(set(merged)) and set(merged) == set(every)
    assert len(every) == sum(2 + 2 * i for i in range(9))


async def test_a_bad_shard_is_refused_at_once() -> None:
    client = ps.Client("tk_x", "https://api.test")
    with pytest.raises(ps.InvalidArgumentError, match="shard"):
        client.partner.accounts.trades_many(["a"], shard=(1, 1))
