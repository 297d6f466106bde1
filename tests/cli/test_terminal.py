"""Progress on a terminal (a pseudo-terminal) and none elsewhere; the terminal left clean."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

from ._support import Terminal, ThreadSandbox, polysim, screen, strip_ansi

HIDE, SHOW = "\x1b[?25l", "\x1b[?25h"


def assert_left_clean(text: str) -> list[str]:
    """The cursor shown again after it was last hidden, every progress line erased, the last
    line complete; returns the lines the terminal shows."""
    assert HIDE in text, text
    assert text.rindex(SHOW) > text.rindex(HIDE), text
    assert text.endswith("\n"), repr(text[-200:])
    shown = screen(text)
    assert not [line for line in shown if "fills/s" in line or "tailing executions" in line]
    return shown


def _export(ids: list[str], out: Path) -> list[str]:
    """A CSV export of ``ids`` into ``out``, fifty fills a request (progress to draw)."""
    return ["trades", "export", *ids, "--out", str(out), "--format", "csv", "--page-size", "50"]


def test_export_draws_progress_on_a_terminal_and_leaves_it_clean(
    sandbox: ThreadSandbox, tmp_path: Path
) -> None:
    ids = [sandbox.account(fills=600), sandbox.account(fills=5)]
    term = Terminal(*_export(ids, tmp_path), env=sandbox.env())
    code, text = term.finish()
    assert code == 0, text
    plain = strip_ansi(text)
    assert "accounts · " in plain and " fills/s · ETA " in plain  # the progress line
    assert "[####################] 2/2 accounts" in plain  # drawn up to the end
    shown = assert_left_clean(text)
    assert shown[-1].startswith("exported 605 fills of 2/2 accounts")


def test_export_prints_no_progress_when_stderr_is_not_a_terminal(
    sandbox: ThreadSandbox, tmp_path: Path
) -> None:
    done = polysim(*_export([sandbox.account(fills=600)], tmp_path), env=sandbox.env())
    assert done.code == 0
    assert "\x1b" not in done.err and "\r" not in done.err and "fills/s" not in done.err
    assert done.one_error_line().startswith("exported 600 fills of 1/1 accounts")


def test_tail_shows_its_status_line_and_leaves_the_terminal_clean_on_ctrl_c(
    sandbox: ThreadSandbox, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "tail.json"
    probe = sandbox.probe("/v1/account/history")
    term = Terminal(
        "executions", "tail", "--since", str(checkpoint), env=sandbox.env(role="trader")
    )
    try:
        probe.wait_for(1)
        term.wait_for("tailing executions · 0 fills")
        placed = sandbox.trade()
        term.wait_for("tailing executions · 1 fills")
    finally:
        code, text = term.finish(signal.SIGINT)
    assert code == 130
    lines = assert_left_clean(text)
    fill = [line for line in lines if f"order={placed['order_id']}" in line]
    assert len(fill) == 1 and " BUY 10.0000 Yes @ " in fill[0]  # a table line on a terminal
    assert lines[-1].startswith("polysim executions tail: interrupted; the checkpoint is saved")
    assert json.loads(checkpoint.read_text())["delivered"][-1]["order_id"] == placed["order_id"]


def test_colour_only_on_a_terminal_without_no_color_and_never_on_a_dumb_one(
    sandbox: ThreadSandbox,
) -> None:
    account = sandbox.account()
    coloured = Terminal("evaluate", account, env=sandbox.env())
    _, text = coloured.finish()
    assert "\x1b[1m" in text and "\x1b[33min_progress" in text  # bold header, yellow status
    plain = Terminal("evaluate", account, env={**sandbox.env(), "NO_COLOR": "1"})
    code, text = plain.finish()
    assert code == 0 and not re.search(r"\x1b\[[0-9;]*m", text)  # no colour or bold at all
    assert "in_progress" in screen(text)[1]
    dumb = Terminal("evaluate", account, env=sandbox.env(), term="dumb")
    code, text = dumb.finish()
    assert code == 0 and "\x1b" not in text  # no cursor control either: no progress line
