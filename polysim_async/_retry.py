"""Which failures are repeated, how long to wait, and the tenacity loop that does it.

tenacity stays an implementation detail: callers see the last library error
(``reraise=True``), never ``tenacity.RetryError``. The rules (API.md §9):

* 429: any request; wait ``Retry-After`` (seconds or HTTP date), or back off if
  absent. A ``Retry-After`` above ``max_retry_after`` raises at once.
* 425/502/503/504: only requests safe to repeat; ``Retry-After`` if sent,
  else exponential backoff with equal jitter. ``VENUE_UNAVAILABLE``,
  ``PERSISTENCE_UNKNOWN`` and ``DEADLINE_OVERSHOT_BUT_PERSISTED`` never.
* transport errors: requests safe to repeat, or any request that provably
  never left (connect failures).
* 409 ``ORDERS_NOT_CANCELLED``: only close/reset (``drain=True``), on a
  separate ``drain_retries`` budget.
* 409 ``IDEMPOTENCY_CONFLICT_PENDING`` / ``TRADE_IN_PROGRESS`` /
  ``LOCK_BUSY_RETRY``: only idempotent (keyed) requests, after ``Retry-After``.

``max_retries=0`` disables every repeat. All attempts and waits of one call
fit inside its deadline; a wait that would pass it raises
:class:`DeadlineExceededError` chained to the last error.

Beside it, :func:`is_transient` is the one rule for what a long-running loop
(the execution stream, the trade watch) waits out and tries again: it names
what is transient, so anything else, a bug in particular, ends the loop.
"""

from __future__ import annotations

import collections
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, stop_never

from ._clock import Clock
from ._config import RetryPolicy, backoff
from ._errors import (
    APIStatusError,
    ConflictError,
    DeadlineExceededError,
    OrdersNotCancelledError,
    RateLimitError,
    TransportError,
)

__all__ = [
    "CallKind",
    "ClientStats",
    "OnRetry",
    "backoff",
    "is_transient",
    "retry_if_transient",
    "retry_reason",
    "run_with_retries",
]

T = TypeVar("T")
logger = logging.getLogger("polysim_async")

_RETRY_STATUSES = frozenset({425, 502, 503, 504})
_NEVER_CODES = frozenset(
    {"VENUE_UNAVAILABLE", "PERSISTENCE_UNKNOWN", "DEADLINE_OVERSHOT_BUT_PERSISTED"}
)
_BUSY_CODES = frozenset({"IDEMPOTENCY_CONFLICT_PENDING", "TRADE_IN_PROGRESS", "LOCK_BUSY_RETRY"})
_DRAIN_MAX_WAIT = 5.0
#: Statuses a long-running loop waits out (with every 5xx): request timeout, too early, 429.
_TRANSIENT_STATUSES = frozenset({408, 425, 429})

#: Called before the wait of each repeat: (attempt that failed, reason, wait, error).
OnRetry = Callable[[int, str, float, Exception], object]


def is_transient(exc: BaseException) -> bool:
    """Whether a long-running loop (stream, watch) should wait and try again after ``exc``.

    Transient: transport errors (no answer, a timeout, a dropped connection)
    and answers 408, 425, 429 and 5xx, except the codes that are never retried
    (``VENUE_UNAVAILABLE``, ``PERSISTENCE_UNKNOWN``,
    ``DEADLINE_OVERSHOT_BUT_PERSISTED``). Everything else is not: other 4xx
    (bad key, missing scope, unknown id), a body that does not decode, misuse,
    a server repeating a cursor, and any exception that is not a library error
    (a bug must surface, not loop).
    """
    if isinstance(exc, TransportError):
        return True
    if isinstance(exc, APIStatusError):
        transient = exc.status >= 500 or exc.status in _TRANSIENT_STATUSES
        return transient and exc.code not in _NEVER_CODES
    return False


def retry_if_transient(exc: Exception) -> Exception | None:
    """The default ``process_exception``: ``None`` (try again) when ``exc`` is
    transient, else ``exc`` itself (end the loop with it)."""
    return None if is_transient(exc) else exc


@dataclass(frozen=True, slots=True)
class CallKind:
    """What a call allows to be repeated.

    Attributes:
        idempotent: repeating the whole request cannot duplicate a side effect.
        drain: repeat on 409 ``ORDERS_NOT_CANCELLED`` (close and reset).
    """

    idempotent: bool
    drain: bool = False


@dataclass
class ClientStats:
    """Counters an application can read from ``client.stats``.

    Attributes:
        attempts: HTTP attempts sent, retries included.
        retries: repeats by reason (``rate_limit``, ``server``, ``transport``,
            ``drain``, ``conflict``).
        retry_wait: seconds slept between attempts.
        limiter_wait: seconds spent waiting for the client-side rate limiter.
    """

    attempts: int = 0
    retries: collections.Counter[str] = field(default_factory=collections.Counter)
    retry_wait: float = 0.0
    limiter_wait: float = 0.0


