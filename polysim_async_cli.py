"""The ``polysim`` command line: its parser, exit codes and entry point.

This is a top-level module, beside the ``polysim_async`` package, for the same
reason as the pytest plugin: importing ``polysim_async`` costs about half a
second (aiohttp, asyncio), and ``polysim --help``, ``polysim --version`` and a
usage error should answer at once. So this module imports only the standard
library; a command's code (``polysim_async.cli``) and the client are imported
only once the arguments are known to name a command to run.

Output: data on stdout, messages and errors on stderr, one line per error and
no traceback unless ``--debug``. Exit codes: see :data:`EXIT_CODES_HELP`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import NoReturn, TextIO
from urllib.parse import urlsplit

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_AUTH",
    "EXIT_CHECK_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "MAX_DAYS",
    "CommandError",
    "build_parser",
    "main",
    "version",
]

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_CHECK_FAILED = 3
EXIT_AUTH = 4
EXIT_INTERRUPTED = 130

#: Simulated trading days of ``polysim demo``.
MAX_DAYS = 60

EXIT_CODES_HELP = """\
exit codes:
  0    success
  1    API or network error (the server refused the request, or could not be reached)
  2    usage error (bad option, missing key, no confirmation)
  3    a check failed (evaluate: an account failed its rules)
  4    authentication (the key was refused: 401 or 403)
  130  interrupted (Ctrl-C or SIGTERM, or the confirmation was declined)"""

_PARTNER_KEY = """\
credentials: --api-key, else the POLYSIM_TENANT_KEY variable (the partner's tenant key);
  --base-url, else POLYSIM_BASE_URL, else https://api.polysimulator.com"""

_TRADER_KEY = """\
credentials: --api-key, else the POLYSIM_API_KEY variable (a trader's ps_live_ key);
  --base-url, else POLYSIM_BASE_URL, else https://api.polysimulator.com"""

_OUTPUT = """\
output: a table when stdout is a terminal, else JSON; --table, --json (one document)
  or --jsonl (one object per line) choose. Money is printed as the API sent it."""


class CommandError(Exception):
    """A failure a command reports as one line on stderr, with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def version() -> str:
    """The installed polysim-async version, read without importing the package.

    ``polysim_async/_version.py`` holds one assignment; it is executed on its
    own, so the client (and aiohttp) stay unloaded.
    """
    spec = importlib.util.find_spec("polysim_async")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, "_version.py")
        if os.path.exists(path):
            namespace: dict[str, object] = {}
            with open(path, encoding="utf-8") as file:
                exec(compile(file.read(), path, "exec"), namespace)
            return str(namespace["__version__"])
    return "unknown"  # pragma: no cover - the package ships _version.py


# -- argument types --------------------------------------------------------------------------
def _int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 < value < 86_400:
        raise argparse.ArgumentTypeError(f"must be above 0 and below 86400, got {text}")
    return value


def _url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"must be an http(s) URL, got {text!r}")
    return text.rstrip("/")


def _shard(text: str) -> tuple[int, int]:
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i = n = -1
    if not sep or n < 1 or not 0 <= i < n:
        raise argparse.ArgumentTypeError(
            f"must be I/N with 0 <= I < N (this worker is number I of N), got {text!r}"
        )
    return i, n


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"must be an ISO-8601 time with an offset (2026-06-01T12:00:00Z), got {text!r}"
        )
    return value


def _wallet(text: str) -> str:
    if text.lower() in ("all", "api") or (text.isdigit() and int(text) > 0):
        return text.lower()
    raise argparse.ArgumentTypeError(f"must be all, api or a wallet id, got {text!r}")


# -- the parser -------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{self.prog}: error: {message} (see {self.prog} --help)", EXIT_USAGE)


_FORMAT = argparse.RawDescriptionHelpFormatter


class _Builder:
    """Shared option groups, so each is written once and read the same everywhere."""

    def __init__(self) -> None:
        self.debug = _Parser(add_help=False)
        self.debug.add_argument(
            "--debug",
            action="store_true",
            default=argparse.SUPPRESS,  # a subcommand does not reset a --debug given before it
            help="on an error, print the traceback",
        )
        self.connection = _Parser(add_help=False)
        group = self.connection.add_argument_group("connection")
        group.add_argument(
            "--api-key", metavar="KEY", help="the API key (default: the variable named below)"
        )
        group.add_argument(
            "--base-url",
            metavar="URL",
            type=_url,
            help="the API root (default: POLYSIM_BASE_URL, else production)",
        )
        group.add_argument(
            "--retries",
            metavar="N",
            type=_int_range(0, 20),
            default=3,
            help="repeats of a request after a 429, a 5xx or a network error (default 3)",
        )
        group.add_argument(
            "--allow-insecure",
            action="store_true",
            help="permit plain http to a host that is not loopback",
        )
        self.output = _Parser(add_help=False)
        out = self.output.add_argument_group("output").add_mutually_exclusive_group()
        out.add_argument(
            "--table",
            dest="format",
            action="store_const",
            const="table",
            help="a table (the default on a terminal)",
        )
        out.add_argument(
            "--json",
            dest="format",
            action="store_const",
            const="json",
            help="one JSON document (the default when stdout is not a terminal)",
        )
        out.add_argument(
            "--jsonl",
            dest="format",
            action="store_const",
            const="jsonl",
            help="one JSON object per line",
        )
        self.many = _Parser(add_help=False)
        self.many.add_argument(
            "account_ids", nargs="*", metavar="ACCOUNT_ID", help="partner account ids (UUIDs)"
        )
        self.many.add_argument(
            "--accounts-file",
            metavar="FILE",
            help="more account ids, one per line (# comments and blank lines skipped; - is stdin)",
        )
        self.shard = _Parser(add_help=False)
        self.shard.add_argument(
            "--shard",
            metavar="I/N",
            type=_shard,
            help="work on shard I of N only (0-based; a stable hash of the account id)",
        )
        self.rules = _Parser(add_help=False)
        rules = self.rules.add_mutually_exclusive_group()
        rules.add_argument(
            "--rules",
            metavar="JSON",
            help="rule parameters as a JSON object, e.g. '{\"profit_target_pct\": 8}'",
        )
        rules.add_argument(
            "--rules-file", metavar="FILE", help="rule parameters from a JSON file (- is stdin)"
        )
        self.rules.add_argument(
            "--strict-rules",
            action="store_true",
            help="a rule name the rules engine does not know is an error (default: a warning)",
        )

    def command(
        self,
        sub: argparse._SubParsersAction[_Parser],
        name: str,
        *,
        help: str,
        description: str,
        handler: str,
        parents: Sequence[argparse.ArgumentParser] = (),
        epilog: str = "",
    ) -> _Parser:
        parser = sub.add_parser(
            name,
            help=help,
            description=description,
            epilog="\n\n".join(filter(None, [epilog, EXIT_CODES_HELP])),
            formatter_class=_FORMAT,
            parents=[self.debug, *parents],  # type: ignore[list-item]  # parents are _Parsers
        )
        # The command's own name, for an unknown option found after parsing (see main).
        parser.set_defaults(handler=handler, command_prog=parser.prog)
        return parser

    def group(
        self, sub: argparse._SubParsersAction[_Parser], name: str, *, help: str, description: str
    ) -> argparse._SubParsersAction[_Parser]:
        parser = sub.add_parser(
            name, help=help, description=description, formatter_class=_FORMAT, parents=[self.debug]
        )
        inner = parser.add_subparsers(
            dest="action",
            metavar="ACTION",
            parser_class=_Parser,
            help=f"what to do (polysim {name} ACTION --help for its options)",
        )
        inner.required = True
        return inner


def build_parser() -> argparse.ArgumentParser:
    """The ``polysim`` argument parser: plain-text help with every option explained.

    Each command stores ``handler`` (``"module:function"`` under
    ``polysim_async.cli``) in the parsed namespace.
    """
    b = _Builder()
    parser = _Parser(
        prog="polysim",
        description=(
            "The PolySimulator command line: provision and judge prop-firm accounts, export\n"
            "and watch their fills (partner API), tail a trader's executions and chart its\n"
            "equity (trader API), and run a local sandbox."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=_FORMAT,
        parents=[b.debug],
    )
    parser.add_argument("--version", action="version", version=f"polysim-async {version()}")
    sub = parser.add_subparsers(
        dest="command",
        metavar="COMMAND",
        parser_class=_Parser,
        help="the command to run (polysim COMMAND --help for its options)",
    )
    sub.required = True
    api = [b.connection, b.output]
    partner_epilog = f"{_PARTNER_KEY}\n\n{_OUTPUT}"
    trader_epilog = f"{_TRADER_KEY}\n\n{_OUTPUT}"

    # -- traders ------------------------------------------------------------------------------
    traders = b.group(
        sub,
        "traders",
        help="register traders, read them, email them a login link (tenant key)",
        description="Traders of the tenant (partner API, tenant key).",
    )
    p = b.command(
        traders,
        "register",
        help="register a trader, or resolve the one already mapped to EXTERNAL_ID",
        description=(
            "Register a trader under your own id for it, or return the trader already\n"
            "registered under EXTERNAL_ID (created is false then)."
        ),
        handler="_partner:traders_register",
        parents=api,
        epilog=partner_epilog,
    )
    p.add_argument("external_id", metavar="EXTERNAL_ID", help="your id for the trader")
    p.add_argument("email", metavar="EMAIL", help="the trader's email address")
    p.add_argument("--metadata", metavar="JSON", help="a JSON object stored with the trader")
    p = b.command(
        traders,
        "get",
        help="show a trader",
        description="Show one trader of the tenant.",
        handler="_partner:traders_get",
        parents=api,
        epilog=partner_epilog,
    )
    p.add_argument("user_id", metavar="USER_ID", type=_int_range(1), help="the trader's user id")
    p = b.command(
        traders,
        "login-link",
        help="email the trader a one-time sign-in link",
        description=(
            "Email the trader a one-time sign-in link. The link itself is never shown:\n"
            "it goes to the trader's email address only."
        ),
        handler="_partner:traders_login_link",
        parents=api,
        epilog=partner_epilog,
    )
    p.add_argument("user_id", metavar="USER_ID", type=_int_range(1), help="the trader's user id")
    p.add_argument(
        "--redirect",
        metavar="URL",
        type=_url,
        help="where the trader lands after signing in (one of your registered domains)",
    )

    # -- accounts -----------------------------------------------------------------------------
    accounts = b.group(
        sub,
        "accounts",
        help="create, read, update, close and reset accounts (tenant key)",
        description="Tenant-governed accounts (partner API, tenant key).",
    )
    p = b.command(
        accounts,
        "create",
        help="create an account for a trader",
        description=(
            "Create an account funded to its starting balance. Unless --metadata sets it,\n"
            'metadata["opened_at"] is stored as the server\'s time of the creation: the\n'
            "instant evaluate judges the attempt from."
        ),
        handler="_partner:accounts_create",
        parents=[*api, b.rules],
        epilog=partner_epilog,
    )
    p.add_argument(
        "--user", metavar="USER_ID", type=_int_range(1), required=True, help="the trader's user id"
    )
    p.add_argument("--external-id", metavar="ID", required=True, help="your id for this account")
    p.add_argument(
        "--stage",
        choices=("demo", "challenge", "funded"),
        required=True,
        help="the account's stage: demo, challenge or funded (a label)",
    )
    p.add_argument(
        "--balance", metavar="AMOUNT", required=True, help="starting balance in USD, e.g. 10000"
    )
    p.add_argument("--metadata", metavar="JSON", help="a JSON object stored with the account")
    p = b.command(
        accounts,
        "get",
        help="show the live state of accounts",
        description="Show each account's live state: balance, equity, P&L, open positions.",
        handler="_partner:accounts_get",
        parents=[*api, b.many],
        epilog=partner_epilog,
    )
    p = b.command(
        accounts,
        "update",
        help="change an account's stage, rules or metadata",
        description=(
            "Change the given fields of one account; the others stay as they are.\n"
            "--rules and --metadata are merged into the stored objects: the keys given\n"
            "replace the stored ones, a key given as null is removed, the other stored\n"
            "keys stay. --replace-rules and --replace-metadata store the object as given."
        ),
        handler="_partner:accounts_update",
        parents=[*api, b.rules],
        epilog=partner_epilog,
    )
    p.add_argument("account_id", metavar="ACCOUNT_ID", help="the account id (a UUID)")
    p.add_argument(
        "--stage", choices=("demo", "challenge", "funded"), help="the new stage (a label)"
    )
    p.add_argument(
        "--metadata", metavar="JSON", help="metadata keys to set (null removes one), a JSON object"
    )
    p.add_argument(
        "--replace-rules",
        action="store_true",
        help="store --rules/--rules-file as the whole rule set instead of merging",
    )
    p.add_argument(
        "--replace-metadata",
        action="store_true",
        help="store --metadata as the whole metadata instead of merging",
    )
    for name, verb, what in (
        ("close", "close", "Close (archive) accounts and freeze their wallets; idempotent."),
        (
            "reset",
            "reset",
            "Restart accounts at their starting balance (same ids, history kept). A reset\n"
            'after a reset resets again. Each account\'s metadata["opened_at"] is then set\n'
            "to the reset's time (the answer's updated_at), so evaluate judges the new\n"
            "attempt only: the trade feed keeps the fills of the earlier ones.",
        ),
    ):
        p = b.command(
            accounts,
            name,
            help=f"{verb} accounts (--yes needed for more than one)",
            description=f"{what} Open orders are cancelled first.",
            handler=f"_partner:accounts_{name}",
            parents=[*api, b.many],
            epilog=partner_epilog,
        )
        p.add_argument(
            "--yes", action="store_true", help=f"{verb} more than one account without refusing"
        )

    # -- trades -------------------------------------------------------------------------------
    trades = b.group(
        sub,
        "trades",
        help="list an account's fills, or export every fill of many accounts (tenant key)",
        description="The filled-trade feed of partner accounts (tenant key).",
    )
    p = b.command(
        trades,
        "list",
        help="list an account's fills, newest first",
        description="List an account's fills, newest first.",
        handler="_trades:trades_list",
        parents=api,
        epilog=partner_epilog,
    )
    p.add_argument("account_id", metavar="ACCOUNT_ID", help="the account id (a UUID)")
    p.add_argument("--side", choices=("BUY", "SELL"), type=str.upper, help="only BUY or SELL fills")
    p.add_argument("--market", metavar="MARKET_ID", help="only fills in this market")
    limit = p.add_mutually_exclusive_group()
    limit.add_argument(
        "--limit",
        metavar="N",
        type=_int_range(1),
        default=100,
        help="at most N fills, the newest (default 100)",
    )
    limit.add_argument("--all", action="store_true", help="every fill (use trades export for many)")
    p = b.command(
        trades,
        "export",
        help="write every fill of many accounts to Parquet, CSV or NDJSON; resumable",
        description=(
            "Write every fill of the accounts into DIR: part files and one _manifest.json.\n"
            "Run the same command again after an interruption and it resumes; run it later\n"
            "and it adds only the fills that are new since. Every fill ends up exactly once.\n"
            "Progress is shown on stderr when it is a terminal, else one summary line."
        ),
        handler="_trades:trades_export",
        parents=[b.connection, b.many, b.shard],
        epilog=_PARTNER_KEY,
    )
    p.add_argument("--out", metavar="DIR", required=True, help="the export directory")
    p.add_argument(
        "--format",
        choices=("parquet", "csv", "ndjson"),
        default="parquet",
        help='the part files\' format (default parquet: needs "polysim-async[parquet]")',
    )
    p.add_argument(
        "--page-size",
        metavar="N",
        type=_int_range(1, 500),
        default=500,
        help="fills per request, 1 to 500 (default 500)",
    )
    p.add_argument(
        "--part-size",
        metavar="N",
        type=_int_range(1),
        help=(
            "most fills in one part file, at least --page-size (default 100000); a part is"
            " also written every 30 s. Ctrl-C keeps every written part; the fills fetched"
            " since the last part are fetched again by the next run"
        ),
    )
    p.add_argument(
        "--concurrency",
        metavar="N",
        type=_int_range(1, 64),
        default=8,
        help="accounts fetched at once, within the tenant's rate budget (default 8)",
    )
    out = p.add_argument_group("output (the summary)").add_mutually_exclusive_group()
    for flag, const, text in (
        ("--table", None, "the summary line on stderr only, no data on stdout (the default)"),
        ("--json", "json", "also print the summary as one JSON document on stdout"),
        ("--jsonl", "jsonl", "also print the summary as one JSON line on stdout"),
    ):
        out.add_argument(flag, dest="summary", action="store_const", const=const, help=text)

    # -- evaluate, watch, monitor ---------------------------------------------------------------
    p = b.command(
        sub,
        "evaluate",
        help="judge accounts against their challenge rules",
        description=(
            "Judge each account against its rules: the rule set stored with the account\n"
            "(--rules adds to it or overrides its keys), every fill of its feed, and its\n"
            "live state as the one equity sample. Equity-based rules (losses, the profit\n"
            "target) are judged at that instant only. The account opened at\n"
            'metadata["opened_at"] when stored there (accounts create and reset store it),\n'
            "else --opened-at, else its oldest fill (with a warning: after a reset the\n"
            "feed still holds the earlier attempts' fills). It is judged at the server's\n"
            "time (the Date header of its answers: a sandbox's simulated clock), unless\n"
            "--now is given."
        ),
        handler="_evaluate:evaluate",
        parents=[*api, b.many, b.shard, b.rules],
        epilog=partner_epilog,
    )
    p.add_argument(
        "--now",
        metavar="TIME",
        type=_instant,
        help="judge at this ISO-8601 instant (default: the server's time, or the newest data)",
    )
    p.add_argument(
        "--opened-at",
        metavar="TIME",
        type=_instant,
        help="when the accounts opened, for those without metadata.opened_at",
    )
    p.add_argument(
        "--concurrency",
        metavar="N",
        type=_int_range(1, 64),
        default=8,
        help="accounts read at once, within the tenant's rate budget (default 8)",
    )
    p = b.command(
        sub,
        "watch",
        help="print new fills of accounts as they arrive, until Ctrl-C",
        description=(
            "Poll the accounts' trade feeds and print each new fill once, as it appears,\n"
            "oldest first per account, until Ctrl-C. Fills already there when it starts\n"
            "are not printed."
        ),
        handler="_trades:watch",
        parents=[*api, b.many, b.shard],
        epilog=partner_epilog,
    )
    p.add_argument(
        "--interval",
        metavar="SECONDS",
        type=_positive_float,
        default=5.0,
        help="seconds between polls of one account (default 5; longer if the budget requires)",
    )

    p = b.command(
        sub,
        "monitor",
        help="judge accounts live against their challenge rules, until all are decided",
        description=(
            "Judge each account live against its stored rule set, inside the tenant's rate\n"
            "budget: equity samples go to the accounts nearest a limit for how fast they\n"
            "move (none staler than the floor, each sampled right after its day boundary),\n"
            "new fills come from the trade feeds. Prints one line per fill, warning, breach,\n"
            "pass and close (--samples: every sample too). With --close-on-breach a breached\n"
            "account is closed at once. With --state FILE, resume from the checkpoint in FILE\n"
            "(the same high-water marks and day references) and keep it up to date, Ctrl-C\n"
            "included. Ends when every account is decided: exit 3 if one breached."
        ),
        handler="_monitor:monitor",
        parents=[*api, b.many, b.shard],
        epilog=partner_epilog,
    )
    p.add_argument(
        "--close-on-breach", action="store_true", help="close a breached account at once"
    )
    p.add_argument(
        "--state", metavar="FILE", help="resume from this checkpoint file and keep it up to date"
    )
    p.add_argument("--samples", action="store_true", help="print every equity sample too")

    # -- trader commands ------------------------------------------------------------------------
    executions = b.group(
        sub,
        "executions",
        help="a trader's fills as they happen (trader key)",
        description="The trader's execution feed (trader API, ps_live_ key).",
    )
    p = b.command(
        executions,
        "tail",
        help="print the trader's fills as they arrive, exactly once, until Ctrl-C",
        description=(
            "Print every fill of the key's owner as it arrives, in order, across\n"
            "disconnects. With --since FILE, start after the fills that FILE records\n"
            "(every fill from the newest when FILE does not exist yet) and save the\n"
            "position there after each fill and on exit, Ctrl-C included: run the same\n"
            "command again and each fill is printed exactly once across the runs."
        ),
        handler="_trader:executions_tail",
        parents=api,
        epilog=trader_epilog,
    )
    p.add_argument(
        "--since",
        metavar="CHECKPOINT_FILE",
        help="resume from this checkpoint file and keep it up to date",
    )
    p = b.command(
        sub,
        "equity",
        help="the trader's hourly equity curve as a table, JSON or a PNG chart",
        description=(
            "The trader's hourly equity snapshots, oldest first. With --plot, draw them\n"
            "instead (time against total value, with the API wallet's starting balance as\n"
            'a dashed line) into a PNG; this needs matplotlib: "polysim-async[plot]".'
        ),
        handler="_trader:equity",
        parents=api,
        epilog=trader_epilog,
    )
    p.add_argument(
        "--days",
        metavar="N",
        type=_int_range(1, 90),
        default=7,
        help="days of history, 1 to 90 (default 7)",
    )
    p.add_argument(
        "--wallet",
        metavar="all|api|ID",
        type=_wallet,
        help="which wallets: all, api or a wallet id (default: the API wallet)",
    )
    p.add_argument("--plot", metavar="FILE", help="write the chart to this PNG file")

    # -- local --------------------------------------------------------------------------------
    p = b.command(
        sub,
        "demo",
        help="run the prop-firm lifecycle on an in-process sandbox",
        description=(
            "Run the partner quickstart's lifecycle: register a trader, send a login link,\n"
            "create a $10,000 challenge with rules, let a simulated trader trade, read the\n"
            "state and every fill, judge the rules, then close (or reset) the account.\n"
            "It runs on an in-process sandbox and ignores POLYSIM_BASE_URL; it reaches\n"
            "another server only with --against, and asks before writing there."
        ),
        handler="_local:demo",
    )
    p.add_argument(
        "--days",
        type=_int_range(1, MAX_DAYS),
        default=3,
        metavar="N",
        help=f"simulated trading days, 1 to {MAX_DAYS} (default 3)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=7,
        metavar="S",
        help="seed of the sandbox and of the simulated trader (default 7)",
    )
    p.add_argument(
        "--against",
        type=_url,
        metavar="URL",
        help="run against this server instead (it creates a real trader and account there)",
    )
    p.add_argument(
        "--api-key",
        metavar="KEY",
        help="tenant key for --against (default: the POLYSIM_TENANT_KEY variable)",
    )
    p.add_argument("--yes", action="store_true", help="with --against, do not ask for confirmation")
    p.add_argument(
        "--allow-insecure",
        action="store_true",
        help="with --against, permit plain http to a host that is not loopback",
    )
    p = b.command(
        sub,
        "sandbox",
        help="serve a local PolySimulator sandbox until Ctrl-C",
        description=(
            "Serve an in-memory PolySimulator (partner and trader API, execution\n"
            "WebSocket, control API under /_sandbox/) and print the environment\n"
            "variables for the partner role and for the trader role."
        ),
        handler="_local:sandbox",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on (default 127.0.0.1; 0.0.0.0 for every interface)",
    )
    p.add_argument(
        "--port",
        type=_int_range(0, 65535),
        default=8000,
        help="TCP port; 0 picks a free one (default 8000)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for ids, keys, markets and the price walk (default 0)",
    )
    p.add_argument(
        "--no-rate-limits",
        action="store_true",
        help="do not enforce the documented partner and trader rate limits",
    )
    p.add_argument(
        "--frozen-clock",
        action="store_true",
        help="simulated time moves only through the control API (/_sandbox/clock/advance)",
    )
    return parser


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the ``polysim`` command.

    Parses ``argv`` (default ``sys.argv[1:]``) with the standard library only;
    ``--help``, ``--version`` and usage errors return without importing the
    client. A command is then run by ``polysim_async.cli``.

    Returns:
        The exit code (see ``polysim --help``). Nothing is raised and no
        traceback is printed unless ``--debug`` is given; a KeyboardInterrupt
        (Ctrl-C) while parsing or while the command's code is imported, before
        the command's own signal handling starts, is exit code 130.
    """
    err = stderr or sys.stderr
    try:
        try:
            with contextlib.redirect_stdout(stdout or sys.stdout):  # where --help goes
                args, unknown = build_parser().parse_known_args(argv)
        except SystemExit as exc:  # --help and --version
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        if unknown:  # blamed on the command that was given them, not on "polysim"
            prog = getattr(args, "command_prog", "polysim")
            raise CommandError(
                f"{prog}: error: unrecognized arguments: {' '.join(unknown)} (see {prog} --help)",
                EXIT_USAGE,
            )
        # Imported only now (aiohttp, asyncio: half a second), so --help stays light.
        from polysim_async.cli._main import run

        return run(args, list(sys.argv[1:] if argv is None else argv), stdout=stdout, stderr=stderr)
    except CommandError as exc:
        err.write(_one_line(str(exc)) + "\n")
        err.flush()
        return exc.code
    except KeyboardInterrupt:  # before run() installs its handlers, or after they are gone
        with contextlib.suppress(AttributeError, OSError, ValueError):  # no stderr (2>&-)
            err.write("polysim: interrupted\n")
            err.flush()
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
