"""Rules engine throughput: fills per second through ``Evaluator.add_fill``.

Fills are partner ``Trade`` objects decoded from the wire (their money fields turn
into ``Decimal`` when read), spread over 30 days so day boundaries are crossed.
The baseline, measured in the same run, is a loop that only reads the attributes
the evaluator reads; the ratio is the evaluator's own cost on top of reading them.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgspec

from benchmarks._common import Row, best_of, make_fills, rate
from polysim_async import Evaluator, RuleSet, Trade, evaluate

NAME = "evaluator"
OPENED = datetime(2026, 3, 1, tzinfo=timezone.utc)
START = Decimal("1000000.00")

#: Every rule on, with limits no fill reaches, so no work is ever skipped.
EVERY_RULE = RuleSet(
    profit_target_pct=Decimal(1000),
    max_drawdown_pct=Decimal(10),
    max_drawdown_mode="trailing",
    daily_loss_pct=Decimal(5),
    day_time_zone="Europe/Prague",
    min_trading_days=5,
    min_trading_day_profit_pct=Decimal("0.01"),
    consistency_pct=Decimal(40),
    max_position_pct=Decimal(100_000),
    inactivity_days=30,
)
SEED_RULES = RuleSet(profit_target_pct=Decimal(20), max_drawdown_pct=Decimal(10))


def trades(count: int) -> list[Trade]:
    """``count`` decoded trades, oldest first, one every ``30 days / count``."""
    rows = make_fills(count)[::-1]
    step = timedelta(days=30) / max(count, 1)
    for i, row in enumerate(rows):
        row["filled_at"] = (OPENED + step * (i + 1)).isoformat()
    return msgspec.json.decode(msgspec.json.encode(rows), type=list[Trade])


def run(*, quick: bool = False, fills: int = 20_000) -> list[Row]:
    """Run the evaluator benchmark; ``quick`` uses few fills and rounds (smoke/CI)."""
    if quick:
        fills = min(fills, 2_000)
    feed = trades(fills)
    now = OPENED + timedelta(days=31)

    def every_rule() -> Any:
        ev = Evaluator(EVERY_RULE, starting_balance=START, opened_at=OPENED)
        for t in feed:
            ev.add_fill(t)
        return ev

    def seed_rules() -> Any:
        ev = Evaluator(SEED_RULES, starting_balance=START, opened_at=OPENED)
        for t in feed:
            ev.add_fill(t)
        return ev

    def read_only() -> Any:
        last: Any = None
        for t in feed:
            last = (t.filled_at, t.market_id, t.outcome, t.side, t.price, t.quantity)
            last = (t.realized_pnl, t.fee)
        return last

    def one_shot() -> Any:
        return evaluate(
            EVERY_RULE, starting_balance=START, opened_at=OPENED, fills=feed[::-1], now=now
        )

    # Sanity: every fill counted, nothing decided (so nothing was skipped).
    checked = every_rule().verdict(now)
    assert checked.metrics.fills == fills and checked.status == "in_progress", checked

    funcs = {
        "add_fill, every rule": every_rule,
        "add_fill, seed rules": seed_rules,
        "evaluate(), every rule, newest first": one_shot,
        "read the same attributes (floor)": read_only,
    }
    best = best_of(funcs, rounds=2 if quick else 7, min_time=0.01 if quick else 0.2)
    floor = best["read the same attributes (floor)"]
    rows = []
    for name, secs in best.items():
        ratio = "1.00x (floor)" if secs == floor else f"{secs / floor:.2f}x the floor"
        rows.append(Row(NAME, name, rate(fills, secs) + " fills", ratio, extra={"seconds": secs}))
    per_s = fills / best["add_fill, every rule"]
    rows.append(
        Row(
            NAME,
            "target: add_fill, every rule",
            f"{per_s:,.0f} fills/s",
            target=">= 200,000/s",
            met=per_s >= 200_000,
        )
    )
    return rows
