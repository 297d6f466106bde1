"""Types shared by every API area: enums, exact money and timezone-aware timestamps."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated, TypeAlias

import msgspec

__all__ = ["AccountStatus", "Money", "Side", "Stage", "UTCDateTime"]

#: Money, prices and quantities: exact decimals, sent and received as JSON strings.
Money: TypeAlias = Decimal
#: An ISO-8601 timestamp that must carry a timezone (``Z`` and ``+00:00`` both accepted).
UTCDateTime: TypeAlias = Annotated[datetime, msgspec.Meta(tz=True)]


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
