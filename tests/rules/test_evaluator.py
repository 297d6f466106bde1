"""Every rule and mode on hand-computed cases, exactly at and around each limit.

Unless a test says otherwise the account opened at 2026-03-27 12:00 UTC with a
starting balance of 10,000.00, so 1% is 100.00.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polysim_async import (
    AccountState,
    EquityPoint,
    Fill,
    InvalidArgumentError,
    OpenPosition,
    Side,
    Trade,
)
from polysim_async.rules import (
    Evaluator,
    EvaluatorState,
    PositionCost,
    RuleSet,
    Sample,
    Verdict,
    evaluate,
    sample_of,
)

OPENED = datetime(2026, 3, 27, 12, tzinfo=timezone.utc)
START = Decimal("10000.00")
D = Decimal


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)  # type: ignore[misc]


def make(**rules: Any) -> Evaluator:
    return Evaluator(RuleSet(**rules), starting_balance=START, opened_at=OPENED)


def trade(
    at: datetime,
    *,
    pnl: str | None = None,
    side: str = "BUY",
    price: str = "0.50",
    quantity: str = "10",
    market: str = "0xaa",
    order_id: int = 1,
) -> Trade:
    return Trade(
        trade_id=order_id,
        order_id=order_id,
        market_id=market,
        side=Side(side),
        outcome="Yes",
        raw_price=price,
        raw_quantity=quantity,
        raw_notional=str(D(price) * D(quantity)),
        raw_fee="0.00",
        filled_at=at,
        raw_realized_pnl=pnl,
    )


def sample(ev: Evaluator, at: datetime, equity: str, balance: str | None = None) -> None:
    ev.add_sample(at, balance=D(balance if balance is not None else equity), equity=D(equity))


def rules_of(v: Verdict) -> list[str]:
    return [b.rule for b in v.breaches]


# -- maximum loss ----------------------------------------------------------------------


def test_static_loss_exactly_at_the_floor_breaches_by_default() -> None:
    ev = make(max_drawdown_pct=10)
    sample(ev, utc(2026, 3, 27, 13), "9000.01")
    assert ev.verdict(utc(2026, 3, 27, 13)).status == "in_progress"
    sample(ev, utc(2026, 3, 27, 14), "9000.00")
    v = ev.verdict(utc(2026, 3, 27, 15))
    assert v.status == "failed"
    (b,) = v.breaches
    assert (b.rule, b.at, b.value, b.limit) == ("max_loss", utc(2026, 3, 27, 14), D(9000), D(9000))


def test_static_loss_at_the_floor_is_allowed_when_touching_does_not_breach() -> None:
    ev = make(max_drawdown_pct=10, breach_at_limit=False)
    sample(ev, utc(2026, 3, 27, 14), "9000.00")
    v = ev.verdict(utc(2026, 3, 27, 14))
    assert v.status == "in_progress"
    assert v.headroom["max_loss"] == 0
    sample(ev, utc(2026, 3, 27, 15), "8999.99")
    assert rules_of(ev.verdict(utc(2026, 3, 27, 15))) == ["max_loss"]


def test_a_trailing_floor_follows_the_high_water_mark_intraday_and_never_falls() -> None:
    ev = make(max_drawdown_pct=10, max_drawdown_mode="trailing")
    sample(ev, utc(2026, 3, 27, 13), "10500")
    assert ev.verdict(utc(2026, 3, 27, 13)).metrics.loss_floor == D(9500)
    sample(ev, utc(2026, 3, 27, 14), "10200")
    v = ev.verdict(utc(2026, 3, 27, 14))
    assert (v.metrics.loss_floor, v.metrics.high_water_mark) == (D(9500), D(10500))
    assert v.headroom["max_loss"] == D(700)
    sample(ev, utc(2026, 3, 27, 15), "9500")
    assert rules_of(ev.verdict(utc(2026, 3, 27, 15))) == ["max_loss"]


def test_a_trailing_floor_locks_at_the_starting_balance() -> None:
    ev = make(max_drawdown_pct=10, max_drawdown_mode="trailing", max_drawdown_lock_at_start=True)
    sample(ev, utc(2026, 3, 27, 13), "10800")
    assert ev.verdict(utc(2026, 3, 27, 13)).metrics.loss_floor == D(9800)
    sample(ev, utc(2026, 3, 27, 14), "11500")
    assert ev.verdict(utc(2026, 3, 27, 14)).metrics.loss_floor == START  # would be 10,500
    sample(ev, utc(2026, 3, 27, 15), "12000")
    assert ev.verdict(utc(2026, 3, 27, 15)).metrics.loss_floor == START
    sample(ev, utc(2026, 3, 27, 16), "10000.01")
    assert ev.verdict(utc(2026, 3, 27, 16)).status == "in_progress"
    sample(ev, utc(2026, 3, 27, 17), "10000.00")
    v = ev.verdict(utc(2026, 3, 27, 17))
    assert (v.breaches[0].value, v.breaches[0].limit) == (START, START)


def test_an_eod_trailing_floor_moves_only_at_day_starts_from_the_closing_balance() -> None:
    ev = make(max_drawdown_pct=10, max_drawdown_mode="eod_trailing")
    # Intraday highs do not move it...
    sample(ev, utc(2026, 3, 27, 18), "10600", balance="10400")
    assert ev.verdict(utc(2026, 3, 27, 18)).metrics.loss_floor == D(9000)
    # ...the day closes at its balance at midnight (10,400: no fill since the sample),
    # not at the next day's first sample: 10,400 - 1,000.
    sample(ev, utc(2026, 3, 28, 0, 5), "10350", balance="10300")
    assert ev.verdict(utc(2026, 3, 28, 0, 5)).metrics.loss_floor == D(9400)
    # A lower close later (10,300 - 200 realised) does not lower it.
    ev.add_fill(trade(utc(2026, 3, 28, 9), pnl="-200", side="SELL"))
    assert ev.verdict(utc(2026, 3, 29, 1)).metrics.loss_floor == D(9400)
    assert ev.verdict(utc(2026, 3, 29, 1)).metrics.balance == D(10100)
    sample(ev, utc(2026, 3, 29, 12), "9400.00", balance="10100")
    assert rules_of(ev.verdict(utc(2026, 3, 29, 12))) == ["max_loss"]


def test_an_eod_trailing_floor_on_equity_with_a_lock() -> None:
    ev = make(
        max_drawdown_pct=5,
        max_drawdown_mode="eod_trailing",
        max_drawdown_eod_basis="equity",
        max_drawdown_lock_at_start=True,
    )
    sample(ev, utc(2026, 3, 28, 0), "10300", balance="10000")
    assert ev.verdict(utc(2026, 3, 28, 1)).metrics.loss_floor == D(9800)
    sample(ev, utc(2026, 3, 29, 0), "11000", balance="10000")
    assert ev.verdict(utc(2026, 3, 29, 1)).metrics.loss_floor == START


# -- daily loss ------------------------------------------------------------------------


def test_daily_loss_in_prague_across_the_dst_change() -> None:
    ev = make(daily_loss_pct=5, day_time_zone="Europe/Prague")
    # 23:30 CET on the 28th: the 28th's reference is its start balance, 10,000.
    sample(ev, utc(2026, 3, 28, 22, 30), "9600", balance="9900")
    assert ev.verdict(utc(2026, 3, 28, 22, 30)).metrics.day_reference == START
    # 00:10 CET on the 29th (23:10Z): a new Prague day; reference = the balance at
    # its start (23:00Z), 9,900.
    sample(ev, utc(2026, 3, 28, 23, 10), "9500", balance="9900")
    v = ev.verdict(utc(2026, 3, 28, 23, 10))
    assert (v.metrics.day_start, v.metrics.next_day_start) == (
        utc(2026, 3, 28, 23),
        utc(2026, 3, 29, 22),  # a 23-hour day
    )
    assert (v.metrics.day_reference, v.metrics.day_loss) == (D(9900), D(400))
    assert v.metrics.day_reference_at == utc(2026, 3, 28, 23)
    assert v.headroom["daily_loss"] == D(100)
    # 23:30 CEST on the 29th (21:30Z) is still the 29th: 9,900 - 9,400 = 500, the limit.
    sample(ev, utc(2026, 3, 29, 21, 30), "9400", balance="9900")
    v = ev.verdict(utc(2026, 3, 29, 21, 30))
    (b,) = v.breaches
    assert (b.rule, b.value, b.limit) == ("daily_loss", D(500), D(500))


def test_the_first_days_reference_is_the_starting_balance() -> None:
    ev = make(daily_loss_pct=5)
    sample(ev, utc(2026, 3, 27, 20), "9501", balance="9800")
    v = ev.verdict(utc(2026, 3, 27, 20))
    assert (v.metrics.day_reference, v.metrics.day_reference_at) == (START, OPENED)
    assert v.status == "in_progress"


@pytest.mark.parametrize(
    ("reference", "expected"),
    [("balance", D(10000)), ("equity", D(10100)), ("higher", D(10100))],
)
def test_daily_loss_reference_kinds(reference: str, expected: Decimal) -> None:
    # balance: at the day start (10,000: no fill yet); equity: the day's first sample.
    ev = make(daily_loss_pct=5, daily_loss_reference=reference)
    sample(ev, utc(2026, 3, 28, 0, 1), "10100", balance="9800")
    sample(ev, utc(2026, 3, 28, 9), "9650", balance="9800")
    v = ev.verdict(utc(2026, 3, 28, 9))
    assert v.metrics.day_reference == expected
    # 10,100 - 9,650 = 450 < 500; 10,000 - 9,650 = 350.
    assert v.status == "in_progress"
    sample(ev, utc(2026, 3, 28, 10), str(expected - 500))
    assert rules_of(ev.verdict(utc(2026, 3, 28, 10))) == ["daily_loss"]


def test_a_daily_loss_pause_holds_until_the_next_day_start_and_does_not_fail() -> None:
    ev = make(
        daily_loss_pct=3,
        daily_loss_action="pause",
        day_time_zone="Europe/Prague",
        daily_loss_reference="equity",
    )
    sample(ev, utc(2026, 3, 28, 10), "9700")  # the 28th's first sample: reference 9,700
    v = ev.verdict(utc(2026, 3, 28, 10))
    assert v.paused_until is None
    sample(ev, utc(2026, 3, 28, 15), "9400")  # 300 below: the limit
    v = ev.verdict(utc(2026, 3, 28, 15))
    assert v.status == "in_progress"
    assert v.paused_until == utc(2026, 3, 28, 23)  # midnight CET
    assert [(p.rule, p.at, p.value) for p in v.pauses] == [
        ("daily_loss", utc(2026, 3, 28, 15), D(300))
    ]
    sample(ev, utc(2026, 3, 28, 16), "9000")  # still the same day: no second pause
    assert len(ev.verdict(utc(2026, 3, 28, 16)).pauses) == 1
    assert ev.verdict(utc(2026, 3, 28, 23)).paused_until is None
    sample(ev, utc(2026, 3, 28, 23, 5), "9000")  # the 29th: new reference 9,000
    sample(ev, utc(2026, 3, 29, 8), "8700")
    v = ev.verdict(utc(2026, 3, 29, 8))
    assert v.paused_until == utc(2026, 3, 29, 22)  # 23-hour day
    assert len(v.pauses) == 2 and v.breaches == ()


# -- profit target, trading days, consistency -------------------------------------------


def test_the_profit_target_is_reached_exactly_at_the_target_and_is_final() -> None:
    ev = make(profit_target_pct=10, max_drawdown_pct=10)
    sample(ev, utc(2026, 3, 27, 13), "10999.99")
    assert ev.verdict(utc(2026, 3, 27, 13)).gates == ("profit_target",)
    sample(ev, utc(2026, 3, 27, 14), "11000.00")
    v = ev.verdict(utc(2026, 3, 27, 14))
    assert (v.status, v.passed_at, v.gates) == ("passed", utc(2026, 3, 27, 14), ())
    sample(ev, utc(2026, 3, 27, 15), "8000")  # too late to fail
    assert ev.verdict(utc(2026, 3, 27, 15)).status == "passed"


def test_a_balance_based_target_ignores_open_profit() -> None:
    ev = make(profit_target_pct=10, profit_target_basis="balance")
    sample(ev, utc(2026, 3, 27, 13), "11500", balance="10999")
    assert ev.verdict(utc(2026, 3, 27, 13)).status == "in_progress"
    sample(ev, utc(2026, 3, 27, 14), "11000", balance="11000")
    assert ev.verdict(utc(2026, 3, 27, 14)).status == "passed"


def test_minimum_trading_days_with_a_profit_threshold() -> None:
    ev = make(profit_target_pct=1, min_trading_days=3, min_trading_day_profit_pct="0.5")
    ev.add_fill(trade(utc(2026, 3, 27, 13), pnl="60.00"))
    ev.add_fill(trade(utc(2026, 3, 28, 13), pnl="49.99"))  # below 50: does not count
    sample(ev, utc(2026, 3, 28, 14), "10200")
    v = ev.verdict(utc(2026, 3, 28, 14))
    assert (v.metrics.trading_days, v.gates) == (1, ("min_trading_days",))
    ev.add_fill(trade(utc(2026, 3, 28, 15), pnl="0.01"))  # the 28th reaches 50.00: counts
    ev.add_fill(trade(utc(2026, 3, 29, 9), pnl="50.00", order_id=2))
    v = ev.verdict(utc(2026, 3, 29, 10))
    assert (v.status, v.passed_at, v.metrics.trading_days) == ("passed", utc(2026, 3, 29, 9), 3)


def test_trading_days_without_a_threshold_count_any_fill() -> None:
    ev = make(min_trading_days=2)
    ev.add_fill(trade(utc(2026, 3, 27, 13)))
    ev.add_fill(trade(utc(2026, 3, 27, 23, 59)))
    assert ev.verdict(utc(2026, 3, 28)).metrics.trading_days == 1
    ev.add_fill(trade(utc(2026, 3, 28)))
    assert ev.verdict(utc(2026, 3, 28)).metrics.trading_days == 2


def test_a_consistency_gate_that_clears_later() -> None:
    ev = make(profit_target_pct=5, consistency_pct=50)
    ev.add_fill(trade(utc(2026, 3, 27, 13), pnl="600.00", side="SELL"))
    sample(ev, utc(2026, 3, 27, 14), "10600")
    v = ev.verdict(utc(2026, 3, 27, 14))
    assert (v.status, v.gates, v.metrics.best_day_share_pct) == (
        "in_progress",
        ("consistency",),
        D(100),
    )
    ev.add_fill(trade(utc(2026, 3, 28, 13), pnl="600.00", side="SELL"))  # 600 of 1,200: 50%
    v = ev.verdict(utc(2026, 3, 28, 14))
    assert (v.status, v.passed_at) == ("passed", utc(2026, 3, 28, 13))
    assert v.metrics.best_day_share_pct == D(50)


def test_consistency_as_a_breach_against_the_target() -> None:
    ev = make(
        profit_target_pct=10, consistency_pct=30, consistency_basis="target",
        consistency_action="breach",
    )  # fmt: skip
    ev.add_fill(trade(utc(2026, 3, 27, 13), pnl="400.00", side="SELL"))  # 40% of 1,000
    ev.add_fill(trade(utc(2026, 3, 28, 13), pnl="300.00", side="SELL"))
    v = ev.verdict(utc(2026, 3, 28, 14))
    assert v.status == "in_progress" and v.gates == ("profit_target",)
    assert [w.rule for w in v.warnings] == ["consistency"]
    sample(ev, utc(2026, 3, 28, 15), "11000")
    v = ev.verdict(utc(2026, 3, 28, 15))
    (b,) = v.breaches
    assert (b.rule, b.at, b.value, b.limit) == ("consistency", utc(2026, 3, 28, 15), D(40), D(30))


def test_consistency_with_no_positive_total_blocks_the_pass() -> None:
    ev = make(profit_target_pct=1, consistency_pct=50)
    ev.add_fill(trade(utc(2026, 3, 27, 13), pnl="100.00", side="SELL"))
    ev.add_fill(trade(utc(2026, 3, 28, 13), pnl="-150.00", side="SELL"))
    sample(ev, utc(2026, 3, 28, 14), "10100")  # open profit reaches the target
    v = ev.verdict(utc(2026, 3, 28, 14))
    assert v.metrics.best_day_share_pct is None and v.gates == ("consistency",)


# -- position limit, inactivity -------------------------------------------------------


def test_the_position_limit_allows_exactly_the_limit_and_names_the_market() -> None:
    ev = make(max_position_pct=5)  # 500.00 per market
    ev.add_fill(trade(utc(2026, 3, 27, 13), quantity="600", price="0.50"))  # 300
    ev.add_fill(trade(utc(2026, 3, 27, 14), quantity="400", price="0.50", order_id=2))  # 500
    v = ev.verdict(utc(2026, 3, 27, 14))
    assert (v.status, v.headroom["position_limit"]) == ("in_progress", D(0))
    ev.add_fill(trade(utc(2026, 3, 27, 15), quantity="500", side="SELL", order_id=3))  # 250 left
    ev.add_fill(trade(utc(2026, 3, 27, 16), quantity="1000", market="0xbb", order_id=4))
    assert ev.verdict(utc(2026, 3, 27, 16)).metrics.largest_position_cost == D(500)
    ev.add_fill(trade(utc(2026, 3, 27, 17), quantity="1", price="0.01", market="0xbb", order_id=5))
    (b,) = ev.verdict(utc(2026, 3, 27, 17)).breaches
    assert (b.rule, b.value, b.limit, b.market_id) == (
        "position_limit",
        D("500.01"),
        D(500),
        "0xbb",
    )


def test_positions_in_a_sample_replace_the_book_kept_from_fills() -> None:
    ev = make(max_position_pct=5)
    ev.add_fill(trade(utc(2026, 3, 27, 13), quantity="800"))  # 400
    # The market resolved: the server's book is empty, no sell fill ever comes.
    ev.add_sample(utc(2026, 3, 27, 14), balance=START, equity=START, positions=[])
    ev.add_fill(trade(utc(2026, 3, 27, 13, 30), quantity="800", order_id=2))  # already in the book
    ev.add_fill(trade(utc(2026, 3, 27, 15), quantity="800", order_id=3))  # 400, not 1,200
    assert ev.verdict(utc(2026, 3, 27, 15)).metrics.largest_position_cost == D(400)
    ev.add_sample(
        utc(2026, 3, 27, 16),
        balance=START,
        equity=START,
        positions=[
            OpenPosition(
                market_id="0xcc", outcome="No", quantity=D(1000), avg_entry_price=D("0.51")
            )
        ],
    )
    (b,) = ev.verdict(utc(2026, 3, 27, 16)).breaches
    assert (b.rule, b.value, b.market_id) == ("position_limit", D("510.00"), "0xcc")


def test_inactivity_counts_calendar_days_in_the_rule_sets_zone() -> None:
    ev = make(inactivity_days=2, day_time_zone="Europe/Prague")
    ev.add_fill(trade(utc(2026, 3, 27, 10 + 3)))  # 14:00 CET on the 27th
    # Two calendar days later is 14:00 CEST on the 29th = 12:00Z: 47 hours.
    assert ev.verdict(utc(2026, 3, 29, 11, 59, 59)).status == "in_progress"
    v = ev.verdict(utc(2026, 3, 29, 12))
    (b,) = v.breaches
    assert (b.rule, b.at, b.value) == ("inactivity", utc(2026, 3, 29, 12), D(2))


def test_a_fill_exactly_at_the_inactivity_deadline_is_too_late() -> None:
    ev = make(inactivity_days=1)
    ev.add_fill(trade(utc(2026, 3, 28, 12)))
    v = ev.verdict(utc(2026, 3, 28, 12))
    assert v.status == "failed" and v.breaches[0].at == utc(2026, 3, 28, 12)


def test_a_fill_resets_the_inactivity_clock() -> None:
    ev = make(inactivity_days=1)
    ev.add_fill(trade(utc(2026, 3, 28, 11, 59)))
    v = ev.verdict(utc(2026, 3, 29, 11))
    assert v.status == "in_progress"
    assert v.metrics.inactivity_deadline == utc(2026, 3, 29, 11, 59)
    assert [w.rule for w in v.warnings] == ["inactivity"]


# -- verdict shape, inputs, state ------------------------------------------------------


def test_a_breach_is_final_and_lists_every_rule_broken_at_that_sample() -> None:
    ev = make(max_drawdown_pct=5, daily_loss_pct=5)
    sample(ev, utc(2026, 3, 27, 13), "9500")
    v = ev.verdict(utc(2026, 3, 27, 13))
    assert rules_of(v) == ["max_loss", "daily_loss"]
    sample(ev, utc(2026, 3, 27, 14), "12000")
    ev.add_fill(trade(utc(2026, 3, 27, 15)))
    assert ev.verdict(utc(2026, 3, 27, 16)).breaches == v.breaches
    assert ev.decided


def test_warnings_start_at_80_percent_used_and_the_threshold_is_configurable() -> None:
    ev = make(max_drawdown_pct=10)
    sample(ev, utc(2026, 3, 27, 13), "9200.01")
    assert ev.verdict(utc(2026, 3, 27, 13)).warnings == ()
    sample(ev, utc(2026, 3, 27, 14), "9200.00")
    (w,) = ev.verdict(utc(2026, 3, 27, 14)).warnings
    assert (w.rule, w.used_pct, w.value, w.limit) == ("max_loss", D(80), D(9200), D(9000))
    ev = make(max_drawdown_pct=10, warn_at_pct=50)
    sample(ev, utc(2026, 3, 27, 14), "9500")
    assert [w.rule for w in ev.verdict(utc(2026, 3, 27, 14)).warnings] == ["max_loss"]


def test_the_verdict_says_which_samples_it_saw() -> None:
    ev = make(max_drawdown_pct=10)
    v = ev.verdict(utc(2026, 3, 27, 18))
    assert (v.samples.count, v.samples.longest_gap) == (0, timedelta(hours=6))
    sample(ev, utc(2026, 3, 27, 13), "10000")
    sample(ev, utc(2026, 3, 27, 16), "10000")
    v = ev.verdict(utc(2026, 3, 27, 17))
    assert (v.samples.count, v.samples.first_at, v.samples.last_at) == (
        2,
        utc(2026, 3, 27, 13),
        utc(2026, 3, 27, 16),
    )
    assert v.samples.longest_gap == timedelta(hours=3)


def test_trades_and_executions_fills_are_both_read() -> None:
    ev = make(max_position_pct=5, min_trading_days=2)
    ev.add_fill(trade(utc(2026, 3, 27, 13), quantity="600"))
    ev.add_fill(
        Fill(
            order_id=9,
            market_id="0xaa",
            side=Side.BUY,
            outcome="Yes",
            price=D("0.50"),
            quantity=D(400),
            filled_at=utc(2026, 3, 28, 13),
        )
    )
    v = ev.verdict(utc(2026, 3, 28, 14))
    assert (v.metrics.trading_days, v.metrics.largest_position_cost) == (2, D(500))
    assert v.metrics.realized_profit == 0  # a Fill carries no realized_pnl


def test_fills_before_the_opening_are_ignored() -> None:
    ev = make(min_trading_days=1, inactivity_days=1)
    ev.add_fill(trade(utc(2026, 3, 27, 11, 59), pnl="500.00", side="SELL"))
    v = ev.verdict(utc(2026, 3, 27, 13))
    assert (v.metrics.fills, v.metrics.trading_days, v.metrics.realized_profit) == (0, 0, 0)


def test_bad_inputs_are_refused() -> None:
    ev = make()
    with pytest.raises(InvalidArgumentError, match="timezone-aware"):
        ev.add_sample(datetime(2026, 3, 28), balance=START, equity=START)
    with pytest.raises(InvalidArgumentError, match="never float"):
        ev.add_sample(utc(2026, 3, 28), balance=10000.0, equity=START)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="before the opening"):
        ev.add_sample(utc(2026, 3, 27, 11), balance=START, equity=START)
    ev.add_sample(utc(2026, 3, 28), balance=START, equity=START)
    with pytest.raises(InvalidArgumentError, match="time order"):
        ev.add_sample(utc(2026, 3, 27, 23), balance=START, equity=START)
    with pytest.raises(InvalidArgumentError, match="RuleSet"):
        Evaluator({"max_drawdown_pct": 5}, starting_balance=START, opened_at=OPENED)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"starting_balance must be at least 0\.01"):
        Evaluator(RuleSet(), starting_balance="0", opened_at=OPENED)
    with pytest.raises(InvalidArgumentError, match="EvaluatorState"):
        Evaluator.restore({})  # type: ignore[arg-type]


def test_the_state_is_compact_json_and_restores_the_marks_and_references() -> None:
    ev = make(
        max_drawdown_pct=10, max_drawdown_mode="trailing", daily_loss_pct=5, max_position_pct=50
    )
    for i in range(1000):
        ev.add_fill(trade(OPENED + timedelta(minutes=i), pnl="1.00", order_id=i))
    sample(ev, utc(2026, 3, 28, 1), "10400")
    data = msgspec.json.encode(ev.state)
    assert len(data) < 1500  # grows with days and positions, not with fills
    back = Evaluator.restore(msgspec.json.decode(data, type=EvaluatorState))
    now = utc(2026, 3, 28, 2)
    assert back.verdict(now) == ev.verdict(now)
    assert back.verdict(now).metrics.high_water_mark == D(10400)


def test_headroom_and_the_next_day_start_for_a_scheduler() -> None:
    ev = make(
        max_drawdown_pct=10,
        daily_loss_pct=3,
        day_time_zone="Europe/Prague",
        daily_loss_reference="equity",
    )
    assert ev.nearest_headroom == D(300)  # min(1,000 max loss, 300 daily)
    assert ev.next_day_start == utc(2026, 3, 27, 23)
    sample(ev, utc(2026, 3, 28, 0), "9200")  # the 28th: reference 9,200
    assert ev.nearest_headroom == D(200)  # 9,200 - 9,000
    assert make().nearest_headroom is None


def test_samples_from_account_states_and_equity_points() -> None:
    state = AccountState(
        account_id="a",
        external_id="x",
        stage="challenge",  # type: ignore[arg-type]
        status="active",  # type: ignore[arg-type]
        balance=D("9875.12"),
        starting_balance=START,
        equity=D("10142.42"),
        unrealized_pnl=D("267.30"),
        open_positions=[
            OpenPosition(
                market_id="0xabc", outcome="Yes", quantity=D(100), avg_entry_price=D("0.41")
            )
        ],
        updated_at=utc(2026, 6, 4, 14, 10),
    )
    s = sample_of(state)
    # The balance is the prop-firm balance: cash 9,875.12 + 100 x 0.41 at cost.
    assert (s.at, s.balance, s.equity) == (utc(2026, 6, 4, 14, 10), D("9916.12"), D("10142.42"))
    assert s.positions == (
        PositionCost(market_id="0xabc", outcome="Yes", quantity=D(100), cost=D("41.00")),
    )
    point = EquityPoint(
        timestamp=utc(2026, 6, 4, 14),
        cash_balance=D(9000),
        position_value=D(500),
        total_value=D(9500),
        pnl=D(-500),
    )
    # Positions held: the point has no cost basis, so no balance (tracked from fills).
    assert sample_of(point) == Sample(at=utc(2026, 6, 4, 14), balance=None, equity=D(9500))
    flat = msgspec.structs.replace(point, position_value=D(0), total_value=D(9000))
    assert sample_of(flat) == Sample(at=utc(2026, 6, 4, 14), balance=D(9000), equity=D(9000))
    with pytest.raises(InvalidArgumentError, match="updated_at"):
        sample_of(msgspec.structs.replace(state, updated_at=None))
    v = evaluate(
        RuleSet(max_drawdown_pct=5),
        starting_balance=START,
        opened_at=utc(2026, 6, 4),
        samples=[point, state],
        now=utc(2026, 6, 5),
    )
    assert rules_of(v) == ["max_loss"] and v.breaches[0].at == utc(2026, 6, 4, 14)


# -- refused inputs change nothing -----------------------------------------------------


class RawFill(msgspec.Struct, frozen=True):
    """A fill of the user's own, with fields of any type."""

    filled_at: Any
    market_id: Any = "0xaa"
    outcome: Any = "Yes"
    side: Any = "BUY"
    price: Any = D("0.5")
    quantity: Any = D(10)
    realized_pnl: Any = None
    fee: Any = None


