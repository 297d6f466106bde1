"""Trader account reads (``/v1/account/*``, personal key): ``client.account``."""

from __future__ import annotations

from ._errors import InvalidArgumentError
from ._requester import Requester
from ._validation import check_int
from .models.account import Balance, EquityPoint, Position

__all__ = ["AccountAPI", "wallet_param"]


def wallet_param(wallet_id: int | str | None) -> str | None:
    """Validate a ``wallet_id`` scope: ``"all"``, ``"api"`` (any case) or a wallet integer."""
    if wallet_id is None:
        return None
    if isinstance(wallet_id, str) and wallet_id.strip().lower() in ("all", "api"):
        return wallet_id.strip().lower()
    if isinstance(wallet_id, int) and not isinstance(wallet_id, bool):
        return str(check_int("wallet_id", wallet_id, low=0))
    raise InvalidArgumentError(f'wallet_id must be "all", "api" or an integer, got {wallet_id!r}')


class AccountAPI:
    """``client.account``: equity curve, balance and positions of the key's owner."""

    def __init__(self, requester: Requester) -> None:
        self._r = requester

    async def equity(self, days: int = 7, wallet_id: int | str | None = None) -> list[EquityPoint]:
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
