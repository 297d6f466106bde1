"""Static checks of the trader API added for bots (issue 14): run by mypy in CI, never executed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal

from typing_extensions import assert_type

import polysim_async as ps


async def identity_and_keys(client: ps.Client) -> None:
    me = await client.me()
    assert_type(me, ps.Me)
    assert_type(me.tier, str | None)
    assert_type(await client.keys.tiers(), list[ps.TierLimits])
    assert_type(client.keys.list(), AsyncIterator[ps.ApiKey])
    key = await client.keys.create("bot", permissions=["read", "trade"])
    assert_type(key, ps.NewApiKey)
    assert_type(key.raw_key, ps.Secret)
    assert_type(key.raw_key.reveal(), str)
    assert_type(await client.keys.rotate(key.id), ps.NewApiKey)
    assert_type(await client.keys.rename(key.id, name="b"), ps.ApiKey)
    assert_type(await client.keys.delete(key.id), None)


async def account_and_wallets(client: ps.Client) -> None:
    folio = await client.account.portfolio(wallet_id="all")
    assert_type(folio, ps.Portfolio)
    assert_type(folio.win_rate_percent, Decimal | None)
    assert_type(client.account.settlements(), AsyncIterator[ps.Settlement])
    assert_type(client.account.settlement_pages(), AsyncIterator[ps.SettlementPage])
    assert_type(await client.account.reset_api_balance(), ps.ApiBalanceReset)
    assert_type(await client.account.export_trades_csv("t.csv"), ps.CsvExport)
    assert_type(client.wallets.list(), AsyncIterator[ps.Wallet])
    wallet = await client.wallets.create("lab", kind=ps.WalletKind.SANDBOX)
    assert_type(wallet, ps.Wallet)
    assert_type(wallet.balance, Decimal)
    assert_type(await client.wallets.reset(wallet.id), ps.Wallet)


async def market_data(client: ps.Client) -> None:
    assert_type(client.markets.list(query="btc"), AsyncIterator[ps.Market])
    assert_type(client.markets.list_pages(), AsyncIterator[ps.MarketPage])
    detail = await client.markets.get("0x1", include_book=True)
    assert_type(detail, ps.MarketDetail)
    book = await client.markets.book("0x1", depth=5)
    assert_type(book.best_bid, Decimal | None)
    assert_type(book.time, datetime | None)
    assert_type(await client.markets.by_token("1"), ps.TokenMarket)
    candles = await client.markets.candles("0x1", interval=ps.CandleInterval.DAY)
    assert_type(candles, list[ps.Candle])
    assert_type(candles[0].close, Decimal)
    assert_type(await client.prices.batch(["0x1"]), list[ps.MarketPrice])


async def trading(client: ps.Client) -> None:
    result = await client.orders.place_many(
        [{"market_id": "0x1", "side": "BUY", "outcome": "Yes", "order_type": "limit"}]
    )
    assert_type(result, ps.BatchResult)
    assert_type(result.rejected, list[ps.Order])
    assert_type(await client.orders.batch_limit(), int | None)
    assert_type(await client.orders.cancel_market(market_id="0x1"), ps.CancelAllResult)
    assert_type(await client.orders.heartbeat(5000, label="bot"), ps.Heartbeat)
    async with client.orders.keepalive(interval=10) as switch:
        assert_type(switch, ps.KeepAlive)
        assert_type(switch.alive, bool)
        assert_type(await switch.wait_lapsed(), ps.HeartbeatLapsedError)


async def price_stream(client: ps.Client) -> None:
    stream = client.prices.stream(["0x1"], policy=ps.StreamPolicy(ping_interval=10))
    assert_type(stream, ps.PriceStream)
    async with stream as prices:
        assert_type(prices, ps.PriceStream)
        async for tick in prices:
            assert_type(tick, ps.PriceTick)
            assert_type(tick.buy, Decimal | None)
            assert_type(tick.emitted_at, datetime | None)
        assert_type(await prices.subscribe(["0x2"]), None)
        assert_type(await prices.unsubscribe(["0x2"]), None)
        assert_type(prices.markets, list[str])
        assert_type(prices.connections, int)
        assert_type(prices.stats, ps.PriceStreamStats)
        assert_type(prices.stats.coalesced, int)
    assert_type(ps.MAX_PRICE_SUBSCRIPTIONS, int)
    try:
        pass
    except ps.SubscriptionLimitError as exc:
        assert_type(exc.needed, int)
    except ps.SubscriptionRefusedError as exc:
        assert_type(exc.markets, list[str])
