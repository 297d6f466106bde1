"""``client.orders.place_many()`` and ``cancel_market()``: per-entry ids, retries, limits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import polysim_async as ps

from ._helpers import Routes, calls, error_body, make_client, sent_json, url
from ._trader import CID, ME, TIERS, YES, params, sent

BATCH = url("/v1/orders/batch")
ENTRY: dict[str, Any] = {
    "market_id": CID,
    "side": "BUY",
    "outcome": "Yes",
    "order_type": "limit",
    "price": "0.45",
    "quantity": "10",
    "time_in_force": "GTC",
}


def placed(order_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "status": "PENDING",
        "order_type": "limit",
        "price": "0.45",
        "quantity": "10",
        **extra,
    }


REJECTED = {
    "order_id": 0,
    "status": "REJECTED",
    "order_type": "market",
    "side": "BUY",
    "outcome": "Yes",
    "price": "0",
    "quantity": "1",
    "notional": "0",
    "fee": "0",
    "client_order_id": "bot-123",
    "error": "INSUFFICIENT_BALANCE",
    "error_message": "Insufficient balance for BUY order",
}


def bodies(mock: Routes) -> list[Any]:
    return [sent_json(kw) for kw in sent(mock, "/v1/orders/batch")]


def know_tier(mock: Routes, tier: str = "pro") -> None:
    mock.get(url("/v1/keys/tiers"), payload=TIERS)
    mock.get(url("/v1/me"), payload={**ME, "tier": tier})


class TestBody:
    async def test_every_entry_gets_its_own_id_and_no_batch_key(self, mock: Routes) -> None:
        know_tier(mock)
        mock.post(BATCH, payload={"results": [placed(1), placed(2)], "succeeded": 2, "failed": 0})
        async with make_client() as client:
            result = await client.orders.place_many(
                [ENTRY, {**ENTRY, "client_order_id": "mine", "side": "sell"}]
            )
        [body] = bodies(mock)
        ids = [entry.pop("client_order_id") for entry in body["orders"]]
        assert len(ids[0]) == 32 and ids[1] == "mine"
        assert body["orders"][0] == {
            "market_id": CID,
            "side": "BUY",
            "outcome": "Yes",
            "quantity": "10",
            "order_type": "limit",
            "price": "0.45",
            "time_in_force": "GTC",
        }
        assert body["orders"][1]["side"] == "SELL"
        [kwargs] = sent(mock, "/v1/orders/batch")
        assert "Idempotency-Key" not in (kwargs.get("headers") or {})
        assert [o.order_id for o in result.results] == [1, 2]

    async def test_typed_entries_are_accepted(self, mock: Routes) -> None:
        mock.post(BATCH, payload={"results": [placed(1)]})
        entry = ps.PlaceOrderRequest(
            market_id=CID,
            side=ps.Side.BUY,
            outcome="Yes",
            order_type=ps.OrderType.LIMIT,
            price=Decimal("0.45"),
            quantity=Decimal("10"),
        )
        async with make_client() as client:
            await client.orders.place_many([entry])
        [body] = bodies(mock)
        assert body["orders"][0]["price"] == "0.45" and body["orders"][0]["client_order_id"]
        # One entry: every tier allows it, so no tier lookup was made.
        assert len(calls(mock)) == 1

    async def test_a_retried_batch_resends_the_same_ids(self, mock: Routes) -> None:
        know_tier(mock)
        mock.post(BATCH, exception=ConnectionResetError("lost after sending"))
        mock.post(BATCH, status=503, payload=error_body("SERVER_BUSY"))
        mock.post(
            BATCH, status=409, headers={"Retry-After": "1"}, payload=error_body("TRADE_IN_PROGRESS")
        )
        mock.post(BATCH, payload={"results": [placed(1), placed(2)]})
        async with make_client() as client:
            result = await client.orders.place_many([ENTRY, ENTRY])
        sent_bodies = bodies(mock)
        assert len(sent_bodies) == 4 and all(b == sent_bodies[0] for b in sent_bodies)
        ids = [e["client_order_id"] for e in sent_bodies[0]["orders"]]
        assert len(set(ids)) == 2
        assert result.succeeded == 2 and result.failed == 0

    async def test_prepared_entries_keep_their_ids_across_calls(self, mock: Routes) -> None:
        know_tier(mock)
        mock.post(BATCH, status=500, payload=error_body("INTERNAL_ERROR"))
        mock.post(BATCH, payload={"results": [placed(1), placed(2)]})
        async with make_client() as client:
            batch = client.orders.prepare_many([ENTRY, {**ENTRY, "client_order_id": "mine"}])
            assert [type(e) for e in batch] == [ps.PlaceOrderRequest] * 2
            assert batch[0].client_order_id and batch[1].client_order_id == "mine"
            with pytest.raises(ps.ServerError):  # 500: the outcome is unknown
                await client.orders.place_many(batch)
            await client.orders.place_many(batch)  # the same ids again
        first, second = bodies(mock)
        assert first == second
        assert [e["client_order_id"] for e in first["orders"]] == [
            batch[0].client_order_id,
            "mine",
        ]

    @pytest.mark.parametrize(
        ("orders", "message"),
        [
            ([], "at least one order"),
            (ENTRY, "list of orders"),
            ("orders", "list of orders"),
            ([{**ENTRY, "price": None}], r"orders\[0\]: price is required"),
            ([ENTRY, {**ENTRY, "quantity": "-1"}], r"orders\[1\]: quantity"),
            ([{**ENTRY, "colour": "red"}], "unknown order fields: colour"),
            ([{k: v for k, v in ENTRY.items() if k != "side"}], "missing order fields: side"),
            ([5], "mapping of place"),
            (
                [{**ENTRY, "client_order_id": "a"}, {**ENTRY, "client_order_id": "a"}],
                r"orders\[1\]: client_order_id 'a' is used twice",
            ),
        ],
    )
    async def test_bad_batches_are_refused_before_sending(
        self, mock: Routes, orders: Any, message: str
    ) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError, match=message):
                await client.orders.place_many(orders)
        assert calls(mock) == []


class TestResults:
    async def test_per_entry_failures_are_typed(self, mock: Routes) -> None:
        know_tier(mock)
        mock.post(
            BATCH,
            payload={"results": [placed(42), REJECTED], "succeeded": 1, "failed": 1},
        )
        async with make_client() as client:
            result = await client.orders.place_many([ENTRY, ENTRY])
        assert isinstance(result, ps.BatchResult)
        assert [o.order_id for o in result.accepted] == [42]
        [rejected] = result.rejected
        assert rejected.status is ps.OrderStatus.REJECTED and rejected.order_id == 0
        assert (rejected.error, rejected.error_message) == (
            "INSUFFICIENT_BALANCE",
            "Insufficient balance for BUY order",
        )

    @pytest.mark.parametrize("key", ["orders", "items"])
    async def test_sdk_result_keys_and_derived_counts(self, mock: Routes, key: str) -> None:
        error = {**REJECTED, "status": "ERROR"}
        mock.post(BATCH, payload={key: [error]})
        async with make_client() as client:
            result = await client.orders.place_many([ENTRY])
        assert (result.succeeded, result.failed) == (0, 1)
        assert result.rejected[0].status is ps.OrderStatus.ERROR


class TestBatchSize:
    async def test_too_many_for_the_tier_is_refused_before_sending(self, mock: Routes) -> None:
        know_tier(mock, "pro")
        async with make_client() as client:
            with pytest.raises(
                ps.InvalidArgumentError, match=r"6 orders exceed .* batch size of 5"
            ):
                await client.orders.place_many([ENTRY] * 6)
        assert sent(mock, "/v1/orders/batch") == []

    async def test_exactly_the_limit_is_sent(self, mock: Routes) -> None:
        know_tier(mock, "pro")
        mock.post(BATCH, payload={"results": [placed(i) for i in range(5)]})
        async with make_client() as client:
            result = await client.orders.place_many([ENTRY] * 5)
        assert len(result.results) == 5

    async def test_the_header_of_an_earlier_batch_names_the_tier(self, mock: Routes) -> None:
        mock.post(BATCH, payload={"results": [placed(1)]}, headers={"x-ratelimit-tier": "free"})
        mock.get(url("/v1/keys/tiers"), payload=TIERS)
        async with make_client() as client:
            await client.orders.place_many([ENTRY])
            with pytest.raises(ps.InvalidArgumentError, match="batch size of 1"):
                await client.orders.place_many([ENTRY, ENTRY])
        assert [u for _, u, _ in calls(mock, "GET")] == ["https://api.test/v1/keys/tiers"]

    async def test_an_unknown_limit_lets_the_server_decide(self, mock: Routes) -> None:
        mock.get(url("/v1/keys/tiers"), exception=ConnectionRefusedError("down"), repeat=True)
        mock.post(
            BATCH,
            status=400,
            payload={
                "error": "BATCH_LIMIT_EXCEEDED",
                "message": "Batch size 12 exceeds tier limit (10)",
            },
        )
        async with make_client(max_retries=0) as client:
            with pytest.raises(ps.ValidationError) as info:
                await client.orders.place_many([ENTRY] * 12)
        assert info.value.code == "BATCH_LIMIT_EXCEEDED"
        assert len(sent(mock, "/v1/orders/batch")) == 1

    @pytest.mark.parametrize(
        "body", ['[{"tier": "pro", "max_batch_size": "many"}]', '{"tiers": 5}', "<html>"]
    )
    async def test_an_unreadable_tier_table_lets_the_server_decide(
        self, mock: Routes, body: str
    ) -> None:
        mock.get(url("/v1/keys/tiers"), body=body, headers={"x-ratelimit-tier": "pro"})
        mock.post(BATCH, payload={"results": [placed(i) for i in range(6)]}, repeat=True)
        async with make_client() as client:
            assert await client.orders.batch_limit() is None
            assert await client.orders.batch_limit() is None  # not asked again
            result = await client.orders.place_many([ENTRY] * 6)
        assert len(result.results) == 6
        assert len(calls(mock, "GET")) == 1


class TestCancelMarket:
    @pytest.mark.parametrize(
        ("kwargs", "query"),
        [({"market_id": CID}, {"market": CID}), ({"asset_id": YES}, {"asset_id": YES})],
    )
    async def test_one_market_or_one_token(
        self, mock: Routes, kwargs: dict[str, str], query: dict[str, str]
    ) -> None:
        mock.delete(
            url("/v1/cancel-market-orders"), payload={"canceled": ["42"], "not_canceled": {}}
        )
        async with make_client() as client:
            result = await client.orders.cancel_market(**kwargs)
        assert result == ps.CancelAllResult(canceled=["42"], not_canceled={})
        assert params(mock, "/v1/cancel-market-orders") == [query]

    @pytest.mark.parametrize("kwargs", [{}, {"market_id": CID, "asset_id": YES}, {"market_id": ""}])
    async def test_exactly_one_selector(self, mock: Routes, kwargs: dict[str, str]) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError):
                await client.orders.cancel_market(**kwargs)
        assert calls(mock) == []

    async def test_a_repeat_is_harmless_so_it_is_retried(self, mock: Routes) -> None:
        mock.delete(url("/v1/cancel-market-orders"), exception=ConnectionResetError("lost"))
        mock.delete(url("/v1/cancel-market-orders"), payload={"canceled": [], "not_canceled": {}})
        async with make_client() as client:
            await client.orders.cancel_market(market_id=CID)
        assert len(calls(mock)) == 2
