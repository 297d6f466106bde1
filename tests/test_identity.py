"""``client.me()``, ``client.keys.tiers()`` and what the client learns of its tier."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

import polysim_async as ps

from ._helpers import Routes, calls, error_body, make_client, url
from ._trader import ME, TIERS, params

ME_URL = url("/v1/me")
TIERS_URL = url("/v1/keys/tiers")


async def test_me_decodes_the_profile(mock: Routes) -> None:
    mock.get(ME_URL, payload={**ME, "new_field": 1})
    async with make_client() as client:
        me = await client.me()
    assert me == ps.Me(
        user_id=1234,
        balance=Decimal("9745.20"),
        currency="USD",
        key_count=2,
        tier="pro",
        permissions=["read", "trade"],
        email="bot@example.com",
    )
    assert params(mock, "/v1/me") == [{}]


async def test_me_forwards_wallet_id_like_every_scoped_read(mock: Routes) -> None:
    mock.get(ME_URL, payload={"user_id": 1})
    async with make_client() as client:
        me = await client.me(wallet_id="ALL")
        with pytest.raises(ps.InvalidArgumentError):
            await client.me(wallet_id="main")
    assert me.tier is None and me.permissions == []
    assert params(mock, "/v1/me") == [{"wallet_id": "all"}]


async def test_a_revoked_key_is_an_authentication_error(mock: Routes) -> None:
    mock.get(ME_URL, status=401, payload=error_body("INVALID_KEY"))
    async with make_client() as client:
        with pytest.raises(ps.AuthenticationError):
            await client.me()


@pytest.mark.parametrize("body", [TIERS, {"tiers": TIERS}, {"items": TIERS}])
async def test_tiers_unwrap_every_shape_the_sdk_accepts(mock: Routes, body: object) -> None:
    mock.get(TIERS_URL, payload=body)
    async with make_client() as client:
        tiers = await client.keys.tiers()
    assert [t.tier for t in tiers] == ["free", "pro", "pro_plus", "enterprise"]
    assert [t.max_batch_size for t in tiers] == [1, 5, 10, 25]
    assert isinstance(tiers[0], ps.TierLimits) and tiers[3].requests_per_minute == 6000


class TestBatchLimit:
    async def test_learned_once_from_tiers_and_me(self, mock: Routes) -> None:
        mock.get(TIERS_URL, payload=TIERS)
        mock.get(ME_URL, payload=ME)
        async with make_client() as client:
            assert await client.orders.batch_limit() == 5
            assert await client.orders.batch_limit() == 5
        assert len(calls(mock)) == 2

    async def test_the_rate_limit_tier_header_names_the_key_tier(self, mock: Routes) -> None:
        # The key's own tier (header) beats the owner's plan tier from /v1/me.
        mock.get(TIERS_URL, payload=TIERS, headers={"x-ratelimit-tier": "pro_plus"})
        async with make_client() as client:
            assert await client.orders.batch_limit() == 10
        assert [c[1] for c in calls(mock)] == ["https://api.test/v1/keys/tiers"]

    async def test_calls_the_user_made_are_reused(self, mock: Routes) -> None:
        mock.get(TIERS_URL, payload=TIERS)
        mock.get(ME_URL, payload={**ME, "tier": "Enterprise"})
        async with make_client() as client:
            await client.keys.tiers()
            await client.me()
            assert await client.orders.batch_limit() == 25
        assert len(calls(mock)) == 2

    async def test_a_refused_lookup_is_not_asked_again(self, mock: Routes) -> None:
        mock.get(TIERS_URL, status=403, payload=error_body("ACCESS_RESTRICTED"))
        async with make_client() as client:
            assert await client.orders.batch_limit() is None
            assert await client.orders.batch_limit() is None
        assert len(calls(mock)) == 1

    async def test_concurrent_callers_share_one_lookup(self, mock: Routes) -> None:
        mock.get(TIERS_URL, payload=TIERS)
        mock.get(ME_URL, payload=ME)
        async with make_client() as client:
            limits = await asyncio.gather(*(client.orders.batch_limit() for _ in range(5)))
        assert limits == [5] * 5 and len(calls(mock)) == 2

    async def test_concurrent_callers_after_a_refusal_do_not_ask_again(self, mock: Routes) -> None:
        mock.get(TIERS_URL, status=403, payload=error_body("ACCESS_RESTRICTED"))
        async with make_client() as client:
            limits = await asyncio.gather(*(client.orders.batch_limit() for _ in range(3)))
        assert limits == [None] * 3 and len(calls(mock)) == 1

    async def test_a_transient_failure_is_tried_again_later(self, mock: Routes) -> None:
        mock.get(TIERS_URL, status=500, payload=error_body("INTERNAL_ERROR"))
        mock.get(TIERS_URL, payload=TIERS)
        mock.get(ME_URL, payload=ME)
        async with make_client() as client:
            assert await client.orders.batch_limit() is None
            assert await client.orders.batch_limit() == 5

    async def test_an_unknown_tier_gives_no_limit(self, mock: Routes) -> None:
        mock.get(TIERS_URL, payload=TIERS)
        mock.get(ME_URL, payload={**ME, "tier": "platinum"})
        async with make_client() as client:
            assert await client.orders.batch_limit() is None

    async def test_each_client_learns_for_itself(self, mock: Routes) -> None:
        mock.get(TIERS_URL, payload=TIERS, repeat=True)
        mock.get(ME_URL, payload=ME)
        mock.get(ME_URL, payload={**ME, "tier": "free"})
        async with make_client() as first, make_client() as second:
            assert await first.orders.batch_limit() == 5
            assert await second.orders.batch_limit() == 1
