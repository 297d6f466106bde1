"""Error envelopes, as the API documents them (API.md §5, §6).

Every error answer has the two-field body ``{"error": CODE, "message": prose}``,
the ``X-Polysim-Code`` header carrying the same code, and (added by the app's
middleware) ``X-Request-Id``. ``Retry-After`` is set where the docs name it:
429, 409 ``IDEMPOTENCY_CONFLICT_PENDING``, and any injected fault that asks for
it. A request carrying ``X-Polysim-Verbose: true`` gets the verbose form with
``details`` and ``request_id`` added.

Handlers raise :class:`ApiError`; the middleware turns it into the response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ._fields import ERROR, ERROR_VERBOSE
from ._json import encode

__all__ = [
    "ApiError",
    "bad_request",
    "error_response",
    "not_found",
    "validation",
]


class ApiError(Exception):
    """An API error answer: status, machine code, prose and extra headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = details


def validation(message: str, details: Any = None) -> ApiError:
    """A ``422 VALIDATION_FAILED``: the request does not match the schema or a range."""
    return ApiError(422, "VALIDATION_FAILED", message, details=details)


def bad_request(code: str, message: str) -> ApiError:
    """A ``400`` with a specific documented code."""
    return ApiError(400, code, message)


def not_found(code: str, message: str) -> ApiError:
    """A ``404`` with the given code."""
    return ApiError(404, code, message)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    verbose: bool = False,
    request_id: str | None = None,
    details: Any = None,
) -> web.Response:
    """Build the JSON error response: two-field body plus ``X-Polysim-Code``."""
    if verbose:
        body = ERROR_VERBOSE.make(
            error=code, message=message, details=details, request_id=request_id
        )
    else:
        body = ERROR.make(error=code, message=message)
    out = {"X-Polysim-Code": code, "Content-Type": "application/json"}
    if headers:
        out.update(headers)
    return web.Response(status=status, body=encode(body), headers=out)
