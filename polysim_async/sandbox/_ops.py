"""The control operations, shared by :class:`Sandbox` methods and the ``/_sandbox`` routes.

Every operation checks its arguments' values and raises ``ValueError`` naming the
argument (the HTTP control API answers ``422 CONTROL_INVALID`` with that message)
or ``KeyError`` for an unknown id (``404 CONTROL_NOT_FOUND``). Answers that mirror an
API answer (``place_order``, ``account_state``) are the JSON bodies the API would
send, as dicts: the sandbox never speaks in the client's models.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import msgspec

from ._bulk import generate_fills
from ._clock import format_iso_z
from ._core import Core
from ._faults import ACTIONS, SHAPES, FaultAction, FaultRule, FrameShape
from ._json import encode
from ._resolution import resolve_market
from ._state import DEFAULT_SCOPES, TIERS, WALLET_KINDS, User, Wallet
from ._trading import place_order
from ._views import account_state

__all__ = ["Controller", "TenantInfo", "TraderInfo"]

_SCOPES = frozenset(DEFAULT_SCOPES)
_PERMISSIONS = frozenset({"read", "trade"})
#: Largest single ``advance``: every simulated hour on the way runs its events.
MAX_ADVANCE_DAYS = 400
MAX_GENERATED_FILLS = 10_000_000
MAX_RESTING_ORDERS = 10_000
MAX_DELAY = 60.0


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


def _decimal(
    name: str,
    value: Decimal | str | int | float,
    *,
    low: Decimal | None = None,
    high: Decimal | None = None,
    open_low: bool = False,
    open_high: bool = False,
) -> Decimal:
    """``value`` as a finite Decimal within bounds.

    Raises:
        ValueError: naming ``name``.
    """
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a decimal number, not a boolean")
    try:
        number = (
            value
            if isinstance(value, Decimal)
            else Decimal(value if isinstance(value, int) else str(value))
        )
    except (InvalidOperation, ValueError, TypeError):
        raise ValueError(f"{name} must be a decimal number, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{name} must be a finite number")
    if low is not None and (number < low or (open_low and number == low)):
        raise ValueError(f"{name} must be {'above' if open_low else 'at least'} {low}")
    if high is not None and (number > high or (open_high and number == high)):
        raise ValueError(f"{name} must be {'below' if open_high else 'at most'} {high}")
    return number


def _count(name: str, value: int, low: int, high: int) -> int:
    """``value`` as an int within ``low..high``.

    Raises:
        ValueError: naming ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}")
    return value


