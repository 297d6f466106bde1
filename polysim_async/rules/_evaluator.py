"""The rule engine: judge one account, incrementally and exactly, from fills and samples.

Pure: no I/O, no clock of its own. Time moves only with what it is given: the
``filled_at`` of fills, the ``at`` of samples and the ``now`` of a verdict. Money
is ``Decimal`` throughout; nothing goes through ``float``.

What each rule needs (the README's rules table has the definitions):

* fills (``filled_at``): minimum trading days, inactivity;
* fills' ``realized_pnl`` (read when the object has it, e.g. a partner
  :class:`~polysim_async.Trade`; an executions ``Fill`` has none and counts as
  zero profit): the per-day profit behind the day threshold and consistency;
* fills' ``market_id``, ``outcome``, ``side``, ``price``, ``quantity``: the
  position book behind the position limit;
* samples (``balance``, ``equity``): profit target, maximum loss, daily loss;
  a sample's ``positions`` (an account state's ``open_positions``) replaces the
  book kept from fills, which then resumes from fills newer than the sample;
* the balance (the prop-firm, closed-trade balance: cash plus the cost of open
  positions) moves only by realised P&L and fees, so between samples it follows
  the fills (``realized_pnl`` when given, else ``-fee``), and the balance at
  every day start is known from fills even when no sample fell there.

Order: feed fills and samples in time order for the exact result. Samples must
not go back in time. A fill older than the newest event is still counted in its
own day and book, but time-driven checks (inactivity) never run backwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Protocol

import msgspec

from .._errors import DecodeError, InvalidArgumentError
from ..models.account import EquityPoint
from ..models.partner import AccountState
from ._days import DayClock
from ._ruleset import RuleSet
from ._verdict import (
    Breach,
    EvaluatorState,
    Metrics,
    PositionCost,
    RuleWarning,
    Sample,
    SampleCoverage,
    Status,
    Verdict,
    ensure_aware,
)

__all__ = ["MAX_AMOUNT", "Evaluator", "FillLike", "PositionLike", "evaluate", "sample_of"]

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_INFINITY = Decimal("Infinity")
_MIN_START = Decimal("0.01")
_SIDES = ("BUY", "SELL")


class FillLike(Protocol):
    """What the evaluator reads from a fill: a partner ``Trade``, an executions ``Fill``, yours.

    ``realized_pnl`` and ``fee`` (``Decimal | None``) are read too when the
    object has them: a fill moves the balance by its ``realized_pnl`` (the
    server's, net of the fee, as on a partner ``Trade``'s closing fill) or, when
    that is ``None``, by ``-fee`` (an opening fill's fee).
    """

    @property
    def filled_at(self) -> datetime: ...
    @property
    def market_id(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def side(self) -> str: ...
    @property
    def price(self) -> Decimal: ...
    @property
    def quantity(self) -> Decimal: ...


class PositionLike(Protocol):
    """An open position as the server reports it (an ``OpenPosition``)."""

    @property
    def market_id(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def quantity(self) -> Decimal: ...
    @property
    def avg_entry_price(self) -> Decimal: ...


#: The largest amount (money, price, quantity) the evaluator takes, in magnitude.
MAX_AMOUNT = Decimal(10) ** 15


def _money(name: str, value: object, *, low: Decimal = -MAX_AMOUNT) -> Decimal:
    """``value`` as an exact amount in ``[low, MAX_AMOUNT]``.

    Raises:
        InvalidArgumentError: a float, bool, non-number, NaN, infinity or out of range.
    """
    if type(value) is Decimal:
        amount = value
    elif isinstance(value, (int, str, Decimal)) and not isinstance(value, bool):
        try:
            amount = Decimal(value)
        except ArithmeticError:
            raise InvalidArgumentError(f"{name} must be a decimal amount, got {value!r}") from None
    else:
        raise InvalidArgumentError(
            f"{name} must be a Decimal, int or decimal string (never float), got {value!r}"
        )
    if not amount.is_finite():
        raise InvalidArgumentError(f"{name} must be a finite amount, got {value!r}")
    if not low <= amount <= MAX_AMOUNT:
        raise InvalidArgumentError(
            f"{name} must be at least {low} and at most {MAX_AMOUNT}, got {value!r}"
        )
    return amount


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{name} must be a string, got {value!r}")
    return value


def _pct_of(base: Decimal, pct: Decimal | None) -> Decimal | None:
    return None if pct is None else base * pct / _HUNDRED


class Evaluator:
    """Judges one account against a :class:`RuleSet`, one fill or sample at a time.

    At ``opened_at`` the account holds ``starting_balance`` in cash and nothing
    else: that is the first day's daily-loss reference and the first
    high-water mark. Each call is O(1) except at a day's first sample and when
    the best day shrinks; nothing blocks and nothing awaits, so it is safe from
    any task (one evaluator per account, not shared between threads).

    Args:
        rules: the rule set.
        starting_balance: the account's starting balance (positive).
        opened_at: when the account opened (timezone-aware).

    Raises:
        InvalidArgumentError: a bad argument.
    """

    __slots__ = (
        "_balance",
        "_balance_as_of",
        "_best",
        "_book",
        "_book_as_of",
        "_breaches",
        "_clock",
        "_daily",
        "_day_balance",
        "_day_end",
        "_day_profits",
        "_days",
        "_deadline_lb",
        "_done",
        "_eod_high",
        "_equity",
        "_fills",
        "_first_sample_at",
        "_floor",
        "_hwm",
        "_last_fill_at",
        "_last_sample_at",
        "_last_sample_day",
        "_longest_gap",
        "_max_loss",
        "_min_day_profit",
        "_opened",
        "_passed_at",
        "_paused_until",
        "_pauses",
        "_pos_limit",
        "_qualifying",
        "_ref",
        "_ref_at",
        "_ref_day",
        "_rules",
        "_samples",
        "_start",
        "_target",
        "_target_hit",
        "_total",
        "_unjudged",
    )

    def __init__(
        self,
        rules: RuleSet,
        *,
        starting_balance: Decimal | int | str,
        opened_at: datetime,
    ) -> None:
        if not isinstance(rules, RuleSet):
            raise InvalidArgumentError(
                f"rules must be a RuleSet (RuleSet.from_wire(...) reads a stored one), "
                f"got {type(rules).__name__}"
            )
        start = _money("starting_balance", starting_balance, low=_MIN_START)
        opened = ensure_aware(opened_at, "opened_at")
        self._setup(rules, start, opened)
        day = self._days.day_of(opened)
        self._load(
            EvaluatorState(
                rules=rules,
                starting_balance=start,
                opened_at=opened,
                clock=opened,
                balance=start,
                equity=start,
                last_sample_day=day,
                high_water_mark=start,
                eod_high=start,
                floor=None if self._max_loss is None else start - self._max_loss,
                reference=start,
                reference_day=day,
                reference_at=opened,
                tracks_balance=True,
                day_balance=start,
            )
        )

    @classmethod
    def restore(cls, state: EvaluatorState | bytes | str) -> Evaluator:
        """Return an evaluator that continues exactly where the one that saved ``state`` was.

        Args:
            state: an :class:`EvaluatorState` (:attr:`state`), or its JSON as saved
                by ``msgspec.json.encode(evaluator.state)`` (``bytes`` or ``str``).

        Raises:
            DecodeError: ``state`` is bytes or text that is not a saved state.
            InvalidArgumentError: ``state`` is of another type.
        """
        if isinstance(state, (bytes, bytearray, memoryview, str)):
            data = state
            try:
                state = msgspec.json.decode(data, type=EvaluatorState)
            except msgspec.DecodeError as exc:  # ValidationError included
                raw = data.encode() if isinstance(data, str) else bytes(data)
                raise DecodeError(f"not a saved EvaluatorState: {exc}", body=raw) from exc
        if not isinstance(state, EvaluatorState):
            raise InvalidArgumentError(
                f"state must be an EvaluatorState or its saved JSON (bytes or str), "
                f"got {type(state).__name__}"
            )
        self = cls.__new__(cls)
        self._setup(state.rules, state.starting_balance, state.opened_at)
        self._load(state)
        return self

    def _setup(self, rules: RuleSet, start: Decimal, opened: datetime) -> None:
        self._rules = rules
        self._start = start
        self._opened = opened
        self._days = DayClock(rules.day_time_zone, rules.day_start_time)
        self._target = _pct_of(start, rules.profit_target_pct)
        self._max_loss = _pct_of(start, rules.max_drawdown_pct)
        self._daily = _pct_of(start, rules.daily_loss_pct)
        self._pos_limit = _pct_of(start, rules.max_position_pct)
        self._min_day_profit = _pct_of(start, rules.min_trading_day_profit_pct)

    def _load(self, s: EvaluatorState) -> None:
        self._clock = s.clock
        self._balance, self._equity = s.balance, s.equity
        self._samples, self._first_sample_at = s.samples, s.first_sample_at
        self._last_sample_at, self._last_sample_day = s.last_sample_at, s.last_sample_day
        self._longest_gap = s.longest_gap
        self._hwm, self._eod_high, self._floor = s.high_water_mark, s.eod_high, s.floor
        self._ref, self._ref_day, self._ref_at = s.reference, s.reference_day, s.reference_at
        self._balance_as_of = s.balance_as_of if s.tracks_balance else s.last_sample_at
        self._day_balance = s.reference if s.day_balance is None else s.day_balance
        self._unjudged = s.reference_unjudged
        self._day_end = self._days.locate(self._clock)[2]
        self._paused_until, self._pauses = s.paused_until, list(s.pauses)
        self._fills, self._last_fill_at = s.fills, s.last_fill_at
        self._day_profits = dict(s.day_profits)
        self._book: dict[str, dict[str, list[Decimal]]] = {}
        for p in s.positions:
            self._book.setdefault(p.market_id, {})[p.outcome] = [p.quantity, p.cost]
        self._book_as_of = s.positions_as_of
        self._breaches, self._passed_at = s.breaches, s.passed_at
        self._done = bool(s.breaches) or s.passed_at is not None
        profits = self._day_profits.values()
        self._total = sum(profits, _ZERO)
        self._best = max(profits, default=None)
        self._qualifying = sum(1 for p in profits if self._qualifies(p))
        self._target_hit = self._target is not None and self._basis_profit() >= self._target
        # A lower bound of the inactivity deadline: rechecked exactly only once passed.
        self._deadline_lb = self._opened if self._rules.inactivity_days else None

    # -- properties ----------------------------------------------------------------

    @property
    def rules(self) -> RuleSet:
        """The rule set judged."""
        return self._rules

    @property
    def starting_balance(self) -> Decimal:
        """The starting balance every percentage is taken of."""
        return self._start

    @property
    def opened_at(self) -> datetime:
        """When the account opened."""
        return self._opened

    @property
    def decided(self) -> bool:
        """``True`` once the account passed or failed (final)."""
        return self._done

    @property
    def next_day_start(self) -> datetime:
        """The next day boundary after the newest event: sample the account right after it."""
        return self._days.locate(self._clock)[2]

    @property
    def nearest_headroom(self) -> Decimal | None:
        """Money left before the nearest equity limit (maximum or daily loss), as last sampled.

        Cheap (no verdict is built): what a scheduler weighs against how fast the
        equity moves. ``None`` when no equity limit applies.
        """
        room = None if self._floor is None else self._equity - self._floor
        if self._daily is not None and self._ref is not None:
            daily = self._daily - (self._ref - self._equity)
            room = daily if room is None or daily < room else room
        return room

    @property
    def state(self) -> EvaluatorState:
        """A snapshot to save (``msgspec.json.encode``) and pass to :meth:`restore`."""
        return EvaluatorState(
            rules=self._rules,
            starting_balance=self._start,
            opened_at=self._opened,
            clock=self._clock,
            balance=self._balance,
            equity=self._equity,
            samples=self._samples,
            first_sample_at=self._first_sample_at,
            last_sample_at=self._last_sample_at,
            last_sample_day=self._last_sample_day,
            longest_gap=self._longest_gap,
            high_water_mark=self._hwm,
            eod_high=self._eod_high,
            floor=self._floor,
            reference=self._ref,
            reference_day=self._ref_day,
            reference_at=self._ref_at,
            paused_until=self._paused_until,
            pauses=tuple(self._pauses),
            fills=self._fills,
            last_fill_at=self._last_fill_at,
            day_profits=dict(self._day_profits),
            positions=tuple(
                PositionCost(market_id=m, outcome=o, quantity=q, cost=c)
                for m, outcomes in self._book.items()
                for o, (q, c) in outcomes.items()
            ),
            positions_as_of=self._book_as_of,
            breaches=self._breaches,
            passed_at=self._passed_at,
            tracks_balance=True,
            balance_as_of=self._balance_as_of,
            day_balance=self._day_balance,
            reference_unjudged=self._unjudged,
        )

    # -- events --------------------------------------------------------------------

    def add_fill(self, fill: FillLike) -> None:
        """Count one fill: its day, its realised profit, the balance and the position book.

        The balance moves by the fill's ``realized_pnl`` or, without one, by
        ``-fee``, unless the fill is not newer than the last sample that gave a
        balance (that sample already reflects it).

        A fill before ``opened_at`` (an earlier attempt of an account that was
        reset: the feed keeps the whole history) is ignored. Every field is
        checked before anything is counted: a refused fill leaves the evaluator
        exactly as it was (``state`` unchanged).

        Raises:
            InvalidArgumentError: ``filled_at`` naive; ``side`` not ``"BUY"`` or
                ``"SELL"``; ``market_id`` or ``outcome`` not a string; ``price``
                (0 to 10**15), ``quantity`` (positive, at most 10**15) or
                ``realized_pnl`` or ``fee`` (at most 10**15 either way) not a
                finite ``Decimal``, ``int`` or decimal string. The ``fee`` is read
                (and checked) only when it moves the balance: without a
                ``realized_pnl``, for a fill newer than the last balance sample.
        """
        # Checked before anything is counted; the common case (a decoded Trade) is
        # told apart with type checks alone, the rest goes through the full checks.
        at = fill.filled_at
        if at.__class__ is not datetime or at.tzinfo is not timezone.utc:
            at = ensure_aware(at, "filled_at")
        market = fill.market_id
        if market.__class__ is not str:
            market = _text("market_id", market)
        outcome = fill.outcome
        if outcome.__class__ is not str:
            outcome = _text("outcome", outcome)
        side = fill.side
        if side not in _SIDES:
            raise InvalidArgumentError(f"side must be 'BUY' or 'SELL', got {side!r}")
        price = fill.price
        if price.__class__ is not Decimal or not price.is_finite() or not 0 <= price <= MAX_AMOUNT:
            price = _money("price", price, low=_ZERO)
        qty = fill.quantity
        if qty.__class__ is not Decimal or not qty.is_finite() or not 0 < qty <= MAX_AMOUNT:
            qty = _money("quantity", qty)
            if qty <= 0:
                raise InvalidArgumentError(f"quantity must be positive, got {fill.quantity!r}")
        pnl = getattr(fill, "realized_pnl", None)
        if pnl is not None:
            pnl = _money("realized_pnl", pnl)
        # The balance moves by the realised P&L, else by the fee (read only then).
        as_of = self._balance_as_of
        move = pnl if as_of is None or at > as_of else None
        if move is None and (as_of is None or at > as_of):
            fee = getattr(fill, "fee", None)
            if fee is not None:
                if fee.__class__ is not Decimal or not fee.is_finite() or abs(fee) > MAX_AMOUNT:
                    fee = _money("fee", fee)
                move = -fee
        if at < self._opened:
            return
        if at > self._clock:
            self._advance(at)
        if move:
            self._balance += move
            if self._target is not None and self._rules.profit_target_basis == "balance":
                self._target_hit = self._basis_profit() >= self._target
        self._fills += 1
        last = self._last_fill_at
        if last is None or at > last:
            self._last_fill_at = at
        day = self._days.day_of(at)
        if day == self._ref_day and self._last_sample_day < day and not self._unjudged:
            self._unjudge_day()
        old = self._day_profits.get(day)
        if old is None or pnl:
            self._add_profit(day, old, _ZERO if pnl is None else pnl)
        as_of = self._book_as_of
        if as_of is None or at > as_of:
            self._book_fill(at, market, outcome, side == "BUY", price, qty)
        if self._target_hit and not self._done:
            self._check_pass(at)

    def add_sample(
        self,
        at: datetime,
        *,
        balance: Decimal | int | str | None,
        equity: Decimal | int | str,
        positions: Iterable[PositionLike | PositionCost] | None = None,
    ) -> None:
        """Judge the account's money as observed at ``at``.

        The first sample of a day takes that day's equity reference (daily loss
        ``"equity"`` or ``"higher"``) and, for ``eod_trailing`` on equity, closes the
        previous day at its equity. The balance references (daily loss
        ``"balance"``, ``eod_trailing`` on balance) are taken at the day start
        itself, from the balance tracked through the fills.

        Args:
            at: when the values held (timezone-aware), not before the previous sample.
            balance: the prop-firm balance: cash plus the cost (quantity x average
                entry price) of the open positions, which :func:`sample_of`
                computes from an account state (its ``balance`` field is cash
                only). ``None``: not observed; the balance tracked from fills stays.
            equity: cash plus open positions marked to market.
            positions: the server's open positions at ``at``, e.g. an account
                state's ``open_positions``; replaces the book kept from fills.

        Every argument is checked before anything is counted: a refused sample
        leaves the evaluator exactly as it was (``state`` unchanged).

        Raises:
            InvalidArgumentError: ``at`` is naive, before the opening or before the
                previous sample; an amount (``balance``, ``equity``, a position's
                quantity and cost) is a float, not a number, NaN, infinite, beyond
                10**15 in magnitude, or (for a position) negative.
        """
        at = ensure_aware(at, "at")
        if balance is not None:
            balance = _money("balance", balance)
        equity = _money("equity", equity)
        previous = self._last_sample_at if self._last_sample_at is not None else self._opened
        if at < previous:
            what = "the previous sample" if self._last_sample_at is not None else "the opening"
            raise InvalidArgumentError(
                f"samples must come in time order: {at.isoformat()} is before "
                f"{what} ({previous.isoformat()})"
            )
        if positions is not None:
            book = self._positions_book(positions)
        if at > self._clock:
            self._advance(at)
        self._longest_gap = max(self._longest_gap, at - previous)
        self._samples += 1
        if self._first_sample_at is None:
            self._first_sample_at = at
        self._last_sample_at = at
        if balance is not None:
            self._balance, self._balance_as_of = balance, at
        self._equity = equity
        rules = self._rules
        day = self._days.day_of(at)
        if day > self._last_sample_day:
            self._last_sample_day = day
            kind = rules.daily_loss_reference
            if kind != "balance" and day == self._ref_day:
                start = self._day_balance
                assert start is not None
                if not self._unjudged:
                    self._ref = equity if kind == "equity" else max(start, equity)
                    self._ref_at = at
            self._close_day("equity", equity)
        if equity > self._hwm:
            self._hwm = equity
            if rules.max_drawdown_mode == "trailing":
                self._raise_floor(equity)
        if positions is not None:
            self._book, self._book_as_of = book, at
        if self._target is not None:
            self._target_hit = self._basis_profit() >= self._target
        if self._done:
            return
        broken: list[Breach] = []
        touch = rules.breach_at_limit
        floor = self._floor
        if floor is not None and (equity <= floor if touch else equity < floor):
            broken.append(Breach(rule="max_loss", at=at, value=equity, limit=floor))
        daily = self._daily
        if daily is not None and self._ref_day == day and self._ref is not None:
            loss = self._ref - equity
            if loss >= daily if touch else loss > daily:
                hit = Breach(rule="daily_loss", at=at, value=loss, limit=daily)
                if rules.daily_loss_action == "breach":
                    broken.append(hit)
                elif self._paused_until is None or self._paused_until <= at:
                    self._paused_until = self._days.locate(at)[2]
                    self._pauses.append(hit)
        if positions is not None and self._pos_limit is not None:
            market, cost = self._largest_position()
            if cost > self._pos_limit:
                broken.append(
                    Breach(
                        rule="position_limit",
                        at=at,
                        value=cost,
                        limit=self._pos_limit,
                        market_id=market,
                    )
                )
        if broken:
            self._fail(broken)
        else:
            self._check_pass(at)

    def verdict(self, now: datetime) -> Verdict:
        """Return the verdict at ``now``.

        ``now`` also moves the evaluator's time forward (never back): a deadline
        it passes (inactivity, the end of a daily-loss pause) is judged, final
        like any decision. So ``now`` must be an instant up to which every fill
        has been given: with a fill feed that lags, pass the watermark the feed
        is known complete up to (the newest ``filled_at`` delivered, or the
        instant the feed last caught up), not the wall clock: a fill given after
        a verdict whose ``now`` lies past its ``filled_at`` cannot undo an
        inactivity failure that verdict already judged.

        Raises:
            InvalidArgumentError: ``now`` is naive.
        """
        now = ensure_aware(now, "now")
        if now > self._clock:
            self._advance(now)
        clock = self._clock
        rules = self._rules
        day, day_start, day_end = self._days.locate(clock)
        status: Status = (
            "failed"
            if self._breaches
            else "passed"
            if self._passed_at is not None
            else "in_progress"
        )
        headroom: dict[str, Decimal] = {}
        warns: list[RuleWarning] = []
        warn_at = rules.warn_at_pct

        def used(rule: str, value: Decimal, limit: Decimal, share: Decimal) -> None:
            if status == "in_progress" and share >= warn_at:
                warns.append(RuleWarning(rule=rule, used_pct=share, value=value, limit=limit))

        equity = self._equity
        if self._floor is not None:
            assert self._max_loss is not None
            room = equity - self._floor
            headroom["max_loss"] = room
            if self._max_loss > 0:
                used(
                    "max_loss", equity, self._floor, (self._max_loss - room) * 100 / self._max_loss
                )
        day_loss = None
        reference = reference_at = None
        if self._ref_day == day and self._ref is not None:
            reference, reference_at = self._ref, self._ref_at
            day_loss = reference - equity
            if self._daily is not None:
                headroom["daily_loss"] = self._daily - day_loss
                if self._daily > 0:
                    used("daily_loss", day_loss, self._daily, day_loss * 100 / self._daily)
        market, largest = self._largest_position()
        if self._pos_limit is not None:
            headroom["position_limit"] = self._pos_limit - largest
            if self._pos_limit > 0:
                used("position_limit", largest, self._pos_limit, largest * 100 / self._pos_limit)
        share = self._share()
        if rules.consistency_pct and share is not None:
            pct = rules.consistency_pct
            used("consistency", share, pct, share * 100 / pct)
        deadline = self._inactivity_deadline()
        if deadline is not None:
            last = self._last_activity()
            whole = _micros(deadline - last)
            if whole > 0:
                n = Decimal(rules.inactivity_days or 0)
                elapsed = Decimal(_micros(clock - last)) / whole
                used("inactivity", elapsed * n, n, elapsed * 100)
        gates: list[str] = []
        if status == "in_progress":
            if self._target is not None and not self._target_hit:
                gates.append("profit_target")
            if rules.min_trading_days and self._qualifying < rules.min_trading_days:
                gates.append("min_trading_days")
            if rules.consistency_action == "gate" and self._consistency_violated(share):
                gates.append("consistency")
        paused = self._paused_until
        if status == "in_progress" and paused is not None and clock < paused:
            gates.append("daily_loss")
        last_sample = self._last_sample_at if self._last_sample_at is not None else self._opened
        metrics = Metrics(
            balance=self._balance,
            equity=equity,
            profit=equity - self._start,
            profit_pct=(equity - self._start) * 100 / self._start,
            realized_profit=self._total,
            high_water_mark=self._hwm,
            loss_floor=self._floor,
            day_start=day_start,
            next_day_start=day_end,
            day_reference=reference,
            day_reference_at=reference_at,
            day_loss=day_loss,
            trading_days=self._qualifying,
            best_day_profit=max(self._best or _ZERO, _ZERO),
            best_day_share_pct=share,
            largest_position_cost=largest,
            largest_position_market=market,
            fills=self._fills,
            last_fill_at=self._last_fill_at,
            inactivity_deadline=deadline,
        )
        return Verdict(
            status=status,
            at=now,
            breaches=self._breaches,
            passed_at=self._passed_at,
            paused_until=paused if status == "in_progress" and paused and clock < paused else None,
            pauses=tuple(self._pauses),
            gates=tuple(gates),
            metrics=metrics,
            headroom=headroom,
            warnings=tuple(warns),
            samples=SampleCoverage(
                count=self._samples,
                first_at=self._first_sample_at,
                last_at=self._last_sample_at,
                longest_gap=max(self._longest_gap, clock - last_sample),
            ),
            unjudged=(
                ("daily_loss",)
                if self._unjudged
                and self._daily is not None
                and rules.daily_loss_reference != "balance"
                else ()
            ),
        )

    # -- internals -----------------------------------------------------------------

    def _advance(self, at: datetime) -> None:
        """Move time forward to ``at``, judging on the way what time alone decides.

        That is the inactivity deadline, and the end of a daily-loss pause that held
        back a pass: the account passes at that day start on its last sampled
        values (unless the deadline came first).
        """
        before, self._clock = self._clock, at
        if at >= self._day_end:
            self._new_day(at)
        if self._done:
            return
        deadline = None
        lb = self._deadline_lb
        if lb is not None and at >= lb:
            deadline = self._inactivity_deadline()
            assert deadline is not None
            self._deadline_lb = deadline
        pause_end = self._paused_until
        if (
            pause_end is not None
            and self._target_hit
            and before < pause_end <= at
            and (deadline is None or pause_end < deadline)
        ):
            self._check_pass(pause_end)
        if deadline is not None and at >= deadline and not self._done:
            n = Decimal(self._rules.inactivity_days or 0)
            self._fail([Breach(rule="inactivity", at=deadline, value=n, limit=n)])

    def _new_day(self, at: datetime) -> None:
        """Start the day ``at`` falls in: the balance now is the balance at its start."""
        day, start, self._day_end = self._days.locate(at)
        balance = self._balance
        self._close_day("balance", balance)
        self._ref_day, self._day_balance, self._unjudged = day, balance, False
        if self._rules.daily_loss_reference == "balance":
            self._ref, self._ref_at = balance, start
        else:
            self._ref = self._ref_at = None

    def _close_day(self, basis: str, close: Decimal) -> None:
        """An ``eod_trailing`` floor on ``basis`` closes the previous day at ``close``."""
        rules = self._rules
        if (
            rules.max_drawdown_mode == "eod_trailing"
            and rules.max_drawdown_eod_basis == basis
            and close > self._eod_high
        ):
            self._eod_high = close
            self._raise_floor(close)

    def _unjudge_day(self) -> None:
        """A fill came before the day's first sample: its start equity is unknown.

        ``"higher"`` falls back to the start-of-day balance (a lower bound of the
        reference); ``"equity"`` has no reference that day.
        """
        self._unjudged = True
        if self._rules.daily_loss_reference == "higher":
            self._ref, self._ref_at = self._day_balance, self._days.start_of(self._ref_day)

    def _last_activity(self) -> datetime:
        last = self._last_fill_at
        return self._opened if last is None or last < self._opened else last

    def _inactivity_deadline(self) -> datetime | None:
        days = self._rules.inactivity_days
        return None if days is None else self._days.add_days(self._last_activity(), days)

    def _fail(self, breaches: list[Breach]) -> None:
        self._breaches = tuple(breaches)
        self._done = True

    def _raise_floor(self, high: Decimal) -> None:
        if self._max_loss is None:
            return
        candidate = high - self._max_loss
        if self._rules.max_drawdown_lock_at_start and candidate > self._start:
            candidate = self._start
        assert self._floor is not None
        if candidate > self._floor:
            self._floor = candidate

    def _basis_profit(self) -> Decimal:
        basis = self._equity if self._rules.profit_target_basis == "equity" else self._balance
        return basis - self._start

    def _qualifies(self, profit: Decimal) -> bool:
        threshold = self._min_day_profit
        return threshold is None or profit >= threshold

    def _add_profit(self, day: int, old: Decimal | None, pnl: Decimal) -> None:
        new = pnl if old is None else old + pnl
        self._day_profits[day] = new
        self._total += pnl
        self._qualifying += self._qualifies(new) - (old is not None and self._qualifies(old))
        best = self._best
        if best is None or new >= best:
            self._best = new
        elif old == best:  # the best day shrank: another day may be best now
            self._best = max(self._day_profits.values())

    def _share(self) -> Decimal | None:
        """The best day's share of the consistency basis in percent; ``None`` if unbounded."""
        best = self._best
        if best is None or best <= 0:
            return _ZERO
        if self._rules.consistency_basis == "target":
            assert self._target
            return best * 100 / self._target
        return best * 100 / self._total if self._total > 0 else None

    def _consistency_violated(self, share: Decimal | None) -> bool:
        pct = self._rules.consistency_pct
        return pct is not None and (share is None or share > pct)

    def _check_pass(self, at: datetime) -> None:
        rules = self._rules
        if not self._target_hit:
            return
        paused = self._paused_until
        if paused is not None and at < paused:
            return  # a paused day cannot end in a pass: from the next day start on
        if rules.min_trading_days and self._qualifying < rules.min_trading_days:
            return
        share = self._share()
        if self._consistency_violated(share):
            if rules.consistency_action == "gate":
                return
            assert rules.consistency_pct is not None
            value = _INFINITY if share is None else share
            self._fail(
                [Breach(rule="consistency", at=at, value=value, limit=rules.consistency_pct)]
            )
            return
        self._passed_at = at
        self._done = True

    def _book_fill(
        self, at: datetime, market: str, outcome: str, buy: bool, price: Decimal, qty: Decimal
    ) -> None:
        outcomes = self._book.get(market)
        if outcomes is None:
            outcomes = self._book[market] = {}
        held = outcomes.get(outcome)
        if buy:
            cost = price * qty
            if held is None:
                outcomes[outcome] = [qty, cost]
            else:
                held[0] += qty
                held[1] += cost
            limit = self._pos_limit
            if limit is not None and not self._done:
                total = sum((c for _, c in outcomes.values()), _ZERO)
                if total > limit:
                    self._fail(
                        [
                            Breach(
                                rule="position_limit",
                                at=at,
                                value=total,
                                limit=limit,
                                market_id=market,
                            )
                        ]
                    )
            return
        if held is None:
            if not outcomes:
                del self._book[market]
            return  # a sale of shares bought before the history we were given
        if qty >= held[0]:
            del outcomes[outcome]
            if not outcomes:
                del self._book[market]
        else:
            held[1] -= held[1] * qty / held[0]
            held[0] -= qty

    def _positions_book(
        self, positions: Iterable[PositionLike | PositionCost]
    ) -> dict[str, dict[str, list[Decimal]]]:
        book: dict[str, dict[str, list[Decimal]]] = {}
        for p in positions:
            market = _text("position market_id", p.market_id)
            outcome = _text("position outcome", p.outcome)
            qty = _money("position quantity", p.quantity, low=_ZERO)
            if isinstance(p, PositionCost):
                cost = _money("position cost", p.cost, low=_ZERO)
            else:
                cost = qty * _money("position avg_entry_price", p.avg_entry_price, low=_ZERO)
            if qty > 0:
                book.setdefault(market, {})[outcome] = [qty, cost]
        return book

    def _largest_position(self) -> tuple[str | None, Decimal]:
        market, largest = None, _ZERO
        for m, outcomes in self._book.items():
            total = sum((c for _, c in outcomes.values()), _ZERO)
            if total > largest:
                market, largest = m, total
        return market, largest


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def sample_of(obj: Sample | AccountState | EquityPoint, *, at: datetime | None = None) -> Sample:
    """Turn an account-state poll or an equity point into a :class:`Sample`.

    The sample's ``balance`` is the prop-firm balance, cash plus the cost of the
    open positions (what firms call the balance: starting balance plus realised
    P&L less fees), not the API's ``balance``, which is cash only (API.md P5).

    * :class:`AccountState` (P5), at ``at`` (default: its ``updated_at``):
      ``balance + sum(quantity x avg_entry_price)`` over ``open_positions``;
      ``equity``; the ``open_positions`` as the position book.
    * :class:`EquityPoint`, at its ``timestamp``: ``total_value`` as the equity;
      ``cash_balance`` as the balance when ``position_value`` is zero, else
      ``None`` (the point carries no cost basis: the evaluator keeps the balance
      it tracks from fills).

    Raises:
        InvalidArgumentError: an account state without ``updated_at`` and no ``at``;
            an object of another type.
    """
    if isinstance(obj, Sample):
        return (
            obj
            if at is None
            else Sample(at=at, balance=obj.balance, equity=obj.equity, positions=obj.positions)
        )
    if isinstance(obj, AccountState):
        when = at if at is not None else obj.updated_at
        if when is None:
            raise InvalidArgumentError("this account state has no updated_at: pass at=")
        positions = tuple(
            PositionCost(
                market_id=p.market_id,
                outcome=p.outcome,
                quantity=p.quantity,
                cost=p.quantity * p.avg_entry_price,
            )
            for p in obj.open_positions
        )
        return Sample(
            at=ensure_aware(when, "at"),
            balance=obj.balance + sum((p.cost for p in positions), _ZERO),
            equity=obj.equity,
            positions=positions,
        )
    if isinstance(obj, EquityPoint):
        return Sample(
            at=obj.timestamp if at is None else at,
            balance=obj.cash_balance if obj.position_value == 0 else None,
            equity=obj.total_value,
        )
    raise InvalidArgumentError(
        f"a sample must be a Sample, AccountState or EquityPoint, got {type(obj).__name__}"
    )


