"""The sampling scheduler: unit cases, then properties of whole simulated runs.

A run is simulated on numbers only: one slot every ``1 / budget`` seconds (a limiter
granting the whole budget), each slot asks :meth:`SampleScheduler.pop` and the
sample is observed at once. Account ``i``'s equity drifts at ``drift[i]`` per
second toward a limit ``head[i]`` away.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from polysim_async import InvalidArgumentError
from polysim_async._schedule import SampleScheduler


def test_new_accounts_are_due_at_once_and_in_flight_until_observed() -> None:
    s = SampleScheduler(budget=10, staleness=60)
    s.add("a", now=100.0)
    s.add("b", now=100.0)
    assert s.next_due() == 100.0
    assert {s.pop(100.0), s.pop(100.0)} == {"a", "b"}
    assert s.pop(100.0) is None  # both in flight
    assert s.due_at("a") is None
    s.observe("a", at=100.5, equity=1000, headroom=None)
    # No risk anywhere: the spare budget is spread evenly, capped at one per min_interval.
    assert s.rate("a") == pytest.approx(1.0)
    assert s.due_at("a") == pytest.approx(101.5)
    assert s.pop(101.4) is None  # never twice within min_interval, even ahead of time
    assert s.pop(101.5, ahead=0) == "a"


def test_accounts_are_handed_out_ahead_of_time_unless_asked_not_to() -> None:
    s = SampleScheduler(budget=10, staleness=60)
    for i in range(20):
        s.add(f"a{i}", now=0.0)
    while (aid := s.pop(0.0)) is not None:
        s.observe(aid, at=0.0, equity=1000, headroom=None)
    # (9 - 20/60) / 20 spare each on top of the 1/60 floor: about every 2.2 seconds.
    assert s.interval("a0") == pytest.approx(1 / (1 / 60 + (9 - 20 / 60) / 20))
    assert s.pop(1.5, ahead=0) is None
    assert s.pop(1.5) is not None


def test_a_failed_sample_is_retried_when_asked_and_discard_forgets() -> None:
    s = SampleScheduler(budget=10, staleness=60)
    s.add("a", now=0.0)
    assert s.pop(0.0) == "a"
    s.retry("a", at=5.0)
    assert s.pop(4.0, ahead=0) is None
    assert s.pop(5.0, ahead=0) == "a"
    s.discard("a")
    s.discard("a")  # no-op
    assert "a" not in s and len(s) == 0 and s.pop(10.0) is None
    with pytest.raises(InvalidArgumentError, match="not scheduled"):
        s.observe("a", at=1.0, equity=1, headroom=None)


def test_the_spare_budget_goes_to_the_account_closest_to_breaking() -> None:
    s = SampleScheduler(budget=10, staleness=100, reserve=0.0, min_interval=0.01)
    for aid in ("quiet", "risky", "calm"):
        s.add(aid, now=0.0)
        s.pop(0.0)
    s.observe("quiet", at=0.0, equity=1000, headroom=500)
    s.observe("calm", at=0.0, equity=1000, headroom=500)
    s.observe("risky", at=0.0, equity=1000, headroom=100)
    for aid, equity in (("quiet", 1000), ("calm", 1010), ("risky", 990)):
        s.pop(10.0)
        s.observe(aid, at=10.0, equity=equity, headroom=500 if aid != "risky" else 90)
    # Speeds: 0, 1 and 1 per second; risk = speed / headroom: 0, 1/500, 1/90.
    assert s.speed("calm") == pytest.approx(1.0)
    floor = 1 / 100
    spare = 10 - 3 * floor
    total = 1 / 500 + 1 / 90
    assert s.rate("quiet") == pytest.approx(floor)
    assert s.rate("calm") == pytest.approx(floor + spare * (1 / 500) / total)
    assert s.rate("risky") == pytest.approx(floor + spare * (1 / 90) / total)
    assert s.feasible


def test_speed_is_held_at_its_peak_and_halves_every_half_life() -> None:
    s = SampleScheduler(budget=10, staleness=1000, half_life=100)
    s.add("a", now=0.0)
    s.pop(0.0)
    s.observe("a", at=0.0, equity=1000, headroom=100)
    s.pop(0.0)
    s.observe("a", at=10.0, equity=1040, headroom=100)  # 4 per second
    s.pop(0.0)
    s.observe("a", at=110.0, equity=1040, headroom=100)  # still; one half-life later
    assert s.speed("a") == pytest.approx(2.0)


def test_a_breached_headroom_gets_the_fastest_rate() -> None:
    s = SampleScheduler(budget=100, staleness=60, min_interval=2.0)
    s.add("a", now=0.0)
    s.add("b", now=0.0)
    for aid in ("a", "b"):
        s.pop(0.0)
        s.observe(aid, at=0.0, equity=1000, headroom=0 if aid == "a" else 10)
    assert s.rate("a") == pytest.approx(0.5)  # 1 / min_interval


def test_a_day_boundary_is_never_sampled_early_and_goes_first_after() -> None:
    s = SampleScheduler(budget=10, staleness=600)
    s.add("quiet", now=0.0, next_boundary=1000.0)
    s.add("busy", now=0.0)
    assert s.pop(0.0) in {"quiet", "busy"}
    assert s.pop(0.0) in {"quiet", "busy"}
    s.observe("quiet", at=1.0, equity=1000, headroom=None, next_boundary=1000.0)
    s.observe("busy", at=1.0, equity=1000, headroom=1, next_boundary=None)
    assert s.next_due() is not None
    # Sampled ahead of time before the boundary, the quiet account still owes one after it.
    while (aid := s.pop(999.0, ahead=0)) is not None:
        s.observe(aid, at=999.0, equity=1000, headroom=None, next_boundary=1000.0)
    assert s.pop(1000.0) == "quiet"
    s.observe("quiet", at=1000.0, equity=1000, headroom=None, next_boundary=2000.0)
    assert s.due_at("quiet") is not None and s.due_at("quiet") > 1000.0  # type: ignore[operator]


def test_an_overloaded_budget_says_so_and_gives_every_account_the_floor() -> None:
    s = SampleScheduler(budget=1, staleness=10)
    for i in range(20):
        s.add(f"a{i}", now=0.0)
    assert not s.feasible
    assert s.rate("a0") == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget": 0, "staleness": 10}, "budget"),
        ({"budget": 10, "staleness": -1}, "staleness"),
        ({"budget": 10, "staleness": 10, "min_interval": 20}, "min_interval"),
        ({"budget": 10, "staleness": 10, "reserve": 1.0}, "reserve"),
        ({"budget": math.nan, "staleness": 10}, "budget"),
        ({"budget": True, "staleness": 10}, "budget"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        SampleScheduler(**kwargs)


def test_adding_twice_is_refused() -> None:
    s = SampleScheduler(budget=10, staleness=10)
    s.add("a", now=0.0)
    with pytest.raises(InvalidArgumentError, match="already"):
        s.add("a", now=0.0)


# -- whole runs ------------------------------------------------------------------------


@dataclass
class Fleet:
    budget: float
    staleness: float
    day: float | None
    drift: list[float]
    head: list[float]
    ahead: float = math.inf
    times: dict[str, list[float]] = field(default_factory=dict)


@st.composite
def fleets(draw: st.DrawFn) -> Fleet:
    n = draw(st.integers(1, 40))
    budget = float(draw(st.sampled_from([2, 5, 20])))
    # Feasible with the 10% reserve, and the staleness floor well above two slots.
    staleness = max(n / (budget * 0.9), 3.0) * draw(st.sampled_from([1.0, 1.5, 3.0]))
    return Fleet(
        budget=budget,
        staleness=staleness,
        day=draw(st.sampled_from([None, 37.0, 120.0])),
        drift=[draw(st.sampled_from([0.0, 0.0, 0.5, -2.0, 5.0])) for _ in range(n)],
        head=[draw(st.sampled_from([20.0, 300.0, 5000.0])) for _ in range(n)],
    )


def boundary_after(fleet: Fleet, t: float) -> float | None:
    return None if fleet.day is None else (math.floor(t / fleet.day) + 1) * fleet.day


def run(fleet: Fleet, horizon: float) -> SampleScheduler:
    s = SampleScheduler(budget=fleet.budget, staleness=fleet.staleness, half_life=60)
    ids = [f"a{i}" for i in range(len(fleet.drift))]
    for aid in ids:
        s.add(aid, now=0.0, next_boundary=boundary_after(fleet, 0.0))
    fleet.times = {aid: [] for aid in ids}
    slot = 1 / fleet.budget
    k = 0
    while (now := k * slot) < horizon:
        aid = s.pop(now, ahead=fleet.ahead)
        if aid is not None:
            i = int(aid[1:])
            wobble = 3.0 if k % 2 and fleet.drift[i] else 0.0  # noise on the moving ones
            s.observe(
                aid,
                at=now,
                equity=1000 + fleet.drift[i] * now + wobble,
                headroom=max(fleet.head[i] - abs(fleet.drift[i]) * now, 0.0),
                next_boundary=boundary_after(fleet, now),
            )
            fleet.times[aid].append(now)
        k += 1
    return s


RUNS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@RUNS
@given(fleets())
def test_no_account_gets_older_than_the_staleness_floor(fleet: Fleet) -> None:
    horizon = 4 * fleet.staleness
    run(fleet, horizon)
    for times in fleet.times.values():
        points = [0.0, *times]
        gaps = [b - a for a, b in itertools.pairwise(points)]
        gaps.append(horizon - points[-1])
        assert max(gaps) <= fleet.staleness


@RUNS
@given(fleets())
def test_every_account_is_sampled_right_after_each_day_boundary(fleet: Fleet) -> None:
    assume(fleet.day is not None)
    assert fleet.day is not None
    n = len(fleet.drift)
    slot = 1 / fleet.budget
    burst = n * slot + slot  # one sample per account, one slot each
    horizon = 4 * fleet.staleness + fleet.day
    run(fleet, horizon)
    boundary = fleet.day
    while boundary + burst < horizon:
        for times in fleet.times.values():
            first = next(t for t in times if t >= boundary)
            assert first <= boundary + burst
        boundary += fleet.day


@st.composite
def fleets_with_spare_budget(draw: st.DrawFn) -> Fleet:
    """Budget to spare, but not so much that every account could sample near the cap
    of one a second (then the risky cannot get much more than the quiet)."""
    fleet = draw(fleets())
    fleet.drift[0], fleet.head[0] = 5.0, 20.0  # one trending toward a limit
    fleet.drift.append(0.0)
    fleet.head.append(5000.0)  # one quiet account far from any limit
    n = len(fleet.drift)
    fleet.budget = float(draw(st.integers(1, max(1, int(n / 0.9 / 2)))))
    fleet.staleness = n / (fleet.budget * 0.9) * draw(st.sampled_from([1.5, 3.0]))
    fleet.staleness = max(fleet.staleness, 10 / fleet.budget)  # far above the 2-slot guard
    fleet.day = None
    return fleet


@RUNS
@given(fleets_with_spare_budget())
def test_the_budget_goes_where_the_risk_is(fleet: Fleet) -> None:
    risky = [i for i, d in enumerate(fleet.drift) if d != 0 and fleet.head[i] <= 300]
    quiet = [i for i, d in enumerate(fleet.drift) if d == 0 and fleet.head[i] >= 300]
    horizon = 4 * fleet.staleness
    run(fleet, horizon)
    counts = sorted(len(fleet.times[f"a{i}"]) for i in risky)
    most_quiet = max(len(fleet.times[f"a{i}"]) for i in quiet)
    assert counts[0] >= most_quiet - 1  # the phase of a periodic schedule: one sample
    # The risky accounts get their floors and most of the spare budget (or their cap of
    # one sample a second, when that is less).
    n = len(fleet.drift)
    spare = 0.9 * fleet.budget - n / fleet.staleness
    floors = len(risky) * horizon / fleet.staleness
    assert sum(counts) >= min(floors + 0.5 * spare * horizon, 0.8 * len(risky) * horizon)


@RUNS
@given(fleets())
def test_sampling_only_what_is_due_stays_within_the_budget(fleet: Fleet) -> None:
    fleet.ahead = 0.0
    fleet.day = None
    horizon = 6 * fleet.staleness
    run(fleet, horizon)
    taken = sum(len(t) for t in fleet.times.values())
    n = len(fleet.drift)
    # Rates sum to 90% of the budget; each account may also be sampled once at the start.
    assert taken <= 0.9 * fleet.budget * horizon + n + 1
