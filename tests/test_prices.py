"""``client.prices.batch()`` and the price channel's frame shapes (API.md §10)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import msgspec
import pytest

import polysim_async as ps
from polysim_async.models.prices import (
    MAX_PRICE_SUBSCRIPTIONS,
    PriceCommand,
    PriceErrorFrame,
    PriceFrame,
    SubscribedFrame,
)

from ._helpers import Routes, calls, error_body, make_client, sent_json, url
from ._trader import CID, CID2, ME, NO, TIERS, YES, sent

BATCH = url("/v1/prices/batch")
ROW = {
    "condition_id": CID,
    "buy": "0.65",
    "sell": "0.35",
    "outcomes": [
        {"label": "Yes", "price": "0.65", "token_id": YES},
        {"label": "No", "price": "0.35", "token_id": NO},
    ],
}


def batches(mock: Routes) -> list[Any]:
    return [sent_json(kw)["market_ids"] for kw in sent(mock, "/v1/prices/batch")]


class TestBatch:
    async def test_one_market_needs_no_tier_lookup(self, mock: Routes) -> None:
        mock.post(BATCH, payload=[ROW])
        async with make_client() as client:
            [row] = await client.prices.batch([CID])
        assert batches(mock) == [[CID]] and len(calls(mock)) == 1
        assert row.buy == Decimal("0.65") and row.outcomes[1].token_id == NO

    async def test_a_market_without_a_price_has_only_its_id(self, mock: Routes) -> None:
        mock.get(url("/v1/keys/tiers"), payload=TIERS)
        mock.get(url("/v1/me"), payload=ME)
        mock.post(BATCH, payload=[ROW, {"condition_id": CID2}])
        async with make_client() as client:
            rows = await client.prices.batch([CID, CID2])
        assert rows[1] == ps.MarketPrice(condition_id=CID2)
        assert rows[1].buy is None and rows[1].outcomes == []

    async def test_a_long_list_is_split_by_the_tier_batch_size(self, mock: Routes) -> None:
        ids = [f"0x{i:02d}" for i in range(12)]
        mock.get(url("/v1/keys/tiers"), payload=TIERS)
        mock.get(url("/v1/me"), payload=ME)  # pro: 5 per request
        for start in range(0, 12, 5):
            chunk = ids[start : start + 5]
            mock.post(BATCH, payload=[{"condition_id": i} for i in chunk])
        async with make_client() as client:
            rows = await client.prices.batch(ids)
        assert batches(mock) == [ids[0:5], ids[5:10], ids[10:12]]
        assert [r.condition_id for r in rows] == ids

    async def test_without_a_known_tier_the_schema_ceiling_applies(self, mock: Routes) -> None:
        ids = [f"0x{i:02d}" for i in range(60)]
        mock.get(url("/v1/keys/tiers"), status=404, payload=error_body("NOT_FOUND"))
        mock.post(BATCH, payload=[], repeat=True)
        async with make_client() as client:
            assert await client.prices.batch(ids) == []
        assert [len(b) for b in batches(mock)] == [50, 10]

    async def test_prices_are_retried_like_a_read(self, mock: Routes) -> None:
        mock.post(BATCH, exception=ConnectionResetError("reset"))
        mock.post(BATCH, payload=[ROW])
        async with make_client() as client:
            assert len(await client.prices.batch([CID])) == 1
        assert len(calls(mock)) == 2

    @pytest.mark.parametrize("ids", [[], CID, [CID, ""], [CID, 5], None])
    async def test_bad_lists_are_refused(self, mock: Routes, ids: Any) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError):
                await client.prices.batch(ids)
        assert calls(mock) == []


TICK = {
    "type": "price",
    "market_id": CID,
    "condition_id": CID,
    "buy": "0.67",
    "sell": "0.33",
    "best_bid": "0.66",
    "best_ask": "0.68",
    "last_trade": "0.67",
    "volume": "125000.50",
    "outcomes": [{"label": "Yes", "price": "0.67", "token_id": YES}],
    "tokens": {YES: {"label": "Yes", "price": "0.67"}},
    "active": True,
    "closed": False,
    "source": "websocket",
    "emit_ts_ms": 1715518800250,
    "updated_at": "2026-05-11T20:30:45.250000+00:00",
    "ws_updated_at": "2026-05-11T20:30:45.250000+00:00",
}
frames = msgspec.json.Decoder(PriceFrame)


class TestFrames:
    def test_a_price_tick_is_exact_and_typed(self) -> None:
        tick = frames.decode(msgspec.json.encode(TICK))
        assert isinstance(tick, ps.PriceTick)
        assert tick.best_bid == Decimal("0.66") and tick.tokens[YES].price == Decimal("0.67")
        assert tick.emitted_at == datetime(2024, 5, 12, 13, 0, 0, 250000, tzinfo=timezone.utc)
        assert tick.updated_at is not None and tick.updated_at.tzinfo is not None

    def test_a_minimal_tick_decodes(self) -> None:
        tick = frames.decode(b'{"type":"price","market_id":"0x1","future":1}')
        assert isinstance(tick, ps.PriceTick)
        assert tick.buy is None and tick.outcomes == [] and tick.emitted_at is None

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            (b'{"type":"subscribed","markets":["0x1"]}', SubscribedFrame(markets=["0x1"])),
            (b'{"type":"subscribed","markets":[]}', SubscribedFrame(markets=[])),
            (b'{"type":"error","message":"Invalid JSON"}', PriceErrorFrame(message="Invalid JSON")),
            (b'{"type":"pong","ts":1715518800000}', ps.models.PongFrame(ts=1715518800000)),
            (
                b'{"type":"connected","user_id":1234,"protocol_version":"1.0"}',
                ps.models.ConnectedFrame(user_id=1234, protocol_version="1.0"),
            ),
        ],
    )
    def test_every_server_frame_is_typed(self, raw: bytes, expected: object) -> None:
        assert frames.decode(raw) == expected

    def test_client_frames_use_the_native_shape(self) -> None:
        subscribe = PriceCommand(action="subscribe", markets=[CID])
        assert msgspec.json.decode(msgspec.json.encode(subscribe)) == {
            "action": "subscribe",
            "markets": [CID],
        }
        unsubscribe = PriceCommand(action="unsubscribe", markets=[CID])
        assert msgspec.json.decode(msgspec.json.encode(unsubscribe))["action"] == "unsubscribe"
        assert msgspec.json.encode(PriceCommand(action="ping")) == b'{"action":"ping"}'
        assert MAX_PRICE_SUBSCRIPTIONS == 50
