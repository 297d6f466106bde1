"""``polysim executions tail`` and ``polysim equity`` (trader key) as processes."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from polysim_async.cli._plot import BASELINE_COLOR, LINE_COLOR

from ._support import PATIENCE, Running, ThreadSandbox, command, polysim, polysim_all, polysim_here


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ThreadSandbox]:
    """This module's sandbox: prices move only when a test moves them."""
    served = ThreadSandbox(seed=22, random_walk=False)
    try:
        yield served
    finally:
        served.close()


def _tail(
    sandbox: ThreadSandbox, checkpoint: Path, fills: int, *, printed: int
) -> tuple[list[str], int, str]:
    """Run ``executions tail --since checkpoint``, trade ``fills`` times, and Ctrl-C it once
    ``printed`` fills are printed."""
    probe = sandbox.probe("/v1/account/history")
    running = Running(
        "executions", "tail", "--since", str(checkpoint), "--jsonl", env=sandbox.env(role="trader")
    )
    try:
        probe.wait_for(1)  # its starting point is read: what is traded from now on is due
        for _ in range(fills):
            sandbox.trade()
        lines = running.wait_for_lines(printed)
        stopped = running.interrupt(signal.SIGINT)
    finally:
        running.kill()
    return lines, stopped.code, stopped.err


