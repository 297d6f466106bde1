"""``client.partner.accounts.monitor``: scheduling, verdict events, close on breach, restart,
shards, errors and clean-up, on an in-memory partner API and virtual time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

import polysim_async as ps
from polysim_async._monitor import STARTUP_GRACE
from polysim_async._shard import in_shard

from ._fleet import BASE, LoopClock, ShiftedClock, events_until, fleet_client, kinds
from ._helpers import virtual


def falling(start: float, per_second: str, *, after: float = 0.0) -> Callable[[float], Decimal]:
    """Equity 10,000 until ``start + after``, then falling ``per_second`` dollars a second."""
    rate = Decimal(per_second)
    t0 = start + after
    return lambda t: (Decimal("10000.00") - rate * Decimal(max(0.0, t - t0))).quantize(
        Decimal("0.01")
    )


def now() -> float:
    return asyncio.get_running_loop().time()


def closed(events: list[ps.MonitorEvent], n: int = 1) -> bool:
    return kinds(events).count("closed") >= n


# -- the budget goes where the risk is ---------------------------------------------------------
@virtual
async def test_a_trending_account_is_read_far_more_often_and_none_goes_stale() -> None:
    async with fleet_client() as (fleet, client):
        t0 = now()
        quiet = [f"q{i}" for i in range(40)]
        for aid in quiet:
            fleet.add(aid)
        fleet.add("hot", equity=falling(t0, "2", after=100))  # crosses 9,000 at t0 + 600
        monitor = client.partner.accounts.monitor(["hot", *quiet], budget=4)
        assert monitor.budget == 4
        async with monitor:
            events = await events_until(monitor, lambda ev: "breach" in kinds(ev))
        breach = events[-1]
        assert (breach.account_id, breach.kind) == ("hot", "breach")
        assert breach.verdict.breaches[0].rule == "max_loss"
        crossed = t0 + 600
        # Detected within a few seconds of the crossing, on a budget where reading every
        # account once takes over ten seconds.
        detected = fleet.reads["hot"][-1]
        assert crossed <= detected < crossed + 3
        assert len(quiet) / monitor.budget >= 10
        # In the last 200 s, the trending account was read over ten times as often as a
        # quiet one on average.
        hot_reads = len([t for t in fleet.reads["hot"] if t > crossed - 200])
        quiet_reads = sum(1 for q in quiet for t in fleet.reads[q] if t > crossed - 200)
        assert hot_reads > 10 * quiet_reads / len(quiet)
        # No account waited longer than the staleness floor.
        assert monitor.stats.max_staleness <= monitor.staleness
        for q in quiet:
            gaps = [b - a for a, b in zip(fleet.reads[q], fleet.reads[q][1:], strict=False)]
            assert max(gaps) <= monitor.staleness
        # Every request (reads and feed polls) stayed inside the monitor's budget.
        requests = sum(map(len, fleet.reads.values())) + sum(fleet.polls.values())
        assert requests <= monitor.budget * (now() - t0) + monitor.budget


@virtual
async def test_every_account_is_read_right_after_its_day_boundary() -> None:
    midnight = datetime(2027, 3, 2, tzinfo=timezone.utc)
    clock = ShiftedClock(datetime(2027, 3, 1, 23, 55, tzinfo=timezone.utc))
    async with fleet_client(clock) as (fleet, client):
        ids = [f"a{i}" for i in range(10)]
        for aid in ids:
            fleet.add(aid, rules={"daily_loss_pct": 5})
        # A trending account takes every spare sample: the quiet ones get the floor only.
        fleet.add("hot", equity=falling(now(), "1"), rules={"daily_loss_pct": 5})
        boundary = now() + (midnight.timestamp() - clock.wall())
        monitor = client.partner.accounts.monitor(["hot", *ids], budget=1.5, staleness=900)
        async with monitor:
            events = await events_until(monitor, lambda ev: now() > boundary + 30)
        for aid in ids:
            before = [t for t in fleet.reads[aid] if t < boundary]
            after = [t for t in fleet.reads[aid] if t >= boundary]
            assert before[-1] - before[-2] > 100  # the regular interval, once "hot" is known
            assert after and after[0] < boundary + 15  # 11 reads at ~1/s after the boundary
        # The new day's (balance) reference is taken at the day start itself; the
        # samples right after it judge the new day against it.
        new_day = [
            e for e in events if e.kind == "sample" and e.at.timestamp() >= midnight.timestamp()
        ]
        assert new_day and all(
            e.verdict.metrics.day_reference_at == midnight for e in new_day[: len(ids)]
        )


# -- events and verdicts ---------------------------------------------------------------------------
@virtual
async def test_fills_are_judged_once_each_in_order_and_history_before_the_first_read() -> None:
    clock = ShiftedClock(datetime(2027, 1, 15, 12, tzinfo=timezone.utc))
    async with fleet_client(clock) as (fleet, client):
        fleet.add(
            "a",
            rules={"min_trading_days": 2, "profit_target_pct": 5},
            metadata={"opened_at": "2027-01-14T09:00:00+00:00"},
        )
        # A fill the day before the monitor starts (after the opening): history, no event.
        fleet.trades["a"].append({**_row(fleet, 900), "filled_at": "2027-01-14T10:00:00+00:00"})
        monitor = client.partner.accounts.monitor(["a"], fill_interval=5)
        async with monitor:
            start = now()
            first = await events_until(monitor, lambda ev: monitor.stats.ready)
            assert kinds(first) == ["sample"]
            assert first[0].verdict.metrics.trading_days == 1
            one, two = fleet.fill("a"), fleet.fill("a")
            events = await events_until(monitor, lambda ev: kinds(ev).count("fill") == 2)
            fills = [e for e in events if e.kind == "fill"]
            assert [e.trade.order_id for e in fills if e.trade] == [one, two]
            await events_until(monitor, lambda ev: now() > start + 60)
        assert monitor.stats.fills == 2


@virtual
async def test_a_pass_is_announced_and_ends_the_watch_of_that_account() -> None:
    async with fleet_client() as (fleet, client):
        t0 = now()
        fleet.add(
            "a",
            equity=lambda t: Decimal("10600.00") if t > t0 + 30 else Decimal("10000"),
            rules={"profit_target_pct": 5},
        )
        monitor = client.partner.accounts.monitor(["a"])
        async with monitor:
            events = [e async for e in monitor]  # ends: no account is left to judge
        assert kinds(events)[-1] == "passed"
        assert events[-1].verdict.status == "passed"
        assert "passed" in str(events[-1]) and "\n" not in str(events[-1])


@virtual
async def test_close_on_breach_drains_409_and_closes_only_the_breached_account() -> None:
    async with fleet_client() as (fleet, client):
        t0 = now()
        fleet.add("ok")
        fleet.add("bad", equity=falling(t0, "50"))  # the floor at t0 + 20
        fleet.refuse_close["bad"] = 2  # 409 ORDERS_NOT_CANCELLED twice, then closed
        monitor = client.partner.accounts.monitor(["ok", "bad"], close_on_breach=True)
        async with monitor:
            events = await events_until(monitor, closed)
        assert kinds(events, "bad")[-2:] == ["breach", "closed"]
        warning = next(e for e in events if e.kind == "warning")  # 80% of the loss used
        assert warning.account_id == "bad" and [w.rule for w in warning.warnings] == ["max_loss"]
        assert "max_loss 8" in str(warning)  # "... warning max_loss 8x% used (...)"
        assert fleet.closes == {"bad": 3}
        assert fleet.accounts["bad"]["status"] == "closed"
        assert fleet.accounts["ok"]["status"] == "active"
        last = events[-1]
        assert last.state is not None and last.state.status.value == "closed"
        assert monitor.stats.breaches == monitor.stats.closed == 1


@virtual
async def test_without_close_on_breach_nothing_is_closed_and_the_iteration_ends() -> None:
    async with fleet_client() as (fleet, client):
        fleet.add("bad", equity=falling(now(), "50"))
        async with client.partner.accounts.monitor(["bad"]) as monitor:
            events = [e async for e in monitor]
        assert kinds(events)[-1] == "breach" and not fleet.closes


@virtual
async def test_an_account_found_closed_is_announced_and_no_longer_read() -> None:
    async with fleet_client() as (fleet, client):
        fleet.add("a")
        async with client.partner.accounts.monitor(["a"]) as monitor:
            await events_until(monitor, lambda ev: len(ev) >= 3)
            fleet.accounts["a"]["status"] = "closed"
            reads = len(fleet.reads["a"])
            rest = [e async for e in monitor]
        assert kinds(rest)[-1] == "closed"
        assert len(fleet.reads["a"]) <= reads + 2


# -- restart ------------------------------------------------------------------------------------
@virtual
async def test_a_restarted_monitor_keeps_high_water_marks_and_fill_watermarks(
    tmp_path: Path,
) -> None:
    rules = ps.RuleSet(max_drawdown_pct=Decimal(10), max_drawdown_mode="trailing")
    async with fleet_client() as (fleet, client):
        fleet.add("a", equity="11000.00")
        fleet.fill("a")
        async with client.partner.accounts.monitor(["a"], rules=rules, fill_interval=5) as m:
            await events_until(m, lambda ev: "fill" in kinds(ev))
            saved = msgspec.json.encode(m.state)
        (tmp_path / "state.json").write_bytes(saved)
        state = msgspec.json.decode((tmp_path / "state.json").read_bytes(), type=ps.MonitorState)
        assert state.accounts["a"].evaluator.high_water_mark == Decimal("11000.00")

        fleet.equity["a"] = lambda t: Decimal("9950.00")  # 1,050 below the high-water mark
        later = fleet.fill("a")
        async with client.partner.accounts.monitor(
            ["a"], rules=rules, state=state, fill_interval=5
        ) as m:
            events = [e async for e in m]
        assert kinds(events)[-1] == "breach"
        assert [e.trade.order_id for e in events if e.trade] == [later]  # not the first again

        # Without the state, the same account is fine (its mark starts at 9,950).
        async with client.partner.accounts.monitor(["a"], rules=rules) as m:
            fresh = await events_until(m, lambda ev: len(ev) >= 3)
        assert "breach" not in kinds(fresh)


@virtual
async def test_a_decision_made_but_not_handed_out_is_announced_after_a_restart() -> None:
    async with fleet_client() as (fleet, client):
        fleet.add("a", equity="8000.00")
        async with client.partner.accounts.monitor(["a"]) as m:
            first = await m.__anext__()  # the sample; its breach not handed out yet
            assert first.kind == "sample"
            state = m.state
        assert state.accounts["a"].announced == "in_progress"
        async with client.partner.accounts.monitor(["a"], state=state) as m:
            events = [e async for e in m]
        assert kinds(events) == ["breach"]
        # decided: read once more on resume (a reset?), not again
        assert len(fleet.reads["a"]) == 2


@virtual
async def test_a_checkpoint_store_saves_and_resumes_and_holds_a_lease(tmp_path: Path) -> None:
    store = ps.SQLiteCheckpointStore(tmp_path / "cp.db")
    async with fleet_client() as (fleet, client):
        fleet.add("a", equity="10500.00")
        rules = ps.RuleSet(max_drawdown_pct=Decimal(10), max_drawdown_mode="trailing")
        accounts = client.partner.accounts
        async with accounts.monitor(["a"], rules=rules, store=store, name="fleet") as m:
            await events_until(m, lambda ev: len(ev) >= 2)
            # Another worker on the same key waits as a standby while this one holds it.
            standby = accounts.monitor(["a"], rules=rules, store=store, name="fleet")
            waiting = asyncio.ensure_future(standby.__aenter__())
            await asyncio.sleep(60)
            assert not waiting.done()
        await waiting  # the first worker left and gave the lease up
        await standby.aclose()
        saved = await store.get("fleet", ps.MonitorState)
        assert saved is not None
        assert saved.accounts["a"].evaluator.high_water_mark == Decimal("10500.00")
        fleet.equity["a"] = lambda t: Decimal("9500.00")
        async with accounts.monitor(["a"], rules=rules, store=store, name="fleet") as m:
            assert kinds([e async for e in m])[-1] == "breach"
    with pytest.raises(ps.InvalidArgumentError, match="state= or store="):
        accounts.monitor(["a"], store=store, state=ps.MonitorState())


# -- shards --------------------------------------------------------------------------------------
@virtual
async def test_shards_split_the_fleet_without_overlap() -> None:
    async with fleet_client() as (fleet, client):
        ids = [f"acct-{i}" for i in range(30)]
        for aid in ids:
            fleet.add(aid)
        monitors = [client.partner.accounts.monitor(ids, shard=(i, 3)) for i in range(3)]
        owned = [m.account_ids for m in monitors]
        assert sorted(aid for part in owned for aid in part) == sorted(ids)
        for i, part in enumerate(owned):
            assert part and all(in_shard(aid, (i, 3)) for aid in part)
        assert monitors[0].budget == pytest.approx(0.8 * 50 / 3)  # the shared budget, split
        async with monitors[1] as m:
            await events_until(m, lambda ev: m.stats.ready)
        assert set(fleet.reads) == set(owned[1])


# -- errors and clean-up --------------------------------------------------------------------------
@virtual
async def test_a_transient_error_is_read_again_and_a_permanent_one_ends_the_monitor() -> None:
    async with fleet_client(max_retries=0) as (fleet, client):
        fleet.add("a")
        fleet.add("b")
        fleet.fail_reads["a"] = [(503, "SERVICE_UNAVAILABLE")]
        async with client.partner.accounts.monitor(["a", "b"]) as m:
            await events_until(m, lambda ev: {"a", "b"} <= {e.account_id for e in ev})
            assert m.stats.retries == 1
            before = asyncio.all_tasks()
            fleet.fail_reads["b"] = [(403, "FORBIDDEN")] * 100
            with pytest.raises(ps.PermissionDeniedError):
                async for _ in m:
                    pass
            assert asyncio.all_tasks() <= before
            assert [e async for e in m] == []  # ended


@virtual
async def test_an_unknown_account_or_bad_stored_rules_are_reported_and_the_others_judged() -> None:
    async with fleet_client() as (fleet, client):
        t0 = now()
        fleet.add("a", rules={"max_drawdown_pct": "lots"})
        fleet.add("b", rules={"max_drawdown_pct": 150})
        fleet.add("hot", equity=falling(t0, "10", after=30))
        ids = ["nope", "a", "b", "hot"]
        async with client.partner.accounts.monitor(ids, close_on_breach=True) as m:
            events = [e async for e in m]
            assert m.stats.errors == 3
        errors = {e.account_id: e for e in events if e.kind == "error"}
        assert set(errors) == {"nope", "a", "b"}
        assert errors["nope"].error is not None and "NotFoundError" in errors["nope"].error
        assert errors["a"].verdict is None and "account a" in str(errors["a"])
        assert "max_drawdown_pct" in str(errors["b"])
        # the real breach among them is still found and closed
        assert kinds(events, "hot")[-2:] == ["breach", "closed"]
        assert fleet.accounts["hot"]["status"] == "closed"
        assert set(fleet.closes) == {"hot"}
        assert kinds(events, "nope") == ["error"]  # reported once, not read again


@virtual
async def test_a_fleet_wide_failure_still_ends_the_monitor() -> None:
    async with fleet_client() as (fleet, client):
        fleet.add("a")
        fleet.fail_reads["a"].append((401, "UNAUTHORIZED"))
        async with client.partner.accounts.monitor(["a"]) as m:
            with pytest.raises(ps.AuthenticationError):
                await m.__anext__()


@virtual
async def test_cancelling_the_consumer_leaves_no_task_and_iterating_outside_raises() -> None:
    async with fleet_client() as (fleet, client):
        for i in range(5):
            fleet.add(f"a{i}")
        before = asyncio.all_tasks()
        monitor = client.partner.accounts.monitor([f"a{i}" for i in range(5)], fill_interval=5)
        with pytest.raises(ps.ClientClosedError):
            await monitor.__anext__()

        async def consume() -> None:
            async with monitor:
                async for _ in monitor:
                    pass

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(30)
        assert monitor.stats.ready and monitor.stats.samples > 5
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert asyncio.all_tasks() == before
        reads = sum(map(len, fleet.reads.values()))
        await asyncio.sleep(30)
        assert sum(map(len, fleet.reads.values())) == reads  # nothing outlived the block
        with pytest.raises(ps.ClientClosedError):
            async with monitor:
                pass


@virtual
async def test_bad_options_are_refused_at_once() -> None:
    async with fleet_client() as (_, client):
        monitor = client.partner.accounts.monitor
        with pytest.raises(ps.InvalidArgumentError, match="duplicates"):
            monitor(["a", "a"])
        with pytest.raises(ps.InvalidArgumentError, match="one string"):
            monitor("abc")
        with pytest.raises(ps.InvalidArgumentError, match="RuleSet"):
            monitor(["a"], rules={"max_drawdown_pct": 10})  # type: ignore[arg-type]
        with pytest.raises(ps.InvalidArgumentError, match="raise staleness"):
            monitor([f"a{i}" for i in range(1000)], budget=10, staleness=30)
        with pytest.raises(ps.InvalidArgumentError, match="whole budget"):
            monitor([f"a{i}" for i in range(100)], budget=1, fill_interval=10)
        with pytest.raises(ps.InvalidArgumentError):
            monitor(["a"], shard=(3, 2))


# -- RuleSet on create/update ----------------------------------------------------------------------
@virtual
async def test_create_and_update_accept_a_rule_set_sent_as_json_numbers() -> None:
    sent: list[bytes] = []
    body = {
        "account_id": "a", "wallet_id": 1, "user_id": 1, "external_id": "x",
        "stage": "challenge", "status": "active",
        "starting_balance": "10000.00", "balance": "10000.00", "equity": "10000.00",
        "unrealized_pnl": "0.00", "rules": {}, "metadata": None, "open_positions": [],
    }  # fmt: skip

    def handle(request: ps.Request) -> ps.Response:
        sent.append(request.body or b"")
        return ps.Response.from_json(body, status=201 if request.method == "POST" else 200)

    rules = ps.RuleSet(
        max_drawdown_pct=Decimal("8.5"), max_drawdown_mode="trailing", daily_loss_pct=Decimal(4)
    )
    transport = ps.MockTransport(handle)
    async with ps.Client("tk_x", "https://api.test", transport=transport) as client:
        await client.partner.accounts.create(
            user_id=1, external_id="x", stage="challenge", starting_balance=10000, rules=rules
        )
        await client.partner.accounts.update("a", rules=rules)
    for raw in sent:
        wire = json.loads(raw)["rules"]
        assert wire == {"max_drawdown_pct": 8.5, "max_drawdown_mode": "trailing",
                        "daily_loss_pct": 4}  # fmt: skip
        assert ps.RuleSet.from_wire(wire) == rules


def _row(fleet: object, order_id: int) -> dict[str, object]:
    return {
        "trade_id": order_id, "order_id": order_id, "market_id": "0xabc", "side": "BUY",
        "outcome": "Yes", "price": "0.5000", "quantity": "2.0000", "notional": "1.00",
        "fee": "0.00", "filled_at": "", "client_order_id": None, "realized_pnl": None,
    }  # fmt: skip


# -- the server's clock, not the machine's ---------------------------------------------------
SKEW = -180 * 86400.0  # the server's clock runs 180 days behind the machine's


@virtual
async def test_an_account_opened_a_minute_ago_on_the_servers_clock_is_not_failed_as_inactive() -> (
    None
):
    clock = ShiftedClock(datetime(2027, 1, 15, 12, tzinfo=timezone.utc))
    async with fleet_client(clock) as (fleet, client):
        fleet.skew = SKEW
        opened = datetime.fromtimestamp(clock.wall() + SKEW - 60, timezone.utc)
        fleet.add(
            "a",
            rules={"max_drawdown_pct": 10, "inactivity_days": 30},
            metadata={"opened_at": opened.isoformat()},
        )
        monitor = client.partner.accounts.monitor(["a"], close_on_breach=True, fill_interval=5)
        async with monitor:
            t0 = now()
            events = await events_until(monitor, lambda ev: now() > t0 + 300)
        assert set(kinds(events)) == {"sample"}
        assert fleet.accounts["a"]["status"] == "active" and not fleet.closes
        server_now = clock.wall() + SKEW
        assert all(abs(e.at.timestamp() - server_now) < 400 for e in events)  # server time


@virtual
async def test_without_opened_at_the_opening_is_the_servers_time_so_its_fills_count() -> None:
    clock = ShiftedClock(datetime(2027, 1, 15, 12, tzinfo=timezone.utc))
    async with fleet_client(clock) as (fleet, client):
        fleet.skew = SKEW
        fleet.add("a", rules={"min_trading_days": 1, "profit_target_pct": 1})
        monitor = client.partner.accounts.monitor(["a"], fill_interval=5)
        async with monitor:
            await events_until(monitor, lambda ev: monitor.stats.ready)
            order = fleet.fill("a")  # filled on the server's clock, after the opening
            events = await events_until(monitor, lambda ev: "fill" in kinds(ev))
        fill = events[-1]
        assert fill.trade is not None and fill.trade.order_id == order
        assert fill.verdict is not None and fill.verdict.metrics.trading_days == 1
        saved = monitor.state.accounts["a"].evaluator
        assert abs(saved.opened_at.timestamp() - (clock.wall() + SKEW)) < 100


# -- resets, rule changes, budget, outages ---------------------------------------------------
@virtual
async def test_a_reset_account_is_watched_again_after_a_resume() -> None:
    clock = ShiftedClock(datetime(2027, 1, 15, 12, tzinfo=timezone.utc))
    async with fleet_client(clock) as (fleet, client):
        fleet.add("a", equity="8000.00", metadata={"opened_at": "2027-01-15T11:00:00+00:00"})
        async with client.partner.accounts.monitor(["a"]) as m:
            assert kinds([e async for e in m]) == ["sample", "breach"]
            state = m.state
        # the firm resets the account: a new attempt, a new opening
        fleet.add("a", equity="10000.00", metadata={"opened_at": iso_now(clock)})
        async with client.partner.accounts.monitor(["a"], state=state, fill_interval=5) as m:
            t0 = now()
            events = await events_until(m, lambda ev: now() > t0 + 120)
        assert kinds(events)[:2] == ["restarted", "sample"]
        assert events[1].verdict is not None and events[1].verdict.status == "in_progress"
        assert len(fleet.reads["a"]) > 2  # watched again
        # a decided account that was not reset is read once on resume, then left alone
        fleet.add("b", equity="8000.00", metadata={"opened_at": "2027-01-15T11:00:00+00:00"})
        async with client.partner.accounts.monitor(["b"]) as m:
            assert kinds([e async for e in m]) == ["sample", "breach"]
            state = m.state
        reads, polls = len(fleet.reads["b"]), fleet.polls["b"]
        async with client.partner.accounts.monitor(["b"], state=state) as m:
            assert [e async for e in m] == []
        assert len(fleet.reads["b"]) == reads + 1
        assert fleet.polls["b"] == polls  # cheap: no walk of its fills


def iso_now(clock: ps.Clock) -> str:
    return datetime.fromtimestamp(clock.wall(), timezone.utc).isoformat()


@virtual
async def test_rules_given_on_resume_and_stored_rules_changed_on_the_server_apply() -> None:
    async with fleet_client() as (fleet, client):
        fleet.add("a", equity="9500.00")  # 5% down: inside the stored 10%
        async with client.partner.accounts.monitor(["a"]) as m:
            assert (await m.__anext__()).kind == "sample"
            state = m.state
        tighter = ps.RuleSet(max_drawdown_pct=Decimal(4))
        async with client.partner.accounts.monitor(["a"], state=state, rules=tighter) as m:
            events = await events_until(m, lambda ev: "breach" in kinds(ev))
        assert events[-1].verdict is not None
        assert events[-1].verdict.breaches[0].rule == "max_loss"
        # the stored rules change on the server: the next read judges by them
        fleet.accounts["a"]["rules"] = {"max_drawdown_pct": 4}
        async with client.partner.accounts.monitor(["a"], state=state) as m:
            events = await events_until(m, lambda ev: "breach" in kinds(ev))
        assert kinds(events) == ["sample", "breach"]
        assert m.state.accounts["a"].evaluator.rules == tighter


@virtual
async def test_a_budget_above_the_clients_rate_limit_is_refused() -> None:
    async with fleet_client() as (_fleet, client):
        with pytest.raises(ps.InvalidArgumentError, match="rate limit of 50/s"):
            client.partner.accounts.monitor(["a"], budget=60)
        assert client.partner.accounts.monitor(["a"], budget=50).budget == 50


@virtual
async def test_an_unreachable_server_ends_the_monitor_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def down(request: ps.Request) -> ps.Response:
        raise ps.ConnectError("connection refused")

    transport = ps.MockTransport(down)
    async with ps.Client("tk_x", BASE, transport=transport, clock=LoopClock()) as client:
        ids = [f"a{i}" for i in range(20)]
        t0 = now()
        async with client.partner.accounts.monitor(ids) as m:
            with pytest.raises(ps.ConnectError):
                await m.__anext__()
        assert now() - t0 < STARTUP_GRACE + 120
    outage = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(outage) == 1
    assert not [r for r in caplog.records if r.levelname == "WARNING" and "read again" in r.msg]
