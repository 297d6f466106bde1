"""Quote both sides of one market around its live mid, with the dead-man's switch on.

The bot picks a market (or takes ``--market``), streams its prices, and keeps
two resting limit orders around the mid: a bid, ``BUY Yes`` at ``mid - half``,
and an ask, written as ``BUY No`` at ``1 - (mid + half)`` (buying No at ``1 - p``
is selling Yes at ``p`` without holding any). When the mid moves by a tick or
more, or one side fills, it re-quotes: one ``cancel_market`` call, then both
orders in one ``place_many`` batch (one per call on a tier whose batch size is 1).

At startup it cancels every resting order of the account (``cancel_all``: quotes
a previous run left, on this market or another), so it assumes the account is
its own. A fill re-quotes only when it fills one of the current quotes (fills of
orders already replaced change nothing).

Fills are handled exactly once, across disconnects and restarts: the execution
stream heals gaps from REST, and the bot saves the stream's checkpoint as soon
as the stream is entered (before the first quote) and after each fill it
handled (see fill_listener.py). The dead-man's switch
(``client.orders.keepalive``) beats every half ``--heartbeat`` seconds: if the
bot dies (even with SIGKILL), the beats stop and the server cancels every
pending order of the account. On a clean exit (``--max-fills`` reached, Ctrl-C
or SIGTERM) the bot cancels its orders itself and exits without a traceback.

It holds two WebSockets (prices and fills), so it needs a tier that allows two
(pro and up). Needs POLYSIM_API_KEY (your ``ps_live_`` trader key) and POLYSIM_BASE_URL unless
you target production. Against the local sandbox: run ``polysim sandbox`` and
export what it prints.

Usage: python market_maker.py [--market ID] [--half-spread 0.02] [--size 10]
       [--heartbeat 10] [--checkpoint FILE] [--max-fills N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from collections.abc import Coroutine
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import msgspec

from polysim_async import (
    Client,
    Fill,
    FillStream,
    KeepAlive,
    PriceStream,
    StreamCheckpoint,
)

TICK = Decimal("0.01")
LOW, HIGH = TICK, 1 - TICK


@dataclass
class Book:
    """What the bot believes: the market, the live mid, and what it has quoted."""

    market_id: str
    yes: str
    no: str
    mid: Decimal
    quoted: Decimal | None = None  # the mid the resting orders were placed around
    resting: set[int] = field(default_factory=set)  # the ids of the current quotes
    dirty: asyncio.Event = field(default_factory=asyncio.Event)


def quotes(mid: Decimal, half: Decimal) -> tuple[Decimal, Decimal]:
    """The bid and ask around ``mid``, on the tick grid, inside (0, 1)."""
    bid = ((mid - half) / TICK).to_integral_value(ROUND_FLOOR) * TICK
    ask = ((mid + half) / TICK).to_integral_value(ROUND_CEILING) * TICK
    return max(LOW, min(bid, HIGH)), max(LOW, min(ask, HIGH))


def load_checkpoint(path: Path) -> StreamCheckpoint | None:
    """The saved checkpoint, or ``None`` on the first run (start with the next fill)."""
    if not path.exists():
        return None
    return msgspec.json.decode(path.read_bytes(), type=StreamCheckpoint)


def save_checkpoint(path: Path, checkpoint: StreamCheckpoint) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(msgspec.json.encode(checkpoint))
    tmp.replace(path)  # atomic: a crash never leaves half a file


async def pick_market(client: Client, wanted: str | None) -> Book:
    """The market to quote (``wanted``, else the busiest active binary one) and its mid."""
    if wanted is None:
        async for market in client.markets.list(active_only=True):
            if market.outcomes and len(market.outcomes) == 2 and not market.closed:
                wanted = market.condition_id
                break
        else:
            raise SystemExit("no active binary market to quote")
    detail = await client.markets.get(wanted)
    if not detail.outcomes or len(detail.outcomes) != 2:
        raise SystemExit(f"{wanted} is not a binary market")
    yes, no = detail.outcomes
    mid = detail.live_price.buy if detail.live_price and detail.live_price.buy else None
    if mid is None and detail.tokens:
        mid = detail.tokens[0].price
    if mid is None:
        raise SystemExit(f"{wanted} has no price yet")
    return Book(wanted, yes, no, mid)


async def quote(client: Client, book: Book, half: Decimal, size: Decimal, batch: int) -> None:
    """Replace the resting orders with a fresh bid and ask around ``book.mid``."""
    mid = book.mid
    bid, ask = quotes(mid, half)
    # Cancel first: a fill between the two calls is still reported by the fill stream,
    # and (no longer a current quote) does not ask for another re-quote.
    book.resting = set()
    await client.orders.cancel_market(market_id=book.market_id)
    entries = [
        {"market_id": book.market_id, "side": "BUY", "outcome": book.yes, "quantity": size,
         "order_type": "LIMIT", "price": bid, "time_in_force": "GTC"},
        {"market_id": book.market_id, "side": "BUY", "outcome": book.no, "quantity": size,
         "order_type": "LIMIT", "price": 1 - ask, "time_in_force": "GTC"},
    ]  # fmt: skip
    for i in range(0, len(entries), batch):
        result = await client.orders.place_many(entries[i : i + batch])
        for order in result.rejected:
            print(f"order refused: {order.error} {order.error_message}", flush=True)
        book.resting |= {order.order_id for order in result.accepted}
    book.quoted = mid
    print(f"quoting bid={bid} ask={ask} (mid {mid})", flush=True)


async def quoter(client: Client, book: Book, half: Decimal, size: Decimal) -> None:
    """Re-quote whenever the price loop or the fill loop marks the quotes stale."""
    batch = await client.orders.batch_limit() or 1
    while True:
        await book.dirty.wait()
        book.dirty.clear()
        await quote(client, book, half, size, batch)


async def follow_prices(prices: PriceStream, book: Book) -> None:
    """Track the mid; mark the quotes stale once it moved by a tick or more."""
    async for tick in prices:  # the newest price per market: a slow bot never acts on stale ones
        if tick.buy is None:
            continue
        book.mid = tick.buy
        if book.quoted is None or abs(book.mid - book.quoted) >= TICK:
            book.dirty.set()


async def handle_fills(
    fills: FillStream[Fill], book: Book, path: Path, max_fills: int | None
) -> None:
    """Handle each fill once, save the checkpoint, and re-quote if a current quote filled."""
    handled = 0
    async for fill in fills:
        print(
            f"fill order={fill.order_id} {fill.side.value} {fill.quantity} "
            f"{fill.outcome} @ {fill.price}",
            flush=True,
        )
        # Handle first, then save: a crash in between re-delivers it, never skips it.
        assert fills.checkpoint is not None
        await asyncio.to_thread(save_checkpoint, path, fills.checkpoint)
        handled += 1
        if max_fills is not None and handled >= max_fills:
            return
        if fill.order_id in book.resting:
            book.resting.discard(fill.order_id)  # a second partial fill asks nothing more
            book.dirty.set()


async def watch_switch(switch: KeepAlive) -> None:
    """End the bot if the heartbeat lapsed: the server is cancelling every order."""
    await switch.wait_lapsed()
    print("heartbeat lapsed: the server cancels every pending order; stopping", flush=True)


async def main(args: argparse.Namespace) -> None:
    half, size = Decimal(args.half_spread), Decimal(args.size)
    # rate_limit="auto" (the default) paces REST calls to the key's tier.
    async with Client(os.environ["POLYSIM_API_KEY"], rate_limit="auto") as client:
        book = await pick_market(client, args.market)
        print(f"market {book.market_id} mid {book.mid}", flush=True)
        since = await asyncio.to_thread(load_checkpoint, args.checkpoint)
        try:
            # Entered before the first quote: every fill from here on is delivered.
            async with (
                client.executions.stream(since=since) as fills,
                client.orders.keepalive(interval=args.heartbeat, label="market-maker") as switch,
                client.prices.stream([book.market_id]) as prices,
            ):
                # Saved before the first quote: a fill while the bot is down before it
                # handled one is delivered after a restart, not lost.
                assert fills.checkpoint is not None
                await asyncio.to_thread(save_checkpoint, args.checkpoint, fills.checkpoint)
                # Start clean: quotes an earlier run left (on any market) are cancelled.
                swept = await client.orders.cancel_all()
                if swept.canceled:
                    print(f"cancelled {len(swept.canceled)} order(s) left resting", flush=True)
                book.dirty.set()  # the first quotes
                await run_until_one_ends(
                    quoter(client, book, half, size),
                    follow_prices(prices, book),
                    handle_fills(fills, book, args.checkpoint, args.max_fills),
                    watch_switch(switch),
                )
        finally:
            # A clean exit (or Ctrl-C) takes the quotes down at once; a crash leaves
            # that to the dead-man's switch.
            await client.orders.cancel_market(market_id=book.market_id)
            print("stopped; no open orders left", flush=True)


async def run_until_one_ends(*jobs: Coroutine[Any, Any, None]) -> None:
    """Run ``jobs`` until the first ends (or fails), then cancel the others."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()  # raise what failed


async def run(args: argparse.Namespace) -> None:
    """Run the bot; Ctrl-C and SIGTERM stop it cleanly (its quotes are cancelled)."""
    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C stays KeyboardInterrupt
            loop.add_signal_handler(sig, main_task.cancel)
    try:
        await main(args)
    except asyncio.CancelledError:
        print("interrupted", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--market", default=None, help="condition id (default: pick one)")
    parser.add_argument("--half-spread", default="0.02", help="distance of each quote from mid")
    parser.add_argument("--size", default="10", help="shares per order")
    parser.add_argument("--heartbeat", type=float, default=10.0, help="switch interval, seconds")
    parser.add_argument("--checkpoint", type=Path, default=Path("mm_checkpoint.json"))
    parser.add_argument("--max-fills", type=int, default=None, help="stop after N fills")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(parser.parse_args()))
