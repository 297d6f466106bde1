"""Types shared by every API area: enums, exact money and timezone-aware timestamps."""

from __future__ import annotations

import decimal
import enum
import types
import typing
from datetime import datetime
from decimal import Decimal
from typing import Annotated, TypeAlias

import msgspec

from .._errors import DecodeError

__all__ = [
    "AccountStatus",
    "Money",
    "MAX_MONEY_EXPONENT",
    "MoneyStruct",
    "Side",
    "Stage",
    "Traced",
    "UTCDateTime",
    "WireEnum",
    "to_decimal",
]

#: Money, prices and quantities: exact decimals, sent and received as JSON strings.
#: Finite, with at most :data:`MAX_MONEY_EXPONENT` digits either side of the
#: point: every model holding one derives from :class:`MoneyStruct`, which checks it.
Money: TypeAlias = Decimal
#: The largest power of ten (either sign) a money value may reach: ``1e30`` and
#: ``1e-30`` pass, ``1e31`` and ``1e-31`` are refused. Far beyond any price,
#: balance or quantity, and small enough that sums and products of such values
#: never overflow (or raise) in decimal arithmetic such as the rules engine's.
MAX_MONEY_EXPONENT = 30


def _money_problem(value: Decimal) -> str | None:
    if not value.is_finite():
        return "is not a finite decimal number"
    if not -MAX_MONEY_EXPONENT <= value.adjusted() <= MAX_MONEY_EXPONENT:
        return f"is out of range (beyond 1e±{MAX_MONEY_EXPONENT})"
    return None


#: An ISO-8601 timestamp that must carry a timezone (``Z`` and ``+00:00`` both accepted).
UTCDateTime: TypeAlias = Annotated[datetime, msgspec.Meta(tz=True)]


def to_decimal(raw: str, field: str) -> Decimal:
    """Convert a wire decimal string to an exact Decimal.

    Raises:
        DecodeError: ``raw`` is not a finite decimal number within
            ``1e±MAX_MONEY_EXPONENT``.
    """
    try:
        value = Decimal(raw)
    except decimal.InvalidOperation:
        value = Decimal("NaN")
    problem = _money_problem(value)
    if problem is not None:
        raise DecodeError(f"{field} {problem}: {raw[:40]!r}")
    return value


def _is_money(tp: object) -> bool:
    if tp is Decimal:
        return True
    origin = typing.get_origin(tp)
    return origin in (typing.Union, types.UnionType) and Decimal in typing.get_args(tp)


_money_fields: dict[type, tuple[str, ...]] = {}


class MoneyStruct(msgspec.Struct, frozen=True):
    """Base of every model with a :data:`Money` field: refuses a non-finite or absurd amount.

    ``NaN``, ``sNaN``, ``Infinity`` or ``1e999999`` in a money field would reach
    decimal arithmetic (the rules engine, a user's sums) and raise there, or
    judge an account on infinite equity. The check runs in ``__post_init__``,
    so decoding refuses them (``msgspec.ValidationError``, which the request
    path raises as :class:`~polysim_async.DecodeError`) and building a model
    by hand raises ``ValueError`` (types other than ``Decimal`` are not checked
    when built by hand, as msgspec checks none). A subclass defining ``__post_init__`` calls
    ``super().__post_init__()``.
    """

    def __post_init__(self) -> None:
        cls = type(self)
        names = _money_fields.get(cls)
        if names is None:
            fields = msgspec.structs.fields(cls)
            names = _money_fields[cls] = tuple(f.name for f in fields if _is_money(f.type))
        for name in names:
            value = getattr(self, name)
            # Decoding always gives a Decimal here. Built by hand, msgspec checks no
            # types: another type is left to the code using it (the rules engine
            # refuses a float), as for any msgspec model.
            if isinstance(value, Decimal):
                problem = _money_problem(value)
                if problem is not None:
                    raise ValueError(f"{name} {problem}")


class Traced(MoneyStruct, frozen=True, dict=True):
    """Base of the results a user would quote to support: they carry the request id.

    :attr:`request_id` is the ``X-Request-Id`` of the answer the value was
    decoded from (``None`` when built otherwise). It is not a wire field: it is
    not encoded, not compared, and not kept by ``msgspec.structs.replace``.
    """

    @property
    def request_id(self) -> str | None:
        """The server's ``X-Request-Id`` for the request that returned this, if sent."""
        rid: str | None = self.__dict__.get("request_id")
        return rid


class WireEnum(str, enum.Enum):
    """A string enum whose ``str()`` and ``format()`` are its wire value on every Python.

    A plain ``(str, Enum)`` formats as ``"closed"`` on 3.10 but
    ``"AccountStatus.CLOSED"`` from 3.11 on; these print the value everywhere.
    """

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, format_spec: str) -> str:
        return str.__format__(self, format_spec)


class Side(WireEnum):
    """Order or fill side."""

    BUY = "BUY"
    SELL = "SELL"


class Stage(WireEnum):
    """A partner account's stage: a free label with no promotion logic behind it."""

    DEMO = "demo"
    CHALLENGE = "challenge"
    FUNDED = "funded"


class AccountStatus(WireEnum):
    """A partner account's status (``archived`` is seen on the trader side)."""

    ACTIVE = "active"
    CLOSED = "closed"
    ARCHIVED = "archived"
