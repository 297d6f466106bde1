"""Properties of the evaluator on random rule sets and random fill and sample sequences.

The oracle is the brute-force reference in ``_reference.py``. Rule sets, money and
times are drawn on coarse grids so that values land exactly on limits and events
fall on day boundaries (in Europe/Prague, across the March 2026 DST change) often.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polysim_async import Rules
from polysim_async.rules import Evaluator, EvaluatorState, RuleSet, evaluate

from ._reference import RFill, RSample, reference, summarise

START = Decimal(1000)
OPENED = datetime(2026, 3, 27, 21, 0, tzinfo=timezone.utc)  # Prague jumps to CEST on 03-29

PROFILE = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def pcts(*values: int | str) -> st.SearchStrategy[Decimal | None]:
    return st.one_of(st.none(), st.sampled_from([Decimal(v) for v in values]))


@st.composite
def rule_sets(draw: st.DrawFn) -> RuleSet:
    """Random rule sets; a parameter that shapes a rule is drawn only with its rule."""
    target = draw(pcts(2, 5, 10))
    drawdown = draw(pcts(5, 10, "7.5", 100))
    mode = draw(st.sampled_from(["static", "trailing", "eod_trailing"])) if drawdown else "static"
    daily = draw(pcts(2, 3, 5))
    min_days = draw(st.one_of(st.none(), st.integers(1, 3)))
    consistency = draw(pcts(30, 50, 100))
    basis = draw(st.sampled_from(["total_profit", "target"])) if consistency else "total_profit"
    if basis == "target" and not target:
        basis = "total_profit"

    def shaping(present: object, choices: list[Any], default: Any) -> Any:
        return draw(st.sampled_from(choices)) if present is not None else default

    return RuleSet(
        profit_target_pct=target,
        profit_target_basis=shaping(target, ["equity", "balance"], "equity"),
        max_drawdown_pct=drawdown,
        max_drawdown_mode=mode,
        max_drawdown_eod_basis="balance"
        if mode != "eod_trailing"
        else draw(st.sampled_from(["balance", "equity"])),
        max_drawdown_lock_at_start=mode != "static" and draw(st.booleans()),
        daily_loss_pct=daily,
        daily_loss_reference=shaping(daily, ["balance", "equity", "higher"], "balance"),
        daily_loss_action=shaping(daily, ["breach", "pause"], "breach"),
        day_start_time=draw(st.sampled_from(["00:00", "02:30", "17:00"])),
        day_time_zone=draw(st.sampled_from(["UTC", "Europe/Prague", "America/New_York"])),
        min_trading_days=min_days,
        min_trading_day_profit_pct=draw(pcts(0, 1)) if min_days else None,
        consistency_pct=consistency,
        consistency_basis=basis,
        consistency_action=shaping(consistency, ["gate", "breach"], "gate"),
        max_position_pct=draw(pcts(1, 5, 20)),
        inactivity_days=draw(st.one_of(st.none(), st.integers(1, 2))),
        breach_at_limit=draw(st.booleans()),
    )


MARKETS = ["0xaa", "0xbb"]


@st.composite
def events(draw: st.DrawFn) -> tuple[list[Any], datetime]:
    """Fills and samples in time order (steps of 0 to 30 hours), and the verdict instant."""
    n = draw(st.integers(0, 25))
    t = OPENED + timedelta(minutes=draw(st.integers(-120, 120)))
    out: list[Any] = []
    order_id = 0
    for _ in range(n):
        t += timedelta(minutes=draw(st.sampled_from([0, 30, 90, 150, 360, 720, 1440, 1800])))
        if draw(st.booleans()):
            order_id += 1
            pnl = draw(st.one_of(st.none(), st.integers(-30, 60).map(Decimal)))
            fee = draw(st.sampled_from([None, Decimal(0), Decimal("0.5"), Decimal(3)]))
            out.append(
                RFill(
                    filled_at=t,
                    market_id=draw(st.sampled_from(MARKETS)),
                    outcome=draw(st.sampled_from(["Yes", "No"])),
                    side=draw(st.sampled_from(["BUY", "SELL"])),
                    price=Decimal(draw(st.sampled_from(["0.25", "0.5", "0.8"]))),
                    quantity=Decimal(draw(st.sampled_from([10, 40, 100, 200]))),
                    realized_pnl=pnl,
                    order_id=order_id,
                    fee=fee,
                )
            )
        else:
            if t < OPENED:
                continue
            balance = START + 10 * draw(st.integers(-12, 12))
            equity = balance + 10 * draw(st.integers(-8, 8))
            positions = None
            if draw(st.integers(0, 4)) == 0:
                positions = tuple(
                    (m, "Yes", Decimal(q), Decimal(q) * Decimal("0.5"))
                    for m, q in zip(
                        MARKETS,
                        draw(st.lists(st.sampled_from([0, 20, 100, 300]), max_size=2)),
                        strict=False,
                    )
                )
            # An equity point of an account holding positions gives no balance.
            out.append(
                RSample(t, None if draw(st.integers(0, 3)) == 0 else balance, equity, positions)
            )
    now = t + timedelta(minutes=draw(st.sampled_from([0, 60, 1440, 4000])))
    return out, now


def feed(evaluator: Evaluator, items: list[Any]) -> None:
    for e in items:
        if isinstance(e, RFill):
            evaluator.add_fill(e)
        else:
            positions = None
            if e.positions is not None:
                from polysim_async.rules import PositionCost

                positions = [
                    PositionCost(market_id=m, outcome=o, quantity=q, cost=c)
                    for m, o, q, c in e.positions
                ]
            evaluator.add_sample(e.at, balance=e.balance, equity=e.equity, positions=positions)


@PROFILE
@given(rule_sets(), events())
def test_the_evaluator_agrees_with_the_brute_force_reference(
    rules: RuleSet, stream: tuple[list[Any], datetime]
) -> None:
    items, now = stream
    evaluator = Evaluator(rules, starting_balance=START, opened_at=OPENED)
    feed(evaluator, items)
    expected = reference(rules, START, OPENED, items, now)
    expected.pop("floors")
    assert summarise(evaluator.verdict(now)) == expected


@PROFILE
@given(rule_sets(), events())
def test_the_floor_never_falls_and_a_decision_is_never_undone(
    rules: RuleSet, stream: tuple[list[Any], datetime]
) -> None:
    items, _ = stream
    evaluator = Evaluator(rules, starting_balance=START, opened_at=OPENED)
    floor = evaluator.state.floor
    decided: Any = None
    for e in items:
        feed(evaluator, [e])
        at = e.filled_at if isinstance(e, RFill) else e.at
        verdict = evaluator.verdict(max(at, OPENED))
        new_floor = verdict.metrics.loss_floor
        if floor is not None:
            assert new_floor is not None and new_floor >= floor
        floor = new_floor
        if decided is not None:
            assert (verdict.status, verdict.breaches, verdict.passed_at) == decided
        elif verdict.status != "in_progress":
            decided = (verdict.status, verdict.breaches, verdict.passed_at)


@PROFILE
@given(rule_sets(), events(), st.integers(0, 25))
def test_restoring_a_saved_state_mid_stream_changes_nothing(
    rules: RuleSet, stream: tuple[list[Any], datetime], cut: int
) -> None:
    items, now = stream
    cut = min(cut, len(items))
    straight = Evaluator(rules, starting_balance=START, opened_at=OPENED)
    feed(straight, items)
    first = Evaluator(rules, starting_balance=START, opened_at=OPENED)
    feed(first, items[:cut])
    saved = msgspec.json.encode(first.state)
    resumed = Evaluator.restore(msgspec.json.decode(saved, type=EvaluatorState))
    assert resumed.state == first.state
    feed(resumed, items[cut:])
    assert resumed.verdict(now) == straight.verdict(now)
    assert resumed.state == straight.state


@PROFILE
@given(rule_sets(), events())
def test_evaluate_in_one_go_matches_feeding_in_order(
    rules: RuleSet, stream: tuple[list[Any], datetime]
) -> None:
    from polysim_async.rules import PositionCost, Sample

    items, now = stream
    # evaluate()'s order: by time, a fill before a sample at the same instant.
    canonical = sorted(
        items,
        key=lambda e: (e.filled_at, 0, e.order_id) if isinstance(e, RFill) else (e.at, 1, 0),
    )
    evaluator = Evaluator(rules, starting_balance=START, opened_at=OPENED)
    feed(evaluator, canonical)
    fills = [e for e in items if isinstance(e, RFill)]
    samples = [
        Sample(
            at=e.at,
            balance=e.balance,
            equity=e.equity,
            positions=None
            if e.positions is None
            else tuple(
                PositionCost(market_id=m, outcome=o, quantity=q, cost=c)
                for m, o, q, c in e.positions
            ),
        )
        for e in items
        if isinstance(e, RSample)
    ]
    # Newest first, as the trade feed pages: evaluate() sorts.
    one_shot = evaluate(
        rules,
        starting_balance=START,
        opened_at=OPENED,
        fills=fills[::-1],
        samples=samples,
        now=now,
    )
    assert one_shot == evaluator.verdict(now)


@given(rule_sets())
@PROFILE
def test_every_valid_rule_set_round_trips_through_the_server_echo(rules: RuleSet) -> None:
    """Stored with the client's encoding and read back the way the client decodes ``rules``."""
    text = msgspec.json.Encoder(decimal_format="number").encode(rules.to_wire())
    assert RuleSet.from_wire(Rules.from_json(text)) == rules
    assert RuleSet.from_wire(msgspec.json.decode(text)) == rules  # numbers as floats
