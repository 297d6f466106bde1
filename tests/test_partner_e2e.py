"""``client.partner`` end to end against the sandbox, over real loopback sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

import polysim_async as ps
from polysim_async.sandbox import Sandbox

from ._helpers import SkipClock


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(seed=3, frozen_clock=True, random_walk=False) as sandbox:
        yield sandbox


@pytest.fixture
async def client(sb: Sandbox) -> AsyncIterator[ps.Client]:
    async with ps.Client(sb.tenant_key, sb.url, clock=SkipClock()) as c:
        yield c


async def new_account(client: ps.Client, name: str = "a-1") -> ps.PartnerAccount:
    user = await client.partner.users.register(f"trader-{name}", f"{name}@example.com")
    return await client.partner.accounts.create(
        user_id=user.user_id,
        external_id=name,
        stage="challenge",
        starting_balance="10000.00",
        rules={"profit_target_pct": 20, "max_drawdown_pct": "7.5"},
    )


async def test_users_register_replay_get_and_login_link(sb: Sandbox, client: ps.Client) -> None:
    first = await client.partner.users.register(
        "ext-1", "Trader@Example.com", metadata={"tier": "gold"}
    )
    again = await client.partner.users.register("ext-1", "trader@example.com")
    assert first.created is True and again.created is False
    assert again.user_id == first.user_id
    assert first.email == "trader@example.com"  # normalised by the server
    fetched = await client.partner.users.get(first.user_id)
    assert fetched.external_id == "ext-1" and fetched.metadata == {"tier": "gold"}
    link = await client.partner.users.send_login_link(
        first.user_id, redirect_url="https://polysimulator.com/x"
    )
    assert link.status == "accepted"
    [mail] = sb.outbox()
    assert mail["user_id"] == first.user_id and mail["redirect_url"].endswith("/x")


async def test_create_update_and_read_state_with_exact_money(client: ps.Client) -> None:
    account = await new_account(client)
    assert account.stage is ps.Stage.CHALLENGE and account.status is ps.AccountStatus.ACTIVE
    assert account.starting_balance == Decimal("10000.00")
    assert account.rules == ps.Rules(profit_target_pct=Decimal(20), max_drawdown_pct=Decimal("7.5"))
    state = await client.partner.accounts.update(
        account.account_id, stage="funded", metadata={"plan": "10k"}
    )
    assert state.stage is ps.Stage.FUNDED and state.metadata == {"plan": "10k"}
    assert state.rules == account.rules  # untouched fields stay as they are
    state = await client.partner.accounts.get(account.account_id)
    assert state.balance == state.equity == Decimal("10000.00")
    assert state.updated_at is not None and state.updated_at.tzinfo is not None


async def test_every_fill_newest_first_across_pages_and_resumable(
    sb: Sandbox, client: ps.Client
) -> None:
    account = await new_account(client)
    sb.generate_fills(1_234, account_id=account.account_id)
    trades = [t async for t in client.partner.accounts.trades(account.account_id)]
    assert len(trades) == 1_234
    keys = [(t.filled_at, t.order_id) for t in trades]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys)

    pages = client.partner.accounts.trade_pages(account.account_id, page_size=100)
    seen, saved = [], None
    async for page in pages:
        seen.extend(page.data)
        if len(seen) == 500:
            saved = page.next_cursor  # checkpoint, then stop as if the process died
            break
    assert saved is not None
    rest = [t async for t in client.partner.accounts.trades(account.account_id, cursor=saved)]
    assert [t.order_id for t in seen + rest] == [t.order_id for t in trades]

    buys = [t async for t in client.partner.accounts.trades(account.account_id, side="buy")]
    assert buys and all(t.side is ps.Side.BUY for t in buys)
    assert len(buys) < len(trades)


async def test_close_and_reset_drain_orders_not_cancelled(sb: Sandbox, client: ps.Client) -> None:
    sb.configure(bulk_cancel_limit=3)
    account = await new_account(client)
    await sb.place_resting_orders(7, account_id=account.account_id)
    closed = await client.partner.accounts.close(account.account_id)
    assert closed.status is ps.AccountStatus.CLOSED
    assert client.stats.retries["drain"] == 2  # 3 + 3 cancelled on 409s, the last 1 then closed
    assert closed.balance == Decimal("10000.00")  # reservations released
    again = await client.partner.accounts.close(account.account_id)  # idempotent
    assert again.status is ps.AccountStatus.CLOSED
    reset = await client.partner.accounts.reset(account.account_id)
    assert reset.status is ps.AccountStatus.ACTIVE and reset.account_id == account.account_id


async def test_a_spent_drain_budget_raises_orders_not_cancelled(sb: Sandbox) -> None:
    sb.configure(bulk_cancel_limit=2)
    async with ps.Client(sb.tenant_key, sb.url, clock=SkipClock(), drain_retries=1) as client:
        account = await new_account(client)
        await sb.place_resting_orders(7, account_id=account.account_id)
        with pytest.raises(ps.OrdersNotCancelledError) as exc:
            await client.partner.accounts.reset(account.account_id)
    assert exc.value.status == 409 and exc.value.code == "ORDERS_NOT_CANCELLED"
    assert exc.value.request_id


async def test_server_errors_map_to_typed_errors(sb: Sandbox, client: ps.Client) -> None:
    account = await new_account(client)
    other = sb.create_tenant("Other Firm")
    async with ps.Client(other.key, sb.url) as foreign:
        with pytest.raises(ps.NotFoundError) as missing:
            await foreign.partner.accounts.get(account.account_id)
    assert missing.value.request_id
    with pytest.raises(ps.ValidationError) as bad:
        await client.partner.accounts.trade_pages(
            account.account_id, cursor="not-a-cursor"
        ).__anext__()
    assert bad.value.status == 422 and bad.value.code == "VALIDATION_FAILED"
    async with ps.Client(sb.api_key, sb.url) as trader:  # a trader key on the partner API
        with pytest.raises(ps.AuthenticationError):
            await trader.partner.accounts.get(account.account_id)


async def test_injected_429_and_503_are_retried_transparently(
    sb: Sandbox, client: ps.Client
) -> None:
    account = await new_account(client)
    path = f"/v1/partner/accounts/{account.account_id}"
    sb.fail_next(path, status=429, code="RATE_LIMIT_EXCEEDED", retry_after=0)
    sb.fail_next(path, status=503, code="SERVER_BUSY", times=1)
    state = await client.partner.accounts.get(account.account_id)
    assert state.account_id == account.account_id
    assert client.stats.retries["rate_limit"] == 1 and client.stats.retries["server"] == 1


async def test_trades_many_pulls_every_account_in_order(sb: Sandbox, client: ps.Client) -> None:
    counts = {}
    for i, n in enumerate([0, 1, 499, 500, 1_001]):
        account = await new_account(client, f"acc-{i}")
        if n:
            sb.generate_fills(n, account_id=account.account_id)
        counts[account.account_id] = n
    got: dict[str, list[ps.Trade]] = {aid: [] for aid in counts}
    async for account_id, trade in client.partner.accounts.trades_many(list(counts)):
        got[account_id].append(trade)
    assert {aid: len(trades) for aid, trades in got.items()} == counts
    for trades in got.values():
        keys = [(t.filled_at, t.order_id) for t in trades]
        assert keys == sorted(keys, reverse=True)