def _fill_key(fill: Any) -> tuple[datetime, int]:
    order_id = getattr(fill, "order_id", 0)
    return fill.filled_at, order_id if isinstance(order_id, int) else 0


def evaluate(
    rules: RuleSet,
    *,
    starting_balance: Decimal | int | str,
    opened_at: datetime,
    fills: Iterable[FillLike] = (),
    samples: Iterable[Sample | AccountState | EquityPoint] = (),
    now: datetime,
) -> Verdict:
    """Judge an account in one go from its fills and samples, in any order.

    Fills are sorted by ``(filled_at, order_id)`` (the trade feed pages newest
    first) and samples by time; at equal instants a fill comes before a sample
    (a sample taken at a fill's instant reflects it).

    Returns:
        The :class:`Verdict` at ``now``.

    Raises:
        InvalidArgumentError: a bad argument or sample.
    """
    evaluator = Evaluator(rules, starting_balance=starting_balance, opened_at=opened_at)
    ordered_fills = sorted(fills, key=_fill_key)
    ordered_samples = sorted((sample_of(s) for s in samples), key=lambda s: s.at)
    i = 0
    for sample in ordered_samples:
        while i < len(ordered_fills) and ordered_fills[i].filled_at <= sample.at:
            evaluator.add_fill(ordered_fills[i])
            i += 1
        evaluator.add_sample(
            sample.at, balance=sample.balance, equity=sample.equity, positions=sample.positions
        )
    for fill in ordered_fills[i:]:
        evaluator.add_fill(fill)
    return evaluator.verdict(now)
