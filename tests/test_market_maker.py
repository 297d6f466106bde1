"""``examples/market_maker.py`` against the sandbox: quotes, re-quotes, fills once, dies safely.

The bot runs as a real process. The first test bounds it by fills (``--max-fills``),
not by time: every step waits for an observable event (a line it prints, an order
the server holds) with a generous timeout. The second runs the sandbox in
another process on its flowing clock, SIGKILLs the bot, and waits for the
sandbox's heartbeat lapse to cancel the orders the bot left.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import polysim_async as ps

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "market_maker.py"
WAIT = 30.0  # generous: a loaded machine is slow, never wrong


def bot_env(url: str, key: str) -> dict[str, str]:
    env = {**os.environ, "POLYSIM_API_KEY": key, "POLYSIM_BASE_URL": url}
    env.pop("POLYSIM_TENANT_KEY", None)
    return env


async def start_bot(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def reap(bot: asyncio.subprocess.Process) -> None:
    """Kill the bot if it is still running (a failed test leaves no process behind)."""
    if bot.returncode is None:
        bot.kill()
        await bot.wait()


async def line_with(proc: asyncio.subprocess.Process, text: str, seen: list[str]) -> str:
    """Read the bot's output until a line containing ``text`` (all lines kept in ``seen``)."""
    assert proc.stdout is not None

    async def go() -> str:
        while True:
            raw = await proc.stdout.readline()  # type: ignore[union-attr]
            assert raw, f"the bot ended before printing {text!r}:\n" + "\n".join(seen)
            line = raw.decode().rstrip()
            seen.append(line)
            if text in line:
                return line

    return await asyncio.wait_for(go(), WAIT)


async def resting(client: ps.Client, market_id: str) -> list[tuple[str, Decimal | None]]:
    """The bot's pending orders in ``market_id``: (outcome, limit price), sorted."""
    rows = [
        row
        async for row in client.orders.list(market_id=market_id)
        if row.status is ps.OrderStatus.PENDING
    ]
    return sorted((row.outcome, row.limit_price) for row in rows)


async def until(predicate: Any, timeout: float = WAIT) -> None:
    async def go() -> None:
        while not await predicate():  # noqa: ASYNC110 - polls the server
            await asyncio.sleep(0.02)

    await asyncio.wait_for(go(), timeout)


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[Any, ps.Client]]:
    from polysim_async.sandbox import Sandbox

    async with (
        Sandbox(seed=17, random_walk=False, rate_limits=False) as sb,
        ps.Client(sb.api_key, sb.url, rate_limit=None) as client,
    ):
        yield sb, client


