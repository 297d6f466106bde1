"""Account reads for bots, added to ``client.account``: portfolio, settlements,
the API-wallet reset and the CSV exports (API.md §4.3, §4.1 Export)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import date, datetime

from ._download import CsvExport, save_csv
from ._errors import InvalidArgumentError
from ._pagination import flatten, walk_cursor
from ._validation import check_int, check_str, wallet_param
from .account import AccountAPI
from .models.portfolio import ApiBalanceReset, Portfolio, Settlement, SettlementPage

__all__ = ["PortfolioReads"]

#: ``GET /v1/account/settlements`` page size: default 100, at most 500 (SDK docstring).
SETTLEMENT_PAGE_MAX = 500


def time_bound(name: str, value: datetime | date | str) -> str:
    """A ``from``/``to`` bound as the query string carries it (ISO 8601).

    An aware datetime, a date, or an ISO string passed through as given.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidArgumentError(f"{name} must be timezone-aware")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return check_str(name, value.strip(), max_len=64)
    raise InvalidArgumentError(f"{name} must be a datetime, date or ISO string, got {value!r}")


def filters(
    *,
    wallet_id: int | str | None,
    market_id: str | None,
    start: datetime | date | str | None,
    end: datetime | date | str | None,
) -> dict[str, str]:
    """The shared filters of settlements and the exports, validated, with their wire names."""
    params: dict[str, str] = {}
    scope = wallet_param(wallet_id)
    if scope is not None:
        params["wallet_id"] = scope
    if market_id is not None:
        params["market_id"] = check_str("market_id", market_id, max_len=256)
    if start is not None:
        params["from"] = time_bound("start", start)
    if end is not None:
        params["to"] = time_bound("end", end)
    return params


def _settlement_rows(page: SettlementPage) -> list[Settlement]:
    return page.data


class PortfolioReads(AccountAPI):
    """``client.account``: :class:`AccountAPI` plus portfolio, settlements, the API-wallet
    reset and the CSV exports."""

    async def portfolio(self, *, wallet_id: int | str | None = None) -> Portfolio:
        """Return balance, positions and trade statistics (``GET /v1/account/portfolio``).

        Args:
            wallet_id: ``"all"``, ``"api"`` or a wallet id; omitted means the API
                wallet. With ``"all"``, ``balance`` stays on the API wallet.

        Raises:
            InvalidArgumentError: a bad ``wallet_id`` (nothing sent).
            NotFoundError: ``WALLET_NOT_FOUND`` or ``ACCOUNT_NOT_FOUND``.
        """
        params: dict[str, str] = {}
        scope = wallet_param(wallet_id)
        if scope is not None:
            params["wallet_id"] = scope
        return await self._r.request(Portfolio, "GET", "/v1/account/portfolio", params=params)

    def settlement_pages(
        self,
        *,
        wallet_id: int | str | None = None,
        market_id: str | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
        page_size: int = 100,
        cursor: str | None = None,
    ) -> AsyncIterator[SettlementPage]:
        """Iterate over settled positions page by page, newest position first.

        ``GET /v1/account/settlements``: one row per position a market's
        resolution closed. Pages follow ``next_cursor`` (the ``position_id``
        keyset) until it comes back empty; nothing is held open between pages.

        Args:
            wallet_id: ``"all"``, ``"api"`` or a wallet id; omitted means the API wallet.
            market_id: one market only.
            start, end: bounds on the settlement time, sent as ``from``/``to``
                (an aware datetime, a date, or an ISO string).
            page_size: 1 to 500.
            cursor: a saved ``next_cursor`` to resume from (same filters).

        Returns:
            An async iterator of pages.

        Raises:
            InvalidArgumentError: bad filters, raised by this call before anything is sent.
            PaginationError: the server repeated a cursor (raised while iterating).
        """
        params = filters(wallet_id=wallet_id, market_id=market_id, start=start, end=end)
        params["limit"] = str(check_int("page_size", page_size, low=1, high=SETTLEMENT_PAGE_MAX))
        if cursor is not None:
            check_str("cursor", cursor, max_len=4096)

        async def fetch(cur: str | None) -> SettlementPage:
            query = params if cur is None else {**params, "cursor": cur}
            return await self._r.request(
                SettlementPage, "GET", "/v1/account/settlements", params=query
            )

        return walk_cursor(fetch, lambda page: page.next_cursor, cursor)

    def settlements(
        self,
        *,
        wallet_id: int | str | None = None,
        market_id: str | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
        page_size: int = 100,
        cursor: str | None = None,
    ) -> AsyncIterator[Settlement]:
        """Iterate over every settled position, newest first; see :meth:`settlement_pages`.

        Returns:
            An async iterator of settlements; ``break`` is safe.
        """
        pages = self.settlement_pages(
            wallet_id=wallet_id,
            market_id=market_id,
            start=start,
            end=end,
            page_size=page_size,
            cursor=cursor,
        )
        return flatten(pages, _settlement_rows)

    async def reset_api_balance(self) -> ApiBalanceReset:
        """Reset the API wallet to the tier baseline (``POST /v1/account/reset-api-balance``).

        Open API positions are force-closed (``CLOSED_BY_RESET``). Every call
        resets again, so it is **not** repeated once it may have reached the
        server: only a connection that never opened, or a 429, is retried. After
        a :class:`TransportError` or a 5xx, read :meth:`balance` to see whether
        the reset happened.

        Raises:
            APIStatusError: 402 ``UPGRADE_REQUIRED`` on the free tier.
            TransportError: no answer; the reset may have happened.

        Cancellation propagates; the reset may still happen on the server.
        """
        return await self._r.request(
            ApiBalanceReset, "POST", "/v1/account/reset-api-balance", idempotent=False
        )

    async def export_trades_csv(
        self,
        path: str | os.PathLike[str],
        *,
        wallet_id: int | str | None = None,
        market_id: str | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
    ) -> CsvExport:
        """Save the filled trades as CSV to ``path`` (``GET /v1/export/trades.csv``).

        The file appears only once complete (written beside it as a hidden
        ``.part`` file, then renamed); a failed or cancelled export leaves
        ``path`` untouched. Paid plans only. See the README for how much of the
        body is held in memory.

        Args:
            path: the file to write (its directory must exist); replaced if present.
            wallet_id: ``"all"``, ``"api"`` or a wallet id.
            market_id: one market only.
            start, end: the date range, sent as ``from``/``to``.

        Returns:
            Where it was written, its size, and whether the server's row cap cut it.

        Raises:
            InvalidArgumentError: bad arguments or ``path`` (nothing sent).
            APIStatusError: 402 ``UPGRADE_REQUIRED`` on the free tier.
            OSError: the file could not be written.

        Cancellation propagates; the partial file is removed.
        """
        params = filters(wallet_id=wallet_id, market_id=market_id, start=start, end=end)
        return await save_csv(self._r, "/v1/export/trades.csv", path, params)

    async def export_settlements_csv(
        self,
        path: str | os.PathLike[str],
        *,
        wallet_id: int | str | None = None,
        market_id: str | None = None,
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
    ) -> CsvExport:
        """Save the settled positions as CSV to ``path`` (``GET /v1/export/settlements.csv``).

        The rows and order of :meth:`settlements`; otherwise as
        :meth:`export_trades_csv` (``start``/``end`` bound the settlement time).
        """
        params = filters(wallet_id=wallet_id, market_id=market_id, start=start, end=end)
        return await save_csv(self._r, "/v1/export/settlements.csv", path, params)
