"""Sandbox fleets for the export tests, and readers of what an export wrote."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import polysim_async as ps
from polysim_async.export import COLUMNS
from polysim_async.sandbox import Sandbox

from .._helpers import FakeClock


@dataclass
class Fleet:
    sb: Sandbox
    client: ps.Client
    ids: list[str]
    #: The client's clock: time moves only when a test moves it, so no part is ever
    #: cut by the export's commit interval because the machine was slow.
    clock: ps.Clock

    async def truth(self) -> list[tuple[str, ps.Trade]]:
        """Every fill of every account, pulled from the feed."""
        out = []
        for aid in self.ids:
            async for trade in self.client.partner.accounts.trades(aid, page_size=500):
                out.append((aid, trade))
        return out

    async def buy(self, aid: str, quantity: str = "5") -> None:
        """One real fill through the exchange (a market BUY)."""
        await self.sb.place_order(
            account_id=aid,
            market_id=self.sb.market_id,
            side="BUY",
            outcome="Yes",
            quantity=quantity,
            order_type="market",
            price="0.99",
        )


@asynccontextmanager
async def fleet(
    fills: list[int], *, seed: int = 5, clock: ps.Clock | None = None
) -> AsyncIterator[Fleet]:
    """A sandbox (no rate limits) with one account per entry, holding that many fills.

    The client runs on a :class:`FakeClock` unless given another ``clock``.
    """
    clock = clock or FakeClock()
    async with (
        Sandbox(seed=seed, rate_limits=False, random_walk=False) as sb,
        ps.Client(sb.tenant_key, sb.url, rate_limit=None, clock=clock) as client,
    ):
        ids = []
        for i, count in enumerate(fills):
            user = await client.partner.users.register(f"trader-{i}", f"t{i}@export.test")
            account = await client.partner.accounts.create(
                user_id=user.user_id,
                external_id=f"acc-{i}",
                stage="challenge",
                starting_balance="10000.00",
            )
            if count:
                sb.generate_fills(count, account_id=account.account_id)
            ids.append(account.account_id)
        yield Fleet(sb, client, ids, clock)


def wire_row(aid: str, trade: ps.Trade) -> dict[str, Any]:
    """A fill as the text formats must write it: the exact wire strings."""
    return {
        "account_id": aid,
        "trade_id": trade.trade_id,
        "order_id": trade.order_id,
        "market_id": trade.market_id,
        "side": trade.side.value,
        "outcome": trade.outcome,
        "price": trade.raw_price,
        "quantity": trade.raw_quantity,
        "notional": trade.raw_notional,
        "fee": trade.raw_fee,
        "filled_at": trade.filled_at.astimezone(timezone.utc).isoformat(timespec="microseconds"),
        "client_order_id": trade.client_order_id,
        "realized_pnl": trade.raw_realized_pnl,
    }


def typed_row(aid: str, trade: ps.Trade) -> dict[str, Any]:
    """A fill as Parquet must hold it: exact Decimals, an aware datetime."""
    return {
        **wire_row(aid, trade),
        "price": trade.price,
        "quantity": trade.quantity,
        "notional": trade.notional,
        "fee": trade.fee,
        "filled_at": trade.filled_at,
        "realized_pnl": trade.realized_pnl,
    }


def parts(out: Path, extension: str) -> list[Path]:
    return sorted(out.glob(f"part-*.{extension}"))


def read_parquet(out: Path) -> list[dict[str, Any]]:
    """Every row of the directory, read the way a data engineer would: no options."""
    import pyarrow.dataset as ds

    return ds.dataset(out, format="parquet").to_table().to_pylist()


def read_csv(out: Path) -> list[dict[str, Any]]:
    rows = []
    for path in parts(out, "csv"):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            assert reader.fieldnames == list(COLUMNS)
            for row in reader:
                rows.append(
                    {
                        **row,
                        "trade_id": int(row["trade_id"]),
                        "order_id": int(row["order_id"]),
                        "client_order_id": row["client_order_id"] or None,
                        "realized_pnl": row["realized_pnl"] or None,
                    }
                )
    return rows


def read_ndjson(out: Path) -> list[dict[str, Any]]:
    rows = []
    for path in parts(out, "ndjson"):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            assert list(row) == list(COLUMNS)
            rows.append(row)
    return rows


def by_trade(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Rows keyed by trade id, asserting no trade appears twice."""
    keyed = {row["trade_id"]: row for row in rows}
    assert len(keyed) == len(rows), "a fill was exported twice"
    return keyed


def normalized(value: Any) -> Any:
    return value.normalize() if isinstance(value, Decimal) else value
