"""``polysim evaluate ID...``: each account judged by the rules engine, exit 3 if one failed.

For each account: its rule set is the stored ``rules`` object with ``--rules``
keys laid over it; its fills are the whole trade feed; its money is one
account-state read, the verdict's one equity sample. The verdict is
:func:`polysim_async.rules.evaluate` at ``--now`` (default: this machine's
clock, or the newest fill or state time when later, as on a sandbox whose
simulated clock runs ahead).
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone
from typing import Any

from polysim_async_cli import EXIT_CHECK_FAILED

from ..models.partner import AccountState, Trade
from ..rules import RuleSet, Verdict, sample_of
from ..rules import evaluate as judge_account
from ._inputs import account_ids, rules_object
from ._main import Context
from ._output import Column, Painted

__all__ = ["evaluate", "judge", "opened_at_of"]


def opened_at_of(state: AccountState, fills: list[Trade], fallback: datetime | None) -> datetime:
    """When the attempt started: ``metadata["opened_at"]``, else ``fallback``, else the oldest fill.

    An account without either and without fills opened at its state's time.
    """
    stored = (state.metadata or {}).get("opened_at")
    if isinstance(stored, str):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(stored.replace("Z", "+00:00"))
            if parsed.tzinfo is not None:
                return parsed
    if fallback is not None:
        return fallback
    oldest = min((t.filled_at for t in fills), default=None)
    return oldest or state.updated_at or datetime.now(timezone.utc)


def judge(
    state: AccountState,
    fills: list[Trade],
    overrides: dict[str, Any],
    *,
    opened_at: datetime | None = None,
    now: datetime | None = None,
) -> Verdict:
    """The verdict of one account from its state (its one sample) and every fill.

    Raises:
        InvalidArgumentError: the stored rules, or the rules with ``overrides``, are invalid.
    """
    rules = RuleSet.from_wire({**RuleSet.from_wire(state.rules).to_wire(), **overrides})
    newest = [t.filled_at for t in fills[:1]] + ([state.updated_at] if state.updated_at else [])
    at = now or max([datetime.now(timezone.utc), *newest])
    return judge_account(
        rules,
        starting_balance=state.starting_balance,
        opened_at=opened_at_of(state, fills, opened_at),
        fills=fills,
        samples=[sample_of(state, at=at)],
        now=at,
    )


def _breaches(v: Verdict) -> str:
    return ",".join(f"{b.rule}({b.value}/{b.limit})" for b in v.breaches) or "-"


_COLORS = {"passed": "green", "failed": "red", "in_progress": "yellow"}
_COLUMNS: tuple[Column, ...] = (
    ("ACCOUNT_ID", lambda r: r[0]),
    ("STATUS", lambda r: Painted(r[1].status, _COLORS[r[1].status])),
    ("EQUITY", lambda r: r[1].metrics.equity),
    ("PROFIT", lambda r: r[1].metrics.profit),
    ("PROFIT_PCT", lambda r: f"{r[1].metrics.profit_pct:.2f}"),
    ("BREACHES", lambda r: _breaches(r[1])),
    ("GATES", lambda r: ",".join(r[1].gates) or "-"),
    ("WARNINGS", lambda r: ",".join(f"{w.rule}({w.used_pct:.0f}%)" for w in r[1].warnings) or "-"),
    ("FILLS", lambda r: r[1].metrics.fills),
    ("TRADING_DAYS", lambda r: r[1].metrics.trading_days),
)


async def evaluate(ctx: Context) -> int:
    """``polysim evaluate ID... [--rules|--rules-file]``: exit 3 when an account failed."""
    args = ctx.args
    ids = account_ids(ctx)
    overrides = rules_object(args) or {}

    async with ctx.client("partner") as client:

        async def judged(account_id: str) -> Verdict:
            # Judged as soon as read: only verdicts are kept, not every account's fills.
            state = await client.partner.accounts.get(account_id)
            feed = client.partner.accounts.trades(account_id, prefetch=False)
            fills = [trade async for trade in feed]
            return judge(state, fills, overrides, opened_at=args.opened_at, now=args.now)

        results = await ctx.each(
            ids, judged, concurrency=args.concurrency, progress="accounts evaluated"
        )
    verdicts: list[tuple[str, Verdict]] = []
    for account_id, result in results:
        if isinstance(result, Verdict):
            verdicts.append((account_id, result))
            if result.status == "failed":
                ctx.record(EXIT_CHECK_FAILED)
        else:
            ctx.fail(account_id, result)  # unreadable, or its stored rules are invalid
    records = [{"account_id": aid, "verdict": v} for aid, v in verdicts]
    if ctx.out.format == "table":
        ctx.out.table(_COLUMNS, verdicts)
    else:
        ctx.out.records(records, ())
    return ctx.code
