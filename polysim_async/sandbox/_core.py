"""One running sandbox's parts, composed: state, exchange, sockets, limiters, faults, knobs.

:class:`Core` only wires the parts together; behaviour lives in them (the
exchange in :mod:`._exchange`, placement and account lifecycle in
:mod:`._trading`, sockets in :mod:`._ws`). Nothing below this module imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from datetime import datetime

from aiohttp import web

from ._clock import SandboxClock
from ._context import Settings
from ._exchange import Exchange
from ._faults import FaultSet, WsFaults
from ._json import encode
from ._market_views import price_frame
from ._prices import PriceHub
from ._ratelimit import FixedWindow, PartnerLimiter, RealTime, TimeSource
from ._state import Market, SandboxState
from ._ws import Hub, Slots, WsTokens

__all__ = ["CORE", "Core"]

log = logging.getLogger("polysim_async.sandbox")


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
        slots = Slots()
        self.hub = Hub(self.clock, self.ws_faults, self.tokens, slots)
        self.prices = PriceHub(self.clock, self.ws_faults, self.tokens, slots)
        self.exchange.on_fill = self.hub.push_fill
        self.exchange.on_price = self._publish_price
        #: Set when the next timed event may have moved earlier (a heartbeat, a clock jump).
        self.wake = asyncio.Event()
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

    def _publish_price(self, market: Market) -> None:
        if self.prices.watched(market.market_id):
            text = encode(price_frame(market, self.clock.now_us())).decode()
            self.prices.publish(market.market_id, text)

    async def wait_event(self, delay: float | None) -> None:
        """Wait ``delay`` real seconds (``None``: indefinitely), or until :attr:`wake` is set.

        The seam the timed-event loop waits on; tests replace it to move time
        without sleeping.
        """
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.wake.wait(), delay)

    async def run_timed_events(self) -> None:
        """Run the exchange's timed events as real time passes, until cancelled.

        With a flowing clock, a heartbeat lapses (and an hour's walk happens) at
        its instant even when no request arrives; with a frozen clock nothing is
        due until :meth:`Sandbox.advance` (which runs the events itself).
        Requests run the same catch-up first, so the loop only matters between them.
        """
        while True:
            self.wake.clear()
            delay: float | None = None
            try:
                self.exchange.catch_up()
                if not self.clock.frozen:
                    ahead = self.exchange.next_event_us() - self.clock.now_us()
                    delay = max(0.0, ahead / 1_000_000)
            except Exception:  # a bug in one sweep must not stop the next ones
                log.exception("sandbox timed events failed")
                delay = None if self.clock.frozen else 1.0
            await self.wait_event(delay)


#: Where the app keeps its :class:`Core`.
CORE = web.AppKey("polysim_sandbox_core", Core)
