"""The sandbox's in-memory state: tenants, users, keys, wallets, markets and orders.

Plain slotted records plus one :class:`SandboxState` registry that owns the id
counters and the seeded random generator, so a seed reproduces every id and key.
Business rules (matching, P&L) live in :mod:`._exchange`; this module only stores.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from array import array
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ._clock import SandboxClock
from ._feed import FillIndex

__all__ = [
    "DEFAULT_SCOPES",
    "TIERS",
    "Market",
    "Order",
    "PartnerAccount",
    "Position",
    "SandboxState",
    "Settlement",
    "Tenant",
    "TenantKey",
    "TenantUser",
    "Tier",
    "TraderKey",
    "WALLET_KINDS",
    "User",
    "Wallet",
]

#: The scope set a tenant key gets unless told otherwise (API.md §2.1).
DEFAULT_SCOPES = frozenset({"users:write", "accounts:write", "accounts:read"})
ZERO = Decimal(0)
#: Every wallet kind the docs name (API.md §4.4).
WALLET_KINDS = ("MAIN", "API", "SANDBOX", "COMPETITION", "PROP_FIRM")


@dataclass(frozen=True, slots=True)
class Tier:
    """Per-key trader limits of one tier (API.md §7.2, the rate-limits page)."""

    name: str
    per_second: int
    per_minute: int
    ws_connections: int
    max_batch: int
    baseline: Decimal


TIERS: dict[str, Tier] = {
    "free": Tier("free", 2, 120, 1, 1, Decimal("100.00")),
    "pro": Tier("pro", 10, 600, 3, 5, Decimal("10000.00")),
    "pro_plus": Tier("pro_plus", 30, 1800, 10, 10, Decimal("25000.00")),
    "enterprise": Tier("enterprise", 100, 6000, 50, 25, Decimal("10000.00")),
}


@dataclass(slots=True)
class Tenant:
    """A partner firm; its keys act on its own users and accounts only."""

    tenant_id: int
    slug: str
    display_name: str
    enabled: bool = True
    redirect_domains: tuple[str, ...] | None = None
    users_by_ext: dict[str, TenantUser] = field(default_factory=dict)
    users_by_id: dict[int, TenantUser] = field(default_factory=dict)
    accounts_by_ext: dict[str, PartnerAccount] = field(default_factory=dict)


@dataclass(slots=True)
class TenantKey:
    """A tenant (partner) API key and its scopes."""

    key: str
    tenant_id: int
    scopes: frozenset[str]
    active: bool = True


@dataclass(slots=True)
class TraderKey:
    """A trader ``ps_live_`` key: owner, tier and permissions (``read``/``trade``).

    ``expires_us`` is set on the old half of a rotated key (24 h of overlap);
    a key past it is refused like a revoked one.
    """

    key: str
    user_id: int
    tier: str
    permissions: frozenset[str]
    key_id: int = 0
    name: str = "default"
    created_us: int = 0
    expires_us: int | None = None
    active: bool = True

    def usable(self, now_us: int) -> bool:
        """Whether the key authenticates at ``now_us`` (active, not past its expiry)."""
        return self.active and (self.expires_us is None or now_us < self.expires_us)


@dataclass(slots=True)
class TenantUser:
    """The mapping of a native user into one tenant (P1)."""

    tenant_user_id: str
    tenant_id: int
    external_id: str
    user_id: int
    email: str
    metadata: dict[str, Any] | None


@dataclass(slots=True)
class Market:
    """A binary (or named-outcome) market; each outcome has a mid price, bid = mid - spread/2.

    ``history`` holds every mid an outcome took (``(instant, mid)``, oldest first:
    one at listing, one per move, one per hourly walk step) for the candles;
    ``trades`` every fill's ``(instant, notional)`` for the volumes.
    """

    market_id: str
    question: str
    outcomes: list[str]
    mids: dict[str, Decimal]
    spread: Decimal
    tick: Decimal
    min_size: Decimal
    fee_rate: Decimal
    closed: bool = False
    slug: str = ""
    category: str = "general"
    token_ids: dict[str, str] = field(default_factory=dict)
    created_us: int = 0
    updated_us: int = 0
    base_volume: Decimal = ZERO
    history: dict[str, list[tuple[int, Decimal]]] = field(default_factory=dict)
    last_trade: dict[str, Decimal] = field(default_factory=dict)
    trades: list[tuple[int, Decimal]] = field(default_factory=list)
    resolved: bool = False
    #: The winning outcome of a resolved market (``None`` for a split).
    resolved_outcome: str | None = None

    def outcome_name(self, outcome: str) -> str | None:
        """The canonical outcome label matching ``outcome`` case-insensitively."""
        low = outcome.lower()
        for name in self.outcomes:
            if name.lower() == low:
                return name
        return None

    def bid(self, outcome: str) -> Decimal:
        """Best bid of an outcome (where a SELL fills)."""
        return self.mids[outcome] - self.spread / 2

    def ask(self, outcome: str) -> Decimal:
        """Best ask of an outcome (where a BUY fills)."""
        return self.mids[outcome] + self.spread / 2

    def record(self, at_us: int) -> None:
        """Note every outcome's current mid in the price history."""
        self.updated_us = at_us
        for name, mid in self.mids.items():
            self.history.setdefault(name, []).append((at_us, mid))


