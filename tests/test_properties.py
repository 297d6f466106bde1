"""Property tests: every decoder and header parser fed arbitrary and mutated input.

What reaches a caller from any of them is a value or a library error, never a
foreign exception (``RecursionError``, ``UnicodeEncodeError``, ``OverflowError``,
a msgspec or ``decimal`` error). The examples are derived from a fixed seed
(``derandomize``), so a run never depends on luck or on the machine's speed.
"""

from __future__ import annotations

import contextlib
import json
import math
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polysim_async as ps
from polysim_async._codec import decode, encode_rules
from polysim_async._errors import from_response, parse_retry_after
from polysim_async._ratelimit import RateLimiter, advertised_limits
from polysim_async.keys import _WsTokenWire
from polysim_async.models import Rules
from polysim_async.models.executions import ErrorFrame, FrameError, decode_frame

from ._helpers import ACCOUNT_201, ACCOUNT_STATE, EQUITY, USER_201, FakeClock, trade

PROPERTY = settings(
    max_examples=100,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["\ud800", "\udfff x", "\x00", "\u202e", "A_CODE", "1e400"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _valid(tp: Any) -> Any:
    order = {
        "order_id": 42,
        "status": "PENDING",
        "order_type": "limit",
        "side": "BUY",
        "outcome": "Yes",
        "price": "0.60",
        "quantity": "10",
    }
    row = {**order, "market_id": "m", "limit_price": "0.6", "created_at": "2026-02-06T11:55:00Z"}
    return {
        ps.AccountState: ACCOUNT_STATE,
        ps.PartnerAccount: ACCOUNT_201,
        ps.PartnerUser: USER_201,
        ps.LoginLink: {"status": "accepted"},
        ps.TradePage: {"data": [trade(1), trade(2)], "next_cursor": "abc"},
        ps.Balance: {"balance": "9.50", "starting_balance": "10", "total_value": "9.5"},
        list[ps.EquityPoint]: EQUITY,
        list[ps.Position]: [
            {
                "id": 1,
                "market_id": "m",
                "outcome": "Yes",
                "quantity": "1",
                "avg_entry_price": "0.5",
                "status": "OPEN",
            }
        ],
        ps.HistoryPage: {
            "data": [{**order, "market_id": "m", "notional": "6", "fee": "0"}],
            "next_cursor": "1",
        },
        ps.Order: order,
        ps.OrderRow: row,
        ps.OrderPage: {"orders": [row], "next_cursor": "c", "has_more": True},
        ps.CancelAllResult: {"canceled": ["1"], "not_canceled": {"2": "filled"}},
        _WsTokenWire: {"token": "t", "expires_in": 60},
    }[tp]


MODELS = [
    ps.AccountState,
    ps.PartnerAccount,
    ps.PartnerUser,
    ps.LoginLink,
    ps.TradePage,
    ps.Balance,
    list[ps.EquityPoint],
    list[ps.Position],
    ps.HistoryPage,
    ps.Order,
    ps.OrderRow,
    ps.OrderPage,
    ps.CancelAllResult,
    _WsTokenWire,
]


def _read_everything(value: Any) -> None:
    """Touch what is computed on access (money of trades, rules), as a caller would."""
    if isinstance(value, ps.TradePage):
        for t in value.data:
            _ = (t.price, t.quantity, t.notional, t.fee, t.realized_pnl)
    if isinstance(value, (ps.AccountState, ps.PartnerAccount)):
        rules = value.rules
        if rules is not None:
            _ = (rules.profit_target_pct, rules.max_drawdown_pct, rules.to_dict())


@st.composite
def mutated(draw: st.DrawFn, tp: Any) -> bytes:
    """A valid body with one part replaced by arbitrary JSON, or its bytes damaged."""
    value = json.loads(json.dumps(_valid(tp)))
    target = value[0] if isinstance(value, list) and value else value
    if isinstance(target, dict) and target:
        key = draw(st.sampled_from(sorted(target)))
        target[key] = draw(json_values)
    raw = json.dumps(value).encode()
    if draw(st.booleans()):
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + draw(st.binary(max_size=4)) + raw[at + 1 :]
    return raw


@pytest.mark.parametrize("tp", MODELS, ids=lambda tp: getattr(tp, "__name__", str(tp)))
@PROPERTY
@given(data=st.data())
def test_decoders_return_a_value_or_a_decode_error(tp: Any, data: st.DataObject) -> None:
    raw = data.draw(st.one_of(st.binary(max_size=64), mutated(tp)))
    try:
        value = decode(tp, raw)
        _read_everything(value)
    except ps.DecodeError as exc:
        str(exc).encode("utf-8")


@pytest.mark.parametrize("tp", MODELS, ids=lambda tp: getattr(tp, "__name__", str(tp)))
def test_decoders_survive_deep_nesting(tp: Any) -> None:
    deep = b'{"data": [], "x": ' + b"[" * 4000 + b"]" * 4000 + b"}"
    with pytest.raises(ps.DecodeError):
        decode(tp, b"[" * 4000 + b"]" * 4000)
    with contextlib.suppress(ps.DecodeError):  # a value or a DecodeError, nothing else
        decode(tp, deep)


headers_st = st.dictionaries(
    st.sampled_from(
        [
            "X-Polysim-Code",
            "X-Request-Id",
            "Retry-After",
            "X-RateLimit-Limit",
            "X-RateLimit-Limit-Per-Second",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "X-Polysim-RateLimit-Limit",
            "Content-Type",
        ]
    ),
    st.text(max_size=30) | st.sampled_from(["0", "-1", "1e309", "nan", "inf", "60", "1e9"]),
    max_size=6,
)
bodies_st = st.one_of(
    st.binary(max_size=80),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {},
        optional={
            "error": json_values,
            "message": json_values,
            "code": json_values,
            "detail": json_values,
            "retry_after": json_values,
        },
    ).map(lambda v: json.dumps(v).encode()),
)


@PROPERTY
@given(
    status=st.integers(min_value=100, max_value=999),
    headers=headers_st,
    body=bodies_st,
    reason=st.none() | st.text(max_size=20),
)
def test_from_response_always_builds_a_printable_status_error(
    status: int, headers: dict[str, str], body: bytes, reason: str | None
) -> None:
    error = from_response(status, headers, body, reason=reason)
    assert isinstance(error, ps.APIStatusError) and error.status == status
    str(error).encode("utf-8")
    repr(error).encode("utf-8")
    assert error.retry_after is None or (
        math.isfinite(error.retry_after) and error.retry_after >= 0
    )
    assert len(error.body) <= 2048


@PROPERTY
@given(value=st.none() | st.text(max_size=40), now=st.floats(0, 4e9))
def test_retry_after_is_none_or_a_finite_non_negative_wait(value: str | None, now: float) -> None:
    seconds = parse_retry_after(value, now=now)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)


