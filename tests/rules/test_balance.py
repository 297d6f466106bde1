"""The prop-firm balance: cash plus positions at cost, tracked through fills between samples.

The API's ``balance`` is cash (API.md P5); firms mean the closed-trade balance
(starting balance + realised P&L - fees). Hand-computed cases, then the same
against the sandbox. Unless a test says otherwise the account opened at
2026-03-27 12:00 UTC with 10,000.00, daily loss 5% (500.00), days in Prague.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from polysim_async import Client, DecodeError, InvalidArgumentError, Side, Trade
from polysim_async.rules import RULE_NAMES, Evaluator, RuleSet, evaluate, sample_of
from polysim_async.sandbox import Sandbox

from .test_evaluator import OPENED, START, D, make, utc

PRAGUE = {"daily_loss_pct": 5, "day_time_zone": "Europe/Prague"}
README = Path(__file__).resolve().parents[2] / "README.md"


def trade(
    at: datetime,
    *,
    side: str,
    price: str,
    quantity: str = "10000",
    pnl: str | None = None,
    fee: str = "0.00",
    order_id: int = 1,
) -> Trade:
    return Trade(
        trade_id=order_id,
        order_id=order_id,
        market_id="0xaa",
        side=Side(side),
        outcome="Yes",
        raw_price=price,
        raw_quantity=quantity,
        raw_notional=str(D(price) * D(quantity)),
        raw_fee=fee,
        filled_at=at,
        raw_realized_pnl=pnl,
    )


def round_trips() -> list[Trade]:
    """Day 1 (the 27th): +300 realised. Day 2 (the 28th in Prague): -700 realised."""
    return [
        trade(utc(2026, 3, 27, 13), side="BUY", price="0.51", order_id=1),
        trade(utc(2026, 3, 27, 14), side="SELL", price="0.54", pnl="300.00", order_id=2),
        trade(utc(2026, 3, 28, 8), side="BUY", price="0.51", order_id=3),
        trade(utc(2026, 3, 28, 9), side="SELL", price="0.44", pnl="-700.00", order_id=4),
    ]


# -- B: the balance at a day start comes from the fills --------------------------------


@pytest.mark.parametrize("reference", ["balance", "higher"])
def test_a_loss_on_day_two_is_found_from_fills_and_one_later_sample(reference: str) -> None:
    # The only sample is the live state after the loss: the 28th's reference is
    # the balance at its start (10,300, from the fills), not that sample.
    v = evaluate(
        RuleSet(**PRAGUE, daily_loss_reference=reference),
        starting_balance=START,
        opened_at=OPENED,
        fills=round_trips()[::-1],
        samples=[msgspec.structs.replace(live_sample(), balance=D("9600.00"))],
        now=utc(2026, 3, 28, 10),
    )
    assert v.status == "failed"
    (b,) = v.breaches
    assert (b.rule, b.at, b.value, b.limit) == ("daily_loss", utc(2026, 3, 28, 10), D(700), D(500))
    assert (v.metrics.day_reference, v.metrics.day_reference_at) == (
        D("10300.00"),
        utc(2026, 3, 27, 23),  # midnight CET
    )
    assert v.unjudged == (("daily_loss",) if reference == "higher" else ())


def live_sample() -> Any:
    from polysim_async.rules import Sample

    return Sample(at=utc(2026, 3, 28, 10), balance=None, equity=D("9600.00"))


def test_an_equity_reference_that_was_not_sampled_at_the_day_start_is_reported_unjudged() -> None:
    ev = make(**PRAGUE, daily_loss_reference="equity")
    for fill in round_trips():
        ev.add_fill(fill)
    ev.add_sample(utc(2026, 3, 28, 10), balance=D("9600.00"), equity=D("9600.00"))
    v = ev.verdict(utc(2026, 3, 28, 10))
    # Not judged against the later sample (that would measure no loss at all): said so.
    assert (v.status, v.unjudged, v.metrics.day_reference) == ("in_progress", ("daily_loss",), None)
    assert "daily_loss" not in v.headroom
    assert ev.nearest_headroom is None
    # The next day starts judged again once sampled before any fill.
    ev.add_sample(utc(2026, 3, 28, 23, 5), balance=D("9600.00"), equity=D("9650.00"))
    v = ev.verdict(utc(2026, 3, 28, 23, 5))
    assert (v.unjudged, v.metrics.day_reference) == ((), D("9650.00"))


def test_an_equity_reference_sampled_before_the_days_first_fill_is_judged() -> None:
    ev = make(**PRAGUE, daily_loss_reference="equity")
    ev.add_sample(utc(2026, 3, 27, 23, 1), balance=START, equity=D("10100"))
    ev.add_fill(trade(utc(2026, 3, 28, 8), side="BUY", price="0.5"))
    ev.add_sample(utc(2026, 3, 28, 9), balance=START, equity=D("9600"))
    v = ev.verdict(utc(2026, 3, 28, 9))
    assert (v.status, v.unjudged) == ("failed", ())
    assert v.breaches[0].value == D(500)


def test_the_balance_moves_by_realised_pnl_or_minus_the_fee_and_only_after_the_sample() -> None:
    ev = make()
    ev.add_fill(trade(utc(2026, 3, 27, 13), side="BUY", price="0.5", fee="2.50"))
    assert ev.verdict(utc(2026, 3, 27, 13)).metrics.balance == D("9997.50")
    # realized_pnl is net of the fee (a closing fill): the fee is not taken twice.
    ev.add_fill(trade(utc(2026, 3, 27, 14), side="SELL", price="0.6", fee="1.00", pnl="99.00"))
    assert ev.verdict(utc(2026, 3, 27, 14)).metrics.balance == D("10096.50")
    ev.add_sample(utc(2026, 3, 27, 15), balance=D("10090"), equity=D("10090"))
    # A fill the sample already reflects (not newer than it) does not move it again.
    ev.add_fill(trade(utc(2026, 3, 27, 15), side="SELL", price="0.6", pnl="5.00"))
    assert ev.verdict(utc(2026, 3, 27, 15)).metrics.balance == D("10090")
    ev.add_fill(trade(utc(2026, 3, 27, 16), side="SELL", price="0.6", pnl="5.00"))
    assert ev.verdict(utc(2026, 3, 27, 16)).metrics.balance == D("10095")
    # A sample without a balance (an equity point with positions) keeps the tracked one.
    ev.add_sample(utc(2026, 3, 27, 17), balance=None, equity=D("10200"))
    v = ev.verdict(utc(2026, 3, 27, 17))
    assert (v.metrics.balance, v.metrics.equity) == (D("10095"), D("10200"))


def test_a_balance_profit_target_is_reached_by_a_fill() -> None:
    ev = make(profit_target_pct=2, profit_target_basis="balance")
    ev.add_fill(trade(utc(2026, 3, 27, 13), side="SELL", price="0.6", pnl="200.00"))
    v = ev.verdict(utc(2026, 3, 27, 13))
    assert (v.status, v.passed_at) == ("passed", utc(2026, 3, 27, 13))


def test_an_eod_trailing_balance_floor_rises_at_the_day_start_from_fills() -> None:
    ev = make(max_drawdown_pct=5, max_drawdown_mode="eod_trailing")
    ev.add_fill(trade(utc(2026, 3, 27, 14), side="SELL", price="0.6", pnl="300.00"))
    # No sample since: the 27th closed (midnight UTC) at 10,300.
    assert ev.verdict(utc(2026, 3, 28, 1)).metrics.loss_floor == D("9800.00")


# -- A: sample_of gives the prop-firm balance; against the sandbox ------------------------


async def open_account(client: Client, name: str, rules: RuleSet) -> str:
    """A challenge account of 10,000.00 with ``rules`` stored, for a new trader."""
    user = await client.partner.users.register(name, f"{name}@example.com")
    account = await client.partner.accounts.create(
        user_id=user.user_id,
        external_id=name,
        stage="challenge",
        starting_balance="10000.00",
        rules=rules.to_wire(),
    )
    return account.account_id


async def test_on_the_sandbox_a_day_two_drop_with_positions_held_overnight_breaches() -> None:
    rules = RuleSet(**PRAGUE)
    async with (
        Sandbox(seed=7, frozen_clock=True, random_walk=False) as sb,
        Client(sb.tenant_key, sb.url) as client,
    ):
        aid, market = await open_account(client, "held", rules), sb.market_ids[0]
        opened = sb.now()
        sb.set_price(market, "0.50")
        # Most of the balance into shares: 18,000 at the ask 0.51 = 9,180; cash 820.
        await sb.place_order(
            account_id=aid, market_id=market, side="BUY", outcome="Yes",
            quantity="18000", order_type="market", price="0.99",
        )  # fmt: skip
        ev = Evaluator(rules, starting_balance=START, opened_at=opened)
        samples = []
        for _ in range(2):
            state = await client.partner.accounts.get(aid)
            assert state.balance == D("820.00")  # the API's balance: cash (P5)
            s = sample_of(state, at=sb.now())
            assert s.balance == D("10000.00")  # cash + 18,000 x 0.51 at cost
            samples.append(s)
            ev.add_sample(s.at, balance=s.balance, equity=s.equity, positions=s.positions)
            sb.advance(days=1)  # the next Prague day
        sb.set_price(market, "0.45")  # equity 820 + 18,000 x 0.45 = 8,920
        state = await client.partner.accounts.get(aid)
        s = sample_of(state, at=sb.now())
        ev.add_sample(s.at, balance=s.balance, equity=s.equity, positions=s.positions)
        v = ev.verdict(sb.now())
        assert v.status == "failed", v
        (b,) = v.breaches
        assert (b.rule, b.value, b.limit) == ("daily_loss", D("1080.00"), D(500))
        assert v.metrics.day_reference == D("10000.00")

        # B on the sandbox: the fills and only the live state, no sample at any day start.
        trades = [t async for t in client.partner.accounts.trades(aid)]
        one_shot = evaluate(
            rules, starting_balance=START, opened_at=opened, fills=trades,
            samples=[state], now=sb.now(),
        )  # fmt: skip
        assert [(x.rule, x.value) for x in one_shot.breaches] == [("daily_loss", D("1080.00"))]


async def test_on_the_sandbox_fees_and_realised_pnl_keep_the_balance_identity() -> None:
    # balance tracked from fills == cash + positions at cost read back from the server.
    rules = RuleSet(**PRAGUE)
    async with (
        Sandbox(seed=8, frozen_clock=True, random_walk=False) as sb,
        Client(sb.tenant_key, sb.url) as client,
    ):
        aid = await open_account(client, "fees", rules)
        market = sb.create_market(fee_rate="0.02")  # taker fees on every fill
        opened = sb.now()
        ev = Evaluator(rules, starting_balance=START, opened_at=opened)
        steps = [("BUY", "0.40", "1000"), ("SELL", "0.55", "400"), ("SELL", "0.30", "600")]
        for side, price, quantity in steps:
            sb.set_price(market, price)
            sb.advance(minutes=10)
            await sb.place_order(
                account_id=aid, market_id=market, side=side, outcome="Yes",
                quantity=quantity, order_type="market", price="0.99" if side == "BUY" else "0.01",
            )  # fmt: skip
        trades = [t async for t in client.partner.accounts.trades(aid)]
        assert all(t.fee > 0 for t in trades)
        for t in sorted(trades, key=lambda t: (t.filled_at, t.order_id)):
            ev.add_fill(t)
        state = await client.partner.accounts.get(aid)
        assert state.open_positions == []
        assert ev.verdict(sb.now()).metrics.balance == state.balance


# -- C: restore from saved bytes -------------------------------------------------------


def test_restore_takes_the_saved_json_as_bytes_or_text() -> None:
    ev = make(max_drawdown_pct=10, max_drawdown_mode="trailing")
    ev.add_sample(utc(2026, 3, 27, 13), balance=D(10500), equity=D(10800))
    saved = msgspec.json.encode(ev.state)
    for data in (saved, saved.decode(), bytearray(saved), memoryview(saved)):
        assert Evaluator.restore(data).state == ev.state
    for garbage in (b"", b"{", b'{"rules": 5}', "[]"):
        with pytest.raises(DecodeError, match="not a saved EvaluatorState"):
            Evaluator.restore(garbage)
    with pytest.raises(InvalidArgumentError, match="EvaluatorState or its saved JSON"):
        Evaluator.restore({"rules": {}})  # type: ignore[arg-type]


def test_a_state_saved_before_the_balance_was_tracked_still_restores() -> None:
    ev = make(**PRAGUE)
    ev.add_sample(utc(2026, 3, 27, 13), balance=D(10000), equity=D(10000))
    old = msgspec.json.decode(msgspec.json.encode(ev.state))
    for key in ("tracks_balance", "balance_as_of", "day_balance", "reference_unjudged"):
        old.pop(key, None)
    resumed = Evaluator.restore(msgspec.json.encode(old))
    # A fill the old state's last sample already reflects does not move the balance.
    resumed.add_fill(trade(utc(2026, 3, 27, 13), side="SELL", price="0.5", pnl="50"))
    assert resumed.verdict(utc(2026, 3, 27, 14)).metrics.balance == D(10000)


# -- D: the README names every rule as verdicts do ---------------------------------------


def test_the_readme_rules_table_names_each_rule_as_verdicts_do() -> None:
    text = README.read_text()
    table = text[text.index("| Rule | Name in verdicts |") :].split("\n\n", 1)[0]
    named = {
        line.split("|")[2].strip().strip("`") for line in table.splitlines()[2:] if "`" in line
    }
    assert set(RULE_NAMES) <= named
