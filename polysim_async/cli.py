"""The ``polysim`` command: ``polysim demo`` and ``polysim sandbox``.

``polysim demo`` runs the prop-firm lifecycle of the partner quickstart with the
client, on an in-process sandbox (no key, no network). It reaches another server
only when told to with ``--against URL``, and then says what it will create and
asks first (``--yes`` skips the question). ``polysim sandbox`` serves a sandbox
until Ctrl-C.

Output: results on stdout, errors on stderr as one line, never a traceback (the
``--debug`` option shows one). Exit codes: 0 success, 1 API or network error,
2 usage error, 3 a check failed, 4 authentication, 130 interrupted. The code is
laid out to move into a ``polysim_async/cli/`` package: one function per command
and one small output helper.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import random
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any, NoReturn, TextIO
from urllib.parse import urlsplit

from ._client import Client
from ._config import _is_loopback as is_loopback_host
from ._errors import AuthenticationError, PermissionDeniedError, PolySimError, UsageError
from ._version import __version__
from .models.account import EquityPoint
from .models.partner import AccountState, Rules

if TYPE_CHECKING:
    from .sandbox import Sandbox

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_AUTH",
    "EXIT_CHECK_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Evaluation",
    "evaluate",
    "main",
]

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_CHECK_FAILED = 3
EXIT_AUTH = 4
EXIT_INTERRUPTED = 130

CENT = Decimal("0.01")
MAX_DAYS = 60
_EXIT_CODES = """\
exit codes:
  0    success
  1    API or network error
  2    usage error (bad option, missing key, no confirmation)
  3    a check failed
  4    authentication (the key was refused)
  130  interrupted (Ctrl-C, or the confirmation was declined)"""


# -- output --------------------------------------------------------------------------------
class Output:
    """Where a command writes: results to ``stdout``, messages and errors to ``stderr``.

    A closed ``stdout`` (``polysim demo | head``) is not an error: later results
    are dropped quietly and the command finishes its work.
    """

    def __init__(self, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self._stdout = stdout
        self._stderr = stderr
        self.closed = False

    def line(self, text: str = "") -> None:
        """Write one line of results."""
        if self.closed:
            return
        stream = self._stdout or sys.stdout
        try:
            stream.write(text + "\n")
            stream.flush()
        except BrokenPipeError:
            self.closed = True
            if stream is sys.stdout:
                # Keep the interpreter's own flush at exit from failing on the closed pipe.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)

    def message(self, text: str) -> None:
        """Write one line to stderr."""
        stream = self._stderr or sys.stderr
        stream.write(text + "\n")
        stream.flush()


class CommandError(Exception):
    """A failure the command reports as one line, with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _one_line(text: str) -> str:
    return " ".join(text.split())


# -- rule evaluation -----------------------------------------------------------------------
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
    pages = fills = 0
    volume = fees = realized = Decimal(0)
    async for page in partner.accounts.trade_pages(account.account_id):
        pages += 1
        for trade in page.data:
            fills += 1
            volume += trade.notional
            fees += trade.fee
            realized += trade.realized_pnl or 0
    out.line(
        f"   {_plural(fills, 'fill')} in {_plural(pages, 'page')}:"
        f" volume={volume} fees={fees} realized_pnl={realized}"
    )

    out.line("7. Evaluate the rules")
    result = evaluate(state.starting_balance, state.equity, curve, state.rules)
    source = f"{_plural(len(curve), 'hourly equity point')}" if curve else "current equity only"
    out.line(
        f"   profit={result.profit_pct}% max drawdown={result.max_drawdown_pct}%"
        f" ({source}) -> {result.verdict.upper()}"
    )

    out.line("8. Close or reset")
    final: AccountState
    if result.verdict == "failed":
        final = await partner.accounts.reset(account.account_id)
        out.line(f"   reset: status={final.status.value} balance={final.balance}")
    else:
        final = await partner.accounts.close(account.account_id)
        out.line(f"   closed: status={final.status.value} equity={final.equity}")
    out.line("done")


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


def run_demo(args: argparse.Namespace, out: Output, ask: Callable[[], str] = input) -> int:
    """``polysim demo``: the lifecycle on an in-process sandbox, or on ``--against URL``."""
    if args.against is None:
        return asyncio.run(_demo_local(args.days, args.seed, out))
    key = args.api_key or os.environ.get("POLYSIM_TENANT_KEY")
    if not key:
        raise CommandError(
            "polysim demo: --against needs a tenant key: pass --api-key or set POLYSIM_TENANT_KEY",
            EXIT_USAGE,
        )
    _confirm(
        args.against, "--api-key" if args.api_key else "POLYSIM_TENANT_KEY", args.yes, out, ask
    )
    return asyncio.run(_demo_remote(args.against, key, args.allow_insecure, args.days, out))


async def _demo_local(days: int, seed: int, out: Output) -> int:
    from .sandbox import Sandbox

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


# -- polysim sandbox -----------------------------------------------------------------------
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


async def _serve(args: argparse.Namespace, out: Output) -> None:
    from .sandbox import Sandbox

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
                " to the client"
            )
        out.message(f"markets: {', '.join(sandbox.market_ids)}")
        out.message(f"control API: {url}/_sandbox/ (lists every route)")
        await asyncio.Event().wait()
    finally:
        await sandbox.aclose()


