"""The fleet monitor against the sandbox over real sockets: 500 accounts, a few driven into a
breach by moving prices, each found and closed, nothing else closed, no 429 surfacing."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import polysim_async as ps
from polysim_async.sandbox import Sandbox

from ._helpers import SkipClock

FLEET = 500


async def test_500_accounts_the_breached_ones_are_found_and_closed_and_nothing_else() -> None:
    clock = SkipClock()  # pacing and limiter waits skip ahead; the sandbox counts on it too
    start = datetime.fromtimestamp(clock.wall(), timezone.utc)
    async with (
        Sandbox(seed=10, start=start, random_walk=False, rate_clock=clock) as sb,
        ps.Client(sb.tenant_key, sb.url, clock=clock) as client,
    ):
        moved, steady = sb.market_ids[0], sb.market_ids[1]
        sb.set_price(moved, "0.50")
        sb.set_price(steady, "0.50")
        user = await client.partner.users.register("fleet-owner", "fleet@example.com")
        rules = ps.RuleSet(max_drawdown_pct=Decimal(10), daily_loss_pct=Decimal(20))

        async def create(i: int) -> str:
            account = await client.partner.accounts.create(
                user_id=user.user_id,
                external_id=f"fleet-{i}",
                stage="challenge",
                starting_balance="10000.00",
                rules=rules,
            )
            return account.account_id

        ids = [await create(i) for i in range(FLEET)]  # one at a time: the skip clock is shared
        doomed = ids[7], ids[222], ids[431]
        survivor = ids[100]  # holds the moved market too, too little to breach
        for aid in doomed:  # 8,000 shares at 0.50: at 0.30 equity is 8,400 < the 9,000 floor
            await sb.place_order(
                account_id=aid, market_id=moved, side="BUY", outcome="Yes",
                order_type="market", amount="4000", price="0.60",
            )  # fmt: skip
        await sb.place_order(
            account_id=survivor, market_id=moved, side="BUY", outcome="Yes",
            order_type="market", amount="1000", price="0.60",
        )  # fmt: skip
        # More resting orders than one close cancels: its close drains 409s.
        await sb.place_resting_orders(150, account_id=doomed[1], market_id=steady)

        events: list[ps.MonitorEvent] = []
        crashed = False
        monitor = client.partner.accounts.monitor(ids, close_on_breach=True)
        async with monitor:
            async for event in monitor:
                events.append(event)
                if monitor.stats.ready and not crashed:  # every account read once: crash
                    assert not any(e.kind == "breach" for e in events)
                    sb.set_price(moved, "0.30")
                    crashed = True
                if sum(e.kind == "closed" for e in events) == len(doomed):
                    break

        breached = {e.account_id for e in events if e.kind == "breach"}
        closed = {e.account_id for e in events if e.kind == "closed"}
        assert breached == closed == set(doomed)
        for e in events:
            if e.kind == "breach":
                assert [b.rule for b in e.verdict.breaches] == ["max_loss"]
        assert {aid for aid in ids if sb.account_state(aid)["status"] == "closed"} == set(doomed)
        assert monitor.stats.started == FLEET
        assert client.stats.retries["rate_limit"] == 0  # no 429 at all, let alone surfacing
        assert client.stats.retries["drain"] >= 1  # the 150-order account's close drained
        assert monitor.stats.max_staleness <= monitor.staleness
