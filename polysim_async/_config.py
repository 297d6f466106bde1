"""Immutable configuration objects and the library's named defaults.

Nothing here performs I/O. Every object validates itself on construction so a
bad setting fails where it is written, not on the first request.
"""

from __future__ import annotations

import ipaddress
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ._errors import InvalidArgumentError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_DEADLINE",
    "DEFAULT_DRAIN_RETRIES",
    "DEFAULT_MAX_RESPONSE_SIZE",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_RETRY_AFTER",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_RATE_LIMIT",
    "DEFAULT_STREAM_POLICY",
    "DEFAULT_TIMEOUT",
    "MAX_PAGE_SIZE",
    "ProcessException",
    "RateLimit",
    "RetryPolicy",
    "StreamPolicy",
    "Timeout",
    "backoff",
    "check_positive",
    "mask_key",
    "resolve_api_key",
    "resolve_base_url",
]

DEFAULT_BASE_URL = "https://api.polysimulator.com"
#: Overall budget, in seconds, for one call: every attempt, backoff and limiter wait together.
DEFAULT_DEADLINE = 120.0
#: Automatic repeats after the first attempt for 429, 425/502/503/504 and transport errors.
DEFAULT_MAX_RETRIES = 3
#: A 429 asking to wait longer than this (seconds) is raised at once instead of waited out.
DEFAULT_MAX_RETRY_AFTER = 60.0
#: Repeats of close/reset while the server answers 409 ORDERS_NOT_CANCELLED.
DEFAULT_DRAIN_RETRIES = 10
#: Connections kept per client (aiohttp connector limit).
DEFAULT_POOL_SIZE = 100
#: Trade-feed page size requested by the iterators (the server's maximum).
DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 500
#: Bytes of (decompressed) body read at most per answer: 16 MiB, some 80 times the
#: largest legitimate page (500 trades are about 200 KiB).
DEFAULT_MAX_RESPONSE_SIZE = 16 * 2**20
#: Fills buffered between a stream's socket reader and a slow consumer.
DEFAULT_QUEUE_SIZE = 1000


def backoff(base: float, cap: float, attempt: int, rng: random.Random) -> float:
    """Exponential backoff with equal jitter: ``base * 2**attempt`` up to ``cap``, then
    a wait drawn between half and all of that step. Shared by every repeat loop.

    Any number of attempts is fine: the exponent stops growing long before a
    float would overflow (a loop retrying a draining 409 for hours reaches
    thousands of attempts).
    """
    ceiling = min(cap, base * (2.0 ** min(attempt, 64)))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def check_positive(name: str, value: float | None, *, allow_none: bool = True) -> None:
    if value is None:
        if not allow_none:
            raise InvalidArgumentError(f"{name} must be a number, not None")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"{name} must be a positive finite number, got {value!r}")


@dataclass(frozen=True)
class Timeout:
    """Per-attempt timeouts in seconds; ``None`` disables one.

    Attributes:
        connect: time to open a connection (DNS, TCP, TLS).
        read: time to wait for each chunk of the response.
        total: time for one whole attempt, from sending to the last byte.
    """

    connect: float | None = 5.0
    read: float | None = 30.0
    total: float | None = 30.0

    def __post_init__(self) -> None:
        for name in ("connect", "read", "total"):
            check_positive(f"Timeout.{name}", getattr(self, name))


