"""Fleet monitor: breach detection latency against plain round-robin polling, same budget.

Simulated time, so the figures are repeatable and independent of the machine: both
contenders run on an event loop whose clock jumps to the next timer whenever
nothing is ready (virtual time), against an in-process partner API (a
``MockTransport``) whose accounts move on a fixed schedule, through the full client
request path with the partner's 50/s limiter on that clock.

The fleet: ``accounts`` accounts of 10,000 with a static 10% maximum loss (floor
9,000). 98% are quiet: their equity wiggles ±60 around 10,000 (a sine of period
10-30 minutes). 2% trend toward the floor: each starts falling at a seeded random
time within the first 10 minutes and falls at a constant speed that reaches the
floor 5-15 minutes later. The instant a trending account's equity reaches 9,000 is
known exactly (``crossed``).

Measured, per breaching account: latency = the (virtual) time its ``"breach"``
verdict reaches the consumer minus ``crossed``; median and p95 over the breaching
accounts. Also the monitor's largest gap between two samples of one account
(``stats.max_staleness``) against its staleness floor.

Contenders, each on the same fleet and seed, one after the other in one run:

* ``monitor``: ``client.partner.accounts.monitor(ids)`` with its defaults (80% of
  the 50/s budget, a fifth of that for the trade feeds, the rest for samples).
* ``round robin``: ``accounts.get`` of every account in turn at the same 40/s (all
  of it for samples; no trade feed), each sample judged by an ``Evaluator``.
"""

from __future__ import annotations

import asyncio
import math
import random
import selectors
import statistics
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, TypeVar

from benchmarks._common import Row
from polysim_async import Client, Evaluator, MockTransport, Request, Response, RuleSet

NAME = "monitor"
T = TypeVar("T")
WALL0 = datetime(2027, 1, 4, 9, tzinfo=timezone.utc).timestamp()
START = Decimal("10000.00")
RULES = {"max_drawdown_pct": 10}
BUDGET = 0.8 * 50  # the monitor's default share of the partner's 50/s


class _Selector(selectors.DefaultSelector):
    def __init__(self, loop_now: list[float]) -> None:
        super().__init__()
        self._now = loop_now

    def select(self, timeout: float | None = None) -> list[Any]:
        events = super().select(0)
        if events or timeout == 0 or timeout is None:
            return events if events or timeout == 0 else super().select(timeout)
        self._now[0] += timeout
        return []


class _VirtualLoop(asyncio.SelectorEventLoop):
    """Time jumps to the next timer whenever nothing is ready."""

    def __init__(self) -> None:
        self._virtual = [0.0]
        super().__init__(_Selector(self._virtual))

    def time(self) -> float:
        return self._virtual[0]


class _LoopClock:
    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def wall(self) -> float:
        return WALL0 + self.now()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_at(self, when: float, callback: Callable[[], object]) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_at(when, callback)


