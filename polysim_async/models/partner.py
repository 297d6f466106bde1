"""Wire shapes of the partner API (``/v1/partner/*``), API.md §3 and the partner quickstart seed."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import msgspec

from .._errors import DecodeError
from .common import AccountStatus, Money, MoneyStruct, Side, Stage, Traced, UTCDateTime, to_decimal

__all__ = [
    "AccountState",
    "CreateAccountRequest",
    "LoginLink",
    "LoginLinkRequest",
    "OpenPosition",
    "PartnerAccount",
    "PartnerUser",
    "RegisterUserRequest",
    "Rules",
    "Trade",
    "TradePage",
    "UpdateAccountRequest",
]


# JSON numbers inside rules decode exactly: whole numbers to int, the rest to Decimal.
_rules_decoder = msgspec.json.Decoder(dict[str, Any], float_hook=Decimal)


class Rules(Mapping[str, Any]):
    """An account's rules: the whole free-form object the server stores, with two keys typed.

    The server stores ``rules`` as any JSON object and echoes it back (API.md
    P4/P5); a firm keeps its whole rule set there (daily loss, minimum trading
    days, nested settings, ...). A ``Rules`` is a read-only mapping of every key,
    exactly as the server sent it: JSON numbers are ``int`` (whole numbers) or
    :class:`~decimal.Decimal`, never ``float``, so nothing is rounded. The two
    documented keys are also typed properties, :attr:`profit_target_pct` and
    :attr:`max_drawdown_pct` (``Decimal`` or ``None``).

    Build one from a mapping, keywords, or both: ``Rules({"min_trading_days": 5},
    profit_target_pct=Decimal("8"))``. On the wire every Decimal and number goes
    out as a JSON number (``20``, ``7.5``), as in the partner quickstart seed;
    strings stay strings.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        merged = dict(data or {})
        merged.update(fields)
        self._data = merged

    @classmethod
    def from_json(cls, raw: bytes) -> Rules:
        """Decode a JSON object exactly (numbers as ``int``/``Decimal``).

        Raises:
            DecodeError: ``raw`` is not a JSON object.
        """
        try:
            return cls(_rules_decoder.decode(raw))
        except (msgspec.DecodeError, RecursionError) as exc:
            raise DecodeError(f"rules is not a JSON object: {exc}") from None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Rules({self._data!r})"

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of every key, as a plain ``dict``."""
        return copy.deepcopy(self._data)

    def _percent(self, key: str) -> Decimal | None:
        value = self._data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
            raise DecodeError(f"rules.{key} is not a number: {value!r}")
        return to_decimal(str(value), f"rules.{key}")

    @property
    def profit_target_pct(self) -> Decimal | None:
        """The profit target in percent, if set.

        Raises:
            DecodeError: the stored value is not a number.
        """
        return self._percent("profit_target_pct")

    @property
    def max_drawdown_pct(self) -> Decimal | None:
        """The maximum drawdown in percent, if set.

        Raises:
            DecodeError: the stored value is not a number.
        """
        return self._percent("max_drawdown_pct")


def _check_rules(raw: msgspec.Raw) -> None:
    """Refuse (as a schema mismatch) a ``rules`` value that is neither an object nor null."""
    if raw and bytes(raw) != b"null":
        try:
            _rules_decoder.decode(raw)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise ValueError(f"rules must be a JSON object: {exc}") from None


def _rules(raw: msgspec.Raw) -> Rules | None:
    if not raw or bytes(raw) == b"null":
        return None
    return Rules.from_json(bytes(raw))


class PartnerUser(Traced, kw_only=True, frozen=True):
    """A trader mapped to the tenant (P1 register, P2 get).

    ``created`` is ``True`` when the register call created the mapping (201) and
    ``False`` on an idempotent replay (200).
    """

    user_id: int
    external_id: str
    email: str
    tenant_user_id: str | None = None
    created: bool = False
    metadata: dict[str, Any] | None = None


class LoginLink(msgspec.Struct, kw_only=True, frozen=True):
    """The 202 answer to a login-link request; the link itself is only ever emailed."""

    status: str = "accepted"


class PartnerAccount(Traced, kw_only=True, frozen=True):
    """A tenant-governed account as created (P4).

    ``rules`` is the rule object as the server echoed it (see :class:`Rules`);
    ``raw_rules`` holds its exact JSON.
    """

    account_id: str
    wallet_id: int
    user_id: int
    external_id: str
    stage: Stage
    status: AccountStatus
    starting_balance: Money
    raw_rules: msgspec.Raw = msgspec.field(name="rules", default_factory=msgspec.Raw)
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_rules(self.raw_rules)

    @property
    def rules(self) -> Rules | None:
        """The account's rules, every key exactly as stored, or ``None``."""
        return _rules(self.raw_rules)


