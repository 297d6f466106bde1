"""``polysim traders ...`` and ``polysim accounts ...`` as processes against a sandbox."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from ._support import ThreadSandbox, polysim, polysim_all, polysim_here

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def test_traders_register_get_and_login_link(sandbox: ThreadSandbox) -> None:
    env = sandbox.env()
    first = polysim("traders", "register", "pc_1", "pc1@example.com", "--table", env=env)
    assert first.code == 0 and first.err == ""
    fields = dict(line.split(None, 1) for line in first.lines)
    assert fields["external_id"] == "pc_1" and fields["created"] == "true"
    user_id = fields["user_id"]
    # Not a terminal: JSON by default, one object.
    again, got, link = polysim_all(
        [
            (["traders", "register", "pc_1", "pc1@example.com"], env),
            (["traders", "get", user_id, "--jsonl"], env),
            (
                ["traders", "login-link", user_id, "--redirect", "https://polysimulator.com/m"],
                env,
            ),
        ]
    )
    assert json.loads(again.out)["created"] is False
    assert json.loads(again.out)["user_id"] == int(user_id)
    assert len(got.lines) == 1 and json.loads(got.out)["email"] == "pc1@example.com"
    assert json.loads(link.out) == {"user_id": int(user_id), "status": "accepted"}
    mail = sandbox.call(sandbox.sb.outbox)[-1]
    assert mail["redirect_url"] == "https://polysimulator.com/m"


def test_create_get_update_with_money_exactly_as_sent(sandbox: ThreadSandbox) -> None:
    env = sandbox.env()
    user = json.loads(polysim("traders", "register", "pc_2", "pc2@example.com", env=env).out)
    created = polysim(
        "accounts",
        "create",
        "--user",
        str(user["user_id"]),
        "--external-id",
        "ch-1",
        "--stage",
        "challenge",
        "--balance",
        "5000.50",
        "--rules",
        '{"profit_target_pct": 8, "max_drawdown_pct": 10, "daily_loss_pct": 4.5, "tier": "5k"}',
        "--metadata",
        '{"plan": "5k"}',
        env=env,
    )
    assert created.code == 0, created.err
    account = json.loads(created.out)
    assert account["starting_balance"] == "5000.50"
    # opened_at (the server's time of the creation) is stored beside the metadata given.
    assert account["metadata"] == {"plan": "5k", "opened_at": account["metadata"]["opened_at"]}
    assert (
        sandbox.call(lambda: sandbox.sb.account_state(account["account_id"]))["metadata"]
        == (account["metadata"])
    )
    # "tier" is no rule: kept, with a warning (no close name to suggest).
    assert created.err == (
        "polysim accounts create: warning: --rules: unknown rule 'tier': kept as given,"
        " not judged by the rules engine\n"
    )
    # The whole rule set, numbers as JSON numbers, exactly as stored and echoed.
    assert '"rules":{"profit_target_pct":8,"max_drawdown_pct":10,"daily_loss_pct":4.5' in (
        created.out.replace(" ", "").replace("\n", "")
    )
    assert account["rules"]["tier"] == "5k"
    aid = account["account_id"]
    other = sandbox.account(balance="25000.00")

    table = polysim("accounts", "get", aid, other, "--table", env=env)
    assert table.code == 0 and table.err == ""
    head, *rows = table.lines
    assert head.split()[:6] == ["ACCOUNT_ID", "EXTERNAL_ID", "STAGE", "STATUS", "BALANCE", "EQUITY"]
    assert rows[0].split()[:6] == [aid, "ch-1", "challenge", "active", "5000.50", "5000.50"]
    assert rows[1].split()[4] == "25000.00"

    as_json, as_lines = polysim_all(
        [
            (["accounts", "get", aid, other, "--json"], env),
            (["accounts", "get", aid, other, "--jsonl"], env),
        ]
    )
    states = json.loads(as_json.out)
    assert [s["account_id"] for s in states] == [aid, other]
    assert states[0]["balance"] == "5000.50" and states[0]["unrealized_pnl"] == "0.00"
    assert [json.loads(line) for line in as_lines.lines] == states

    updated = polysim(
        "accounts",
        "update",
        aid,
        "--stage",
        "funded",
        "--rules",
        '{"max_drawdown_pct": 5}',
        env=env,
    )
    assert updated.code == 0, updated.err
    assert json.loads(updated.out)["stage"] == "funded"
    # Merged into the stored rule set: the other rules stay.
    assert sandbox.call(lambda: sandbox.sb.account_state(aid))["rules"] == {
        "profit_target_pct": 8,
        "max_drawdown_pct": 5,
        "daily_loss_pct": 4.5,
        "tier": "5k",
    }


def test_close_and_reset_need_yes_for_more_than_one(sandbox: ThreadSandbox) -> None:
    env = sandbox.env()
    a, b = sandbox.account(), sandbox.account()
    refused = polysim("accounts", "close", a, b, env=env)
    assert refused.code == 2 and refused.out == ""
    assert "without --yes" in refused.one_error_line()
    assert sandbox.call(lambda: sandbox.sb.account_state(a))["status"] == "active"
    closed = polysim("accounts", "close", a, b, "--yes", "--jsonl", env=env)
    assert closed.code == 0, closed.err
    assert [json.loads(line)["status"] for line in closed.lines] == ["closed", "closed"]
    reset = polysim("accounts", "reset", a, env=env)  # one account: no --yes needed
    assert reset.code == 0 and json.loads(reset.out)[0]["status"] == "active"


def test_accounts_file_with_comments_and_stdin(sandbox: ThreadSandbox, tmp_path: object) -> None:
    env = sandbox.env()
    a, b = sandbox.account(), sandbox.account()
    listing = f"# the fleet\n{a}\n\n{b}  # second\n{a}\n"
    done = polysim("accounts", "get", "--accounts-file", "-", env=env, stdin=listing)
    assert done.code == 0, done.err
    assert [s["account_id"] for s in json.loads(done.out)] == [a, b]  # once each, in order


def test_a_missing_account_is_reported_and_the_rest_still_printed(sandbox: ThreadSandbox) -> None:
    a = sandbox.account()
    done = polysim("accounts", "get", a, UNKNOWN, "--jsonl", env=sandbox.env())
    assert done.code == 1
    assert [json.loads(line)["account_id"] for line in done.lines] == [a]
    line = done.one_error_line()
    assert line.startswith(f"polysim accounts get: {UNKNOWN}: NotFoundError: 404")


def test_404_422_401_and_missing_keys_are_one_line_with_their_exit_codes(
    sandbox: ThreadSandbox,
) -> None:
    env = sandbox.env()
    sandbox.call(
        lambda: sandbox.sb.fail_next(
            "/v1/partner/accounts", status=422, code="VALIDATION_FAILED", method="POST"
        )
    )
    no_key = {k: v for k, v in env.items() if k != "POLYSIM_TENANT_KEY"}
    trader_key = {**env, "POLYSIM_TENANT_KEY": sandbox.api_key}
    missing, invalid, wrong, as_trader, no_tenant, no_trader = polysim_all(
        [
            (["traders", "get", "999999"], env),
            (
                [
                    "accounts",
                    "create",
                    "--user",
                    str(sandbox.user_id),
                    "--external-id",
                    "x",
                    "--stage",
                    "demo",
                    "--balance",
                    "100",
                ],
                env,
            ),
            (["accounts", "get", UNKNOWN, "--api-key", "pt_wrong"], env),
            (["accounts", "get", UNKNOWN], trader_key),
            (["accounts", "get", UNKNOWN], no_key),
            (["equity"], env),
        ]
    )
    assert missing.code == 1 and "NotFoundError: 404 USER_NOT_FOUND" in missing.one_error_line()
    assert invalid.code == 1 and "ValidationError: 422" in invalid.one_error_line()
    assert wrong.code == 4 and "AuthenticationError: 401" in wrong.one_error_line()
    assert as_trader.code == 4
    # The client's hint, said once (the sandbox's 401 is bare, as the real server's).
    line = as_trader.one_error_line()
    assert line.count("which needs the tenant key") == 1 and line.count("tenant key") == 1
    assert no_tenant.code == 2
    assert no_tenant.one_error_line() == (
        "polysim accounts get: needs a tenant key: pass --api-key or set POLYSIM_TENANT_KEY"
    )
    assert no_trader.code == 2 and "POLYSIM_API_KEY" in no_trader.one_error_line()
    for result in (missing, invalid, wrong, as_trader, no_tenant, no_trader):
        assert result.out == ""


def test_network_failure_is_exit_1_and_debug_shows_the_traceback(sandbox: ThreadSandbox) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**sandbox.env(), "POLYSIM_BASE_URL": f"http://127.0.0.1:{port}"}
    quiet, loud = polysim_all(
        [
            (["accounts", "get", UNKNOWN, "--retries", "0"], env),
            (["accounts", "get", UNKNOWN, "--retries", "0", "--debug"], env),
        ]
    )
    assert quiet.code == 1 and quiet.out == ""
    assert "polysim accounts get: ConnectError: cannot connect" in quiet.one_error_line()
    assert loud.code == 1 and "Traceback (most recent call last)" in loud.err
    assert loud.err.splitlines()[-1] == quiet.err.splitlines()[-1]


def test_bad_input_is_refused_before_anything_is_sent(
    sandbox: ThreadSandbox, tmp_path: Path
) -> None:
    env = sandbox.env()
    probe = sandbox.probe("/v1/partner/*")
    binary = tmp_path / "binary"
    binary.write_bytes(bytes(range(128, 256)))
    results = [
        polysim_here(*argv, env=env, stdin=b"\xff\xfe")
        for argv in (
            ["accounts", "update", UNKNOWN],
            ["accounts", "update", UNKNOWN, "--rules", "[1]"],
            ["accounts", "update", UNKNOWN, "--rules", '{"max_drawdown_pct": 300}'],
            ["accounts", "update", UNKNOWN, "--rules-file", "/nonexistent/rules.json"],
            ["accounts", "get"],
            ["traders", "register", "x", "y@example.com", "--metadata", "{"],
            ["accounts", "get", "--accounts-file", str(binary)],
            ["accounts", "update", UNKNOWN, "--rules-file", str(binary)],
            ["accounts", "get", "--accounts-file", "-"],  # stdin, not UTF-8 either
        )
    ]
    needles = [
        "nothing to change",
        "--rules: not a JSON object",
        "max_drawdown_pct must be",
        "--rules-file: cannot read /nonexistent/rules.json",
        "no account: give ACCOUNT_ID arguments or --accounts-file FILE",
        "--metadata: not a JSON object",
        f"--accounts-file: {binary} is not UTF-8 text (byte 0: invalid start byte)",
        f"--rules-file: {binary} is not UTF-8 text",
        "--accounts-file: standard input is not UTF-8 text",
    ]
    for result, needle in zip(results, needles, strict=True):
        assert result.code == 2, result
        assert needle in result.one_error_line()
    assert probe.count == 0


def test_a_table_of_accounts_is_followed_by_their_open_positions(sandbox: ThreadSandbox) -> None:
    holder, empty = sandbox.account(), sandbox.account()
    sandbox.call(
        lambda: sandbox.sb.place_order(
            account_id=holder,
            market_id=sandbox.market_id,
            side="BUY",
            outcome="Yes",
            order_type="market",
            price="0.99",
            quantity="20",
        )
    )
    done = polysim("accounts", "get", holder, empty, "--table", env=sandbox.env())
    assert done.code == 0, done.err
    accounts, positions = done.out.split("\n\n")
    assert [line.split()[-1] for line in accounts.splitlines()] == ["POSITIONS", "1", "0"]
    head, row = positions.splitlines()
    assert head.split()[:4] == ["ACCOUNT_ID", "MARKET_ID", "OUTCOME", "QUANTITY"]
    assert row.split()[:4] == [holder, sandbox.market_id, "Yes", "20.0000"]


def test_retries_and_plain_http_are_the_clients_options(sandbox: ThreadSandbox) -> None:
    env = sandbox.env()
    account = sandbox.account()
    path = f"/v1/partner/accounts/{account}"
    sandbox.call(lambda: sandbox.sb.fail_next(path, status=503, code="UNAVAILABLE"))
    once = polysim_here("accounts", "get", account, "--retries", "0", env=env)
    assert once.code == 1 and "ServerError: 503" in once.one_error_line()
    sandbox.call(lambda: sandbox.sb.fail_next(path, status=503, code="UNAVAILABLE"))
    again = polysim_here("accounts", "get", account, env=env)  # repeated after the 503
    assert again.code == 0 and json.loads(again.out)[0]["account_id"] == account
    insecure = polysim_here(
        "accounts", "get", account, "--base-url", "http://api.example.invalid", env=env
    )
    line = insecure.one_error_line()
    assert insecure.code == 2 and "plain http" in line
    assert line.endswith("or pass --allow-insecure")  # the CLI's flag, not the library's


def _round_trip(sandbox: ThreadSandbox, account: str, buy: str, sell: str) -> None:
    """Buy 10,000 Yes at ``buy`` and sell them at ``sell`` (a day's trading)."""
    for side, price in (("BUY", buy), ("SELL", sell)):
        sandbox.call(lambda p=price: sandbox.sb.set_price(sandbox.market_id, p))
        sandbox.call(
            lambda s=side: sandbox.sb.place_order(
                account_id=account,
                market_id=sandbox.market_id,
                side=s,
                outcome="Yes",
                order_type="market",
                price="0.99" if s == "BUY" else "0.01",
                quantity="10000",
            )
        )


def test_a_reset_restarts_the_attempt_evaluate_judges() -> None:
    # Attempt 1 trades on 2 days; after the reset, attempt 2 trades on 1 day (+2%):
    # with 3 trading days required it is in progress, not passed on the old days.
    sandbox = ThreadSandbox(seed=5, frozen_clock=True)
    try:
        env = sandbox.env()
        account = sandbox.account(rules={"profit_target_pct": 1, "min_trading_days": 3})
        for _ in range(2):
            _round_trip(sandbox, account, "0.50", "0.50")
            sandbox.call(lambda: sandbox.sb.advance(days=1))
        reset = polysim_here("accounts", "reset", account, env=env)
        assert reset.code == 0, reset.err
        state = json.loads(reset.out)[0]
        opened = state["metadata"]["opened_at"]
        # The reset's time by the server's (frozen, simulated) clock: two days after its start.
        assert opened == "2026-06-03T00:00:00+00:00"
        assert reset.one_error_line() == (
            f"polysim accounts reset: {account}: metadata.opened_at set to {opened}"
            " (evaluate judges the new attempt from then)"
        )
        sandbox.call(lambda: sandbox.sb.advance(days=1))
        _round_trip(sandbox, account, "0.50", "0.54")
        done = polysim_here("evaluate", account, env=env)
        assert done.code == 0 and done.err == ""
        verdict = json.loads(done.out)[0]["verdict"]
        assert verdict["status"] == "in_progress" and verdict["gates"] == ["min_trading_days"]
        assert verdict["metrics"]["trading_days"] == 1 and verdict["metrics"]["fills"] == 2
        # The reset done but opened_at refused: said so, with the command that fixes it.
        path = f"/v1/partner/accounts/{account}"
        sandbox.call(
            lambda: sandbox.sb.fail_next(path, status=503, code="UNAVAILABLE", method="PATCH")
        )
        half = polysim_here("accounts", "reset", account, "--retries", "0", env=env)
        assert half.code == 1 and json.loads(half.out)[0]["account_id"] == account
        refused, hint = half.err.splitlines()
        assert refused.startswith(f"polysim accounts reset: {account}: ServerError: 503")
        assert hint.startswith(f"polysim accounts reset: {account}: reset, but metadata.opened_at")
        assert "accounts update" in hint
    finally:
        sandbox.close()


def test_create_keeps_an_opened_at_given_in_the_metadata(sandbox: ThreadSandbox) -> None:
    env = sandbox.env()
    user = json.loads(polysim_here("traders", "register", "pc_7", "pc7@example.com", env=env).out)
    done = polysim_here(
        "accounts",
        "create",
        "--user",
        str(user["user_id"]),
        "--external-id",
        "ch-7",
        "--stage",
        "challenge",
        "--balance",
        "100",
        "--metadata",
        '{"opened_at": "2026-05-01T00:00:00+00:00"}',
        env=env,
    )
    assert done.code == 0 and done.err == ""
    assert json.loads(done.out)["metadata"] == {"opened_at": "2026-05-01T00:00:00+00:00"}


def test_update_merges_rules_and_metadata_unless_told_to_replace(sandbox: ThreadSandbox) -> None:
    env = sandbox.env()
    rules = {"profit_target_pct": 8, "max_drawdown_pct": 10, "day_time_zone": "Europe/Prague"}
    account = sandbox.account(rules=rules, metadata={"plan": "10k", "opened_at": "2026-06-01"})

    def stored() -> dict[str, object]:
        state: dict[str, object] = sandbox.call(lambda: sandbox.sb.account_state(account))
        return state

    merged = polysim_here(
        "accounts",
        "update",
        account,
        "--rules",
        '{"daily_loss_pct": 4, "max_drawdown_pct": null}',
        "--metadata",
        '{"plan": "25k"}',
        env=env,
    )
    assert merged.code == 0 and merged.err == ""
    assert stored()["rules"] == {
        "profit_target_pct": 8,
        "day_time_zone": "Europe/Prague",
        "daily_loss_pct": 4,
    }
    assert stored()["metadata"] == {"plan": "25k", "opened_at": "2026-06-01"}
    replaced = polysim_here(
        "accounts",
        "update",
        account,
        "--rules",
        '{"daily_loss_pct": 5, "max_drawdown_pct": null}',
        "--replace-rules",
        "--metadata",
        '{"plan": "5k"}',
        "--replace-metadata",
        env=env,
    )
    assert replaced.code == 0 and replaced.err == ""
    assert stored()["rules"] == {"daily_loss_pct": 5}
    assert stored()["metadata"] == {"plan": "5k"}
    lonely = polysim_here(
        "accounts", "update", account, "--stage", "funded", "--replace-rules", env=env
    )
    assert lonely.code == 2
    assert lonely.one_error_line() == "polysim accounts update: --replace-rules without the object"


def test_unknown_rules_warn_on_create_and_strict_rules_refuses(sandbox: ThreadSandbox) -> None:
    env = sandbox.env()
    account = sandbox.account()
    probe = sandbox.probe("/v1/partner/*")
    strict = polysim_here(
        "accounts", "update", account, "--rules", '{"dialy_loss_pct": 5}', "--strict-rules", env=env
    )
    assert strict.code == 2 and probe.count == 0
    assert "unknown rule 'dialy_loss_pct' (did you mean 'daily_loss_pct'?)" in strict.err
    warned = polysim_here(
        "accounts", "update", account, "--rules", '{"dialy_loss_pct": 5}', env=env
    )
    assert warned.code == 0
    assert warned.one_error_line().startswith(
        "polysim accounts update: warning: --rules: unknown rule 'dialy_loss_pct'"
        " (did you mean 'daily_loss_pct'?)"
    )


def test_register_echoes_the_metadata_and_get_says_nothing_of_created(
    sandbox: ThreadSandbox,
) -> None:
    env = sandbox.env()
    registered = polysim_here(
        "traders", "register", "pc_md", "md@example.com", "--metadata", '{"country": "CZ"}', env=env
    )
    user = json.loads(registered.out)
    assert user["metadata"] == {"country": "CZ"} and user["created"] is True
    got = polysim_here("traders", "get", str(user["user_id"]), env=env)
    assert json.loads(got.out) == {k: v for k, v in user.items() if k != "created"}
    table = polysim_here("traders", "get", str(user["user_id"]), "--table", env=env)
    assert "created" not in table.out and "country" in table.out
