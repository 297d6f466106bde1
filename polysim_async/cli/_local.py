"""``polysim demo`` and ``polysim sandbox``: the lifecycle on a sandbox, and serving one.

``polysim demo`` runs the prop-firm lifecycle of the partner quickstart with the
client, on an in-process sandbox (no key, no network), and judges the account
with the rules engine. It reaches another server only when told to with
``--against URL``, and then says what it will create and asks first (``--yes``
skips the question). ``polysim sandbox`` serves a sandbox until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import random
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from polysim_async_cli import EXIT_API_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CommandError

from .._client import Client
from .._config import _is_loopback as is_loopback_host
from ..models.account import EquityPoint
from ..models.partner import AccountState, Trade
from ..rules import RuleSet, evaluate, sample_of
from ._main import Context, Interrupted
from ._output import Output, OutputClosed

if TYPE_CHECKING:
    from ..sandbox import Sandbox

__all__ = ["connect_url", "demo", "sandbox"]

CENT = Decimal("0.01")


# -- polysim demo --------------------------------------------------------------------------
def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


async def _simulate_trading(
    sb: Sandbox, account_id: str, days: int, seed: int, out: Output
) -> None:
    """A simulated trader: six orders per simulated day, always within its means.

    Each buy spends at most a quarter of the cash left (a limit buy reserves its
    cost up front), and each sell sells at most what the account holds, so no
    order is ever refused for balance or position, whatever the seed or the days.
    """
    rng = random.Random(seed)
    mids = {market: Decimal("0.50") for market in sb.market_ids}
    orders = 0
    for _day in range(days):
        for _slot in range(6):
            market = rng.choice(sb.market_ids)
            # A gentle walk with a slight edge for the trader: up a little more often.
            step = Decimal(rng.choice([-3, -2, -1, 0, 1, 2, 3, 4])) / 100
            mid = mids[market] = min(Decimal("0.90"), max(Decimal("0.10"), mids[market] + step))
            sb.set_price(market, mid)
            state = sb.account_state(account_id)
            cash = Decimal(state["balance"])
            held = sum(
                (
                    Decimal(p["quantity"])
                    for p in state["open_positions"]
                    if p["market_id"] == market and p["outcome"] == "Yes"
                ),
                Decimal(0),
            )
            wanted = Decimal(rng.choice([100, 250, 500, 1000]))
            order: dict[str, Any] = {"market_id": market, "outcome": "Yes"}
            if held >= wanted and rng.random() < 0.45:
                order.update(side="SELL", order_type="market", price="0.01", quantity=wanted)
            else:
                limit = rng.random() < 0.25
                price = max(Decimal("0.02"), mid - Decimal("0.05")) if limit else mid + CENT
                affordable = (cash / 4 / price).to_integral_value(rounding=ROUND_FLOOR)
                quantity = min(wanted, affordable)
                if quantity < 5:  # the market's minimum size: too poor to buy, so wait
                    sb.advance(hours=4)
                    continue
                order.update(side="BUY", quantity=quantity, price=price if limit else "0.99")
                order["order_type"] = "limit" if limit else "market"
            await sb.place_order(account_id=account_id, **order)
            orders += 1
            sb.advance(hours=4)
    out.line(
        f"   {_plural(orders, 'order')} over {_plural(days, 'simulated day')};"
        f" clock now {sb.now():%Y-%m-%d %H:%M} UTC"
    )


async def _lifecycle(client: Client, sb: Sandbox | None, days: int, seed: int, out: Output) -> None:
    """The quickstart's eight steps; money printed exactly as the API sent it."""
    partner = client.partner
    suffix = "" if sb is not None else f"_{random.randrange(16**6):06x}"
    out.line("1. Register the trader")
    user = await partner.users.register(
        f"pc_trader_123{suffix}", "trader@example.com", metadata={"country": "ES"}
    )
    out.line(f"   user_id={user.user_id} created={user.created}")

    out.line("2. Send a magic-link login")
    await partner.users.send_login_link(
        user.user_id, redirect_url="https://polysimulator.com/markets"
    )
    if sb is not None:
        mail = sb.outbox()[-1]
        out.line(f"   outbox: to {mail['email']} -> lands on {mail['redirect_url']}")
    else:
        out.line("   202 accepted; the link is emailed to the trader")

    out.line("3. Create a $10,000 challenge")
    opened = sb.now() if sb is not None else datetime.now(timezone.utc)
    account = await partner.accounts.create(
        user_id=user.user_id,
        external_id=f"pc_challenge_001{suffix}",
        stage="challenge",
        starting_balance="10000.00",
        metadata={"plan": "10k", "attempt": 1},
        rules={"profit_target_pct": 20, "max_drawdown_pct": 10},
    )
    rules = account.rules
    out.line(
        f"   account_id={account.account_id} wallet_id={account.wallet_id}"
        f" starting_balance={account.starting_balance}"
        f" target={rules.profit_target_pct if rules else '-'}%"
        f" max drawdown={rules.max_drawdown_pct if rules else '-'}%"
    )

    out.line("4. The trader trades")
    curve: list[EquityPoint] = []
    if sb is not None:
        await _simulate_trading(sb, account.account_id, days, seed, out)
        trader = sb.create_trader_key(user.user_id)
        async with Client(trader.api_key, client.base_url) as as_trader:
            curve = await as_trader.account.equity(
                days=min(90, days + 1), wallet_id=account.wallet_id
            )
    else:
        out.line("   (in the native UI; this run reads whatever is there)")

    out.line("5. Read live state")
    state = await partner.accounts.get(account.account_id)
    out.line(
        f"   balance={state.balance} equity={state.equity}"
        f" unrealized_pnl={state.unrealized_pnl}"
        f" open positions={len(state.open_positions)}"
    )

    out.line("6. Pull the trade feed")
    pages = 0
    trades: list[Trade] = []
    async for page in partner.accounts.trade_pages(account.account_id):
        pages += 1
        trades += page.data
    volume = sum((t.notional for t in trades), Decimal(0))
    fees = sum((t.fee for t in trades), Decimal(0))
    realized = sum((t.realized_pnl or 0 for t in trades), Decimal(0))
    out.line(
        f"   {_plural(len(trades), 'fill')} in {_plural(pages, 'page')}:"
        f" volume={volume} fees={fees} realized_pnl={realized}"
    )

    out.line("7. Judge the rules (polysim_async.rules)")
    now = sb.now() if sb is not None else datetime.now(timezone.utc)
    verdict = evaluate(
        RuleSet.from_wire(state.rules),
        starting_balance=state.starting_balance,
        opened_at=opened,
        fills=trades,
        samples=[*curve, sample_of(state, at=now)],
        now=now,
    )
    m = verdict.metrics
    source = f"{_plural(len(curve), 'hourly equity point')}" if curve else "current equity only"
    broken = "".join(f" breach={b.rule} at {b.at:%Y-%m-%d %H:%M}" for b in verdict.breaches)
    out.line(
        f"   profit={m.profit} ({m.profit_pct:.2f}%) high-water mark={m.high_water_mark}"
        f" loss floor={m.loss_floor}{broken} ({source}) -> {verdict.status.upper()}"
    )

    out.line("8. Close or reset")
    final: AccountState
    if verdict.status == "failed":
        final = await partner.accounts.reset(account.account_id)
        out.line(f"   reset: status={final.status.value} balance={final.balance}")
    else:
        final = await partner.accounts.close(account.account_id)
        out.line(f"   closed: status={final.status.value} equity={final.equity}")
    out.line("done")