class OpenPosition(MoneyStruct, kw_only=True, frozen=True):
    """One open position of an account, marked to market."""

    market_id: str
    outcome: str
    quantity: Money
    avg_entry_price: Money
    current_price: Money | None = None
    market_value: Money | None = None
    unrealized_pnl: Money | None = None


class AccountState(Traced, kw_only=True, frozen=True):
    """The account-state envelope (P5), also returned by update, close and reset.

    ``rules`` is the rule object as stored (see :class:`Rules`); ``raw_rules``
    holds its exact JSON.
    """

    account_id: str
    external_id: str
    stage: Stage
    status: AccountStatus
    balance: Money
    starting_balance: Money
    equity: Money
    unrealized_pnl: Money
    realized_pnl: Money | None = None
    open_positions: list[OpenPosition] = msgspec.field(default_factory=list)
    raw_rules: msgspec.Raw = msgspec.field(name="rules", default_factory=msgspec.Raw)
    metadata: dict[str, Any] | None = None
    updated_at: UTCDateTime | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_rules(self.raw_rules)

    @property
    def rules(self) -> Rules | None:
        """The account's rules, every key exactly as stored, or ``None``."""
        return _rules(self.raw_rules)


class Trade(msgspec.Struct, kw_only=True, frozen=True, gc=False):
    """One filled trade from an account's feed (P6).

    Bulk pulls decode millions of these, so the money fields keep the exact
    decimal strings of the wire (``raw_price`` ...) and the properties
    (``price``, ``quantity``, ``notional``, ``fee``, ``realized_pnl``) turn them
    into :class:`~decimal.Decimal` only when read: exact, never ``float``, and
    about 2.3x cheaper to decode than eager Decimals (see benchmarks/README.md).
    Equality compares the wire strings. Trades hold no containers, so they are
    not tracked by the garbage collector (``gc=False``): fewer GC passes while
    millions stream through.
    """

    trade_id: int
    order_id: int
    market_id: str
    side: Side
    outcome: str
    raw_price: str = msgspec.field(name="price")
    raw_quantity: str = msgspec.field(name="quantity")
    raw_notional: str = msgspec.field(name="notional")
    raw_fee: str = msgspec.field(name="fee")
    filled_at: UTCDateTime
    client_order_id: str | None = None
    raw_realized_pnl: str | None = msgspec.field(default=None, name="realized_pnl")

    @property
    def price(self) -> Decimal:
        """Fill price (4 dp on the wire)."""
        return to_decimal(self.raw_price, "price")

    @property
    def quantity(self) -> Decimal:
        """Filled shares."""
        return to_decimal(self.raw_quantity, "quantity")

    @property
    def notional(self) -> Decimal:
        """``price * quantity`` in USD, as the server rounded it (2 dp)."""
        return to_decimal(self.raw_notional, "notional")

    @property
    def fee(self) -> Decimal:
        """Fee charged in USD."""
        return to_decimal(self.raw_fee, "fee")

    @property
    def realized_pnl(self) -> Decimal | None:
        """Realized P&L of a closing fill, else ``None``."""
        raw = self.raw_realized_pnl
        return None if raw is None else to_decimal(raw, "realized_pnl")


class TradePage(Traced, kw_only=True, frozen=True):
    """One page of the trade feed; ``next_cursor`` is ``None`` on the last page.

    Save ``next_cursor`` to resume a walk later with the same filters;
    ``request_id`` is the server's id of the request that fetched it.
    """

    data: list[Trade]
    next_cursor: str | None = None


class RegisterUserRequest(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Body of ``POST /v1/partner/users``."""

    external_id: str
    email: str
    metadata: dict[str, Any] | None = None


class LoginLinkRequest(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Body of ``POST /v1/partner/users/{user_id}/login-link``."""

    redirect_url: str | None = None


class CreateAccountRequest(MoneyStruct, kw_only=True, frozen=True, omit_defaults=True):
    """Body of ``POST /v1/partner/accounts``."""

    user_id: int
    external_id: str
    stage: Stage
    starting_balance: Money
    metadata: dict[str, Any] | None = None
    #: The rules object as raw JSON, so its percentages stay JSON numbers.
    rules: msgspec.Raw | None = None


class UpdateAccountRequest(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Body of ``PATCH /v1/partner/accounts/{account_id}``: only the fields given change."""

    stage: Stage | None = None
    metadata: dict[str, Any] | None = None
    #: The rules object as raw JSON, so its percentages stay JSON numbers.
    rules: msgspec.Raw | None = None
