"""RuleSet: validation, defaults and the round trip through an account's ``rules`` object."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from polysim_async import InvalidArgumentError, Rules
from polysim_async.rules import Evaluator, EvaluatorState, RuleSet

UTC = timezone.utc


def test_the_seed_rules_mean_a_static_maximum_loss_and_round_trip_as_json_numbers() -> None:
    rules = RuleSet.from_wire({"profit_target_pct": 20, "max_drawdown_pct": 10})
    assert rules.profit_target_pct == Decimal(20)
    assert rules.max_drawdown_pct == Decimal(10)
    assert rules.max_drawdown_mode == "static"
    assert rules.to_wire() == {"profit_target_pct": Decimal(20), "max_drawdown_pct": Decimal(10)}
    # Encoded the way the client sends rules: exact JSON numbers, no defaults spelled out.
    assert msgspec.json.Encoder(decimal_format="number").encode(rules.to_wire()) == (
        b'{"profit_target_pct":20,"max_drawdown_pct":10}'
    )


def test_the_defaults_are_the_documented_ones() -> None:
    rules = RuleSet()
    assert rules.profit_target_basis == "equity"
    assert rules.max_drawdown_mode == "static"
    assert rules.daily_loss_action == "breach"
    assert rules.daily_loss_reference == "balance"
    assert (rules.day_start_time, rules.day_time_zone) == ("00:00", "UTC")
    assert (rules.consistency_action, rules.consistency_basis) == ("gate", "total_profit")
    assert rules.breach_at_limit is True
    assert rules.warn_at_pct == Decimal(80)
    assert rules.to_wire() == {}


def test_every_parameter_round_trips_through_the_wire_and_through_json() -> None:
    rules = RuleSet(
        profit_target_pct=Decimal("8"),
        profit_target_basis="balance",
        max_drawdown_pct=Decimal("6.5"),
        max_drawdown_mode="eod_trailing",
        max_drawdown_eod_basis="equity",
        max_drawdown_lock_at_start=True,
        daily_loss_pct=Decimal("3"),
        daily_loss_reference="higher",
        daily_loss_action="pause",
        day_start_time="17:00",
        day_time_zone="America/New_York",
        min_trading_days=4,
        min_trading_day_profit_pct=Decimal("0.5"),
        consistency_pct=Decimal("40"),
        consistency_basis="target",
        consistency_action="breach",
        max_position_pct=Decimal("25"),
        inactivity_days=30,
        breach_at_limit=False,
        warn_at_pct=Decimal("90"),
        extra={"plan": "50k", "note": {"v": 2}},
    )
    wire = rules.to_wire()
    assert RuleSet.from_wire(wire) == rules
    # Through JSON as the server echoes it (numbers decoded without a schema become floats).
    text = msgspec.json.Encoder(decimal_format="number").encode(wire)
    assert RuleSet.from_wire(msgspec.json.decode(text)) == rules
    assert wire["plan"] == "50k" and wire["note"] == {"v": 2}


def test_json_numbers_become_exact_decimals() -> None:
    rules = RuleSet.from_wire(
        msgspec.json.decode(b'{"max_drawdown_pct": 10.1, "daily_loss_pct": 4}')
    )
    assert rules.max_drawdown_pct == Decimal("10.1")  # not 10.0999999999999996447...
    assert RuleSet.from_wire({"daily_loss_pct": "4.25"}).daily_loss_pct == Decimal("4.25")


def test_foreign_keys_are_kept_and_null_means_not_set() -> None:
    rules = RuleSet.from_wire({"max_drawdown_pct": 10, "daily_loss_pct": None, "firm_tier": "gold"})
    assert rules.daily_loss_pct is None
    assert rules.extra == {"firm_tier": "gold"}
    assert rules.to_wire() == {"max_drawdown_pct": Decimal(10), "firm_tier": "gold"}


def test_the_typed_rules_struct_and_none_are_read() -> None:
    rules = RuleSet.from_wire(Rules(profit_target_pct=Decimal(20), max_drawdown_pct=Decimal(10)))
    assert (rules.profit_target_pct, rules.max_drawdown_pct) == (Decimal(20), Decimal(10))
    assert RuleSet.from_wire(None) == RuleSet()


def test_ints_and_strings_are_converted_on_construction() -> None:
    rules = RuleSet(profit_target_pct=10, daily_loss_pct="2.5")  # type: ignore[arg-type]
    assert rules.profit_target_pct == Decimal(10)
    assert rules.daily_loss_pct == Decimal("2.5")


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ({"max_drawdown_pct": -1}, "max_drawdown_pct must be at least 0"),
        ({"max_drawdown_pct": 101}, "at most 100"),
        ({"daily_loss_pct": True}, "must be a number"),
        ({"daily_loss_pct": "ten"}, "must be a number"),
        ({"daily_loss_pct": "NaN"}, "finite"),
        ({"profit_target_pct": [1]}, "must be a number"),
        ({"max_drawdown_mode": "weekly"}, "max_drawdown_mode must be one of"),
        ({"daily_loss_reference": "max"}, "daily_loss_reference must be one of"),
        ({"day_start_time": "24:00"}, "HH:MM"),
        ({"day_start_time": "9:30"}, "HH:MM"),
        ({"day_start_time": "\u0661\u0662:00"}, "HH:MM"),  # Arabic-Indic digits
        ({"day_start_time": "\uff11\uff12:00"}, "HH:MM"),  # full-width digits
        ({"day_time_zone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"day_time_zone": "localtime"}, "same on every machine"),
        ({"day_time_zone": "Factory"}, "same on every machine"),
        ({"day_time_zone": "right/Europe/Prague"}, "same on every machine"),
        ({"day_time_zone": "posix/Europe/Prague"}, "same on every machine"),
        ({"day_time_zone": "../zoneinfo/UTC"}, "same on every machine"),
        ({"day_time_zone": "europe/prague"}, "not an IANA time zone"),
        ({"min_trading_days": 0}, "min_trading_days must be a whole number of days from 1 to 3650"),
        ({"inactivity_days": 1.5}, "inactivity_days must be a whole number of days from 1"),
        ({"inactivity_days": 3651}, "from 1 to 3650"),
        ({"inactivity_days": 10**30}, "from 1 to 3650"),
        ({"breach_at_limit": "yes"}, "true or false"),
        # Percentages: positive where zero means nothing, bounded where they could overflow.
        ({"max_drawdown_pct": 0}, "max_drawdown_pct must be at least 0.000001 and at most 100"),
        ({"daily_loss_pct": 0}, "daily_loss_pct must be at least 0.000001"),
        ({"consistency_pct": 0}, "consistency_pct must be at least 0.000001"),
        ({"max_position_pct": 0}, "max_position_pct must be at least 0.000001"),
        ({"profit_target_pct": 0}, "profit_target_pct must be at least 0.000001"),
        ({"max_drawdown_pct": "1e-999999"}, "max_drawdown_pct must be at least 0.000001"),
        ({"profit_target_pct": "1e999999"}, "at most 1000000"),
        ({"max_position_pct": 1_000_001}, "at most 1000000"),
        ({"min_trading_days": 2, "min_trading_day_profit_pct": "1e999999"}, "at most 100"),
        ({"warn_at_pct": 101}, "warn_at_pct must be at least 0 and at most 100"),
        # A parameter that shapes a rule which is not set would be silently ignored.
        ({"max_drawdown_lock_at_start": True}, "no effect without max_drawdown_pct"),
        ({"max_drawdown_mode": "trailing"}, "no effect without max_drawdown_pct"),
        ({"max_drawdown_pct": 10, "max_drawdown_lock_at_start": True}, "a static floor"),
        ({"max_drawdown_pct": 10, "max_drawdown_eod_basis": "equity"}, "only applies to"),
        ({"daily_loss_action": "pause"}, "daily_loss_action has no effect without daily_loss_pct"),
        ({"daily_loss_reference": "equity"}, "no effect without daily_loss_pct"),
        ({"profit_target_basis": "balance"}, "no effect without profit_target_pct"),
        ({"min_trading_day_profit_pct": 1}, "no effect without min_trading_days"),
        ({"consistency_action": "breach"}, "no effect without consistency_pct"),
        ({"consistency_basis": "target"}, "no effect without consistency_pct"),
        ({"consistency_pct": 30, "consistency_basis": "target"}, "needs a profit_target_pct"),
        # Keys of your own must be JSON values.
        ({"fee": Decimal("NaN")}, "extra.fee must be a finite number"),
        ({"phase": {"split": float("inf")}}, r"extra.phase.split must be a finite number"),
        ({"tags": {1, 2}}, "extra.tags must be a JSON value"),
    ],
)
def test_bad_parameters_are_refused_with_a_clear_message(
    wire: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        RuleSet.from_wire(wire)


def test_the_bounds_themselves_are_accepted() -> None:
    rules = RuleSet.from_wire(
        {
            "profit_target_pct": 1_000_000,
            "max_drawdown_pct": 100,
            "max_drawdown_mode": "eod_trailing",
            "max_drawdown_lock_at_start": True,
            "daily_loss_pct": "0.000001",
            "min_trading_days": 3650,
            "min_trading_day_profit_pct": 0,
            "max_position_pct": "0.000001",
            "inactivity_days": 3650,
            "warn_at_pct": 0,
            "day_time_zone": "Etc/GMT+5",
        }
    )
    assert rules.inactivity_days == 3650 and rules.max_drawdown_pct == 100


def test_extra_numbers_stay_json_numbers_through_a_saved_evaluator_state() -> None:
    # How the client reads stored rules: JSON numbers as int or exact Decimal.
    stored = Rules.from_json(
        b'{"profit_target_pct": 8, "max_drawdown_pct": 10, "fee": 99.5, '
        b'"phase": {"split": 0.8, "steps": [1, 2.25]}, "big": 123456789012345678901234567890}'
    )
    rules = RuleSet.from_wire(stored)
    assert rules.extra == {
        "fee": 99.5,
        "phase": {"split": 0.8, "steps": [1, 2.25]},
        "big": 123456789012345678901234567890,
    }
    saved = msgspec.json.encode(
        Evaluator(rules, starting_balance=10_000, opened_at=datetime(2026, 1, 5, tzinfo=UTC)).state
    )
    assert b'"fee":99.5' in saved and b'"split":0.8' in saved  # numbers, not strings
    back = Evaluator.restore(msgspec.json.decode(saved, type=EvaluatorState)).rules
    assert back == rules
    # Written back to the server the same JSON numbers come out.
    out = msgspec.json.Encoder(decimal_format="number").encode(back.to_wire())
    assert Rules.from_json(out) == stored


def test_an_extra_number_a_float_cannot_hold_stays_an_exact_decimal() -> None:
    rules = RuleSet.from_wire(Rules.from_json(b'{"ratio": 0.12345678901234567891}'))
    assert rules.extra == {"ratio": Decimal("0.12345678901234567891")}
    assert rules.to_wire() == {"ratio": Decimal("0.12345678901234567891")}


def test_extra_may_not_shadow_a_parameter_and_rules_must_be_an_object() -> None:
    with pytest.raises(InvalidArgumentError, match="must not hold rule parameters"):
        RuleSet(extra={"max_drawdown_pct": 5})
    with pytest.raises(InvalidArgumentError, match="JSON object"):
        RuleSet.from_wire([("max_drawdown_pct", 5)])  # type: ignore[arg-type]
