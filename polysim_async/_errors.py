"""The exception tree of polysim-async.

Every error the library raises derives from :class:`PolySimError`; no aiohttp,
msgspec or tenacity exception reaches a caller, and ``asyncio.CancelledError``
is never caught or wrapped::

    PolySimError
    ├── UsageError
    │   ├── InvalidArgumentError      (also ValueError)  bad argument, caught before sending
    │   │   └── SubscriptionLimitError                   the markets exceed the tier's sockets
    │   ├── ClientClosedError         (also RuntimeError) the client was closed
    │   ├── MissingDependencyError    (also ImportError)  an optional extra is not installed
    │   └── PaginationError           (also RuntimeError) the server sent a cursor twice
    ├── TransportError                                   no HTTP answer was received
    │   ├── ConnectError                                 could not connect; request not sent
    │   ├── NetworkError                                 connection lost; request may have arrived
    │   ├── StreamClosedError                            a WebSocket stream ended abnormally
    │   └── PolySimTimeoutError       (also TimeoutError)
    │       ├── ConnectTimeoutError                      connect took too long; request not sent
    │       ├── ReadTimeoutError                         the answer took too long
    │       └── DeadlineExceededError                    the call's overall deadline ran out
    ├── DecodeError                   (also ValueError)  a 2xx body did not match the schema
    │   └── ResponseTooLargeError                        a body passed max_response_size
    ├── FanOutError                                      feeds of trades_many failed (per account)
    ├── SubscriptionRefusedError                         the price feed refused a subscription
    ├── CoordinationError                                shared budget or checkpoints failed
    │   ├── StoreUnavailableError                        its store (Redis, SQLite) could not be used
    │   └── LeaseLostError                               this worker no longer holds the lease
    └── APIStatusError                                   the server answered with an error status
        ├── ValidationError                              400 and 422
        ├── AuthenticationError                          401
        ├── PermissionDeniedError                        403
        │   └── EdgeBlockedError                         403/1xxx text page from the CDN edge
        ├── NotFoundError                                404
        ├── ConflictError                                409
        │   └── OrdersNotCancelledError                  409 ORDERS_NOT_CANCELLED (close/reset)
        ├── RateLimitError                               429
        └── ServerError                                  5xx
            └── VenueUnavailableError                    503 VENUE_UNAVAILABLE

Statuses with no class of their own (402, 405, 425, ...) raise :class:`APIStatusError`.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "ClientClosedError",
    "ConflictError",
    "ConnectError",
    "ConnectTimeoutError",
    "CoordinationError",
    "DeadlineExceededError",
    "DecodeError",
    "EdgeBlockedError",
    "FanOutError",
    "InvalidArgumentError",
    "LeaseLostError",
    "MissingDependencyError",
    "NetworkError",
    "NotFoundError",
    "OrdersNotCancelledError",
    "PaginationError",
    "PermissionDeniedError",
    "PolySimError",
    "PolySimTimeoutError",
    "RateLimitError",
    "ReadTimeoutError",
    "ResponseTooLargeError",
    "ServerError",
    "StoreUnavailableError",
    "StreamClosedError",
    "SubscriptionLimitError",
    "SubscriptionRefusedError",
    "TransportError",
    "UsageError",
    "ValidationError",
    "VenueUnavailableError",
    "explain_key_kind",
    "from_response",
    "is_trader_key",
    "parse_retry_after",
    "readable",
]


class PolySimError(Exception):
    """Base class of every error raised by polysim-async."""


class UsageError(PolySimError):
    """The library was used in a way it does not allow; nothing was sent."""


class InvalidArgumentError(UsageError, ValueError):
    """An argument was refused before any request was sent."""


class SubscriptionLimitError(InvalidArgumentError):
    """The price markets cannot be spread over the WebSocket connections the tier allows.

    One connection carries at most 50 markets, and the key's tier caps the
    user's open connections (both channels, every process); nothing was subscribed.

    Attributes:
        needed: connections the markets would need.
        available: connections this client could still open (the tier's cap
            minus those its other streams hold).
    """

    def __init__(self, message: str, *, needed: int, available: int) -> None:
        super().__init__(message)
        self.needed = needed
        self.available = available


class ClientClosedError(UsageError, RuntimeError):
    """The client was used after ``aclose()`` or outside its ``async with`` block."""


class MissingDependencyError(UsageError, ImportError):
    """A feature needs an optional extra that is not installed; the message names it."""


class PaginationError(UsageError, RuntimeError):
    """The server returned a cursor it had already returned, so the walk would never end."""


class TransportError(PolySimError):
    """No HTTP answer was received.

    Attributes:
        request_sent: ``False`` only when the request provably never left this
            process, so repeating it cannot duplicate a side effect.
    """

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.request_sent = request_sent


class ConnectError(TransportError):
    """The connection could not be opened; the request was not sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, request_sent=False)