def _run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    loop = _VirtualLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@dataclass
class Fleet:
    """Accounts whose equity is a function of virtual time; ``crossed`` per trending one."""

    ids: list[str]
    wiggle: dict[str, tuple[float, float]]  # (period, phase)
    trend: dict[str, tuple[float, float]]  # (start, dollars per second)

    @classmethod
    def make(cls, accounts: int, *, seed: int = 10, scale: float = 1.0) -> Fleet:
        """The fleet; ``scale`` shrinks the trends' timing (a smoke run)."""
        rng = random.Random(seed)
        ids = [f"acct-{i:05d}" for i in range(accounts)]
        wiggle = {a: (rng.uniform(600, 1800), rng.uniform(0, 2 * math.pi)) for a in ids}
        trending = rng.sample(ids, max(1, accounts // 50))
        trend = {
            a: (scale * rng.uniform(0, 600), 1000 / (scale * rng.uniform(300, 900)))
            for a in trending
        }
        return cls(ids, wiggle, trend)

    def crossed(self, aid: str) -> float:
        start, speed = self.trend[aid]
        return start + 1000 / speed

    def equity(self, aid: str, t: float) -> Decimal:
        if aid in self.trend:
            start, speed = self.trend[aid]
            value = 10000 - speed * max(0.0, t - start)
        else:
            period, phase = self.wiggle[aid]
            value = 10000 + 60 * math.sin(2 * math.pi * t / period + phase)
        return Decimal(f"{value:.2f}")

    def handle(self, request: Request) -> Response:
        parts = request.path.split("/")  # /v1/partner/accounts/{aid}[/trades]
        aid = parts[4]
        if parts[-1] == "trades":
            return Response.from_json({"data": [], "next_cursor": None})
        now = asyncio.get_running_loop().time()
        equity = str(self.equity(aid, now))
        return Response.from_json(
            {
                "account_id": aid,
                "external_id": aid,
                "stage": "challenge",
                "status": "active",
                "starting_balance": str(START),
                "balance": equity,
                "equity": equity,
                "unrealized_pnl": "0.00",
                "realized_pnl": None,
                "rules": RULES,
                "metadata": None,
                "open_positions": [],
                "updated_at": datetime.fromtimestamp(WALL0 + now, timezone.utc).isoformat(),
            }
        )


@dataclass
class Result:
    latencies: list[float]
    max_staleness: float
    staleness: float


def _client(fleet: Fleet) -> Client:
    return Client("tk_bench", "https://api.bench", transport=MockTransport(fleet.handle),
                  clock=_LoopClock())  # fmt: skip


async def monitor_run(fleet: Fleet) -> Result:
    """The monitor until every trending account breached; latency per breach."""
    latencies: list[float] = []
    async with _client(fleet) as client:
        monitor = client.partner.accounts.monitor(fleet.ids)
        async with monitor:
            async for event in monitor:
                if event.kind == "breach":
                    now = asyncio.get_running_loop().time()
                    latencies.append(now - fleet.crossed(event.account_id))
                    if len(latencies) == len(fleet.trend):
                        break
        return Result(latencies, monitor.stats.max_staleness, monitor.staleness)


async def round_robin_run(fleet: Fleet) -> Result:
    """``accounts.get`` of each account in turn at the monitor's whole budget, judged each time."""
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    rules = RuleSet.from_wire(RULES)
    opened = datetime.fromtimestamp(WALL0, timezone.utc)
    evaluators = {a: Evaluator(rules, starting_balance=START, opened_at=opened) for a in fleet.ids}
    async with _client(fleet) as client:
        tick = loop.time()
        i = 0
        while len(latencies) < len(fleet.trend):
            aid = fleet.ids[i % len(fleet.ids)]
            i += 1
            tick = max(tick + 1 / BUDGET, loop.time())
            await asyncio.sleep(tick - loop.time())
            ev = evaluators[aid]
            if ev.decided:
                continue
            state = await client.partner.accounts.get(aid)
            at = datetime.fromtimestamp(WALL0 + loop.time(), timezone.utc)
            ev.add_sample(at, balance=state.balance, equity=state.equity)
            if ev.verdict(at).status == "failed":
                latencies.append(loop.time() - fleet.crossed(aid))
    return Result(latencies, len(fleet.ids) / BUDGET, len(fleet.ids) / BUDGET)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def run(*, quick: bool = False, accounts: int = 2000) -> list[Row]:
    """Both contenders on one fleet (200 accounts with ``quick``); latency rows and the ratio."""
    if quick:
        accounts = min(accounts, 200)
    fleet = Fleet.make(accounts, scale=0.1 if quick else 1.0)
    mon = _run(lambda: monitor_run(fleet))
    rr = _run(lambda: round_robin_run(fleet))
    m_med, r_med = statistics.median(mon.latencies), statistics.median(rr.latencies)
    ratio = r_med / m_med if m_med > 0 else math.inf
    breaching = f"{len(fleet.trend)} of {accounts} accounts breaching, {BUDGET:g} req/s"
    return [
        Row(
            NAME,
            "round robin (accounts.get in turn)",
            f"median {r_med:.1f} s, p95 {_p95(rr.latencies):.1f} s",
            "1.0x",
            note=f"{breaching}; each account read every {accounts / BUDGET:.0f} s",
        ),
        Row(
            NAME,
            "accounts.monitor",
            f"median {m_med:.1f} s, p95 {_p95(mon.latencies):.1f} s",
            f"{ratio:.1f}x lower",
            target=">= 5x lower median",
            met=ratio >= 5 and mon.max_staleness <= mon.staleness,
            note=(
                f"max staleness {mon.max_staleness:.0f} s (floor {mon.staleness:.0f} s); "
                "virtual time"
            ),
            extra={"ratio": ratio, "max_staleness": mon.max_staleness},
        ),
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
