"""``polysim trades list``, ``polysim trades export`` and ``polysim watch`` as processes."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any
from unittest import mock

import msgspec
import pytest

import polysim_async_cli
from polysim_async._shard import shard_of

from ._support import (
    PATIENCE,
    Result,
    Running,
    ThreadSandbox,
    command,
    polysim,
    polysim_all,
    polysim_here,
)


@pytest.fixture(scope="module")
def fleet(sandbox: ThreadSandbox) -> list[str]:
    """Three accounts with 1,200, 30 and 0 fills."""
    return [sandbox.account(fills=1200), sandbox.account(fills=30), sandbox.account()]


def _wire(trade: object) -> dict[str, Any]:
    """A trade as the API sent it (its wire names and strings)."""
    wire: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(trade))
    return wire


def test_trades_list_as_table_json_and_jsonl(sandbox: ThreadSandbox, fleet: list[str]) -> None:
    env = sandbox.env()
    busy = fleet[0]
    newest = [_wire(t) for t in sandbox.trades(busy)[:5]]
    table, as_json, as_lines, buys, everything = polysim_all(
        [
            (["trades", "list", busy, "--limit", "5", "--table"], env),
            (["trades", "list", busy, "--limit", "5"], env),
            (["trades", "list", busy, "--limit", "5", "--jsonl"], env),
            (["trades", "list", busy, "--side", "buy", "--all", "--jsonl"], env),
            (["trades", "list", busy, "--all", "--jsonl"], env),
        ]
    )
    assert table.code == 0 and table.err == ""
    head, *rows = table.lines
    assert head.split() == [
        "FILLED_AT",
        "TRADE_ID",
        "ORDER_ID",
        "MARKET_ID",
        "SIDE",
        "OUTCOME",
        "PRICE",
        "QUANTITY",
        "NOTIONAL",
        "FEE",
        "REALIZED_PNL",
        "CLIENT_ORDER_ID",
    ]
    assert len(rows) == 5
    for row, trade in zip(rows, newest, strict=True):
        cells = row.split()
        # Money exactly as the wire sent it: every digit and trailing zero.
        assert cells[6:10] == [trade["price"], trade["quantity"], trade["notional"], trade["fee"]]
        assert int(cells[1]) == trade["trade_id"]
    assert json.loads(as_json.out) == newest
    assert [json.loads(line) for line in as_lines.lines] == newest
    sides = {json.loads(line)["side"] for line in buys.lines}
    assert sides == {"BUY"} and 0 < len(buys.lines) < 1200
    assert len(everything.lines) == 1200
    market = json.loads(everything.lines[0])["market_id"]
    in_market = polysim_here("trades", "list", busy, "--market", market, "--all", env=env)
    fills = json.loads(in_market.out)
    assert {f["market_id"] for f in fills} == {market}
    assert len(fills) == sum(json.loads(x)["market_id"] == market for x in everything.lines)


def _csv_rows(out: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for part in sorted(out.glob("part-*.csv")):
        with part.open(newline="") as file:
            rows += list(csv.DictReader(file))
    return rows


def test_export_writes_every_fill_once_then_only_new_ones(
    sandbox: ThreadSandbox, fleet: list[str], tmp_path: Path
) -> None:
    env = sandbox.env()
    out = tmp_path / "fills"
    first = polysim("trades", "export", *fleet, "--out", str(out), "--format", "csv", env=env)
    assert first.code == 0, first.err
    assert first.out == ""  # data goes to files, nothing but the summary line (stderr)
    line = first.one_error_line()
    assert line.startswith("exported 1,230 fills of 3/3 accounts to ")
    assert "the directory holds 1,230 fills" in line
    rows = _csv_rows(out)
    assert len(rows) == 1230
    wire = {json.dumps(_wire(t), sort_keys=True) for a in fleet for t in sandbox.trades(a)}
    assert {r["trade_id"] for r in rows} == {str(json.loads(w)["trade_id"]) for w in wire}
    assert {r["price"] for r in rows} == {json.loads(w)["price"] for w in wire}  # wire strings

    sandbox.call(lambda: sandbox.sb.generate_fills(7, account_id=fleet[2]))
    again = polysim(
        "trades", "export", *fleet, "--out", str(out), "--format", "csv", "--json", env=env
    )
    assert again.code == 0, again.err
    summary = json.loads(again.out)
    assert summary["fills"] == 7 and summary["total_fills"] == 1237
    assert summary["completed"] == 3 and summary["format"] == "csv"
    assert len(_csv_rows(out)) == 1237
    sandbox.call(lambda: sandbox.sb.generate_fills(3, account_id=fleet[0]))
    small = polysim_here(
        *["trades", "export", *fleet, "--out", str(out), "--format", "csv"],
        *["--page-size", "1", "--part-size", "2", "--jsonl"],
        env=env,
    )
    assert small.code == 0, small.err
    assert len(small.lines) == 1  # --jsonl: the summary as one JSON line
    summary = json.loads(small.out)
    assert summary["fills"] == 3 and len(summary["parts"]) == 2  # at most 2 fills a part


def test_export_splits_the_fleet_by_shard(sandbox: ThreadSandbox, tmp_path: Path) -> None:
    env = sandbox.env()
    fleet = [sandbox.account(fills=2) for _ in range(6)]
    runs = polysim_all(
        [
            (
                [
                    *["trades", "export", *fleet, "--out", str(tmp_path / f"s{i}")],
                    *["--format", "ndjson", "--shard", f"{i}/2", "--json"],
                ],
                env,
            )
            for i in (0, 1)
        ]
    )
    exported: list[set[str]] = []
    for i, run in enumerate(runs):
        assert run.code == 0, run.err
        lines = [
            json.loads(x)
            for part in (tmp_path / f"s{i}").glob("part-*.ndjson")
            for x in part.read_text().splitlines()
        ]
        exported.append({x["account_id"] for x in lines})
        owned = {a for a in fleet if shard_of(a, 2) == i}
        assert json.loads(run.out)["accounts"] == len(owned)
        assert exported[-1] == owned
    assert exported[0] | exported[1] == set(fleet)


def test_export_ctrl_c_stops_cleanly_says_how_to_resume_and_resumes(
    sandbox: ThreadSandbox, tmp_path: Path
) -> None:
    env = sandbox.env()
    ids = [sandbox.account(fills=400), sandbox.account(fills=3)]
    out = tmp_path / "fills"
    probe = sandbox.probe(f"/v1/partner/accounts/{ids[0]}/trades")
    # One fill per request at the client's 50/s budget: minutes of work, stopped early.
    argv = ["trades", "export", *ids, "--out", str(out), "--format", "ndjson"]
    running = Running(*argv, "--page-size", "1", "--concurrency", "1", env=env)
    try:
        probe.wait_for(3)
        stopped = running.interrupt(signal.SIGINT)
    finally:
        running.kill()
    assert stopped.code == 130
    line = stopped.one_error_line()
    assert line.startswith("polysim trades export: interrupted; 0 of 2 accounts finished;")
    assert line.endswith(
        "to resume, run the same command again: polysim "
        + " ".join(argv[:2])
        + " "
        + " ".join([*argv[2:], "--page-size", "1", "--concurrency", "1"])
    )
    assert stopped.out == ""
    resumed = polysim(*argv, env=env)
    assert resumed.code == 0, resumed.err
    fills = [json.loads(x) for p in out.glob("part-*.ndjson") for x in p.read_text().splitlines()]
    assert len(fills) == 403
    assert len({(f["account_id"], f["trade_id"]) for f in fills}) == 403


def test_export_failures_name_the_accounts_and_exit_1(
    sandbox: ThreadSandbox, fleet: list[str], tmp_path: Path
) -> None:
    env = sandbox.env()
    sandbox.call(
        lambda: sandbox.sb.add_fault(
            f"/v1/partner/accounts/{fleet[1]}/trades", status=404, code="ACCOUNT_NOT_FOUND", times=5
        )
    )
    try:
        done = polysim(
            "trades", "export", *fleet, "--out", str(tmp_path), "--format", "csv", env=env
        )
    finally:
        sandbox.call(sandbox.sb.clear_faults)
    assert done.code == 1
    first, summary = done.err.splitlines()
    assert first.startswith(f"polysim trades export: {fleet[1]}: NotFoundError: 404")
    assert "of 2/3 accounts" in summary
    assert summary.endswith(f"; 1 account(s) not found: {fleet[1]}")  # no resume hint for a 404
    assert "Traceback" not in done.err
    missing = polysim("trades", "export", *fleet, "--out", str(tmp_path / "p"), env=env)
    if missing.code != 0:  # only where pyarrow is absent (it is in the test extra)
        assert "polysim-async[parquet]" in missing.one_error_line()


def test_watch_prints_each_new_fill_once_until_ctrl_c(
    sandbox: ThreadSandbox, fleet: list[str]
) -> None:
    ids = fleet[1:]
    probe = sandbox.probe("/v1/partner/accounts/*/trades")
    running = Running("watch", *ids, "--interval", "0.05", "--jsonl", env=sandbox.env())
    try:
        probe.wait_for(2 * len(ids) + 1)  # every account polled at least once: its start is set
        sandbox.call(lambda: sandbox.sb.generate_fills(3, account_id=ids[0]))
        sandbox.call(lambda: sandbox.sb.generate_fills(2, account_id=ids[1]))
        seen = running.wait_for_lines(5)
        stopped = running.interrupt(signal.SIGINT)
    finally:
        running.kill()
    fills = [json.loads(line) for line in seen]
    assert stopped.code == 130 and stopped.one_error_line() == "polysim watch: interrupted"
    assert sorted(f["account_id"] for f in fills) == sorted([ids[0]] * 3 + [ids[1]] * 2)
    newest = {
        a: {t.trade_id for t in sandbox.trades(a)[:n]} for a, n in zip(ids, (3, 2), strict=True)
    }
    assert {(f["account_id"], f["trade"]["trade_id"]) for f in fills} == {
        (a, t) for a, ts in newest.items() for t in ts
    }


def test_watch_as_one_json_document_is_closed_on_interrupt(
    sandbox: ThreadSandbox, fleet: list[str]
) -> None:
    probe = sandbox.probe("/v1/partner/accounts/*/trades")
    running = Running("watch", fleet[2], "--interval", "0.05", "--json", env=sandbox.env())
    try:
        probe.wait_for(3)
        sandbox.call(lambda: sandbox.sb.generate_fills(2, account_id=fleet[2]))
        running.wait_for_lines(2)
        stopped = running.interrupt(signal.SIGTERM)
    finally:
        running.kill()
    assert stopped.code == 130
    document = json.loads(stopped.out)
    assert [f["account_id"] for f in document] == [fleet[2]] * 2


def test_an_unusable_directory_is_one_line_and_exit_2(
    sandbox: ThreadSandbox, fleet: list[str], tmp_path: Path
) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("not a directory")
    done = polysim_here(
        "trades", "export", fleet[1], "--out", str(taken), "--format", "csv", env=sandbox.env()
    )
    assert done.code == 2 and done.out == ""
    line = done.one_error_line()
    assert line.startswith("polysim trades export: ") and str(taken) in line
    tail = polysim_here(
        "executions",
        "tail",
        "--since",
        str(tmp_path / "nowhere" / "tail.json"),
        env=sandbox.env(role="trader"),
    )
    assert tail.code == 2
    assert (
        tail.one_error_line() == "polysim executions tail: --since: no directory"
        f" {tmp_path / 'nowhere'} to keep tail.json in"
    )


def _run_with_stdout(argv: list[str], env: dict[str, str], stdout: Any) -> tuple[int, str]:
    """``polysim argv`` in this process with ``stdout`` (broken, or None) and no ``sys.stdout``."""
    err = io.StringIO()
    with mock.patch.dict(os.environ, env, clear=True), mock.patch("sys.stdout", None):
        code = polysim_async_cli.main(argv, stdout=stdout, stderr=err)
    return code, err.getvalue()


def test_a_listing_stops_fetching_when_its_reader_goes(
    sandbox: ThreadSandbox, fleet: list[str]
) -> None:
    """``polysim trades list ID --all --jsonl | head -1``: 1,200 fills are 3 pages."""

    class Gone(io.StringIO):  # the reader has closed the pipe
        def write(self, text: str) -> int:
            raise BrokenPipeError

    probe = sandbox.probe(f"/v1/partner/accounts/{fleet[0]}/trades")
    code, err = _run_with_stdout(
        ["trades", "list", fleet[0], "--all", "--jsonl"], sandbox.env(), Gone()
    )
    assert (code, err) == (0, "")
    assert probe.count <= 2  # the first page, and at most the one prefetched beside it


def test_no_stdout_at_all_is_a_closed_stdout(sandbox: ThreadSandbox, tmp_path: Path) -> None:
    """``polysim ... >&-``: the work is done, the data has nowhere to go, nothing failed."""
    out, account = tmp_path / "export", sandbox.account(fills=30)
    exported = _run_with_stdout(
        ["trades", "export", account, "--out", str(out), "--format", "csv", "--json"],
        sandbox.env(),
        None,
    )
    assert exported[0] == 0
    assert exported[1].startswith("exported 30 fills of 1/1 accounts")
    rows = sum(len(list(csv.reader(io.StringIO(p.read_text())))) - 1 for p in out.rglob("*.csv"))
    assert rows == 30
    listed = _run_with_stdout(["trades", "list", account, "--limit", "1"], sandbox.env(), None)
    assert listed == (0, "")


def test_a_failed_write_is_exit_1_naming_the_directory_with_the_hint_and_no_key(
    sandbox: ThreadSandbox, fleet: list[str], tmp_path: Path
) -> None:
    """A disk that refuses the part (``ulimit -f 1``: EFBIG, as ENOSPC would)."""
    out = tmp_path / "export"
    env = {k: v for k, v in sandbox.env().items() if k != "POLYSIM_TENANT_KEY"}
    argv = [fleet[1], "--out", str(out), "--format", "csv", "--api-key", sandbox.tenant_key]
    done = subprocess.run(
        ["bash", "-c", 'ulimit -f 1 && exec "$@"', "bash", *command("trades", "export", *argv)],
        env=env,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    line = Result(done.returncode, done.stdout, done.stderr).one_error_line()
    assert line.startswith(f"polysim trades export: cannot write {out}")
    assert "File too large" in line
    assert line.endswith(
        f"to resume, run the same command again: polysim trades export {fleet[1]} --out {out}"
        " --format csv --api-key '***'"
    )
    assert sandbox.tenant_key not in done.stderr