class NetworkError(TransportError):
    """The connection broke after the request may have reached the server."""


class StreamClosedError(TransportError):
    """A WebSocket stream was closed abnormally and cannot continue."""


class PolySimTimeoutError(TransportError, TimeoutError):
    """An attempt or a whole call took longer than allowed."""


class ConnectTimeoutError(PolySimTimeoutError):
    """Opening the connection took longer than the connect timeout; the request was not sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, request_sent=False)


class ReadTimeoutError(PolySimTimeoutError):
    """The server did not answer within the read or total timeout."""


class DeadlineExceededError(PolySimTimeoutError):
    """The call's overall deadline ran out across attempts, backoffs and limiter waits."""


class DecodeError(PolySimError, ValueError):
    """A successful response body did not match the expected schema.

    Attributes:
        status: the HTTP status of the response.
        request_id: the server's ``X-Request-Id``, if any.
        body: the raw body, truncated to 2 KiB.
    """

    def __init__(
        self, message: str, *, status: int = 0, request_id: str | None = None, body: bytes = b""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.body = body[:2048]


class ResponseTooLargeError(DecodeError):
    """A body (or WebSocket frame) was larger than ``max_response_size``; it was not read."""


class FanOutError(PolySimError):
    """One or more feeds of a fan-out failed; ``failures`` maps each key to its error.

    Attributes:
        failures: key (account id) → the library error that ended its walk,
            after the request path's own retries. The first one is also ``__cause__``.
        resume_cursors: key → the cursor after the last page whose items were all
            delivered (``None``: start over), to resume that key without gaps or
            repeats. It has an entry for every key that did not finish: the failed
            ones, and (with ``on_error="raise"``) those stopped mid-walk or never started.
        completed: the keys whose every item was delivered; they need no resuming.
    """

    def __init__(
        self,
        failures: Mapping[str, PolySimError],
        resume_cursors: Mapping[str, str | None],
        *,
        completed: Iterable[str] = (),
    ) -> None:
        self.failures = dict(failures)
        self.resume_cursors = dict(resume_cursors)
        self.completed = set(completed)
        shown = "; ".join(f"{k}: {e}" for k, e in list(self.failures.items())[:3])
        more = len(self.failures) - 3
        super().__init__(
            f"{len(self.failures)} feed(s) failed: {shown}"
            + (f"; and {more} more" if more > 0 else "")
        )


class SubscriptionRefusedError(PolySimError):
    """The price feed answered a subscribe or unsubscribe frame with an ``error`` frame.

    Attributes:
        markets: the condition ids the refused frame carried.
        server_message: the error frame's ``message`` (truncated, printable).
    """

    def __init__(self, message: str, *, markets: Iterable[str], server_message: str) -> None:
        super().__init__(message)
        self.markets = list(markets)
        self.server_message = server_message


class CoordinationError(PolySimError):
    """Work shared between processes (budget, checkpoints, leases) could not be coordinated."""


class StoreUnavailableError(CoordinationError):
    """The shared store (Redis, or the SQLite file) could not be used; the message says why."""


class LeaseLostError(CoordinationError):
    """This worker no longer holds the lease (it expired or was taken over); nothing was written."""


class APIStatusError(PolySimError):
    """The server answered with a non-success status.

    Attributes:
        status: the HTTP status code.
        code: machine code: the ``X-Polysim-Code`` header, else the body's
            ``code``, else its ``error`` (``None`` when neither is present).
        message: human-readable text from the body, else the reason phrase.
        request_id: the ``X-Request-Id`` header, for support tickets.
        retry_after: seconds the server asked to wait, from ``Retry-After``
            (or the body's ``retry_after``), else ``None``.
        body: the raw body, truncated to 2 KiB.
        headers: the response headers.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body[:2048]
        # Kept as given (the transport passes a read-only, case-insensitive mapping).
        self.headers: Mapping[str, str] = headers if headers is not None else {}

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        rid = f" (request_id={self.request_id})" if self.request_id else ""
        return f"{self.status}{code}: {self.message}{rid}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class ValidationError(APIStatusError):
    """400 or 422: the server refused the request's content."""


class AuthenticationError(APIStatusError):
    """401: the key is missing, unknown, revoked or for another realm."""


class PermissionDeniedError(APIStatusError):
    """403: the key lacks the permission (scope) the route needs."""


class EdgeBlockedError(PermissionDeniedError):
    """The CDN edge blocked the request with a non-JSON ``error code: 1xxx`` page."""


class NotFoundError(APIStatusError):
    """404: unknown id, another tenant's id, or a route the tenant cannot see."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the resource's current state."""


class OrdersNotCancelledError(ConflictError):
    """409 ORDERS_NOT_CANCELLED: close or reset could not cancel every open order yet."""


class RateLimitError(APIStatusError):
    """429: a rate limit was hit and waiting it out was not allowed or not enough."""


class ServerError(APIStatusError):
    """5xx: the server failed."""


class VenueUnavailableError(ServerError):
    """503 VENUE_UNAVAILABLE: the upstream venue is down; not retried automatically."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitError,
}
_CODE_CLASSES: dict[tuple[int, str], type[APIStatusError]] = {
    (409, "ORDERS_NOT_CANCELLED"): OrdersNotCancelledError,
    (503, "VENUE_UNAVAILABLE"): VenueUnavailableError,
}
_EDGE_BLOCK = re.compile(rb"error code:\s*1\d{3}", re.IGNORECASE)
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
    425: "Too Early",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Read a ``Retry-After`` header: integer (or decimal) seconds, or an HTTP date.

    Returns:
        Seconds to wait (never negative), or ``None`` when absent or unreadable.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)


#: Characters of server text kept in an error message.
_MAX_TEXT = 500


def readable(text: str, limit: int = _MAX_TEXT) -> str:
    """``text`` made safe to print, log and encode: lone surrogates and control
    characters escaped, cut to ``limit`` characters."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return readable(value.strip())
    return None


def _decode_body(body: bytes) -> Any:
    """The body as JSON, or ``None`` when it is not JSON (or nested too deep to read)."""
    if not body:
        return None
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        pass
    # msgspec refuses numbers out of float range (``"retry_after": 1e400``) and
    # lone surrogates; the stdlib reads them, so the code and message still come through.
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _render(value: Any) -> str:
    """A JSON value (a ``detail`` list, say) as readable text."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, RecursionError):
        return "(unreadable detail)"
    return readable(text)


def _seconds(value: Any) -> float | None:
    """A JSON number of seconds as a finite, non-negative float, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _body_fields(body: bytes) -> tuple[str | None, str | None, float | None]:
    """Pull (code, message, retry_after) out of any documented error envelope (API.md §5)."""
    data = _decode_body(body)
    if not isinstance(data, dict):
        return None, None, None
    error = data.get("error")
    code = _text(data.get("code"))
    nested_message: str | None = None
    if isinstance(error, dict):
        code = code or _text(error.get("code")) or _text(error.get("error"))
        nested_message = _text(error.get("message"))
        error = None
    error_text = _text(error)
    message = _text(data.get("message")) or nested_message
    # Two-field envelope: "error" is a CODE. PM single-field: "error" is a sentence.
    if error_text is not None:
        if code is None and re.fullmatch(r"[A-Z][A-Z0-9_]*", error_text):
            code = error_text
        elif message is None:
            message = error_text
    if message is None:
        detail = data.get("detail")
        if isinstance(detail, str):
            message = _text(detail)
        elif detail is not None:
            message = _render(detail)
    return code, message, _seconds(data.get("retry_after"))


def from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    reason: str | None = None,
) -> APIStatusError:
    """Build the most specific :class:`APIStatusError` for an error response.

    Code: trimmed ``X-Polysim-Code`` header, else body ``code``, else body
    ``error`` (when it is a code). Message: body ``message``, ``error``,
    ``detail``, else the reason phrase. Non-JSON bodies are tolerated.
    """
    header_code = _text(headers.get("X-Polysim-Code"))
    body_code, message, body_retry = _body_fields(body)
    code = header_code or body_code
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if retry_after is None:
        retry_after = body_retry
    request_id = _text(headers.get("X-Request-Id"))
    cls: type[APIStatusError]
    # A CDN page on a 429 (``error code: 1015``) is a rate limit, retried as one.
    if code is None and status != 429 and _EDGE_BLOCK.search(body[:512]):
        cls = EdgeBlockedError
        code = "EDGE_BLOCKED"
        message = "request blocked by the CDN edge: " + readable(
            body[:200].decode("utf-8", "replace").strip()
        )
    else:
        cls = (
            _CODE_CLASSES.get((status, code or ""))
            or _STATUS_CLASSES.get(status)
            or (ServerError if status >= 500 else APIStatusError)
        )
    if message is None:
        message = readable(reason or "") or _REASONS.get(status) or f"HTTP {status}"
    return cls(
        message,
        status=status,
        code=code,
        request_id=request_id,
        retry_after=retry_after,
        body=body,
        headers=headers,
    )


