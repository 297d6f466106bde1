"""Error envelopes, as the API documents them (API.md §5, §6).

Every error answer has the two-field body ``{"error": CODE, "message": prose}``,
the ``X-Polysim-Code`` header carrying the same code, and (added by the app's
middleware) ``X-Request-Id``. ``Retry-After`` is set where the docs name it:
429, 409 ``IDEMPOTENCY_CONFLICT_PENDING``, and any injected fault that asks for
it. A request carrying ``X-Polysim-Verbose: true`` gets the verbose form with
``details`` and ``request_id`` added.

Two documented carve-outs add fields (API.md §5.2): ``402 UPGRADE_REQUIRED``
carries ``feature_key`` and ``upgrade_url`` (:func:`upgrade_required`) and ``400
INVALID_INTERVAL`` carries ``supported_intervals``; an :class:`ApiError` built
with ``shape`` and ``extra`` sends them. The heartbeat routes answer a bad body
with FastAPI's ``{"detail": [...]}`` envelope (:func:`detail_response`).

Handlers raise :class:`ApiError`; the middleware turns it into the response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ._fields import DETAIL, DETAIL_ITEM, ERROR, ERROR_UPGRADE, ERROR_VERBOSE, Shape
from ._json import encode

__all__ = [
    "ApiError",
    "bad_request",
    "detail_response",
    "error_response",
    "not_found",
    "upgrade_required",
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
        shape: Shape | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = details
        #: A carve-out envelope and its extra fields (see the module docstring).
        self.shape = shape
        self.extra = dict(extra or {})


def validation(message: str, details: Any = None) -> ApiError:
    """A ``422 VALIDATION_FAILED``: the request does not match the schema or a range."""
    return ApiError(422, "VALIDATION_FAILED", message, details=details)


def bad_request(code: str, message: str) -> ApiError:
    """A ``400`` with a specific documented code."""
    return ApiError(400, code, message)


def not_found(code: str, message: str) -> ApiError:
    """A ``404`` with the given code."""
    return ApiError(404, code, message)


def upgrade_required(feature_key: str, message: str) -> ApiError:
    """A ``402 UPGRADE_REQUIRED`` for a paid feature, with its ``feature_key``."""
    return ApiError(
        402,
        "UPGRADE_REQUIRED",
        message,
        shape=ERROR_UPGRADE,
        extra={"feature_key": feature_key, "upgrade_url": "/pricing"},
    )


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    verbose: bool = False,
    request_id: str | None = None,
    details: Any = None,
    shape: Shape | None = None,
    extra: Mapping[str, Any] | None = None,
) -> web.Response:
    """Build the JSON error response: the envelope (``shape``'s, else the two-field
    one) plus ``X-Polysim-Code``."""
    more = dict(extra or {})
    if verbose:
        more.update(details=details, request_id=request_id)
    if shape is not None:
        body = shape.make(error=code, message=message, **more)
    elif verbose:
        body = ERROR_VERBOSE.make(error=code, message=message, **more)
    else:
        body = ERROR.make(error=code, message=message)
    out = {"X-Polysim-Code": code, "Content-Type": "application/json"}
    if headers:
        out.update(headers)
    return web.Response(status=status, body=encode(body), headers=out)


def detail_response(errors: list[dict[str, Any]]) -> web.Response:
    """A ``422`` with FastAPI's ``{"detail": [...]}`` body (items from :data:`DETAIL_ITEM`).

    ``X-Polysim-Code: VALIDATION_FAILED`` is set as on every other error.
    """
    body = DETAIL.make(detail=[DETAIL_ITEM.make(**item) for item in errors])
    headers = {"X-Polysim-Code": "VALIDATION_FAILED", "Content-Type": "application/json"}
    return web.Response(status=422, body=encode(body), headers=headers)
