"""Opening redis-py lazily, and telling "Redis is unavailable" from "Redis refused".

redis-py is an optional extra: :func:`load` imports it (with a message naming
the extra when it is missing) and nothing else in the package imports it.
"""

from __future__ import annotations

import socket
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


def refusal(
    exc: BaseException, owner: object, keys: list[str], *, answered: bool = False
) -> CoordinationError | None:
    """The error to raise when ``exc`` means "Redis refused", not "Redis is down"; else ``None``.

    Retrying or falling back to local pacing would hide a refusal, so each is a
    :class:`~polysim_async.CoordinationError` saying what to fix:

    * the credentials were refused (``AuthenticationError``: a wrong or missing
      password or user), or the user lacks a right (``NOPERM``: an ACL without
      the commands the library runs, see the README's "Redis permissions"); the
      message names the right Redis reported missing;
    * the library's Lua script could not be run (``NOSCRIPT`` after loading it);
    * the host name does not resolve, before Redis ever answered (``answered``
      false): a typo in the URL, not an outage;
    * one of ``keys`` holds a value this library did not write there (a key
      of the wrong type, a number that is not one): only then does the message
      advise deleting the key.

    Refusals that only mean "not now" (a read-only replica after a failover,
    out of memory, a cluster resharding) and every connection failure return
    ``None``: they count as unavailable.
    """
    exceptions = require("redis.exceptions", "redis", feature="Redis")
    names = ", ".join(dict.fromkeys(keys)) or "(no key)"
    if isinstance(exc, (exceptions.AuthenticationError, exceptions.AuthorizationError)) or (
        isinstance(exc, exceptions.ResponseError)
        and str(exc).startswith(("WRONGPASS", "NOAUTH", "invalid password"))
    ):
        return CoordinationError(
            f"Redis refused the credentials of {owner!r}: {exc} (check the user and"
            " password in the URL; this is a configuration error, not an outage)"
        )
    if isinstance(exc, exceptions.NoPermissionError) or str(exc).startswith("NOPERM"):
        return CoordinationError(
            f"the Redis user of {owner!r} lacks a permission it needs on {names}: {exc}"
            " (grant the user the commands and keys listed under 'Redis permissions' in the README)"
        )
    if isinstance(exc, exceptions.NoScriptError):
        return CoordinationError(
            f"Redis could not run the Lua script of {owner!r} on {names}: {exc} (the user"
            " needs EVALSHA and SCRIPT LOAD, and scripting must not be disabled)"
        )
    if not answered and isinstance(exc, exceptions.ConnectionError) and _unresolved(exc):
        return CoordinationError(
            f"the Redis host of {owner!r} does not resolve: {exc} (check the host name in"
            " the URL; a name that never resolved is a configuration error, not an outage)"
        )
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
    text = str(exc)
    if any(sign in text for sign in _BAD_DATA):
        return CoordinationError(
            f"Redis refused a command of {owner!r} on {names}: {exc}"
            " (a key holds a value this library did not write; delete it)"
        )
    return CoordinationError(f"Redis refused a command of {owner!r} on {names}: {exc}")


#: What Redis says when a key holds data of another kind than the library wrote.
_BAD_DATA = (
    "WRONGTYPE",
    "not an integer",
    "not a valid float",
    "is not a number",
    "user_script",
    "Error running script",
)


def _unresolved(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a failed host-name lookup."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, socket.gaierror) and seen.errno != socket.EAI_AGAIN:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


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
