"""An in-memory partner API for fleet-monitor tests: accounts whose equity follows a function
of (virtual) time, keyset trade feeds, and closes that answer 409 a set number of times."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import polysim_async as ps

from ._helpers import BASE, WALL, LoopClock

Equity = Callable[[float], Decimal]


class ShiftedClock(LoopClock):
    """The loop's virtual time, with a wall clock starting at ``start`` (an aware datetime)."""

    def __init__(self, start: datetime) -> None:
        self._offset = start.timestamp() - 1000.0  # VirtualTimeLoop starts at 1000

    def wall(self) -> float:
        return self._offset + self.now()


def iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, timezone.utc).isoformat()


class Fleet:
    """Accounts by id; ``reads[aid]`` lists the virtual times of its ``accounts.get``."""

    def __init__(self, clock: ps.Clock) -> None:
        self.clock = clock
        self.accounts: dict[str, dict[str, Any]] = {}
        self.equity: dict[str, Equity] = {}
        self.trades: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.reads: dict[str, list[float]] = defaultdict(list)
        self.polls: Counter[str] = Counter()
        self.closes: Counter[str] = Counter()
        self.refuse_close: Counter[str] = Counter()  # 409 ORDERS_NOT_CANCELLED this many times
        self.fail_reads: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self.next_id = 1
        self.skew = 0.0  # the server's clock minus the machine's, in seconds

    def add(
        self,
        aid: str,
        *,
        equity: Equity | str = "10000.00",
        rules: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        status: str = "active",
        starting_balance: str = "10000.00",
    ) -> None:
        self.accounts[aid] = {
            "account_id": aid,
            "external_id": f"ext-{aid}",
            "stage": "challenge",
            "status": status,
            "starting_balance": starting_balance,
            "rules": {"max_drawdown_pct": 10} if rules is None else rules,
            "metadata": metadata,
        }
        fixed = Decimal(equity) if isinstance(equity, str) else None
        self.equity[aid] = (lambda t: fixed) if fixed is not None else equity  # type: ignore[assignment,return-value]

    def fill(self, aid: str, *, side: str = "BUY", pnl: str | None = None) -> int:
        """A fill on ``aid`` at the current wall time; returns its order id."""
        oid = self.next_id
        self.next_id += 1
        self.trades[aid].append(
            {
                "trade_id": oid,
                "order_id": oid,
                "market_id": "0xabc",
                "side": side,
                "outcome": "Yes",
                "price": "0.5000",
                "quantity": "2.0000",
                "notional": "1.00",
                "fee": "0.00",
                "filled_at": iso(self.clock.wall() + self.skew),
                "client_order_id": None,
                "realized_pnl": pnl,
            }
        )
        return oid

    def state(self, aid: str) -> dict[str, Any]:
        equity = self.equity[aid](self.clock.now())
        return {
            **self.accounts[aid],
            "balance": str(equity),
            "equity": str(equity),
            "unrealized_pnl": "0.00",
            "realized_pnl": None,
            "open_positions": [],
            "updated_at": iso(self.clock.wall() + self.skew),
        }

    def handle(self, request: ps.Request) -> ps.Response:
        parts = request.path.split("/")  # /v1/partner/accounts/{aid}[/trades|/close]
        aid = parts[4]
        if aid not in self.accounts:
            return error(404, "ACCOUNT_NOT_FOUND")
        if request.method == "POST" and parts[-1] == "close":
            self.closes[aid] += 1
            if self.refuse_close[aid] > 0:
                self.refuse_close[aid] -= 1
                return error(409, "ORDERS_NOT_CANCELLED")
            self.accounts[aid]["status"] = "closed"
            return ps.Response.from_json(self.state(aid))
        if parts[-1] == "trades":
            self.polls[aid] += 1
            return self.page(aid, request.params or {})
        self.reads[aid].append(self.clock.now())
        if self.fail_reads[aid]:
            status, code = self.fail_reads[aid].pop(0)
            return error(status, code)
        return ps.Response.from_json(self.state(aid))

    def page(self, aid: str, query: Any) -> ps.Response:
        rows = sorted(self.trades[aid], key=lambda r: (r["filled_at"], r["order_id"]), reverse=True)
        if "cursor" in query:
            last = json.loads(base64.b64decode(query["cursor"]))
            bound = (last["filled_at"], last["order_id"])
            rows = [r for r in rows if (r["filled_at"], r["order_id"]) < bound]
        limit = int(query["limit"])
        page, nxt = rows[:limit], None
        if len(rows) > limit:
            key = {"filled_at": page[-1]["filled_at"], "order_id": page[-1]["order_id"]}
            nxt = base64.b64encode(json.dumps(key).encode()).decode()
        return ps.Response.from_json({"data": page, "next_cursor": nxt})


def error(status: int, code: str) -> ps.Response:
    return ps.Response.from_json({"error": code, "message": code.lower()}, status=status)


@contextlib.asynccontextmanager
async def fleet_client(
    clock: ps.Clock | None = None, **kwargs: Any
) -> AsyncIterator[tuple[Fleet, ps.Client]]:
    """A client whose network is a :class:`Fleet`, on the loop's virtual time (``@virtual``)."""
    the_clock = clock or LoopClock()
    fleet = Fleet(the_clock)
    transport = ps.MockTransport(fleet.handle)
    async with ps.Client("tk_x", BASE, transport=transport, clock=the_clock, **kwargs) as client:
        yield fleet, client


async def events_until(
    monitor: ps.FleetMonitor,
    done: Callable[[list[ps.MonitorEvent]], bool],
    *,
    timeout: float = 3600.0,
) -> list[ps.MonitorEvent]:
    """Events until ``done(events)`` holds (virtual seconds of ``timeout`` at most)."""
    out: list[ps.MonitorEvent] = []

    async def go() -> None:
        async for event in monitor:
            out.append(event)
            if done(out):
                return

    await asyncio.wait_for(go(), timeout)
    return out


def kinds(events: list[ps.MonitorEvent], account_id: str | None = None) -> list[str]:
    return [e.kind for e in events if account_id is None or e.account_id == account_id]


__all__ = ["WALL", "Fleet", "ShiftedClock", "events_until", "fleet_client", "iso", "kinds"]
