"""A trade feed on a loopback server whose rows the test writes directly.

The sandbox stamps every fill with a strictly increasing instant, so it cannot
produce what the watermark logic must survive: a fill that arrives later with
the *same* ``filled_at`` as one already exported and a *lower* ``order_id``
(it then sorts below it). This server serves ``GET
/v1/partner/accounts/{id}/trades`` (API.md §8.1: newest first by ``(filled_at,
order_id)``, a base64 JSON keyset cursor) over rows the test adds at will, also
between two pages of a walk (``on_request``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
from aiohttp import web

from polysim_async.models.partner import Trade
from tests._helpers import base_of, serve

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def trade(trade_id: int, seconds: float) -> Trade:
    """One decoded feed row (for the pure tracker tests), ``filled_at`` = ``at(seconds)``."""
    wire = {
        "trade_id": trade_id,
        "order_id": trade_id,
        "market_id": "0x1",
        "side": "BUY",
        "outcome": "Yes",
        "price": "0.5",
        "quantity": "1",
        "notional": "0.5",
        "fee": "0",
        "filled_at": at(seconds).isoformat(),
    }
    return msgspec.convert(wire, type=Trade)


@dataclass
class Feed:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    next_trade_id: int = 1
    requests: int = 0
    #: Requests served per account.
    served: dict[str, int] = field(default_factory=dict)
    #: Called before each request is answered, with the number of requests so far.
    on_request: Callable[[int], None] | None = None

    def add(
        self,
        account: str,
        when: datetime,
        order_id: int,
        *,
        price: str = "0.4100",
        realized_pnl: str | None = None,
        client_order_id: str | None = None,
    ) -> int:
        """Add one fill; return its trade id."""
        trade_id = self.next_trade_id
        self.next_trade_id += 1
        self.rows.setdefault(account, []).append(
            {
                "trade_id": trade_id,
                "order_id": order_id,
                "market_id": "0xabc",
                "side": "BUY",
                "outcome": "Yes",
                "price": price,
                "quantity": "10.0000",
                "notional": "4.10",
                "fee": "0.00",
                "filled_at": when.isoformat(timespec="microseconds"),
                "client_order_id": client_order_id,
                "realized_pnl": realized_pnl,
                "_key": (when, order_id),
            }
        )
        return trade_id

    def page(self, account: str, limit: int, cursor: str | None) -> dict[str, Any]:
        rows = sorted(self.rows.get(account, []), key=lambda r: r["_key"], reverse=True)
        if cursor is not None:
            named = json.loads(base64.b64decode(cursor))
            key = (datetime.fromisoformat(named["filled_at"]), named["order_id"])
            rows = [r for r in rows if r["_key"] < key]
        chunk = rows[:limit]
        more = len(rows) > limit
        next_cursor = None
        if more:
            when, oid = chunk[-1]["_key"]
            raw = json.dumps({"filled_at": when.isoformat(), "order_id": oid})
            next_cursor = base64.b64encode(raw.encode()).decode()
        data = [{k: v for k, v in r.items() if k != "_key"} for r in chunk]
        return {"data": data, "next_cursor": next_cursor}

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.on_request is not None:
            self.on_request(self.requests)
        account = request.match_info["account_id"]
        self.served[account] = self.served.get(account, 0) + 1
        limit = int(request.query.get("limit", "100"))
        return web.json_response(self.page(account, limit, request.query.get("cursor")))


@asynccontextmanager
async def feed_server(feed: Feed) -> AsyncIterator[str]:
    """Serve ``feed`` on 127.0.0.1 (port 0); yield the base URL."""

    def routes(app: web.Application) -> None:
        app.router.add_get("/v1/partner/accounts/{account_id}/trades", feed.handle)

    async with serve(routes) as server:
        yield base_of(server)
