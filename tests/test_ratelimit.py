"""The client-side limiter: sliding windows shared by every call, pauses, hints and deadlines."""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable
from typing import Any

import pytest

import polysim_async as ps
from polysim_async._ratelimit import RateLimiter

from ._helpers import (
    BASE,
    USER_201,
    WALL,
    CallbackResult,
    FakeClock,
    LoopClock,
    Routes,
    VirtualTimeLoop,
    calls,
    make_client,
    routes,
    run_virtual,
    url,
)


def limiter(clock: ps.Clock, limit: ps.RateLimit | None = ps.DEFAULT_RATE_LIMIT) -> RateLimiter:
    return RateLimiter(limit, clock=clock)


async def call(lim: RateLimiter, deadline: float | None = None) -> None:
    """One request answered at once: take a turn, then give the answer back."""
    await lim.acquire(deadline)
    lim.release()


def max_in_window(starts: list[float], width: float) -> int:
    """The most starts any half-open window [t, t + width) holds."""
    starts = sorted(starts)
    return max(
        bisect.bisect_left(starts, t + width) - i for i, t in enumerate(starts)
    )  # windows beginning at a start are the fullest ones


def record_starts(mock: Routes, clock: Callable[[], float], starts: list[float]) -> None:
    """Answer every user GET, noting the clock when the request reached the "server"."""

    def answer(u: Any, **kwargs: Any) -> CallbackResult:
        starts.append(clock())
        return CallbackResult(payload=USER_201)

    mock.get(url("/v1/partner/users/12345"), callback=answer, repeat=True)


def gather_users(n: int, **options: Any) -> tuple[list[float], ps.Client]:
    """On virtual time, gather ``n`` calls of one client; return the request start times."""
    starts: list[float] = []

    async def main(loop: VirtualTimeLoop) -> ps.Client:
        with routes() as mock:
            record_starts(mock, loop.time, starts)
            client = make_client(LoopClock(), deadline=None, **options)
            async with client:
                users = await asyncio.gather(*(client.partner.users.get(12345) for _ in range(n)))
            assert len(users) == n
            return client

    client = run_virtual(main)
    assert len(starts) == n
    return starts, client


