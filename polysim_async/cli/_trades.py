"""``polysim trades list``, ``polysim trades export`` and ``polysim watch``: partner fills."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from polysim_async_cli import EXIT_USAGE, CommandError

from .._errors import NotFoundError, PolySimError
from ..export import DEFAULT_PART_ROWS, ExportError, ExportProgress, ExportSummary
from ..models.partner import Trade
from ..models.streams import AccountTrade
from ._inputs import account_ids
from ._main import Context
from ._output import Column, Feed

__all__ = ["TRADE_COLUMNS", "trades_export", "trades_list", "watch"]

#: The columns of a fill; money as the wire strings.
TRADE_COLUMNS: tuple[Column, ...] = (
    ("FILLED_AT", lambda t: t.filled_at),
    ("TRADE_ID", lambda t: t.trade_id),
    ("ORDER_ID", lambda t: t.order_id),
    ("MARKET_ID", lambda t: t.market_id),
    ("SIDE", lambda t: t.side),
    ("OUTCOME", lambda t: t.outcome),
    ("PRICE", lambda t: t.raw_price),
    ("QUANTITY", lambda t: t.raw_quantity),
    ("NOTIONAL", lambda t: t.raw_notional),
    ("FEE", lambda t: t.raw_fee),
    ("REALIZED_PNL", lambda t: t.raw_realized_pnl),
    ("CLIENT_ORDER_ID", lambda t: t.client_order_id),
)


async def trades_list(ctx: Context) -> int:
    """``polysim trades list ID [--side] [--market] [--limit N | --all]``: newest first."""
    args = ctx.args
    limit: int | None = None if args.all else args.limit
    page_size = 500 if limit is None else min(limit, 500)
    trades: list[Trade] = []
    count = 0
    async with ctx.client("partner") as client:
        feed = client.partner.accounts.trades(
            args.account_id,
            side=args.side,
            market_id=args.market,
            page_size=page_size,
            prefetch=limit is None or limit > page_size,
        )
        async with contextlib.aclosing(feed):  # a break stops the prefetch at once
            async for trade in feed:
                if ctx.out.format == "jsonl":
                    ctx.out.jsonl(trade)  # a long feed streams instead of piling up
                else:
                    trades.append(trade)
                count += 1
                if count == limit:
                    break
    if ctx.out.format == "json":
        ctx.out.json(trades)
    elif ctx.out.format == "table":
        ctx.out.table(TRADE_COLUMNS, trades)
    return ctx.code


def _duration(seconds: float) -> str:
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def progress_text(p: ExportProgress, *, width: int = 20) -> str:
    """The export's progress line: a bar of accounts done, fills, fills/s and the ETA.

    The ETA is the export's own estimate from the client's rate budget.
    """
    done = p.accounts_done + p.accounts_failed
    filled = width * done // p.accounts_total if p.accounts_total else width
    rate = "-" if p.fills_per_second is None else f"{p.fills_per_second:,.0f}"
    eta = "--:--" if p.eta is None else _duration(p.eta)
    failed = f" ({p.accounts_failed} failed)" if p.accounts_failed else ""
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {done}/{p.accounts_total} accounts{failed}"
        f" · {p.fills_fetched:,} fills · {rate} fills/s · ETA {eta}"
    )


def summary_text(s: ExportSummary, failures: Mapping[str, PolySimError] | None = None) -> str:
    """The one line an export ends with.

    Accounts the server does not know (404) are named: running again cannot
    resume them. Any other failure can be resumed by running the same command again.
    """
    parts = f"{len(s.parts)} new part" + ("" if len(s.parts) == 1 else "s")
    text = (
        f"exported {s.fills:,} fills of {s.completed}/{s.accounts} accounts to {s.out_dir}"
        f" ({parts}, {s.format}) in {s.seconds:.1f} s; the directory holds {s.total_fills:,} fills"
    )
    failures = failures or {}
    missing = [aid for aid, exc in failures.items() if isinstance(exc, NotFoundError)]
    failed = len(failures) - len(missing)
    if missing:
        text += f"; {len(missing)} account(s) not found: {', '.join(missing)}"
    if failed:
        text += f"; {failed} account(s) failed: run the same command again to resume them"
    return text


async def trades_export(ctx: Context) -> int:
    """``polysim trades export ID... --out DIR ...``: resumable, incremental (issue 11 §2).

    Exit 0 only when every account finished; interrupted (130), it says how to resume.
    """
    args = ctx.args
    ids = account_ids(ctx)  # none: still run, so the summary (and --json) says so
    ctx.resume_hint = f"to resume, run the same command again: {ctx.command_line}"
    ctx.writing = str(args.out)
    try:  # a directory that cannot be used is a usage error; a write that fails later is not
        await asyncio.to_thread(Path(args.out).mkdir, parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(
            f"--out: cannot use {args.out}: {exc.strerror or exc}", EXIT_USAGE
        ) from None
    status = ctx.out.status

    finished = -1

    def progress(p: ExportProgress) -> None:
        nonlocal finished
        done = p.accounts_done + p.accounts_failed
        status.update(progress_text(p), force=done != finished)  # each account shows
        finished = done
        ctx.resume_hint = (
            f"{p.accounts_done} of {p.accounts_total} accounts finished;"
            f" to resume, run the same command again: {ctx.command_line}"
        )

    failures: dict[str, PolySimError] = {}
    async with ctx.client("partner") as client:
        try:
            summary = await client.partner.accounts.export(
                ids,
                args.out,
                format=args.format,
                page_size=args.page_size,
                part_rows=DEFAULT_PART_ROWS if args.part_size is None else args.part_size,
                concurrency=args.concurrency,
                progress=progress,
            )
        except ExportError as exc:
            status.close()
            for account_id, error in exc.failures.items():
                ctx.fail(account_id, error)
            summary, failures = exc.summary, dict(exc.failures)
    status.close()
    ctx.out.message(summary_text(summary, failures))
    if args.summary == "json":
        ctx.out.json(_summary_object(summary))
    elif args.summary == "jsonl":
        ctx.out.jsonl(_summary_object(summary))
    return ctx.code


def _summary_object(s: ExportSummary) -> dict[str, Any]:
    return {
        "out_dir": str(s.out_dir),
        "format": s.format,
        "accounts": s.accounts,
        "completed": s.completed,
        "resumed": s.resumed,
        "fills": s.fills,
        "parts": list(s.parts),
        "total_fills": s.total_fills,
        "seconds": s.seconds,
    }


def fill_line(item: AccountTrade) -> str:
    """One readable line per new fill of a watched account."""
    t = item.trade
    pnl = "" if t.raw_realized_pnl is None else f" realized_pnl={t.raw_realized_pnl}"
    return (
        f"{t.filled_at.isoformat()}  {item.account_id}  {t.side.value} {t.raw_quantity}"
        f" {t.outcome} @ {t.raw_price}  notional={t.raw_notional} fee={t.raw_fee}{pnl}"
        f"  market={t.market_id} order={t.order_id} trade={t.trade_id}"
    )


async def watch(ctx: Context) -> int:
    """``polysim watch ID...``: every new fill once, as it appears, until Ctrl-C."""
    args = ctx.args
    ids = account_ids(ctx)
    if not ids:
        return ctx.code
    feed = Feed(ctx.out, fill_line, lambda i: {"account_id": i.account_id, "trade": i.trade})
    noun = "account" if len(ids) == 1 else "accounts"
    async with ctx.client("partner") as client:
        try:
            async with client.partner.accounts.watch_trades(ids, interval=args.interval) as fills:
                ctx.out.status.update(f"watching {len(ids)} {noun} · 0 new fills")
                async for item in fills:
                    ctx.out.status.set(f"watching {len(ids)} {noun} · {feed.count + 1} new fills")
                    feed.write(item)  # redraws the status line below it
        finally:
            feed.close()
    return ctx.code
