"""Types shared by every API area: enums, exact money and timezone-aware timestamps."""

from __future__ import annotations

import decimal
import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated, TypeAlias

import msgspec

from .._errors import DecodeError

__all__ = ["AccountStatus", "Money", "Side", "Stage", "Traced", "UTCDateTime", "to_decimal"]

#: Money, prices and quantities: exact decimals, sent and received as JSON strings.
Money: TypeAlias = Decimal
#: An ISO-8601 timestamp that must carry a timezone (``Z`` and ``+00:00`` both accepted).
UTCDateTime: TypeAlias = Annotated[datetime, msgspec.Meta(tz=True)]


def to_decimal(raw: str, field: str) -> Decimal:
    """Convert a wire decimal string to an exact Decimal.

    Raises:
        DecodeError: ``raw`` is not a finite decimal number.
    """
    try:
        value = Decimal(raw)
    except decimal.InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise DecodeError(f"{field} is not a decimal number: {raw!r}")
    return value


class Traced(msgspec.Struct, frozen=True, dict=True):
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


class Side(str, enum.Enum):
    """Order or fill side."""

    BUY = "BUY"
    SELL = "SELL"


class Stage(str, enum.Enum):
    """A partner account's stage: a free label with no promotion logic behind it."""

    DEMO = "demo"
    CHALLENGE = "challenge"
    FUNDED = "funded"


class AccountStatus(str, enum.Enum):
    """A partner account's status (``archived`` is seen on the trader side)."""

    ACTIVE = "active"
    CLOSED = "closed"
    ARCHIVED = "archived"