def run_sandbox(args: argparse.Namespace, out: Output) -> int:
    """``polysim sandbox``: serve until Ctrl-C (which exits 0)."""
    try:
        asyncio.run(_serve(args, out))
    except KeyboardInterrupt:
        out.message("polysim sandbox: stopped")
    return EXIT_OK


# -- parsing and main ----------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{self.prog}: error: {message} (see {self.prog} --help)", EXIT_USAGE)


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 1 <= value <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_DAYS}, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 0 to 65535, got {value}")
    return value


def _url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"must be an http(s) URL, got {text!r}")
    return text.rstrip("/")


def build_parser() -> argparse.ArgumentParser:
    """The ``polysim`` argument parser (plain-text help, every option explained)."""
    fmt = argparse.RawDescriptionHelpFormatter
    common = _Parser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,  # so a subcommand does not reset a --debug given before it
        help="on an unexpected error, print the traceback",
    )
    parser = _Parser(
        prog="polysim",
        description="Command line for PolySimulator: a demo and a local sandbox server.",
        epilog=_EXIT_CODES,
        formatter_class=fmt,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"polysim-async {__version__}")
    sub = parser.add_subparsers(
        dest="command",
        metavar="COMMAND",
        parser_class=_Parser,
        help="the command to run (polysim COMMAND --help for its options)",
    )
    sub.required = True

    demo = sub.add_parser(
        "demo",
        help="run the prop-firm lifecycle on an in-process sandbox",
        description=(
            "Run the partner quickstart's lifecycle: register a trader, send a login link,\n"
            "create a $10,000 challenge with rules, let a simulated trader trade, read the\n"
            "state and every fill, evaluate the rules, then close (or reset) the account.\n"
            "It runs on an in-process sandbox and ignores POLYSIM_BASE_URL; it reaches\n"
            "another server only with --against, and asks before writing there."
        ),
        epilog=_EXIT_CODES,
        formatter_class=fmt,
        parents=[common],
    )
    demo.add_argument(
        "--days",
        type=_days,
        default=3,
        metavar="N",
        help=f"simulated trading days, 1 to {MAX_DAYS} (default 3)",
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=7,
        metavar="S",
        help="seed of the sandbox and of the simulated trader (default 7)",
    )
    demo.add_argument(
        "--against",
        type=_url,
        metavar="URL",
        help="run against this server instead (it creates a real trader and account there)",
    )
    demo.add_argument(
        "--api-key",
        metavar="KEY",
        help="tenant key for --against (default: the POLYSIM_TENANT_KEY variable)",
    )
    demo.add_argument(
        "--yes", action="store_true", help="with --against, do not ask for confirmation"
    )
    demo.add_argument(
        "--allow-insecure",
        action="store_true",
        help="with --against, permit plain http to a host that is not loopback",
    )
    demo.set_defaults(run=run_demo)

    serve = sub.add_parser(
        "sandbox",
        help="serve a local PolySimulator sandbox until Ctrl-C",
        description=(
            "Serve an in-memory PolySimulator (partner and trader API, execution\n"
            "WebSocket, control API under /_sandbox/) and print the environment\n"
            "variables for the partner role and for the trader role."
        ),
        epilog=_EXIT_CODES,
        formatter_class=fmt,
        parents=[common],
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on (default 127.0.0.1; 0.0.0.0 for every interface)",
    )
    serve.add_argument(
        "--port", type=_port, default=8000, help="TCP port; 0 picks a free one (default 8000)"
    )
    serve.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for ids, keys, markets and the price walk (default 0)",
    )
    serve.add_argument(
        "--no-rate-limits",
        action="store_true",
        help="do not enforce the documented partner and trader rate limits",
    )
    serve.add_argument(
        "--frozen-clock",
        action="store_true",
        help="simulated time moves only through the control API (/_sandbox/clock/advance)",
    )
    serve.set_defaults(run=run_sandbox)
    return parser


def _exit_code(exc: PolySimError) -> int:
    if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
        return EXIT_AUTH
    if isinstance(exc, UsageError):
        return EXIT_USAGE
    return EXIT_API_ERROR


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the ``polysim`` command.

    Returns:
        The exit code (see the module docstring); nothing is raised, and no
        traceback is printed unless ``--debug`` is given.
    """
    out = Output(stdout, stderr)
    args = argparse.Namespace(command=None)
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help and --version
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        code: int = args.run(args, out)
        return code
    except CommandError as exc:
        out.message(_one_line(str(exc)))
        return exc.code
    except KeyboardInterrupt:
        out.message(f"polysim {args.command or ''}: interrupted".replace("  ", " "))
        return EXIT_INTERRUPTED
    except PolySimError as exc:
        if getattr(args, "debug", False):
            traceback.print_exc(file=stderr or sys.stderr)
        out.message(_one_line(f"polysim {args.command}: {type(exc).__name__}: {exc}"))
        return _exit_code(exc)
    except Exception as exc:
        debug = getattr(args, "debug", False)
        if debug:
            traceback.print_exc(file=stderr or sys.stderr)
        hint = "" if debug else " (run with --debug for the traceback)"
        out.message(
            _one_line(f"polysim {args.command}: unexpected error: {type(exc).__name__}: {exc}")
            + hint
        )
        return EXIT_API_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
