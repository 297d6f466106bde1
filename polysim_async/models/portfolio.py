"""Wire shapes of the account reads added for bots: portfolio, settlements, API-wallet reset.

API.md §4.3; sources, field by field, in ``docs/trader-api-notes.md``.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

import msgspec

from .account import Balance, Position
from .common import Money, MoneyStruct, UTCDateTime

__all__ = ["ApiBalanceReset", "Portfolio", "Settlement", "SettlementPage"]


class Portfolio(msgspec.Struct, kw_only=True, frozen=True):
    """``GET /v1/account/portfolio``: balance, positions and trade statistics.

    With ``wallet_id="all"`` the positions and statistics span every wallet while
    ``balance`` stays on the API wallet. ``win_rate`` is the server's string
    (``"60.0%"``), ``None`` when no closed position can be classified.
    """

    balance: Balance
    positions: list[Position] = msgspec.field(default_factory=list)
    total_trades: int = 0
    win_rate: str | None = None

    @property
    def win_rate_percent(self) -> Decimal | None:
        """``win_rate`` as an exact number of percent (``Decimal("60.0")``), or ``None``."""
        if self.win_rate is None:
            return None
        try:
            value = Decimal(self.win_rate.strip().removesuffix("%").strip())
        except decimal.InvalidOperation:
            return None
        return value if value.is_finite() else None


class Settlement(MoneyStruct, kw_only=True, frozen=True):
    """One position closed by a market's resolution (``GET /v1/account/settlements``).

    ``result`` is one of ``won``, ``lost``, ``split``, ``expired``, ``partial``,
    ``unknown`` (kept a string: the set is documented only in the SDK).
    ``position_id`` is the paging key (newest first); ``market_id``, ``outcome``
    and ``settled_at`` are read when the server sends them.
    """

    quantity: Money
    avg_entry_price: Money
    cost_basis: Money
    payout: Money
    payout_per_share: Money
    realized_pnl: Money
    result: str
    position_id: int | None = None
    market_id: str | None = None
    outcome: str | None = None
    settled_at: UTCDateTime | None = None


class SettlementPage(msgspec.Struct, kw_only=True, frozen=True):
    """One page of settlements; an empty ``next_cursor`` marks the last page."""

    data: list[Settlement]
    next_cursor: str | None = None


class ApiBalanceReset(MoneyStruct, kw_only=True, frozen=True):
    """``POST /v1/account/reset-api-balance``: the API wallet is back at its tier baseline.

    Open API positions were force-closed (``CLOSED_BY_RESET``); ``cooldown_days``
    is the wait before the next reset (0 today).
    """

    message: str
    new_api_balance: Money
    positions_closed: int = 0
    cooldown_days: int = 0
