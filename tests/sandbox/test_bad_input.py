"""Malformed requests get the documented status and envelope, never a 500."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest

from polysim_async.sandbox import Sandbox

from ._helpers import Api, assert_error

JSON = {"Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def no_internal_errors(caplog: pytest.LogCaptureFixture) -> Any:
    """Fail the test if any request reached the catch-all (it logs at ERROR)."""
    caplog.set_level(logging.ERROR, logger="polysim_async.sandbox")
    yield
    assert not [r for r in caplog.records if r.name == "polysim_async.sandbox"]


async def test_register_bad_bodies(api: Api) -> None:
    bodies: list[bytes] = [
        b"",
        b"{",
        b"[]",
        b'"text"',
        b"null",
        b'{"email": "a@b.co"}',
        b'{"external_id": "", "email": "a@b.co"}',
        b'{"external_id": "' + b"x" * 256 + b'", "email": "a@b.co"}',
        b'{"external_id": 5, "email": "a@b.co"}',
        b'{"external_id": "x"}',
        b'{"external_id": "x", "email": "ab"}',
        b'{"external_id": "x", "email": "' + b"a" * 320 + b'@b.co"}',
        b'{"external_id": "x", "email": "no-at-sign"}',
        b'{"external_id": "x", "email": ["a@b.co"]}',
        b'{"external_id": "x", "email": "a@b.co", "metadata": [1]}',
        b"\xff\xfe",
    ]
    for raw in bodies:
        got = await api.partner("POST", "/users", data=raw, headers=JSON)
        assert_error(*got, 422, "VALIDATION_FAILED")


async def test_create_account_bad_bodies(api: Api) -> None:
    _, _, u = await api.partner("POST", "/users", json={"external_id": "x", "email": "x@e.com"})
    base = {
        "user_id": u["user_id"],
        "external_id": "a",
        "stage": "demo",
        "starting_balance": "100.00",
    }
    bad: list[dict[str, Any]] = [
        {"user_id": "1"},
        {"user_id": True},
        {"user_id": None},
        {"external_id": ""},
        {"external_id": "e" * 256},
        {"stage": "pro"},
        {"stage": None},
        {"stage": 1},
        {"starting_balance": "-5"},
        {"starting_balance": "0"},
        {"starting_balance": "1e12"},
        {"starting_balance": "100.001"},
        {"starting_balance": "lots"},
        {"starting_balance": "NaN"},
        {"starting_balance": "Infinity"},
        {"starting_balance": None},
        {"starting_balance": [1]},
        {"metadata": "x"},
        {"rules": "x"},
        {"rules": [1, 2]},
    ]
    for patch in bad:
        body = {**base, **patch}
        got = await api.partner("POST", "/accounts", json=body)
        assert_error(*got, 422, "VALIDATION_FAILED")
    ok = await api.partner("POST", "/accounts", json={**base, "starting_balance": 250})
    assert ok[0] == 201 and ok[2]["starting_balance"] == "250.00"


async def test_trader_bad_bodies_and_queries(api: Api, sb: Sandbox) -> None:
    for raw in (b"", b"{", b'"x"', b"5"):
        got = await api.trader("POST", "/orders", data=raw, headers=JSON)
        assert_error(*got, 422, "VALIDATION_FAILED")
    long_key = {"Idempotency-Key": "k" * 300}
    order = {
        "market_id": sb.market_id,
        "side": "BUY",
        "outcome": "Yes",
        "quantity": "5",
        "price": "0.6",
    }
    assert_error(
        *await api.trader("POST", "/orders", json=order, headers=long_key), 422, "VALIDATION_FAILED"
    )
    for path in (
        "/account/positions?wallet_id=1.5",
        "/account/equity?days=",
        "/orders?limit=x",
        "/account/history?offset=x",
        "/orders/1?wallet_id=x",
    ):
        assert_error(*await api.trader("GET", path), 422, "VALIDATION_FAILED")


async def test_oversized_body_is_413(api: Api) -> None:
    big = io.BytesIO(b"{" + b" " * (2 << 20) + b"}")
    got = await api.partner("POST", "/users", data=big, headers=JSON)
    assert_error(*got, 413, "PAYLOAD_TOO_LARGE")


async def test_unexpected_exception_becomes_500_envelope(
    api: Api, sb: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret detail")

    sb._core.exchange.valuation = boom  # type: ignore[method-assign]
    status, headers, body = await api.trader("GET", "/account/balance")
    assert_error(status, headers, body, 500, "INTERNAL_ERROR")
    assert "secret" not in body["message"]
    assert any("sandbox handler failed" in r.message for r in caplog.records)
    caplog.clear()
