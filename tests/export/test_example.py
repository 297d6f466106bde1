"""examples/export_fleet.py runs unchanged against the sandbox, then adds only new fills."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from ._fleet import by_trade, fleet, read_parquet, typed_row

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "export_fleet.py"


async def run_example(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_the_export_example_exports_then_increments(tmp_path: Path) -> None:
    out = str(tmp_path / "fills")
    async with fleet([120, 35]) as f:
        env = {"POLYSIM_BASE_URL": f.sb.url, "POLYSIM_TENANT_KEY": f.sb.tenant_key}
        code, stdout, stderr = await run_example(env, out, *f.ids)
        assert code == 0, stdout + stderr
        assert "wrote 155 new fills in " in stdout
        assert "2/2 accounts, 155 fills" in stderr  # the status line

        f.sb.generate_fills(5, account_id=f.ids[1])
        code, stdout, stderr = await run_example(env, out, *f.ids)
        assert code == 0, stdout + stderr
        assert "wrote 5 new fills in " in stdout
        assert "holds 160 fills" in stdout

        code, stdout, _ = await run_example(env, out, "00000000-0000-4000-8000-000000000000")
        assert code == 1 and "1 of 1 account(s) failed" in stdout
        truth = await f.truth()
    assert by_trade(read_parquet(Path(out))) == {t.trade_id: typed_row(a, t) for a, t in truth}
