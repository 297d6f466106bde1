"""Day boundaries in IANA zones, across daylight-saving changes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from polysim_async import InvalidArgumentError
from polysim_async.rules import DayClock


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)  # type: ignore[misc]


def test_utc_midnight_by_default() -> None:
    days = DayClock()
    ordinal, start, end = days.locate(utc(2026, 6, 4, 14, 9))
    assert (start, end) == (utc(2026, 6, 4), utc(2026, 6, 5))
    assert days.day_of(utc(2026, 6, 4, 23, 59, 59)) == ordinal
    assert days.day_of(utc(2026, 6, 5)) == ordinal + 1  # the boundary belongs to the new day


def test_prague_midnight_across_the_spring_change_gives_a_23_hour_day() -> None:
    days = DayClock("Europe/Prague")
    # 2026-03-29 02:00 CET -> 03:00 CEST.
    _, start, end = days.locate(utc(2026, 3, 29, 12))
    assert (start, end) == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))
    assert end - start == timedelta(hours=23)
    assert days.locate(utc(2026, 3, 28, 22, 59, 59))[2] == utc(2026, 3, 28, 23)


def test_prague_midnight_across_the_autumn_change_gives_a_25_hour_day() -> None:
    days = DayClock("Europe/Prague")
    _, start, end = days.locate(utc(2026, 10, 25, 12))
    assert (start, end) == (utc(2026, 10, 24, 22), utc(2026, 10, 25, 23))


def test_a_start_time_skipped_by_the_change_takes_the_offset_before_it() -> None:
    days = DayClock("Europe/Prague", "02:30")
    # 02:30 on 2026-03-29 does not exist: it resolves with +01:00, i.e. 01:30Z (03:30 CEST).
    assert days.start_of(days.day_of(utc(2026, 3, 29, 12))) == utc(2026, 3, 29, 1, 30)
    assert days.day_of(utc(2026, 3, 29, 1, 29)) == days.day_of(utc(2026, 3, 28, 12))
    assert days.locate(utc(2026, 3, 29, 12))[2] == utc(2026, 3, 30, 0, 30)


def test_a_new_york_17_00_day_and_calendar_day_arithmetic() -> None:
    days = DayClock("America/New_York", "17:00")
    # 2026-03-08: New York moves to EDT; 17:00 EST on the 7th is 22:00Z, 17:00 EDT is 21:00Z.
    _, start, end = days.locate(utc(2026, 3, 8, 12))
    assert (start, end) == (utc(2026, 3, 7, 22), utc(2026, 3, 8, 21))
    # Two calendar days after 12:00 EST on the 7th is 12:00 EDT on the 9th: 47 hours.
    assert days.add_days(utc(2026, 3, 7, 17), 2) == utc(2026, 3, 9, 16)


def test_unknown_zones_bad_times_and_naive_instants_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="IANA"):
        DayClock("Europe/Atlantis")
    with pytest.raises(InvalidArgumentError, match="HH:MM"):
        DayClock("UTC", "7:00")
    with pytest.raises(ValueError, match="aware"):
        DayClock().locate(datetime(2026, 1, 1))
