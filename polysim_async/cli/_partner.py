"""``polysim traders ...`` and ``polysim accounts ...``: the partner API's provisioning calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import msgspec

from polysim_async_cli import EXIT_USAGE, CommandError

from .._errors import InvalidArgumentError, PolySimError
from ..models.partner import AccountState, OpenPosition
from ..rules import RuleSet
from ._inputs import account_ids, json_object, rules_object
from ._main import Context, ServerClock
from ._output import Column

#: The metadata key ``evaluate`` reads an attempt's start from.
OPENED_AT = "opened_at"

__all__ = [
    "OPENED_AT",
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
    if user.metadata is None and metadata is not None and user.created:
        # The answer does not echo it: show what was stored (a replay stores nothing).
        user = msgspec.structs.replace(user, metadata=metadata)
    ctx.out.records([user], (), one=True)
    return ctx.code


async def traders_get(ctx: Context) -> int:
    """``polysim traders get USER_ID``."""
    async with ctx.client("partner") as client:
        user = await client.partner.users.get(ctx.args.user_id)
    # "created" says what a register call did; a read did not create anything.
    fields = {k: v for k, v in msgspec.structs.asdict(user).items() if k != "created"}
    ctx.out.records([fields], (), one=True)
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
    """``polysim accounts create --user ID --external-id ID --stage S --balance N ...``.

    Unless ``--metadata`` holds ``opened_at``, it is then stored (PATCH) as the
    server's time of the creation (the ``Date`` of the create answer), so
    ``evaluate`` judges this attempt from its start.
    """
    args = ctx.args
    rules = rules_object(ctx)
    metadata = json_object("--metadata", args.metadata)
    clock = ServerClock()
    async with ctx.client("partner", trace_configs=[clock.trace_config()]) as client:
        account = await client.partner.accounts.create(
            user_id=args.user,
            external_id=args.external_id,
            stage=args.stage,
            starting_balance=args.balance,
            metadata=metadata,
            rules=rules,
        )
        stored = dict(account.metadata or {})
        if OPENED_AT not in stored:
            stored[OPENED_AT] = _iso(clock.now())
            try:
                state = await client.partner.accounts.update(account.account_id, metadata=stored)
            except PolySimError as exc:
                ctx.out.records([account], (), one=True)
                ctx.fail(account.account_id, exc)
                ctx.out.message(
                    f"polysim {ctx.name}: the account was created, but metadata.opened_at was"
                    " not stored: evaluate will judge it from its oldest fill"
                )
                return ctx.code
            account = msgspec.structs.replace(account, metadata=state.metadata)
    ctx.out.records([account], (), one=True)
    return ctx.code


def _iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).isoformat()


def _merged(stored: Mapping[str, Any] | None, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` laid over ``stored``: its keys replace, a ``None`` (JSON null) removes."""
    merged = {**(stored or {}), **given}
    return {k: v for k, v in merged.items() if v is not None}


async def accounts_update(ctx: Context) -> int:
    """``polysim accounts update ID [--stage] [--rules|--rules-file] [--metadata] [--replace-*]``.

    ``--rules`` and ``--metadata`` are merged into the stored objects (read
    first, then the merged object is sent) unless ``--replace-rules`` /
    ``--replace-metadata``.
    """
    args = ctx.args
    rules = rules_object(ctx)
    metadata = json_object("--metadata", args.metadata)
    if args.stage is None and rules is None and metadata is None:
        raise CommandError(
            "polysim accounts update: nothing to change: give --stage, --rules,"
            " --rules-file or --metadata",
            EXIT_USAGE,
        )
    for flag, given in (("--replace-rules", rules), ("--replace-metadata", metadata)):
        if getattr(args, flag[2:].replace("-", "_")) and given is None:
            raise CommandError(f"polysim accounts update: {flag} without the object", EXIT_USAGE)
    async with ctx.client("partner") as client:
        merge_rules = rules is not None and not args.replace_rules
        merge_metadata = metadata is not None and not args.replace_metadata
        if merge_rules or merge_metadata:
            current = await client.partner.accounts.get(args.account_id)
            if merge_rules and rules is not None:
                rules = _merged(current.rules, rules)
                try:
                    RuleSet.from_wire(rules)
                except InvalidArgumentError as exc:
                    raise CommandError(f"the merged rules: {exc}", EXIT_USAGE) from None
            if merge_metadata and metadata is not None:
                metadata = _merged(current.metadata, metadata)
        if rules is not None and args.replace_rules:
            rules = _merged(None, rules)  # a null rule is no rule
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
    """``polysim accounts reset ID... [--yes]``.

    After each reset, ``metadata.opened_at`` is set to the reset's time (the
    answer's ``updated_at``, the server's clock; its ``Date`` when absent), the
    rest of the metadata kept, and a line on stderr says so.
    """
    clock = ServerClock()

    def reset(client: Any) -> Callable[[str], Awaitable[AccountState]]:
        async def one(account_id: str) -> AccountState:
            state: AccountState = await client.partner.accounts.reset(account_id)
            opened = _iso(state.updated_at or clock.now())
            metadata = {**(state.metadata or {}), OPENED_AT: opened}
            try:
                stamped: AccountState = await client.partner.accounts.update(
                    account_id, metadata=metadata
                )
            except PolySimError as exc:  # reset all the same: resetting again is no fix
                ctx.fail(account_id, exc)
                ctx.out.message(
                    f"polysim {ctx.name}: {account_id}: reset, but metadata.opened_at was not"
                    f" stored: set it with accounts update {account_id} --metadata"
                    f' \'{{"opened_at": "{opened}"}}\''
                )
                return state
            ctx.out.message(
                f"polysim {ctx.name}: {account_id}: metadata.opened_at set to {opened}"
                " (evaluate judges the new attempt from then)"
            )
            return stamped

        return one

    return await _each_account(
        ctx, reset, confirm="reset", options={"trace_configs": [clock.trace_config()]}
    )


async def _each_account(
    ctx: Context,
    call: Callable[[Any], Callable[[str], Awaitable[AccountState]]],
    *,
    confirm: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> int:
    """Run one account call over every account given; print the states that came back."""
    ids = account_ids(ctx)
    if confirm and len(ids) > 1 and not ctx.args.yes:
        raise CommandError(
            f"polysim {ctx.name}: refusing to {confirm} {len(ids)} accounts without --yes",
            EXIT_USAGE,
        )
    async with ctx.client("partner", **(options or {})) as client:
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
