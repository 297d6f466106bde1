"""The ``polysim`` command: the demo on a sandbox, against a configured server, and ``sandbox``."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from polysim_async import EquityPoint, Rules, cli
from polysim_async.sandbox import Sandbox


def _point(value: str) -> EquityPoint:
    v = Decimal(value)
    return EquityPoint(
        timestamp=datetime(2026, 6, 1, tzinfo=timezone.utc),
        cash_balance=v,
        position_value=Decimal(0),
        total_value=v,
        pnl=v - 10000,
    )


RULES = Rules(profit_target_pct=Decimal(20), max_drawdown_pct=Decimal(10))


def test_evaluate_passes_when_target_reached_within_drawdown() -> None:
    result = cli.evaluate(Decimal(10000), Decimal(12000), [_point("10500"), _point("10000")], RULES)
    assert result.verdict == "passed"
    assert result.profit_pct == Decimal("20.00")
    # peak 10500 -> 10000 is a 4.76% fall from the peak
    assert result.max_drawdown_pct == Decimal("4.76")


def test_evaluate_fails_on_a_drawdown_past_the_cap_even_if_profitable_now() -> None:
    curve = [_point("11000"), _point("9800"), _point("12500")]
    result = cli.evaluate(Decimal(10000), Decimal(12500), curve, RULES)
    assert result.max_drawdown_pct == Decimal("10.91")
    assert result.verdict == "failed"


def test_evaluate_in_progress_and_without_rules() -> None:
    assert cli.evaluate(Decimal(10000), Decimal(10100), [], RULES).verdict == "in progress"
    assert cli.evaluate(Decimal(10000), Decimal(90000), [], None).verdict == "in progress"


def test_demo_runs_the_whole_lifecycle_on_an_in_process_sandbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("POLYSIM_BASE_URL", "POLYSIM_TENANT_KEY", "POLYSIM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    lines: list[str] = []
    assert cli.main(["demo", "--days", "2", "--seed", "3"], out=lines.append) == 0
    text = "\n".join(lines)
    for step in range(1, 9):
        assert f"{step}. " in text
    assert "outbox: to trader@example.com" in text
    assert "created=True" in text
    assert "48 hourly equity points" in text
    assert "fills in 1 pages" in text
    assert "closed: status=closed" in text or "reset: status=active" in text


async def test_demo_runs_against_a_configured_server(monkeypatch: pytest.MonkeyPatch) -> None:
    async with Sandbox(seed=5) as sb:
        monkeypatch.setenv("POLYSIM_BASE_URL", sb.url)
        monkeypatch.setenv("POLYSIM_TENANT_KEY", sb.tenant_key)
        lines: list[str] = []
        assert await cli._demo(2, 5, lines.append) == 0
        url = sb.url
    text = "\n".join(lines)
    assert text.startswith(f"polysim demo against {url}")
    assert "202 accepted" in text
    assert "0 fills in 1 pages" in text
    assert "current equity only" in text
    assert "closed: status=closed" in text


async def test_sandbox_command_prints_url_and_keys_then_serves_until_cancelled() -> None:
    lines: list[str] = []
    args = cli._parser().parse_args(["sandbox", "--port", "0", "--seed", "4"])
    task = asyncio.create_task(cli._serve(args, lines.append))
    for _ in range(200):
        if len(lines) >= 4:
            break
        await asyncio.sleep(0.005)
    assert lines[1].startswith("export POLYSIM_BASE_URL=http://127.0.0.1:")
    assert lines[2].startswith("export POLYSIM_TENANT_KEY=")
    assert lines[3].startswith("export POLYSIM_API_KEY=ps_live_")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_demo_rejects_a_bad_day_count(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["demo", "--days", "0"])
    assert exc.value.code == 2
    assert "--days" in capsys.readouterr().err
