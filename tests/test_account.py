"""Trader account reads: the equity curve (seed), balance and positions (API.md §4.3)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

import polysim_async as ps

from ._helpers import EQUITY, Routes, calls, make_client, url

EQUITY_URL = url("/v1/account/equity")


def query(mock: Routes) -> dict[str, str]:
    ((_, _, kwargs),) = [c for c in calls(mock) if "/v1/account/" in c[1]]
    return dict(kwargs["params"])


class TestEquity:
    async def test_default_is_seven_days_of_the_api_wallet_oldest_first(self, mock: Routes) -> None:
        mock.get(EQUITY_URL, payload=EQUITY)
        async with make_client() as client:
            points = await client.account.equity()
        assert query(mock) == {"days": "7"}
        assert [type(p) for p in points] == [ps.EquityPoint, ps.EquityPoint]
        assert points[0].timestamp < points[1].timestamp
        assert points[0].timestamp == datetime(2026, 2, 6, 10, tzinfo=timezone.utc)
        assert points[1].total_value == Decimal("10000.50")
        assert points[0].pnl == Decimal("-0.20")
        assert all(type(p.cash_balance) is Decimal for p in points)

    @pytest.mark.parametrize(
        ("wallet_id", "sent"),
        [("all", "all"), ("api", "api"), ("ALL", "all"), (" Api ", "api"), (42, "42")],
    )
    async def test_wallet_scopes(self, mock: Routes, wallet_id: Any, sent: str) -> None:
        mock.get(EQUITY_URL, payload=[])
        async with make_client() as client:
            assert await client.account.equity(days=30, wallet_id=wallet_id) == []
        assert query(mock) == {"days": "30", "wallet_id": sent}

    @pytest.mark.parametrize("days", [1, 90])
    async def test_days_bounds_are_inclusive(self, mock: Routes, days: int) -> None:
        mock.get(EQUITY_URL, payload=[])
        async with make_client() as client:
            await client.account.equity(days=days)
        assert query(mock)["days"] == str(days)

    @pytest.mark.parametrize("days", [0, 91, -7, True, 7.0, "7", None])
    async def test_days_outside_1_to_90_are_refused_before_any_request(
        self, mock: Routes, days: Any
    ) -> None:
        async with make_client() as client:
            with pytest.raises(ValueError, match="days") as info:
                await client.account.equity(days=days)
        assert isinstance(info.value, ps.InvalidArgumentError)
        assert calls(mock) == []

    @pytest.mark.parametrize("wallet_id", ["main", "", "12", -1, 1.5, True, ["api"]])
    async def test_bad_wallet_ids_are_refused_before_any_request(
        self, mock: Routes, wallet_id: Any
    ) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError, match="wallet_id"):
                await client.account.equity(wallet_id=wallet_id)
        assert calls(mock) == []

    async def test_naive_timestamps_are_decode_errors(self, mock: Routes) -> None:
        mock.get(EQUITY_URL, payload=[{**EQUITY[0], "timestamp": "2026-02-06T10:00:00"}])
        async with make_client() as client:
            with pytest.raises(ps.DecodeError):
                await client.account.equity()

    async def test_wallet_not_found(self, mock: Routes) -> None:
        mock.get(
            EQUITY_URL,
            status=404,
            payload={"error": "WALLET_NOT_FOUND", "message": "wallet 42 is not yours"},
        )
        async with make_client() as client:
            with pytest.raises(ps.NotFoundError) as info:
                await client.account.equity(wallet_id=42)
        assert info.value.code == "WALLET_NOT_FOUND"

    async def test_out_of_range_days_from_the_server_side_is_a_validation_error(
        self, mock: Routes
    ) -> None:
        mock.get(EQUITY_URL, status=422, payload={"detail": [{"msg": "days <= 90"}]})
        async with make_client() as client:
            with pytest.raises(ps.ValidationError, match="days <= 90"):
                await client.account.equity(days=90)


class TestBalanceAndPositions:
    async def test_balance(self, mock: Routes) -> None:
        mock.get(
            url("/v1/account/balance"),
            payload={
                "balance": "9993.50",
                "currency": "USD",
                "starting_balance": "10000.00",
                "unrealized_pnl": "-242.50000000000000000",
                "total_value": "9757.50000000000000000",
            },
        )
        async with make_client() as client:
            bal = await client.account.balance()
        assert bal.balance == Decimal("9993.50")
        assert str(bal.unrealized_pnl) == "-242.50000000000000000"
        assert calls(mock)[0][2]["params"] is None

    async def test_positions_with_filters(self, mock: Routes) -> None:
        row = {
            "id": 1,
            "market_id": "0xabc",
            "outcome": "Yes",
            "quantity": "10.0000",
            "avg_entry_price": "0.4100",
            "current_price": None,
            "market_value": None,
            "unrealized_pnl": None,
            "status": "OPEN",
            "market_question": "Will it rain?",
        }
        mock.get(url("/v1/account/positions"), payload=[row])
        async with make_client() as client:
            (pos,) = await client.account.positions(status="open", wallet_id="all")
        assert query(mock) == {"status": "OPEN", "wallet_id": "all"}
        assert pos.current_price is None
        assert pos.quantity == Decimal("10.0000")

    @pytest.mark.parametrize("status", ["ALL", "CLOSED_BY_RESET", 1])
    async def test_positions_refuse_bad_status(self, mock: Routes, status: Any) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError):
                await client.account.positions(status=status)
        assert calls(mock) == []


HISTORY_ROW = {
    "order_id": 9,
    "market_id": "0xabc",
    "side": "BUY",
    "outcome": "Yes",
    "price": "0.65",
    "quantity": "10",
    "notional": "6.50",
    "fee": "0",
    "filled_at": "2026-02-06T12:00:45Z",
}


class TestHistory:
    async def test_history_walks_offset_pages_newest_first(self, mock: Routes) -> None:
        mock.get(url("/v1/account/history"), payload={"data": [HISTORY_ROW], "next_cursor": "1"})
        mock.get(url("/v1/account/history"), payload={"data": [HISTORY_ROW], "next_cursor": ""})
        async with make_client() as client:
            rows = [row async for row in client.account.history(side="buy", wallet_id="all")]
        assert [r.order_id for r in rows] == [9, 9]
        (_, _, first), (_, _, second) = calls(mock)
        assert first["params"] == {
            "limit": "200",
            "envelope": "true",
            "side": "BUY",
            "wallet_id": "all",
        }
        assert second["params"]["offset"] == "1"

    async def test_history_pages_resume_from_a_cursor_and_carry_the_request_id(
        self, mock: Routes
    ) -> None:
        mock.get(
            url("/v1/account/history"),
            payload={"data": [], "next_cursor": ""},
            headers={"X-Request-Id": "h-1"},
        )
        async with make_client() as client:
            pages = [p async for p in client.account.history_pages(page_size=5, cursor="40")]
        assert pages[0].request_id == "h-1"
        assert calls(mock)[0][2]["params"]["offset"] == "40"
        assert calls(mock)[0][2]["params"]["limit"] == "5"

    @pytest.mark.parametrize(
        "kwargs", [{"page_size": 201}, {"cursor": "abc"}, {"side": "HOLD"}, {"wallet_id": "x"}]
    )
    async def test_bad_arguments_are_refused_before_sending(
        self, mock: Routes, kwargs: dict[str, Any]
    ) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError):
                client.account.history(**kwargs)
        assert calls(mock) == []

    async def test_equity_options_are_keyword_only_with_a_deprecated_positional_form(
        self, mock: Routes
    ) -> None:
        mock.get(url("/v1/account/equity"), payload=EQUITY, repeat=True)
        async with make_client() as client:
            with pytest.warns(DeprecationWarning, match="days"):
                await client.account.equity(30)  # type: ignore[misc]
        assert calls(mock)[0][2]["params"] == {"days": "30"}