def demo(ctx: Context) -> int:
    """``polysim demo``: the lifecycle on an in-process sandbox, or on ``--against URL``."""
    args = ctx.args
    if args.against is None:
        return ctx.run(_demo_local(args.days, args.seed, ctx.out))
    key = args.api_key or os.environ.get("POLYSIM_TENANT_KEY")
    if not key:
        raise CommandError(
            "polysim demo: --against needs a tenant key: pass --api-key or set POLYSIM_TENANT_KEY",
            EXIT_USAGE,
        )
    source = "--api-key" if args.api_key else "POLYSIM_TENANT_KEY"
    _confirm(args.against, source, args.yes, ctx.out, input)
    return ctx.run(_demo_remote(args.against, key, args.allow_insecure, args.days, ctx.out))


async def _demo_local(days: int, seed: int, out: Output) -> int:
    from ..sandbox import Sandbox

    async with Sandbox(seed=seed, frozen_clock=True) as sb:
        out.line(f"polysim demo on an in-process sandbox at {sb.url} (seed {seed})")
        async with Client(sb.tenant_key, sb.url) as client:
            await _lifecycle(client, sb, days, seed, out)
    return EXIT_OK


async def _demo_remote(url: str, key: str, allow_insecure: bool, days: int, out: Output) -> int:
    async with Client(key, url, allow_insecure=allow_insecure) as client:
        out.line(f"polysim demo against {client.base_url}")
        await _lifecycle(client, None, days, 0, out)
    return EXIT_OK