BAD_AMOUNTS = [
    D("NaN"),
    D("sNaN"),
    D("Infinity"),
    D("-Infinity"),
    D("1e16"),
    D("-1e16"),
    "1e999999",
    "ten",
    1.5,
    True,
    None,
    [1],
]
BAD_FILLS = (
    [{"price": v} for v in [*BAD_AMOUNTS, D("-0.01")]]
    + [{"quantity": v} for v in [*BAD_AMOUNTS, D(0), D(-1000)]]
    + [{"realized_pnl": v} for v in BAD_AMOUNTS if v is not None]
    + [{"fee": v} for v in BAD_AMOUNTS if v is not None]
    + [{"side": v} for v in ["buy", "HOLD", None]]
    + [{"market_id": 5}, {"outcome": None}, {"filled_at": datetime(2026, 3, 28, 1)}]
)
BAD_SAMPLES = (
    [{"balance": v} for v in BAD_AMOUNTS if v is not None]
    + [{"equity": v} for v in BAD_AMOUNTS]
    + [{"positions": [PositionCost(market_id="m", outcome="Yes", quantity=D(-5), cost=D(1))]}]
    + [{"positions": [PositionCost(market_id="m", outcome="Yes", quantity=D(5), cost=D("NaN"))]}]
    + [
        {
            "positions": [
                SimpleNamespace(market_id="m", outcome="No", quantity=D(5), avg_entry_price=1.5)
            ]
        }
    ]
)
EVERY_RULE = {
    "profit_target_pct": 10,
    "max_drawdown_pct": 10,
    "max_drawdown_mode": "trailing",
    "daily_loss_pct": 3,
    "min_trading_days": 2,
    "consistency_pct": 50,
    "max_position_pct": 5,
    "inactivity_days": 3,
}