@dataclass(slots=True)
class Position:
    """Shares of one outcome held in one wallet; ``cost`` is the exact remaining basis."""

    position_id: int
    market_id: str
    outcome: str
    quantity: Decimal = ZERO
    cost: Decimal = ZERO
    reserved: Decimal = ZERO
    status: str = "OPEN"
    #: P&L realised on this position so far (sells, fees, settlement).
    realized: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Settlement:
    """A position closed by its market's resolution (``GET /v1/account/settlements``)."""

    position_id: int
    wallet_id: int
    market_id: str
    outcome: str
    quantity: Decimal
    cost_basis: Decimal
    payout_per_share: Decimal
    result: str
    settled_us: int

    @property
    def payout(self) -> Decimal:
        """What the position paid."""
        return self.quantity * self.payout_per_share


@dataclass(slots=True)
class Order:
    """One order (market or limit) of one wallet."""

    order_id: int
    user_id: int
    wallet_id: int
    market_id: str
    side: str
    outcome: str
    order_type: str
    time_in_force: str
    quantity: Decimal
    limit_price: Decimal | None
    created_us: int
    client_order_id: str | None = None
    status: str = "PENDING"
    expiration_us: int | None = None
    reserved: Decimal = ZERO
    filled_us: int | None = None
    fill_price: Decimal | None = None
    notional: Decimal | None = None
    fee: Decimal | None = None
    cancelled_us: int | None = None
    cancelled_reason: str | None = None
    amount_interpreted_as: str | None = None
    #: The quoted spread when the order took liquidity (None for resting fills).
    spread_bps: int | None = None


@dataclass(slots=True)
class Wallet:
    """A wallet (``API``, ``PROP_FIRM``, ``SANDBOX``, ...): cash, reservations, positions,
    fills, settlements, snapshots, and its place in a chain of reset generations."""

    wallet_id: int
    user_id: int
    kind: str
    starting_balance: Decimal
    cash: Decimal
    created_us: int
    label: str | None = None
    generation: int = 1
    parent_wallet_id: int | None = None
    archived_us: int | None = None
    reserved: Decimal = ZERO
    realized: Decimal | None = None
    status: str = "ACTIVE"
    positions: dict[tuple[str, str], Position] = field(default_factory=dict)
    closed_positions: list[Position] = field(default_factory=list)
    settlements: list[Settlement] = field(default_factory=list)
    pending: dict[int, Order] = field(default_factory=dict)
    fills: FillIndex = field(default_factory=FillIndex)
    #: Hourly snapshots: (hour_us, cash incl. reservations, position value, starting balance).
    snapshots: list[tuple[int, Decimal, Decimal, Decimal]] = field(default_factory=list)
    account: PartnerAccount | None = None
    updated_us: int = 0


