"""examples/evaluate_accounts.py against the sandbox: a breached, a passed and a quiet account."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import msgspec

from polysim_async import Client, Verdict
from polysim_async.sandbox import Sandbox

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

RULES = {"profit_target_pct": 10, "max_drawdown_pct": 5}


async def _run_example(name: str, env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / name),
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode()


async def test_the_example_judges_each_account_from_its_stored_rules_and_fills() -> None:
    async with Sandbox(seed=21, frozen_clock=True, random_walk=False) as sb:
        async with Client(sb.tenant_key, sb.url) as client:
            user = await client.partner.users.register("trader_rules", "rules@example.com")
            ids = []
            for name in ("losing", "winning", "quiet"):
                account = await client.partner.accounts.create(
                    user_id=user.user_id,
                    external_id=f"challenge_{name}",
                    stage="challenge",
                    starting_balance="10000.00",
                    rules=RULES,
                )
                ids.append(account.account_id)
        losing, winning, quiet = ids
        opened = sb.now()
        lose_market, win_market = sb.market_ids[0], sb.market_ids[1]
        for account_id, market in ((losing, lose_market), (winning, win_market)):
            sb.advance(minutes=5)
            await sb.place_order(
                account_id=account_id, market_id=market, side="BUY", outcome="Yes",
                quantity="4000", order_type="market", price="0.99",
            )  # fmt: skip
        sb.advance(minutes=5)
        sb.set_price(lose_market, "0.30")  # 4,000 x (0.30 - 0.51): equity ~9,160 < 9,500
        sb.set_price(win_market, "0.80")  # 4,000 x (0.80 - 0.51): equity ~11,160 >= 11,000
        env = {"POLYSIM_BASE_URL": sb.url, "POLYSIM_TENANT_KEY": sb.tenant_key}
        # The sandbox runs on simulated time: judge as of its clock, opened at its start.
        when = ["--now", sb.now().isoformat(), "--opened-at", opened.isoformat()]

        code, out = await _run_example("evaluate_accounts.py", env, *ids, *when)
        assert code == 0, out
        lines = {line.split()[0]: line for line in out.splitlines()}
        assert lines[losing].split()[1] == "failed"
        # Judged at the read (after the price moved), against the static floor 9,500.
        assert f"breach=max_loss@{sb.now().isoformat()}" in lines[losing]
        assert "limit=9500" in lines[losing]
        assert lines[winning].split()[1] == "passed"
        assert lines[quiet].split()[1] == "in_progress"
        assert "gates=profit_target" in lines[quiet] and "fills=0" in lines[quiet]

        # Rules stored with the account can be extended from the command line, and the
        # verdicts come out as JSON.
        code, out = await _run_example(
            "evaluate_accounts.py", env, winning, quiet, *when,
            "--rules", '{"min_trading_days": 2}', "--json",
        )  # fmt: skip
        assert code == 0, out
        verdicts = {}
        for line in out.splitlines():
            row = msgspec.json.decode(line)
            verdicts[row["account_id"]] = msgspec.convert(row["verdict"], Verdict, strict=False)
        assert verdicts[winning].status == "in_progress"
        assert verdicts[winning].gates == ("min_trading_days",)
        assert verdicts[winning].metrics.trading_days == 1
        assert verdicts[quiet].gates == ("profit_target", "min_trading_days")
