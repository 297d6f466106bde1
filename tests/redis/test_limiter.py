"""RedisRateLimit against a real redis-server on loopback.

Safety is asserted on what cannot depend on machine speed: the turns the Lua
script handed out (read back from Redis, on the server's clock), the order of
arrivals against those turns, counts of granted and refused turns, and which
path (shared or local) served each call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis_asyncio

import polysim_async as ps
from polysim_async._limits import Limiter
from polysim_async.redis._limiter import cold_start_wait
from tests._helpers import ACCOUNT_STATE, base_of, serve

from ._budget_server import BudgetServer
from ._server import RedisServer, free_port
from .conftest import ManualClock

ROOT = Path(__file__).resolve().parents[2]
US = 1_000_000


def keys(name: str) -> tuple[str, str, str]:
    prefix = f"polysim:rl:{{{name}}}"
    return f"{prefix}:s", f"{prefix}:m", f"{prefix}:p"


async def warm(url: str, name: str) -> None:
    """Mark the budget as in use already, so its first turn skips the cold-start wait.

    The test servers have just started: without this, a new budget's first
    turn waits out turns a restart might have made Redis forget.
    """
    async with redis_asyncio.Redis.from_url(url) as r:
        sec, us = await r.time()
        await r.set(f"polysim:rl:{{{name}}}:t", sec * US + us, px=600_000)


async def scores(url: str, key: str) -> list[float]:
    async with redis_asyncio.Redis.from_url(url) as r:
        return [score for _, score in await r.zrange(key, 0, -1, withscores=True)]


async def run_workers(n: int, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.redis._worker",
            json.dumps(cfg),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for _ in range(n)
    ]
    outputs = [await p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    return [json.loads(out) for out, _ in outputs]


def test_is_a_limiter(redis_server: RedisServer, name: str) -> None:
    limit = ps.RedisRateLimit(redis_server.url, name=name)
    assert isinstance(limit, Limiter)
    assert "RedisRateLimit(name=" in repr(limit)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "name"),
        ({"name": "a{b}"}, "braces"),
        ({"name": "a", "on_unavailable": "ignore"}, "on_unavailable"),
        ({"name": "a", "expected_workers": 0}, "expected_workers"),
        ({"name": "a", "per_second": 0}, "per_second"),
        ({"name": "a", "margin": 2}, "margin"),
        ({"name": "a", "retry_interval": -1}, "retry_interval"),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ps.InvalidArgumentError, match=message):
        ps.RedisRateLimit("redis://127.0.0.1:1/0", **kwargs)


def test_missing_redis_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis.exceptions", None)
    with pytest.raises(ps.MissingDependencyError, match=r"polysim-async\[redis\]"):
        ps.RedisRateLimit("redis://127.0.0.1:1/0", name="a")


def test_importing_the_package_does_not_import_redis() -> None:
    code = (
        "import sys, polysim_async; polysim_async.RedisRateLimit; "
        "assert 'redis' not in sys.modules, 'redis'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


async def test_processes_sharing_one_budget_keep_to_it(
    redis_server: RedisServer, name: str
) -> None:
    """3 processes x 2 clients x 4 concurrent tasks on one budget of 20/s."""
    budget = BudgetServer(per_second=20, per_minute=1000)
    async with serve(budget.routes) as server:
        cfg = {
            "redis": redis_server.url,
            "name": name,
            "per_second": 20,
            "per_minute": 1000,  # large, so Redis keeps every turn for us to read
            "server": base_of(server),
            "requests": 10,
            "clients": 2,
            "concurrency": 4,
        }
        results = await run_workers(3, cfg)
    assert [r["failures"] for r in results] == [[], [], []]
    turns = await scores(redis_server.url, keys(name)[1])
    # Every attempt took a turn and arrived: 60 calls and their repeats after a 429 (a
    # loaded machine can send turns late, bunched, so the server may answer some with
    # 429). A caller woken into such a 429's pause takes a fresh turn: turns >= arrivals.
    least = 60 + sum(r["rate_limit_retries"] for r in results)
    assert least <= len(budget.arrivals) <= 60 + sum(r["retries"] for r in results)
    assert len(turns) >= len(budget.arrivals)
    # The turns keep to the budget exactly, on the server's clock: any 21 consecutive
    # turns span at least the window (1 s + the 0.05 s margin).
    assert all(later - first >= 1.05 * US for first, later in zip(turns, turns[20:], strict=False))
    # No request arrived ahead of the schedule: each arrival follows its own turn, so the
    # i-th arrival came no earlier than the i-th turn (arrivals and TIME read the same
    # clock; 1 ms for rounding).
    arrivals = sorted(budget.arrivals)
    assert all(a * US >= t - 1000 for a, t in zip(arrivals, turns, strict=False))


async def test_minute_window_and_deadlines_take_no_slot(
    redis_server: RedisServer, name: str
) -> None:
    clock = ManualClock()
    await warm(redis_server.url, name)
    async with (
        ps.RedisRateLimit(
            redis_server.url, name=name, per_second=None, per_minute=10, clock=clock
        ) as one,
        ps.RedisRateLimit(
            redis_server.url, name=name, per_second=None, per_minute=10, clock=clock
        ) as two,
    ):
        limits = [one, two]
        outcomes = await asyncio.gather(
            *(limits[i % 2].acquire(deadline=clock.now() + 5) for i in range(16)),
            return_exceptions=True,
        )
        granted = [o for o in outcomes if o is None]
        refused = [o for o in outcomes if isinstance(o, ps.DeadlineExceededError)]
        assert (len(granted), len(refused)) == (10, 6)
        assert clock.t == 1000.0  # refused at once: nobody slept
        assert len(await scores(redis_server.url, keys(name)[1])) == 10
        # Without a deadline the 11th turn is a minute after the first.
        await one.acquire()
        assert clock.t - 1000.0 >= 59.0


async def test_memory_is_bounded_and_keys_expire(redis_server: RedisServer, name: str) -> None:
    clock = ManualClock()
    await warm(redis_server.url, name)
    async with ps.RedisRateLimit(
        redis_server.url, name=name, per_second=3, per_minute=5, margin=0, clock=clock
    ) as limit:
        for _ in range(12):
            await limit.acquire()
    second, minute, _ = keys(name)
    async with redis_asyncio.Redis.from_url(redis_server.url) as r:
        assert await r.zcard(second) == 3
        assert await r.zcard(minute) == 5
        for key in (second, minute):
            # A minute after the last turn, which lies up to two minutes ahead here.
            assert 0 < await r.pttl(key) <= 62_000 + 120_000


def _retry_after(limit: ps.RedisRateLimit) -> None:
    limit.pause(30)  # a 429 with Retry-After: 30


def _exhausted_minute(limit: ps.RedisRateLimit) -> None:
    limit.observe({"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "50"})  # not a pause
    limit.observe({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"})


@pytest.mark.parametrize("signal", [_retry_after, _exhausted_minute])
async def test_a_pause_seen_by_one_process_holds_every_process(
    redis_server: RedisServer, name: str, signal: Callable[[ps.RedisRateLimit], None]
) -> None:
    clock = ManualClock()
    await warm(redis_server.url, name)
    async with (
        ps.RedisRateLimit(redis_server.url, name=name, clock=clock) as first,
        ps.RedisRateLimit(redis_server.url, name=name, clock=clock) as second,
    ):
        await first.acquire()
        signal(first)
        assert first._publisher is not None
        await first._publisher  # written to Redis in the background
        with pytest.raises(ps.DeadlineExceededError):
            await second.acquire(deadline=clock.now() + 5)
        await second.acquire()
        assert clock.t - 1000.0 >= 25  # waited out the shared pause


class OversleepingClock(ManualClock):
    """Every sleep ends 0.2 s late, as in a process starved of CPU."""

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds + 0.2)


async def test_a_caller_that_wakes_late_takes_one_fresh_turn(
    redis_server: RedisServer, name: str
) -> None:
    clock = OversleepingClock()
    await warm(redis_server.url, name)  # so the first turn is immediate on a young server
    async with ps.RedisRateLimit(redis_server.url, name=name, per_second=1, clock=clock) as limit:
        await limit.acquire()  # immediate: nobody slept, so not late
        await limit.acquire()  # waits ~1.05 s, wakes 0.2 s late: retakes once, then goes
        assert (limit.stats.shared, limit.stats.late) == (3, 1)
    assert len(await scores(redis_server.url, keys(name)[1])) == 3
    await warm(redis_server.url, f"{name}-0")
    async with ps.RedisRateLimit(
        redis_server.url, name=f"{name}-0", per_second=1, margin=0, clock=clock
    ) as exact:
        await exact.acquire()
        await exact.acquire()
        assert exact.stats.late == 0  # margin=0 asks for exact pacing: no retakes


async def test_own_pause_holds_this_process_before_it_reaches_redis(
    redis_server: RedisServer, name: str
) -> None:
    clock = ManualClock()
    async with ps.RedisRateLimit(redis_server.url, name=name, clock=clock) as limit:
        await limit.acquire()
        limit.pause(20)
        with pytest.raises(ps.DeadlineExceededError):
            await limit.acquire(deadline=clock.now() + 10)


async def test_client_uses_and_closes_the_limiter(redis_server: RedisServer, name: str) -> None:
    budget = BudgetServer(per_second=50, per_minute=3000)
    await warm(redis_server.url, name)  # real clock: no cold-start second to wait out
    async with serve(budget.routes) as server:
        limit = ps.RedisRateLimit(redis_server.url, name=name)
        async with ps.Client("tk_live_x", base_url=base_of(server), rate_limit=limit) as client:
            assert client.limiter is limit
            await client.partner.accounts.get("acc-1")
        assert limit.stats.shared == 1
    with pytest.raises(ps.ClientClosedError):
        await limit.acquire()


def test_client_refuses_a_non_limiter() -> None:
    with pytest.raises(ps.InvalidArgumentError, match="limiter"):
        ps.Client("tk_live_x", rate_limit=object())  # type: ignore[arg-type]


async def test_unreachable_redis_falls_back_to_local_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    limit = ps.RedisRateLimit(
        f"redis://127.0.0.1:{free_port()}/0",
        name="down",
        per_second=10,
        expected_workers=4,
        retry_interval=5,
        clock=clock,
    )
    async with limit:
        with caplog.at_level(logging.INFO, logger="polysim_async"):
            for _ in range(7):
                await limit.acquire()
            # The local share is 10 / 4 = 2 per second: 7 turns need 3 more seconds.
            assert clock.t - 1000.0 >= 3.14
            assert (limit.stats.local, limit.stats.shared, limit.stats.outages) == (7, 0, 1)
            assert not limit.available
            clock.t += 5  # time to try Redis again: still down, still one warning
            await limit.acquire()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "pacing this process alone" in warnings[0].getMessage()
    assert limit.stats.outages == 1


async def test_unreachable_redis_raises_when_asked_to() -> None:
    limit = ps.RedisRateLimit(
        f"redis://127.0.0.1:{free_port()}/0", name="down", on_unavailable="raise"
    )
    async with limit:
        with pytest.raises(ps.StoreUnavailableError, match="Redis is unavailable") as info:
            await limit.acquire()
    assert isinstance(info.value, ps.CoordinationError)


async def _call_until(client: ps.Client, done: Any, limit: int = 5000) -> int:
    """Make calls until ``done()``; return how many failed."""
    failed = 0
    for _ in range(limit):
        if done():
            return failed
        try:
            await client.partner.accounts.get("acc-1")
        except ps.StoreUnavailableError:
            failed += 1
    raise AssertionError("condition never reached")


async def test_redis_restart_falls_back_then_recovers(
    own_redis: RedisServer, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    budget = BudgetServer(per_second=50, per_minute=3000)
    limit = ps.RedisRateLimit(own_redis.url, name=name, retry_interval=0.05)
    stats = limit.stats
    async with (
        serve(budget.routes) as server,
        ps.Client("tk_live_x", base_url=base_of(server), rate_limit=limit) as client,
    ):
        with caplog.at_level(logging.INFO, logger="polysim_async"):
            assert await _call_until(client, lambda: stats.shared >= 5) == 0
            own_redis.stop()
            assert await _call_until(client, lambda: stats.local >= 5) == 0
            own_redis.restart()
            shared = stats.shared
            assert await _call_until(client, lambda: stats.shared > shared + 5) == 0
    assert stats.outages == 1
    assert limit.available
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert sum(level == logging.WARNING for level, _ in messages) == 1
    assert any("reachable again" in m for level, m in messages if level == logging.INFO)


async def test_redis_restart_in_raise_mode_fails_only_while_down(
    own_redis: RedisServer, name: str
) -> None:
    budget = BudgetServer(per_second=50, per_minute=3000)
    limit = ps.RedisRateLimit(own_redis.url, name=name, on_unavailable="raise")
    async with (
        serve(budget.routes) as server,
        ps.Client("tk_live_x", base_url=base_of(server), rate_limit=limit) as client,
    ):
        await client.partner.accounts.get("acc-1")
        own_redis.stop()
        with pytest.raises(ps.StoreUnavailableError):
            await client.partner.accounts.get("acc-1")
        arrived = len(budget.arrivals)
        own_redis.restart()
        await client.partner.accounts.get("acc-1")
    assert arrived == 1  # nothing was sent outside the shared budget
    assert limit.stats.local == 0


async def test_the_client_hands_its_clock_to_the_limiter(
    redis_server: RedisServer, name: str
) -> None:
    """Waits and deadlines are on the client's clock, with no ``clock=`` on the limiter."""
    clock = ManualClock()
    transport = ps.MockTransport(lambda request: ps.Response.from_json(ACCOUNT_STATE))
    limit = ps.RedisRateLimit(redis_server.url, name=name, per_second=1, per_minute=None)
    async with ps.Client(
        "tk_x", "https://api.test", transport=transport, clock=clock, rate_limit=limit
    ) as client:
        for _ in range(3):
            await client.partner.accounts.get("a")
        # Three turns at 1/s: two windows waited, on the client's (manual) clock.
        assert clock.t - 1000.0 >= 2.0
        assert limit.stats.shared == 3
        with pytest.raises(ps.InvalidArgumentError, match="client's clock"):
            ps.Client("tk_x", "https://api.test", transport=transport, rate_limit=limit)