def fed(steps: int) -> Evaluator:
    """An evaluator with every rule on, fed ``steps`` fills and samples."""
    ev = make(**EVERY_RULE)
    for i in range(steps):
        at = OPENED + timedelta(hours=5 * (i + 1))
        ev.add_fill(trade(at, pnl=str(10 * (i % 3)), side="SELL" if i % 2 else "BUY"))
        sample(ev, at, str(10_000 + 40 * (i % 5)))
    return ev


@given(
    steps=st.integers(0, 6),
    bad=st.sampled_from([("fill", b) for b in BAD_FILLS] + [("sample", b) for b in BAD_SAMPLES]),
)
@settings(max_examples=300, deadline=None)
def test_a_refused_fill_or_sample_leaves_the_evaluator_exactly_as_it_was(
    steps: int, bad: tuple[str, dict[str, Any]]
) -> None:
    ev, twin = fed(steps), fed(steps)
    before = ev.state
    at = OPENED + timedelta(hours=5 * steps + 1)
    with pytest.raises(InvalidArgumentError):
        if bad[0] == "fill":
            ev.add_fill(RawFill(**{"filled_at": at, **bad[1]}))
        else:
            kwargs: dict[str, Any] = {"balance": START, "equity": START, **bad[1]}
            ev.add_sample(at, **kwargs)
    assert ev.state == before
    # ... and it goes on exactly like one that never saw the refused call.
    later = at + timedelta(hours=1)
    for e in (ev, twin):
        e.add_fill(trade(later, pnl="5"))
        sample(e, later, "10100")
    assert ev.verdict(later) == twin.verdict(later)


