"""Documented rate limits (API.md §7) on real request-arrival time, driven by a fake time source.

The windows never follow the simulated clock: advancing it frees nothing, and a
frozen simulated clock never wedges them (issue 9, defect 1).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from polysim_async.sandbox import Sandbox

from ._helpers import Api, FakeTime, assert_error

#: 2026-06-01T12:00:30Z: half a minute into a clock minute.
WALL = 1_780_315_230.0


@pytest.fixture
def t() -> FakeTime:
    return FakeTime(wall=WALL)


@pytest.fixture
async def limited(t: FakeTime) -> AsyncIterator[Sandbox]:
    async with Sandbox(seed=2, frozen_clock=True, random_walk=False, rate_clock=t) as box:
        yield box


@pytest.fixture
def lapi(limited: Sandbox, http: aiohttp.ClientSession) -> Api:
    return Api(limited, http)


async def test_partner_per_second_cap(lapi: Api, limited: Sandbox, t: FakeTime) -> None:
    for _i in range(50):
        status, headers, _ = await lapi.partner("GET", "/users/1")
        assert status == 404
    assert headers["X-RateLimit-Remaining-Per-Second"] == "0"
    assert headers["X-RateLimit-Limit"] == "3000" and headers["X-RateLimit-Remaining"] == "2950"
    assert headers["X-Polysim-RateLimit-Remaining"] == "2950"
    assert headers["X-RateLimit-Limit-Per-Second"] == "50"
    assert 0 < int(headers["X-RateLimit-Reset"]) <= 60
    status, headers, body = await lapi.partner("GET", "/users/1")
    assert_error(status, headers, body, 429, "RATE_LIMIT_EXCEEDED")
    assert headers["Retry-After"] == "1"
    assert body["message"] == "Rate limit exceeded. Retry after 1s."
    limited.advance(hours=1)  # simulated time frees nothing
    assert (await lapi.partner("GET", "/users/1"))[0] == 429
    t.advance(1.01)
    assert (await lapi.partner("GET", "/users/1"))[0] == 404


async def test_partner_per_minute_cap_is_per_tenant(
    lapi: Api, limited: Sandbox, t: FakeTime
) -> None:
    # 50/s x 60 s equals 3,000/min, so the minute cap can only bite with a smaller budget.
    limited.configure(partner_limits=(50, 120))
    second_key = limited.create_tenant_key(limited.tenant_id)
    for _ in range(3):
        for key in (limited.tenant_key, second_key):
            for _ in range(20):
                assert (await lapi.partner("GET", "/users/1", key=key))[0] == 404
        t.advance(10)
    status, headers, body = await lapi.partner("GET", "/users/1", key=second_key)
    assert_error(status, headers, body, 429, "RATE_LIMIT_EXCEEDED")
    assert headers["Retry-After"] == "30"  # the first burst leaves the window at t0 + 60
    assert headers["X-RateLimit-Remaining"] == "0"
    other = limited.create_tenant("Other")
    assert (await lapi.partner("GET", "/users/1", key=other.key))[0] == 404
    t.advance(30)
    assert (await lapi.partner("GET", "/users/1"))[0] == 404


async def test_partner_key_bucket_alone(lapi: Api, limited: Sandbox) -> None:
    limited.configure(partner_limits=(5, 3000))
    second_key = limited.create_tenant_key(limited.tenant_id)
    for _ in range(5):
        assert (await lapi.partner("GET", "/users/1"))[0] == 404
    assert (await lapi.partner("GET", "/users/1", key=second_key))[0] == 429  # tenant bucket


async def test_trader_fixed_windows_by_tier(lapi: Api, limited: Sandbox) -> None:
    for _ in range(10):
        status, headers, _ = await lapi.trader("GET", "/account/balance")
        assert status == 200
    assert headers["x-ratelimit-tier"] == "pro"
    assert headers["x-ratelimit-limit"] == "600" and headers["x-ratelimit-limit-per-second"] == "10"
    assert headers["x-ratelimit-remaining-per-second"] == "0"
    assert headers["x-polysim-ratelimit-remaining"] == "590"
    # The reset is the real epoch second the clock minute ends, not simulated time.
    assert int(headers["x-ratelimit-reset"]) == WALL + 30
    status, headers, body = await lapi.trader("GET", "/account/balance")
    assert_error(status, headers, body, 429, "RATE_LIMIT_EXCEEDED")
    assert headers["Retry-After"] == "1" and headers["x-ratelimit-tier"] == "pro"
    free = limited.create_trader(tier="free", permissions={"read"})
    for _ in range(2):
        assert (await lapi.trader("GET", "/account/balance", key=free.api_key))[0] == 200
    assert (await lapi.trader("GET", "/account/balance", key=free.api_key))[0] == 429


async def test_trader_minute_cap_retry_after(lapi: Api, limited: Sandbox, t: FakeTime) -> None:
    free = limited.create_trader(tier="free", permissions={"read"})
    t.advance(30)  # the start of a clock minute
    for i in range(60):
        for _ in range(2):
            assert (await lapi.trader("GET", "/account/balance", key=free.api_key))[0] == 200
        if i < 59:
            t.advance(1)
    status, headers, _ = await lapi.trader("GET", "/account/balance", key=free.api_key)
    assert status == 429 and headers["x-ratelimit-remaining"] == "0"
    assert headers["Retry-After"] == "1"


async def test_rate_limits_can_be_switched_off(lapi: Api, limited: Sandbox) -> None:
    limited.configure(rate_limits=False)
    for _ in range(60):
        status, headers, _ = await lapi.partner("GET", "/users/1")
        assert status == 404 and "X-RateLimit-Limit" not in headers
