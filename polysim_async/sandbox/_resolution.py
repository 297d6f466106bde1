"""Resolving a market: every position in it is settled (``GET /v1/account/settlements``).

A resolution names the winning outcome (each of its shares pays 1, the others
0) or none, a split (every share pays ``1 / outcomes``). In order: the market's
resting orders are cancelled (``market_resolved``) in every wallet; every open
position in it is paid out to its wallet's cash, its P&L realised, and it closes
(``CLOSED``) with a settlement record (``won``, ``lost`` or ``split``); the
market closes with ``resolved_outcome`` set and its mids at the payouts, which
the price WebSocket publishes.
"""

from __future__ import annotations

from decimal import Decimal

from ._exchange import Exchange
from ._state import Market, Settlement

__all__ = ["resolve_market"]

ZERO = Decimal(0)


def resolve_market(exchange: Exchange, market: Market, winner: str | None) -> int:
    """Resolve ``market`` for ``winner`` (``None``: a split); return the positions settled.

    Raises:
        ValueError: the market was resolved already, or ``winner`` is not one of its outcomes.
    """
    if market.resolved:
        raise ValueError("the market is resolved already")
    if winner is not None and winner not in market.outcomes:
        raise ValueError(f"winner must be one of {', '.join(market.outcomes)}")
    state = exchange.state
    share = Decimal(1) / len(market.outcomes)
    pays = {
        name: (share if winner is None else Decimal(name == winner)) for name in market.outcomes
    }
    for wallet in state.wallets.values():
        exchange.cancel_where(wallet, market_id=market.market_id, reason="market_resolved")
    now = state.clock.stamp()
    settled = 0
    for wallet in state.wallets.values():
        for name in market.outcomes:
            pos = wallet.positions.pop((market.market_id, name), None)
            if pos is None:
                continue
            per_share = pays[name]
            payout = pos.quantity * per_share
            realized = payout - pos.cost
            result = "won" if per_share == 1 else "lost" if per_share == 0 else "split"
            wallet.settlements.append(
                Settlement(
                    pos.position_id,
                    wallet.wallet_id,
                    market.market_id,
                    name,
                    pos.quantity,
                    pos.cost,
                    per_share,
                    result,
                    now,
                )
            )
            wallet.cash += payout
            wallet.realized = (wallet.realized or ZERO) + realized
            pos.realized += realized
            pos.quantity = pos.cost = ZERO
            pos.status = "CLOSED"
            wallet.closed_positions.append(pos)
            wallet.updated_us = now
            settled += 1
    market.closed = True
    market.resolved_outcome = winner
    market.resolved = True
    market.mids.update(pays)
    exchange.moved(market, now)
    return settled
