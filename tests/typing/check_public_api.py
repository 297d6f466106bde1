"""Static checks of the public API's types: run by mypy in CI, never executed.

Each ``assert_type`` fails the type check if a public signature drifts.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from typing_extensions import assert_type

import polysim_async as ps


async def partner(client: ps.Client) -> None:
    user = await client.partner.users.register("ext", "t@example.com")
    assert_type(user, ps.PartnerUser)
    assert_type(user.created, bool)
    account = await client.partner.accounts.create(
        user_id=user.user_id, external_id="a", stage="challenge", starting_balance="10000"
    )
    assert_type(account, ps.PartnerAccount)
    state = await client.partner.accounts.get(account.account_id)
    assert_type(state, ps.AccountState)
    assert_type(state.equity, Decimal)
    assert_type(state.realized_pnl, Decimal | None)
    trades = client.partner.accounts.trades(account.account_id)
    assert_type(trades, AsyncGenerator[ps.Trade, None])
    pages = client.partner.accounts.trade_pages(account.account_id)
    assert_type(pages, AsyncGenerator[ps.TradePage, None])
    async for trade in client.partner.accounts.trades(account.account_id):
        assert_type(trade.price, Decimal)
        assert_type(trade.raw_price, str)
        assert_type(trade.side, ps.Side)
    async for account_id, trade in client.partner.accounts.trades_many([account.account_id]):
        assert_type(account_id, str)
        assert_type(trade, ps.Trade)
    async for item in client.partner.accounts.trades_many([account.account_id]):
        assert_type(item, ps.AccountTrade)
    assert_type(state.rules, ps.Rules | None)
    assert_type(state.request_id, str | None)
    assert_type(await client.partner.accounts.close(account.account_id), ps.AccountState)
    assert_type(await client.partner.accounts.reset(account.account_id), ps.AccountState)
    watch = client.partner.accounts.watch_trades([account.account_id])
    assert_type(watch, ps.TradeWatch)
    assert_type(watch.watermarks, dict[str, ps.Watermark])
    async with watch:
        async for watched in watch:
            assert_type(watched, ps.AccountTrade)


async def shared(client: ps.Client, store: ps.CheckpointStore, ids: list[str]) -> None:
    # Many workers: a shard and a store, the rest of the code the same.
    async for item in client.partner.accounts.trades_many(ids, shard=(0, 2)):
        assert_type(item, ps.AccountTrade)
    watch = client.partner.accounts.watch_trades(ids, shard=(1, 2), store=store, key="fills")
    assert_type(watch.owned, frozenset[str])
    stream = client.executions.stream(store=store, key="executions", lease_ttl=10)
    assert_type(stream, ps.FillStream[ps.Fill])
    summary = await client.partner.accounts.export(
        ids, "out", format="csv", shard=(0, 2), store=store, key="nightly"
    )
    assert_type(summary, ps.ExportSummary)
    async with ps.LeaseKeeper(store, ttl=ps.DEFAULT_LEASE_TTL) as keeper:
        assert_type(await keeper.acquire("job"), ps.Lease | None)


async def trader(client: ps.Client) -> None:
    assert_type(await client.account.equity(days=30), list[ps.EquityPoint])
    assert_type(await client.account.balance(), ps.Balance)
    order = await client.orders.place(
        market_id="0x1", side="BUY", outcome="Yes", order_type="limit", price="0.5", quantity="5"
    )
    assert_type(order, ps.Order)
    assert_type(await client.orders.cancel_all(), ps.CancelAllResult)
    assert_type(await client.keys.ws_token(), ps.WsToken)
    assert_type(client.orders.list(), AsyncGenerator[ps.OrderRow, None])
    assert_type(client.orders.list_pages(), AsyncGenerator[ps.OrderPage, None])
    assert_type(client.account.history(), AsyncGenerator[ps.HistoryRow, None])
    assert_type(client.account.history_pages(), AsyncGenerator[ps.HistoryPage, None])


async def streams(client: ps.Client) -> None:
    # The ``gaps`` flag changes what the stream yields.
    assert_type(client.executions.stream(), ps.FillStream[ps.Fill])
    assert_type(client.executions.stream(gaps=True), ps.FillStream[ps.Fill | ps.StreamGap])
    async with client.executions.stream() as fills:
        async for fill in fills:
            assert_type(fill, ps.Fill)
        assert_type(fills.position, ps.Watermark | None)
        assert_type(fills.checkpoint, ps.StreamCheckpoint | None)


def testing() -> None:
    def handler(request: ps.Request) -> ps.Response | ps.MockWebSocket:
        if request.websocket:
            return ps.MockWebSocket()
        return ps.Response.from_json({"balance": "1"})

    client = ps.Client("ps_live_x", transport=ps.MockTransport(handler), clock=ps.SystemClock())
    assert_type(client.clock, ps.Clock)
    assert_type(client.timeout, ps.Timeout)
    assert_type(ps.is_transient(ValueError()), bool)


def errors(exc: ps.APIStatusError) -> None:
    assert_type(exc.status, int)
    assert_type(exc.code, str | None)
    assert_type(exc.retry_after, float | None)
    assert_type(exc.request_id, str | None)


def rules(state: ps.AccountState, trades: list[ps.Trade], fills: list[ps.Fill]) -> None:
    rule_set = ps.RuleSet.from_wire(state.rules)
    assert_type(rule_set.to_wire(), dict[str, Any])
    assert_type(rule_set.max_drawdown_pct, Decimal | None)
    ev = ps.Evaluator(rule_set, starting_balance=state.starting_balance, opened_at=datetime.now())
    for trade in trades:
        ev.add_fill(trade)  # partner trades and executions fills both fit FillLike
    for fill in fills:
        ev.add_fill(fill)
    ev.add_sample(datetime.now(), balance=state.balance, equity=state.equity)
    verdict = ev.verdict(datetime.now())
    assert_type(verdict, ps.Verdict)
    assert_type(verdict.status, Literal["in_progress", "passed", "failed"])
    assert_type(verdict.breaches, tuple[ps.Breach, ...])
    assert_type(verdict.headroom, dict[str, Decimal])
    assert_type(ev.nearest_headroom, Decimal | None)
    assert_type(ps.Evaluator.restore(ev.state), ps.Evaluator)
    one_shot = ps.evaluate(
        rule_set,
        starting_balance="10000",
        opened_at=datetime.now(),
        fills=trades,
        samples=[state, ps.sample_of(state)],
        now=datetime.now(),
    )
    assert_type(one_shot, ps.Verdict)
