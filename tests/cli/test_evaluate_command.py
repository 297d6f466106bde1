"""``polysim evaluate``: verdicts of the rules engine, exit 3 when an account failed."""

from __future__ import annotations

import json

import pytest

from polysim_async._shard import shard_of

from ._support import ThreadSandbox, polysim, polysim_all, polysim_here

RULES = {"profit_target_pct": 8, "max_drawdown_pct": 10}
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def _buy(sandbox: ThreadSandbox, account_id: str, market_id: str, quantity: str) -> None:
    sandbox.call(
        lambda: sandbox.sb.place_order(
            account_id=account_id,
            market_id=market_id,
            side="BUY",
            outcome="Yes",
            order_type="market",
            price="0.99",
            quantity=quantity,
        )
    )


@pytest.fixture(scope="module")
def judged(sandbox: ThreadSandbox) -> dict[str, str]:
    """A losing account (failed), a winning one (passed) and one without rules."""
    losing = sandbox.account(rules=RULES)
    winning = sandbox.account(rules=RULES)
    plain = sandbox.account()
    first, second = sandbox.sb.market_ids[:2]
    sandbox.call(lambda: sandbox.sb.set_price(first, "0.50"))
    sandbox.call(lambda: sandbox.sb.set_price(second, "0.50"))
    _buy(sandbox, losing, first, "10000")
    _buy(sandbox, winning, second, "5000")
    _buy(sandbox, plain, second, "10")
    sandbox.call(lambda: sandbox.sb.set_price(first, "0.05"))  # equity about 5,500: < 9,000
    sandbox.call(lambda: sandbox.sb.set_price(second, "0.95"))  # equity about 12,200: > 10,800
    return {"losing": losing, "winning": winning, "plain": plain}


def test_one_line_per_account_and_exit_3_when_one_failed(
    sandbox: ThreadSandbox, judged: dict[str, str]
) -> None:
    ids = [judged["losing"], judged["winning"], judged["plain"]]
    env = sandbox.env()
    table, lines = polysim_all(
        [(["evaluate", *ids, "--table"], env), (["evaluate", *ids, "--jsonl"], env)]
    )
    assert table.code == 3 and table.err == ""
    head, *rows = table.lines
    assert head.split()[:3] == ["ACCOUNT_ID", "STATUS", "EQUITY"]
    assert [row.split()[:2] for row in rows] == [
        [judged["losing"], "failed"],
        [judged["winning"], "passed"],
        [judged["plain"], "in_progress"],
    ]
    assert "max_loss(" in rows[0]
    assert lines.code == 3
    verdicts = [json.loads(line) for line in lines.lines]
    assert [v["account_id"] for v in verdicts] == ids
    losing = verdicts[0]["verdict"]
    assert losing["status"] == "failed"
    assert [b["rule"] for b in losing["breaches"]] == ["max_loss"]
    assert losing["metrics"]["loss_floor"] == "9000.00"
    state = sandbox.call(lambda: sandbox.sb.account_state(judged["losing"]))
    assert losing["metrics"]["equity"] == state["equity"]  # exactly the state's string


def test_rules_override_the_stored_ones(sandbox: ThreadSandbox, judged: dict[str, str]) -> None:
    env = sandbox.env()
    lenient, from_file = polysim_all(
        [
            (["evaluate", judged["losing"], "--rules", '{"max_drawdown_pct": 60}'], env),
            (["evaluate", judged["plain"], "--rules-file", "-"], env),
        ]
    )
    assert lenient.code == 0, lenient.err
    assert json.loads(lenient.out)[0]["verdict"]["status"] == "in_progress"
    # No stdin: an empty file is not a JSON object.
    assert from_file.code == 2 and "--rules-file: not a JSON object" in from_file.one_error_line()
    done = polysim(
        "evaluate",
        judged["plain"],
        "--rules-file",
        "-",
        env=env,
        stdin='{"profit_target_pct": 0.01}',
    )
    assert done.code == 0 and json.loads(done.out)[0]["verdict"]["status"] == "passed"


def test_an_account_that_cannot_be_read_is_an_api_error(
    sandbox: ThreadSandbox, judged: dict[str, str]
) -> None:
    done = polysim("evaluate", judged["losing"], UNKNOWN, env=sandbox.env())
    assert done.code == 1  # not 3: a check that could not see every account is no verdict
    assert [v["account_id"] for v in json.loads(done.out)] == [judged["losing"]]
    assert f"polysim evaluate: {UNKNOWN}: NotFoundError: 404" in done.one_error_line()


def test_a_shard_owning_none_of_the_accounts_says_so(
    sandbox: ThreadSandbox, judged: dict[str, str]
) -> None:
    account = judged["plain"]
    other = 1 - shard_of(account, 2)
    done = polysim_here("evaluate", account, "--shard", f"{other}/2", env=sandbox.env())
    assert done.code == 0 and json.loads(done.out) == []
    assert done.one_error_line() == f"polysim evaluate: shard {other}/2 owns none of the 1 accounts"
    mine = polysim_here("evaluate", account, "--shard", f"{1 - other}/2", env=sandbox.env())
    assert [v["account_id"] for v in json.loads(mine.out)] == [account]


def test_the_instant_judged_and_the_opening_can_be_given(
    sandbox: ThreadSandbox, judged: dict[str, str]
) -> None:
    at = "2030-01-02T03:04:05+00:00"
    done = polysim_here(
        "evaluate",
        judged["plain"],
        "--now",
        at,
        "--opened-at",
        "2026-01-01T00:00:00Z",
        "--rules",
        '{"inactivity_days": 30}',
        env=sandbox.env(),
    )
    verdict = json.loads(done.out)[0]["verdict"]
    assert verdict["at"] == "2030-01-02T03:04:05Z"
    # Years without a fill since the opening: the inactivity rule failed the account.
    assert [b["rule"] for b in verdict["breaches"]] == ["inactivity"] and done.code == 3