def _amount(name: str, value: float, high: float, unit: str = "seconds") -> float:
    """``value`` as a finite number within ``0..high`` (of ``unit``).

    Raises:
        ValueError: naming ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of {unit}")
    if not (math.isfinite(value) and 0 <= value <= high):
        raise ValueError(f"{name} must be from 0 to {high:g} {unit}")
    return float(value)


def _subset(
    name: str, values: frozenset[str] | set[str], allowed: frozenset[str]
) -> frozenset[str]:
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"{name} must be drawn from {', '.join(sorted(allowed))}")
    return frozenset(values)


class Controller:
    """Control operations; every :class:`Sandbox` has them (see the package docstring)."""

    _core: Core

    @property
    def tenant_key(self) -> str:
        """The default tenant's key (all three scopes)."""
        return self._core.default_tenant_key

    @property
    def api_key(self) -> str:
        """The default trader's ``ps_live_`` key (read and trade)."""
        return self._core.default_api_key

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
        """Create a tenant with one key (default scopes: all three).

        Raises:
            ValueError: an empty name or an unknown scope.
        """
        if not name.strip():
            raise ValueError("name must not be empty")
        tenant, key = self._core.state.add_tenant(
            name,
            scopes=_subset("scopes", scopes, _SCOPES) if scopes is not None else DEFAULT_SCOPES,
            enabled=enabled,
            redirect_domains=tuple(d.lower() for d in redirect_domains)
            if redirect_domains is not None
            else None,
        )
        return TenantInfo(tenant.tenant_id, tenant.slug, key.key)

    def create_tenant_key(
        self, tenant_id: int, *, scopes: frozenset[str] | set[str] | None = None
    ) -> str:
        """Issue another key for a tenant (e.g. a read-only ``{"accounts:read"}`` key).

        Raises:
            KeyError: unknown tenant. ValueError: an unknown scope.
        """
        if tenant_id not in self._core.state.tenants:
            raise KeyError(f"unknown tenant {tenant_id}")
        chosen = _subset("scopes", scopes, _SCOPES) if scopes is not None else DEFAULT_SCOPES
        return self._core.state.add_tenant_key(tenant_id, scopes=chosen).key

    def set_tenant_enabled(self, tenant_id: int, enabled: bool) -> None:
        """Enable or disable a tenant (a disabled tenant sees 404 everywhere).

        Raises:
            KeyError: unknown tenant.
        """
        if tenant_id not in self._core.state.tenants:
            raise KeyError(f"unknown tenant {tenant_id}")
        self._core.state.tenants[tenant_id].enabled = enabled

    def set_tier(self, tier: str, *, user_id: int | None = None) -> None:
        """Move a trader (default: the default trader) and every key of theirs to ``tier``.

        The plan decides paid features (exports, resets, SANDBOX wallets) and the
        baseline of the next API-wallet reset; a key's tier decides its rate
        limits, batch size and WebSocket connections (tokens minted before keep
        their tier).

        Raises:
            KeyError: unknown user. ValueError: unknown tier.
        """
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}")
        user = self._core.state.users[self.user_id if user_id is None else user_id]
        user.tier = tier
        for key in user.keys:
            key.tier = tier

    def create_wallet(
        self,
        *,
        user_id: int | None = None,
        kind: str = "SANDBOX",
        label: str | None = None,
        balance: Decimal | str | None = None,
    ) -> int:
        """Open a wallet of any kind for a trader (default: the default trader), beyond
        what ``POST /v1/me/wallets`` allows (no plan cap, any kind); return its id.

        ``balance`` defaults to the plan's baseline.

        Raises:
            KeyError: unknown user. ValueError: an unknown kind, a label over 255
                characters, or a negative balance.
        """
        user = self._core.state.users[self.user_id if user_id is None else user_id]
        name = kind.upper()
        if name not in WALLET_KINDS:
            raise ValueError(f"kind must be one of {', '.join(WALLET_KINDS)}")
        if label is not None and len(label) > 255:
            raise ValueError("label must be at most 255 characters long")
        amount = (
            TIERS[user.tier].baseline
            if balance is None
            else _decimal("balance", balance, low=Decimal(0))
        )
        return self._core.state.add_wallet(user, name, amount, label=label).wallet_id

    def revoke_key(self, key: str) -> None:
        """Deactivate a tenant or trader key (it then gets 401 INVALID_KEY).

        Raises:
            KeyError: unknown key.
        """
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
        """Create a native trader with a ``ps_live_`` key and an API wallet at the tier baseline.

        Raises:
            ValueError: a bad email, tier or permission.
        """
        state = self._core.state
        if email is not None and (not 3 <= len(email) <= 320 or "@" not in email):
            raise ValueError("email must be an email address")
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
            KeyError: unknown user. ValueError: unknown tier or permission.
        """
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}")
        perms = _subset("permissions", permissions, _PERMISSIONS)
        user = self._core.state.users[user_id]
        key = self._core.state.add_trader_key(user, tier=tier, permissions=perms)
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
        slug: str | None = None,
        category: str = "general",
        volume: Decimal | str = "0",
    ) -> str:
        """List a market and return its id (a ``0x`` condition id unless given).

        ``slug`` defaults to the question's words; ``category`` and ``volume`` (its
        listed volume before any sandbox fill, for ``hot_only`` and the ordering
        of ``GET /v1/markets``) feed the market-data routes.

        Raises:
            ValueError: a taken or empty id or slug, fewer than two or repeated
                outcomes, or a number out of range (``price`` in (0, 1), ``spread``
                in [0, 1), ``tick`` in (0, 0.1], ``min_size`` > 0, ``fee_rate`` in
                [0, 1], ``volume`` >= 0).
        """
        state = self._core.state
        if market_id is not None and not 1 <= len(market_id) <= 256:
            raise ValueError("market_id must be 1 to 256 characters long")
        if market_id in state.markets:
            raise ValueError(f"market_id {market_id} already exists")
        if slug is not None and (not 1 <= len(slug) <= 256 or "/" in slug):
            raise ValueError("slug must be 1 to 256 characters long, without '/'")
        if slug in state.slugs:
            raise ValueError(f"slug {slug} already exists")
        if not 1 <= len(category) <= 100:
            raise ValueError("category must be 1 to 100 characters long")
        names = tuple(outcomes)
        if len(names) < 2 or len({o.lower() for o in names}) != len(names):
            raise ValueError("outcomes must hold at least two distinct labels")
        if not all(1 <= len(o) <= 200 for o in names):
            raise ValueError("outcomes must be 1 to 200 characters long")
        zero, one = Decimal(0), Decimal(1)
        market = state.add_market(
            market_id=market_id,
            question=question,
            outcomes=names,
            price=_decimal("price", price, low=zero, high=one, open_low=True, open_high=True),
            spread=_decimal("spread", spread, low=zero, high=one, open_high=True),
            tick=_decimal("tick", tick, low=zero, high=Decimal("0.1"), open_low=True),
            min_size=_decimal("min_size", min_size, low=zero, open_low=True),
            fee_rate=_decimal("fee_rate", fee_rate, low=zero, high=one),
            slug=slug,
            category=category,
            volume=_decimal("volume", volume, low=zero),
        )
        return market.market_id

    @property
    def market_ids(self) -> list[str]:
        """Every market id, in creation order."""
        return list(self._core.state.markets)

    @property
    def market_id(self) -> str:
        """The first market's id."""
        return self.market_ids[0]

    def markets(self) -> list[dict[str, Any]]:
        """Every market with its outcomes, mids, bids and asks (decimal strings)."""
        return [
            {
                "market_id": m.market_id,
                "question": m.question,
                "outcomes": list(m.outcomes),
                "closed": m.closed,
                "mids": {o: str(p) for o, p in m.mids.items()},
                "bids": {o: str(m.bid(o)) for o in m.outcomes},
                "asks": {o: str(m.ask(o)) for o in m.outcomes},
            }
            for m in self._core.state.markets.values()
        ]

    def set_price(self, market_id: str, price: Decimal | str, *, outcome: str | None = None) -> int:
        """Move an outcome's mid (default the first outcome) and fill crossed resting orders.

        Returns:
            How many resting orders filled.

        Raises:
            KeyError: unknown market. ValueError: a price outside (0, 1) or an unknown outcome.
        """
        market = self._core.state.markets[market_id]
        value = _decimal(
            "price", price, low=Decimal(0), high=Decimal(1), open_low=True, open_high=True
        )
        name = None
        if outcome is not None:
            name = market.outcome_name(outcome)
            if name is None:
                raise ValueError(f"outcome must be one of {', '.join(market.outcomes)}")
        return self._core.exchange.set_price(market, value, outcome=name)

    def set_market_closed(self, market_id: str, closed: bool = True) -> None:
        """Close a market (orders then get 400 MARKET_CLOSED) or reopen it.

        Raises:
            KeyError: unknown market. ValueError: reopening a resolved market.
        """
        market = self._core.state.markets[market_id]
        if market.resolved and not closed:
            raise ValueError("a resolved market stays closed")
        if market.closed != closed:
            market.closed = closed
            self._core.exchange.moved(market, self._core.clock.now_us())

    def resolve_market(self, market_id: str, winner: str | None = None) -> int:
        """Resolve a market: settle every position in it and close it for good.

        Each share of ``winner`` pays 1 and the others 0; with no winner the
        market splits (every share pays ``1 / outcomes``). Resting orders in it are
        cancelled, positions close with a settlement (``GET
        /v1/account/settlements``), and price sockets get the final prices.

        Returns:
            How many positions were settled.

        Raises:
            KeyError: unknown market. ValueError: an unknown outcome, or resolved already.
        """
        market = self._core.state.markets[market_id]
        name = None
        if winner is not None:
            name = market.outcome_name(winner)
            if name is None:
                raise ValueError(f"winner must be one of {', '.join(market.outcomes)}")
        return resolve_market(self._core.exchange, market, name)

    def now(self) -> datetime:
        """The current simulated instant."""
        return self._core.clock.now()

    def advance(
        self, seconds: float = 0, *, minutes: float = 0, hours: float = 0, days: float = 0
    ) -> datetime:
        """Jump the clock forward, running every hourly event on the way; return the new now.

        Raises:
            ValueError: a negative or non-finite amount, or more than 400 days at once.
        """
        limit = MAX_ADVANCE_DAYS * 86400
        total = 0.0
        for name, value, unit in (
            ("seconds", seconds, 1),
            ("minutes", minutes, 60),
            ("hours", hours, 3600),
            ("days", days, 86400),
        ):
            total += _amount(name, value, limit / unit, name) * unit
        if total > limit:
            raise ValueError(f"advance at most {MAX_ADVANCE_DAYS} days at once")
        self._core.clock.advance(total)
        self._core.exchange.catch_up()
        self._core.wake.set()  # the timed-event loop waits for an event that may be due now
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
    ) -> dict[str, Any]:
        """Place an order as the wallet's trader, with the same rules as ``POST /v1/orders``.

        ``order`` holds the wire fields (``market_id``, ``side``, ``outcome``,
        ``quantity``/``amount``, ``price``, ``order_type``, ``time_in_force``, ...);
        decimals may be ``Decimal``, ``str`` or numbers. The target is the partner
        account, else the wallet, else the user's (default: the default trader's)
        API wallet.

        Returns:
            The ``OrderResponse`` body the API would send, as a dict (money as strings).

        Raises:
            ApiError: the order is refused (same status and code as over HTTP).
            KeyError: unknown account, wallet or user.
        """
        user, wallet = self._target(account_id, wallet_id, user_id)
        data = msgspec.json.decode(encode(order))
        return await place_order(self._core, user, wallet.wallet_id, data, idempotency_key)

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
        """Rest ``count`` non-marketable limit BUYs (for close/reset drain tests); return ids.

        Raises:
            ValueError: ``count`` outside 1..10,000. ApiError, KeyError: as :meth:`place_order`.
        """
        _count("count", count, 1, MAX_RESTING_ORDERS)
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
            ids.append(placed["order_id"])
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
        """Append ``count`` synthetic fills to a wallet's feed fast; return the first order id.

        Raises:
            ValueError: ``count`` outside 1..10,000,000, an unknown market, or no cash
                for the odd last BUY. KeyError: unknown account, wallet or user.
        """
        _count("count", count, 1, MAX_GENERATED_FILLS)
        user, wallet = self._target(account_id, wallet_id, user_id)
        return generate_fills(self._core, user, wallet, count, market_id=market_id, push=push)

    def account_state(self, account_id: str) -> dict[str, Any]:
        """The P5 envelope of any account as the API would send it (no auth, no rate limit).

        Raises:
            KeyError: unknown account.
        """
        account = self._core.state.accounts[account_id]
        body = encode(account_state(self._core.exchange, account))
        return msgspec.json.decode(body, type=dict[str, Any])

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
        """Install an HTTP fault rule (see :mod:`._faults`); ``path`` is a glob.

        Raises:
            ValueError: an unknown action, ``times`` < 1, ``status`` outside 400..599,
                ``retry_after`` outside 0..86,400 or ``delay`` outside 0..60 s.
        """
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
        if times is not None:
            _count("times", times, 1, 1_000_000)
        _count("status", status, 400, 599)
        if retry_after is not None:
            _count("retry_after", retry_after, 0, 86_400)
        rule = FaultRule(
            path,
            action,
            None if method is None else method.upper(),
            times,
            status,
            code,
            message,
            retry_after,
            _amount("delay", delay, MAX_DELAY),
        )
        self._core.faults.add(rule)

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

    def fault_rules(self) -> list[dict[str, Any]]:
        """The active HTTP fault rules, oldest first."""
        return [dataclasses.asdict(rule) for rule in self._core.faults.rules]

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
        """Close (with ``code``) or abort every socket after ``frames`` pushed frames
        (fills on the executions socket; prices and replies on the price socket).

        Raises:
            ValueError: ``frames`` < 1, an unknown mode, or a code a server may not send.
        """
        _count("frames", frames, 1, 1_000_000_000)
        if mode not in ("close", "abort"):
            raise ValueError("mode must be close or abort")
        if _count("code", code, 1000, 4999) in (1004, 1005, 1006, 1015) or 1015 < code < 3000:
            raise ValueError("code must be a close code a server may send (1000-1014, 3000-4999)")
        self._core.ws_faults.after_frames = frames
        self._core.ws_faults.mode = mode
        self._core.ws_faults.close_code = code

    def ws_chaos(self, probability: float, *, seed: int = 0) -> None:
        """Abort sockets at random pushed frames (seeded).

        Raises:
            ValueError: ``probability`` outside 0..1.
        """
        if isinstance(probability, bool) or not 0 <= probability <= 1:
            raise ValueError("probability must be from 0 to 1")
        self._core.ws_faults.chaos = float(probability)
        self._core.ws_faults.rng = random.Random(seed)

    def ws_send_malformed(self, count: int = 1) -> None:
        """Send an invalid JSON text frame before each of the next ``count`` pushed frames."""
        self._core.ws_faults.malformed = _count("count", count, 0, 1_000_000_000)

    def set_fill_frame_shape(self, shape: FrameShape) -> None:
        """``fill`` (current), ``execution_nested`` or ``execution_flat`` (API.md §10.3)."""
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)}")
        self._core.ws_faults.shape = shape

    # -- the dead-man's switch -----------------------------------------------------------
    def heartbeats(self) -> list[dict[str, Any]]:
        """Every live heartbeat registration: user, label, interval, last beat, expiry."""
        return [
            {
                "user_id": r.user_id,
                "client_label": r.label,
                "interval_ms": r.interval_ms,
                "last_beat_at": format_iso_z(r.beat_us),
                "expires_at_ms": r.expires_us // 1000,
            }
            for r in self._core.exchange.heartbeats.registrations()
        ]

    def lapse_heartbeats(self, *, user_id: int | None = None) -> int:
        """Lapse every registration (of one user) now, as if its beats had stopped.

        Returns:
            How many pending orders the lapses cancelled.

        Raises:
            KeyError: unknown user.
        """
        if user_id is not None and user_id not in self._core.state.users:
            raise KeyError(f"unknown user {user_id}")
        exchange = self._core.exchange
        return sum(exchange.lapse(r) for r in exchange.heartbeats.drop(user_id))

    def expire_ws_tokens(self) -> int:
        """Expire every WebSocket token now; return how many there were."""
        return self._core.tokens.expire_all()

    def configure(
        self,
        *,
        bulk_cancel_limit: int | None = None,
        rate_limits: bool | None = None,
        push_taker_fills: bool | None = None,
        order_delay: float | None = None,
        random_walk: bool | None = None,
        partner_limits: tuple[int, int] | None = None,
        export_row_cap: int | None = None,
    ) -> None:
        """Change run-time knobs (``None`` leaves one as it is).

        ``order_delay`` holds each placement's idempotency key in flight for that
        many real seconds (0..60). ``partner_limits`` is ``(per_second, per_minute)``
        for the partner windows (documented default ``(50, 3000)``).
        ``export_row_cap`` is how many rows a CSV export holds before its
        ``# truncated`` line (default 10,000).

        Raises:
            ValueError: a value out of range.
        """
        settings = self._core.settings
        if bulk_cancel_limit is not None:
            settings.bulk_cancel_limit = _count("bulk_cancel_limit", bulk_cancel_limit, 1, 10**9)
        if partner_limits is not None:
            per_second, per_minute = partner_limits
            _count("partner_limits per second", per_second, 1, 10**9)
            _count("partner_limits per minute", per_minute, 1, 10**9)
            self._core.partner_limiter.per_second = per_second
            self._core.partner_limiter.per_minute = per_minute
        if order_delay is not None:
            settings.order_delay = _amount("order_delay", order_delay, MAX_DELAY)
        if export_row_cap is not None:
            settings.export_row_cap = _count("export_row_cap", export_row_cap, 1, 10**7)
        if rate_limits is not None:
            settings.rate_limits = rate_limits
        if push_taker_fills is not None:
            settings.push_taker_fills = push_taker_fills
        if random_walk is not None:
            self._core.exchange.random_walk = random_walk
