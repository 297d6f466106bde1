"""The ETA estimate (pure) and where the export reads the rate budget and the clock."""

from __future__ import annotations

import pytest

import polysim_async as ps
from polysim_async.export import estimate_eta
from polysim_async.export._run import _budget, _monotonic

from .._helpers import FakeClock


def eta(**kwargs: float | int | None) -> float | None:
    args = {
        "accounts_total": 100,
        "accounts_done": 10,
        "pages_of_done": 40,
        "pages_of_open": 0,
        "budget": 50.0,
        "observed": None,
    }
    args.update(kwargs)
    return estimate_eta(**args)  # type: ignore[arg-type]


def test_the_accounts_left_need_the_pages_the_finished_ones_needed_at_the_budget() -> None:
    assert eta() == pytest.approx(90 * 4 / 50)


def test_pages_already_read_by_open_accounts_are_not_counted_again() -> None:
    assert eta(pages_of_open=60) == pytest.approx((360 - 60) / 50)


def test_every_account_left_costs_at_least_one_request() -> None:
    assert eta(pages_of_done=10, pages_of_open=500) == pytest.approx(90 / 50)


def test_a_lower_observed_rate_wins_and_without_a_budget_it_is_the_rate() -> None:
    assert eta(observed=20.0) == pytest.approx(360 / 20)
    assert eta(observed=80.0) == pytest.approx(360 / 50)
    assert eta(budget=None, observed=30.0) == pytest.approx(360 / 30)


def test_unknown_until_an_account_finished_or_a_rate_is_known_and_zero_at_the_end() -> None:
    assert eta(accounts_done=0, pages_of_done=0) is None
    assert eta(budget=None, observed=None) is None
    assert eta(accounts_done=100) == 0.0


async def test_the_budget_is_the_tighter_of_the_client_windows() -> None:
    clock = FakeClock()
    async with ps.Client(
        "tk", "http://127.0.0.1:9", rate_limit=ps.RateLimit(per_second=10, per_minute=300)
    ) as client:
        assert _budget(client.partner.accounts._r) == pytest.approx(5.0)
    async with ps.Client("tk", "http://127.0.0.1:9") as client:
        assert _budget(client.partner.accounts._r) == pytest.approx(50.0)
    async with ps.Client("tk", "http://127.0.0.1:9", rate_limit=None) as client:
        assert _budget(client.partner.accounts._r) is None
    async with ps.Client("tk", "http://127.0.0.1:9", clock=clock) as client:
        now = _monotonic(client.partner.accounts._r)
        assert now() == 1000.0
        clock.t += 2.5
        assert now() == 1002.5


async def test_the_clock_can_be_a_clock_object() -> None:
    from polysim_async._clock import SystemClock

    class Requester:
        clock = SystemClock()

    now = _monotonic(Requester())
    assert now() <= now()
