"""The dead-man's switch registry (API.md O8), pure: no clock, no I/O.

A registration is keyed by (user, ``client_label``). Each beat sets its expiry to
``beat + interval_ms + max(1000 ms, interval_ms / 4)`` (microseconds, exact). A
registration lapses once the clock is strictly past its expiry (a beat landing on
the expiry instant itself still counts, as documented: refreshes and the sweep
never race). A lapse retires the registration; what it cancels is decided by
the caller (:meth:`._exchange.Exchange.catch_up`: every pending order of the
user's account, in every wallet, whatever the label).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_INTERVAL_MS", "MIN_INTERVAL_MS", "HeartbeatBook", "Registration", "grace_us"]

MIN_INTERVAL_MS = 1_000
MAX_INTERVAL_MS = 60_000


def grace_us(interval_ms: int) -> int:
    """The grace after an interval, ``max(1000 ms, 0.25 x interval_ms)``, in microseconds."""
    return max(1_000_000, interval_ms * 250)


@dataclass(frozen=True, slots=True)
class Registration:
    """One live registration: who, which label, and until when its last beat protects."""

    user_id: int
    label: str
    interval_ms: int
    beat_us: int
    expires_us: int


class HeartbeatBook:
    """Every live registration, with the earliest expiry at hand."""

    def __init__(self) -> None:
        self._live: dict[tuple[int, str], Registration] = {}

    def __len__(self) -> int:
        return len(self._live)

    def beat(self, user_id: int, label: str, interval_ms: int, now_us: int) -> Registration:
        """Register or refresh ``(user_id, label)``; return the registration.

        Raises:
            ValueError: ``interval_ms`` outside 1,000..60,000.
        """
        if not MIN_INTERVAL_MS <= interval_ms <= MAX_INTERVAL_MS:
            raise ValueError("interval_ms must be within 1000..60000")
        expires = now_us + interval_ms * 1000 + grace_us(interval_ms)
        reg = Registration(user_id, label, interval_ms, now_us, expires)
        self._live[(user_id, label)] = reg
        return reg

    def next_expiry(self) -> int | None:
        """The earliest expiry of a live registration, or ``None``."""
        return min((r.expires_us for r in self._live.values()), default=None)

    def pop_lapsed(self, before_us: int) -> list[Registration]:
        """Retire and return every registration whose expiry is before ``before_us``.

        A caller at instant ``now`` passes ``now``: a registration lapses when
        ``now`` is strictly past its expiry. They come back earliest first.
        """
        due = sorted(
            (r for r in self._live.values() if r.expires_us < before_us),
            key=lambda r: (r.expires_us, r.user_id, r.label),
        )
        for reg in due:
            del self._live[(reg.user_id, reg.label)]
        return due

    def registrations(self, user_id: int | None = None) -> list[Registration]:
        """The live registrations (of one user), earliest expiry first."""
        regs = [r for r in self._live.values() if user_id is None or r.user_id == user_id]
        return sorted(regs, key=lambda r: (r.expires_us, r.user_id, r.label))

    def drop(self, user_id: int | None = None) -> list[Registration]:
        """Retire every registration (of one user) now, as lapsed; return them."""
        gone = self.registrations(user_id)
        for reg in gone:
            del self._live[(reg.user_id, reg.label)]
        return gone
