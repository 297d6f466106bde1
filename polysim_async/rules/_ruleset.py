"""The rule set of a challenge: every parameter, validated, round-tripping through ``rules``.

An account's ``rules`` is a free-form JSON object the server stores and echoes
(API.md P4/P5). :meth:`RuleSet.to_wire` writes a rule set into it and
:meth:`RuleSet.from_wire` reads it back; percentages are exact ``Decimal`` values
that travel as JSON numbers, and keys this library does not know (a firm's own
plan name, a note ...) are kept in :attr:`RuleSet.extra` and written back
unchanged, so reading, changing and storing a rule set never loses them.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

import msgspec

from .._errors import InvalidArgumentError
from ._days import parse_day_start, zone_of

__all__ = ["DEFAULT_WARN_AT_PCT", "MAX_DAYS", "MAX_PCT", "RULE_NAMES", "RuleSet"]

#: The share of a limit (in percent) from which a verdict warns.
DEFAULT_WARN_AT_PCT = Decimal(80)

#: Names of the rules, as used in breaches, gates, headroom and warnings.
RULE_NAMES = (
    "profit_target",
    "max_loss",
    "daily_loss",
    "min_trading_days",
    "consistency",
    "position_limit",
    "inactivity",
)

_HUNDRED = Decimal(100)


class RuleSet(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """A challenge's rules; every parameter is optional and a missing rule is not judged.

    Percentages are of the starting balance unless said otherwise, exact
    ``Decimal`` (``int`` and decimal strings are accepted and converted). The
    README's "Challenge rules" section defines each rule in one table.

    Attributes:
        profit_target_pct: pass when profit reaches this share of the starting balance.
        profit_target_basis: ``"equity"`` (default) or ``"balance"`` (realised cash).
        max_drawdown_pct: the maximum loss, as a share of the starting balance.
        max_drawdown_mode: ``"static"`` (default), ``"trailing"`` (the floor trails the
            highest equity sampled) or ``"eod_trailing"`` (the floor is recomputed at
            each day start from the highest end-of-day value).
        max_drawdown_eod_basis: what ``eod_trailing`` trails: ``"balance"`` (default)
            or ``"equity"`` at the end of each day.
        max_drawdown_lock_at_start: a trailing floor stops rising at the starting balance.
        daily_loss_pct: the most equity may fall below the day's reference.
        daily_loss_reference: the day's reference, taken by the day's first sample:
            ``"balance"`` (default), ``"equity"`` or ``"higher"`` (the higher of the two).
        daily_loss_action: ``"breach"`` (default: fails the account) or ``"pause"``
            (blocks the rest of the day: that day never ends in a pass).
        day_start_time: local ``"HH:MM"`` at which every day starts (default ``"00:00"``).
        day_time_zone: IANA zone of the day boundary (default ``"UTC"``).
        min_trading_days: distinct days with a fill needed before a pass.
        min_trading_day_profit_pct: a day counts only if its realised profit reaches
            this share of the starting balance.
        consistency_pct: the best day's profit may be at most this share of the
            total profit (or of the target).
        consistency_basis: ``"total_profit"`` (default) or ``"target"``.
        consistency_action: ``"gate"`` (default: blocks a pass) or ``"breach"``.
        max_position_pct: the cost of one market's open position may not exceed this
            share of the starting balance.
        inactivity_days: no fill for this many days fails the account.
        breach_at_limit: ``True`` (default): a value exactly at a limit breaches
            (``>=``); ``False``: only beyond it (``>``).
        warn_at_pct: a verdict warns once this share of a limit is used (default 80).
        extra: keys of the stored ``rules`` object this library does not know,
            written back by :meth:`to_wire`. Held as plain JSON values: whole
            numbers as ``int``, other numbers as ``float`` when that float is the
            same number (any number of up to 15 significant digits), so they stay
            JSON numbers through ``msgspec.json`` (an :class:`EvaluatorState` saved
            and restored compares equal); a longer number stays a ``Decimal``
            (exact, but ``msgspec.json.encode`` writes it as a string).

    Ranges: ``max_drawdown_pct``, ``daily_loss_pct`` and ``consistency_pct`` from
    0.000001 to 100; ``profit_target_pct`` and ``max_position_pct`` from 0.000001 to
    :data:`MAX_PCT`; ``min_trading_day_profit_pct`` and ``warn_at_pct`` from 0 to
    100; day counts from 1 to :data:`MAX_DAYS`. A parameter that only shapes a rule
    (a mode, basis, action or lock) is refused unless its rule is set, and
    ``max_drawdown_lock_at_start`` needs a trailing mode.

    Raises:
        InvalidArgumentError: a parameter out of range, of the wrong type, or one
            that cannot take effect; the message names the parameter.
    """

    profit_target_pct: Decimal | None = None
    profit_target_basis: Literal["equity", "balance"] = "equity"
    max_drawdown_pct: Decimal | None = None
    max_drawdown_mode: Literal["static", "trailing", "eod_trailing"] = "static"
    max_drawdown_eod_basis: Literal["balance", "equity"] = "balance"
    max_drawdown_lock_at_start: bool = False
    daily_loss_pct: Decimal | None = None
    daily_loss_reference: Literal["balance", "equity", "higher"] = "balance"
    daily_loss_action: Literal["breach", "pause"] = "breach"
    day_start_time: str = "00:00"
    day_time_zone: str = "UTC"
    min_trading_days: int | None = None
    min_trading_day_profit_pct: Decimal | None = None
    consistency_pct: Decimal | None = None
    consistency_basis: Literal["total_profit", "target"] = "total_profit"
    consistency_action: Literal["gate", "breach"] = "gate"
    max_position_pct: Decimal | None = None
    inactivity_days: int | None = None
    breach_at_limit: bool = True
    warn_at_pct: Decimal = DEFAULT_WARN_AT_PCT
    extra: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, low, high in _PCT_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            pct = _to_pct(name, value)
            if not low <= pct <= high:
                raise InvalidArgumentError(
                    f"{name} must be at least {low} and at most {high}, got {value!r}"
                )
            if pct is not value:
                msgspec.structs.force_setattr(self, name, pct)
        for name, choices in _CHOICE_FIELDS.items():
            if getattr(self, name) not in choices:
                raise InvalidArgumentError(
                    f"{name} must be one of {', '.join(map(repr, choices))}, "
                    f"got {getattr(self, name)!r}"
                )
        for name in ("max_drawdown_lock_at_start", "breach_at_limit"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidArgumentError(f"{name} must be true or false")
        for name in ("min_trading_days", "inactivity_days"):
            count = getattr(self, name)
            if count is not None and (
                isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_DAYS
            ):
                raise InvalidArgumentError(
                    f"{name} must be a whole number of days from 1 to {MAX_DAYS}, got {count!r}"
                )
        parse_day_start(self.day_start_time)
        if not isinstance(self.day_time_zone, str):
            raise InvalidArgumentError("day_time_zone must be an IANA zone name")
        zone_of(self.day_time_zone)
        if not isinstance(self.extra, dict) or not all(isinstance(k, str) for k in self.extra):
            raise InvalidArgumentError("extra must be a dict with string keys")
        clash = set(self.extra) & _FIELDS
        if clash:
            raise InvalidArgumentError(f"extra must not hold rule parameters: {sorted(clash)}")
        msgspec.structs.force_setattr(self, "extra", _json_value("extra", self.extra))
        self._refuse_what_cannot_take_effect()

    def _refuse_what_cannot_take_effect(self) -> None:
        """A parameter whose rule is not set would be ignored: refuse it instead."""
        for name, needs in _DEPENDENT_FIELDS.items():
            if getattr(self, name) != _DEFAULTS[name] and getattr(self, needs) is None:
                raise InvalidArgumentError(f"{name} has no effect without {needs}: set both")
        mode = self.max_drawdown_mode
        if self.max_drawdown_eod_basis != "balance" and mode != "eod_trailing":
            raise InvalidArgumentError(
                "max_drawdown_eod_basis only applies to max_drawdown_mode 'eod_trailing'"
            )
        if self.max_drawdown_lock_at_start and mode == "static":
            raise InvalidArgumentError(
                "max_drawdown_lock_at_start only applies to a trailing max_drawdown_mode "
                "('trailing' or 'eod_trailing'): a static floor never rises"
            )
        if self.consistency_basis == "target" and self.profit_target_pct is None:
            raise InvalidArgumentError("consistency_basis 'target' needs a profit_target_pct")

    @classmethod
    def from_wire(cls, rules: Mapping[str, Any] | msgspec.Struct | None, /) -> RuleSet:
        """Read a rule set from an account's stored ``rules`` object.

        Accepts the decoded JSON object (a mapping; numbers may arrive as ``int``,
        ``float`` or ``Decimal``, and a ``float`` is read through its shortest repr,
        so ``20.5`` becomes ``Decimal("20.5")``), a rules Struct such as
        :class:`polysim_async.Rules` (the seed's two keys), or ``None`` (no rules).
        A ``null`` value means "not set". Keys this library does not know go to
        :attr:`extra` untouched.

        Raises:
            InvalidArgumentError: a known key with a value of the wrong type or range.
        """
        if rules is None:
            return cls()
        if isinstance(rules, msgspec.Struct):
            mapping: Mapping[str, Any] = msgspec.to_builtins(rules, builtin_types=(Decimal,))
        elif isinstance(rules, Mapping):
            mapping = rules
        else:
            raise InvalidArgumentError(
                f"rules must be a JSON object (a mapping), got {type(rules).__name__}"
            )
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in mapping.items():
            if not isinstance(key, str):
                raise InvalidArgumentError(f"rules keys must be strings, got {key!r}")
            if key in _FIELDS:
                if value is not None:
                    known[key] = value
            else:
                extra[key] = value
        return cls(**known, extra=extra)

    def to_wire(self) -> dict[str, Any]:
        """Return the ``rules`` object to store on the account.

        Only the parameters that differ from their defaults are written, then the
        :attr:`extra` keys. Percentages stay ``Decimal`` (the client sends them as
        exact JSON numbers); ``RuleSet.from_wire(r.to_wire()) == r``.
        """
        out = {k: v for k, v in msgspec.structs.asdict(self).items() if k != "extra"}
        for key, default in _DEFAULTS.items():
            if out[key] == default:
                del out[key]
        out.update(self.extra)
        return out


def _to_pct(name: str, value: object) -> Decimal:
    if isinstance(value, Decimal):
        pct = value
    elif isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}")
    elif isinstance(value, int):
        pct = Decimal(value)
    elif isinstance(value, float):
        pct = Decimal(repr(value))  # the JSON number as written, not the binary float
    elif isinstance(value, str):
        try:
            pct = Decimal(value.strip())
        except decimal.InvalidOperation:
            raise InvalidArgumentError(f"{name} must be a number, got {value!r}") from None
    else:
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}")
    if not pct.is_finite():
        raise InvalidArgumentError(f"{name} must be a finite number, got {value!r}")
    return pct


def _json_value(path: str, value: Any) -> Any:
    """``value`` as the JSON value it stands for, in the form that survives a JSON round trip.

    Whole numbers become ``int``, other numbers ``float`` when the float is the same
    number (its shortest repr reads back as it: every number of up to 15 significant
    digits), so ``msgspec.json`` writes them as numbers and reads them back equal;
    a longer number stays a ``Decimal``; tuples become lists.

    Raises:
        InvalidArgumentError: not a JSON value (``NaN``, infinity, a set, an object).
    """
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (Decimal, float)):
        number = Decimal(repr(value)) if isinstance(value, float) else value
        if not number.is_finite():
            raise InvalidArgumentError(f"{path} must be a finite number, got {value!r}")
        if number == number.to_integral_value():
            return int(number)
        as_float = float(number)
        # A number a float cannot hold stays an exact Decimal (see RuleSet.extra).
        return as_float if Decimal(repr(as_float)) == number else number
    if isinstance(value, (list, tuple)):
        return [_json_value(f"{path}[{i}]", v) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, v in value.items():
            if not isinstance(key, str):
                raise InvalidArgumentError(f"{path} keys must be strings, got {key!r}")
            out[key] = _json_value(f"{path}.{key}", v)
        return out
    raise InvalidArgumentError(f"{path} must be a JSON value, got {type(value).__name__}")


#: The smallest positive percentage a positive-only parameter takes (a millionth of
#: a percent): below it a limit is no money at all.
_MIN_PCT = Decimal("0.000001")
_ZERO = Decimal(0)
#: Upper bound of the percentages that may exceed 100 (target, position cost).
MAX_PCT = Decimal(1_000_000)
#: Upper bound of the day counts (``min_trading_days``, ``inactivity_days``): ten years.
MAX_DAYS = 3650
#: (field, lowest, highest): the percentage parameters and their ranges.
_PCT_FIELDS: tuple[tuple[str, Decimal, Decimal], ...] = (
    ("profit_target_pct", _MIN_PCT, MAX_PCT),
    ("max_drawdown_pct", _MIN_PCT, _HUNDRED),
    ("daily_loss_pct", _MIN_PCT, _HUNDRED),
    ("min_trading_day_profit_pct", _ZERO, _HUNDRED),
    ("consistency_pct", _MIN_PCT, _HUNDRED),
    ("max_position_pct", _MIN_PCT, MAX_PCT),
    ("warn_at_pct", _ZERO, _HUNDRED),
)
_CHOICE_FIELDS: dict[str, tuple[str, ...]] = {
    "profit_target_basis": ("equity", "balance"),
    "max_drawdown_mode": ("static", "trailing", "eod_trailing"),
    "max_drawdown_eod_basis": ("balance", "equity"),
    "daily_loss_reference": ("balance", "equity", "higher"),
    "daily_loss_action": ("breach", "pause"),
    "consistency_basis": ("total_profit", "target"),
    "consistency_action": ("gate", "breach"),
}
#: Parameters that only mean something with another one set: (parameter, needs).
_DEPENDENT_FIELDS: dict[str, str] = {
    "profit_target_basis": "profit_target_pct",
    "max_drawdown_mode": "max_drawdown_pct",
    "max_drawdown_lock_at_start": "max_drawdown_pct",
    "daily_loss_reference": "daily_loss_pct",
    "daily_loss_action": "daily_loss_pct",
    "min_trading_day_profit_pct": "min_trading_days",
    "consistency_basis": "consistency_pct",
    "consistency_action": "consistency_pct",
}
_FIELDS = frozenset(RuleSet.__struct_fields__) - {"extra"}
_DEFAULTS: dict[str, Any] = {
    name: default
    for name, default in zip(RuleSet.__struct_fields__, RuleSet.__struct_defaults__, strict=True)
    if name != "extra"
}
