"""Bulk generation of fills, for benchmarks and large-history tests.

``count`` fills are written straight into a wallet's trade feed as balanced round
trips: fill ``2k`` is a BUY and ``2k+1`` a SELL of the same quantity at the same
price (``realized_pnl`` "0.00"), so cash, positions and P&L stay exactly as they
were without a million Decimal updates. With an odd ``count`` the last fill is a
real BUY through the exchange (it opens or grows a position and spends cash).
Timestamps are spaced ``spacing_us`` apart (compressed when needed) and end at or
before "now", after the wallet's newest fill. Generated fills appear in the
partner trade feed and in ``/v1/account/history``, and (with ``push``) on the
user's executions sockets; they are not order rows in ``/v1/orders``. The rows are
written from templates of the ``TRADE`` field table (a million ``Shape.make``
calls would cost seconds); the contract tests check generated rows against it.
"""

from __future__ import annotations

from array import array
from decimal import Decimal

from ._clock import format_iso
from ._core import Core
from ._json import encode
from ._state import Order, User, Wallet

__all__ = ["generate_fills"]


def generate_fills(
    core: Core,
    user: User,
    wallet: Wallet,
    count: int,
    *,
    market_id: str | None = None,
    push: bool = False,
    spacing_us: int = 1000,
) -> int:
    """Append ``count`` fills to ``wallet``; return the first generated order id.

    Raises:
        ValueError: bad ``count``, unknown market, or no cash for the odd last BUY.
    """
    if count < 1:
        raise ValueError("count must be positive")
    state = core.state
    market = state.markets.get(market_id) if market_id else next(iter(state.markets.values()))
    if market is None:
        raise ValueError(f"unknown market {market_id!r}")
    outcome = market.outcomes[0]
    paired = count - (count % 2)
    now = core.clock.now_us()
    last = wallet.fills.last_key
    floor = (last[0] + 1) if last else 0
    start = max(floor, now - paired * spacing_us)
    if paired > 1 and start + (paired - 1) * spacing_us > now:
        spacing_us = max(1, (now - start) // (paired - 1))
    first = state.reserve_order_ids(paired)
    rng = state.rng
    mid = market.mids[outcome]
    prices = [mid + market.tick * d for d in range(-5, 6) if Decimal(0) < mid + market.tick * d < 1]
    price_s = [f"{p:.4f}" for p in prices]
    qtys = list(range(5, 25))
    notionals = [[f"{p * q:.2f}" for q in qtys] for p in prices]
    head = (
        f',"market_id":{encode(market.market_id).decode()},"side":"%s",'
        f'"outcome":{encode(outcome).decode()},'
    )
    buy_head, sell_head = head % "BUY", head % "SELL"
    filled = array("q", range(start, start + paired * spacing_us, spacing_us)[:paired])
    oids = array("q", range(first, first + paired))
    rows: list[bytes] = []
    append = rows.append
    pick_p = rng.choices(range(len(prices)), k=paired // 2)
    pick_q = rng.choices(range(len(qtys)), k=paired // 2)
    for k in range(paired // 2):
        pi, qi = pick_p[k], pick_q[k]
        tail = (
            f'"price":"{price_s[pi]}","quantity":"{qtys[qi]}.0000",'
            f'"notional":"{notionals[pi][qi]}","fee":"0.00","filled_at":"'
        )
        i = 2 * k
        o = first + i
        append(
            f'{{"trade_id":{o},"order_id":{o}{buy_head}{tail}{format_iso(filled[i])}",'
            f'"client_order_id":null,"realized_pnl":null}}'.encode()
        )
        append(
            f'{{"trade_id":{o + 1},"order_id":{o + 1}{sell_head}{tail}{format_iso(filled[i + 1])}",'
            f'"client_order_id":null,"realized_pnl":"0.00"}}'.encode()
        )
    sides = ["BUY", "SELL"] * (paired // 2)
    wallet.fills.extend(filled, oids, sides, market.market_id, rows)
    if paired:
        core.clock.reserve(filled[-1])
        wallet.realized = wallet.realized or Decimal(0)
        wallet.updated_us = max(wallet.updated_us, filled[-1])
    if push and paired:
        hub = core.hub
        if hub.count(user.user_id):
            for k in range(paired):
                pi, qi = pick_p[k // 2], pick_q[k // 2]
                hub.push_fill(
                    user.user_id,
                    first + k,
                    market.market_id,
                    sides[k],
                    outcome,
                    price_s[pi],
                    f"{qtys[qi]}.0000",
                    filled[k],
                )
    if count % 2:
        price = market.ask(outcome)
        qty = market.min_size
        if price * qty > wallet.cash:
            raise ValueError("not enough cash for the final (odd) BUY")
        at = core.clock.stamp(now)
        order = Order(
            order_id=state.next_order_id(),
            user_id=user.user_id,
            wallet_id=wallet.wallet_id,
            market_id=market.market_id,
            side="BUY",
            outcome=outcome,
            order_type="market",
            time_in_force="FOK",
            quantity=qty,
            limit_price=None,
            created_us=at,
        )
        core.exchange.fill_new(user, wallet, order, price)
        if not paired:
            first = order.order_id
    return first
