"""Wire shapes of the trader account reads (``/v1/account/*``), API.md §4.3 and the equity seed."""

from __future__ import annotations

from .common import Money, MoneyStruct, Side, Traced, UTCDateTime

__all__ = ["Balance", "EquityPoint", "HistoryPage", "HistoryRow", "Position"]


class EquityPoint(MoneyStruct, kw_only=True, frozen=True):
    """One hourly equity snapshot; ``pnl`` is relative to the wallet's starting balance."""

    timestamp: UTCDateTime
    cash_balance: Money
    position_value: Money
    total_value: Money
    pnl: Money


class Balance(Traced, kw_only=True, frozen=True):
    """The API wallet's balance (``GET /v1/account/balance``).

    ``unrealized_pnl`` is, as documented, the *total* P&L: ``total_value - starting_balance``.
    """

    balance: Money
    currency: str = "USD"
    starting_balance: Money | None = None
    unrealized_pnl: Money | None = None
    total_value: Money | None = None


class Position(MoneyStruct, kw_only=True, frozen=True):
    """One position row (``GET /v1/account/positions``); mark fields are null without a price."""

    id: int
    market_id: str
    outcome: str
    quantity: Money
    avg_entry_price: Money
    status: str
    current_price: Money | None = None
    market_value: Money | None = None
    unrealized_pnl: Money | None = None
    market_question: str | None = None


class HistoryRow(MoneyStruct, kw_only=True, frozen=True):
    """One filled order from ``GET /v1/account/history`` (newest ``filled_at`` first).

    ``status`` is always ``FILLED``; ``price_source`` is a diagnostic label, not an enum.
    """

    order_id: int
    market_id: str
    side: Side
    outcome: str
    price: Money
    quantity: Money
    notional: Money
    fee: Money
    status: str = "FILLED"
    price_source: str | None = None
    price_age_ms: int | None = None
    filled_at: UTCDateTime | None = None
    created_at: UTCDateTime | None = None


class HistoryPage(Traced, kw_only=True, frozen=True):
    """One page of ``GET /v1/account/history?envelope=true``, newest ``filled_at`` first.

    ``next_cursor`` is the next page's offset as a string, or ``""`` on the last
    page; pass it back as ``cursor=`` to resume.
    """

    data: list[HistoryRow]
    next_cursor: str = ""
