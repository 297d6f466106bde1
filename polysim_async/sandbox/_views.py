"""The bodies the sandbox sends, built from state through the field tables of :mod:`._fields`.

Every value is wire-formatted here, so the encoder only sees plain JSON: cash and
P&L as 2-dp decimal strings (:func:`money`), prices and quantities as 4-dp strings
(:func:`units`), balance totals at full precision as documented, partner
timestamps as ``2026-06-04T14:09:31.220148+00:00`` and trader timestamps with
``Z``. Nothing here knows the client's models.

Order telemetry (API.md §4.5 O1), in the sandbox's book (unlimited depth at the
touch, a quote that is always current): an order that took liquidity reports
``spread_bps`` (the touch spread over the mid), ``slippage_bps`` 0 (it filled at
the quoted touch), ``quote_age_ms`` 0, ``impact_bps`` 0 and ``book_walk_levels``
1; every other answer (resting, cancelled, a limit filled later as maker) has
them all ``null``. An idempotent replay nulls the last three, as documented.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from ._clock import format_iso, format_iso_z
from ._exchange import Exchange, money, units
from ._feed import TradeRow
from ._fields import (
    ACCOUNT,
    ACCOUNT_STATE,
    BALANCE,
    EQUITY_POINT,
    HISTORY_ROW,
    OPEN_POSITION,
    ORDER,
    ORDER_POSITION,
    ORDER_ROW,
    PARTNER_USER,
    POSITION,
    REGISTER,
)
from ._state import Order, PartnerAccount, TenantUser, Wallet

__all__ = [
    "account_state",
    "balance",
    "equity_point",
    "history_row",
    "order_response",
    "order_row",
    "partner_account",
    "partner_user",
    "positions",
    "price_source",
    "register_response",
    "rejected_order",
]

#: Order telemetry fields an idempotent replay sends as null (API.md §4.5, §9.1).
REPLAY_NULLS = {"spread_bps": None, "impact_bps": None, "book_walk_levels": None}


def _iso_z(us: int | None) -> str | None:
    return None if us is None else format_iso_z(us)


def _rules(raw: bytes | None) -> msgspec.Raw | None:
    # Rules are echoed exactly as the partner sent them (numbers stay numbers).
    return None if raw is None else msgspec.Raw(raw)


# -- partner -------------------------------------------------------------------------------
def register_response(mapping: TenantUser, *, created: bool) -> dict[str, Any]:
    """P1 body (no ``metadata``: the seed's answer has none)."""
    return REGISTER.make(
        user_id=mapping.user_id,
        tenant_user_id=mapping.tenant_user_id,
        external_id=mapping.external_id,
        email=mapping.email,
        created=created,
    )


def partner_user(mapping: TenantUser) -> dict[str, Any]:
    """P2 body: P1's fields (``created`` false) plus the stored ``metadata``."""
    return PARTNER_USER.make(**register_response(mapping, created=False), metadata=mapping.metadata)


def partner_account(account: PartnerAccount) -> dict[str, Any]:
    """P4 body."""
    return ACCOUNT.make(
        account_id=account.account_id,
        wallet_id=account.wallet.wallet_id,
        user_id=account.user_id,
        external_id=account.external_id,
        stage=account.stage,
        status=account.status,
        starting_balance=money(account.wallet.starting_balance),
        rules=_rules(account.rules),
        metadata=account.metadata,
    )


def account_state(exchange: Exchange, account: PartnerAccount) -> dict[str, Any]:
    """The account-state envelope (P5; also PATCH, close and reset)."""
    wallet = account.wallet
    markets = exchange.state.markets
    rows: list[dict[str, Any]] = []
    value = unrealized = Decimal(0)
    for pos in wallet.positions.values():
        mid = markets[pos.market_id].mids[pos.outcome]
        mv = pos.quantity * mid
        value += mv
        unrealized += mv - pos.cost
        rows.append(
            OPEN_POSITION.make(
                market_id=pos.market_id,
                outcome=pos.outcome,
                quantity=units(pos.quantity),
                avg_entry_price=units(pos.cost / pos.quantity),
                current_price=units(mid),
                market_value=money(mv),
                unrealized_pnl=money(mv - pos.cost),
            )
        )
    return ACCOUNT_STATE.make(
        account_id=account.account_id,
        external_id=account.external_id,
        stage=account.stage,
        status=account.status,
        balance=money(wallet.cash),
        starting_balance=money(wallet.starting_balance),
        equity=money(wallet.cash + wallet.reserved + value),
        unrealized_pnl=money(unrealized),
        realized_pnl=None if wallet.realized is None else money(wallet.realized),
        open_positions=rows,
        rules=_rules(account.rules),
        metadata=account.metadata,
        updated_at=format_iso(wallet.updated_us),
    )


# -- trader reads --------------------------------------------------------------------------
def balance(exchange: Exchange, wallet: Wallet) -> dict[str, Any]:
    """``GET /v1/account/balance``: ``unrealized_pnl`` is total P&L, as documented."""
    total = wallet.cash + wallet.reserved + exchange.valuation(wallet)
    return BALANCE.make(
        balance=money(wallet.cash),
        currency="USD",
        starting_balance=money(wallet.starting_balance),
        unrealized_pnl=f"{total - wallet.starting_balance:f}",
        total_value=f"{total:f}",
    )


def positions(
    exchange: Exchange, wallets: list[Wallet], status: str | None
) -> list[dict[str, Any]]:
    """Position rows of the given wallets (``status`` OPEN, CLOSED or None = all)."""
    out: list[dict[str, Any]] = []
    markets = exchange.state.markets
    for wallet in wallets:
        if status in (None, "OPEN"):
            for pos in wallet.positions.values():
                market = markets[pos.market_id]
                mid = market.mids[pos.outcome]
                mv = pos.quantity * mid
                out.append(
                    POSITION.make(
                        id=pos.position_id,
                        market_id=pos.market_id,
                        outcome=pos.outcome,
                        quantity=units(pos.quantity),
                        avg_entry_price=units(pos.cost / pos.quantity),
                        current_price=units(mid),
                        market_value=money(mv),
                        unrealized_pnl=money(mv - pos.cost),
                        status="OPEN",
                        market_question=market.question,
                    )
                )
        if status in (None, "CLOSED"):
            for pos in wallet.closed_positions:
                out.append(
                    POSITION.make(
                        id=pos.position_id,
                        market_id=pos.market_id,
                        outcome=pos.outcome,
                        quantity=units(pos.quantity),
                        avg_entry_price=units(Decimal(0)),
                        current_price=None,
                        market_value=None,
                        unrealized_pnl=None,
                        status=pos.status,
                        market_question=markets[pos.market_id].question,
                    )
                )
    return out


def history_row(
    row: TradeRow, *, filled_us: int, created_us: int, price_source: str
) -> dict[str, Any]:
    """One ``GET /v1/account/history`` row from a stored trade row (its strings kept exact)."""
    return HISTORY_ROW.make(
        order_id=row.order_id,
        market_id=row.market_id,
        side=row.side,
        outcome=row.outcome,
        price=row.price,
        quantity=row.quantity,
        notional=row.notional,
        fee=row.fee,
        status="FILLED",
        price_source=price_source,
        price_age_ms=0,
        filled_at=format_iso_z(filled_us),
        created_at=format_iso_z(created_us),
    )


def equity_point(hour_us: int, cash: Decimal, value: Decimal, start: Decimal) -> dict[str, Any]:
    """One hourly snapshot; ``pnl`` against the starting balance."""
    return EQUITY_POINT.make(
        timestamp=format_iso_z(hour_us),
        cash_balance=money(cash),
        position_value=money(value),
        total_value=money(cash + value),
        pnl=money(cash + value - start),
    )


# -- orders --------------------------------------------------------------------------------
def price_source(order: Order) -> str:
    """How a filled order was priced: at its own limit (resting) or at the touch."""
    if order.order_type == "limit" and order.fill_price == order.limit_price:
        return "resting_limit"
    return "best_ask" if order.side == "BUY" else "best_bid"


def order_response(order: Order, wallet: Wallet) -> dict[str, Any]:
    """The ``OrderResponse`` for a placed or cancelled order (API.md §4.5 O1)."""
    pos = wallet.positions.get((order.market_id, order.outcome))
    position = None
    if pos is not None:
        position = ORDER_POSITION.make(
            market_id=pos.market_id,
            outcome=pos.outcome,
            quantity=units(pos.quantity),
            avg_entry_price=units(pos.cost / pos.quantity),
            status=pos.status,
        )
    filled = order.status == "FILLED"
    price = order.fill_price if filled else order.limit_price
    took = filled and order.spread_bps is not None
    return ORDER.make(
        order_id=order.order_id,
        status=order.status,
        order_type=order.order_type,
        side=order.side,
        outcome=order.outcome,
        price=None if price is None else units(price),
        quantity=units(order.quantity),
        notional=None if order.notional is None else money(order.notional),
        fee="0" if order.fee is None else money(order.fee),
        filled_at=_iso_z(order.filled_us),
        cancelled_reason=order.cancelled_reason,
        price_source=price_source(order) if filled else None,
        slippage_bps=0 if took else None,
        quote_age_ms=0 if took else None,
        spread_bps=order.spread_bps if took else None,
        impact_bps=0 if took else None,
        book_walk_levels=1 if took else None,
        account_balance=money(wallet.cash),
        position=position,
        client_order_id=order.client_order_id,
        error=None,
        error_message=None,
        amount_interpreted_as=order.amount_interpreted_as,
        is_replay=False,
        warnings=[],
    )


def order_row(order: Order) -> dict[str, Any]:
    """One row of ``GET /v1/orders`` / ``GET /v1/orders/{id}`` (API.md §4.5 O3)."""
    return ORDER_ROW.make(
        order_id=order.order_id,
        market_id=order.market_id,
        side=order.side,
        outcome=order.outcome,
        order_type=order.order_type,
        limit_price=None if order.limit_price is None else units(order.limit_price),
        quantity=units(order.quantity),
        time_in_force=order.time_in_force,
        status=order.status,
        client_order_id=order.client_order_id,
        created_at=format_iso_z(order.created_us),
        filled_at=_iso_z(order.filled_us),
        fill_price=None if order.fill_price is None else units(order.fill_price),
        cancelled_at=_iso_z(order.cancelled_us),
        cancelled_reason=order.cancelled_reason,
    )


def rejected_order(
    entry: Any, code: str, message: str, *, status: str = "REJECTED"
) -> dict[str, Any]:
    """A failed batch entry (API.md O2): ``order_id`` 0, the code in ``error``, prose in
    ``error_message``; what could be read from the entry is echoed, the rest is zero or null."""
    data = entry if isinstance(entry, dict) else {}

    def text(name: str, default: str | None = None) -> str | None:
        value = data.get(name)
        return value if isinstance(value, str) and len(value) <= 256 else default

    order_type = (text("order_type") or "market").lower()
    side = text("side")
    return ORDER.make(
        order_id=0,
        status=status,
        order_type=order_type if order_type in ("market", "limit") else "market",
        side=None if side is None else side.upper(),
        outcome=text("outcome"),
        price="0",
        quantity=text("quantity", "0"),
        notional="0",
        fee="0",
        filled_at=None,
        cancelled_reason=None,
        price_source=None,
        slippage_bps=None,
        quote_age_ms=None,
        spread_bps=None,
        impact_bps=None,
        book_walk_levels=None,
        account_balance=None,
        position=None,
        client_order_id=text("client_order_id"),
        error=code,
        error_message=message,
        amount_interpreted_as=None,
        is_replay=False,
        warnings=[],
    )
