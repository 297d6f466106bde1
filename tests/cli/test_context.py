"""``Context.each``, the loop of every command over many accounts, on a ``MockTransport``.

Answers the sandbox cannot give on cue (an account that is unreachable while the
others hang) come from a handler, so the abort-and-cancel rules are checked exactly.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest

import polysim_async as ps
from polysim_async.cli._main import Context, masked_argv
from polysim_async.cli._output import Output
from polysim_async_cli import build_parser


def _state(account_id: str) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "external_id": f"ext-{account_id}",
        "stage": "challenge",
        "status": "active",
        "balance": "100.00",
        "starting_balance": "100.00",
        "equity": "100.00",
        "unrealized_pnl": "0.00",
        "open_positions": [],
    }


def _context() -> tuple[Context, io.StringIO]:
    err = io.StringIO()
    args = build_parser().parse_args(["accounts", "get", "x"])
    return Context(args, ["accounts", "get", "x"], Output(io.StringIO(), err)), err


def _client(handler: Any) -> ps.Client:
    return ps.Client(
        "pt_test", "https://api.test", transport=ps.MockTransport(handler), max_retries=0
    )


async def test_each_keeps_the_order_and_hands_back_each_failure() -> None:
    def handler(request: ps.Request) -> ps.Response:
        account_id = request.path.rsplit("/", 1)[1]
        if account_id == "gone":
            return ps.Response.from_json(
                {"error": "ACCOUNT_NOT_FOUND", "message": "no"}, status=404
            )
        return ps.Response.from_json(_state(account_id))

    ctx, _ = _context()
    async with _client(handler) as client:
        results = await ctx.each(["a", "gone", "b"], client.partner.accounts.get, concurrency=2)
    assert [account_id for account_id, _ in results] == ["a", "gone", "b"]
    assert isinstance(results[0][1], ps.AccountState) and results[0][1].account_id == "a"
    assert isinstance(results[1][1], ps.NotFoundError)
    assert isinstance(results[2][1], ps.AccountState)


@pytest.mark.parametrize(
    "failure",
    [
        ps.ConnectError("cannot connect"),
        ps.Response.from_json({"error": "INVALID_KEY", "message": "no"}, status=401),
    ],
    ids=["unreachable", "refused key"],
)
async def test_each_stops_at_once_when_every_account_would_fail_the_same_way(
    failure: Any,
) -> None:
    hanging = asyncio.Event()
    started: list[str] = []

    async def handler(request: ps.Request) -> ps.Response:
        account_id = request.path.rsplit("/", 1)[1]
        started.append(account_id)
        if account_id == "first":
            if isinstance(failure, Exception):
                raise failure
            return failure  # type: ignore[no-any-return]
        await hanging.wait()  # never set: these must be cancelled
        return ps.Response.from_json(_state(account_id))

    ctx, _ = _context()
    async with _client(handler) as client:
        with pytest.raises((ps.ConnectError, ps.AuthenticationError)):
            await ctx.each(
                ["slow-1", "first", "slow-2", "later"], client.partner.accounts.get, concurrency=3
            )
    # Nothing starts after the failure (the fourth never does), and what hung was cancelled.
    assert "first" in started and "later" not in started
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["trades", "export", "a", "--out", "d", "--api-key", "pt_secret"], "--api-key '***'"),
        (["trades", "export", "a", "--out", "d", "--api-key=pt_secret"], "'--api-key=***'"),
        (
            ["trades", "export", "a", "--out", "d", "--api-k", "pt_secret"],
            "--api-k '***'",
        ),  # a prefix
        (["executions", "tail", "--since", "x", "--api-key", "ps_live_secret"], "'***'"),
    ],
)
def test_echoed_command_lines_never_show_the_key(argv: list[str], shown: str) -> None:
    args = build_parser().parse_args(argv)
    ctx = Context(args, argv, Output(io.StringIO(), io.StringIO()))
    assert "secret" not in ctx.command_line
    assert shown in ctx.command_line
    assert ctx.command_line.startswith(f"polysim {argv[0]} {argv[1]}")


def test_only_secret_options_are_masked() -> None:
    # argparse takes "--ap" for --api-key; after "--" nothing is an option.
    assert masked_argv(["get", "--ap", "k", "--", "--api-key", "ID"]) == [
        "get",
        "--ap",
        "***",
        "--",
        "--api-key",
        "ID",
    ]
    assert masked_argv(["--base-url", "http://h", "--api-key", "k", "ID"]) == [
        "--base-url",
        "http://h",
        "--api-key",
        "***",
        "ID",
    ]
