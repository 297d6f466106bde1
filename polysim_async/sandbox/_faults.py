"""Fault injection: make matching requests fail, stall, lie or vanish.

HTTP rules match a request by method (optional) and a glob on its path
(``fnmatch``, case-sensitive, e.g. ``/v1/partner/accounts/*/trades``), and are used
up after ``times`` matches (``None`` = until cleared). Actions:

* ``error``: answer ``status`` with the envelope ``{"error": code, "message": ...}``
  (and ``Retry-After`` when given) without acting.
* ``latency``: wait ``delay`` real seconds, then carry on (combines with any other rule).
* ``malformed``: answer ``200`` with a truncated, invalid JSON body, without acting.
* ``abort_before``: drop the connection without acting and without answering.
* ``abort_after``: act (the order is placed, the account is closed, ...) and then
  drop the connection, so the client never sees the answer.

WebSocket faults (both channels; a "frame" is a fill frame on the executions
socket, any queued frame on the price socket): close with a code or abort the TCP
connection after N frames, abort at random points (probability per frame from a
seeded generator), send a malformed text frame, or switch fill frames to an older
``execution`` shape (API.md §10.3).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Literal

__all__ = ["FaultAction", "FaultRule", "FaultSet", "FrameShape", "WsFaults"]

FaultAction = Literal["error", "latency", "malformed", "abort_before", "abort_after"]
FrameShape = Literal["fill", "execution_nested", "execution_flat"]
ACTIONS: tuple[str, ...] = ("error", "latency", "malformed", "abort_before", "abort_after")
SHAPES: tuple[str, ...] = ("fill", "execution_nested", "execution_flat")


@dataclass(slots=True)
class FaultRule:
    """One injected fault; see the module docstring for the actions."""

    path: str
    action: FaultAction = "error"
    method: str | None = None
    times: int | None = 1
    status: int = 500
    code: str = "INTERNAL_ERROR"
    message: str = "injected fault"
    retry_after: int | None = None
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule applies to ``method path``."""
        if self.method is not None and self.method.upper() != method:
            return False
        return fnmatchcase(path, self.path)


class FaultSet:
    """The active HTTP fault rules, consumed in the order they were added."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> FaultRule:
        """Install a rule.

        Raises:
            ValueError: unknown action, or a non-positive ``times``.
        """
        if rule.action not in ACTIONS:
            raise ValueError(f"unknown fault action {rule.action!r}")
        if rule.times is not None and rule.times < 1:
            raise ValueError("times must be positive (or None for unlimited)")
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        self.rules.clear()

    def take(self, method: str, path: str) -> tuple[float, FaultRule | None]:
        """Consume the matching rules: ``(total latency, first non-latency rule or None)``."""
        if not self.rules:
            return 0.0, None
        delay = 0.0
        chosen: FaultRule | None = None
        for rule in list(self.rules):
            if not rule.matches(method, path):
                continue
            if rule.action == "latency":
                delay += rule.delay
            elif chosen is None:
                chosen = rule
            else:
                continue
            if rule.times is not None:
                rule.times -= 1
                if rule.times == 0:
                    self.rules.remove(rule)
        return delay, chosen


@dataclass(slots=True)
class WsFaults:
    """Faults applied to WebSocket sockets (new and already open)."""

    shape: FrameShape = "fill"
    #: Close (or abort) each socket after it has sent this many frames.
    after_frames: int | None = None
    mode: Literal["close", "abort"] = "close"
    close_code: int = 1011
    #: Probability, per frame, of aborting the socket (seeded).
    chaos: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    #: Malformed text frames still to send, one before each of the next frames.
    malformed: int = 0
