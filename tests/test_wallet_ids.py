"""Every call that takes a ``wallet_id`` checks it one way (``wallet_number``): a wallet's
id is a positive integer, so 0 is refused before anything is sent, as wallets.get does."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import polysim_async as ps

from ._helpers import BASE


def calls_taking_a_wallet(client: ps.Client, tmp: Path) -> dict[str, Callable[[Any], Any]]:
    csv = str(tmp / "out.csv")
    return {
        "me": lambda w: client.me(wallet_id=w),
        "account.portfolio": lambda w: client.account.portfolio(wallet_id=w),
        "account.equity": lambda w: client.account.equity(wallet_id=w),
        "account.positions": lambda w: client.account.positions(wallet_id=w),
        "account.history": lambda w: client.account.history(wallet_id=w),
        "account.history_pages": lambda w: client.account.history_pages(wallet_id=w),
        "account.settlements": lambda w: client.account.settlements(wallet_id=w),
        "account.settlement_pages": lambda w: client.account.settlement_pages(wallet_id=w),
        "account.export_trades_csv": lambda w: client.account.export_trades_csv(csv, wallet_id=w),
        "account.export_settlements_csv": lambda w: client.account.export_settlements_csv(
            csv, wallet_id=w
        ),
        "orders.get": lambda w: client.orders.get(1, wallet_id=w),
        "orders.list": lambda w: client.orders.list(wallet_id=w),
        "orders.list_pages": lambda w: client.orders.list_pages(wallet_id=w),
        "executions.stream": lambda w: client.executions.stream(wallet_id=w),
        "wallets.get": lambda w: client.wallets.get(w),
        "wallets.update": lambda w: client.wallets.update(w, label="x"),
        "wallets.archive": lambda w: client.wallets.archive(w),
        "wallets.reset": lambda w: client.wallets.reset(w),
    }


async def start(call: Callable[[Any], Any], wallet_id: Any) -> None:
    """Call, then run the result as far as its first request."""
    result = call(wallet_id)
    if inspect.isawaitable(result):
        await result
    elif hasattr(result, "__anext__"):
        try:
            await result.__anext__()
        finally:
            await result.aclose()
    elif hasattr(result, "__aenter__"):
        async with result:
            pass


@pytest.mark.parametrize("bad", [0, -1, True, 1.0, "main"])
async def test_every_call_refuses_the_same_bad_wallet_ids_before_sending(
    tmp_path: Path, bad: Any
) -> None:
    sent: list[str] = []

    def handle(request: ps.Request) -> ps.Response:
        sent.append(request.path)
        return ps.Response.from_json({"error": "NOT_FOUND", "message": "x"}, status=404)

    transport = ps.MockTransport(handle)
    async with ps.Client("ps_live_" + "k" * 64, BASE, transport=transport) as client:
        refused = []
        for name, call in calls_taking_a_wallet(client, tmp_path).items():
            try:
                await start(call, bad)
            except ps.InvalidArgumentError as exc:
                assert "wallet_id" in str(exc)
                refused.append(name)
            except ps.PolySimError:
                pass
    assert refused == list(calls_taking_a_wallet(client, tmp_path))
    assert sent == []


async def test_a_positive_wallet_id_is_sent_as_given() -> None:
    sent: list[dict[str, str]] = []

    def handle(request: ps.Request) -> ps.Response:
        sent.append(dict(request.params or {}))
        return ps.Response.from_json({"error": "NOT_FOUND", "message": "x"}, status=404)

    transport = ps.MockTransport(handle)
    async with ps.Client("ps_live_" + "k" * 64, BASE, transport=transport) as client:
        for call in (client.account.portfolio, client.me):
            with pytest.raises(ps.NotFoundError):
                await call(wallet_id=1)
        with pytest.raises(ps.NotFoundError):
            await client.orders.get(5, wallet_id=1)
    assert [p.get("wallet_id") for p in sent] == ["1", "1", "1"]
