"""Opening redis-py lazily, and recognising its "server unavailable" errors.

redis-py is an optional extra: :func:`load` imports it (with a message naming
the extra when it is missing) and nothing else in the package imports it.
"""

from __future__ import annotations

from typing import Any

from .._extras import require

__all__ = ["connect", "load", "unavailable_errors"]


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


def connect(url: str, *, cluster: bool, timeout: float, feature: str) -> Any:
    """A ``redis.asyncio.Redis`` (or ``RedisCluster``) for ``url`` that fails fast.

    No connection is opened until the first command. redis-py's own retries are
    turned off: the caller decides what an unreachable server means.
    """
    redis_asyncio = load(feature)
    backoff = require("redis.backoff", "redis", feature=feature)
    retry = require("redis.asyncio.retry", "redis", feature=feature)
    kind = redis_asyncio.RedisCluster if cluster else redis_asyncio.Redis
    return kind.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=retry.Retry(backoff.NoBackoff(), 0),
    )
