"""Observability hooks: plain callbacks the client calls as requests and streams happen.

``Client(hooks=Hooks(on_response=...))``. Every callback is optional, called
synchronously in the task making the call, and must be quick: schedule slow
work (a network exporter) yourself. An exception raised by a callback
propagates to the call that triggered it, so a broken hook is noticed.

Events never carry the API key or a WebSocket token: paths are sent without
the query string, headers are limited to the rate-limit ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .models.streams import StreamGap

__all__ = [
    "GapEvent",
    "Hooks",
    "LimiterWaitEvent",
    "NO_HOOKS",
    "ReconnectEvent",
    "RequestEvent",
    "ResponseEvent",
    "RetryEvent",
]


@dataclass(frozen=True, slots=True)
class RequestEvent:
    """An HTTP attempt is about to be sent.

    Attributes:
        method, path: what is requested (``path`` without the query string).
        attempt: 1 for the first attempt of a call, 2 for its first retry, ...
    """

    method: str
    path: str
    attempt: int


@dataclass(frozen=True, slots=True)
class ResponseEvent:
    """An HTTP answer came back (any status).

    Attributes:
        method, path, attempt: as in :class:`RequestEvent`.
        status: the HTTP status.
        request_id: the ``X-Request-Id`` header, if any.
        elapsed: seconds from sending to the whole body read (on the client's clock).
        rate_limit: the ``X-RateLimit-*`` and ``Retry-After`` headers of the answer.
    """

    method: str
    path: str
    attempt: int
    status: int
    request_id: str | None
    elapsed: float
    rate_limit: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """A call is about to be repeated.

    Attributes:
        method, path: the call.
        attempt: the attempt that failed (1 for the first).
        reason: ``rate_limit``, ``server``, ``transport``, ``drain`` or ``conflict``.
        wait: seconds until the next attempt.
        error: the library error that caused the repeat.
    """

    method: str
    path: str
    attempt: int
    reason: str
    wait: float
    error: Exception


@dataclass(frozen=True, slots=True)
class LimiterWaitEvent:
    """A call waited for the client-side rate limiter before an attempt.

    Attributes:
        method, path: the call.
        wait: seconds waited.
    """

    method: str
    path: str
    wait: float


@dataclass(frozen=True, slots=True)
class ReconnectEvent:
    """A stream lost its connection and is about to reconnect.

    Attributes:
        stream: which stream (``"executions"``, or ``"prices"`` for any connection
            of a price stream).
        reason: why the connection ended (a close code, an error class and message).
        failures: consecutive failed connections so far.
        wait: seconds until the next attempt (``0`` for an immediate reconnect).
    """

    stream: str
    reason: str
    failures: int
    wait: float


@dataclass(frozen=True, slots=True)
class GapEvent:
    """A stream read REST to heal a gap (also yielded as a marker with ``gaps=True``).

    Attributes:
        stream: which stream (``"executions"``).
        gap: what was healed.
    """

    stream: str
    gap: StreamGap


@dataclass(frozen=True, slots=True)
class Hooks:
    """Callbacks for the client's events; each is optional.

    Attributes:
        on_request: before every HTTP attempt.
        on_response: after every HTTP answer, error statuses included.
        on_retry: before the wait of every automatic repeat.
        on_limiter_wait: after an attempt waited for the rate limiter.
        on_reconnect: when a stream is about to reconnect.
        on_gap: when a stream healed a gap from REST (after a reconnect, a
            periodic check that found fills, an unreadable frame).
    """

    on_request: Callable[[RequestEvent], object] | None = None
    on_response: Callable[[ResponseEvent], object] | None = None
    on_retry: Callable[[RetryEvent], object] | None = None
    on_limiter_wait: Callable[[LimiterWaitEvent], object] | None = None
    on_reconnect: Callable[[ReconnectEvent], object] | None = None
    on_gap: Callable[[GapEvent], object] | None = None


#: No hooks at all (the default).
NO_HOOKS = Hooks()
