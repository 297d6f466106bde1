"""Wire models: frozen, keyword-only, tolerant of new fields, exact money, aware timestamps."""

from __future__ import annotations

import enum
import importlib
import json
import pkgutil
import types
import typing
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgspec
import pytest

import polysim_async as ps
import polysim_async.models
from polysim_async._codec import decode
from polysim_async.models import (
    AccountState,
    Balance,
    EquityPoint,
    PartnerAccount,
    PartnerUser,
    Position,
    Trade,
    TradePage,
)
from polysim_async.models.common import MoneyStruct, to_decimal

from ._helpers import ACCOUNT_201, ACCOUNT_STATE, EQUITY, USER_201, trade

SAMPLES: list[tuple[type[msgspec.Struct], Any]] = [
    (AccountState, ACCOUNT_STATE),
    (Balance, {"balance": "1.00"}),
    (EquityPoint, EQUITY[0]),
    (PartnerAccount, ACCOUNT_201),
    (PartnerUser, USER_201),
    (Trade, trade(1)),
    (TradePage, {"data": [], "next_cursor": None}),
]


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(("model", "sample"), SAMPLES)
def test_models_are_frozen_keyword_only_and_open(model: type[msgspec.Struct], sample: Any) -> None:
    obj = decode(model, dumps(sample))
    values = [getattr(obj, name) for name in model.__struct_fields__]
    with pytest.raises(TypeError):
        model(*values)
    assert model(**dict(zip(model.__struct_fields__, values, strict=True))) == obj
    with pytest.raises(AttributeError):
        setattr(obj, model.__struct_fields__[0], None)
    assert not model.__struct_config__.forbid_unknown_fields


def test_unknown_fields_are_ignored() -> None:
    body = {**ACCOUNT_STATE, "brand_new_field": {"x": 1}, "risk_score": 0.3}
    body["open_positions"] = [{**ACCOUNT_STATE["open_positions"][0], "extra": True}]
    state = decode(AccountState, dumps(body))
    assert state.account_id == ACCOUNT_STATE["account_id"]


def test_optional_fields_default() -> None:
    minimal = {
        k: ACCOUNT_STATE[k]
        for k in (
            "account_id",
            "external_id",
            "stage",
            "status",
            "balance",
            "starting_balance",
            "equity",
            "unrealized_pnl",
        )
    }
    state = decode(AccountState, dumps(minimal))
    assert state.realized_pnl is None
    assert state.open_positions == []
    assert state.rules is None and state.metadata is None and state.updated_at is None


class TestSeedPayloads:
    def test_register_response(self) -> None:
        user = decode(PartnerUser, dumps(USER_201))
        assert user.user_id == 12345
        assert user.created is True
        assert user.tenant_user_id == USER_201["tenant_user_id"]

    def test_created_account(self) -> None:
        account = decode(PartnerAccount, dumps(ACCOUNT_201))
        assert account.stage is ps.Stage.CHALLENGE
        assert account.status is ps.AccountStatus.ACTIVE
        assert account.starting_balance == Decimal("10000.00")
        assert account.rules == ps.Rules(
            profit_target_pct=Decimal(20), max_drawdown_pct=Decimal(10)
        )
        assert account.metadata == {"plan": "10k", "attempt": 1}

    def test_account_state(self) -> None:
        state = decode(AccountState, dumps(ACCOUNT_STATE))
        assert state.balance == Decimal("9875.12")
        assert state.equity == Decimal("10142.42")
        pos = state.open_positions[0]
        assert pos.quantity == Decimal("100.0000")
        assert str(pos.quantity) == "100.0000"  # scale preserved
        assert state.updated_at == datetime(2026, 6, 4, 14, 10, 8, 55516, tzinfo=timezone.utc)

    def test_trade_page(self) -> None:
        page = decode(TradePage, dumps({"data": [trade(8881)], "next_cursor": None}))
        fill = page.data[0]
        assert fill.side is ps.Side.BUY
        assert (fill.price, fill.notional, fill.fee) == (
            Decimal("0.4100"),
            Decimal("4.10"),
            Decimal("0.00"),
        )
        assert page.next_cursor is None

    def test_equity(self) -> None:
        points = decode(list[EquityPoint], dumps(EQUITY))
        assert [p.pnl for p in points] == [Decimal("-0.20"), Decimal("0.50")]