def test_a_refused_call_names_the_field_and_what_it_accepts() -> None:
    ev = make()
    at = utc(2026, 3, 28)
    with pytest.raises(InvalidArgumentError, match="equity must be a finite amount"):
        ev.add_sample(at, balance=START, equity=D("NaN"))
    with pytest.raises(InvalidArgumentError, match="balance must be at least"):
        ev.add_sample(at, balance=D("1e16"), equity=START)
    with pytest.raises(InvalidArgumentError, match=r"realized_pnl .*never float"):
        ev.add_fill(RawFill(filled_at=at, realized_pnl=1.5))
    with pytest.raises(InvalidArgumentError, match="quantity must be positive"):
        ev.add_fill(RawFill(filled_at=at, quantity=D(-1000)))
    with pytest.raises(InvalidArgumentError, match="side must be 'BUY' or 'SELL'"):
        ev.add_fill(RawFill(filled_at=at, side="buy"))
    with pytest.raises(InvalidArgumentError, match="filled_at must be a timezone-aware"):
        ev.add_fill(RawFill(filled_at=datetime(2026, 3, 28)))
    # Exact strings and ints are accepted, as for samples.
    ev.add_fill(RawFill(filled_at=at, price="0.5", quantity=10, realized_pnl="1.25"))
    assert ev.verdict(at).metrics.realized_profit == D("1.25")