async def test_a_limiter_on_another_clock_is_refused(redis_server: RedisServer, name: str) -> None:
    limit = ps.RedisRateLimit(redis_server.url, name=name, clock=ManualClock())
    with pytest.raises(ps.InvalidArgumentError, match="client's clock"):
        ps.Client("tk_x", "https://api.test", rate_limit=limit)
    shared = ps.RedisRateLimit(redis_server.url, name=name, clock=ps.SYSTEM_CLOCK)
    async with shared, ps.Client("tk_x", "https://api.test", rate_limit=shared) as client:
        assert client.clock is ps.SYSTEM_CLOCK  # the same clock: accepted


@pytest.mark.parametrize(
    ("per_second", "per_minute", "wait"),
    [(50, 3000, 1.05), (None, 10, 60.05), (100, 3000, 31.05), (20, None, 1.05), (5, 10, 59.05)],
)
def test_cold_start_wait_covers_both_windows(
    per_second: int | None, per_minute: int | None, wait: float
) -> None:
    limit = ps.RateLimit(per_second=per_second, per_minute=per_minute, margin=0.05)
    assert cold_start_wait(limit) == pytest.approx(wait)


async def _until_reachable(limit: ps.RedisRateLimit) -> None:
    for _ in range(100):  # the first calls after a restart find the old connection dead
        try:
            await limit.acquire()
            return
        except ps.StoreUnavailableError:
            await asyncio.sleep(0.05)
    raise AssertionError("Redis never came back")