class TestMoney:
    def test_money_is_exact_decimal_never_float(self) -> None:
        state = decode(AccountState, dumps({**ACCOUNT_STATE, "unrealized_pnl": "0.1"}))
        for value in (state.balance, state.equity, state.unrealized_pnl, state.starting_balance):
            assert type(value) is Decimal
        assert state.unrealized_pnl + Decimal("0.2") == Decimal("0.3")

    def test_long_decimal_tails_survive(self) -> None:
        bal = decode(Balance, b'{"balance": "1.00", "total_value": "-242.50000000000000000"}')
        assert str(bal.total_value) == "-242.50000000000000000"

    def test_json_numbers_are_read_exactly_too(self) -> None:
        bal = decode(Balance, b'{"balance": 9875.12}')
        assert type(bal.balance) is Decimal
        assert bal.balance == Decimal("9875.12")

    def test_trade_money_reads_as_exact_decimals(self) -> None:
        fill = decode(Trade, dumps(trade(1, price="0.4100", realized_pnl="-1.25")))
        for value in (fill.price, fill.quantity, fill.notional, fill.fee, fill.realized_pnl):
            assert type(value) is Decimal
        assert str(fill.price) == "0.4100"
        assert fill.realized_pnl == Decimal("-1.25")

    @pytest.mark.parametrize("bad", ["abc", "NaN", "Infinity", 0.41])
    def test_malformed_trade_money_is_a_decode_error_never_a_decimal_error(self, bad: Any) -> None:
        # Trade keeps wire strings and converts on access, so the error may come late.
        try:
            fill = decode(Trade, dumps(trade(1, price=bad)))
        except ps.DecodeError:
            return
        with pytest.raises(ps.DecodeError, match="price"):
            fill.price  # noqa: B018

    def test_non_numeric_money_is_a_decode_error(self) -> None:
        with pytest.raises(ps.DecodeError):
            decode(Balance, b'{"balance": "lots"}')


def _all_models() -> list[type[msgspec.Struct]]:
    found: list[type[msgspec.Struct]] = []
    for info in pkgutil.iter_modules(polysim_async.models.__path__):
        module = importlib.import_module(f"polysim_async.models.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, msgspec.Struct)
                and value.__module__ == module.__name__
            ):
                found.append(value)
    return found


def _is_money(tp: Any) -> bool:
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else ()
    return tp is Decimal or Decimal in args


