"""Request parsing shared by every route: JSON bodies, fields and query values.

Every failure here is ``422 VALIDATION_FAILED`` with a message naming the field
(a body that is not JSON, not an object, a wrong type, an out-of-range number or
an overlong string). Routes raise the more specific 400 codes themselves.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from ._clock import from_datetime
from ._errors import validation
from ._json import decode_body

__all__ = [
    "decimal_field",
    "json_body",
    "json_object",
    "optional_object",
    "query_bool",
    "query_choice",
    "query_int",
    "string_field",
    "time_range",
]


async def json_body(request: web.Request) -> Any:
    """Read and decode a JSON body (``None`` when it is empty).

    Raises:
        ApiError: 422 when the body is not JSON or nests too deeply.
    """
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return decode_body(raw)
    except ValueError as exc:
        raise validation(str(exc)) from None


async def json_object(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """Read and decode a JSON object body.

    Raises:
        ApiError: 422 when the body is missing (unless ``allow_empty``), not JSON,
            not an object, or nested too deeply.
    """
    data = await json_body(request)
    if data is None:
        if allow_empty:
            return {}
        raise validation("request body is required (a JSON object)")
    if not isinstance(data, dict):
        raise validation("request body must be a JSON object")
    return data


def string_field(
    data: dict[str, Any], name: str, *, required: bool, min_len: int = 1, max_len: int = 255
) -> str | None:
    """A string field with length bounds (``None`` when absent/null and optional).

    Raises:
        ApiError: 422 when missing, not a string, or out of bounds.
    """
    value = data.get(name)
    if value is None:
        if required:
            raise validation(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise validation(f"{name} must be a string")
    if not min_len <= len(value) <= max_len:
        raise validation(f"{name} must be {min_len} to {max_len} characters long")
    return value


def decimal_field(
    data: dict[str, Any],
    name: str,
    *,
    required: bool,
    low: Decimal | None = None,
    high: Decimal | None = None,
    places: int | None = None,
    inclusive_low: bool = True,
) -> Decimal | None:
    """A decimal given as a string (or, tolerated, a JSON number).

    Raises:
        ApiError: 422 when missing, not a finite decimal, out of range, or too precise.
    """
    value = data.get(name)
    if value is None:
        if required:
            raise validation(f"{name} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise validation(f'{name} must be a decimal string such as "10.00"')
    try:
        # An int goes in directly: str() of a huge int raises ValueError.
        number = Decimal(value) if isinstance(value, int) else Decimal(str(value).strip())
    except InvalidOperation:
        raise validation(f'{name} must be a decimal string such as "10.00"') from None
    if not number.is_finite():
        raise validation(f"{name} must be a finite number")
    if low is not None and (number < low or (not inclusive_low and number == low)):
        raise validation(f"{name} must be {'at least' if inclusive_low else 'above'} {low}")
    if high is not None and number > high:
        raise validation(f"{name} must be at most {high}")
    exponent = number.as_tuple().exponent
    if places is not None and isinstance(exponent, int) and exponent < -places:
        raise validation(f"{name} must have at most {places} decimal places")
    return number


def optional_object(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A free-form JSON object field (``None`` when absent or null).

    Raises:
        ApiError: 422 when present but not an object.
    """
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise validation(f"{name} must be a JSON object")
    return value


def query_int(
    request: web.Request, name: str, *, default: int, low: int, high: int | None = None
) -> int:
    """An integer query parameter within bounds.

    Raises:
        ApiError: 422 when not an integer or out of range.
    """
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise validation(f"{name} must be an integer") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise validation(f"{name} must be {bound}")
    return value


def query_choice(
    request: web.Request, name: str, choices: tuple[str, ...], *, lower: bool = False
) -> str | None:
    """A query value that must be one of ``choices`` (any case; ``None`` when absent).

    The value is trimmed and upper-cased (lower-cased with ``lower``) before the check.

    Raises:
        ApiError: 422 naming the choices, e.g. "side must be BUY or SELL".
    """
    raw = request.query.get(name)
    if raw is None:
        return None
    value = raw.strip().lower() if lower else raw.strip().upper()
    if value not in choices:
        raise validation(f"{name} must be {' or '.join(choices)}")
    return value


def query_bool(request: web.Request, name: str, *, default: bool = False) -> bool:
    """A boolean query parameter (``true/false/1/0/yes/no``, any case).

    Raises:
        ApiError: 422 for any other value.
    """
    raw = request.query.get(name)
    if raw is None:
        return default
    low = raw.strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise validation(f"{name} must be true or false")


def _instant(name: str, raw: str, *, end: bool) -> int:
    """One bound as epoch microseconds; an ``end`` bound is exclusive."""
    text = raw.strip().replace(" ", "+")  # a "+00:00" sent unencoded arrives as a space
    try:
        if len(text) == 10:
            day = datetime.combine(date.fromisoformat(text), datetime.min.time(), timezone.utc)
            return from_datetime(day + timedelta(days=1) if end else day)
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return from_datetime(value) + (1 if end else 0)
    except (ValueError, OverflowError):
        raise validation(f"{name} must be an ISO 8601 date or date-time") from None


def time_range(request: web.Request) -> tuple[int | None, int | None]:
    """The ``from``/``to`` query bounds: ``(start inclusive, end exclusive)`` in epoch µs.

    A date covers its whole UTC day (``to=2026-06-01`` ends at the next
    midnight); a date-time without a zone is UTC.

    Raises:
        ApiError: 422 for an unreadable bound.
    """
    start = request.query.get("from")
    end = request.query.get("to")
    return (
        None if not start else _instant("from", start, end=False),
        None if not end else _instant("to", end, end=True),
    )
