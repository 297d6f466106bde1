"""Trader account reads (``/v1/account/*``, personal key): ``client.account``."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from ._compat import deprecated_positional
from ._errors import InvalidArgumentError
from ._pagination import flatten, walk_cursor
from ._requester import Requester
from ._validation import check_enum, check_int, check_str, page_limit, wallet_param
from .models.account import Balance, EquityPoint, HistoryPage, HistoryRow, Position
from .models.common import Side

__all__ = ["AccountAPI"]

#: Largest page ``GET /v1/account/history`` serves (API.md §4.3).
_HISTORY_PAGE_MAX = 200


def _history_rows(page: HistoryPage) -> list[HistoryRow]:
    return page.data


def _history_cursor(page: HistoryPage) -> str | None:
    return page.next_cursor or None


class AccountAPI:
    """``client.account``: equity curve, balance, positions and fill history of the key's owner."""

    def __init__(self, requester: Requester) -> None:
        self._r = requester

    @deprecated_positional(1, "days", "wallet_id")
    async def equity(
        self, *, days: int = 7, wallet_id: int | str | None = None
    ) -> list[EquityPoint]:
        """Return hourly equity snapshots, oldest first.

        Args:
            days: history length, 1 to 90.
            wallet_id: ``"all"``, ``"api"`` or a wallet id; omitted means the API wallet.

        Raises:
            InvalidArgumentError: (a ``ValueError``) ``days`` outside 1..90 or a
                bad ``wallet_id``, before any request.
            NotFoundError: WALLET_NOT_FOUND.
        """
        params = {"days": str(check_int("days", days, low=1, high=90))}
        scope = wallet_param(wallet_id)
        if scope is not None:
            params["wallet_id"] = scope
        return await self._r.request(list[EquityPoint], "GET", "/v1/account/equity", params=params)

    async def balance(self) -> Balance:
        """Return the API wallet's balance (cash, starting balance, total value)."""
        return await self._r.request(Balance, "GET", "/v1/account/balance")

    async def positions(
        self, *, status: str | None = None, wallet_id: int | str | None = None
    ) -> list[Position]:
        """Return positions, optionally filtered by ``status`` (``OPEN`` or ``CLOSED``).

        Raises:
            InvalidArgumentError: bad ``status`` or ``wallet_id``.
        """
        params: dict[str, str] = {}
        if status is not None:
            if not isinstance(status, str) or status.upper() not in ("OPEN", "CLOSED"):
                raise InvalidArgumentError(f'status must be "OPEN" or "CLOSED", got {status!r}')
            params["status"] = status.upper()
        scope = wallet_param(wallet_id)
        if scope is not None:
            params["wallet_id"] = scope
        return await self._r.request(list[Position], "GET", "/v1/account/positions", params=params)

    def history_pages(
        self,
        *,
        market_id: str | None = None,
        side: Side | str | None = None,
        wallet_id: int | str | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
    ) -> AsyncGenerator[HistoryPage, None]:
        """Iterate over the filled orders page by page, newest ``filled_at`` first
        (``GET /v1/account/history?envelope=true``).

        The pages are offset-based: a fill that lands while you page shifts the
        rows after it, so a row can appear on two pages but none is skipped.

        Args:
            market_id, side: filters.
            wallet_id: ``"all"``, ``"api"`` or a wallet id; omitted means the
                server's default scope (the API wallet).
            page_size: 1 to 200; ``None`` asks for the largest page (200).
            cursor: a saved ``next_cursor`` to resume from (same filters).

        Returns:
            An async iterator of pages; nothing is held open between pages, so
            ``break`` is safe.

        Raises:
            InvalidArgumentError: bad arguments, raised by this call before anything is sent.
            PaginationError: the server repeated a cursor (raised while iterating).
        """
        params = {"limit": page_limit(page_size, _HISTORY_PAGE_MAX), "envelope": "true"}
        if market_id is not None:
            params["market_id"] = check_str("market_id", market_id, max_len=256)
        if side is not None:
            params["side"] = check_enum("side", side, Side).value
        scope = wallet_param(wallet_id)
        if scope is not None:
            params["wallet_id"] = scope
        if cursor is not None and not (isinstance(cursor, str) and cursor.isdigit()):
            raise InvalidArgumentError(
                f"cursor must be a saved next_cursor (digits), got {cursor!r}"
            )

        async def fetch(cur: str | None) -> HistoryPage:
            query = params if cur is None else {**params, "offset": cur}
            return await self._r.request(HistoryPage, "GET", "/v1/account/history", params=query)

        return walk_cursor(fetch, _history_cursor, cursor)

    def history(
        self,
        *,
        market_id: str | None = None,
        side: Side | str | None = None,
        wallet_id: int | str | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
    ) -> AsyncGenerator[HistoryRow, None]:
        """Iterate over every filled order, newest ``filled_at`` first, across pages.

        Same arguments and errors as :meth:`history_pages`; ``break`` is safe.

        Returns:
            An async iterator of history rows.
        """
        pages = self.history_pages(
            market_id=market_id, side=side, wallet_id=wallet_id, page_size=page_size, cursor=cursor
        )
        return flatten(pages, _history_rows)
