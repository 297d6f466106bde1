"""Shared pieces of the benchmarks: wire-shaped fills, timing and result rows.

The machine is shared and noisy, so every benchmark reports ratios against
baselines measured in the same run, variants are interleaved round by round,
and each variant keeps its best round.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec

__all__ = ["Row", "best_of", "make_fills", "make_page", "rate"]


@dataclass
class Row:
    """One line of the results table."""

    bench: str
    variant: str
    value: str
    ratio: str = ""
    note: str = ""
    target: str = ""
    met: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def make_fills(count: int, *, seed: int = 1, start_id: int = 10_000_000) -> list[dict[str, Any]]:
    """``count`` trade rows in the P6 wire shape (API.md §3), newest first."""
    rng = random.Random(seed)
    t0 = datetime(2026, 6, 4, 14, 9, 31, 220148, tzinfo=timezone.utc)
    markets = ["0x" + "".join(rng.choice("0123456789abcdef") for _ in range(64)) for _ in range(20)]
    rows = []
    for i in range(count):
        price = rng.randint(100, 9900)
        qty = rng.randint(1, 5000) * 100
        notional = price * qty // 10_000  # in 1e-4 USD; printed with 2 dp below
        closing = rng.random() < 0.3
        rows.append(
            {
                "trade_id": start_id - i,
                "order_id": start_id - i,
                "market_id": markets[i % len(markets)],
                "side": "BUY" if rng.random() < 0.5 else "SELL",
                "outcome": "Yes" if rng.random() < 0.5 else "No",
                "price": f"0.{price:04d}",
                "quantity": f"{qty // 10_000}.{qty % 10_000:04d}",
                "notional": f"{notional // 10_000}.{(notional % 10_000) // 100:02d}",
                "fee": "0.00",
                "filled_at": (t0 - timedelta(microseconds=1_003 * i)).isoformat(),
                "client_order_id": f"bot-{i}" if rng.random() < 0.5 else None,
                "realized_pnl": f"{rng.randint(-9999, 9999) / 100:.2f}" if closing else None,
            }
        )
    return rows


def make_page(count: int, *, seed: int = 1, next_cursor: str | None = "eyJmaWxsZWQ") -> bytes:
    """One trade-feed page body, as the server sends it."""
    return msgspec.json.encode({"data": make_fills(count, seed=seed), "next_cursor": next_cursor})


def best_of(
    funcs: dict[str, Callable[[], Any]], *, rounds: int, min_time: float = 0.05
) -> dict[str, float]:
    """Seconds per call of each function: best round, rounds interleaved across functions."""
    loops: dict[str, int] = {}
    for name, fn in funcs.items():  # calibrate: enough calls for about ``min_time`` per round
        n, start = 0, time.perf_counter()
        while n < 3 or time.perf_counter() - start < min_time / 5:
            fn()
            n += 1
        per_call = (time.perf_counter() - start) / n
        loops[name] = max(1, int(min_time / max(per_call, 1e-9)))
    best = dict.fromkeys(funcs, float("inf"))
    for _ in range(rounds):
        for name, fn in funcs.items():
            n = loops[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / n)
    return best


def rate(count: float, seconds: float) -> str:
    """``count / seconds`` formatted as a per-second rate."""
    per_s = count / seconds if seconds > 0 else float("inf")
    if per_s >= 1e6:
        return f"{per_s / 1e6:.2f} M/s"
    if per_s >= 1e3:
        return f"{per_s / 1e3:.1f} k/s"
    return f"{per_s:.1f} /s"
