"""A trader key's tier probe (``rate_limit="auto"``) holds the other calls at most
``PROBE_WAIT`` on the client's clock (virtual time here), not for the whole first call."""

from __future__ import annotations

import asyncio

import pytest

import polysim_async as ps
from polysim_async._ratelimit import PROBE_WAIT, TRADER_FALLBACK_LIMIT, RateLimiter

from ._helpers import BASE, LoopClock, VirtualTimeLoop, run_virtual

PRO_PLUS = {"X-RateLimit-Limit-Per-Second": "30", "X-RateLimit-Limit": "1800"}


def test_a_slow_first_call_holds_the_others_only_for_the_probe_wait() -> None:
    starts: dict[str, float] = {}
    answered: dict[str, float] = {}

    async def main(loop: VirtualTimeLoop) -> ps.Client:
        async def handle(request: ps.Request) -> ps.Response:
            starts.setdefault(request.path, loop.time())
            if request.path == "/v1/account/portfolio":
                await asyncio.sleep(3.0)  # a slow first call (an export, a big portfolio)
            return ps.Response.from_json({"balance": "1"}, headers=PRO_PLUS)

        transport = ps.MockTransport(handle)
        key = "ps_live_" + "a" * 64
        async with ps.Client(key, BASE, transport=transport, clock=LoopClock()) as client:
            slow = asyncio.ensure_future(client.account.portfolio())
            await asyncio.sleep(0.05)
            t0 = loop.time()
            await client.account.balance()
            answered["balance"] = loop.time() - t0
            slow.cancel()
            await asyncio.gather(slow, return_exceptions=True)
        return client

    run_virtual(main)
    assert starts["/v1/account/balance"] - starts["/v1/account/portfolio"] == pytest.approx(
        PROBE_WAIT
    )
    assert answered["balance"] == pytest.approx(PROBE_WAIT - 0.05)


def test_the_probes_answer_still_sets_the_limits_after_the_wait() -> None:
    async def main(loop: VirtualTimeLoop) -> RateLimiter:
        limiter = RateLimiter(
            TRADER_FALLBACK_LIMIT, clock=LoopClock(), adaptive=True, kind="trader", probe=True
        )
        await limiter.acquire()  # the probe
        other = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(PROBE_WAIT / 2)
        assert not other.done()  # held while the probe is young
        await asyncio.sleep(PROBE_WAIT)
        assert other.done() and other.exception() is None
        limiter.release()
        limiter.observe(PRO_PLUS)  # the probe's answer, late
        limiter.observe(PRO_PLUS)
        limiter.release()
        assert limiter.limit == ps.RateLimit(per_second=30, per_minute=1800)
        await asyncio.wait_for(limiter.acquire(), 0.001)  # nothing holds calls any more
        return limiter

    run_virtual(main)


def test_a_deadline_before_the_probe_wait_still_fails_fast() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        limiter = RateLimiter(
            TRADER_FALLBACK_LIMIT, clock=LoopClock(), adaptive=True, kind="trader", probe=True
        )
        await limiter.acquire()
        t0 = loop.time()
        with pytest.raises(ps.DeadlineExceededError, match="learned the key's tier"):
            await limiter.acquire(deadline=t0 + PROBE_WAIT / 4)
        assert loop.time() - t0 == pytest.approx(PROBE_WAIT / 4)

    run_virtual(main)