class TestGatherIsPaced:
    """Many concurrent calls on virtual time: every sleeper wakes at its exact deadline."""

    def test_200_concurrent_calls_never_exceed_50_per_second(self) -> None:
        starts, client = gather_users(200, rate_limit=ps.RateLimit(margin=0))
        assert max_in_window(starts, 1.0) == 50
        # Paced, not serialised: 200 starts at 50/s begin within three seconds.
        assert max(starts) - min(starts) == pytest.approx(3.0)
        # Calls 51-100 waited 1 s each, 101-150 2 s, 151-200 3 s.
        assert client.stats.limiter_wait == pytest.approx(50 * (1 + 2 + 3))

    def test_the_default_margin_stretches_each_window_against_arrival_jitter(self) -> None:
        starts, client = gather_users(200)  # DEFAULT_RATE_LIMIT: 50/s with a 0.01 s margin
        # No 1.01 s span holds more than 50.
        assert max_in_window(starts, 1.01) == 50
        assert max(starts) - min(starts) == pytest.approx(3 * 1.01)
        assert client.stats.limiter_wait == pytest.approx(50 * 1.01 * (1 + 2 + 3))

    def test_a_margin_outside_zero_to_one_second_is_refused(self) -> None:
        with pytest.raises(ps.InvalidArgumentError, match="margin"):
            ps.RateLimit(margin=-0.1)
        with pytest.raises(ps.InvalidArgumentError, match="margin"):
            ps.RateLimit(margin=1.5)

    def test_the_minute_budget_holds_too(self) -> None:
        starts, _ = gather_users(
            300, rate_limit=ps.RateLimit(margin=0, per_second=50, per_minute=120)
        )
        assert max_in_window(starts, 1.0) == 50
        assert max_in_window(starts, 60.0) == 120
        # Batches of 120 start at 0 s, 60 s and 120 s: paced, never later than needed.
        assert max(starts) - min(starts) == pytest.approx(121.0)

    def test_rate_limit_none_turns_pacing_off(self) -> None:
        starts, client = gather_users(200, rate_limit=None)
        assert set(starts) == {1000.0}
        assert client.stats.limiter_wait == 0

    async def test_calls_made_one_after_another_share_the_budget(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        starts: list[float] = []
        record_starts(mock, clock, starts)
        async with make_client(clock, rate_limit=ps.RateLimit(margin=0, per_second=3)) as client:
            for _ in range(7):
                await client.partner.users.get(12345)
        assert max_in_window(starts, 1.0) == 3
        assert starts[3] - starts[0] == pytest.approx(1.0)
        assert starts[6] - starts[3] == pytest.approx(1.0)


class TestLimiterUnit:
    async def test_third_request_in_a_second_waits_for_the_first_to_leave(
        self, clock: FakeClock
    ) -> None:
        lim = limiter(clock, ps.RateLimit(margin=0, per_second=2, per_minute=None))
        await call(lim)
        clock.t += 0.25
        await call(lim)
        assert clock.sleeps == []
        await call(lim)
        assert clock.sleeps == [pytest.approx(0.75)]
        assert clock.t == pytest.approx(1001.0)
        assert lim.waited == pytest.approx(0.75)

    async def test_old_starts_slide_out_of_the_window(self, clock: FakeClock) -> None:
        lim = limiter(clock, ps.RateLimit(margin=0, per_second=2, per_minute=None))
        await call(lim)
        await call(lim)
        clock.t += 5
        await call(lim)
        await call(lim)
        assert clock.sleeps == []

    async def test_a_slot_is_counted_from_the_answer_not_the_start(self, clock: FakeClock) -> None:
        # The server counts a request when it arrives, at the latest when the answer
        # left: a slow answer keeps its slot until one window after it came back.
        lim = limiter(clock, ps.RateLimit(margin=0, per_second=1, per_minute=None))
        await lim.acquire()
        clock.t += 0.8  # the answer takes 0.8 s
        lim.release()
        await call(lim)
        assert clock.t == pytest.approx(1001.8)

    def test_a_request_in_flight_holds_its_slot_until_it_is_answered(self) -> None:
        async def main(loop: VirtualTimeLoop) -> float:
            lim = limiter(LoopClock(), ps.RateLimit(margin=0, per_second=1, per_minute=None))
            t0 = loop.time()
            await lim.acquire()  # in flight until released at t0 + 3
            loop.call_at(t0 + 3, lim.release)
            await call(lim)
            return loop.time() - t0

        assert run_virtual(main) == pytest.approx(4.0)

    async def test_a_wait_past_the_deadline_fails_at_once(self, clock: FakeClock) -> None:
        lim = limiter(clock, ps.RateLimit(margin=0, per_second=1, per_minute=None))
        await call(lim)
        with pytest.raises(ps.DeadlineExceededError) as info:
            await call(lim, deadline=clock() + 0.5)
        assert isinstance(info.value, TimeoutError)
        assert clock.sleeps == []
        # The refused caller took no turn: the next one starts one second after the first.
        await call(lim)
        assert clock.sleeps == [pytest.approx(1.0)]

    async def test_pause_holds_everyone_even_with_the_windows_off(self, clock: FakeClock) -> None:
        lim = limiter(clock, None)
        lim.pause(3)
        await asyncio.gather(call(lim), call(lim))
        assert clock.t == pytest.approx(1003.0)

    async def test_a_pause_that_passes_the_deadline_fails(self, clock: FakeClock) -> None:
        lim = limiter(clock)
        lim.pause(10)
        with pytest.raises(ps.DeadlineExceededError):
            await call(lim, deadline=clock() + 5)
        assert clock.sleeps == []

    def test_a_pause_arriving_while_waiting_extends_the_wait(self) -> None:
        async def main(loop: VirtualTimeLoop) -> float:
            lim = limiter(LoopClock(), ps.RateLimit(margin=0, per_second=1, per_minute=None))
            t0 = loop.time()
            await call(lim)
            waiter = asyncio.create_task(call(lim))
            await asyncio.sleep(0)  # the waiter reserved t+1 and is sleeping
            lim.pause(4)
            await waiter
            return loop.time() - t0

        assert run_virtual(main) >= 4.0

    def test_callers_woken_into_a_pause_keep_to_the_budget(self) -> None:
        # 8 callers at 2/s hold turns at 0, 0, 1, 1, 2, 2, 3, 3; a 429 at 0.5 pauses
        # until 1.5. The turns inside the pause must not all fire when it ends.
        starts: list[float] = []

        async def main(loop: VirtualTimeLoop) -> None:
            lim = limiter(LoopClock(), ps.RateLimit(margin=0, per_second=2, per_minute=None))
            t0 = loop.time()

            async def one() -> None:
                await lim.acquire()
                starts.append(loop.time() - t0)
                lim.release()

            loop.call_at(t0 + 0.5, lim.pause, 1.0)
            await asyncio.gather(*(one() for _ in range(8)))

        run_virtual(main)
        assert len(starts) == 8
        assert max_in_window(starts, 1.0) <= 2
        assert not [s for s in starts if 0.5 < s < 1.5]  # nobody starts during the pause

    def test_a_turn_moved_past_the_deadline_by_a_pause_fails(self) -> None:
        async def main(loop: VirtualTimeLoop) -> list[float]:
            lim = limiter(LoopClock(), ps.RateLimit(margin=0, per_second=1, per_minute=None))
            t0 = loop.time()
            await call(lim)  # turn at 0
            hurried = asyncio.create_task(call(lim, deadline=t0 + 1.2))  # turn at 1
            patient = asyncio.create_task(call(lim))  # turn at 2
            loop.call_at(t0 + 0.5, lim.pause, 1.0)
            # The pause ends at 1.5, past the hurried caller's deadline.
            with pytest.raises(ps.DeadlineExceededError):
                await hurried
            await patient
            return [loop.time() - t0]

        assert run_virtual(main) == [pytest.approx(2.0)]

    async def test_cancelling_a_waiter_propagates_and_gives_its_turn_back(self) -> None:
        started = asyncio.Event()

        class Stuck(FakeClock):
            async def sleep(self, seconds: float) -> None:
                started.set()
                await asyncio.Event().wait()

        clock = Stuck()
        lim = limiter(clock, ps.RateLimit(margin=0, per_second=1, per_minute=None))
        await call(lim)
        task = asyncio.create_task(call(lim))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert lim._planned == [] and lim._flying == []  # the cancelled turn is not held

    async def test_an_answer_never_releases_the_turn_of_a_caller_still_asleep(self) -> None:
        # Found under load: a caller's timer fired late, another request started after
        # its turn and came back first, and its release took the sleeper's turn.
        go = asyncio.Event()

        class Late(FakeClock):
            async def sleep(self, seconds: float) -> None:
                await go.wait()  # wakes only when the test says so

        clock = Late()
        lim = limiter(clock, None)
        lim.pause(1.0)
        sleeper = asyncio.create_task(call(lim))
        await asyncio.sleep(0)  # its turn is at 1001.0; it sleeps
        clock.t += 1.2  # the timer is late...
        await lim.acquire()  # ...and another request starts meanwhile
        lim.release()  # and is answered
        go.set()
        await sleeper  # the sleeper still holds its own turn
        assert lim._planned == [] and lim._flying == []


class TestServerHints:
    @pytest.mark.parametrize(
        ("headers", "pause"),
        [
            ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "7"}, 7.0),
            ({"X-Polysim-RateLimit-Remaining": "0", "X-Polysim-RateLimit-Reset": "4"}, 4.0),
            ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(WALL + 12)}, 12.0),
            ({"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "7"}, 0.0),
            ({"X-RateLimit-Remaining": "0"}, 0.0),
            ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "soon"}, 0.0),
            ({"X-RateLimit-Remaining": "zero", "X-RateLimit-Reset": "7"}, 0.0),
            ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3600"}, 0.0),
        ],
    )
    async def test_exhausted_window_pauses_until_reset(
        self, clock: FakeClock, headers: dict[str, str], pause: float
    ) -> None:
        lim = limiter(clock)
        lim.observe(headers)
        await call(lim)
        assert clock.t - 1000.0 == pytest.approx(pause)

    async def test_client_reads_the_headers_of_every_response(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        hint = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "7"}
        mock.get(url("/v1/partner/users/12345"), payload=USER_201, headers=hint)
        mock.get(url("/v1/partner/users/12345"), payload=USER_201)
        async with make_client(clock) as client:
            await client.partner.users.get(12345)
            assert clock.t == 1000.0
            await client.partner.users.get(12345)
        assert clock.t == pytest.approx(1007.0)
        assert client.stats.limiter_wait == pytest.approx(7.0)

    async def test_a_429_pauses_every_other_call(self, mock: Routes, clock: FakeClock) -> None:
        mock.get(
            url("/v1/partner/users/1"),
            status=429,
            payload={"error": "RATE_LIMIT_EXCEEDED", "message": "slow down"},
            headers={"Retry-After": "3"},
        )
        mock.get(url("/v1/partner/users/12345"), payload=USER_201)
        async with make_client(clock, max_retries=0) as client:
            with pytest.raises(ps.RateLimitError):
                await client.partner.users.get(1)
            await client.partner.users.get(12345)  # another endpoint, another call
        assert clock.t == pytest.approx(1003.0)

    async def test_limiter_waits_count_against_the_deadline(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        mock.get(url("/v1/partner/users/12345"), payload=USER_201, repeat=True)
        async with make_client(
            clock, rate_limit=ps.RateLimit(margin=0, per_second=1), deadline=0.5
        ) as client:
            await client.partner.users.get(12345)
            with pytest.raises(ps.DeadlineExceededError):
                await client.partner.users.get(12345)
        assert len(calls(mock)) == 1
        assert clock.t == 1000.0


TRADER_HEADERS = {"X-RateLimit-Limit-Per-Second": "10", "X-RateLimit-Limit": "600"}
PARTNER_HEADERS = {"X-RateLimit-Limit-Per-Second": "50", "X-RateLimit-Limit": "3000"}


class TestAutoRateLimit:
    """``rate_limit="auto"`` (the default) follows what the server advertises."""

    async def test_a_tenant_key_starts_at_the_partner_budget_and_follows_lower_limits(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        mock.get(url("/v1/partner/users/1"), payload=USER_201, headers=TRADER_HEADERS)
        async with make_client(clock) as client:
            assert client.limiter.limit == ps.DEFAULT_RATE_LIMIT
            await client.partner.users.get(1)
            assert client.limiter.limit == ps.RateLimit(per_second=10, per_minute=600)

    async def test_advertised_limits_are_capped_at_the_documented_ceiling(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        loose = {"X-RateLimit-Limit-Per-Second": "500", "X-RateLimit-Limit": "30000"}
        mock.get(f"{BASE}/v1/account/balance", payload={"balance": "1"}, headers=loose)
        async with make_client(clock) as client:
            await client.account.balance()
            assert client.limiter.limit == ps.DEFAULT_RATE_LIMIT  # the partner 50/3000

    async def test_a_stray_tiny_limit_is_ignored_and_a_lower_one_recovers(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        """Defect 6: one ``X-RateLimit-Limit: 1`` pinned the client to a 60 s wait."""
        stray = {"X-RateLimit-Limit": "1"}
        contradiction = {"X-RateLimit-Limit-Per-Second": "40", "X-RateLimit-Limit": "20"}
        mock.get(url("/v1/partner/users/1"), payload=USER_201, headers=stray)
        mock.get(url("/v1/partner/users/1"), payload=USER_201, headers=contradiction)
        mock.get(url("/v1/partner/users/1"), payload=USER_201, headers=TRADER_HEADERS)
        mock.get(url("/v1/partner/users/1"), payload=USER_201, headers=PARTNER_HEADERS)
        mock.get(url("/v1/partner/users/1"), payload=USER_201, repeat=True)
        async with make_client(clock) as client:
            await client.partner.users.get(1)
            assert client.limiter.limit == ps.DEFAULT_RATE_LIMIT  # 1/min is implausible
            await client.partner.users.get(1)
            # 40/s is plausible; a minute budget below it contradicts it and is ignored
            assert client.limiter.limit == ps.RateLimit(per_second=40, per_minute=3000)
            await client.partner.users.get(1)
            assert client.limiter.limit == ps.RateLimit(per_second=10, per_minute=600)
            await client.partner.users.get(1)
            assert client.limiter.limit == ps.DEFAULT_RATE_LIMIT  # recovered
            for _ in range(20):
                await client.partner.users.get(1)
        assert client.stats.limiter_wait == 0

    async def test_an_explicit_rate_limit_is_used_as_given(
        self, mock: Routes, clock: FakeClock
    ) -> None:
        mock.get(f"{BASE}/v1/account/balance", payload={"balance": "1"}, headers=TRADER_HEADERS)
        explicit = ps.RateLimit(per_second=50, per_minute=3000)
        async with make_client(clock, rate_limit=explicit) as client:
            await client.account.balance()
            assert client.limiter.limit is explicit

    def test_a_trader_keys_first_request_probes_its_tier(self) -> None:
        """Defect 7: a trader key's first burst went out at the partner budget."""
        starts: list[float] = []
        pro_plus = {"X-RateLimit-Limit-Per-Second": "30", "X-RateLimit-Limit": "1800"}

        async def main(loop: VirtualTimeLoop) -> ps.Client:
            def answer(u: Any, **kwargs: Any) -> CallbackResult:
                starts.append(loop.time())
                return CallbackResult(payload={"balance": "1"}, headers=pro_plus)

            with routes() as mock:
                mock.get(f"{BASE}/v1/account/balance", callback=answer, repeat=True)
                async with make_client(LoopClock(), api_key="ps_live_" + "a" * 64) as client:
                    await asyncio.gather(*(client.account.balance() for _ in range(61)))
            return client

        client = run_virtual(main)
        assert client.limiter.limit == ps.RateLimit(per_second=30, per_minute=1800)
        assert starts[1] >= starts[0]  # the others waited for the probe's answer
        assert max_in_window(starts, 1.0) <= 30
        assert max(starts) - min(starts) == pytest.approx(2 * 1.01, abs=0.02)

    def test_a_probe_answer_without_limits_falls_back_to_the_lowest_paid_tier(self) -> None:
        starts: list[float] = []

        async def main(loop: VirtualTimeLoop) -> ps.Client:
            def answer(u: Any, **kwargs: Any) -> CallbackResult:
                starts.append(loop.time())
                return CallbackResult(payload={"balance": "1"})

            with routes() as mock:
                mock.get(f"{BASE}/v1/account/balance", callback=answer, repeat=True)
                async with make_client(LoopClock(), api_key="ps_test_" + "b" * 64) as client:
                    await asyncio.gather(*(client.account.balance() for _ in range(11)))
            return client

        client = run_virtual(main)
        assert client.limiter.limit == ps.RateLimit(per_second=10, per_minute=600)
        assert max_in_window(starts, 1.0) <= 10

    def test_anything_else_is_refused(self) -> None:
        with pytest.raises(ps.InvalidArgumentError, match="rate_limit"):
            ps.Client("k", "http://127.0.0.1:1", rate_limit="fast")  # type: ignore[arg-type]


async def test_a_429_above_the_cap_is_raised_without_pausing_other_calls(
    mock: Routes, clock: FakeClock
) -> None:
    mock.get(
        f"{BASE}/v1/account/balance",
        status=429,
        headers={"Retry-After": "120"},
        payload={"error": "RATE_LIMIT_EXCEEDED", "message": "slow down"},
    )
    mock.get(f"{BASE}/v1/account/positions", payload=[])
    async with make_client(clock) as client:
        start = clock()
        with pytest.raises(ps.RateLimitError) as exc:
            await client.account.balance()
        assert exc.value.retry_after == 120
        await client.account.positions()  # not held for the refused wait
        assert clock() == start and client.stats.limiter_wait == 0


async def test_a_429_within_the_cap_pauses_every_call(mock: Routes, clock: FakeClock) -> None:
    mock.get(
        f"{BASE}/v1/account/balance",
        status=429,
        headers={"Retry-After": "2"},
        payload={"error": "RATE_LIMIT_EXCEEDED", "message": "slow down"},
    )
    mock.get(f"{BASE}/v1/account/positions", payload=[])
    async with make_client(clock, max_retries=0) as client:
        start = clock()
        with pytest.raises(ps.RateLimitError):
            await client.account.balance()
        await client.account.positions()
        assert clock() - start == pytest.approx(2.0)  # the next call waited out the pause


async def test_a_turn_never_released_is_taken_as_answered_after_a_minute(clock: FakeClock) -> None:
    # A caller using the limiter directly (without ``release``) cannot hold slots forever.
    lim = limiter(clock, ps.RateLimit(margin=0, per_second=1, per_minute=None))
    await lim.acquire()
    await lim.acquire()
    assert clock.t - 1000.0 == pytest.approx(61.0)  # the first one's slot lasted a minute
    assert len(lim._flying) == 1
