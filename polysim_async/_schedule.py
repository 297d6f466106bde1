"""Which account to sample next: the budget goes where the risk is, and none goes stale.

Pure: no I/O and no clock of its own; every instant is a number of seconds the
caller passes in (any origin, e.g. its :class:`~polysim_async._clock.Clock`'s
``now()``). Built for a fleet monitor that samples thousands of accounts through
the client's shared rate limiter::

    sched = SampleScheduler(budget=40, staleness=120)
    for aid in ids:
        sched.add(aid, now=clock.now(), next_boundary=first_boundary[aid])
    while True:
        aid = sched.pop(clock.now())          # most urgent first; None when all are in flight
        ...                                   # one accounts.get() through the limiter
        sched.observe(aid, at=t, equity=e, headroom=h, next_boundary=b)

How the budget is split. Each account is sampled at a rate of its own:

* a floor of ``1 / staleness`` for every account, so none is older than ``staleness``;
* plus a share of the rest of the budget in proportion to its risk: how fast its
  equity has been moving divided by its headroom to the nearest limit, i.e. the
  share of the headroom it could burn per second. A quiet account far from every
  limit gets the floor; an account trending toward a limit gets most of the rest,
  at most one sample per ``min_interval``; what a capped account cannot use goes
  to the next riskiest (water-filling, recomputed every ``accounts / 32``
  observations); with no risk anywhere the rest is spread evenly.

The rates sum to ``budget * (1 - reserve)``; the reserve absorbs the burst after a
day boundary and the lag of rates computed at each account's last sample. An
account's next regular sample is due one interval after its last; :meth:`pop`
hands out the earliest due (earliest deadline first), ahead of time if asked, so a
monitor that calls it whenever the limiter has a free slot keeps the budget busy.

Day boundaries: an account whose ``next_boundary`` has passed is due at once, ahead
of every regular sample, and is never handed out before the boundary, so its first
sample of the day is taken right after it starts (the daily-loss reference). When
most accounts share a boundary, this takes about ``accounts / budget`` seconds,
most urgent first.

Speed: the absolute equity change per second between consecutive samples, held at
its peak and halving every ``half_life`` seconds without a faster move.
"""

from __future__ import annotations

import heapq
import math
from decimal import Decimal

from ._errors import InvalidArgumentError

__all__ = ["SampleScheduler"]

_LEVEL_EVERY = 32  # the water level is recomputed after len(fleet) / this many observations


class _Account:
    __slots__ = (
        "boundary",
        "boundary_queued",
        "due",
        "equity",
        "headroom",
        "in_flight",
        "last",
        "risk",
        "speed",
        "version",
    )

    def __init__(self, due: float, boundary: float | None) -> None:
        self.due = due
        self.boundary = boundary
        self.boundary_queued = False
        self.last: float | None = None
        self.equity: float | None = None
        self.headroom: float | None = None
        self.speed = 0.0
        self.risk = 0.0
        self.version = 0
        self.in_flight = False


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if math.isnan(number):
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}")
    return number


