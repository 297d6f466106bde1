"""Wire shapes the sandbox sends, built from state.

Trader shapes are the client's own Structs (``polysim_async.models``), so both
sides share one schema. Partner shapes are plain dicts with the very same field
names and order, because partner timestamps must read
``2026-06-04T14:09:31.220148+00:00`` (microseconds, ``+00:00``), which a
``datetime`` field would encode with ``Z``. Tests decode them with the client's
Structs to prove the shapes match.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
from aiohttp import web

from .._codec import encode
from ..models import (
    Balance,
    Order,
    OrderPosition,
    OrderRow,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from ._clock import format_iso, to_datetime
from ._exchange import Exchange, q2, q4
from ._state import Order as OrderRec
from ._state import PartnerAccount, TenantUser, Wallet

__all__ = [
    "account_state",
    "balance",
    "json_response",
    "order_response",
    "order_row",
    "partner_account",
    "partner_user",
    "positions",
    "price_source",
]


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON answer: ``data`` encoded with :func:`polysim_async._codec.encode`."""
    return web.Response(status=status, body=encode(data), content_type="application/json")


def _rules(raw: bytes | None) -> msgspec.Raw | None:
    return None if raw is None else msgspec.Raw(raw)


def partner_user(mapping: TenantUser, *, created: bool) -> dict[str, Any]:
    """P1/P2 body (``PartnerUser``)."""
    return {
        "user_id": mapping.user_id,
        "tenant_user_id": mapping.tenant_user_id,
        "external_id": mapping.external_id,
        "email": mapping.email,
        "created": created,
        "metadata": mapping.metadata,
    }


def partner_account(account: PartnerAccount) -> dict[str, Any]:
    """P4 body (``PartnerAccount``)."""
    return {
        "account_id": account.account_id,
        "wallet_id": account.wallet.wallet_id,
        "user_id": account.user_id,
        "external_id": account.external_id,
        "stage": account.stage,
        "status": account.status,
        "starting_balance": str(q2(account.wallet.starting_balance)),
        "rules": _rules(account.rules),
        "metadata": account.metadata,
    }


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
            {
                "market_id": pos.market_id,
                "outcome": pos.outcome,
                "quantity": str(q4(pos.quantity)),
                "avg_entry_price": str(q4(pos.cost / pos.quantity)),
                "current_price": str(q4(mid)),
                "market_value": str(q2(mv)),
                "unrealized_pnl": str(q2(mv - pos.cost)),
            }
        )
    equity = wallet.cash + wallet.reserved + value
    return {
        "account_id": account.account_id,
        "external_id": account.external_id,
        "stage": account.stage,
        "status": account.status,
        "balance": str(q2(wallet.cash)),
        "starting_balance": str(q2(wallet.starting_balance)),
        "equity": str(q2(equity)),
        "unrealized_pnl": str(q2(unrealized)),
        "realized_pnl": None if wallet.realized is None else str(q2(wallet.realized)),
        "open_positions": rows,
        "rules": _rules(account.rules),
        "metadata": account.metadata,
        "updated_at": format_iso(wallet.updated_us),
    }


def balance(exchange: Exchange, wallet: Wallet) -> Balance:
    """``GET /v1/account/balance``: ``unrealized_pnl`` is total P&L, as documented."""
    value = exchange.valuation(wallet)
    total = wallet.cash + wallet.reserved + value
    return Balance(
        balance=q2(wallet.cash),
        currency="USD",
        starting_balance=q2(wallet.starting_balance),
        unrealized_pnl=total - wallet.starting_balance,
        total_value=total,
    )


def positions(exchange: Exchange, wallets: list[Wallet], status: str | None) -> list[Position]:
    """Position rows of the given wallets (``status`` OPEN, CLOSED or None = all)."""
    out: list[Position] = []
    markets = exchange.state.markets
    for wallet in wallets:
        if status in (None, "OPEN"):
            for pos in wallet.positions.values():
                market = markets[pos.market_id]
                mid = market.mids[pos.outcome]
                mv = pos.quantity * mid
                out.append(
                    Position(
                        id=pos.position_id,
                        market_id=pos.market_id,
                        outcome=pos.outcome,
                        quantity=q4(pos.quantity),
                        avg_entry_price=q4(pos.cost / pos.quantity),
                        status="OPEN",
                        current_price=q4(mid),
                        market_value=q2(mv),
                        unrealized_pnl=q2(mv - pos.cost),
                        market_question=market.question,
                    )
                )
        if status in (None, "CLOSED"):
            for pos in wallet.closed_positions:
                out.append(
                    Position(
                        id=pos.position_id,
                        market_id=pos.market_id,
                        outcome=pos.outcome,
                        quantity=q4(pos.quantity),
                        avg_entry_price=Decimal("0.0000"),
                        status=pos.status,
                        market_question=markets[pos.market_id].question,
                    )
                )
    return out


def price_source(order: OrderRec) -> str:
    """How a filled order was priced: at its own limit (resting) or at the touch."""
    if order.order_type == "limit" and order.fill_price == order.limit_price:
        return "resting_limit"
    return "best_ask" if order.side == "BUY" else "best_bid"


def order_response(order: OrderRec, wallet: Wallet) -> Order:
    """The ``OrderResponse`` for a placed or cancelled order."""
    pos = wallet.positions.get((order.market_id, order.outcome))
    position = None
    if pos is not None:
        position = OrderPosition(
            market_id=pos.market_id,
            outcome=pos.outcome,
            quantity=q4(pos.quantity),
            avg_entry_price=q4(pos.cost / pos.quantity),
            status=pos.status,
        )
    filled = order.status == "FILLED"
    price = order.fill_price if filled else order.limit_price
    return Order(
        order_id=order.order_id,
        status=OrderStatus(order.status),
        order_type=OrderType(order.order_type),
        side=Side(order.side),
        outcome=order.outcome,
        market_id=order.market_id,
        price=None if price is None else q4(price),
        quantity=q4(order.quantity),
        notional=q2(order.notional) if order.notional is not None else None,
        fee=q2(order.fee) if order.fee is not None else Decimal("0"),
        filled_at=None if order.filled_us is None else to_datetime(order.filled_us),
        cancelled_reason=order.cancelled_reason,
        price_source=price_source(order) if filled else None,
        account_balance=q2(wallet.cash),
        position=position,
        client_order_id=order.client_order_id,
        is_replay=False,
        warnings=[],
    )


def order_row(order: OrderRec) -> OrderRow:
    """One row of ``GET /v1/orders`` / ``GET /v1/orders/{id}``."""
    return OrderRow(
        order_id=order.order_id,
        market_id=order.market_id,
        side=Side(order.side),
        outcome=order.outcome,
        order_type=OrderType(order.order_type),
        status=OrderStatus(order.status),
        quantity=q4(order.quantity),
        limit_price=None if order.limit_price is None else q4(order.limit_price),
        time_in_force=TimeInForce(order.time_in_force),
        client_order_id=order.client_order_id,
        created_at=to_datetime(order.created_us),
        filled_at=None if order.filled_us is None else to_datetime(order.filled_us),
        fill_price=None if order.fill_price is None else q4(order.fill_price),
        cancelled_at=None if order.cancelled_us is None else to_datetime(order.cancelled_us),
        cancelled_reason=order.cancelled_reason,
    )
