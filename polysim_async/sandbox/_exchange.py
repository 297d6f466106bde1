"""The sandbox's small exchange: order execution, resting limits, P&L and snapshots.

Rules (API.md §4.5, simplified where the docs leave room):

* Each outcome has a mid price; ``bid = mid - spread/2``, ``ask = mid + spread/2``,
  with unlimited depth at the touch. Positions are marked at the mid.
* Market orders (FOK by default, or IOC) fill at once and in full: BUY at the ask,
  SELL at the bid; ``price`` is the worst acceptable price. A FOK that cannot fill is
  ``400 FOK_ORDER_NOT_FILLED_ERROR``; an IOC that cannot fill comes back
  ``CANCELLED`` with ``cancelled_reason`` ``"not_marketable"``.
* A limit order that is marketable when placed fills at once at the touch (taker).
  Otherwise it rests ``PENDING`` with its cash (BUY: ``limit x quantity``) or shares
  (SELL) reserved, and fills in full - one fill per order - at its own limit price
  with zero fee as soon as the ask drops to (BUY) or the bid rises to (SELL) it.
* Taker fee = ``quantity x fee_rate x p x (1 - p)`` rounded to the cent (``fee_rate``
  is 0 unless a market is created with one); makers pay nothing.
* Cash and cost bases are exact Decimals; a sell removes ``cost x sold / held`` of
  the basis (the whole basis when it empties the position), so
  ``equity = cash + reserved + sum(quantity x mid) = starting + realized + unrealized``
  holds exactly. Displayed values are rounded: cash and P&L to 2 dp, prices and
  quantities to 4 dp.
* Every simulated hour: GTD orders past expiry become ``EXPIRED``, each market's
  mid takes one seeded random step of -1, 0 or +1 tick (when the walk is on),
  resting orders are matched, and every wallet is snapshotted for the equity curve.
* Dead-man's switch (API.md O8): a heartbeat registration that lapses cancels
  every pending order of its user's account, in every wallet (``cancelled_reason``
  ``"heartbeat_expired"``), at its expiry instant, in time order with the hourly
  events (a lapse before an hour's walk cancels before the walk can fill).
* Every mid a market takes is recorded (its price history, for candles) and
  reported to ``on_price`` (the price WebSocket); every fill records the
  market's last trade price and volume.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from ._clock import HOUR_US, format_iso
from ._context import Settings
from ._errors import ApiError, bad_request
from ._fields import TRADE
from ._heartbeats import HeartbeatBook, Registration
from ._json import encode
from ._state import Market, Order, Position, SandboxState, User, Wallet

__all__ = ["Exchange", "FillHook", "OrderParams", "PriceHook", "money", "q2", "q4", "units"]

ZERO = Decimal(0)
_C2 = Decimal("0.01")
_C4 = Decimal("0.0001")

#: Called for every fill: (user_id, order_id, market_id, side, outcome, price, quantity, filled_us).
FillHook = Callable[[int, int, str, str, str, str, str, int], None]
#: Called whenever a market's mids (or its open/closed state) change.
PriceHook = Callable[[Market], None]


def q2(value: Decimal) -> Decimal:
    """Round to cents, half up."""
    return value.quantize(_C2, rounding=ROUND_HALF_UP)


def q4(value: Decimal) -> Decimal:
    """Round to 4 dp, half up (prices, quantities)."""
    return value.quantize(_C4, rounding=ROUND_HALF_UP)


def _text(value: Decimal) -> str:
    # Plain notation, and no "-0.00" for a value that rounds to zero.
    return f"{value.copy_abs() if value.is_zero() else value:f}"


def money(value: Decimal) -> str:
    """Cash and P&L on the wire: a decimal string with 2 dp (``"9745.20"``)."""
    return _text(q2(value))


def units(value: Decimal) -> str:
    """Prices and quantities on the wire: a decimal string with 4 dp (``"0.4100"``)."""
    return _text(q4(value))


@dataclass(frozen=True, slots=True)
class OrderParams:
    """A validated order request (see :func:`._trading.parse_order` for the wire rules)."""

    market_id: str
    side: str
    outcome: str
    order_type: str
    time_in_force: str
    price: Decimal
    quantity: Decimal | None = None
    amount: Decimal | None = None
    client_order_id: str | None = None
    expiration_us: int | None = None
    post_only: bool = False


class Exchange:
    """Executes orders against :class:`SandboxState` and keeps P&L exact."""

    def __init__(
        self, state: SandboxState, settings: Settings, *, random_walk: bool = True
    ) -> None:
        self.state = state
        #: The run-time knobs; ``settings.push_taker_fills`` also reports taker
        #: (immediate) fills to ``on_fill``, not only resting ones.
        self.settings = settings
        self.random_walk = random_walk
        self.on_fill: FillHook | None = None
        self.on_price: PriceHook | None = None
        self.heartbeats = HeartbeatBook()
        self._resting: dict[str, dict[int, Order]] = {}
        self._gtd: dict[int, Order] = {}
        self._next_hour = (state.clock.now_us() // HOUR_US + 1) * HOUR_US

    # -- valuation ---------------------------------------------------------------------
    def valuation(self, wallet: Wallet) -> Decimal:
        """Return the value of a wallet's open positions at the current mids."""
        markets = self.state.markets
        value = ZERO
        for pos in wallet.positions.values():
            value += pos.quantity * markets[pos.market_id].mids[pos.outcome]
        return value

    # -- placing -----------------------------------------------------------------------
    def place(self, user: User, wallet: Wallet, params: OrderParams) -> Order:
        """Validate against the book and the wallet, then fill or rest the order.

        Raises:
            ApiError: a documented 400/404 trading error (nothing changed).
        """
        state = self.state
        if wallet.status != "ACTIVE":
            raise bad_request("ACCOUNT_CLOSED", "this wallet is closed; reset it to trade again")
        market = state.markets.get(params.market_id)
        if market is None:
            raise ApiError(404, "MARKET_NOT_FOUND", f"Market not found: {params.market_id}")
        if market.closed:
            raise bad_request("MARKET_CLOSED", "the market is resolved or inactive")
        outcome = market.outcome_name(params.outcome)
        if outcome is None:
            raise ApiError(
                422, "VALIDATION_FAILED", f"outcome must be one of {', '.join(market.outcomes)}"
            )
        price = params.price
        if price % market.tick != 0:
            raise bad_request(
                "INVALID_ORDER_MIN_TICK_SIZE", f"price must be a multiple of {market.tick}"
            )
        quantity = params.quantity
        interpreted = None
        if params.amount is not None:
            quantity = (params.amount / price).quantize(_C4, rounding=ROUND_DOWN)
            interpreted = "usd_notional"
        assert quantity is not None
        if quantity <= 0:
            raise bad_request("INVALID_QUANTITY", "quantity must be positive")
        if quantity < market.min_size:
            raise bad_request(
                "INVALID_ORDER_MIN_SIZE", f"minimum order size is {market.min_size} shares"
            )
        side = params.side
        touch = market.ask(outcome) if side == "BUY" else market.bid(outcome)
        marketable = touch <= price if side == "BUY" else touch >= price
        if params.post_only and marketable:
            raise bad_request("INVALID_POST_ONLY_ORDER", "post-only order would cross the book")
        fee = ZERO
        if marketable:
            fee = q2(quantity * market.fee_rate * touch * (1 - touch))
        if side == "BUY":
            need = (touch * quantity + fee) if marketable else price * quantity
            if params.order_type == "market" and not marketable:
                need = ZERO
            if need > wallet.cash:
                raise bad_request("INSUFFICIENT_BALANCE", "not enough cash for this order")
        else:
            pos = wallet.positions.get((market.market_id, outcome))
            free = ZERO if pos is None else pos.quantity - pos.reserved
            if quantity > free:
                raise bad_request("INSUFFICIENT_POSITION", "cannot sell more shares than held")
        if not marketable and params.time_in_force == "FOK":
            raise bad_request(
                "FOK_ORDER_NOT_FILLED_ERROR", "order cannot fill in full within its price"
            )
        now = state.clock.stamp()
        order = Order(
            order_id=state.next_order_id(),
            user_id=user.user_id,
            wallet_id=wallet.wallet_id,
            market_id=market.market_id,
            side=side,
            outcome=outcome,
            order_type=params.order_type,
            time_in_force=params.time_in_force,
            quantity=quantity,
            limit_price=price if params.order_type == "limit" else None,
            created_us=now,
            client_order_id=params.client_order_id,
            expiration_us=params.expiration_us,
            amount_interpreted_as=interpreted,
        )
        self._register(user, order)
        wallet.updated_us = now
        if marketable:
            order.spread_bps = int((market.spread / market.mids[outcome] * 10_000).to_integral())
            self._fill(wallet, order, touch, fee, now)
        elif params.order_type == "market" or params.time_in_force in ("IOC", "FOK"):
            order.status = "CANCELLED"
            order.cancelled_us = now
            order.cancelled_reason = "not_marketable"
        else:
            self._rest(wallet, order)
        return order

    def _register(self, user: User, order: Order) -> None:
        """Record a new order (by id, and in the user's creation-ordered list)."""
        self.state.orders[order.order_id] = order
        user.orders.append(order)
        user.order_created.append(order.created_us)

    def _rest(self, wallet: Wallet, order: Order) -> None:
        assert order.limit_price is not None
        if order.side == "BUY":
            order.reserved = order.limit_price * order.quantity
            wallet.cash -= order.reserved
            wallet.reserved += order.reserved
        else:
            wallet.positions[(order.market_id, order.outcome)].reserved += order.quantity
        wallet.pending[order.order_id] = order
        self._resting.setdefault(order.market_id, {})[order.order_id] = order
        if order.expiration_us is not None:
            self._gtd[order.order_id] = order

    def _unreserve(self, wallet: Wallet, order: Order) -> None:
        if order.side == "BUY":
            wallet.cash += order.reserved
            wallet.reserved -= order.reserved
        else:
            pos = wallet.positions.get((order.market_id, order.outcome))
            if pos is not None:
                pos.reserved -= order.quantity
        order.reserved = ZERO
        self._unlist(wallet, order)

    def _unlist(self, wallet: Wallet, order: Order) -> None:
        """Forget ``order`` as resting (wallet, book and GTD index)."""
        wallet.pending.pop(order.order_id, None)
        self._resting.get(order.market_id, {}).pop(order.order_id, None)
        self._gtd.pop(order.order_id, None)

    def cancel(
        self,
        order: Order,
        *,
        reason: str = "user_cancelled",
        status: str = "CANCELLED",
        at_us: int | None = None,
    ) -> None:
        """Cancel (or expire) a resting order and return its reservation."""
        wallet = self.state.wallets[order.wallet_id]
        self._unreserve(wallet, order)
        order.status = status
        order.cancelled_us = self.state.clock.stamp(at_us)
        order.cancelled_reason = reason
        wallet.updated_us = order.cancelled_us

    def cancel_where(
        self,
        wallet: Wallet,
        *,
        market_id: str | None = None,
        outcome: str | None = None,
        reason: str = "user_cancelled",
    ) -> list[int]:
        """Cancel every resting order of a wallet (in one market / outcome); return the ids."""
        picked = [
            order
            for order in sorted(wallet.pending.values(), key=lambda o: o.order_id)
            if (market_id is None or order.market_id == market_id)
            and (outcome is None or order.outcome == outcome)
        ]
        for order in picked:
            self.cancel(order, reason=reason)
        return [order.order_id for order in picked]

    def cancel_batch(self, wallet: Wallet, limit: int) -> int:
        """Cancel up to ``limit`` resting orders of a wallet; return how many remain."""
        for order in list(wallet.pending.values())[:limit]:
            self.cancel(order, reason="account_closed")
        return len(wallet.pending)

    # -- fills -------------------------------------------------------------------------
    def _fill(
        self,
        wallet: Wallet,
        order: Order,
        price: Decimal,
        fee: Decimal,
        at_us: int,
        *,
        taker: bool = True,
    ) -> None:
        quantity = order.quantity
        notional = price * quantity
        key = (order.market_id, order.outcome)
        realized: Decimal | None = None
        if order.side == "BUY":
            if order.reserved:
                wallet.reserved -= order.reserved
                wallet.cash += order.reserved
                order.reserved = ZERO
            wallet.cash -= notional + fee
            pos = wallet.positions.get(key)
            if pos is None:
                pos = wallet.positions[key] = Position(
                    self.state.next_position_id(), order.market_id, order.outcome
                )
            pos.quantity += quantity
            pos.cost += notional
            if fee:
                wallet.realized = (wallet.realized or ZERO) - fee
                pos.realized -= fee
        else:
            pos = wallet.positions[key]
            if order.status == "PENDING" and order.order_id in wallet.pending:
                pos.reserved -= quantity
            removed = pos.cost if quantity == pos.quantity else pos.cost * quantity / pos.quantity
            pos.cost -= removed
            pos.quantity -= quantity
            wallet.cash += notional - fee
            realized = notional - removed - fee
            wallet.realized = (wallet.realized or ZERO) + realized
            pos.realized += realized
            if pos.quantity == 0:
                pos.status = "CLOSED"
                pos.cost = ZERO
                del wallet.positions[key]
                wallet.closed_positions.append(pos)
        self._unlist(wallet, order)
        order.status = "FILLED"
        order.filled_us = at_us
        order.fill_price = price
        order.notional = notional
        order.fee = fee
        wallet.updated_us = at_us
        market = self.state.markets[order.market_id]
        market.last_trade[order.outcome] = price
        market.trades.append((at_us, notional))
        self._record(wallet, order, realized, push=self.settings.push_taker_fills or not taker)

    def fill_new(self, user: User, wallet: Wallet, order: Order, price: Decimal) -> None:
        """Record a freshly built order and fill it at ``price``, no fee, at its creation."""
        self._register(user, order)
        self._fill(wallet, order, price, ZERO, order.created_us)

    def _record(
        self, wallet: Wallet, order: Order, realized: Decimal | None, *, push: bool
    ) -> None:
        assert order.filled_us is not None and order.fill_price is not None
        assert order.notional is not None and order.fee is not None
        price = units(order.fill_price)
        qty = units(order.quantity)
        row = TRADE.make(
            trade_id=order.order_id,
            order_id=order.order_id,
            market_id=order.market_id,
            side=order.side,
            outcome=order.outcome,
            price=price,
            quantity=qty,
            notional=money(order.notional),
            fee=money(order.fee),
            filled_at=format_iso(order.filled_us),
            client_order_id=order.client_order_id,
            realized_pnl=None if realized is None else money(realized),
        )
        wallet.fills.append(
            order.filled_us, order.order_id, order.side, order.market_id, encode(row)
        )
        if push and self.on_fill is not None:
            self.on_fill(
                order.user_id,
                order.order_id,
                order.market_id,
                order.side,
                order.outcome,
                price,
                qty,
                order.filled_us,
            )

    # -- prices and time ---------------------------------------------------------------
    def set_price(self, market: Market, price: Decimal, *, outcome: str | None = None) -> int:
        """Move an outcome's mid (binary markets move the other side to ``1 - price``).

        Returns:
            How many resting orders the new book filled (see :meth:`match`).
        """
        name = outcome or market.outcomes[0]
        market.mids[name] = price
        if len(market.outcomes) == 2:
            other = market.outcomes[1] if name == market.outcomes[0] else market.outcomes[0]
            market.mids[other] = Decimal(1) - price
        now = self.state.clock.now_us()
        filled = self.match(market, now)
        self.moved(market, now)
        return filled

    def moved(self, market: Market, at_us: int) -> None:
        """Record a market's new mids (or state) and report them to ``on_price``."""
        market.record(at_us)
        if self.on_price is not None:
            self.on_price(market)

    def match(self, market: Market, at_us: int) -> int:
        """Fill every resting order of ``market`` the current book crosses; return the count."""
        resting = self._resting.get(market.market_id)
        if not resting:
            return 0
        filled = 0
        for order in sorted(resting.values(), key=lambda o: o.order_id):
            assert order.limit_price is not None
            if order.side == "BUY":
                crossed = market.ask(order.outcome) <= order.limit_price
            else:
                crossed = market.bid(order.outcome) >= order.limit_price
            if crossed:
                wallet = self.state.wallets[order.wallet_id]
                self._fill(
                    wallet,
                    order,
                    order.limit_price,
                    ZERO,
                    self.state.clock.stamp(at_us),
                    taker=False,
                )
                filled += 1
        return filled

    def catch_up(self) -> None:
        """Run every event due by now, in time order: heartbeat lapses, and each hour's
        expiries, random walk, matching and snapshots."""
        now = self.state.clock.now_us()
        while True:
            hour_due = self._next_hour <= now
            for reg in self.heartbeats.pop_lapsed(self._next_hour if hour_due else now):
                self.lapse(reg, reg.expires_us + 1)
            if not hour_due:
                break
            hour = self._next_hour
            self._expire(hour)
            if self.random_walk:
                self._walk(hour)
            self._snapshot(hour)
            self._next_hour += HOUR_US
        self._expire(now)

    def next_event_us(self) -> int:
        """The simulated instant of the next timed event (an hour, or a heartbeat lapse)."""
        expiry = self.heartbeats.next_expiry()
        # A registration lapses once the clock is strictly past its expiry.
        return self._next_hour if expiry is None else min(self._next_hour, expiry + 1)

    def lapse(self, reg: Registration, at_us: int | None = None) -> int:
        """A registration lapsed (at ``at_us``, default now): cancel every pending order
        of its user's account, in every wallet (API.md O8); return how many."""
        user = self.state.users.get(reg.user_id)
        if user is None:
            return 0
        wallets = [self.state.wallets[wallet_id] for wallet_id in user.wallet_ids]
        orders = sorted(
            (order for wallet in wallets for order in wallet.pending.values()),
            key=lambda o: o.order_id,
        )
        for order in orders:
            self.cancel(order, reason="heartbeat_expired", at_us=at_us)
        return len(orders)

    def _expire(self, at_us: int) -> None:
        if not self._gtd:
            return
        for order in list(self._gtd.values()):
            if order.expiration_us is not None and order.expiration_us <= at_us:
                self.cancel(order, reason="gtd_expired", status="EXPIRED")

    def _walk(self, at_us: int) -> None:
        rng = self.state.rng
        for market in self.state.markets.values():
            if market.closed:
                continue
            name = market.outcomes[0]
            step = market.tick * rng.choice((-1, 0, 1))
            low, high = market.tick * 2, Decimal(1) - market.tick * 2
            mid = min(max(market.mids[name] + step, low), high)
            market.mids[name] = mid
            if len(market.outcomes) == 2:
                market.mids[market.outcomes[1]] = Decimal(1) - mid
            self.match(market, at_us)
            self.moved(market, at_us)

    def _snapshot(self, hour_us: int) -> None:
        for wallet in self.state.wallets.values():
            if wallet.created_us > hour_us:
                continue
            value = self.valuation(wallet)
            wallet.snapshots.append(
                (hour_us, wallet.cash + wallet.reserved, value, wallet.starting_balance)
            )

    # -- wallet lifecycle --------------------------------------------------------------
    def reset_wallet(self, wallet: Wallet) -> None:
        """Back to the starting balance; positions end ``CLOSED_BY_RESET``; history is kept."""
        for pos in wallet.positions.values():
            pos.status = "CLOSED_BY_RESET"
            wallet.closed_positions.append(pos)
        wallet.positions.clear()
        wallet.cash = wallet.starting_balance
        wallet.reserved = ZERO
        wallet.realized = None
        wallet.status = "ACTIVE"
        wallet.archived_us = None
        wallet.updated_us = self.state.clock.stamp()