class SampleScheduler:
    """Decides which account to sample next and when each is due.

    Args:
        budget: samples per second the monitor may spend (its share of the rate limit).
        staleness: no account should go longer than this without a sample (seconds).
        min_interval: the shortest interval between two samples of one account.
        half_life: how fast a remembered equity speed fades (seconds).
        reserve: the share of the budget kept free for day-boundary bursts (0..0.9).

    Raises:
        InvalidArgumentError: a non-positive budget, staleness, min_interval or
            half_life, ``min_interval > staleness``, or a reserve outside 0..0.9.

    The scheduler is not thread-safe; a single asyncio task (or callbacks on one
    loop) should own it. Nothing in it blocks or awaits.
    """

    def __init__(
        self,
        *,
        budget: float,
        staleness: float,
        min_interval: float = 1.0,
        half_life: float = 600.0,
        reserve: float = 0.1,
    ) -> None:
        for name, value in (
            ("budget", budget),
            ("staleness", staleness),
            ("min_interval", min_interval),
            ("half_life", half_life),
        ):
            if not _number(name, value) > 0 or math.isinf(value):
                raise InvalidArgumentError(f"{name} must be a positive number, got {value!r}")
        if min_interval > staleness:
            raise InvalidArgumentError("min_interval must not exceed staleness")
        if not 0 <= _number("reserve", reserve) <= 0.9:
            raise InvalidArgumentError(f"reserve must be within 0..0.9, got {reserve!r}")
        self._budget = float(budget)
        self._staleness = float(staleness)
        self._min_interval = float(min_interval)
        self._half_life = float(half_life)
        self._reserve = float(reserve)
        self._accounts: dict[str, _Account] = {}
        # (due, version, id): an entry is current while the version matches.
        self._regular: list[tuple[float, int, str]] = []
        # (last sample + staleness - guard, version, id): the staleness deadlines.
        self._deadlines: list[tuple[float, int, str]] = []
        self._guard = 2.0 / self._budget
        # (boundary, due when queued, id): at most one current entry per account.
        self._boundaries: list[tuple[float, float, str]] = []
        self._level = 0.0  # spare rate per unit of risk
        self._even = 0.0  # spare rate every account gets on top (when risk cannot use it)
        self._capped_from = math.inf  # accounts this risky or more sample at the cap
        self._since_level = 0

    # -- the fleet -----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._accounts)

    def __contains__(self, account_id: object) -> bool:
        return account_id in self._accounts

    @property
    def feasible(self) -> bool:
        """Whether the budget covers every account's staleness floor (with the reserve)."""
        return len(self._accounts) / self._staleness <= self._capacity

    @property
    def _capacity(self) -> float:
        return self._budget * (1.0 - self._reserve)

    def add(self, account_id: str, *, now: float, next_boundary: float | None = None) -> None:
        """Start scheduling ``account_id``: its first sample is due at ``now``.

        Raises:
            InvalidArgumentError: the account is already scheduled.
        """
        if account_id in self._accounts:
            raise InvalidArgumentError(f"account {account_id!r} is already scheduled")
        now = _number("now", now)
        account = self._accounts[account_id] = _Account(now, next_boundary)
        self._solve_level()
        self._push(account_id, account)

    def discard(self, account_id: str) -> None:
        """Stop scheduling ``account_id`` (once it passed, failed or closed); no-op if absent."""
        if self._accounts.pop(account_id, None) is not None:
            self._solve_level()

    # -- decisions -----------------------------------------------------------------

    def pop(self, now: float, *, ahead: float = math.inf) -> str | None:
        """Hand out the account to sample now, and mark it in flight.

        An account whose day boundary has passed comes first; then the account
        whose regular sample is due earliest, if it is due by ``now + ahead`` and
        was last sampled at least ``min_interval`` ago. The default ``ahead=inf``
        samples ahead of time whenever the caller has budget to spare;
        ``ahead=0`` hands out only what is due.

        Returns:
            The account id, or ``None`` when nothing qualifies (all are in flight,
            or nothing is due within ``ahead``). Report the sample with
            :meth:`observe`, or a failure with :meth:`retry`.
        """
        urgent = self._earliest(self._deadlines)
        if urgent is not None and urgent[0] <= now:
            heapq.heappop(self._deadlines)
            return self._take(urgent[2], self._accounts[urgent[2]])
        boundary = self._passed_boundary(now)
        if boundary is not None:
            return boundary
        due = self._earliest(self._regular)
        if due is not None and due[0] <= now + ahead:
            account = self._accounts[due[2]]
            if account.last is None or account.last + self._min_interval <= now:
                heapq.heappop(self._regular)
                return self._take(due[2], account)
        return None

    def next_due(self) -> float | None:
        """The earliest instant an account is due (a pending boundary counts), or ``None``."""
        due = self._earliest(self._regular)
        best = None if due is None else due[0]
        heap = self._boundaries
        while heap:
            boundary, _, aid = heap[0]
            account = self._accounts.get(aid)
            if account is None or account.boundary != boundary:
                heapq.heappop(heap)
                continue
            if not account.in_flight and (best is None or boundary < best):
                best = boundary
            break
        return best

    def observe(
        self,
        account_id: str,
        *,
        at: float,
        equity: float | Decimal,
        headroom: float | Decimal | None,
        next_boundary: float | None = None,
    ) -> None:
        """Record a sample of ``account_id`` taken at ``at`` and schedule the next one.

        Args:
            account_id: a scheduled account.
            at: when the sample was taken.
            equity: its equity (only changes matter: the speed).
            headroom: money left before its nearest limit
                (:attr:`Evaluator.nearest_headroom`), or ``None`` without one.
            next_boundary: its next day start after ``at``
                (:attr:`Evaluator.next_day_start`), or ``None``.

        Raises:
            InvalidArgumentError: the account is not scheduled.
        """
        account = self._account(account_id)
        at = _number("at", at)
        value = _number("equity", equity)
        last, previous = account.last, account.equity
        if last is not None and previous is not None and at > last:
            elapsed = at - last
            moved = abs(value - previous) / elapsed
            faded = account.speed * 0.5 ** (elapsed / self._half_life)
            account.speed = moved if moved > faded else faded
        account.last, account.equity = at, value
        room = None if headroom is None else _number("headroom", headroom)
        account.headroom = room
        if room is None:
            risk = 0.0
        elif room <= 0:
            risk = 1.0 / self._min_interval
        else:
            risk = min(account.speed / room, 1.0 / self._min_interval)
        account.risk = risk
        self._since_level += 1
        if self._since_level * _LEVEL_EVERY >= len(self._accounts):
            self._solve_level()
        boundary = next_boundary if next_boundary is not None and next_boundary > at else None
        if boundary != account.boundary:
            account.boundary, account.boundary_queued = boundary, False
        account.in_flight = False
        account.due = at + self.interval(account_id)
        self._push(account_id, account)

    def retry(self, account_id: str, *, at: float) -> None:
        """A sample of ``account_id`` failed: make it due again at ``at``.

        Raises:
            InvalidArgumentError: the account is not scheduled.
        """
        account = self._account(account_id)
        account.in_flight = False
        account.due = _number("at", at)
        self._push(account_id, account)

    # -- introspection -------------------------------------------------------------

    def rate(self, account_id: str) -> float:
        """Samples per second ``account_id`` gets at the current risks.

        Raises:
            InvalidArgumentError: the account is not scheduled.
        """
        account = self._account(account_id)
        cap = 1.0 / self._min_interval
        if account.risk >= self._capped_from:
            return cap
        return min(1.0 / self._staleness + self._level * account.risk + self._even, cap)

    def interval(self, account_id: str) -> float:
        """Seconds between two regular samples of ``account_id`` (``1 / rate``)."""
        return 1.0 / self.rate(account_id)

    def due_at(self, account_id: str) -> float | None:
        """When ``account_id``'s next regular sample is due (``None`` while in flight).

        Raises:
            InvalidArgumentError: the account is not scheduled.
        """
        account = self._account(account_id)
        return None if account.in_flight else account.due

    def speed(self, account_id: str) -> float:
        """The remembered equity speed of ``account_id`` (money per second).

        Raises:
            InvalidArgumentError: the account is not scheduled.
        """
        return self._account(account_id).speed

    # -- internals -----------------------------------------------------------------

    def _account(self, account_id: str) -> _Account:
        account = self._accounts.get(account_id)
        if account is None:
            raise InvalidArgumentError(f"account {account_id!r} is not scheduled")
        return account

    def _solve_level(self) -> None:
        """Split the spare budget: ``floor + level * risk + even``, capped, summing to capacity."""
        self._since_level = 0
        self._level = self._even = 0.0
        self._capped_from = math.inf
        n = len(self._accounts)
        floor, cap = 1.0 / self._staleness, 1.0 / self._min_interval
        spare = self._capacity - n * floor
        if n == 0 or spare <= 0:
            return
        risks = sorted((a.risk for a in self._accounts.values() if a.risk > 0), reverse=True)
        total = math.fsum(risks)
        capped = 0
        for risk in risks:  # the riskiest first: cap those the level would lift past the cap
            if floor + spare / total * risk <= cap:
                break
            spare -= cap - floor
            total -= risk
            capped += 1
            self._capped_from = risk
        if capped < len(risks) and total > 0:
            self._level = spare / total
        elif n > capped:  # no risk to spend it on: spread the rest over the others
            self._even = spare / (n - capped)

    def _passed_boundary(self, now: float) -> str | None:
        heap = self._boundaries
        while heap:
            boundary, _, aid = heap[0]
            account = self._accounts.get(aid)
            if account is None or account.boundary != boundary:
                heapq.heappop(heap)  # stale: the account moved on to a later boundary
                continue
            if boundary > now:
                return None
            heapq.heappop(heap)
            account.boundary_queued = False  # observe() queues it again if still needed
            if account.in_flight:
                continue
            return self._take(aid, account)
        return None

    def _earliest(self, heap: list[tuple[float, int, str]]) -> tuple[float, int, str] | None:
        while heap:
            entry = heap[0]
            account = self._accounts.get(entry[2])
            if account is not None and account.version == entry[1]:
                return entry
            heapq.heappop(heap)
        return None

    def _take(self, aid: str, account: _Account) -> str:
        account.in_flight = True
        account.version += 1  # its regular entry goes stale
        return aid

    def _push(self, aid: str, account: _Account) -> None:
        account.version += 1
        heapq.heappush(self._regular, (account.due, account.version, aid))
        last = account.last if account.last is not None else account.due
        deadline = last + self._staleness - self._guard
        heapq.heappush(self._deadlines, (deadline, account.version, aid))
        if account.boundary is not None and not account.boundary_queued:
            account.boundary_queued = True
            heapq.heappush(self._boundaries, (account.boundary, account.due, aid))
