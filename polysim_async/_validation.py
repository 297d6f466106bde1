"""Argument checks run before anything is sent; each failure is an InvalidArgumentError."""

from __future__ import annotations

import decimal
import enum
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import msgspec

from ._errors import InvalidArgumentError

__all__ = [
    "check_enum",
    "check_int",
    "check_mapping",
    "check_str",
    "check_url",
    "page_limit",
    "path_id",
    "to_money",
    "wallet_number",
    "wallet_param",
]

E = TypeVar("E", bound=enum.Enum)


def check_str(name: str, value: object, *, min_len: int = 1, max_len: int = 255) -> str:
    """Return ``value`` if it is a string of ``min_len``..``max_len`` characters."""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{name} must be a string, got {type(value).__name__}")
    if not min_len <= len(value) <= max_len:
        raise InvalidArgumentError(
            f"{name} must be {min_len} to {max_len} characters long, got {len(value)}"
        )
    return value


def check_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` if it is an int (not a bool) within ``low``..``high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"{low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
        raise InvalidArgumentError(f"{name} must be within {bounds}, got {value}")
    return value


def check_enum(name: str, value: object, enum_type: type[E]) -> E:
    """Return the member of ``enum_type`` named by ``value`` (a member, or its value, any case)."""
    if isinstance(value, enum_type):
        return value
    if isinstance(value, str):
        for candidate in (value, value.upper(), value.lower()):
            try:
                return enum_type(candidate)
            except ValueError:
                continue
    allowed = ", ".join(repr(member.value) for member in enum_type)
    raise InvalidArgumentError(f"{name} must be one of {allowed}, got {value!r}")


#: Digits a plain-notation amount may have (``"1e4"`` is written out as ``10000``).
_MAX_MONEY_DIGITS = 64


def to_money(name: str, value: object, *, positive: bool = True) -> Decimal:
    """Return ``value`` as an exact finite Decimal; floats are refused (they are not exact).

    The result is in plain notation (``"1e4"`` → ``Decimal("10000")``), so it goes
    on the wire as ``"10000"`` rather than ``"1E+4"``; trailing zeros are kept.
    """
    if isinstance(value, float):
        raise InvalidArgumentError(
            f"{name} must be a Decimal, int or decimal string, not float ({value!r} is inexact)"
        )
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise InvalidArgumentError(
            f"{name} must be a Decimal, int or decimal string, got {value!r}"
        )
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except decimal.InvalidOperation:
        raise InvalidArgumentError(f"{name} is not a decimal number: {value!r}") from None
    if not amount.is_finite():
        raise InvalidArgumentError(f"{name} must be finite, got {value!r}")
    if positive and amount <= 0:
        raise InvalidArgumentError(f"{name} must be greater than zero, got {value!r}")
    exponent = amount.as_tuple().exponent  # an int: the amount is finite
    # Checked before writing it out, so "1e999999999" cannot take a gigabyte.
    if isinstance(exponent, int) and max(amount.adjusted(), 0) - min(exponent, 0) > (
        _MAX_MONEY_DIGITS
    ):
        raise InvalidArgumentError(f"{name} has too many digits: {value!r}")
    return Decimal(format(amount, "f"))


def check_mapping(name: str, value: object) -> dict[str, Any] | None:
    """Return a plain dict copy of a JSON-object argument (``None`` passes through)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise InvalidArgumentError(f"{name} must be a mapping with string keys, got {value!r}")
    result = dict(value)
    try:
        # Refuse now what the request encoder would refuse later with a bare TypeError.
        msgspec.json.encode(result)
    except (TypeError, ValueError, RecursionError, msgspec.EncodeError) as exc:
        raise InvalidArgumentError(f"{name} must be JSON-serialisable: {exc}") from None
    return result


def check_url(name: str, value: object) -> str:
    """Return ``value`` if it is an absolute http(s) URL."""
    url = check_str(name, value, max_len=2048)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgumentError(f"{name} must be an absolute http(s) URL, got {url!r}")
    return url


def path_id(name: str, value: object) -> str:
    """Return an id (int or non-blank string) quoted for use as one path segment."""
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be an id, got {value!r}")
    if isinstance(value, int):
        return str(value)
    text = check_str(name, value, max_len=255)
    if not text.strip() or text != text.strip():
        raise InvalidArgumentError(f"{name} must not be blank or padded with spaces: {value!r}")
    if text in (".", ".."):
        # Quoting leaves them as they are, and URL normalisation would then drop
        # or climb the segment: close("..") would POST to /v1/partner/close.
        raise InvalidArgumentError(f"{name} must not be {text!r}")
    return quote(text, safe="")


def account_id_list(account_ids: Iterable[str]) -> list[str]:
    """The distinct account ids of ``account_ids`` as a list, each checked as a path id.

    Raises:
        InvalidArgumentError: one string given instead of an iterable of ids, an
            id that is not one, or the same id twice.
    """
    if isinstance(account_ids, (str, bytes)):
        raise InvalidArgumentError("account_ids must be an iterable of ids, not one string")
    ids = list(account_ids)
    for aid in ids:
        path_id("account_id", aid)
    if len(set(ids)) != len(ids):
        raise InvalidArgumentError("account_ids contains duplicates")
    return ids


def wallet_number(wallet_id: int) -> int:
    """Validate a wallet's id: a positive integer, as ``/v1/me/wallets`` numbers them.

    The one check of every ``wallet_id`` the client sends (a path segment or a
    query scope), so a value is refused the same way everywhere.

    Raises:
        InvalidArgumentError: not an integer, or below 1.
    """
    return check_int("wallet_id", wallet_id, low=1)


def wallet_param(wallet_id: int | str | None) -> str | None:
    """Validate a ``wallet_id`` scope: ``"all"``, ``"api"`` (any case) or a wallet's id
    (see :func:`wallet_number`)."""
    if wallet_id is None:
        return None
    if isinstance(wallet_id, str) and wallet_id.strip().lower() in ("all", "api"):
        return wallet_id.strip().lower()
    if isinstance(wallet_id, int) and not isinstance(wallet_id, bool):
        return str(wallet_number(wallet_id))
    raise InvalidArgumentError(f'wallet_id must be "all", "api" or an integer, got {wallet_id!r}')


def page_limit(page_size: int | None, maximum: int) -> str:
    """The ``limit`` to send: ``page_size`` (1..``maximum``), or ``maximum`` for ``None``."""
    if page_size is None:
        return str(maximum)
    return str(check_int("page_size", page_size, low=1, high=maximum))