async def test_a_restart_that_loses_the_windows_does_not_spend_the_budget_twice(
    own_redis: RedisServer, name: str
) -> None:
    """Turns before and after a restart without persistence keep to one budget together."""
    clock = ManualClock()
    second = keys(name)[0]
    await warm(own_redis.url, name)
    async with ps.RedisRateLimit(
        own_redis.url, name=name, per_second=5, per_minute=None, on_unavailable="raise", clock=clock
    ) as limit:
        for _ in range(5):
            await limit.acquire()
        before = await scores(own_redis.url, second)
        own_redis.stop()
        own_redis.restart()  # empty memory: the five turns just taken are forgotten
        await _until_reachable(limit)
        for _ in range(4):
            await limit.acquire()
    turns = before + await scores(own_redis.url, second)
    assert len(turns) == 10
    # Any 6 consecutive turns span at least the window (1 s + the 0.05 s margin), however
    # long the restart took and wherever it fell within a second of the server's clock.
    assert all(later - first >= 1.05 * US for first, later in zip(turns, turns[5:], strict=False))


@pytest.mark.parametrize(("uptime", "wait"), [(0, 1.05), (1, 1.05), (2, 0.05), (3, 0.0)])
async def test_the_cold_start_counts_the_uptime_as_whole_seconds(
    redis_server: RedisServer, name: str, monkeypatch: pytest.MonkeyPatch, uptime: int, wait: float
) -> None:
    """INFO's uptime is whole seconds of the wall clock: "1" may mean up for 0.01 s.

    A server started at 10.99 s reports 1 s of uptime at 11.01 s; counting it as
    a full second let the first turn start 1 s early, inside the forgotten window.
    """
    clock = ManualClock()
    async with ps.RedisRateLimit(
        redis_server.url, name=name, per_second=5, per_minute=None, clock=clock
    ) as limit:

        async def reported(deadline: float | None) -> int:
            return uptime

        monkeypatch.setattr(limit, "_uptime", reported)
        await limit.acquire()
    assert clock.t - 1000.0 == pytest.approx(wait, abs=0.001)


