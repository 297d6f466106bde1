"""The fleet monitor against the sandbox over real sockets: 500 accounts, a few driven into a
breach by moving prices, each found and closed, nothing else closed, no 429 surfacing."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import msgspec

import polysim_async as ps
from polysim_async.sandbox import Sandbox

from ._helpers import SkipClock

FLEET = 500
ROOT = Path(__file__).resolve().parent.parent


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


async def _example(*args: str, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / "monitor_fleet.py"),
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode()


async def test_the_example_closes_a_breach_saves_its_state_and_resumes(tmp_path: Path) -> None:
    async with Sandbox(seed=11, random_walk=False) as sb:
        env = {"POLYSIM_BASE_URL": sb.url, "POLYSIM_TENANT_KEY": sb.tenant_key}
        async with ps.Client(sb.tenant_key, sb.url) as client:
            user = await client.partner.users.register("ex", "ex@example.com")
            ids = [
                (
                    await client.partner.accounts.create(
                        user_id=user.user_id, external_id=f"ex-{i}", stage="challenge",
                        starting_balance="10000.00",
                        rules=ps.RuleSet(max_drawdown_pct=Decimal(10)),
                    )
                ).account_id
                for i in range(3)
            ]  # fmt: skip
        bad = ids[1]
        sb.set_price(sb.market_id, "0.50")
        await sb.place_order(
            account_id=bad, market_id=sb.market_id, side="BUY", outcome="Yes",
            order_type="market", amount="4000", price="0.60",
        )  # fmt: skip
        sb.set_price(sb.market_id, "0.30")
        state = tmp_path / "state.json"
        args = [*ids, "--state", str(state), "--close-on-breach", "--seconds", "3"]

        code, out = await _example(*args, env=env)
        assert code == 0, out
        assert f" {bad} breach max_loss " in out and f" {bad} closed status=closed" in out
        assert "stopped after 3s" in out and "breaches=1" in out and "closed=1" in out
        saved = msgspec.json.decode(state.read_bytes(), type=ps.MonitorState)
        assert set(saved.accounts) == set(ids) and saved.accounts[bad].closed
        assert [sb.account_state(a)["status"] for a in ids] == ["active", "closed", "active"]

        code, out = await _example(*args, env=env)  # resumed: the breach is not news
        assert code == 0, out
        assert "resumed 3 from" in out
        assert " breach " not in out and " closed " not in out
        again = msgspec.json.decode(state.read_bytes(), type=ps.MonitorState)
        assert again.accounts[ids[0]].evaluator.samples > saved.accounts[ids[0]].evaluator.samples


async def test_judged_on_the_sandboxes_clock_far_from_the_machines() -> None:
    """An account opened a minute ago on the server's clock (200 days behind this machine's)
    is not failed for 30 days of inactivity: the monitor judges at the server's time."""
    start = datetime.now(timezone.utc) - timedelta(days=200)
    async with (
        Sandbox(seed=3, start=start) as sb,
        ps.Client(sb.tenant_key, sb.url) as client,
    ):
        user = await client.partner.users.register("clock-owner", "clock@example.com")
        rules = ps.RuleSet(max_drawdown_pct=Decimal(10), inactivity_days=30)
        account = await client.partner.accounts.create(
            user_id=user.user_id,
            external_id="clock-1",
            stage="challenge",
            starting_balance="10000.00",
            rules=rules,
            metadata={"opened_at": (sb.now() - timedelta(minutes=1)).isoformat()},
        )
        monitor = client.partner.accounts.monitor([account.account_id], close_on_breach=True)
        async with monitor:
            first = await asyncio.wait_for(monitor.__anext__(), 30)
        assert first.kind == "sample"
        assert first.verdict is not None and first.verdict.status == "in_progress"
        assert abs((first.at - sb.now()).total_seconds()) < 60
        state = await client.partner.accounts.get(account.account_id)
        assert state.status.value == "active"
