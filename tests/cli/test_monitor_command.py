"""``polysim monitor`` as a process against the sandbox."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

import msgspec

import polysim_async as ps
from polysim_async._shard import shard_of

from ._support import Running, ThreadSandbox, polysim, polysim_here


def _pcts(value: object, key: str = "") -> list[object]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _pcts(v, k)]
    if isinstance(value, list):
        return [p for v in value for p in _pcts(v, key)]
    return [value] if key.endswith("_pct") and value is not None else []


def _saved(path: Path) -> ps.MonitorState:
    return msgspec.convert(msgspec.json.decode(path.read_bytes())["monitor"], ps.MonitorState)


def _holding(sandbox: ThreadSandbox, market: str, outcome: str, rules: dict[str, object]) -> str:
    """An account holding 8,000 shares of ``outcome`` bought at 0.50."""
    aid = sandbox.account(rules=rules)
    sandbox.call(
        lambda: sandbox.sb.place_order(
            account_id=aid, market_id=market, side="BUY", outcome=outcome,
            order_type="market", amount="4000", price="0.60",
        )
    )  # fmt: skip
    return aid


def test_monitor_closes_the_breach_reports_the_pass_exits_3_and_resumes_from_its_state(
    sandbox: ThreadSandbox, tmp_path: Path
) -> None:
    market = sandbox.call(lambda: sandbox.sb.create_market(question="Monitor?", price="0.50"))
    rules = {"max_drawdown_pct": 10, "profit_target_pct": 10}
    loser = _holding(sandbox, market, "Yes", rules)  # at 0.30: equity 8,400, below 9,000
    winner = _holding(sandbox, market, "No", rules)  # at 0.70: equity 11,600, a pass
    sandbox.call(lambda: sandbox.sb.set_price(market, "0.30"))
    state = tmp_path / "monitor.json"
    argv = ["monitor", loser, winner, "--close-on-breach", "--state", str(state)]

    done = polysim(*argv, "--jsonl", env=sandbox.env())
    assert done.code == 3, done.err  # an account breached
    events = [json.loads(line) for line in done.lines]
    decisions = [(e["account_id"], e["kind"]) for e in events if e["kind"] != "warning"]
    assert sorted(decisions) == sorted([(loser, "breach"), (loser, "closed"), (winner, "passed")])
    assert decisions.index((loser, "breach")) < decisions.index((loser, "closed"))
    breach = next(e for e in events if e["kind"] == "breach")
    assert breach["verdict"]["breaches"][0]["rule"] == "max_loss"
    # as `polysim evaluate` writes verdicts: durations in seconds, percentages to 2 dp
    assert isinstance(breach["verdict"]["samples"]["longest_gap"], (int, float))
    assert all(len(str(v).split(".")[-1]) <= 2 for v in _pcts(breach["verdict"]))
    assert sandbox.call(lambda: sandbox.sb.account_state(loser))["status"] == "closed"
    assert sandbox.call(lambda: sandbox.sb.account_state(winner))["status"] == "active"
    saved = _saved(state)
    assert saved.accounts[loser].closed and saved.accounts[winner].announced == "passed"

    again = polysim(*argv, "--table", env=sandbox.env())  # everything decided: nothing new
    assert again.code == 0 and again.out == "", again.err

    third = _holding(sandbox, market, "Yes", rules)  # bought at 0.30
    sandbox.call(lambda: sandbox.sb.set_price(market, "0.10"))  # equity about 8,600
    table = polysim("monitor", third, "--table", env=sandbox.env())
    assert table.code == 3
    (line,) = table.lines  # one line: "<at> <account> breach max_loss value=... limit=9000.00"
    assert " breach max_loss value=" in line and line.endswith("limit=9000.00")


def test_monitor_stops_on_ctrl_c_with_its_state_saved(
    sandbox: ThreadSandbox, tmp_path: Path
) -> None:
    quiet = sandbox.account(rules={"max_drawdown_pct": 10})
    state = tmp_path / "monitor.json"
    running = Running(
        "monitor", quiet, "--samples", "--jsonl", "--state", str(state), env=sandbox.env()
    )
    try:
        (first,) = running.wait_for_lines(1)
        stopped = running.interrupt(signal.SIGINT)
    finally:
        running.kill()
    assert json.loads(first)["kind"] == "sample"
    assert stopped.code == 130
    hint = stopped.one_error_line()
    assert hint.startswith("polysim monitor: interrupted; to resume, run the same command again:")
    assert f"--state {state}" in hint
    saved = _saved(state)
    assert saved.accounts[quiet].evaluator.samples >= 1


def test_monitor_refuses_a_state_file_that_is_not_a_checkpoint(
    sandbox: ThreadSandbox, tmp_path: Path
) -> None:
    bad = tmp_path / "state.json"
    bad.write_text('{"accounts": 5}')
    done = polysim("monitor", str(uuid.uuid4()), "--state", str(bad), env=sandbox.env())
    assert done.code == 2
    assert "is not a monitor checkpoint" in done.one_error_line()


def test_monitor_with_a_shard_judges_only_the_accounts_it_owns(sandbox: ThreadSandbox) -> None:
    market = sandbox.call(lambda: sandbox.sb.create_market(question="Shard?", price="0.50"))
    ids = [_holding(sandbox, market, "Yes", {"max_drawdown_pct": 10}) for _ in range(6)]
    sandbox.call(lambda: sandbox.sb.set_price(market, "0.30"))  # every one breaches
    owned = [aid for aid in ids if shard_of(aid, 2) == 1]
    assert 0 < len(owned) < len(ids)
    done = polysim("monitor", *ids, "--shard", "1/2", "--jsonl", env=sandbox.env())
    assert done.code == 3, done.err
    events = [json.loads(line) for line in done.lines]
    breached = [e["account_id"] for e in events if e["kind"] == "breach"]
    assert sorted(breached) == sorted(owned)
    assert {e["account_id"] for e in events} == set(owned)


def test_monitor_reports_an_unjudgeable_account_on_its_line_and_still_closes_the_breach(
    sandbox: ThreadSandbox, tmp_path: Path
) -> None:
    market = sandbox.call(lambda: sandbox.sb.create_market(question="Errors?", price="0.50"))
    loser = _holding(sandbox, market, "Yes", {"max_drawdown_pct": 10})
    bad_rules = sandbox.account(rules={"max_drawdown_pct": 150})
    unknown = str(uuid.uuid4())
    sandbox.call(lambda: sandbox.sb.set_price(market, "0.30"))
    done = polysim(
        "monitor", unknown, bad_rules, loser, "--close-on-breach", "--jsonl", env=sandbox.env()
    )
    assert done.code == 1, done.err  # something could not be judged: graver than a breach
    events = [json.loads(line) for line in done.lines]
    errors = {e["account_id"]: e["error"] for e in events if e["kind"] == "error"}
    assert set(errors) == {unknown, bad_rules}
    assert "NotFoundError" in errors[unknown] and "max_drawdown_pct" in errors[bad_rules]
    assert (loser, "closed") in [(e["account_id"], e["kind"]) for e in events]
    assert sandbox.call(lambda: sandbox.sb.account_state(loser))["status"] == "closed"


def test_monitor_refuses_an_id_that_is_not_a_uuid_naming_its_line(
    sandbox: ThreadSandbox, tmp_path: Path
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{uuid.uuid4()}\n# a comment\nnot-an-id\n")
    done = polysim_here("monitor", "--accounts-file", str(ids), env=sandbox.env())
    assert done.code == 2
    assert f"--accounts-file {ids} line 3: 'not-an-id' is not an account id" in done.err


def test_monitor_refuses_a_state_file_of_another_shard(
    sandbox: ThreadSandbox, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(msgspec.json.encode({"monitor": ps.MonitorState(), "shard": [0, 2]}))
    done = polysim_here(
        "monitor", str(uuid.uuid4()), "--shard", "1/2", "--state", str(state), env=sandbox.env()
    )
    assert done.code == 2
    assert "belongs to --shard 0/2, not --shard 1/2" in done.err
    assert msgspec.json.decode(state.read_bytes())["shard"] == [0, 2]  # untouched