# -- a daily-loss pause blocks a pass until the next day starts ------------------------


PAUSE_RULES = {
    "profit_target_pct": 5,
    "daily_loss_pct": 3,
    "daily_loss_action": "pause",
    "day_time_zone": "Europe/Prague",
    "daily_loss_reference": "equity",
}


def paused_at_the_target(ev: Evaluator) -> None:
    """The 28th: reference 10,400; 300 down at 09:00 (paused); the target reached at 11:00."""
    sample(ev, utc(2026, 3, 28, 1), "10400")
    sample(ev, utc(2026, 3, 28, 9), "10100", balance="10400")
    sample(ev, utc(2026, 3, 28, 11), "10550", balance="10400")


def test_a_paused_day_does_not_end_in_a_pass_and_the_pass_comes_at_the_next_day_start() -> None:
    ev = make(**PAUSE_RULES)
    paused_at_the_target(ev)
    v = ev.verdict(utc(2026, 3, 28, 22, 59))
    assert (v.status, v.paused_until, v.gates) == (
        "in_progress",
        utc(2026, 3, 28, 23),  # midnight CET
        ("daily_loss",),
    )
    v = ev.verdict(utc(2026, 3, 29, 3))  # time alone ends the pause: the pass is at its end
    assert (v.status, v.passed_at, v.paused_until, v.gates) == (
        "passed",
        utc(2026, 3, 28, 23),
        None,
        (),
    )