_TRADER_PREFIXES = ("ps_live_", "ps_test_")


def explain_key_kind(error: APIStatusError, *, path: str, trader_key: bool) -> APIStatusError:
    """Say which kind of key a route needs, when a 401/403 shows the client used the other.

    Trader keys are ``ps_live_``/``ps_test_`` + hex (API.md §2.2) and work only on
    ``/v1/*``; the tenant-key format is not documented, so a key without those
    prefixes is only said *not to look like* a trader key.

    Returns:
        ``error`` itself, or the same class of error with the explanation appended.
    """
    if error.status not in (401, 403):
        return error
    partner_route = path.startswith("/v1/partner/")
    if partner_route and trader_key:
        hint = (
            "this is a partner route (/v1/partner/*), which needs the tenant key; "
            "the client was given a trader key (ps_live_/ps_test_), which only works on /v1/*"
        )
    elif not partner_route and not trader_key:
        hint = (
            "this is a trader route (/v1/*), which needs a personal trader key "
            "(ps_live_... or ps_test_...); the client's key does not look like one "
            "(a tenant key only works on /v1/partner/*)"
        )
    else:
        return error
    return type(error)(
        f"{error.message} ({hint})",
        status=error.status,
        code=error.code,
        request_id=error.request_id,
        retry_after=error.retry_after,
        body=error.body,
        headers=error.headers,
    )


def is_trader_key(key: str) -> bool:
    """Whether ``key`` has the documented trader-key prefix (``ps_live_``/``ps_test_``)."""
    return key.startswith(_TRADER_PREFIXES)
