"""The control operations, shared by :class:`Sandbox` methods and the ``/_sandbox`` routes."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import msgspec

from .._codec import encode
from ..models import AccountState, Order
from ._bulk import generate_fills
from ._core import Core
from ._faults import SHAPES, FaultAction, FaultRule, FrameShape
from ._order_routes import place_for
from ._state import DEFAULT_SCOPES, TIERS, User, Wallet
from ._views import account_state

__all__ = ["Controller", "TenantInfo", "TraderInfo"]

_state_decoder = msgspec.json.Decoder(AccountState)


@dataclass(frozen=True, slots=True)
class TenantInfo:
    """A tenant created through the control API, with its first key."""

    tenant_id: int
    slug: str
    key: str


@dataclass(frozen=True, slots=True)
class TraderInfo:
    """A trader created (or keyed) through the control API."""

    user_id: int
    api_key: str
    api_wallet_id: int


def _dec(value: Decimal | str | int | float) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


class Controller:
    """Control operations; every :class:`Sandbox` has them (see the package docstring)."""

    _core: Core

    @property
    def user_id(self) -> int:
        """The default trader's user id (``api_key`` belongs to it)."""
        return self._core.default_user_id

    @property
    def tenant_id(self) -> int:
        """The default tenant's id (``tenant_key`` belongs to it)."""
        return self._core.default_tenant_id

    # -- identities --------------------------------------------------------------------
    def create_tenant(
        self,
        name: str = "Sandbox Partner",
        *,
        scopes: frozenset[str] | set[str] | None = None,
        enabled: bool = True,
        redirect_domains: tuple[str, ...] | None = None,
    ) -> TenantInfo:
        """Create a tenant with one key (default scopes: all three)."""
        tenant, key = self._core.state.add_tenant(
            name,
            scopes=frozenset(scopes) if scopes is not None else DEFAULT_SCOPES,
            enabled=enabled,
            redirect_domains=redirect_domains,
        )
        return TenantInfo(tenant.tenant_id, tenant.slug, key.key)

    def create_tenant_key(
        self, tenant_id: int, *, scopes: frozenset[str] | set[str] | None = None
    ) -> str:
        """Issue another key for a tenant (e.g. a read-only ``{"accounts:read"}`` key).

        Raises:
            KeyError: unknown tenant.
        """
        if tenant_id not in self._core.state.tenants:
            raise KeyError(f"unknown tenant {tenant_id}")
        key = self._core.state.add_tenant_key(
            tenant_id, scopes=frozenset(scopes) if scopes is not None else DEFAULT_SCOPES
        )
        return key.key

    def set_tenant_enabled(self, tenant_id: int, enabled: bool) -> None:
        """Enable or disable a tenant (a disabled tenant sees 404 everywhere)."""
        self._core.state.tenants[tenant_id].enabled = enabled

    def revoke_key(self, key: str) -> None:
        """Deactivate a tenant or trader key (it then gets 401 INVALID_KEY)."""
        state = self._core.state
        found = state.tenant_keys.get(key) or state.trader_keys.get(key)
        if found is None:
            raise KeyError("unknown key")
        found.active = False

    def create_trader(
        self,
        email: str | None = None,
        *,
        tier: str = "pro",
        permissions: frozenset[str] | set[str] = frozenset({"read", "trade"}),
    ) -> TraderInfo:
        """Create a native trader with a ``ps_live_`` key and an API wallet at the tier baseline."""
        state = self._core.state
        user, _ = state.user_for_email(email or f"trader{state.hex(8)}@sandbox.local")
        return self.create_trader_key(user.user_id, tier=tier, permissions=permissions)

    def create_trader_key(
        self,
        user_id: int,
        *,
        tier: str = "pro",
        permissions: frozenset[str] | set[str] = frozenset({"read", "trade"}),
    ) -> TraderInfo:
        """Issue a trader key for any user (e.g. one registered by a partner).

        Raises:
            KeyError: unknown user. ValueError: unknown tier.
        """
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}")
        user = self._core.state.users[user_id]
        key = self._core.state.add_trader_key(user, tier=tier, permissions=frozenset(permissions))
        assert user.api_wallet_id is not None
        return TraderInfo(user.user_id, key.key, user.api_wallet_id)

    # -- markets and time --------------------------------------------------------------
    def create_market(
        self,
        *,
        market_id: str | None = None,
        question: str = "Sandbox market?",
        outcomes: tuple[str, ...] = ("Yes", "No"),
        price: Decimal | str = "0.50",
        spread: Decimal | str = "0.02",
        tick: Decimal | str = "0.01",
        min_size: Decimal | str = "5",
        fee_rate: Decimal | str = "0",
    ) -> str:
        """List a market and return its id (a ``0x`` condition id unless given)."""
        market = self._core.state.add_market(
            market_id=market_id,
            question=question,
            outcomes=outcomes,
            price=_dec(price),
            spread=_dec(spread),
            tick=_dec(tick),
            min_size=_dec(min_size),
            fee_rate=_dec(fee_rate),
        )
        return market.market_id

    @property
    def market_ids(self) -> list[str]:
        """Every market id, in creation order."""
        return list(self._core.state.markets)

    def set_price(self, market_id: str, price: Decimal | str, *, outcome: str | None = None) -> int:
        """Move an outcome's mid (default the first outcome) and fill crossed resting orders.

        Returns:
            How many resting orders filled.
        """
        market = self._core.state.markets[market_id]
        return self._core.exchange.set_price(market, _dec(price), outcome=outcome)

    def set_market_closed(self, market_id: str, closed: bool = True) -> None:
        """Close a market (orders then get 400 MARKET_CLOSED) or reopen it."""
        self._core.state.markets[market_id].closed = closed

    def now(self) -> datetime:
        """The current simulated instant."""
        return self._core.clock.now()

    def advance(
        self, seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0
    ) -> datetime:
        """Jump the clock forward, running every hourly event on the way; return the new now."""
        total = seconds + 60 * minutes + 3600 * hours + 86400 * days
        self._core.clock.advance(total)
        self._core.exchange.catch_up()
        return self._core.clock.now()

    # -- trading -----------------------------------------------------------------------
    def _target(
        self, account_id: str | None, wallet_id: int | None, user_id: int | None
    ) -> tuple[User, Wallet]:
        state = self._core.state
        if account_id is not None:
            wallet = state.accounts[account_id].wallet
        elif wallet_id is not None:
            wallet = state.wallets[wallet_id]
        else:
            user = state.users[user_id if user_id is not None else self.user_id]
            if user.api_wallet_id is None:
                raise KeyError(f"user {user.user_id} has no API wallet")
            wallet = state.wallets[user.api_wallet_id]
        return state.users[wallet.user_id], wallet

    async def place_order(
        self,
        *,
        account_id: str | None = None,
        wallet_id: int | None = None,
        user_id: int | None = None,
        idempotency_key: str | None = None,
        **order: Any,
    ) -> Order:
        """Place an order as the wallet's trader, with the same rules as ``POST /v1/orders``.

        ``order`` holds the wire fields (``market_id``, ``side``, ``outcome``,
        ``quantity``/``amount``, ``price``, ``order_type``, ``time_in_force``, ...);
        decimals may be ``Decimal``, ``str`` or numbers. The target is the partner
        account, else the wallet, else the user's (default: the default trader's)
        API wallet.

        Raises:
            ApiError: the order is refused (same status and code as over HTTP).
            KeyError: unknown account, wallet or user.
        """
        user, wallet = self._target(account_id, wallet_id, user_id)
        data = msgspec.json.decode(encode(order))
        return await place_for(self._core, user, wallet.wallet_id, data, idempotency_key)

    async def place_resting_orders(
        self,
        count: int,
        *,
        account_id: str | None = None,
        wallet_id: int | None = None,
        user_id: int | None = None,
        market_id: str | None = None,
        price: Decimal | str = "0.01",
        quantity: Decimal | str = "5",
    ) -> list[int]:
        """Rest ``count`` non-marketable limit BUYs (for close/reset drain tests); return ids."""
        mid = market_id or self.market_ids[0]
        outcome = self._core.state.markets[mid].outcomes[0]
        ids = []
        for _ in range(count):
            placed = await self.place_order(
                account_id=account_id,
                wallet_id=wallet_id,
                user_id=user_id,
                market_id=mid,
                side="BUY",
                outcome=outcome,
                order_type="limit",
                price=str(price),
                quantity=str(quantity),
            )
            ids.append(placed.order_id)
        return ids

    def generate_fills(
        self,
        count: int,
        *,
        account_id: str | None = None,
        wallet_id: int | None = None,
        user_id: int | None = None,
        market_id: str | None = None,
        push: bool = False,
    ) -> int:
        """Append ``count`` synthetic fills to a wallet's feed fast; return the first order id."""
        user, wallet = self._target(account_id, wallet_id, user_id)
        return generate_fills(self._core, user, wallet, count, market_id=market_id, push=push)

    def account_state(self, account_id: str) -> AccountState:
        """The P5 envelope of any account, decoded (no auth, no rate limit)."""
        account = self._core.state.accounts[account_id]
        return _state_decoder.decode(encode(account_state(self._core.exchange, account)))

    # -- outbox --------------------------------------------------------------------------
    def outbox(self) -> list[dict[str, Any]]:
        """Every login-link email "sent" so far (oldest first): user_id, email, link, ..."""
        return [dict(m) for m in self._core.state.outbox]

    def clear_outbox(self) -> None:
        """Forget the recorded emails."""
        self._core.state.outbox.clear()

    # -- faults and knobs ----------------------------------------------------------------
    def add_fault(
        self,
        path: str,
        action: FaultAction = "error",
        *,
        method: str | None = None,
        times: int | None = 1,
        status: int = 500,
        code: str = "INTERNAL_ERROR",
        message: str = "injected fault",
        retry_after: int | None = None,
        delay: float = 0.0,
    ) -> None:
        """Install an HTTP fault rule (see :mod:`._faults`); ``path`` is a glob."""
        self._core.faults.add(
            FaultRule(path, action, method, times, status, code, message, retry_after, delay)
        )

    def fail_next(
        self,
        path: str,
        *,
        status: int = 500,
        code: str = "INTERNAL_ERROR",
        message: str = "injected fault",
        retry_after: int | None = None,
        times: int = 1,
        method: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with an error envelope, not acting."""
        self.add_fault(
            path,
            "error",
            method=method,
            times=times,
            status=status,
            code=code,
            message=message,
            retry_after=retry_after,
        )

    def add_latency(
        self, path: str, delay: float, *, times: int | None = None, method: str | None = None
    ) -> None:
        """Delay matching requests by ``delay`` real seconds."""
        self.add_fault(path, "latency", method=method, times=times, delay=delay)

    def send_malformed(self, path: str, *, times: int = 1, method: str | None = None) -> None:
        """Answer matching requests 200 with invalid JSON, not acting."""
        self.add_fault(path, "malformed", method=method, times=times)

    def abort_next(
        self, path: str, *, after: bool = False, times: int = 1, method: str | None = None
    ) -> None:
        """Drop the connection of matching requests; with ``after`` the server acts first."""
        self.add_fault(path, "abort_after" if after else "abort_before", method=method, times=times)

    def clear_faults(self) -> None:
        """Remove every HTTP and WebSocket fault."""
        self._core.faults.clear()
        self._core.ws_faults.after_frames = None
        self._core.ws_faults.chaos = 0.0
        self._core.ws_faults.malformed = 0
        self._core.ws_faults.shape = "fill"

    def ws_drop_after(
        self, frames: int, *, mode: Literal["close", "abort"] = "close", code: int = 1011
    ) -> None:
        """Close (with ``code``) or abort every executions socket after ``frames`` fill frames."""
        self._core.ws_faults.after_frames = frames
        self._core.ws_faults.mode = mode
        self._core.ws_faults.close_code = code

    def ws_chaos(self, probability: float, *, seed: int = 0) -> None:
        """Abort executions sockets at random fill frames (seeded)."""
        self._core.ws_faults.chaos = probability
        self._core.ws_faults.rng = random.Random(seed)

    def ws_send_malformed(self, count: int = 1) -> None:
        """Send an invalid JSON text frame before each of the next ``count`` fill frames."""
        self._core.ws_faults.malformed = count

    def set_fill_frame_shape(self, shape: FrameShape) -> None:
        """``fill`` (current), ``execution_nested`` or ``execution_flat`` (API.md §10.3)."""
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)}")
        self._core.ws_faults.shape = shape

    def expire_ws_tokens(self) -> int:
        """Expire every WebSocket token now; return how many there were."""
        tokens = self._core.ws_tokens
        now = self._core.clock.now_us()
        for token, (user_id, tier, _) in list(tokens.items()):
            tokens[token] = (user_id, tier, now)
        return len(tokens)

    def configure(
        self,
        *,
        bulk_cancel_limit: int | None = None,
        rate_limits: bool | None = None,
        push_taker_fills: bool | None = None,
        order_delay: float | None = None,
        random_walk: bool | None = None,
        partner_limits: tuple[int, int] | None = None,
    ) -> None:
        """Change run-time knobs (``None`` leaves one as it is).

        ``partner_limits`` is ``(per_second, per_minute)`` for the partner windows
        (documented default ``(50, 3000)``).
        """
        settings = self._core.settings
        if bulk_cancel_limit is not None:
            if bulk_cancel_limit < 1:
                raise ValueError("bulk_cancel_limit must be positive")
            settings.bulk_cancel_limit = bulk_cancel_limit
        if rate_limits is not None:
            settings.rate_limits = rate_limits
        if push_taker_fills is not None:
            settings.push_taker_fills = push_taker_fills
        if order_delay is not None:
            settings.order_delay = order_delay
        if random_walk is not None:
            self._core.exchange.random_walk = random_walk
        if partner_limits is not None:
            per_second, per_minute = partner_limits
            if per_second < 1 or per_minute < 1:
                raise ValueError("partner limits must be positive")
            self._core.partner_limiter.per_second = per_second
            self._core.partner_limiter.per_minute = per_minute
