"""The ``polysim`` command: ``polysim demo`` and ``polysim sandbox``.

``polysim demo`` runs the partner lifecycle of the prop-firm quickstart with the
client: against an in-process sandbox by default (no key, no network), or against
``POLYSIM_BASE_URL`` when that and a key (``POLYSIM_TENANT_KEY`` or
``POLYSIM_API_KEY``) are set. ``polysim sandbox`` serves a sandbox until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from ._client import Client
from ._errors import PolySimError
from ._version import __version__
from .models.account import EquityPoint
from .models.partner import AccountState, Rules

if TYPE_CHECKING:
    from .sandbox import Sandbox

__all__ = ["evaluate", "main"]

Out = Callable[[str], None]
CENT = Decimal("0.01")


def _money(value: Decimal | None) -> str:
    return "n/a" if value is None else f"${value.quantize(CENT):,}"


@dataclass(frozen=True)
class Evaluation:
    """The rule check of one account: profit against target, drawdown against its cap."""

    profit_pct: Decimal
    max_drawdown_pct: Decimal
    verdict: str  # "passed", "failed" or "in progress"


def evaluate(
    starting_balance: Decimal, equity: Decimal, curve: Sequence[EquityPoint], rules: Rules | None
) -> Evaluation:
    """Check an account against its rules.

    Profit is ``(equity - starting) / starting``. Drawdown is the largest fall
    from a running equity peak (starting balance included), as a percentage of
    that peak, over the curve and the current equity.

    Returns:
        The percentages (2 dp) and ``passed`` (target reached within the
        drawdown cap), ``failed`` (cap breached) or ``in progress``.
    """
    profit = (equity - starting_balance) / starting_balance * 100
    peak, worst = starting_balance, Decimal(0)
    for value in [point.total_value for point in curve] + [equity]:
        peak = max(peak, value)
        worst = max(worst, (peak - value) / peak * 100)
    target = rules.profit_target_pct if rules else None
    cap = rules.max_drawdown_pct if rules else None
    if cap is not None and worst > cap:
        verdict = "failed"
    elif target is not None and profit >= target:
        verdict = "passed"
    else:
        verdict = "in progress"
    return Evaluation(profit.quantize(CENT), worst.quantize(CENT), verdict)


async def _simulate_trading(sb: Sandbox, account_id: str, days: int, seed: int, out: Out) -> None:
    """A simulated trader: a few market and limit orders per simulated day, prices moving."""
    rng = random.Random(seed)
    held: dict[str, Decimal] = {}
    mids = {market: Decimal("0.50") for market in sb.market_ids}
    orders = 0
    for _day in range(days):
        for _slot in range(6):
            market = rng.choice(sb.market_ids)
            # A gentle walk with a slight edge for the trader: up a little more often.
            step = Decimal(rng.choice([-3, -2, -1, 0, 1, 2, 3, 4])) / 100
            mid = mids[market] = min(Decimal("0.90"), max(Decimal("0.10"), mids[market] + step))
            sb.set_price(market, mid)
            quantity = Decimal(rng.choice([100, 250, 500, 1000]))
            if held.get(market, Decimal(0)) >= quantity and rng.random() < 0.45:
                order = await sb.place_order(
                    account_id=account_id, market_id=market, side="SELL", outcome="Yes",
                    quantity=str(quantity), order_type="market", price="0.01",
                )  # fmt: skip
            elif rng.random() < 0.25:
                limit = max(Decimal("0.02"), mid - Decimal("0.05"))
                order = await sb.place_order(
                    account_id=account_id, market_id=market, side="BUY", outcome="Yes",
                    quantity=str(quantity), order_type="limit", price=str(limit),
                )  # fmt: skip
            else:
                order = await sb.place_order(
                    account_id=account_id, market_id=market, side="BUY", outcome="Yes",
                    quantity=str(quantity), order_type="market", price="0.99",
                )  # fmt: skip
            orders += 1
            if order["position"] is not None:
                held[market] = Decimal(order["position"]["quantity"])
            sb.advance(hours=4)
    out(f"   {orders} orders over {days} simulated days; clock now {sb.now():%Y-%m-%d %H:%M} UTC")


async def _lifecycle(client: Client, sb: Sandbox | None, days: int, seed: int, out: Out) -> int:
    partner = client.partner
    suffix = "" if sb is not None else f"_{random.randrange(16**6):06x}"
    out("1. Register the trader")
    user = await partner.users.register(
        f"pc_trader_123{suffix}", "trader@example.com", metadata={"country": "ES"}
    )
    out(f"   user_id={user.user_id} created={user.created}")

    out("2. Send a magic-link login")
    await partner.users.send_login_link(
        user.user_id, redirect_url="https://polysimulator.com/markets"
    )
    if sb is not None:
        mail = sb.outbox()[-1]
        out(f"   outbox: to {mail['email']} -> lands on {mail['redirect_url']}")
    else:
        out("   202 accepted; the link is emailed to the trader")

    out("3. Create a $10,000 challenge")
    account = await partner.accounts.create(
        user_id=user.user_id,
        external_id=f"pc_challenge_001{suffix}",
        stage="challenge",
        starting_balance="10000.00",
        metadata={"plan": "10k", "attempt": 1},
        rules={"profit_target_pct": 20, "max_drawdown_pct": 10},
    )
    rules = account.rules
    out(
        f"   account_id={account.account_id} wallet_id={account.wallet_id} "
        f"target={rules.profit_target_pct if rules else '-'}% "
        f"max drawdown={rules.max_drawdown_pct if rules else '-'}%"
    )

    out("4. The trader trades")
    curve: list[EquityPoint] = []
    if sb is not None:
        await _simulate_trading(sb, account.account_id, days, seed, out)
        trader = sb.create_trader_key(user.user_id)
        async with Client(trader.api_key, client.base_url) as as_trader:
            curve = await as_trader.account.equity(
                days=min(90, days + 1), wallet_id=account.wallet_id
            )
    else:
        out("   (in the native UI; this run reads whatever is there)")

    out("5. Read live state")
    state = await partner.accounts.get(account.account_id)
    out(
        f"   balance={_money(state.balance)} equity={_money(state.equity)} "
        f"unrealized={_money(state.unrealized_pnl)} open positions={len(state.open_positions)}"
    )

    out("6. Pull the trade feed")
    pages = fills = 0
    volume = fees = realized = Decimal(0)
    async for page in partner.accounts.trade_pages(account.account_id):
        pages += 1
        for trade in page.data:
            fills += 1
            volume += trade.notional
            fees += trade.fee
            realized += trade.realized_pnl or 0
    out(
        f"   {fills} fills in {pages} pages: volume={_money(volume)} fees={_money(fees)} "
        f"realized={_money(realized)}"
    )

    out("7. Evaluate the rules")
    result = evaluate(state.starting_balance, state.equity, curve, state.rules)
    source = f"{len(curve)} hourly equity points" if curve else "current equity only"
    out(
        f"   profit={result.profit_pct}% max drawdown={result.max_drawdown_pct}% "
        f"({source}) -> {result.verdict.upper()}"
    )

    out("8. Close or reset")
    final: AccountState
    if result.verdict == "failed":
        final = await partner.accounts.reset(account.account_id)
        out(f"   reset: status={final.status.value} balance={_money(final.balance)}")
    else:
        final = await partner.accounts.close(account.account_id)
        out(f"   closed: status={final.status.value} equity={_money(final.equity)}")
    out(f"done: {client.stats.attempts} requests, {sum(client.stats.retries.values())} retries")
    return 0


async def _demo(days: int, seed: int, out: Out) -> int:
    base_url = os.environ.get("POLYSIM_BASE_URL")
    key = os.environ.get("POLYSIM_TENANT_KEY") or os.environ.get("POLYSIM_API_KEY")
    if base_url and key:
        out(f"polysim demo against {base_url}")
        async with Client(key, base_url) as client:
            return await _lifecycle(client, None, days, seed, out)
    from .sandbox import Sandbox

    async with Sandbox(seed=seed, frozen_clock=True) as sb:
        out(f"polysim demo on an in-process sandbox at {sb.url} (seed {seed})")
        async with Client(sb.tenant_key, sb.url) as client:
            return await _lifecycle(client, sb, days, seed, out)


async def _serve(args: argparse.Namespace, out: Out) -> None:
    from .sandbox import Sandbox

    sandbox = Sandbox(
        host=args.host,
        port=args.port,
        seed=args.seed,
        rate_limits=not args.no_rate_limits,
        frozen_clock=args.frozen_clock,
    )
    async with sandbox:
        out(f"PolySimulator sandbox on {sandbox.url} (seed {args.seed}); Ctrl-C stops it")
        out(f"export POLYSIM_BASE_URL={sandbox.url}")
        out(f"export POLYSIM_TENANT_KEY={sandbox.tenant_key}")
        out(f"export POLYSIM_API_KEY={sandbox.api_key}")
        out(f"markets: {', '.join(sandbox.market_ids)}")
        out(f"control API: {sandbox.url}/_sandbox/")
        await asyncio.Event().wait()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polysim", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"polysim-async {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the prop-firm lifecycle (sandbox unless configured)")
    demo.add_argument("--days", type=int, default=3, help="simulated trading days (default 3)")
    demo.add_argument("--seed", type=int, default=7, help="sandbox seed (default 7)")
    serve = sub.add_parser("sandbox", help="serve a local PolySimulator sandbox")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument("--no-rate-limits", action="store_true", help="disable rate limiting")
    serve.add_argument("--frozen-clock", action="store_true", help="time moves only on request")
    return parser


def main(argv: Sequence[str] | None = None, *, out: Out = print) -> int:
    """Run the ``polysim`` command.

    Returns:
        The process exit code: 0 on success, 1 when the API answered with an error.
    """
    args = _parser().parse_args(argv)
    if args.command == "sandbox":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(args, out))
        return 0
    if not 1 <= args.days <= 60:
        _parser().error("--days must be within 1..60")
    try:
        return asyncio.run(_demo(args.days, args.seed, out))
    except PolySimError as exc:
        print(f"polysim demo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