async def test_market_maker_quotes_requotes_and_handles_each_fill_once(
    sandbox: tuple[Any, ps.Client], tmp_path: Path
) -> None:
    sb, client = sandbox
    market = sb.market_ids[0]
    env = bot_env(sb.url, sb.api_key)
    checkpoint = tmp_path / "mm.json"
    args = ("--market", market, "--checkpoint", str(checkpoint), "--max-fills", "1")
    # A quote an earlier run left on another market is swept at startup.
    other = sb.market_ids[1]
    await client.orders.place(
        market_id=other, side="BUY", outcome="Yes", order_type="LIMIT", price="0.01",
        quantity=5, time_in_force="GTC",
    )  # fmt: skip
    assert len(await resting(client, other)) == 1
    out: list[str] = []
    bot = await start_bot(env, *args)
    try:
        await line_with(bot, "quoting bid=0.48 ask=0.52", out)
        # The checkpoint is saved before the first quote (a fill from here on survives a crash).
        assert checkpoint.exists()
        assert any("cancelled 1 order(s) left resting" in line for line in out)
        assert await resting(client, other) == []
        # The ask is written as BUY No at 1 - 0.52.
        assert await resting(client, market) == [("No", Decimal("0.48")), ("Yes", Decimal("0.48"))]
        assert sb.heartbeats()[0]["client_label"] == "market-maker"
        sb.set_price(market, "0.51")  # the mid moves, crossing nothing: both quotes follow
        await line_with(bot, "quoting bid=0.49 ask=0.53 (mid 0.5100)", out)
        assert await resting(client, market) == [("No", Decimal("0.47")), ("Yes", Decimal("0.49"))]
        filled = sb.set_price(market, "0.55")  # through the ask: the No order fills
        assert filled == 1
        fill = await line_with(bot, "fill order=", out)
        assert " BUY " in fill and " No @ " in fill
        code = await asyncio.wait_for(bot.wait(), WAIT)
        rest = (await bot.stdout.read()).decode()  # type: ignore[union-attr]
    finally:
        await reap(bot)
    assert code == 0, "\n".join(out) + rest
    assert "stopped; no open orders left" in rest
    assert await resting(client, market) == []  # a clean exit takes its quotes down

    # Restarted from its checkpoint, it never handles the first fill again.
    first_fill = fill.split()[1]
    bot = await start_bot(env, *args)
    out = []
    try:
        await line_with(bot, "quoting bid=0.53 ask=0.57 (mid 0.5500)", out)
        sb.set_price(market, "0.51")  # down through the bid: the Yes order fills
        second = await line_with(bot, "fill order=", out)
        assert await asyncio.wait_for(bot.wait(), WAIT) == 0
    finally:
        await reap(bot)
    assert " Yes @ " in second and second.split()[1] != first_fill
    assert sum("fill order=" in line for line in out) == 1
    assert await resting(client, market) == []

    # SIGTERM (like Ctrl-C) stops it cleanly: quotes cancelled, exit 0, no traceback.
    bot = await start_bot(env, "--market", market, "--checkpoint", str(checkpoint))
    out = []
    try:
        await line_with(bot, "quoting bid=", out)
        assert len(await resting(client, market)) == 2
        bot.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(bot.wait(), WAIT)
        rest = (await bot.stdout.read()).decode()  # type: ignore[union-attr]
    finally:
        await reap(bot)
    assert code == 0 and "Traceback" not in rest, rest
    assert "stopped; no open orders left" in rest and "interrupted" in rest
    assert await resting(client, market) == []


async def test_market_maker_killed_with_sigkill_leaves_no_open_orders(tmp_path: Path) -> None:
    # The sandbox in another process, its clock flowing, as in production.
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "polysim_async", "sandbox", "--port", "0", "--seed", "9",
        "--no-rate-limits",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        found: dict[str, str] = {}

        async def read_exports() -> None:
            while "POLYSIM_API_KEY" not in found:
                raw = await server.stdout.readline()  # type: ignore[union-attr]
                assert raw, "the sandbox ended early"
                name, _, value = raw.decode().strip().removeprefix("export ").partition("=")
                if name in ("POLYSIM_BASE_URL", "POLYSIM_API_KEY"):
                    found[name] = value

        await asyncio.wait_for(read_exports(), WAIT)
        url, key = found["POLYSIM_BASE_URL"], found["POLYSIM_API_KEY"]
        async with ps.Client(key, url, rate_limit=None) as client:
            out: list[str] = []
            bot = await start_bot(
                bot_env(url, key), "--heartbeat", "1", "--checkpoint", str(tmp_path / "c.json")
            )
            try:
                line = await line_with(bot, "market ", out)
                market = line.split()[1]
                await line_with(bot, "quoting bid=", out)
                assert len(await resting(client, market)) == 2
                bot.send_signal(signal.SIGKILL)  # no finally, no goodbye: only the switch is left
                await bot.wait()
            finally:
                await reap(bot)
            assert len(await resting(client, market)) == 2  # still resting right after

            async def none_left() -> bool:
                return await resting(client, market) == []

            # The switch lapses 1 s + 1 s grace after the last beat; poll generously.
            await until(none_left)
            cancelled = [
                row async for row in client.orders.list(market_id=market)
                if row.status is ps.OrderStatus.CANCELLED
            ]  # fmt: skip
            assert len(cancelled) == 2
    finally:
        server.terminate()
        await server.wait()