@PROPERTY
@given(headers=headers_st, kind=st.sampled_from(["tenant", "trader"]))
def test_advertised_limits_are_plausible_or_ignored(headers: dict[str, str], kind: Any) -> None:
    per_second, per_minute = advertised_limits(headers, kind)
    top = (50, 3000) if kind == "tenant" else (100, 6000)
    assert per_second is None or 2 <= per_second <= top[0]
    assert per_minute is None or 120 <= per_minute <= top[1]
    if per_second is not None and per_minute is not None:
        assert per_minute >= per_second


@PROPERTY
@given(headers=headers_st, adaptive=st.booleans())
def test_observing_any_headers_keeps_the_limiter_sane(
    headers: dict[str, str], adaptive: bool
) -> None:
    clock = FakeClock()
    limiter = RateLimiter(ps.RateLimit(), clock=clock, adaptive=adaptive)
    limiter.observe(headers)
    assert limiter._paused_until <= clock.now() + 60
    assert limiter.limit is not None
    assert (limiter.limit.per_second or 2) >= 2 and (limiter.limit.per_minute or 120) >= 120


frames_st = st.one_of(
    st.binary(max_size=60),
    st.text(max_size=60),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["fill", "execution", "pong", "connected", "error", "x"])},
        optional={
            "order_id": json_values,
            "market_id": json_values,
            "side": st.sampled_from(["BUY", "SELL", "buy", 3]),
            "outcome": json_values,
            "price": json_values,
            "quantity": json_values,
            "filled_at": json_values | st.sampled_from(["2026-02-06T12:00:45Z", 1770379245]),
            "timestamp": json_values,
            "data": json_values,
            "message": json_values,
        },
    ).map(json.dumps),
)


@PROPERTY
@given(frame=frames_st)
def test_frames_decode_to_a_fill_an_error_frame_nothing_or_a_frame_error(
    frame: str | bytes,
) -> None:
    try:
        result = decode_frame(frame)
    except FrameError as exc:
        str(exc).encode("utf-8")
        return
    assert result is None or isinstance(result, (ps.Fill, ErrorFrame))


rules_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


@PROPERTY
@given(rules=st.dictionaries(st.text(max_size=10), rules_values, max_size=6))
def test_any_rules_object_round_trips_exactly_through_the_wire(rules: dict[str, Any]) -> None:
    raw = encode_rules(rules)
    assert raw is not None
    back = Rules.from_json(bytes(raw))
    assert dict(back) == rules
    # and once more, as the server would echo it inside an account
    account = msgspec.json.encode({**ACCOUNT_201, "rules": msgspec.json.decode(bytes(raw))})
    assert decode(ps.PartnerAccount, account).rules is not None


@PROPERTY
@given(target=st.decimals(min_value=0, max_value=10**6, allow_nan=False, places=6))
def test_typed_rules_stay_exact_decimals(target: Decimal) -> None:
    raw = encode_rules({"profit_target_pct": target})
    assert raw is not None and b'"' not in bytes(raw).split(b":")[1]  # a JSON number
    assert Rules.from_json(bytes(raw)).profit_target_pct == target
