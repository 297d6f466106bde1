"""The key owner's wallets (``/v1/me/wallets*``, personal key): ``client.wallets``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from ._offsets import walk_listing
from ._requester import Requester
from ._validation import check_enum, check_int, check_str, wallet_number
from .models.wallets import Wallet, WalletKind

__all__ = ["WalletsAPI"]

_PAGE_MAX = 200


class _WalletsEnvelope(msgspec.Struct, kw_only=True, frozen=True):
    # The exact list envelope was not retrieved; the SDK accepts all three (API.md §4.4).
    wallets: list[Wallet] = msgspec.field(default_factory=list)
    items: list[Wallet] = msgspec.field(default_factory=list)

    @property
    def rows(self) -> list[Wallet]:
        return self.wallets or self.items


_LIST_WIRE: Any = list[Wallet] | _WalletsEnvelope


def _wallet_path(wallet_id: int, suffix: str = "") -> str:
    return f"/v1/me/wallets/{wallet_number(wallet_id)}{suffix}"


class WalletsAPI:
    """``client.wallets``: list, create, read, rename, archive and reset wallets.

    A wallet id from here is what every read taking ``wallet_id=`` accepts
    (``client.account.portfolio(wallet_id=w.id)``, ``positions``, ``equity``,
    ``settlements``, the exports, ``client.orders.list``).
    """

    def __init__(self, requester: Requester) -> None:
        self._r = requester

    def list(self, *, page_size: int = 50) -> AsyncIterator[Wallet]:
        """Iterate over every wallet (``GET /v1/me/wallets``), archived generations included.

        Pages by ``limit``/``offset`` and stops on a short page; ``break`` is safe.

        Args:
            page_size: wallets per request, 1 to 200.

        Returns:
            An async iterator of wallets.

        Raises:
            InvalidArgumentError: bad ``page_size``, raised by this call before anything is sent.
            PaginationError: the server ignored the offset (raised while iterating).
        """
        size = check_int("page_size", page_size, low=1, high=_PAGE_MAX)
        return walk_listing(self._r, "/v1/me/wallets", _LIST_WIRE, Wallet, size)

    async def get(self, wallet_id: int) -> Wallet:
        """Return one wallet (``GET /v1/me/wallets/{wallet_id}``).

        Raises:
            InvalidArgumentError: ``wallet_id`` is not a positive integer (nothing sent).
            NotFoundError: ``WALLET_NOT_FOUND`` (not yours, or no such wallet).
        """
        return await self._r.request(Wallet, "GET", _wallet_path(wallet_id))

    async def create(self, label: str, *, kind: WalletKind | str = WalletKind.SANDBOX) -> Wallet:
        """Create a wallet (``POST /v1/me/wallets``); only ``SANDBOX`` is accepted today.

        Each call creates another wallet, so the call is **not** repeated once
        it may have reached the server (only a connection that never opened,
        or a 429, is retried): after a :class:`TransportError` or a 5xx, list
        the wallets to see whether it exists.

        Args:
            label: the wallet's name (sent as ``label``).
            kind: a :class:`WalletKind` or its name, any case.

        Returns:
            The new wallet at its plan's baseline.

        Raises:
            InvalidArgumentError: bad arguments (nothing sent).
            ValidationError: the server refuses the kind (MAIN, COMPETITION, API today).
            APIStatusError: 402 ``UPGRADE_REQUIRED``, the plan's wallet cap.

        Cancellation propagates; the wallet may still be created by the server.
        """
        body = {
            "label": check_str("label", label, max_len=255),
            "kind": check_enum("kind", kind, WalletKind).value,
        }
        return await self._r.request(Wallet, "POST", "/v1/me/wallets", json=body, idempotent=False)

    async def update(self, wallet_id: int, *, label: str) -> Wallet:
        """Rename a wallet (``PATCH /v1/me/wallets/{wallet_id}``).

        Setting a label twice leaves the same result, so it is retried like a read.

        Raises:
            InvalidArgumentError: bad arguments (nothing sent).
            NotFoundError: ``WALLET_NOT_FOUND``.
        """
        path = _wallet_path(wallet_id)
        body = {"label": check_str("label", label, max_len=255)}
        return await self._r.request(Wallet, "PATCH", path, json=body, idempotent=True)

    async def archive(self, wallet_id: int) -> Wallet:
        """Archive a wallet (``DELETE /v1/me/wallets/{wallet_id}``).

        Retried like a read; if an earlier attempt had already archived it, the
        repeat may answer with the server's refusal for an archived wallet.

        Returns:
            The wallet, now ``ARCHIVED``.

        Raises:
            InvalidArgumentError: ``wallet_id`` is not a positive integer (nothing sent).
            NotFoundError: ``WALLET_NOT_FOUND``.
        """
        return await self._r.request(Wallet, "DELETE", _wallet_path(wallet_id))

    async def reset(self, wallet_id: int) -> Wallet:
        """Reset a wallet (``POST /v1/me/wallets/{wallet_id}/reset``); ``SANDBOX`` only today.

        The wallet is archived and its next generation is created at the
        baseline. Every call does that again, so the call is **not** repeated
        once it may have reached the server; after a :class:`TransportError` or
        a 5xx, list the wallets to see whether a new generation exists. (The API
        wallet is reset with :meth:`AccountAPI.reset_api_balance`.)

        Returns:
            The new wallet (``generation`` N+1, ``parent_wallet_id`` = ``wallet_id``).

        Raises:
            InvalidArgumentError: ``wallet_id`` is not a positive integer (nothing sent).
            NotFoundError: ``WALLET_NOT_FOUND``.
            ValidationError: the wallet's kind cannot be reset here.

        Cancellation propagates; the reset may still happen on the server.
        """
        path = _wallet_path(wallet_id, "/reset")
        return await self._r.request(Wallet, "POST", path, idempotent=False)