def test_tail_prints_each_fill_exactly_once_across_interruptions(
    sandbox: ThreadSandbox, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "tail.json"
    first, code, err = _tail(sandbox, checkpoint, 3, printed=3)
    assert code == 130
    assert err.strip() == (
        "polysim executions tail: interrupted; the checkpoint is saved; resume with:"
        f" polysim executions tail --since {checkpoint} --jsonl"
    )
    saved = json.loads(checkpoint.read_text())
    assert len(saved["delivered"]) == 3
    for _ in range(2):  # traded while nobody tails: delivered by the next run
        sandbox.trade()
    second, code, _ = _tail(sandbox, checkpoint, 1, printed=3)
    assert code == 130
    seen = [json.loads(line)["order_id"] for line in first + second]
    assert len(seen) == len(set(seen)) == 6
    assert seen == sorted(seen)  # in order, across the two runs


def test_tail_stops_when_its_reader_goes_and_the_next_run_prints_what_it_missed(
    sandbox: ThreadSandbox, tmp_path: Path
) -> None:
    """``polysim executions tail --since FILE | head -1``: the reader goes after one line."""
    checkpoint = tmp_path / "tail.json"
    probe = sandbox.probe("/v1/account/history")
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        command("executions", "tail", "--since", str(checkpoint), "--jsonl"),
        env=sandbox.env(role="trader"),
        stdin=subprocess.DEVNULL,
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as reader:
            probe.wait_for(1)
            sandbox.trade()
            taken = json.loads(reader.readline())
        unread = sandbox.trade()  # its line meets the closed pipe: the tail stops, unacknowledged
        code = process.wait(PATIENCE)
        assert process.stderr is not None
        err = process.stderr.read()
    finally:
        process.kill()
        process.wait(PATIENCE)
        if process.stderr is not None:
            process.stderr.close()
    assert (code, err) == (0, "")  # like head's other writers: quietly, no traceback
    assert len(json.loads(checkpoint.read_text())["delivered"]) == 1
    missed, code, _ = _tail(sandbox, checkpoint, 0, printed=1)
    assert code == 130
    assert [json.loads(line)["order_id"] for line in missed] == [unread["order_id"]]
    assert taken["order_id"] != unread["order_id"]


def test_tail_needs_a_trader_key_and_a_valid_checkpoint(
    sandbox: ThreadSandbox, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    partner_env = sandbox.env()  # POLYSIM_TENANT_KEY only
    as_tenant = {**sandbox.env(role="trader"), "POLYSIM_API_KEY": sandbox.tenant_key}
    no_key = polysim_here("executions", "tail", env=partner_env)
    broken = polysim_here("executions", "tail", "--since", str(bad), env=sandbox.env(role="trader"))
    refused = polysim("executions", "tail", env=as_tenant)
    assert no_key.code == 2
    assert no_key.one_error_line() == (
        "polysim executions tail: needs a trader key (ps_live_...): pass --api-key or set"
        " POLYSIM_API_KEY"
    )
    assert broken.code == 2
    assert "is not a checkpoint written by polysim executions tail" in broken.one_error_line()
    assert refused.code == 4
    # The client's hint, once (the sandbox's 401 is bare, as the real server's).
    line = refused.one_error_line()
    assert line.count("which needs a personal trader key") == 1
    assert "trader commands need" not in line and "not valid here (" in line


@pytest.fixture(scope="module")
def curve(sandbox: ThreadSandbox) -> None:
    """Two simulated days of trading by the default trader: hourly snapshots below 10,000."""
    for price in ("0.50", "0.40", "0.45", "0.30"):
        sandbox.call(functools.partial(sandbox.sb.set_price, sandbox.market_id, price))
        sandbox.trade("2000")
        sandbox.call(lambda: sandbox.sb.advance(hours=12))


def test_equity_as_table_and_json(sandbox: ThreadSandbox, curve: None) -> None:
    env = sandbox.env(role="trader")
    table, as_json, bad_wallet = polysim_all(
        [
            (["equity", "--days", "3", "--table"], env),
            (["equity", "--days", "3", "--json", "--wallet", "api"], env),
            (["equity", "--wallet", "999999"], env),
        ]
    )
    assert table.code == 0 and table.err == ""
    head, *rows = table.lines
    assert head.split() == ["TIMESTAMP", "CASH_BALANCE", "POSITION_VALUE", "TOTAL_VALUE", "PNL"]
    points = json.loads(as_json.out)
    assert len(rows) == len(points) >= 24
    assert [row.split()[3] for row in rows] == [p["total_value"] for p in points]
    assert bad_wallet.code == 1 and "WALLET_NOT_FOUND" in bad_wallet.one_error_line()


def test_equity_plot_draws_the_curve_and_the_dashed_baseline(
    sandbox: ThreadSandbox, curve: None, tmp_path: Path
) -> None:
    image = pytest.importorskip("matplotlib.image")  # in the test extra: never skipped there
    png = tmp_path / "equity.png"
    done = polysim("equity", "--days", "3", "--plot", str(png), env=sandbox.env(role="trader"))
    assert done.code == 0 and done.out == ""
    assert done.one_error_line().startswith(f"wrote {png}: ")
    assert "starting balance 10000.00" in done.err
    assert png.stat().st_size > 10_000
    pixels = image.imread(str(png))  # rows x columns x RGBA, floats in 0..1
    assert pixels.shape[:2] == (500, 1000)

    def mask(color: str) -> Any:
        rgb = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        return (abs(pixels[:, :, :3] - rgb) < 0.02).all(axis=2)

    line, grey = mask(LINE_COLOR), mask(BASELINE_COLOR)
    line_columns = line.any(axis=0).nonzero()[0]
    assert line_columns.max() - line_columns.min() > 600  # the curve spans the plot
    # The baseline: the row with the most grey, in many separate dashes.
    row = int(grey.sum(axis=1).argmax())
    runs = int((grey[row, 1:] & ~grey[row, :-1]).sum())
    assert grey[row].sum() > 400 and runs > 20
    # The trader lost money: the curve starts at the baseline and falls below it.
    rows = line.any(axis=1).nonzero()[0]
    assert rows.min() >= row - 3 and rows.max() > row + 100


def test_plot_without_matplotlib_names_the_extra(sandbox: ThreadSandbox, tmp_path: Path) -> None:
    import subprocess

    script = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from polysim_async_cli import main\n"
        f"sys.exit(main(['equity', '--plot', {str(tmp_path / 'x.png')!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=sandbox.env(role="trader"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert 'pip install "polysim-async[plot]"' in lines[0]
    assert not (tmp_path / "x.png").exists()