async def test_the_round_trip_to_a_frozen_redis_is_cut_off_at_the_deadline(
    own_redis: RedisServer, name: str
) -> None:
    clock = ManualClock()
    async with ps.RedisRateLimit(own_redis.url, name=name, timeout=30, clock=clock) as limit:
        await limit.acquire()  # connected
        assert own_redis._process is not None
        os.kill(own_redis._process.pid, signal.SIGSTOP)  # accepts and never answers
        try:
            with pytest.raises(
                ps.DeadlineExceededError, match=r"did not answer within the 0\.200s"
            ):
                await limit.acquire(deadline=clock.now() + 0.2)
        finally:
            os.kill(own_redis._process.pid, signal.SIGCONT)
        # Not an outage: the limiter did not fall back to local pacing.
        assert limit.available and limit.stats.local == 0
        # The cut-off reply does not linger on the connection: later turns read their own.
        for _ in range(3):
            await limit.acquire()
        assert (limit.stats.shared, limit.stats.local) == (4, 0)


@pytest.mark.parametrize("mode", ["local", "raise"])
@pytest.mark.parametrize(("suffix", "corrupt"), [("p", "garbage"), ("s", "not-a-zset")])
async def test_a_corrupt_key_is_a_coordination_error_in_every_mode(
    redis_server: RedisServer, name: str, mode: Any, suffix: str, corrupt: str
) -> None:
    key = f"polysim:rl:{{{name}}}:{suffix}"
    async with redis_asyncio.Redis.from_url(redis_server.url) as r:
        await r.set(key, corrupt)
    limit = ps.RedisRateLimit(redis_server.url, name=name, on_unavailable=mode, clock=ManualClock())
    async with limit:
        with pytest.raises(ps.CoordinationError, match=f"refused.*{key}") as got:
            await limit.acquire()
    assert not isinstance(got.value, ps.StoreUnavailableError)
    # No silent fallback to pacing this process alone.
    assert limit.available and (limit.stats.local, limit.stats.outages) == (0, 0)


async def test_turns_from_a_clock_that_stepped_back_do_not_stall_the_budget(
    redis_server: RedisServer, name: str
) -> None:
    """The server's clock steps back 20 s: what it wrote on the old time line is dropped."""
    second, _, pause = keys(name)
    async with redis_asyncio.Redis.from_url(redis_server.url) as r:
        sec, us = await r.time()
        ahead = sec * US + us + 20 * US  # what a server 20 s ahead wrote
        await r.zadd(second, {"old-clock:1": ahead})
        await r.set(pause, ahead)
        await r.set(f"polysim:rl:{{{name}}}:t", ahead)
    clock = ManualClock()
    async with ps.RedisRateLimit(redis_server.url, name=name, per_second=50, clock=clock) as limit:
        await limit.acquire(deadline=clock.now() + 5)
    # One cold-start wait (1.05 s), not the 20 s step.
    assert clock.t - 1000.0 <= 1.05 + 0.01
    assert all(score < ahead for score in await scores(redis_server.url, second))
