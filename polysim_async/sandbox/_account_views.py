"""Identity, key, wallet, portfolio and settlement bodies, and the CSV exports.

Like :mod:`._views`, every body is built through a field table of :mod:`._fields`
from the sandbox's own state, already wire-formatted. Choices where the docs
are silent (in API terms):

* ``GET /v1/me``: ``tier`` and ``permissions`` are the calling key's; ``balance``
  is the cash of the scoped wallet(s) (the API wallet by default, ``all`` sums
  every active wallet); ``key_count`` counts the usable keys; ``auth_user_id``
  is null (the sandbox has no web sign-in).
* A key row's ``key_prefix`` is the key's first 16 characters; ``is_active`` is
  false once revoked or past a rotation's overlap; timestamps end in ``Z``.
* A wallet's ``balance`` is its cash (2 dp), ``baseline`` its starting balance;
  timestamps have the ``+00:00`` form of the get-wallet example; ``label`` of the
  API and partner wallets is null; ``managed_by``/``b2b_account`` are sent on
  ``PROP_FIRM`` wallets only.
* Portfolio ``total_trades`` counts the filled orders of the scoped wallets;
  ``win_rate`` is the share of closed positions (sold out or settled; a reset is
  not an exit) that realised a profit, one decimal and a ``%``, or null.
* Settlements: ``cost_basis`` and ``payout`` are money (2 dp), prices and
  quantities 4 dp; ``result`` is ``won`` (paid 1 a share), ``lost`` (0) or
  ``split`` (in between).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from ._clock import format_iso, format_iso_z
from ._exchange import Exchange, money, units
from ._fields import (
    API_KEY,
    ME,
    NEW_API_KEY,
    PORTFOLIO,
    PORTFOLIO_POSITION,
    SETTLEMENT,
    TIER,
    WALLET,
    WALLET_ACCOUNT,
    WALLET_MANAGER,
    Shape,
)
from ._state import SandboxState, Settlement, Tier, TraderKey, User, Wallet
from ._views import balance, positions

__all__ = [
    "api_key_row",
    "csv_text",
    "me",
    "new_api_key",
    "portfolio",
    "settlement_row",
    "tier_row",
    "wallet_body",
]


def _iso_z(us: int | None) -> str | None:
    return None if us is None else format_iso_z(us)


def me(user: User, key: TraderKey, wallets: list[Wallet], now_us: int) -> dict[str, Any]:
    """``GET /v1/me``."""
    cash = sum((w.cash for w in wallets if w.status == "ACTIVE"), Decimal(0))
    return ME.make(
        user_id=user.user_id,
        balance=money(cash) if wallets else None,
        currency="USD",
        key_count=sum(1 for k in user.keys if k.usable(now_us)),
        tier=key.tier,
        permissions=sorted(key.permissions),
        auth_user_id=None,
        email=user.email,
    )


def tier_row(tier: Tier) -> dict[str, Any]:
    """One ``GET /v1/keys/tiers`` row."""
    return TIER.make(
        tier=tier.name,
        requests_per_second=tier.per_second,
        requests_per_minute=tier.per_minute,
        max_ws_connections=tier.ws_connections,
        max_batch_size=tier.max_batch,
    )


def api_key_row(key: TraderKey, now_us: int) -> dict[str, Any]:
    """One ``GET /v1/keys`` row (also the answer of a rename)."""
    return API_KEY.make(
        id=key.key_id,
        key_prefix=key.key[:16],
        name=key.name,
        permissions=sorted(key.permissions),
        rate_limit_tier=key.tier,
        is_active=key.usable(now_us),
        created_at=format_iso_z(key.created_us),
        expires_at=_iso_z(key.expires_us),
    )


def new_api_key(key: TraderKey) -> dict[str, Any]:
    """A key just minted (create, rotate): the raw key, shown this once."""
    return NEW_API_KEY.make(
        id=key.key_id,
        raw_key=key.key,
        key_prefix=key.key[:16],
        name=key.name,
        rate_limit_tier=key.tier,
        permissions=sorted(key.permissions),
        created_at=format_iso_z(key.created_us),
    )


def wallet_body(state: SandboxState, wallet: Wallet) -> dict[str, Any]:
    """A ``WalletOut``."""
    extra: dict[str, Any] = {}
    account = wallet.account
    if wallet.kind == "PROP_FIRM" and account is not None:
        tenant = state.tenants[account.tenant_id]
        extra["managed_by"] = WALLET_MANAGER.make(
            tenant_slug=tenant.slug, display_name=tenant.display_name
        )
        extra["b2b_account"] = WALLET_ACCOUNT.make(
            account_id=account.account_id, stage=account.stage, status=account.status
        )
    return WALLET.make(
        id=wallet.wallet_id,
        kind=wallet.kind,
        label=wallet.label,
        balance=money(wallet.cash),
        baseline=money(wallet.starting_balance),
        status=wallet.status,
        generation=wallet.generation,
        parent_wallet_id=wallet.parent_wallet_id,
        competition_id=None,
        created_at=format_iso(wallet.created_us),
        archived_at=None if wallet.archived_us is None else format_iso(wallet.archived_us),
        is_legacy=False,
        **extra,
    )


def _win_rate(wallets: list[Wallet]) -> str | None:
    exits = [p for w in wallets for p in w.closed_positions if p.status != "CLOSED_BY_RESET"]
    if not exits:
        return None
    wins = sum(1 for p in exits if p.realized > 0)
    return f"{Decimal(wins * 100) / len(exits):.1f}%"


def portfolio(exchange: Exchange, api: Wallet, wallets: list[Wallet]) -> dict[str, Any]:
    """``GET /v1/account/portfolio``: the API wallet's balance, the scope's open positions."""
    rows = [
        PORTFOLIO_POSITION.make(**{k: v for k, v in row.items() if k != "market_question"})
        for row in positions(exchange, wallets, "OPEN")
    ]
    return PORTFOLIO.make(
        balance=balance(exchange, api),
        positions=rows,
        total_trades=sum(len(w.fills) for w in wallets),
        win_rate=_win_rate(wallets),
    )


def settlement_row(item: Settlement) -> dict[str, Any]:
    """One ``GET /v1/account/settlements`` row (also a settlements CSV line)."""
    return SETTLEMENT.make(
        position_id=item.position_id,
        market_id=item.market_id,
        outcome=item.outcome,
        quantity=units(item.quantity),
        avg_entry_price=units(item.cost_basis / item.quantity),
        cost_basis=money(item.cost_basis),
        payout=money(item.payout),
        payout_per_share=units(item.payout_per_share),
        realized_pnl=money(item.payout - item.cost_basis),
        result=item.result,
        settled_at=format_iso_z(item.settled_us),
    )


def csv_text(shape: Shape, rows: Iterable[dict[str, Any]], *, cap: int) -> str:
    """A CSV document: the shape's columns as the header, at most ``cap`` rows, then a
    ``# truncated`` line when more were left out."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(shape.fields)
    for written, row in enumerate(rows):
        if written == cap:
            out.write(
                f"# truncated: the export stops at {cap} rows; narrow from/to to export the rest\n"
            )
            break
        writer.writerow(["" if row[name] is None else row[name] for name in shape.fields])
    return out.getvalue()