def retry_reason(exc: BaseException, kind: CallKind) -> str | None:
    """Name the reason ``exc`` may be repeated for a call of ``kind``, or ``None``."""
    if isinstance(exc, DeadlineExceededError):
        return None
    if isinstance(exc, RateLimitError):
        return "rate_limit"
    if isinstance(exc, OrdersNotCancelledError):
        return "drain" if kind.drain else None
    if isinstance(exc, ConflictError):
        return "conflict" if kind.idempotent and exc.code in _BUSY_CODES else None
    if isinstance(exc, APIStatusError):
        if exc.status in _RETRY_STATUSES and kind.idempotent and exc.code not in _NEVER_CODES:
            return "server"
        return None
    if isinstance(exc, TransportError):
        return "transport" if kind.idempotent or not exc.request_sent else None
    return None


class _Decider:
    """Holds one call's retry bookkeeping; its methods plug into tenacity."""

    def __init__(
        self,
        *,
        policy: RetryPolicy,
        kind: CallKind,
        clock: Clock,
        deadline: float | None,
        stats: ClientStats,
        describe: str,
        rng: random.Random,
        on_retry: OnRetry | None,
    ) -> None:
        self.policy = policy
        self.kind = kind
        self.clock = clock
        self.deadline = deadline
        self.stats = stats
        self.describe = describe
        self.rng = rng
        self.on_retry = on_retry
        self.used: collections.Counter[str] = collections.Counter()
        self.next_wait = 0.0
        self.reason = ""
        self.deadline_hit = False

    def _wait_for(self, exc: BaseException, reason: str) -> float | None:
        retry_after = exc.retry_after if isinstance(exc, APIStatusError) else None
        if retry_after is not None:
            return None if retry_after > self.policy.max_retry_after else retry_after
        if reason == "drain":
            return min(_DRAIN_MAX_WAIT, self.policy.drain_wait * (1.5 ** self.used["drain"]))
        if reason == "conflict":
            return 1.0
        policy = self.policy
        return backoff(policy.backoff_base, policy.backoff_max, self.used["general"], self.rng)

    def should_retry(self, state: RetryCallState) -> bool:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if exc is None or self.policy.max_retries == 0:
            return False
        reason = retry_reason(exc, self.kind)
        if reason is None:
            return False
        bucket = "drain" if reason == "drain" else "general"
        budget = self.policy.drain_retries if bucket == "drain" else self.policy.max_retries
        if self.used[bucket] >= budget:
            return False
        wait = self._wait_for(exc, reason)
        if wait is None:
            return False
        if self.deadline is not None and self.clock.now() + wait > self.deadline:
            self.deadline_hit = True
            return False
        self.used[bucket] += 1
        self.next_wait, self.reason = wait, reason
        return True

    def wait(self, state: RetryCallState) -> float:
        return self.next_wait

    def before_sleep(self, state: RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        self.stats.retries[self.reason] += 1
        self.stats.retry_wait += self.next_wait
        logger.debug(
            "retrying %s (attempt %d) after %s: %s; waiting %.3fs",
            self.describe,
            state.attempt_number + 1,
            self.reason,
            exc,
            self.next_wait,
        )
        if self.on_retry is not None and isinstance(exc, Exception):
            self.on_retry(state.attempt_number, self.reason, self.next_wait, exc)


async def run_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    kind: CallKind,
    clock: Clock,
    deadline: float | None,
    stats: ClientStats,
    describe: str,
    rng: random.Random | None = None,
    on_retry: OnRetry | None = None,
) -> T:
    """Run ``attempt`` until it succeeds or the rules above say stop.

    Returns:
        The first successful result.

    Raises:
        The last attempt's error, or DeadlineExceededError chained to it.
        Cancellation propagates at once, including during a backoff sleep.
    """
    # Fast path: most calls succeed first time, and building tenacity's loop costs
    # more than a small request. Enter it only after a first repeatable failure,
    # which it then sees as attempt 1, so the rules and budgets are unchanged.
    try:
        return await attempt()
    except (APIStatusError, TransportError) as exc:
        if policy.max_retries == 0 or retry_reason(exc, kind) is None:
            raise
        first: list[BaseException] = [exc]

    async def replay_then_attempt() -> T:
        if first:
            raise first.pop()
        return await attempt()

    decider = _Decider(
        policy=policy,
        kind=kind,
        clock=clock,
        deadline=deadline,
        stats=stats,
        describe=describe,
        rng=rng or random.Random(),
        on_retry=on_retry,
    )
    retrying = AsyncRetrying(
        retry=decider.should_retry,
        wait=decider.wait,
        stop=stop_never,
        sleep=clock.sleep,
        before_sleep=decider.before_sleep,
        reraise=True,
    )
    try:
        return await retrying(replay_then_attempt)
    except (APIStatusError, TransportError) as exc:
        if decider.deadline_hit:
            raise DeadlineExceededError(
                f"{describe}: deadline reached while retrying after: {exc}"
            ) from exc
        raise
