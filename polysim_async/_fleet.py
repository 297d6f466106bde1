"""What the fleet monitor decides about one account, without I/O: judging, events, checkpoints.

:class:`Watched` holds one account's :class:`~polysim_async.Evaluator`, its fill
watermark and what was already announced, turns each input (a sample read from
``accounts.get``, a fill from the trade feed, a close) into
:class:`MonitorEvent` s, and saves itself as an :class:`AccountProgress`. The I/O
loop (``_monitor.py``) only fetches, paces and delivers.

Events of one input, in order: the input's own event (``"sample"`` or
``"fill"``), then ``"warning"`` (a limit newly at least ``warn_at_pct`` used),
then ``"breach"`` or ``"passed"`` when the verdict was decided by this input.
``"closed"`` comes from a sample that finds the account closed, or from the
monitor's own close after a breach.

A decision is *announced* once its event was handed to the consumer; a
checkpoint records it. A monitor restarted from a checkpoint taken between a
decision and its announcement announces it again, so a consumer never misses
a breach, a pass or a close (it may see one twice around a crash).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Literal

import msgspec

from ._errors import InvalidArgumentError
from .models.common import UTCDateTime
from .models.partner import AccountState, Trade
from .models.streams import Watermark
from .rules import Evaluator, EvaluatorState, RuleSet, RuleWarning, Status, Verdict, sample_of

__all__ = [
    "AccountProgress",
    "Announced",
    "EventKind",
    "MonitorEvent",
    "MonitorState",
    "Watched",
    "error_event",
    "opened_at_of",
    "stored_opened_at",
]

#: What a :class:`MonitorEvent` reports.
EventKind = Literal["fill", "sample", "warning", "breach", "passed", "closed", "error", "restarted"]
#: The last decision handed to the consumer.
Announced = Literal["in_progress", "failed", "passed", "closed"]

_ANNOUNCES: dict[str, Announced] = {"breach": "failed", "passed": "passed", "closed": "closed"}


class MonitorEvent(msgspec.Struct, kw_only=True, frozen=True):
    """One thing the fleet monitor saw about one account, with the account's verdict after it.

    ``str(event)`` is one line for a log or a terminal; ``msgspec.json.encode(event)``
    gives the whole event as JSON.

    Attributes:
        account_id: the account.
        kind: ``"fill"`` (a new fill from the trade feed, in ``trade``),
            ``"sample"`` (an account-state read, in ``state``), ``"warning"`` (limits
            newly at least ``warn_at_pct`` used, in ``warnings``), ``"breach"`` (the
            account failed: ``verdict.breaches``), ``"passed"`` (it passed), or
            ``"closed"`` (the account is closed: by the monitor after a breach, with
            ``close_on_breach``, or found closed by a sample; it is no longer watched),
            ``"error"`` (this account cannot be judged: unknown id, stored rules that
            are not a rule set, another permanent 4xx on it, in ``error``; it is no
            longer watched, the others are), or ``"restarted"`` (a decided account
            was found active again with a new ``metadata.opened_at`` or starting
            balance, i.e. reset: a new attempt is judged from here, from scratch).
        at: when it happened: the fill's ``filled_at``, the sample's instant, the
            breach's or pass's instant, or when the close was seen.
        verdict: the account's verdict after the event (``None`` for an ``"error"``
            on an account never judged).
        trade: the fill (``"fill"`` only).
        state: the account state the server answered (``"sample"``, and ``"closed"``
            when the monitor closed the account or a sample found it closed).
        warnings: the limits that newly crossed ``warn_at_pct`` (``"warning"`` only).
        error: what went wrong (``"error"`` only): the error's type and message.
    """

    account_id: str
    kind: EventKind
    at: UTCDateTime
    verdict: Verdict | None
    trade: Trade | None = None
    state: AccountState | None = None
    warnings: tuple[RuleWarning, ...] = ()
    error: str | None = None

    def __str__(self) -> str:
        """``<at> <account_id> <kind> <detail>`` on one line."""
        head = f"{self.at.isoformat(timespec='seconds')} {self.account_id} {self.kind}"
        v = self.verdict
        if v is None or self.kind == "error":
            return f"{head} {self.error}"
        m = v.metrics
        if self.kind == "fill" and self.trade is not None:
            t = self.trade
            detail = f"{t.side.value} {t.raw_quantity} {t.outcome} @ {t.raw_price} {t.market_id}"
        elif self.kind == "sample":
            rooms = " ".join(f"{rule}={room}" for rule, room in sorted(v.headroom.items()))
            detail = f"equity={m.equity} {v.status}" + (f" headroom {rooms}" if rooms else "")
        elif self.kind == "warning":
            detail = " ".join(
                f"{w.rule} {w.used_pct:.2f}% of its allowance used"
                f" (value {w.value}, limit {w.limit})"
                for w in self.warnings
            )
        elif self.kind == "breach":
            detail = " ".join(f"{b.rule} value={b.value} limit={b.limit}" for b in v.breaches)
        elif self.kind == "passed":
            detail = f"profit={m.profit} ({m.profit_pct:.2f}%)"
        elif self.kind == "restarted":
            detail = "a new attempt (the account was reset), judged from scratch"
        else:
            status = self.state.status.value if self.state is not None else "closed"
            detail = f"status={status} verdict={v.status}"
        return f"{head} {detail}"


class AccountProgress(msgspec.Struct, kw_only=True, frozen=True):
    """One account's part of a :class:`MonitorState`.

    Attributes:
        evaluator: the evaluator's state (high-water mark, day reference, trading days, ...).
        watermark: the newest fill judged; the trade feed resumes after it.
        announced: the last decision handed to the consumer (``"in_progress"`` for none).
        closed: the account is closed (by the monitor, or seen closed).
        warned: the rules whose warning was last reported.
    """

    evaluator: EvaluatorState
    watermark: Watermark
    announced: Announced = "in_progress"
    closed: bool = False
    warned: tuple[str, ...] = ()


class MonitorState(msgspec.Struct, kw_only=True, frozen=True):
    """A fleet monitor's checkpoint: pass it back as ``monitor(..., state=...)`` to resume.

    Encode it with ``msgspec.json.encode`` and decode it with
    ``msgspec.json.decode(data, type=MonitorState)``. The checkpoints of several
    shards merge as dictionaries:
    ``MonitorState(accounts={**a.accounts, **b.accounts})``.

    Attributes:
        accounts: per account id, everything the monitor knows.
    """

    accounts: dict[str, AccountProgress] = msgspec.field(default_factory=dict)


def opened_at_of(state: AccountState, at: datetime) -> datetime:
    """When the attempt opened: ``metadata["opened_at"]`` (ISO 8601 with a zone) if it is
    there and not after ``at``, else ``at`` (the monitor's first read)."""
    stored = (state.metadata or {}).get("opened_at")
    if isinstance(stored, str):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(stored.replace("Z", "+00:00"))
            if parsed.tzinfo is not None and parsed.utcoffset() is not None and parsed <= at:
                return parsed
    return at


def stored_opened_at(state: AccountState) -> str | None:
    """The account's ``metadata["opened_at"]`` as stored, if it is a string."""
    stored = (state.metadata or {}).get("opened_at")
    return stored if isinstance(stored, str) else None


def error_event(
    account_id: str, at: datetime, exc: BaseException, verdict: Verdict | None = None
) -> MonitorEvent:
    """An ``"error"`` event for an account that cannot be judged (``exc`` says why)."""
    return MonitorEvent(
        account_id=account_id,
        kind="error",
        at=at,
        verdict=verdict,
        error=f"{type(exc).__name__}: {exc}",
    )


class Watched:
    """One watched account: its evaluator, fill watermark and what was announced.

    Pure: every method takes the instants it needs. Not thread-safe; the
    monitor's consumer owns it.
    """

    __slots__ = (
        "account_id",
        "announced",
        "closed",
        "evaluator",
        "last_sample_at",
        "status",
        "warned",
        "watermark",
    )

    def __init__(
        self,
        account_id: str,
        evaluator: Evaluator,
        watermark: Watermark,
        *,
        announced: Announced = "in_progress",
        closed: bool = False,
        warned: tuple[str, ...] = (),
        status: Status = "in_progress",
        last_sample_at: datetime | None = None,
    ) -> None:
        self.account_id = account_id
        self.evaluator = evaluator
        self.watermark = watermark
        self.announced: Announced = announced
        self.closed = closed
        self.warned = frozenset(warned)
        #: The status of the latest verdict.
        self.status: Status = status
        self.last_sample_at = last_sample_at

    @classmethod
    def restore(cls, account_id: str, progress: AccountProgress) -> Watched:
        """The account as a checkpoint left it.

        Raises:
            InvalidArgumentError: ``progress`` is not an :class:`AccountProgress`.
        """
        if not isinstance(progress, AccountProgress):
            raise InvalidArgumentError(
                f"state.accounts[{account_id!r}] must be an AccountProgress, got {progress!r}"
            )
        saved = progress.evaluator
        status: Status = (
            "failed" if saved.breaches else "passed" if saved.passed_at else "in_progress"
        )
        return cls(
            account_id,
            Evaluator.restore(saved),
            progress.watermark,
            announced=progress.announced,
            closed=progress.closed,
            warned=progress.warned,
            status=status,
            last_sample_at=saved.last_sample_at,
        )

    @classmethod
    def start(
        cls,
        account_id: str,
        state: AccountState,
        at: datetime,
        *,
        rules: RuleSet | None,
        history: Sequence[Trade] = (),
    ) -> tuple[Watched, list[MonitorEvent]]:
        """Begin judging from the first read: ``state`` read at ``at``, and the fills since
        the opening (``history``, oldest first, when the opening lies before ``at``).

        Returns:
            The account and the events of its first sample.

        Raises:
            InvalidArgumentError: the stored rules are not a rule set, or the
                starting balance is not positive (the message names the account).
        """
        opened = opened_at_of(state, at)
        try:
            ruleset = rules if rules is not None else RuleSet.from_wire(state.rules)
            evaluator = Evaluator(
                ruleset, starting_balance=state.starting_balance, opened_at=opened
            )
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"account {account_id}: {exc}") from exc
        mark = Watermark(filled_at=opened, order_id=0)
        self = cls(account_id, evaluator, mark)
        for trade in history:
            self._judge_fill(trade)
        return self, self.sample(state, at)

    def with_rules(self, rules: RuleSet) -> bool:
        """Judge from now on by ``rules`` when they differ from the evaluator's, keeping
        everything the evaluator learned (high-water mark, day references, trading
        days, fills). Only an undecided account changes. Returns whether it changed."""
        saved = self.evaluator.state
        if rules == saved.rules or not self.active:
            return False
        start = saved.starting_balance
        floor = Evaluator(rules, starting_balance=start, opened_at=saved.opened_at).state.floor
        if floor is not None and rules.max_drawdown_mode != "static":
            # The trailing floor under the new limit, from the high-water marks kept.
            high = (
                saved.high_water_mark if rules.max_drawdown_mode == "trailing" else saved.eod_high
            )
            trailed = high - (start - floor)
            if rules.max_drawdown_lock_at_start:
                trailed = min(trailed, start)
            floor = max(floor, trailed)
        self.evaluator = Evaluator.restore(msgspec.structs.replace(saved, rules=rules, floor=floor))
        return True

    def is_reset(self, state: AccountState, at: datetime) -> bool:
        """Whether ``state`` (read at ``at``) is a new attempt of this decided account:
        active again with another ``metadata.opened_at`` or starting balance."""
        saved = self.evaluator.state
        return state.status.value == "active" and (
            state.starting_balance != saved.starting_balance
            or (stored_opened_at(state) is not None and opened_at_of(state, at) != saved.opened_at)
        )

    def error(self, at: datetime, exc: BaseException) -> MonitorEvent:
        """An ``"error"`` event: this account can no longer be judged."""
        return error_event(self.account_id, at, exc, self.evaluator.verdict(at))

    # -- what the monitor asks --------------------------------------------------------

    @property
    def active(self) -> bool:
        """Still being judged: neither decided nor closed."""
        return not self.closed and not self.evaluator.decided

    @property
    def nearest_headroom(self) -> Decimal | None:
        """Money left before the nearest equity limit (see ``Evaluator.nearest_headroom``)."""
        return self.evaluator.nearest_headroom

    @property
    def next_day_start(self) -> datetime:
        """The account's next day boundary."""
        return self.evaluator.next_day_start

    def progress(self) -> AccountProgress:
        """The account's checkpoint."""
        return AccountProgress(
            evaluator=self.evaluator.state,
            watermark=self.watermark,
            announced=self.announced,
            closed=self.closed,
            warned=tuple(sorted(self.warned)),
        )

    def handed_out(self, event: MonitorEvent) -> None:
        """Record that ``event`` reached the consumer (decisions become announced)."""
        announced = _ANNOUNCES.get(event.kind)
        if announced is not None:
            self.announced = announced

    # -- inputs ---------------------------------------------------------------------

    def sample(self, state: AccountState, at: datetime) -> list[MonitorEvent]:
        """Judge an account state read at ``at``.

        A sample that would go back in time (the machine's clock stepped back) is
        taken at the previous sample's instant.
        """
        ev = self.evaluator
        previous = self.last_sample_at
        if previous is not None and at < previous:
            at = previous
        self.last_sample_at = at
        was_decided = ev.decided
        # The rules' balance is the prop-firm one (cash plus positions at cost), not P5's cash.
        sample = sample_of(state, at=at)
        ev.add_sample(at, balance=sample.balance, equity=sample.equity, positions=sample.positions)
        verdict = ev.verdict(at)
        events = [self._event("sample", at, verdict, state=state)]
        events += self._changes(verdict, at, was_decided)
        if state.status.value != "active":
            events += self.closed_now(state, at)
        return events

    def fill(self, trade: Trade, now: datetime) -> list[MonitorEvent]:
        """Judge a new fill, learned at ``now``."""
        was_decided = self._judge_fill(trade)
        verdict = self.evaluator.verdict(max(now, trade.filled_at))
        events = [self._event("fill", trade.filled_at, verdict, trade=trade)]
        return events + self._changes(verdict, verdict.at, was_decided)

    def closed_now(self, state: AccountState | None, at: datetime) -> list[MonitorEvent]:
        """The account is closed as of ``at`` (``state``: the server's answer, if any)."""
        if self.closed:
            return []
        self.closed = True
        return [self._event("closed", at, self.evaluator.verdict(at), state=state)]

    def unannounced(self, now: datetime) -> list[MonitorEvent]:
        """The decisions a restored account made that never reached the consumer."""
        ev = self.evaluator
        events: list[MonitorEvent] = []
        if ev.decided and self.announced == "in_progress":
            verdict = ev.verdict(now)
            events += self._changes(verdict, now, was_decided=False)
        if self.closed and self.announced != "closed":
            events.append(self._event("closed", now, ev.verdict(now)))
        return events

    # -- internals ------------------------------------------------------------------

    def _judge_fill(self, trade: Trade) -> bool:
        """Add ``trade`` to the evaluator; return whether it was decided before."""
        was_decided = self.evaluator.decided
        mark = Watermark.of(trade)
        if mark > self.watermark:
            self.watermark = mark
        self.evaluator.add_fill(trade)
        return was_decided

    def _changes(self, verdict: Verdict, at: datetime, was_decided: bool) -> list[MonitorEvent]:
        self.status = verdict.status
        events: list[MonitorEvent] = []
        names = frozenset(w.rule for w in verdict.warnings)
        new = names - self.warned
        self.warned = names
        if new:
            fresh = tuple(w for w in verdict.warnings if w.rule in new)
            events.append(self._event("warning", at, verdict, warnings=fresh))
        if not was_decided and verdict.status == "failed":
            events.append(self._event("breach", verdict.breaches[0].at, verdict))
        elif not was_decided and verdict.status == "passed":
            assert verdict.passed_at is not None
            events.append(self._event("passed", verdict.passed_at, verdict))
        return events

    def _event(
        self,
        kind: EventKind,
        at: datetime,
        verdict: Verdict,
        *,
        trade: Trade | None = None,
        state: AccountState | None = None,
        warnings: tuple[RuleWarning, ...] = (),
    ) -> MonitorEvent:
        return MonitorEvent(
            account_id=self.account_id,
            kind=kind,
            at=at,
            verdict=verdict,
            trade=trade,
            state=state,
            warnings=warnings,
        )
