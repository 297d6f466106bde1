"""``polysim traders ...`` and ``polysim accounts ...``: the partner API's provisioning calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from polysim_async_cli import EXIT_USAGE, CommandError

from ..models.partner import AccountState, OpenPosition
from ._inputs import account_ids, json_object, rules_object
from ._main import Context
from ._output import Column

__all__ = [
    "accounts_close",
    "accounts_create",
    "accounts_get",
    "accounts_reset",
    "accounts_update",
    "traders_get",
    "traders_login_link",
    "traders_register",
]

ACCOUNT_COLUMNS: tuple[Column, ...] = (
    ("ACCOUNT_ID", lambda a: a.account_id),
    ("EXTERNAL_ID", lambda a: a.external_id),
    ("STAGE", lambda a: a.stage),
    ("STATUS", lambda a: a.status),
    ("BALANCE", lambda a: a.balance),
    ("EQUITY", lambda a: a.equity),
    ("UNREALIZED_PNL", lambda a: a.unrealized_pnl),
    ("REALIZED_PNL", lambda a: a.realized_pnl),
    ("POSITIONS", lambda a: len(a.open_positions)),
)
_POSITION_COLUMNS: tuple[Column, ...] = (
    ("ACCOUNT_ID", lambda p: p[0]),
    ("MARKET_ID", lambda p: p[1].market_id),
    ("OUTCOME", lambda p: p[1].outcome),
    ("QUANTITY", lambda p: p[1].quantity),
    ("AVG_ENTRY_PRICE", lambda p: p[1].avg_entry_price),
    ("CURRENT_PRICE", lambda p: p[1].current_price),
    ("MARKET_VALUE", lambda p: p[1].market_value),
    ("UNREALIZED_PNL", lambda p: p[1].unrealized_pnl),
)


async def traders_register(ctx: Context) -> int:
    """``polysim traders register EXTERNAL_ID EMAIL [--metadata JSON]``."""
    metadata = json_object("--metadata", ctx.args.metadata)
    async with ctx.client("partner") as client:
        user = await client.partner.users.register(
            ctx.args.external_id, ctx.args.email, metadata=metadata
        )
    ctx.out.records([user], (), one=True)
    return ctx.code


async def traders_get(ctx: Context) -> int:
    """``polysim traders get USER_ID``."""
    async with ctx.client("partner") as client:
        user = await client.partner.users.get(ctx.args.user_id)
    ctx.out.records([user], (), one=True)
    return ctx.code


async def traders_login_link(ctx: Context) -> int:
    """``polysim traders login-link USER_ID [--redirect URL]``."""
    async with ctx.client("partner") as client:
        link = await client.partner.users.send_login_link(
            ctx.args.user_id, redirect_url=ctx.args.redirect
        )
    answer = {"user_id": ctx.args.user_id, "status": link.status}
    ctx.out.records([answer], (), one=True)
    return ctx.code


async def accounts_create(ctx: Context) -> int:
    """``polysim accounts create --user ID --external-id ID --stage S --balance N ...``."""
    args = ctx.args
    rules = rules_object(args)
    metadata = json_object("--metadata", args.metadata)
    async with ctx.client("partner") as client:
        account = await client.partner.accounts.create(
            user_id=args.user,
            external_id=args.external_id,
            stage=args.stage,
            starting_balance=args.balance,
            metadata=metadata,
            rules=rules,
        )
    ctx.out.records([account], (), one=True)
    return ctx.code


async def accounts_update(ctx: Context) -> int:
    """``polysim accounts update ID [--stage] [--rules|--rules-file] [--metadata]``."""
    args = ctx.args
    rules = rules_object(args)
    metadata = json_object("--metadata", args.metadata)
    if args.stage is None and rules is None and metadata is None:
        raise CommandError(
            "polysim accounts update: nothing to change: give --stage, --rules,"
            " --rules-file or --metadata",
            EXIT_USAGE,
        )
    async with ctx.client("partner") as client:
        state = await client.partner.accounts.update(
            args.account_id, stage=args.stage, metadata=metadata, rules=rules
        )
    _states(ctx, [state], one=True)
    return ctx.code


async def accounts_get(ctx: Context) -> int:
    """``polysim accounts get ID...``: live state, one row per account."""
    return await _each_account(ctx, lambda client: client.partner.accounts.get)


async def accounts_close(ctx: Context) -> int:
    """``polysim accounts close ID... [--yes]``."""
    return await _each_account(ctx, lambda client: client.partner.accounts.close, confirm="close")


async def accounts_reset(ctx: Context) -> int:
    """``polysim accounts reset ID... [--yes]``."""
    return await _each_account(ctx, lambda client: client.partner.accounts.reset, confirm="reset")


async def _each_account(
    ctx: Context,
    call: Callable[[Any], Callable[[str], Awaitable[AccountState]]],
    *,
    confirm: str | None = None,
) -> int:
    """Run one account call over every account given; print the states that came back."""
    ids = account_ids(ctx)
    if confirm and len(ids) > 1 and not ctx.args.yes:
        raise CommandError(
            f"polysim {ctx.name}: refusing to {confirm} {len(ids)} accounts without --yes",
            EXIT_USAGE,
        )
    async with ctx.client("partner") as client:
        results = await ctx.each(ids, call(client), progress="accounts")
    states = []
    for account_id, result in results:
        if isinstance(result, AccountState):
            states.append(result)
        else:
            ctx.fail(account_id, result)
    _states(ctx, states)
    return ctx.code


def _states(ctx: Context, states: list[AccountState], *, one: bool = False) -> None:
    """Account states as rows, then (in a table) their open positions."""
    ctx.out.records(states, ACCOUNT_COLUMNS, one=one and ctx.out.format == "json")
    if ctx.out.format == "table":
        positions: list[tuple[str, OpenPosition]] = [
            (s.account_id, p) for s in states for p in s.open_positions
        ]
        if positions:
            ctx.out.line()
            ctx.out.table(_POSITION_COLUMNS, positions)