def test_the_pass_at_the_pause_end_does_not_depend_on_when_the_verdict_is_asked() -> None:
    def run(verdict_in_between: bool) -> Verdict:
        ev = make(**PAUSE_RULES)
        paused_at_the_target(ev)
        if verdict_in_between:
            ev.verdict(utc(2026, 3, 28, 23, 30))
        sample(ev, utc(2026, 3, 29, 1), "10000")  # the next day's sample: below the target
        return ev.verdict(utc(2026, 3, 29, 2))

    assert run(True) == run(False)
    assert run(False).passed_at == utc(2026, 3, 28, 23)


def test_without_the_target_the_pause_end_passes_nothing_and_a_sample_after_it_can() -> None:
    ev = make(**PAUSE_RULES)
    sample(ev, utc(2026, 3, 28, 1), "10400")
    sample(ev, utc(2026, 3, 28, 9), "10100", balance="10400")  # paused, below the target
    assert ev.verdict(utc(2026, 3, 29, 1)).status == "in_progress"
    sample(ev, utc(2026, 3, 29, 2), "10500")
    v = ev.verdict(utc(2026, 3, 29, 2))
    assert (v.status, v.passed_at) == ("passed", utc(2026, 3, 29, 2))


def test_an_inactivity_deadline_before_the_pause_end_fails_the_account() -> None:
    ev = make(**PAUSE_RULES, inactivity_days=1)  # deadline: 2026-03-28 12:00 UTC, no fill
    paused_at_the_target(ev)
    v = ev.verdict(utc(2026, 3, 29))
    assert [(b.rule, b.at) for b in v.breaches] == [("inactivity", utc(2026, 3, 28, 12))]
