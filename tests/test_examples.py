"""The examples and the seeds' own programs run unchanged against the sandbox."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from pathlib import Path

import pytest

from polysim_async.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent


async def _run_example(name: str, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / name),
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode()


async def test_quickstart_runs_unchanged_against_the_sandbox() -> None:
    async with Sandbox(seed=11) as sb:
        env = {"POLYSIM_BASE_URL": sb.url, "POLYSIM_TENANT_KEY": sb.tenant_key}
        code, out = await _run_example("quickstart.py", env)
        assert code == 0, out
        assert "created=True" in out
        assert "magic link dispatched" in out
        assert "0 fills" in out
        assert "closed: status=closed" in out
        assert "reset: status=active balance=10000.00" in out
        assert [m["email"] for m in sb.outbox()] == ["trader@example.com"]
        # A second run replays the registration (200, created=False).
        code, out = await _run_example("quickstart.py", env)
        assert code == 0, out
        assert "created=False" in out


async def test_the_seed_quickstart_program_runs_unchanged_with_trading_by_control_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("requests")
    async with Sandbox(seed=12, frozen_clock=True) as sb:
        monkeypatch.setenv("POLYSIM_TENANT_KEY", sb.tenant_key)
        monkeypatch.setenv("POLYSIM_BASE_URL", sb.url)
        sys.modules.pop("tests.seed_programs.partner_quickstart", None)
        seed = importlib.import_module("tests.seed_programs.partner_quickstart")

        uid = await asyncio.to_thread(seed.register_trader, "pc_trader_123", "trader@example.com")
        await asyncio.to_thread(seed.send_login, uid)
        acc = await asyncio.to_thread(seed.create_challenge, uid, "pc_challenge_001")
        # "... trader trades in the native UI ...": here, through the control API.
        for _ in range(3):
            await sb.place_order(
                account_id=acc, market_id=sb.market_id, side="BUY", outcome="Yes",
                quantity="10", order_type="market", price="0.99",
            )  # fmt: skip
            sb.advance(hours=1)
        state, fills = await asyncio.to_thread(seed.evaluate, acc)

    assert state["account_id"] == acc
    assert len(fills) == 3
    assert {f["side"] for f in fills} == {"BUY"}
    assert fills[0]["filled_at"] > fills[-1]["filled_at"]  # newest first
    assert len(sb.outbox()) == 1
