"""A loopback HTTP server that records arrival times and enforces a sliding-window budget.

Arrivals are stamped with ``time.time()``, the same clock Redis's ``TIME``
reads on this machine, so they can be compared with the turns the limiter's
script handed out.
"""

from __future__ import annotations

import collections
import time

from aiohttp import web

from tests._helpers import ACCOUNT_STATE


class BudgetServer:
    """Answers ``GET /v1/partner/accounts/{id}``; over budget it answers 429 ``Retry-After: 1``."""

    def __init__(self, per_second: int, per_minute: int) -> None:
        self.per_second = per_second
        self.per_minute = per_minute
        self.arrivals: list[float] = []  # every request, accepted or not
        self.rejected = 0
        self._second: collections.deque[float] = collections.deque()
        self._minute: collections.deque[float] = collections.deque()

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/partner/accounts/{aid}", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        now = time.time()
        self.arrivals.append(now)
        for window, span in ((self._second, 1.0), (self._minute, 60.0)):
            while window and window[0] <= now - span:
                window.popleft()
        if len(self._second) >= self.per_second or len(self._minute) >= self.per_minute:
            self.rejected += 1
            return web.json_response(
                {"error": "RATE_LIMIT_EXCEEDED", "message": "Rate limit exceeded. Retry after 1s."},
                status=429,
                headers={"Retry-After": "1"},
            )
        self._second.append(now)
        self._minute.append(now)
        return web.json_response(ACCOUNT_STATE)
