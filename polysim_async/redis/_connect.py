"""Opening redis-py lazily, and telling "Redis is unavailable" from "Redis refused".

redis-py is an optional extra: :func:`load` imports it (with a message naming
the extra when it is missing) and nothing else in the package imports it.
"""

from __future__ import annotations

from typing import Any

from .._errors import CoordinationError
from .._extras import require

__all__ = ["connect", "load", "refusal", "unavailable_errors"]


def load(feature: str) -> Any:
    """Import and return ``redis.asyncio``.

    Raises:
        MissingDependencyError: redis-py is not installed (``pip install "polysim-async[redis]"``).
    """
    return require("redis.asyncio", "redis", feature=feature)


def unavailable_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "Redis did not answer": every redis-py error and ``OSError``."""
    exceptions = require("redis.exceptions", "redis", feature="Redis")
    return (exceptions.RedisError, exceptions.RedisClusterException, OSError)


def refusal(exc: BaseException, owner: object, keys: list[str]) -> CoordinationError | None:
    """The error to raise when Redis answered ``exc`` but refused the command, else ``None``.

    Redis refuses a command, or a script fails, when one of ``keys`` holds a
    value this library did not write there (a key of the wrong type, a
    number that is not one). Retrying or falling back would hide that, so it
    is a :class:`~polysim_async.CoordinationError` naming the keys, not a
    :class:`~polysim_async.StoreUnavailableError`. Refusals that only mean
    "not now" (a read-only replica after a failover, out of memory, a
    cluster resharding) return ``None``: they count as unavailable.
    """
    exceptions = require("redis.exceptions", "redis", feature="Redis")
    passing = (
        exceptions.ReadOnlyError,
        exceptions.OutOfMemoryError,
        exceptions.ClusterDownError,
        exceptions.TryAgainError,
        exceptions.AskError,
        exceptions.MovedError,
    )
    if not isinstance(exc, (exceptions.ResponseError, exceptions.DataError)) or isinstance(
        exc, passing
    ):
        return None
    return CoordinationError(
        f"Redis refused a command of {owner!r} on {', '.join(keys)}: {exc}"
        " (a key holds a value this library did not write; delete it)"
    )


def connect(url: str, *, cluster: bool, timeout: float, feature: str) -> Any:
    """A ``redis.asyncio.Redis`` (or ``RedisCluster``) for ``url`` that fails fast.

    No connection is opened until the first command. redis-py's own retries are
    turned off: the caller decides what an unreachable server means. Only the
    connect is timed here: redis-py times every command with ``asyncio.wait_for``,
    which before Python 3.12 can swallow a cancellation, so callers bound each
    call themselves with :func:`~polysim_async._tasks.wait_within`.
    """
    redis_asyncio = load(feature)
    backoff = require("redis.backoff", "redis", feature=feature)
    retry = require("redis.asyncio.retry", "redis", feature=feature)
    kind = redis_asyncio.RedisCluster if cluster else redis_asyncio.Redis
    return kind.from_url(
        url,
        socket_timeout=None,
        socket_connect_timeout=timeout,
        retry=retry.Retry(backoff.NoBackoff(), 0),
    )
