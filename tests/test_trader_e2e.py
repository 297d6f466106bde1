"""The trader API for bots (issue 14) end to end: every client method against the sandbox,
over real loopback sockets.

Time is the sandbox's frozen clock (``advance``); the client's backoff sleeps do not
wait. The dead-man's switch is proven on that clock: a bot that crashes inside
``keepalive`` has its orders cancelled once the registration lapses, with no real
sleep anywhere.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import polysim_async as ps
from polysim_async.sandbox import Sandbox

from ._helpers import SkipClock
from .sandbox._helpers import FakeTime


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    async with Sandbox(seed=21, frozen_clock=True, random_walk=False, rate_limits=False) as box:
        yield box


@pytest.fixture
async def client(sb: Sandbox) -> AsyncIterator[ps.Client]:
    async with ps.Client(sb.api_key, sb.url, rate_limit=None, clock=SkipClock()) as c:
        yield c


def limit(sb: Sandbox, price: str, **kw: Any) -> dict[str, Any]:
    order = {
        "market_id": sb.market_id,
        "side": "BUY",
        "outcome": "Yes",
        "order_type": "limit",
        "price": price,
        "quantity": "10",
    }
    return {**order, **kw}


async def pending_ids(client: ps.Client) -> list[int]:
    return sorted([o.order_id async for o in client.orders.list(status="PENDING")])


# -- identity and keys ---------------------------------------------------------------------
async def test_a_cancel_and_a_key_delete_whose_answers_were_lost_succeed(
    sb: Sandbox, client: ps.Client
) -> None:
    order = await client.orders.place(**limit(sb, "0.05"))
    sb.abort_next(f"/v1/orders/{order.order_id}", after=True, method="DELETE")
    cancelled = await client.orders.cancel(order.order_id)
    assert cancelled.status is ps.OrderStatus.CANCELLED and cancelled.order_id == order.order_id
    assert await pending_ids(client) == []

    key = await client.keys.create("spare")
    sb.abort_next(f"/v1/keys/{key.id}", after=True, method="DELETE")
    assert await client.keys.delete(key.id) is None
    assert [k.is_active async for k in client.keys.list() if k.id == key.id] == [False]


async def test_me_and_the_tier_table(sb: Sandbox, client: ps.Client) -> None:
    me = await client.me()
    assert (me.user_id, me.tier, me.balance) == (sb.user_id, "pro", Decimal("10000.00"))
    assert me.permissions == ["read", "trade"] and me.key_count == 1
    tiers = {row.tier: row for row in await client.keys.tiers()}
    assert tiers["pro"].max_batch_size == 5 and tiers["enterprise"].max_ws_connections == 50
    assert await client.orders.batch_limit() == 5


async def test_keys_create_rename_rotate_delete(sb: Sandbox, client: ps.Client) -> None:
    new = await client.keys.create("bot-2", permissions=["read", "trade"])
    assert "ps_live_" in repr(new.raw_key) and new.raw_key.reveal() not in repr(new)
    assert new.key_prefix == new.raw_key.reveal()[:16]
    async with ps.Client(new.raw_key.reveal(), sb.url, rate_limit=None) as second:
        assert (await second.me()).key_count == 2  # the new key works at once
    renamed = await client.keys.rename(new.id, name="bot-two")
    assert renamed.name == "bot-two" and renamed.is_active
    rotated = await client.keys.rotate(new.id)
    assert rotated.id != new.id and rotated.name == "bot-two"
    listed = [k async for k in client.keys.list(page_size=1)]  # three pages of one
    assert [k.id for k in listed] == [1, new.id, rotated.id]
    assert listed[1].expires_at == sb.now() + timedelta(hours=24)
    await client.keys.delete(rotated.id)
    with pytest.raises(ps.NotFoundError):
        await client.keys.delete(rotated.id)
    with pytest.raises(ps.ValidationError):  # 400 VALIDATION_FAILED: an unknown tier
        await client.keys.create("x", tier="gold")


# -- wallets -------------------------------------------------------------------------------
async def test_wallets_lifecycle(sb: Sandbox, client: ps.Client) -> None:
    lab = await client.wallets.create("experiments")
    assert (lab.kind, lab.label, lab.balance, lab.generation) == (
        "SANDBOX",
        "experiments",
        Decimal("10000.00"),
        1,
    )
    assert await client.wallets.get(lab.id) == lab
    renamed = await client.wallets.update(lab.id, label="lab")
    assert renamed.label == "lab"
    fresh = await client.wallets.reset(lab.id)
    assert (fresh.generation, fresh.parent_wallet_id, fresh.status) == (2, lab.id, "ACTIVE")
    archived = await client.wallets.archive(fresh.id)
    assert archived.status == "ARCHIVED" and archived.archived_at is not None
    kinds = [(w.kind, w.status) async for w in client.wallets.list(page_size=2)]
    assert kinds == [("API", "ACTIVE"), ("SANDBOX", "ARCHIVED"), ("SANDBOX", "ARCHIVED")]
    # A wallet id is accepted by every read that takes one.
    folio = await client.account.portfolio(wallet_id=lab.id)
    assert folio.positions == [] and folio.total_trades == 0
    with pytest.raises(ps.NotFoundError):
        await client.wallets.get(1)
    with pytest.raises(ps.APIStatusError) as info:  # only SANDBOX wallets are made here
        await client.wallets.create("main", kind="MAIN")
    assert info.value.status == 400 and info.value.code == "INVALID_WALLET_KIND"


async def test_partner_wallets_show_their_tenant(sb: Sandbox) -> None:
    async with ps.Client(sb.tenant_key, sb.url, rate_limit=None) as partner:
        user = await partner.partner.users.register("t-1", "t1@example.com")
        account = await partner.partner.accounts.create(
            user_id=user.user_id, external_id="a-1", stage="funded", starting_balance="5000"
        )
    key = sb.create_trader_key(user.user_id).api_key
    async with ps.Client(key, sb.url, rate_limit=None) as trader:
        prop = [w async for w in trader.wallets.list() if w.kind == "PROP_FIRM"]
    assert len(prop) == 1 and prop[0].balance == Decimal("5000.00")
    assert prop[0].managed_by is not None and prop[0].managed_by.display_name == "Sandbox Partner"
    assert prop[0].b2b_account is not None
    assert (prop[0].b2b_account.account_id, prop[0].b2b_account.stage) == (
        account.account_id,
        "funded",
    )


# -- market data ---------------------------------------------------------------------------
async def test_markets_find_read_and_price(sb: Sandbox, client: ps.Client) -> None:
    hot = sb.create_market(question="Will BTC reach 100k?", category="crypto", volume="9000")
    sb.set_price(hot, "0.65")
    found = [m async for m in client.markets.list(query="btc", hot_only=True)]
    assert [m.condition_id for m in found] == [hot]
    market = found[0]
    assert market.is_hot and market.live_price is not None
    assert market.live_price.buy == Decimal("0.65") and market.volume_total == Decimal("9000")
    pages = [p async for p in client.markets.list_pages(page_size=3)]
    assert [len(p.data) for p in pages] == [3, 1] and pages[-1].last
    resumed = [m.condition_id async for m in client.markets.list(cursor=pages[0].next_cursor)]
    assert resumed == [m.condition_id for m in pages[1].data]
    detail = await client.markets.get(hot, include_book=True)
    assert detail.order_book is not None and detail.order_book.best_ask == Decimal("0.66")
    assert detail.tokens is not None and detail.tokens[0].price == Decimal("0.65")
    assert (await client.markets.by_slug(detail.slug or "")).condition_id == hot
    assert detail.clob_token_ids is not None
    yes, no = detail.clob_token_ids
    token = await client.markets.by_token(no)
    assert (token.condition_id, token.primary_token_id, token.outcome) == (hot, yes, "No")
    book = await client.markets.book(hot, outcome="No", depth=2)
    assert (book.best_bid, book.best_ask, book.tick_size) == (
        Decimal("0.34"),
        Decimal("0.36"),
        Decimal("0.01"),
    )
    assert len(book.bids) == 2 and book.time == sb.now()
    assert await client.markets.book_by_token(no, depth=2) == book
    sb.advance(hours=2)
    candles = await client.markets.candles(hot, interval=ps.CandleInterval.HOUR)
    assert [c.close for c in candles] == [Decimal("0.65")] * 3
    assert candles[-1].start == sb.now().replace(minute=0, second=0, microsecond=0)
    with pytest.raises(ps.NotFoundError):
        await client.markets.get("0xnope")


async def test_prices_in_batch_are_split_by_the_tier(sb: Sandbox, client: ps.Client) -> None:
    ids = [sb.create_market(question=f"Q{i}?", price="0.30") for i in range(4)] + sb.market_ids
    rows = await client.prices.batch(ids)  # 7 ids, pro: 5 a request
    assert [r.condition_id for r in rows] == ids
    assert [r.buy for r in rows[:4]] == [Decimal("0.30")] * 4
    unknown = await client.prices.batch(["0xnope"])
    assert unknown[0].buy is None and unknown[0].outcomes == []


async def test_the_tier_is_learned_from_the_rate_limit_headers(sb: Sandbox) -> None:
    time = FakeTime()
    async with (
        Sandbox(seed=22, frozen_clock=True, random_walk=False, rate_clock=time) as limited,
        ps.Client(limited.api_key, limited.url, rate_limit=None, clock=SkipClock()) as client,
    ):
        limited.set_tier("pro_plus")
        await client.account.balance()  # any answer carries x-ratelimit-tier
        assert await client.orders.batch_limit() == 10  # no GET /v1/me needed


# -- orders --------------------------------------------------------------------------------
async def test_place_many_reports_each_entry(sb: Sandbox, client: ps.Client) -> None:
    result = await client.orders.place_many(
        [
            limit(sb, "0.30"),
            limit(sb, "0.99", order_type="market"),
            limit(sb, "0.30", market_id="0xnope"),
        ]
    )
    assert (result.succeeded, result.failed) == (2, 1)
    assert [o.status for o in result.accepted] == [ps.OrderStatus.PENDING, ps.OrderStatus.FILLED]
    (bad,) = result.rejected
    assert (bad.order_id, bad.error) == (0, "MARKET_NOT_FOUND")
    assert await pending_ids(client) == [result.results[0].order_id]
    with pytest.raises(ps.InvalidArgumentError):  # 6 > pro's 5: refused before sending
        await client.orders.place_many([limit(sb, "0.30")] * 6)


async def test_a_retried_batch_after_a_lost_answer_never_double_places(
    sb: Sandbox, client: ps.Client
) -> None:
    entries = client.orders.prepare_many([limit(sb, "0.30"), limit(sb, "0.31")])
    sb.abort_next("/v1/orders/batch", after=True, method="POST")  # placed, answer lost
    result = await client.orders.place_many(entries)
    assert [o.is_replay for o in result.results] == [True, True]
    assert client.stats.retries["transport"] == 1
    assert await pending_ids(client) == sorted(o.order_id for o in result.results)
    again = await client.orders.place_many(entries)  # a resend after an unknown outcome
    assert [o.order_id for o in again.results] == [o.order_id for o in result.results]
    assert len(await pending_ids(client)) == 2


async def test_cancel_market_by_condition_or_token(sb: Sandbox, client: ps.Client) -> None:
    other = sb.market_ids[1]
    await client.orders.place_many(
        [limit(sb, "0.30"), limit(sb, "0.30", outcome="No"), limit(sb, "0.30", market_id=other)]
    )
    detail = await client.markets.get(sb.market_id)
    assert detail.clob_token_ids is not None
    by_token = await client.orders.cancel_market(asset_id=detail.clob_token_ids[1])
    by_market = await client.orders.cancel_market(market_id=sb.market_id)
    assert len(by_token.canceled) == len(by_market.canceled) == 1
    assert (await client.orders.cancel_market(market_id=sb.market_id)).canceled == []
    assert len(await pending_ids(client)) == 1


# -- the dead-man's switch -----------------------------------------------------------------
async def test_a_heartbeat_registers_on_the_sandbox_clock(sb: Sandbox, client: ps.Client) -> None:
    beat = await client.orders.heartbeat(5000, label="solo")
    assert beat.ok and beat.expires_at == sb.now() + timedelta(seconds=6.25)
    with pytest.raises(ps.InvalidArgumentError):
        await client.orders.heartbeat(999)


class Crash(Exception):
    """The bot dies."""


async def test_a_bot_that_crashes_inside_keepalive_has_its_orders_cancelled(
    sb: Sandbox, client: ps.Client
) -> None:
    with pytest.raises(Crash):
        async with client.orders.keepalive(interval=10, label="mm") as switch:
            assert switch.alive and switch.expires_at == sb.now() + timedelta(seconds=12.5)
            quotes = [limit(sb, "0.30"), limit(sb, "0.30", outcome="No")]
            result = await client.orders.place_many(quotes)
            raise Crash
    ids = sorted(o.order_id for o in result.results)
    assert len(ids) == 2 and await pending_ids(client) == ids
    assert [h["client_label"] for h in sb.heartbeats()] == ["mm"]
    sb.advance(12.5)  # the last beat's interval plus its grace: still protected
    assert await pending_ids(client) == ids
    sb.advance(0.001)
    assert await pending_ids(client) == []
    for order_id in ids:
        row = await client.orders.get(order_id)
        assert (row.status, row.cancelled_reason) == (ps.OrderStatus.CANCELLED, "heartbeat_expired")
    assert (await client.account.balance()).balance == Decimal("10000.00")


# -- account reads ---------------------------------------------------------------------------
async def test_portfolio_settlements_reset_and_exports(
    sb: Sandbox, client: ps.Client, tmp_path: Path
) -> None:
    markets = [sb.create_market(question=f"S{i}?") for i in range(3)]
    for market_id in markets:
        await client.orders.place(
            market_id=market_id,
            side="BUY",
            outcome="Yes",
            order_type="market",
            price="0.99",
            quantity="10",
        )
    folio = await client.account.portfolio()
    assert len(folio.positions) == 3 and folio.total_trades == 3 and folio.win_rate is None
    sb.resolve_market(markets[0], "Yes")
    sb.advance(days=1)
    sb.resolve_market(markets[1], "No")
    settled = [s async for s in client.account.settlements(page_size=1)]
    assert [s.market_id for s in settled] == [markets[1], markets[0]]  # newest position first
    assert [(s.result, s.payout) for s in settled] == [
        ("lost", Decimal("0.00")),
        ("won", Decimal("10.00")),
    ]
    pages = [p async for p in client.account.settlement_pages(page_size=1)]
    assert [p.next_cursor for p in pages] == [str(settled[0].position_id), ""]
    later = [s async for s in client.account.settlements(start=date(2026, 6, 2))]
    assert [s.market_id for s in later] == [markets[1]]
    assert (await client.account.portfolio()).win_rate_percent == Decimal("50.0")
    trades = await client.account.export_trades_csv(tmp_path / "trades.csv", market_id=markets[0])
    rows = list(csv.reader(trades.path.read_text().splitlines()))
    assert rows[0][:3] == ["filled_at", "order_id", "wallet_id"] and len(rows) == 2
    assert not trades.truncated and trades.size == trades.path.stat().st_size
    sb.configure(export_row_cap=1)
    settlements = await client.account.export_settlements_csv(
        tmp_path / "settlements.csv", end=datetime(2026, 6, 3, tzinfo=timezone.utc)
    )
    assert settlements.truncated and len(settlements.path.read_text().splitlines()) == 3
    reset = await client.account.reset_api_balance()
    assert (reset.new_api_balance, reset.positions_closed) == (Decimal("10000.00"), 1)
    assert (await client.account.balance()).balance == Decimal("10000.00")
    assert [p.status async for p in _positions(client)] == ["CLOSED", "CLOSED", "CLOSED_BY_RESET"]


async def _positions(client: ps.Client) -> AsyncIterator[ps.Position]:
    for position in await client.account.positions():
        yield position


async def test_free_plans_get_upgrade_required(sb: Sandbox, tmp_path: Path) -> None:
    free = sb.create_trader(tier="free").api_key
    async with ps.Client(free, sb.url, rate_limit=None) as client:
        with pytest.raises(ps.APIStatusError) as info:
            await client.account.export_trades_csv(tmp_path / "t.csv")
        assert info.value.status == 402 and info.value.code == "UPGRADE_REQUIRED"
        assert not (tmp_path / "t.csv").exists()
        with pytest.raises(ps.APIStatusError) as info:
            await client.account.reset_api_balance()
        assert info.value.status == 402
        assert await client.orders.batch_limit() == 1
