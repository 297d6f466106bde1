"""A brute-force reference evaluator, written apart from the library from the rules table.

It keeps only the event history and recomputes every quantity from it at every
event (no running sums, no caches, no day cache), so a bookkeeping mistake in the
incremental :class:`~polysim_async.rules.Evaluator` shows up as a disagreement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from polysim_async.rules import RuleSet


@dataclass(frozen=True)
class RFill:
    filled_at: datetime
    market_id: str
    outcome: str
    side: str
    price: Decimal
    quantity: Decimal
    realized_pnl: Decimal | None
    order_id: int = 0
    fee: Decimal | None = None


@dataclass(frozen=True)
class RSample:
    at: datetime
    #: the prop-firm balance (cash + positions at cost), or None: not observed
    balance: Decimal | None
    equity: Decimal
    #: (market_id, outcome, quantity, cost) per open position, or None
    positions: tuple[tuple[str, str, Decimal, Decimal], ...] | None = None


def day_start(rules: RuleSet, d: int) -> datetime:
    hh, mm = (int(x) for x in rules.day_start_time.split(":"))
    zone = timezone.utc if rules.day_time_zone == "UTC" else ZoneInfo(rules.day_time_zone)
    local = datetime(*date.fromordinal(d).timetuple()[:3], hh, mm, tzinfo=zone)
    return local.astimezone(timezone.utc)


def day_of(rules: RuleSet, t: datetime) -> int:
    """The largest ordinal whose start is at or before ``t`` (a linear search)."""
    d = t.astimezone(timezone.utc).date().toordinal() + 2
    while day_start(rules, d) > t:
        d -= 1
    return d


def add_days(rules: RuleSet, t: datetime, n: int) -> datetime:
    zone = timezone.utc if rules.day_time_zone == "UTC" else ZoneInfo(rules.day_time_zone)
    local = t.astimezone(zone)
    naive = local.replace(tzinfo=None) + timedelta(days=n)
    return naive.replace(tzinfo=zone, fold=0).astimezone(timezone.utc)


@dataclass
class Outcome:
    breaches: list[tuple[str, datetime, Decimal, Decimal, str | None]] = field(default_factory=list)
    passed_at: datetime | None = None
    pauses: list[tuple[str, datetime, Decimal, Decimal, str | None]] = field(default_factory=list)
    floors: list[Decimal | None] = field(default_factory=list)
    #: the balance at each day start the clock crossed (day -> balance)
    day_balances: dict[int, Decimal] = field(default_factory=dict)


def pct(start: Decimal, p: Decimal | None) -> Decimal | None:
    return None if p is None else start * p / 100


def reference(
    rules: RuleSet, start: Decimal, opened: datetime, events: list[Any], now: datetime
) -> dict[str, Any]:
    """Judge ``events`` (fills and samples, in the given order); sum up the verdict at ``now``."""
    M = pct(start, rules.max_drawdown_pct)
    daily = pct(start, rules.daily_loss_pct)
    target = pct(start, rules.profit_target_pct)
    pos_limit = pct(start, rules.max_position_pct)
    day_thr = pct(start, rules.min_trading_day_profit_pct)
    cap = start if rules.max_drawdown_lock_at_start else None
    touch = rules.breach_at_limit
    implicit = RSample(opened, start, start)
    out = Outcome()
    seen: list[Any] = []

    def samples() -> list[RSample]:
        return [implicit] + [e for e in seen if isinstance(e, RSample)]

    def fills() -> list[RFill]:
        return [e for e in seen if isinstance(e, RFill)]

    def clock() -> datetime:
        return max([opened] + [e.filled_at if isinstance(e, RFill) else e.at for e in seen])

    def balance() -> Decimal:
        """The last balance sampled (processing order), plus the fills processed after
        it that are newer than it: realised P&L, or minus the fee without one."""
        base, as_of, index = start, None, -1
        for i, e in enumerate(seen):
            if isinstance(e, RSample) and e.balance is not None:
                base, as_of, index = e.balance, e.at, i
        for e in seen[index + 1 :]:
            if isinstance(e, RFill) and (as_of is None or e.filled_at > as_of):
                base += e.realized_pnl if e.realized_pnl is not None else -(e.fee or 0)
        return base

    def cross(t: datetime) -> None:
        """Time moves to ``t``: a day start passed on the way records the balance then."""
        if t > clock() and day_of(rules, t) > day_of(rules, clock()):
            out.day_balances[day_of(rules, t)] = balance()

    def capped(x: Decimal) -> Decimal:
        return x if cap is None or x <= cap else cap

    def floor() -> Decimal | None:
        if M is None:
            return None
        ss = samples()
        if rules.max_drawdown_mode == "static":
            return start - M
        if rules.max_drawdown_mode == "trailing":
            return max(capped(s.equity - M) for s in ss)
        closes = [start]
        if rules.max_drawdown_eod_basis == "balance":
            closes += out.day_balances.values()  # the balance at each day start
        else:
            for i, s in enumerate(ss[1:], start=1):
                if day_of(rules, s.at) > max(day_of(rules, p.at) for p in ss[:i]):
                    closes.append(s.equity)
        return max(capped(c - M) for c in closes)

    def unjudged(day: int) -> bool:
        """A fill of ``day`` was processed before the day's first sample."""
        if day == day_of(rules, opened):
            return False
        for e in seen:
            if isinstance(e, RSample) and day_of(rules, e.at) == day:
                return False
            if isinstance(e, RFill) and day_of(rules, e.filled_at) == day:
                return True
        return False

    def reference_of(day: int) -> tuple[Decimal, datetime] | None:
        if day == day_of(rules, opened):
            return start, opened
        kind = rules.daily_loss_reference
        b = out.day_balances[day]
        if kind == "balance":
            return b, day_start(rules, day)
        if unjudged(day):
            return None if kind == "equity" else (b, day_start(rules, day))
        for s in samples():
            if day_of(rules, s.at) == day:
                return (s.equity if kind == "equity" else max(b, s.equity)), s.at
        return None

    def day_profits() -> dict[int, Decimal]:
        out_: dict[int, Decimal] = {}
        for f in fills():
            d = day_of(rules, f.filled_at)
            out_[d] = out_.get(d, Decimal(0)) + (f.realized_pnl or Decimal(0))
        return out_

    def qualifying() -> int:
        return sum(1 for p in day_profits().values() if day_thr is None or p >= day_thr)

    def share() -> Decimal | None:
        profits = day_profits()
        best = max(profits.values(), default=Decimal(0))
        if best <= 0:
            return Decimal(0)
        if rules.consistency_basis == "target":
            assert target
            return best * 100 / target
        total = sum(profits.values(), Decimal(0))
        return best * 100 / total if total > 0 else None

    def book() -> dict[str, Decimal]:
        """Cost per market: the last positions sample, then the fills after it, replayed."""
        positions: dict[tuple[str, str], list[Decimal]] = {}
        as_of = None
        for s in samples():
            if s.positions is not None:
                as_of = s.at
                positions = {(m, o): [q, c] for m, o, q, c in s.positions if q > 0}
        # Replay in processing order, from scratch after the last positions sample.
        last_positions_index = max(
            (i for i, e in enumerate(seen) if isinstance(e, RSample) and e.positions is not None),
            default=-1,
        )
        for e in seen[last_positions_index + 1 :]:
            if not isinstance(e, RFill) or (as_of is not None and e.filled_at <= as_of):
                continue
            key = (e.market_id, e.outcome)
            if e.side == "BUY":
                held = positions.setdefault(key, [Decimal(0), Decimal(0)])
                held[0] += e.quantity
                held[1] += e.price * e.quantity
            elif key in positions:
                q, c = positions[key]
                if e.quantity >= q:
                    del positions[key]
                else:
                    positions[key] = [q - e.quantity, c - c * e.quantity / q]
        # Fills before a positions sample but processed after it are ignored by both.
        costs: dict[str, Decimal] = {}
        for (m, _), (_, c) in positions.items():
            costs[m] = costs.get(m, Decimal(0)) + c
        return costs

    def last_activity() -> datetime:
        times = [f.filled_at for f in fills()]
        return max([*times, opened])

    def decided() -> bool:
        return bool(out.breaches) or out.passed_at is not None

    def basis_profit() -> Decimal:
        s = samples()[-1]
        return (s.equity if rules.profit_target_basis == "equity" else balance()) - start

    def violated() -> bool:
        sh = share()
        return rules.consistency_pct is not None and (sh is None or sh > rules.consistency_pct)

    def pause_end() -> datetime | None:
        if not out.pauses:
            return None
        return day_start(rules, day_of(rules, out.pauses[-1][1]) + 1)

    def try_pass(at: datetime) -> None:
        if target is None or basis_profit() < target:
            return
        if any(day_of(rules, p[1]) == day_of(rules, at) for p in out.pauses):
            return  # a paused day never ends in a pass
        if rules.min_trading_days and qualifying() < rules.min_trading_days:
            return
        if violated():
            if rules.consistency_action == "breach":
                sh = share()
                assert rules.consistency_pct is not None
                out.breaches.append(
                    (
                        "consistency",
                        at,
                        Decimal("Infinity") if sh is None else sh,
                        rules.consistency_pct,
                        None,
                    )
                )
            return
        out.passed_at = at

    def time_passes(t: datetime) -> None:
        if decided() or t <= clock():
            return
        deadline = None
        if rules.inactivity_days:
            deadline = add_days(rules, last_activity(), rules.inactivity_days)
        end = pause_end()
        # The pause's day is over: the pass it held back happens at the next day start.
        if end is not None and clock() < end <= t and (deadline is None or end < deadline):
            try_pass(end)
        if rules.inactivity_days and not decided():
            assert deadline is not None
            if t >= deadline:
                n = Decimal(rules.inactivity_days)
                out.breaches.append(("inactivity", deadline, n, n, None))

    for e in events:
        if isinstance(e, RFill):
            if e.filled_at < opened:
                continue
            cross(e.filled_at)
            time_passes(e.filled_at)
            seen.append(e)
            if not decided() and e.side == "BUY" and pos_limit is not None:
                cost = book().get(e.market_id, Decimal(0))
                if cost > pos_limit:
                    out.breaches.append(
                        ("position_limit", e.filled_at, cost, pos_limit, e.market_id)
                    )
            if not decided():
                try_pass(e.filled_at)
        else:
            cross(e.at)
            time_passes(e.at)
            seen.append(e)
            fl = floor()
            if not decided():
                broken = []
                if fl is not None and (e.equity <= fl if touch else e.equity < fl):
                    broken.append(("max_loss", e.at, e.equity, fl, None))
                day = day_of(rules, e.at)
                ref = reference_of(day)
                if daily is not None and ref is not None:
                    loss = ref[0] - e.equity
                    if loss >= daily if touch else loss > daily:
                        hit = ("daily_loss", e.at, loss, daily, None)
                        if rules.daily_loss_action == "breach":
                            broken.append(hit)
                        elif not any(day_of(rules, p[1]) == day for p in out.pauses):
                            out.pauses.append(hit)
                if e.positions is not None and pos_limit is not None:
                    costs = book()
                    worst = max(costs.values(), default=Decimal(0))
                    if worst > pos_limit:
                        market = next(m for m, c in costs.items() if c == worst)
                        broken.append(("position_limit", e.at, worst, pos_limit, market))
                out.breaches.extend(broken)
                if not broken:
                    try_pass(e.at)
        out.floors.append(floor())
    cross(now)
    time_passes(now)
    t = max(now, clock())
    today = day_of(rules, t)
    last = samples()[-1]
    ref = reference_of(today)
    headroom: dict[str, Decimal] = {}
    fl = floor()
    if fl is not None:
        headroom["max_loss"] = last.equity - fl
    if daily is not None and ref is not None:
        headroom["daily_loss"] = daily - (ref[0] - last.equity)
    if pos_limit is not None:
        headroom["position_limit"] = pos_limit - max(book().values(), default=Decimal(0))
    status = "failed" if out.breaches else "passed" if out.passed_at else "in_progress"
    gates = []
    if status == "in_progress":
        if target is not None and basis_profit() < target:
            gates.append("profit_target")
        if rules.min_trading_days and qualifying() < rules.min_trading_days:
            gates.append("min_trading_days")
        if rules.consistency_action == "gate" and violated():
            gates.append("consistency")
    paused = None
    end = pause_end()
    if status == "in_progress" and end is not None and t < end:
        paused = end
        gates.append("daily_loss")
    return {
        "status": status,
        "breaches": out.breaches,
        "passed_at": out.passed_at,
        "pauses": out.pauses,
        "paused_until": paused,
        "gates": gates,
        "headroom": headroom,
        "floor": fl,
        "high_water_mark": max(s.equity for s in samples()),
        "trading_days": qualifying(),
        "share": share(),
        "day_reference": None if ref is None else ref[0],
        "unjudged": ["daily_loss"]
        if daily is not None and rules.daily_loss_reference != "balance" and unjudged(today)
        else [],
        "balance": balance(),
        "floors": out.floors,
    }


def summarise(verdict: Any) -> dict[str, Any]:
    """The same summary of a library :class:`Verdict`."""
    return {
        "status": verdict.status,
        "breaches": [(b.rule, b.at, b.value, b.limit, b.market_id) for b in verdict.breaches],
        "passed_at": verdict.passed_at,
        "pauses": [(b.rule, b.at, b.value, b.limit, b.market_id) for b in verdict.pauses],
        "paused_until": verdict.paused_until,
        "gates": list(verdict.gates),
        "headroom": dict(verdict.headroom),
        "floor": verdict.metrics.loss_floor,
        "high_water_mark": verdict.metrics.high_water_mark,
        "trading_days": verdict.metrics.trading_days,
        "share": verdict.metrics.best_day_share_pct,
        "day_reference": verdict.metrics.day_reference,
        "unjudged": list(verdict.unjudged),
        "balance": verdict.metrics.balance,
    }