@dataclass(frozen=True)
class RateLimit:
    """A client-side request budget: sliding windows of one second and one minute.

    ``None`` for a window means that window is not limited. The partner API
    allows 50 requests per second and 3,000 per minute per tenant (API.md §7.1).

    ``margin`` (seconds) stretches both windows. The limiter already counts each
    request's slot until its answer came back, which covers any delay between
    sending and the server counting it (see :mod:`._ratelimit`), so the margin only
    pads for the server's own timestamp rounding. The default, 0.01 s, comes from
    measurement (benchmarks/README.md: zero 429s at margins 0 to 0.1 s on bursts of
    300 calls with client and sandbox on one loaded event loop) and costs about 1%
    of the per-second budget.
    """

    per_second: int | None = 50
    per_minute: int | None = 3000
    margin: float = 0.01

    def __post_init__(self) -> None:
        if (
            isinstance(self.margin, bool)
            or not isinstance(self.margin, (int, float))
            or not 0 <= self.margin < 1
        ):
            raise InvalidArgumentError(
                f"RateLimit.margin must be seconds in [0, 1), got {self.margin!r}"
            )
        for name in ("per_second", "per_minute"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(
                    f"RateLimit.{name} must be a positive integer or None, got {value!r}"
                )


@dataclass(frozen=True)
class RetryPolicy:
    """How a call is repeated. Built by :class:`~polysim_async.Client` from its keyword options.

    Attributes:
        max_retries: repeats after the first attempt for 429, 425/502/503/504 and
            transport errors; ``0`` disables every automatic repeat, draining included.
        max_retry_after: a ``Retry-After`` longer than this raises at once.
        backoff_base: first backoff in seconds; doubles per attempt; each wait is
            drawn between half and all of the step (equal jitter).
        backoff_max: ceiling of one backoff.
        drain_retries: repeats of close/reset on 409 ``ORDERS_NOT_CANCELLED``.
        drain_wait: pause between drain attempts when the server sends no ``Retry-After``.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    drain_retries: int = DEFAULT_DRAIN_RETRIES
    drain_wait: float = 0.5

    def __post_init__(self) -> None:
        for name in ("max_retries", "drain_retries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgumentError(f"{name} must be an integer >= 0, got {value!r}")
        for name in ("max_retry_after", "backoff_base", "backoff_max", "drain_wait"):
            check_positive(name, getattr(self, name), allow_none=False)


#: Decides what a stream or watch does after a failure: ``None`` to wait and try
#: again, or the exception to end it with (the default is :func:`~._retry.is_transient`).
ProcessException = Callable[[Exception], "Exception | None"]


@dataclass(frozen=True)
class StreamPolicy:
    """How the executions stream reconnects, keeps its socket alive and checks REST.

    Attributes:
        backoff_base: first wait after a drop, in seconds; doubles per
            consecutive failure, each wait shortened at random by up to half.
        backoff_max: ceiling of one wait.
        stable_after: a connection that stayed up this long resets the backoff
            (unless it was dropped for silence after a ping, or, on the price
            stream, for a subscription left unanswered for ``open_timeout``).
        max_failures: consecutive failed connections (without a stable one in
            between) after which the stream ends with :class:`StreamClosedError`;
            ``None`` retries forever.
        ping_interval: idle seconds before a JSON ping is sent.
        ping_timeout: seconds to wait for any frame after a ping before the
            socket is taken for dead and replaced.
        open_timeout: seconds allowed for the WebSocket handshake (and, on the price
            stream, for the server to acknowledge a subscribe or unsubscribe).
        reconcile_interval: seconds between REST checks while connected, which
            catch fills that never reached the socket; ``None`` checks only after
            reconnects.
        lookback: seconds of fill time below the newest fill REST showed at the
            previous check that the next check re-reads, to catch fills that
            became visible in REST after newer ones.
        process_exception: decides what a failure does, as in websockets'
            ``connect(process_exception=...)``: return ``None`` to reconnect
            (after the backoff), or an exception to end the stream with. The
            default retries exactly what ``is_transient`` names (transport
            errors, 408/425/429/5xx), so a bug or a refusal surfaces at once.
    """

    backoff_base: float = 0.5
    backoff_max: float = 30.0
    stable_after: float = 10.0
    max_failures: int | None = None
    ping_interval: float = 20.0
    ping_timeout: float = 10.0
    open_timeout: float = 10.0
    reconcile_interval: float | None = 30.0
    lookback: float = 10.0
    process_exception: ProcessException | None = None

    def __post_init__(self) -> None:
        positive = ["stable_after", "ping_interval", "ping_timeout", "open_timeout"]
        if self.reconcile_interval is not None:
            positive.append("reconcile_interval")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise InvalidArgumentError(f"StreamPolicy.{name} must be > 0, got {value!r}")
        check_positive("backoff_base", self.backoff_base, allow_none=False)
        check_positive("backoff_max", self.backoff_max, allow_none=False)
        if isinstance(self.lookback, bool) or not isinstance(self.lookback, (int, float)):
            raise InvalidArgumentError("StreamPolicy.lookback must be a number of seconds")
        if self.lookback < 0:
            raise InvalidArgumentError("StreamPolicy.lookback must be >= 0")
        failures = self.max_failures
        if failures is not None and (
            isinstance(failures, bool) or not isinstance(failures, int) or failures < 0
        ):
            raise InvalidArgumentError("StreamPolicy.max_failures must be an int >= 0 or None")
        if self.process_exception is not None and not callable(self.process_exception):
            raise InvalidArgumentError("StreamPolicy.process_exception must be callable")

    def backoff(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after ``failures`` consecutive failures (>= 1), with equal jitter."""
        return backoff(self.backoff_base, self.backoff_max, max(0, failures - 1), rng)


DEFAULT_TIMEOUT = Timeout()
DEFAULT_RATE_LIMIT = RateLimit()
DEFAULT_STREAM_POLICY = StreamPolicy()

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_base_url(base_url: str | None, *, allow_insecure: bool) -> str:
    """Return the base URL to use: the argument, else ``POLYSIM_BASE_URL``, else production.

    Raises:
        InvalidArgumentError: the URL is not http(s), has no host, carries
            credentials (``user:password@``: they would be quoted in every
            connection error and in ``repr(client)``; the message does not echo
            them), ends in ``/v1``, or is plain ``http`` to a non-loopback host
            without ``allow_insecure=True``.
    """
    url = base_url or os.environ.get("POLYSIM_BASE_URL") or DEFAULT_BASE_URL
    parts = urlsplit(url)
    if "@" in parts.netloc:
        # Checked first: every other message below quotes the URL.
        host = parts.netloc.rpartition("@")[2]
        raise InvalidArgumentError(
            "base_url must not carry credentials (user:password@host); the API key "
            f"authenticates, so use {parts.scheme}://{host}{parts.path}"
        )
    path = parts.path.rstrip("/").lower()
    if path.endswith(("/v1", "/v1/partner")):
        # A common mistake: the client adds /v1/... itself, so every call would 404.
        raise InvalidArgumentError(
            f"base_url must be the API root without /v1 (the client adds /v1/... itself), "
            f"got {url!r}; use {url[: url.lower().rstrip('/').rindex('/v1')]!r}"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(f"base_url must be an http(s) URL with a host, got {url!r}")
    if parts.query or parts.fragment:
        raise InvalidArgumentError(f"base_url must not carry a query or fragment, got {url!r}")
    if parts.scheme == "http" and not allow_insecure and not _is_loopback(parts.hostname):
        raise InvalidArgumentError(
            f"refusing to send an API key over plain http to {parts.hostname!r}; "
            "use https, a loopback address, or pass allow_insecure=True"
        )
    return url.rstrip("/")


def resolve_api_key(api_key: str | None) -> str | None:
    """Return the key: the argument, else ``POLYSIM_TENANT_KEY``, else ``POLYSIM_API_KEY``."""
    key = api_key or os.environ.get("POLYSIM_TENANT_KEY") or os.environ.get("POLYSIM_API_KEY")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise InvalidArgumentError("api_key must be a non-empty string")
    if key is None:
        return None
    key = key.strip()
    # Keys are printable ASCII without spaces; anything else would make aiohttp raise a
    # bare ValueError (header injection guard) on the first request. Never echo the key.
    if not all("!" <= ch <= "~" for ch in key):
        raise InvalidArgumentError(
            "api_key contains whitespace, control or non-ASCII characters; check how it was loaded"
        )
    return key


def mask_key(key: str | None) -> str:
    """Show at most the first four characters of a key, for reprs and messages."""
    if not key:
        return "None"
    return f"{key[:4]}…" if len(key) > 8 else "…"
