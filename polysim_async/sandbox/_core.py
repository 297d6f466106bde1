"""One running sandbox's parts, composed: state, exchange, sockets, limiters, faults, knobs.

:class:`Core` only wires the parts together; behaviour lives in them (the
exchange in :mod:`._exchange`, placement and account lifecycle in
:mod:`._trading`, sockets in :mod:`._ws`). Nothing below this module imports it.
"""

from __future__ import annotations

import itertools
from datetime import datetime

from aiohttp import web

from ._clock import SandboxClock
from ._context import Settings
from ._exchange import Exchange
from ._faults import FaultSet, WsFaults
from ._ratelimit import FixedWindow, PartnerLimiter, RealTime, TimeSource
from ._state import SandboxState
from ._ws import Hub, WsTokens

__all__ = ["CORE", "Core"]


class Core:
    """Everything one running sandbox owns.

    Args:
        seed: seeds ids, keys, markets and the random walk.
        start: simulated instant at start.
        frozen_clock: simulated time moves only through ``advance``.
        random_walk: prices take one seeded step per simulated hour.
        rate_clock: the time source of rate-limit windows (real time by default).
    """

    def __init__(
        self,
        *,
        seed: int,
        start: datetime,
        frozen_clock: bool,
        random_walk: bool,
        rate_clock: TimeSource | None = None,
    ) -> None:
        self.settings = Settings()
        self.clock = SandboxClock(start, frozen=frozen_clock)
        self.state = SandboxState(seed=seed, clock=self.clock)
        self.exchange = Exchange(self.state, self.settings, random_walk=random_walk)
        self.faults = FaultSet()
        self.ws_faults = WsFaults()
        self.tokens = WsTokens(self.clock, self.state.hex)
        self.hub = Hub(self.clock, self.ws_faults, self.tokens)
        self.exchange.on_fill = self.hub.push_fill
        #: Request-arrival time for the rate limiters (never the simulated clock).
        self.arrival = RealTime(rate_clock)
        self.partner_limiter = PartnerLimiter()
        self.trader_limiter = FixedWindow()
        #: The default trader (``Sandbox.api_key``) and tenant, set by the Sandbox.
        self.default_user_id = 0
        self.default_tenant_id = 0
        self.default_api_key = ""
        self.default_tenant_key = ""
        self.request_ids = itertools.count(1)

    def request_id(self) -> str:
        """A fresh ``X-Request-Id`` value."""
        return f"req_{next(self.request_ids):012x}"


#: Where the app keeps its :class:`Core`.
CORE = web.AppKey("polysim_sandbox_core", Core)
