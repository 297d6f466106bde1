"""Wire shapes of the wallets (``/v1/me/wallets*``), API.md §4.4.

Sources, field by field, in ``docs/trader-api-notes.md``. ``kind`` and
``status`` stay strings when read (the server may add kinds, as it added
``PROP_FIRM``); :class:`WalletKind` names the documented ones for input.
"""

from __future__ import annotations

import msgspec

from .common import Money, MoneyStruct, UTCDateTime, WireEnum

__all__ = ["Wallet", "WalletAccount", "WalletKind", "WalletManager"]


class WalletKind(WireEnum):
    """A wallet's kind. Only ``SANDBOX`` wallets can be created or reset today."""

    MAIN = "MAIN"
    API = "API"
    SANDBOX = "SANDBOX"
    COMPETITION = "COMPETITION"
    PROP_FIRM = "PROP_FIRM"


class WalletManager(msgspec.Struct, kw_only=True, frozen=True):
    """``managed_by`` of a ``PROP_FIRM`` wallet: the tenant that governs it."""

    tenant_slug: str | None = None
    display_name: str | None = None


class WalletAccount(msgspec.Struct, kw_only=True, frozen=True):
    """``b2b_account`` of a ``PROP_FIRM`` wallet: the partner account behind it."""

    account_id: str | None = None
    stage: str | None = None
    status: str | None = None


class Wallet(MoneyStruct, kw_only=True, frozen=True):
    """One wallet of the key's owner.

    A reset archives the wallet and creates the next ``generation`` of the same
    kind at ``baseline``, with ``parent_wallet_id`` naming the archived one.
    """

    id: int
    kind: str
    balance: Money
    baseline: Money
    label: str | None = None
    status: str | None = None
    generation: int = 1
    parent_wallet_id: int | None = None
    competition_id: int | None = None
    created_at: UTCDateTime | None = None
    archived_at: UTCDateTime | None = None
    is_legacy: bool = False
    managed_by: WalletManager | None = None
    b2b_account: WalletAccount | None = None
