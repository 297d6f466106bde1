"""One-shot verdicts for a list of prop-firm accounts, from their stored rules.

For each account: its rule set comes from the account's stored ``rules`` (plus
``--rules``, a JSON object whose keys override or add to them), its fills from
the trade feed (every account pulled at once inside the client's rate budget),
and its money from one account-state read, taken as a sample at ``--now``
(default: this machine's clock, UTC; pass the sandbox's simulated time when
judging sandbox accounts).

A one-shot verdict sees one sample of equity: the current state. Equity-based
rules (maximum and daily loss, the profit target) are judged at that instant
only, so a loss that came and went is not seen; watch the fleet live for that.

When the account opened: ``metadata["opened_at"]`` if your backend stores it
there (ISO 8601), else ``--opened-at``, else the oldest fill (or the state's
time for an account without fills).

Needs POLYSIM_TENANT_KEY (and POLYSIM_BASE_URL unless you target production).

Usage: python evaluate_accounts.py ACCOUNT_ID [ACCOUNT_ID ...] [--rules JSON]
       [--opened-at ISO] [--now ISO] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from datetime import datetime, timezone
from typing import Any

import msgspec

from polysim_async import AccountState, Client, RuleSet, Trade, Verdict, evaluate, sample_of


def opened_at_of(
    state: AccountState, fills: list[Trade], fallback: datetime | None, now: datetime
) -> datetime:
    """When the attempt started (see the module docstring for the order of sources)."""
    stored = (state.metadata or {}).get("opened_at")
    if isinstance(stored, str):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(stored.replace("Z", "+00:00"))
            if parsed.tzinfo is not None:
                return parsed
    if fallback is not None:
        return fallback
    return min((t.filled_at for t in fills), default=now)


def judge(
    state: AccountState,
    fills: list[Trade],
    overrides: dict[str, Any],
    opened_at: datetime | None,
    now: datetime,
) -> Verdict:
    """The verdict of one account at ``now`` from its state (read at ``now``) and every fill."""
    stored = RuleSet.from_wire(state.rules)
    rules = RuleSet.from_wire({**stored.to_wire(), **overrides})
    return evaluate(
        rules,
        starting_balance=state.starting_balance,
        opened_at=opened_at_of(state, fills, opened_at, now),
        fills=fills,
        samples=[sample_of(state, at=now)],
        now=now,
    )


def describe(account_id: str, verdict: Verdict) -> str:
    """One line per account."""
    m = verdict.metrics
    parts = [f"{account_id} {verdict.status}", f"equity={m.equity}", f"profit={m.profit}"]
    parts += [f"breach={b.rule}@{b.at.isoformat()} value={b.value} limit={b.limit}"
              for b in verdict.breaches]  # fmt: skip
    if verdict.gates:
        parts.append("gates=" + ",".join(verdict.gates))
    parts += [f"warning={w.rule}({w.used_pct:.0f}%)" for w in verdict.warnings]
    parts.append(f"fills={m.fills} trading_days={m.trading_days}")
    return " ".join(parts)


async def main(
    accounts: list[str],
    overrides: dict[str, Any],
    opened_at: datetime | None,
    now: datetime | None,
    as_json: bool,
) -> int:
    async with Client() as client:  # key and URL from POLYSIM_TENANT_KEY / POLYSIM_BASE_URL
        fills: dict[str, list[Trade]] = {aid: [] for aid in accounts}

        async def pull() -> None:
            # Read to the end (the pairs of different accounts interleave).
            async for account_id, trade in client.partner.accounts.trades_many(accounts):
                fills[account_id].append(trade)

        states, _ = await asyncio.gather(
            asyncio.gather(*(client.partner.accounts.get(aid) for aid in accounts)), pull()
        )
    now = now or datetime.now(timezone.utc)
    for state in states:
        verdict = judge(state, fills[state.account_id], overrides, opened_at, now)
        if as_json:
            line = msgspec.json.encode({"account_id": state.account_id, "verdict": verdict})
            print(line.decode(), flush=True)
        else:
            print(describe(state.account_id, verdict), flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("accounts", nargs="+", help="partner account ids")
    parser.add_argument("--rules", default="{}", help="JSON object of rule parameters")
    parser.add_argument("--opened-at", type=datetime.fromisoformat, default=None)
    parser.add_argument("--now", type=datetime.fromisoformat, default=None)
    parser.add_argument("--json", action="store_true", help="one JSON verdict per line")
    args = parser.parse_args()
    overrides = msgspec.json.decode(args.rules.encode())
    if not isinstance(overrides, dict):
        parser.error("--rules must be a JSON object")
    sys.exit(asyncio.run(main(args.accounts, overrides, args.opened_at, args.now, args.json)))
