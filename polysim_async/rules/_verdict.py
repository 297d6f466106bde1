"""What the evaluator takes in and hands out: samples, verdicts and its saved state.

Every type is a frozen msgspec Struct, so verdicts and states encode with
``msgspec.json.encode`` (decimals as exact strings) and decode back with
``msgspec.json.decode(data, type=...)``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

import msgspec

from .._errors import InvalidArgumentError
from ..models.common import UTCDateTime
from ._ruleset import RuleSet

__all__ = [
    "Breach",
    "ensure_aware",
    "EvaluatorState",
    "Metrics",
    "PositionCost",
    "RuleWarning",
    "Sample",
    "SampleCoverage",
    "Status",
    "Verdict",
]

#: The outcome of a challenge so far.
Status = Literal["in_progress", "passed", "failed"]


class PositionCost(msgspec.Struct, kw_only=True, frozen=True):
    """One open position at cost: ``quantity`` shares that cost ``cost`` in total."""

    market_id: str
    outcome: str
    quantity: Decimal
    cost: Decimal


class Sample(msgspec.Struct, kw_only=True, frozen=True):
    """One observation of an account's money at instant ``at``.

    ``balance`` is the prop-firm balance (the closed-trade balance: cash plus the
    cost of the open positions, see :func:`sample_of`), or ``None`` when the
    observation does not tell it (an equity point of an account holding
    positions): the evaluator then keeps the balance it tracks from fills.
    ``positions``, when given (the ``open_positions`` of an account state), is the
    server's own book at ``at``: it replaces the book the evaluator keeps from
    fills (see :meth:`Evaluator.add_sample`).
    """

    at: UTCDateTime
    balance: Decimal | None
    equity: Decimal
    positions: tuple[PositionCost, ...] | None = None


class Breach(msgspec.Struct, kw_only=True, frozen=True):
    """A rule broken at ``at`` (the sample, fill or deadline at which it broke).

    ``value`` and ``limit`` are what was compared, per rule: ``max_loss``: equity
    and the loss floor; ``daily_loss``: the day's loss and the allowed loss;
    ``position_limit``: the market's position cost and the allowed cost
    (``market_id`` names the market); ``consistency``: the best day's share and the
    allowed share, in percent; ``inactivity``: the days without a fill and the
    allowed days. A daily-loss pause has the same shape.
    """

    rule: str
    at: UTCDateTime
    value: Decimal
    limit: Decimal
    market_id: str | None = None


class RuleWarning(msgspec.Struct, kw_only=True, frozen=True):
    """A limit at least ``RuleSet.warn_at_pct`` percent used (``used_pct``)."""

    rule: str
    used_pct: Decimal
    value: Decimal
    limit: Decimal


class SampleCoverage(msgspec.Struct, kw_only=True, frozen=True):
    """Which samples a verdict saw: equity-based rules are judged only where sampled.

    ``longest_gap`` is the longest stretch without a sample, counting from the
    opening (where balance and equity are the starting balance) to the verdict's
    instant; a loss that came and went inside a gap was not seen.
    """

    count: int
    first_at: UTCDateTime | None
    last_at: UTCDateTime | None
    longest_gap: timedelta


class Metrics(msgspec.Struct, kw_only=True, frozen=True):
    """The numbers behind a verdict (money in the account's currency, exact).

    Attributes:
        balance: the prop-firm balance (cash plus the cost of the open positions):
            as last sampled, moved since by the fills' realised P&L and fees.
        equity: as last sampled (the starting balance before any sample).
        profit, profit_pct: ``equity - starting balance``, and as a share of it.
        realized_profit: the sum of the fills' ``realized_pnl``.
        high_water_mark: the highest equity sampled (at least the starting balance).
        loss_floor: the equity the maximum-loss rule allows (``None`` without it).
        day_start, next_day_start: the current day's bounds (UTC).
        day_reference: the daily-loss reference of the current day: the balance at
            the day start (``"balance"``), or the equity of the day's first sample
            (``"equity"``; ``"higher"``: the higher of the two); ``None`` while an
            equity reference is not known (see ``Verdict.unjudged``).
        day_reference_at: the day start, or the sample the equity came from.
        day_loss: ``day_reference - equity`` for a sample in the current day.
        trading_days: days that count toward ``min_trading_days``.
        best_day_profit: the highest realised profit of one day (0 without one).
        best_day_share_pct: the best day's share of the consistency basis, in
            percent (``None`` when the total profit is not positive).
        largest_position_cost: the cost of the largest open position in one market.
        largest_position_market: that market.
        fills: fills seen.
        last_fill_at: the newest fill seen.
        inactivity_deadline: when the inactivity rule fails the account if no fill
            comes before (``None`` without the rule).
    """

    balance: Decimal
    equity: Decimal
    profit: Decimal
    profit_pct: Decimal
    realized_profit: Decimal
    high_water_mark: Decimal
    loss_floor: Decimal | None
    day_start: UTCDateTime
    next_day_start: UTCDateTime
    day_reference: Decimal | None
    day_reference_at: UTCDateTime | None
    day_loss: Decimal | None
    trading_days: int
    best_day_profit: Decimal
    best_day_share_pct: Decimal | None
    largest_position_cost: Decimal
    largest_position_market: str | None
    fills: int
    last_fill_at: UTCDateTime | None
    inactivity_deadline: UTCDateTime | None


class Verdict(msgspec.Struct, kw_only=True, frozen=True):
    """An account judged against its rule set at instant ``at``.

    ``"passed"`` and ``"failed"`` are final: judging stops at the event that
    decided it, so later samples never turn a verdict back.

    Attributes:
        status: ``"in_progress"``, ``"passed"`` or ``"failed"``.
        at: the instant judged.
        breaches: the rules broken at the failing event (empty unless failed).
        passed_at: when the account passed.
        paused_until: the next day start while a daily-loss pause holds.
        pauses: every daily-loss pause so far.
        gates: the rules still blocking a pass (``"profit_target"``,
            ``"min_trading_days"``, ``"consistency"``, and ``"daily_loss"`` while a
            daily-loss pause holds: a paused day never ends in a pass).
        metrics: the numbers behind the verdict.
        headroom: money left before each money limit, by rule (``"max_loss"``,
            ``"daily_loss"``, ``"position_limit"``).
        warnings: limits at least ``warn_at_pct`` used (none once decided).
        samples: which samples the verdict saw.
        unjudged: the rules not fully judged today for want of a sample:
            ``"daily_loss"`` when its reference is ``"equity"`` or ``"higher"`` and
            a fill of the day came before the day's first sample, so the equity at
            the day start is unknown. ``"equity"``: no daily loss is judged that
            day; ``"higher"``: it is judged against the start-of-day balance (a
            lower bound of the reference: every breach found is real, a loss
            between the two may be missed).
    """

    status: Status
    at: UTCDateTime
    breaches: tuple[Breach, ...]
    passed_at: UTCDateTime | None
    paused_until: UTCDateTime | None
    pauses: tuple[Breach, ...]
    gates: tuple[str, ...]
    metrics: Metrics
    headroom: dict[str, Decimal]
    warnings: tuple[RuleWarning, ...]
    samples: SampleCoverage
    unjudged: tuple[str, ...] = ()


class EvaluatorState(msgspec.Struct, kw_only=True, frozen=True):
    """Everything an :class:`Evaluator` knows, to save and :meth:`~Evaluator.restore`.

    Its size grows with the days of the challenge and the open positions, not
    with the fills: a few hundred bytes of JSON for a typical account.
    """

    rules: RuleSet
    starting_balance: Decimal
    opened_at: UTCDateTime
    clock: UTCDateTime
    balance: Decimal
    equity: Decimal
    samples: int = 0
    first_sample_at: UTCDateTime | None = None
    last_sample_at: UTCDateTime | None = None
    last_sample_day: int = 0
    longest_gap: timedelta = timedelta(0)
    high_water_mark: Decimal
    eod_high: Decimal
    floor: Decimal | None = None
    reference: Decimal | None = None
    reference_day: int = 0
    reference_at: UTCDateTime | None = None
    paused_until: UTCDateTime | None = None
    pauses: tuple[Breach, ...] = ()
    fills: int = 0
    last_fill_at: UTCDateTime | None = None
    day_profits: dict[int, Decimal] = msgspec.field(default_factory=dict)
    positions: tuple[PositionCost, ...] = ()
    positions_as_of: UTCDateTime | None = None
    breaches: tuple[Breach, ...] = ()
    passed_at: UTCDateTime | None = None
    #: The balance follows fills newer than ``balance_as_of`` (the last sample that
    #: gave a balance; ``None``: every fill). States saved before it existed
    #: (``tracks_balance`` false) read ``last_sample_at`` instead.
    tracks_balance: bool = False
    balance_as_of: UTCDateTime | None = None
    #: The balance at the start of ``reference_day``.
    day_balance: Decimal | None = None
    #: A fill of ``reference_day`` came before its first sample.
    reference_unjudged: bool = False


def ensure_aware(at: datetime, what: str) -> datetime:
    """Return ``at`` if it is timezone-aware.

    Raises:
        InvalidArgumentError: ``at`` is naive or not a datetime.
    """
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InvalidArgumentError(f"{what} must be a timezone-aware datetime, got {at!r}")
    return at
