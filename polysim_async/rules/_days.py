"""Trading days: where each day of a rule set starts, in an IANA time zone, across DST changes.

A rule set's day starts at a local wall-clock time (``day_start_time``, default
``00:00``) in a zone (``day_time_zone``, default ``UTC``). Day ``d`` (a local
calendar date, counted as a proleptic ordinal) is the half-open interval
``[start(d), start(d + 1))`` of instants, where ``start(d)`` is date ``d`` at the
start time in the zone. Membership is decided on instants, never on wall-clock
readings, so a day that loses or gains an hour to a DST change is simply 23 or 25
hours long. A start time that a spring-forward change skips (02:30 on the day
Europe/Prague jumps from 02:00 to 03:00) resolves with the offset in force before
the change (``fold=0``), i.e. one hour later in new local time; a start time that a
fall-back change repeats resolves to its first occurrence.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from .._errors import InvalidArgumentError

__all__ = ["DayClock", "parse_day_start", "zone_of"]

_ONE_DAY = timedelta(days=1)
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*")
#: Names a zone database may hold whose meaning depends on the machine: the local
#: zone ("localtime", "Factory"), POSIX-rule defaults and the leap-second variants.
_MACHINE_DEPENDENT = frozenset({"localtime", "Factory", "posixrules"})
_MACHINE_DEPENDENT_DIRS = frozenset({"posix", "right", "SystemV"})


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


@functools.lru_cache(maxsize=256)
def zone_of(name: str) -> tzinfo:
    """Return the time zone named ``name`` (an IANA name such as ``Europe/Prague``).

    Only names that mean the same on every machine are accepted: spelled exactly
    as in the IANA database (case included), never the machine's own zone
    (``localtime``, ``Factory``) nor the database's ``posix/`` and ``right/``
    (leap-second) variants.

    Raises:
        InvalidArgumentError: no such zone in the time-zone database (on Windows,
            which has none, the ``tzdata`` package provides it).
    """
    if name == "UTC":
        return timezone.utc
    if (
        not _ZONE_NAME.fullmatch(name)
        or name in _MACHINE_DEPENDENT
        or name.split("/", 1)[0] in _MACHINE_DEPENDENT_DIRS
    ):
        raise InvalidArgumentError(
            f"day_time_zone {name!r} is not an IANA time zone name that means the same "
            "on every machine (e.g. 'Europe/Prague'; never 'localtime')"
        )
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidArgumentError(
            f"day_time_zone {name!r} is not an IANA time zone name "
            "(on a machine without a zone database, `pip install tzdata`)"
        ) from exc
    if name not in _known_zones():
        # Found only through a case-insensitive file system ('europe/prague').
        raise InvalidArgumentError(
            f"day_time_zone {name!r} is not an IANA time zone name (spell it exactly, "
            "e.g. 'Europe/Prague')"
        )
    return zone


def parse_day_start(text: str) -> time:
    """Parse ``"HH:MM"`` (24-hour, ASCII digits) into a :class:`~datetime.time`.

    Raises:
        InvalidArgumentError: not ``HH:MM`` with ``00 <= HH <= 23`` and ``00 <= MM <= 59``.
    """
    parts = text.split(":") if isinstance(text, str) else []
    if len(parts) != 2 or not all(len(p) == 2 and p.isascii() and p.isdigit() for p in parts):
        raise InvalidArgumentError(f"day_start_time must be 'HH:MM', got {text!r}")
    hour, minute = int(parts[0]), int(parts[1])
    if hour > 23 or minute > 59:
        raise InvalidArgumentError(f"day_start_time must be 'HH:MM', got {text!r}")
    return time(hour, minute)


class DayClock:
    """Maps instants to trading days and back, for one zone and start time.

    Days are numbered by the proleptic ordinal of their local start date
    (:meth:`datetime.date.toordinal`). Instances cache the last day looked up, so
    asking about instants in the same day (the common case: a stream of fills)
    costs two comparisons.

    Args:
        zone: an IANA time-zone name.
        start: the local start time of every day, ``"HH:MM"``.

    Raises:
        InvalidArgumentError: unknown zone or malformed start time.
    """

    __slots__ = ("_cached_end", "_cached_ordinal", "_cached_start", "_start", "_zone")

    def __init__(self, zone: str = "UTC", start: str = "00:00") -> None:
        self._zone = zone_of(zone)
        self._start = parse_day_start(start)
        self._cached_ordinal = 0
        self._cached_start = self._cached_end = datetime.min.replace(tzinfo=timezone.utc)

    def start_of(self, ordinal: int) -> datetime:
        """Return the instant (in UTC) at which day ``ordinal`` starts."""
        local = datetime.combine(date.fromordinal(ordinal), self._start, tzinfo=self._zone)
        return local.astimezone(timezone.utc)

    def day_of(self, at: datetime) -> int:
        """Return the ordinal of the day holding the aware instant ``at``."""
        if self._cached_start <= at < self._cached_end:
            return self._cached_ordinal
        return self.locate(at)[0]

    def locate(self, at: datetime) -> tuple[int, datetime, datetime]:
        """Return ``(ordinal, start, end)`` of the day holding ``at`` (``end`` is the next start).

        Raises:
            ValueError: ``at`` is a naive datetime.
        """
        if at.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        if self._cached_start <= at < self._cached_end:
            return self._cached_ordinal, self._cached_start, self._cached_end
        local = at.astimezone(self._zone)
        ordinal = local.date().toordinal()
        # A first guess from the wall clock, corrected on instants (DST-safe).
        if local.time() < self._start:
            ordinal -= 1
        start = self.start_of(ordinal)
        while at < start:
            ordinal -= 1
            start = self.start_of(ordinal)
        end = self.start_of(ordinal + 1)
        while at >= end:
            ordinal, start = ordinal + 1, end
            end = self.start_of(ordinal + 1)
        self._cached_ordinal, self._cached_start, self._cached_end = ordinal, start, end
        return ordinal, start, end

    def add_days(self, at: datetime, days: int) -> datetime:
        """Return the instant ``days`` calendar days after ``at`` at the same local wall time."""
        local = at.astimezone(self._zone)
        shifted = datetime.combine(
            local.date() + timedelta(days=days), local.timetz().replace(tzinfo=None)
        ).replace(tzinfo=self._zone, fold=0)
        return shifted.astimezone(timezone.utc)
