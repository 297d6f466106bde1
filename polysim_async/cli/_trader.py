"""``polysim executions tail`` and ``polysim equity``: the trader API (a ``ps_live_`` key)."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from polysim_async_cli import EXIT_USAGE, CommandError

from ..export._files import write_atomic
from ..models.account import EquityPoint
from ..models.executions import Fill
from ..models.streams import StreamCheckpoint
from ._main import Context
from ._output import Column, Feed, cell

__all__ = ["EQUITY_COLUMNS", "equity", "executions_tail", "fill_line"]

EQUITY_COLUMNS: tuple[Column, ...] = (
    ("TIMESTAMP", lambda p: p.timestamp),
    ("CASH_BALANCE", lambda p: p.cash_balance),
    ("POSITION_VALUE", lambda p: p.position_value),
    ("TOTAL_VALUE", lambda p: p.total_value),
    ("PNL", lambda p: p.pnl),
)


def fill_line(fill: Fill) -> str:
    """One readable line per execution."""
    return (
        f"{fill.filled_at.isoformat()}  {fill.side.value} {cell(fill.quantity)} {fill.outcome}"
        f" @ {cell(fill.price)}  market={fill.market_id} order={fill.order_id}"
    )


def _load_checkpoint(path: Path) -> StreamCheckpoint | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CommandError(
            f"--since: cannot read {path}: {exc.strerror or exc}", EXIT_USAGE
        ) from None
    try:
        return msgspec.json.decode(data, type=StreamCheckpoint)
    except msgspec.DecodeError as exc:
        raise CommandError(
            f"--since: {path} is not a checkpoint written by polysim executions tail: {exc}",
            EXIT_USAGE,
        ) from None


def _save_checkpoint(path: Path, checkpoint: StreamCheckpoint, *, durable: bool) -> None:
    """Replace ``path`` atomically; ``durable`` also fsyncs (on exit, not after every fill)."""
    data = msgspec.json.encode(checkpoint)
    tmp = path.with_name(f".{path.name}.tmp")
    if durable:

        def write(at: Path) -> None:
            at.write_bytes(data)

        write_atomic(path, tmp, write)
    else:
        tmp.write_bytes(data)
        os.replace(tmp, path)


async def executions_tail(ctx: Context) -> int:
    """``polysim executions tail [--since CHECKPOINT_FILE]``: each fill exactly once, until Ctrl-C.

    The checkpoint is written after every fill printed (atomically) and once
    more, fsynced, on the way out, whatever the way out is. A fill is printed
    (its line written and flushed) before the checkpoint that includes it is
    written, and nothing is awaited between the two, so cancellation (Ctrl-C)
    falls before or after both. When stdout closes (``| head``), the tail stops
    at the first fill it cannot print, and the saved checkpoint stops before
    that fill: the next run with the same ``--since`` prints it.
    """
    path = None if ctx.args.since is None else Path(ctx.args.since)
    if path is not None and not path.parent.is_dir():
        raise CommandError(
            f"--since: no directory {path.parent} to keep {path.name} in", EXIT_USAGE
        )
    since = None if path is None else _load_checkpoint(path)
    ctx.resume_hint = (
        f"the checkpoint is saved; resume with: {ctx.command_line}"
        if path is not None
        else "pass --since FILE to resume where it stopped next time"
    )
    feed = Feed(ctx.out, fill_line)
    status = ctx.out.status
    async with ctx.client("trader") as client:
        stream = client.executions.stream(since=since)
        # The checkpoint of the fills printed so far: never past one that was not.
        printed = since
        try:
            async with stream as fills:
                printed = stream.checkpoint
                status.update("tailing executions · 0 fills")
                async for fill in fills:
                    status.set(f"tailing executions · {feed.count + 1} fills")  # drawn below it
                    feed.write(fill)  # raises OutputClosed, unprinted, when stdout has closed
                    printed = stream.checkpoint
                    if path is not None and printed is not None:
                        _save_checkpoint(path, printed, durable=False)
        finally:
            feed.close()
            if path is not None and printed is not None:
                _save_checkpoint(path, printed, durable=True)
    return ctx.code


async def equity(ctx: Context) -> int:
    """``polysim equity [--days N] [--wallet all|api|ID] [--plot FILE]``."""
    args = ctx.args
    wallet: int | str | None = int(args.wallet) if (args.wallet or "").isdigit() else args.wallet
    if args.plot is not None:
        from ._plot import check_available  # matplotlib is imported there, only now

        check_available()  # a missing extra is said before anything is fetched
    async with ctx.client("trader") as client:
        points: list[EquityPoint] = await client.account.equity(days=args.days, wallet_id=wallet)
        if args.plot is None:
            ctx.out.records(points, EQUITY_COLUMNS)
            return ctx.code
        from ._plot import plot_equity

        baseline = (await client.account.balance()).starting_balance
    if not points:
        ctx.out.message(f"polysim equity: no snapshots in the last {args.days} days; nothing drawn")
        return ctx.code
    try:
        plot_equity(points, baseline, Path(args.plot))
    except OSError as exc:
        raise CommandError(
            f"polysim equity: cannot write {args.plot}: {exc.strerror or exc}", EXIT_USAGE
        ) from None
    ctx.out.message(
        f"wrote {args.plot}: {len(points)} hourly points from {points[0].timestamp.isoformat()}"
        f" to {points[-1].timestamp.isoformat()}, starting balance {cell(baseline)}"
    )
    return ctx.code