@dataclass(slots=True)
class PartnerAccount:
    """A tenant-governed account (P4): a ``PROP_FIRM`` wallet of its trader."""

    account_id: str
    tenant_id: int
    external_id: str
    user_id: int
    wallet: Wallet
    stage: str
    rules: bytes | None
    metadata: dict[str, Any] | None
    status: str = "active"


@dataclass(slots=True)
class User:
    """A native trader: plan tier, keys, wallets, orders in creation order, idempotency store.

    ``tier`` is the user's plan (what paid features and baselines follow); each
    key carries its own rate tier.
    """

    user_id: int
    email: str
    tier: str = "pro"
    keys: list[TraderKey] = field(default_factory=list)
    api_wallet_id: int | None = None
    wallet_ids: list[int] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    order_created: array[int] = field(default_factory=lambda: array("q"))
    #: Idempotency store: key -> (body fingerprint, the answer sent, or None while in flight).
    idempotency: dict[str, tuple[bytes, dict[str, Any] | None]] = field(default_factory=dict)
    client_order_ids: dict[str, str] = field(default_factory=dict)


class SandboxState:
    """Every record of one sandbox, its id counters and its seeded random generator."""

    def __init__(self, *, seed: int, clock: SandboxClock) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = clock
        self.tenants: dict[int, Tenant] = {}
        self.tenant_keys: dict[str, TenantKey] = {}
        self.trader_keys: dict[str, TraderKey] = {}
        self.users: dict[int, User] = {}
        self.users_by_email: dict[str, User] = {}
        self.wallets: dict[int, Wallet] = {}
        self.accounts: dict[str, PartnerAccount] = {}
        self.markets: dict[str, Market] = {}
        self.orders: dict[int, Order] = {}
        self.outbox: list[dict[str, Any]] = []
        self._next_user = 12345
        self._next_wallet = 9911
        self._next_order = 8881
        self._next_position = 1
        self._next_tenant = 1
        self._next_key = 1
        self.slugs: dict[str, str] = {}
        self.tokens: dict[str, tuple[str, str]] = {}

    # -- ids and secrets ---------------------------------------------------------------
    def hex(self, n: int) -> str:
        """``n`` hex characters from the seeded generator."""
        return f"{self.rng.getrandbits(n * 4):0{n}x}"

    def uuid(self) -> str:
        """A UUID4 string from the seeded generator."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def next_order_id(self) -> int:
        """A fresh order id (one global, increasing sequence)."""
        self._next_order += 1
        return self._next_order - 1

    def reserve_order_ids(self, n: int) -> int:
        """Reserve ``n`` consecutive order ids and return the first."""
        first = self._next_order
        self._next_order += n
        return first

    def next_position_id(self) -> int:
        """A fresh position id."""
        self._next_position += 1
        return self._next_position - 1

    # -- creation ----------------------------------------------------------------------
    def add_tenant(
        self,
        name: str,
        *,
        scopes: frozenset[str] = DEFAULT_SCOPES,
        enabled: bool = True,
        redirect_domains: tuple[str, ...] | None = None,
    ) -> tuple[Tenant, TenantKey]:
        """Create a tenant with one key."""
        tid = self._next_tenant
        self._next_tenant += 1
        slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or f"t{tid}"
        tenant = Tenant(tid, slug, name, enabled=enabled, redirect_domains=redirect_domains)
        self.tenants[tid] = tenant
        return tenant, self.add_tenant_key(tid, scopes=scopes)

    def add_tenant_key(self, tenant_id: int, *, scopes: frozenset[str]) -> TenantKey:
        """Issue another key for a tenant."""
        key = TenantKey(f"pt_sandbox_{self.hex(48)}", tenant_id, scopes)
        self.tenant_keys[key.key] = key
        return key

    def user_for_email(self, email: str) -> tuple[User, bool]:
        """The native user owning ``email``, created when new; ``(user, created)``."""
        user = self.users_by_email.get(email)
        if user is not None:
            return user, False
        user = User(self._next_user, email)
        self._next_user += 1
        self.users[user.user_id] = user
        self.users_by_email[email] = user
        return user, True

    def add_wallet(
        self,
        user: User,
        kind: str,
        balance: Decimal,
        *,
        label: str | None = None,
        generation: int = 1,
        parent_wallet_id: int | None = None,
    ) -> Wallet:
        """Open a wallet for ``user`` funded to ``balance``."""
        now = self.clock.now_us()
        wallet = Wallet(
            self._next_wallet,
            user.user_id,
            kind,
            balance,
            balance,
            now,
            label=label,
            generation=generation,
            parent_wallet_id=parent_wallet_id,
            updated_us=now,
        )
        self._next_wallet += 1
        self.wallets[wallet.wallet_id] = wallet
        user.wallet_ids.append(wallet.wallet_id)
        return wallet

    def add_trader_key(
        self,
        user: User,
        *,
        tier: str = "pro",
        permissions: frozenset[str] | None = None,
        name: str = "default",
        set_plan: bool = True,
    ) -> TraderKey:
        """Issue a ``ps_live_`` key; the user's API wallet opens at the tier baseline if absent.

        With ``set_plan`` (the control API) the user's plan becomes ``tier``; keys
        minted through ``POST /v1/keys`` leave the plan alone.
        """
        perms = permissions if permissions is not None else frozenset({"read", "trade"})
        key = TraderKey(
            f"ps_live_{self.hex(64)}",
            user.user_id,
            tier,
            perms,
            key_id=self._next_key,
            name=name,
            created_us=self.clock.now_us(),
        )
        self._next_key += 1
        self.trader_keys[key.key] = key
        user.keys.append(key)
        if set_plan:
            user.tier = tier
        if user.api_wallet_id is None:
            user.api_wallet_id = self.add_wallet(user, "API", TIERS[tier].baseline).wallet_id
        return key

    def add_market(
        self,
        *,
        market_id: str | None = None,
        question: str = "Sandbox market?",
        outcomes: tuple[str, ...] = ("Yes", "No"),
        price: Decimal = Decimal("0.50"),
        spread: Decimal = Decimal("0.02"),
        tick: Decimal = Decimal("0.01"),
        min_size: Decimal = Decimal("5"),
        fee_rate: Decimal = Decimal("0"),
        slug: str | None = None,
        category: str = "general",
        volume: Decimal = ZERO,
    ) -> Market:
        """List a market; in a binary market the second outcome's mid is ``1 - price``.

        Its slug defaults to the question's words (made unique); its outcome token
        ids are derived from its id, so a seed reproduces them without drawing
        from the random generator.
        """
        mid = market_id or "0x" + self.hex(64)
        mids = {outcomes[0]: price}
        for other in outcomes[1:]:
            mids[other] = Decimal(1) - price if len(outcomes) == 2 else price
        market = Market(mid, question, list(outcomes), mids, spread, tick, min_size, fee_rate)
        market.slug = self._unique_slug(slug or question)
        market.category = category
        market.base_volume = volume
        market.created_us = self.clock.now_us()
        for i, name in enumerate(outcomes):
            digest = hashlib.sha256(f"{mid}:{i}".encode()).digest()
            token = str(int.from_bytes(digest, "big"))
            market.token_ids[name] = token
            self.tokens[token] = (mid, name)
        market.record(market.created_us)
        self.markets[mid] = market
        self.slugs[market.slug] = mid
        return market

    def _unique_slug(self, text: str) -> str:
        words = "".join(c if c.isalnum() else " " for c in text.lower()).split()
        base = "-".join(words)[:120].strip("-") or "market"
        slug, n = base, 1
        while slug in self.slugs:
            n += 1
            slug = f"{base}-{n}"
        return slug