def _confirm(
    url: str, key_from: str, assume_yes: bool, out: Output, ask: Callable[[], str]
) -> None:
    """Say what the demo will create on ``url`` and get a yes.

    Raises:
        CommandError: no terminal to ask on (exit 2) or the answer was not yes (exit 130).
    """
    out.message(
        f"polysim demo will write to {url} with the tenant key from {key_from}: register a"
        " trader pc_trader_123_<random> <trader@example.com> and email it a login link,"
        " create a $10,000.00 challenge account pc_challenge_001_<random>, read its state"
        " and fills, then close it (or reset it if its rules failed)."
    )
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise CommandError(
            "polysim demo: not writing to a server without confirmation; run again with --yes",
            EXIT_USAGE,
        )
    out.message("Proceed? [y/N]")
    if ask().strip().lower() not in ("y", "yes"):
        raise CommandError("polysim demo: aborted; nothing was created", EXIT_INTERRUPTED)


# -- polysim sandbox ---
def connect_url(host: str, port: int) -> str:
    """The base URL a client on this machine should use for a server bound to ``host``.

    A wildcard bind (``0.0.0.0``, ``::``, empty) is reached over loopback, which
    the client accepts over plain http.
    """
    name = host.strip("[]")
    try:
        address = ipaddress.ip_address(name) if name else ipaddress.ip_address("0.0.0.0")
    except ValueError:
        return f"http://{host}:{port}"
    if address.is_unspecified:
        return f"http://[::1]:{port}" if address.version == 6 else f"http://127.0.0.1:{port}"
    return f"http://[{address}]:{port}" if address.version == 6 else f"http://{address}:{port}"


def sandbox(ctx: Context) -> int:
    """``polysim sandbox``: serve until Ctrl-C or SIGTERM (which exit 0)."""
    try:
        return ctx.run(_serve(ctx.args, ctx.out))
    except (Interrupted, KeyboardInterrupt):
        ctx.out.message("polysim sandbox: stopped")
        return EXIT_OK


async def _serve(args: argparse.Namespace, out: Output) -> int:
    """Serve until cancelled; returns only by raising."""
    from ..sandbox import Sandbox

    sandbox = Sandbox(
        host=args.host,
        port=args.port,
        seed=args.seed,
        rate_limits=not args.no_rate_limits,
        frozen_clock=args.frozen_clock,
    )
    try:
        await sandbox.start()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CommandError(
            f"polysim sandbox: cannot listen on {args.host}:{args.port}: {reason}",
            EXIT_API_ERROR,
        ) from None
    try:
        port = int(sandbox.url.rsplit(":", 1)[1])
        url = connect_url(args.host, port)
        out.message(f"PolySimulator sandbox listening on {sandbox.url} (seed {args.seed});")
        out.message("Ctrl-C stops it. Use one block per shell:")
        # The server is the product: with stdout closed (``>&-``) it serves all the same.
        with contextlib.suppress(OutputClosed):
            out.line("# as the partner backend (tenant key)")
            out.line(f"export POLYSIM_BASE_URL={url}")
            out.line(f"export POLYSIM_TENANT_KEY={sandbox.tenant_key}")
            out.line("# as the trader (personal key); the client prefers a tenant key, so unset it")
            out.line(f"export POLYSIM_BASE_URL={url}")
            out.line(f"export POLYSIM_API_KEY={sandbox.api_key}")
            out.line("unset POLYSIM_TENANT_KEY")
        if not is_loopback_host(urlsplit(url).hostname or ""):
            out.message(
                f"note: {url} is plain http to a non-loopback host: pass allow_insecure=True"
                " to the client (--allow-insecure to polysim)"
            )
        out.message(f"markets: {', '.join(sandbox.market_ids)}")
        out.message(f"control API: {url}/_sandbox/ (lists every route)")
        await asyncio.Event().wait()
    finally:
        await sandbox.aclose()
    return EXIT_OK  # pragma: no cover - the wait above ends only by cancellation