def _sample(tp: Any) -> Any:
    """A valid wire value of type ``tp`` (the first choice of every union)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _sample(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return _sample(next(a for a in typing.get_args(tp) if a is not type(None)))
    if origin in (list, tuple, set, frozenset):
        return []
    if origin is dict or tp is dict:
        return {}
    if origin is typing.Literal:
        return typing.get_args(tp)[0]
    simple = {
        Decimal: "1.5",
        str: "x",
        int: 1,
        float: 1.5,
        bool: True,
        datetime: "2026-01-02T03:04:05Z",
    }
    if tp in simple:
        return simple[tp]
    if tp is Any or tp is msgspec.Raw:
        return None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return next(iter(tp)).value
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return _sample_struct(tp)
    raise AssertionError(f"no sample for {tp!r}")


def _sample_struct(model: type[msgspec.Struct]) -> dict[str, Any]:
    config = model.__struct_config__
    body: dict[str, Any] = {}
    if isinstance(config.tag_field, str):
        body[config.tag_field] = config.tag
    for field in msgspec.structs.fields(model):
        if field.required:
            body[field.encode_name] = _sample(field.type)
    return body


MONEY_MODELS = [
    m for m in _all_models() if any(_is_money(f.type) for f in msgspec.structs.fields(m))
]
NOT_MONEY = ["NaN", "sNaN", "-NaN", "Infinity", "-Infinity", "inf", "1e999999", "-1e31", "1e-31"]


class TestMoneyIsFinite:
    """Every money field of every model refuses NaN, infinities and absurd exponents."""

    def test_the_walk_finds_the_money_models(self) -> None:
        names = {m.__name__ for m in MONEY_MODELS}
        assert {"AccountState", "Balance", "Me", "Order", "Wallet", "ApiBalanceReset"} <= names
        assert len(MONEY_MODELS) >= 25

    @pytest.mark.parametrize("model", MONEY_MODELS, ids=lambda m: m.__name__)
    def test_every_money_field_refuses_non_finite_values(self, model: type[msgspec.Struct]) -> None:
        assert issubclass(model, MoneyStruct)
        good = _sample_struct(model)
        decode(model, dumps(good))  # the sample itself is valid
        for field in msgspec.structs.fields(model):
            if not _is_money(field.type):
                continue
            assert decode(model, dumps({**good, field.encode_name: "1e30"})) is not None
            for bad in NOT_MONEY:
                with pytest.raises(ps.DecodeError, match=field.name):
                    decode(model, dumps({**good, field.encode_name: bad}))

    def test_a_model_built_by_hand_refuses_them_too(self) -> None:
        with pytest.raises(ValueError, match="price is not a finite"):
            ps.Order(order_id=1, status=ps.OrderStatus.PENDING, price=Decimal("NaN"))
        assert ps.Order(order_id=1, status=ps.OrderStatus.PENDING, price=None).price is None

    @pytest.mark.parametrize("bad", NOT_MONEY)
    def test_to_decimal_applies_the_same_rule(self, bad: str) -> None:
        with pytest.raises(ps.DecodeError, match="fee"):
            to_decimal(bad, "fee")
        assert to_decimal("-1e30", "fee") == Decimal("-1e30")

    async def test_a_call_answered_with_nan_money_raises_decode_error(self) -> None:
        # Before: accepted, and the rules engine raised decimal.InvalidOperation on it.
        def handler(request: ps.Request) -> ps.Response:
            return ps.Response.from_json({**ACCOUNT_STATE, "equity": "sNaN"})

        transport = ps.MockTransport(handler)
        async with ps.Client("tk_live_x", base_url="https://x.test", transport=transport) as client:
            with pytest.raises(ps.DecodeError, match="equity"):
                await client.partner.accounts.get(ACCOUNT_STATE["account_id"])


class TestTimestamps:
    @pytest.mark.parametrize(
        "stamp",
        ["2026-02-06T12:00:45Z", "2026-02-06T12:00:45+00:00", "2026-02-06T12:00:45.000000+00:00"],
    )
    def test_z_and_offset_forms(self, stamp: str) -> None:
        fill = decode(Trade, dumps(trade(1, filled_at=stamp)))
        assert fill.filled_at == datetime(2026, 2, 6, 12, 0, 45, tzinfo=timezone.utc)
        assert fill.filled_at.utcoffset() == timedelta(0)

    def test_other_offsets_keep_the_instant(self) -> None:
        fill = decode(Trade, dumps(trade(1, filled_at="2026-02-06T14:00:45+02:00")))
        assert fill.filled_at == datetime(2026, 2, 6, 12, 0, 45, tzinfo=timezone.utc)

    @pytest.mark.parametrize("model", ["trade", "equity", "state"])
    def test_naive_timestamps_are_decode_errors(self, model: str) -> None:
        naive = "2026-02-06T12:00:45"
        with pytest.raises(ps.DecodeError):
            if model == "trade":
                decode(Trade, dumps(trade(1, filled_at=naive)))
            elif model == "equity":
                decode(list[EquityPoint], dumps([{**EQUITY[0], "timestamp": naive}]))
            else:
                decode(AccountState, dumps({**ACCOUNT_STATE, "updated_at": naive}))


class TestEnums:
    def test_enum_members(self) -> None:
        assert ps.Side("SELL") is ps.Side.SELL
        assert [s.value for s in ps.Stage] == ["demo", "challenge", "funded"]
        assert [s.value for s in ps.AccountStatus] == ["active", "closed", "archived"]
        assert ps.Side.BUY == "BUY"  # str enums compare with their wire value

    @pytest.mark.parametrize(
        ("model", "body"),
        [
            (Trade, trade(1, side="HOLD")),
            (AccountState, {**ACCOUNT_STATE, "stage": "elite"}),
            (AccountState, {**ACCOUNT_STATE, "status": "frozen"}),
        ],
    )
    def test_unknown_enum_values_are_decode_errors(
        self, model: type[msgspec.Struct], body: dict[str, Any]
    ) -> None:
        with pytest.raises(ps.DecodeError):
            decode(model, dumps(body))

    def test_closed_account_state(self) -> None:
        state = decode(AccountState, dumps({**ACCOUNT_STATE, "status": "closed"}))
        assert state.status is ps.AccountStatus.CLOSED


def test_position_mark_fields_may_be_null() -> None:
    row = {
        "id": 7,
        "market_id": "0xabc",
        "outcome": "Yes",
        "quantity": "5.0000",
        "avg_entry_price": "0.5000",
        "current_price": None,
        "market_value": None,
        "unrealized_pnl": None,
        "status": "OPEN",
        "market_question": None,
    }
    pos = decode(Position, dumps(row))
    assert pos.current_price is None and pos.market_value is None
    assert pos.quantity == Decimal("5.0000")
