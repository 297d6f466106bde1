"""``client.partner.accounts.watch_trades``: exactly once, resumable, fair, 429s kept inside.

An in-memory keyset trade feed (``MockTransport``) on virtual time for the edge
cases, so nothing depends on the machine's speed; the sandbox over real sockets
for the 200-account proof under the documented partner limits.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest

import polysim_async as ps

from ._helpers import BASE, LoopClock, virtual

T0 = datetime(2026, 6, 4, 14, 0, tzinfo=timezone.utc)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class Feed:
    """Per account, trades ascending by (filled_at, order_id); served newest first by keyset."""

    def __init__(self) -> None:
        self.trades: dict[str, list[dict[str, Any]]] = {}
        self.next_id = 1
        self.requests: Counter[str] = Counter()
        self.fail: list[tuple[int, str, str]] = []  # (status, code, retry_after) per request
        self.limits: list[int] = []

    def add(self, account: str, count: int = 1) -> list[int]:
        rows = self.trades.setdefault(account, [])
        ids = []
        for _ in range(count):
            oid = self.next_id
            self.next_id += 1
            at = (T0 + timedelta(milliseconds=oid // 3)).isoformat()  # ties on filled_at
            rows.append(
                {
                    "trade_id": oid,
                    "order_id": oid,
                    "market_id": "0xabc",
                    "side": "BUY",
                    "outcome": "Yes",
                    "price": "0.4100",
                    "quantity": "10.0000",
                    "notional": "4.10",
                    "fee": "0.00",
                    "filled_at": at,
                    "client_order_id": None,
                    "realized_pnl": None,
                }
            )
            ids.append(oid)
        return ids

    def page(self, request: ps.Request) -> ps.Response:
        parts = request.path.split("/")  # /v1/partner/accounts/{aid}/trades
        assert parts[-1] == "trades", request.path
        aid = parts[-2]
        query = request.params or {}
        self.requests[aid] += 1
        if self.fail:
            status, code, retry_after = self.fail.pop(0)
            headers = {"Retry-After": retry_after} if retry_after else {}
            return ps.Response.from_json(
                {"error": code, "message": "x"}, status=status, headers=headers
            )
        if aid not in self.trades:
            return ps.Response.from_json({"error": "NOT_FOUND", "message": "x"}, status=404)
        limit = int(query["limit"])
        self.limits.append(limit)
        rows = sorted(self.trades[aid], key=lambda r: (r["filled_at"], r["order_id"]), reverse=True)
        if "cursor" in query:
            last = json.loads(base64.b64decode(query["cursor"]))
            bound = (last["filled_at"], last["order_id"])
            rows = [r for r in rows if (r["filled_at"], r["order_id"]) < bound]
        page = rows[:limit]
        nxt = None
        if len(rows) > limit:
            key = {"filled_at": page[-1]["filled_at"], "order_id": page[-1]["order_id"]}
            nxt = base64.b64encode(json.dumps(key).encode()).decode()
        return ps.Response.from_json({"data": page, "next_cursor": nxt})


@contextlib.asynccontextmanager
async def feed_client(
    feed: Feed | None = None, **kwargs: Any
) -> AsyncIterator[tuple[Feed, ps.Client]]:
    """A client whose network is the feed, on virtual time (tests run with ``@virtual``)."""
    f = feed or Feed()
    kwargs.setdefault("rate_limit", None)
    transport = ps.MockTransport(f.page)
    async with ps.Client("tk_x", BASE, transport=transport, clock=LoopClock(), **kwargs) as client:
        yield f, client


async def collect(watch: ps.TradeWatch, n: int, timeout: float = 5.0) -> list[ps.AccountTrade]:
    out: list[ps.AccountTrade] = []

    async def go() -> None:
        async for item in watch:
            out.append(item)
            if len(out) == n:
                return

    await asyncio.wait_for(go(), timeout)
    return out


def ids(items: list[ps.AccountTrade], account: str | None = None) -> list[int]:
    return [i.trade.order_id for i in items if account is None or i.account_id == account]


@virtual
async def test_only_new_fills_each_once_oldest_first_and_watermarks() -> None:
    async with feed_client() as (feed, client):
        feed.add("a", 5)
        feed.add("b", 2)
        feed.trades["c"] = []
        async with client.partner.accounts.watch_trades(["a", "b", "c"], interval=0.01) as watch:
            await asyncio.sleep(0.05)  # every account read its starting point
            assert watch.watermarks["c"] == ps.Watermark.beginning()  # no fill yet
            new_a, new_b, new_c = feed.add("a", 3), feed.add("b", 1), feed.add("c", 2)
            got = await collect(watch, 6)
            await asyncio.sleep(0.05)  # more polls: nothing is repeated
            assert watch._out.empty()
            marks = watch.watermarks
    assert ids(got, "a") == new_a and ids(got, "b") == new_b and ids(got, "c") == new_c
    assert marks["a"].order_id == new_a[-1] and marks["c"].order_id == new_c[-1]
    assert watch.stats.trades == 6


@virtual
async def test_resume_from_watermarks_delivers_exactly_the_rest() -> None:
    async with feed_client() as (feed, client):
        first = feed.add("a", 4) + feed.add("b", 4)
        since = {"a": ps.Watermark.beginning(), "b": ps.Watermark.beginning()}
        watch = client.partner.accounts.watch_trades(["a", "b"], interval=0.01, since=since)
        async with watch:
            got = await collect(watch, 5)
            saved = msgspec.json.encode(watch.watermarks)
        later = feed.add("a", 2) + feed.add("b", 1)
        since = msgspec.json.decode(saved, type=dict[str, ps.Watermark])
        watch = client.partner.accounts.watch_trades(["a", "b"], interval=0.01, since=since)
        async with watch:
            got += await collect(watch, 3 + 3)
    assert sorted(ids(got)) == sorted(first + later) and len(ids(got)) == len(set(ids(got)))


@virtual
async def test_a_busy_account_does_not_starve_the_quiet_ones() -> None:
    async with feed_client() as (feed, client):
        feed.add("busy", 1500)  # a 75-page backlog at page_size=20
        quiet = [f"q{i}" for i in range(20)]
        new = {q: feed.add(q)[0] for q in quiet}
        accounts = ["busy", *quiet]
        since = dict.fromkeys(accounts, ps.Watermark.beginning())
        watch = client.partner.accounts.watch_trades(
            accounts, interval=0.01, since=since, concurrency=1, page_size=20
        )
        async with watch:
            got = await collect(watch, 1500 + 20, timeout=10)
    order = ids(got)
    # One page per turn, and a walk waits behind every account already due: the
    # quiet accounts are all served in the first round, between busy pages 1 and 2.
    assert sorted(order[:20]) == sorted(new.values())
    assert ids(got, "busy") == list(range(1, 1501))  # the backlog: oldest first, once
    assert feed.requests["busy"] == 1500 // 20 + 1  # the 10-row probe, then 20-row pages


@virtual
async def test_routine_polls_ask_for_a_small_page_and_grow_with_activity() -> None:
    async with feed_client() as (feed, client):
        feed.trades["a"] = []
        watch = client.partner.accounts.watch_trades(["a"], interval=0.01, page_size=500)
        async with watch:
            await asyncio.sleep(0.03)
            feed.add("a", 40)
            await collect(watch, 40)
            await asyncio.sleep(0.03)
    assert feed.limits[0] == 1  # the starting point
    assert max(feed.limits) <= 500 and 81 in feed.limits  # 2 x 40 + 1 after the burst
    assert min(feed.limits[1:]) == 10


@virtual
async def test_429s_and_server_errors_never_reach_the_caller() -> None:
    async with feed_client(max_retries=0) as (feed, client):
        feed.add("a", 2)
        feed.add("b", 2)
        feed.fail = [(429, "RATE_LIMIT_EXCEEDED", "0")] * 6 + [(503, "SERVER_BUSY", "")] * 3
        since = {"a": ps.Watermark.beginning(), "b": ps.Watermark.beginning()}
        watch = client.partner.accounts.watch_trades(["a", "b"], interval=0.001, since=since)
        async with watch:
            got = await collect(watch, 4)
    assert sorted(ids(got)) == [1, 2, 3, 4] and watch.stats.retries == 9


@virtual
async def test_a_permanent_refusal_ends_the_watch_and_stops_its_tasks() -> None:
    async with feed_client() as (feed, client):
        feed.add("a", 1)
        before = asyncio.all_tasks()
        watch = client.partner.accounts.watch_trades(["a", "missing"], interval=0.01)
        async with watch:
            with pytest.raises(ps.NotFoundError):
                async for _ in watch:
                    pass
            assert not [t for t in asyncio.all_tasks() - before if "TradeWatch" in repr(t)]
        with pytest.raises(StopAsyncIteration):
            await watch.__anext__()


@virtual
async def test_cancelling_the_consumer_stops_every_task_and_backpressure_holds() -> None:
    async with feed_client() as (feed, client):
        feed.add("a", 50)
        before = asyncio.all_tasks()
        since = {"a": ps.Watermark.beginning()}

        async def consume() -> None:
            watch = client.partner.accounts.watch_trades(["a"], since=since, queue_size=2)
            async with watch:
                async for _ in watch:
                    assert watch._out.qsize() <= 2
                    await asyncio.sleep(0.001)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.03)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not [t for t in asyncio.all_tasks() - before if "TradeWatch" in repr(t)]


@virtual
async def test_arguments_are_checked_at_once() -> None:
    async with feed_client() as (_, client):
        accounts = client.partner.accounts
        with pytest.raises(ps.InvalidArgumentError, match="not one string"):
            accounts.watch_trades("abc")
        with pytest.raises(ps.InvalidArgumentError, match="duplicates"):
            accounts.watch_trades(["a", "a"])
        with pytest.raises(ps.InvalidArgumentError, match="interval"):
            accounts.watch_trades(["a"], interval=0)
        with pytest.raises(ps.InvalidArgumentError, match="Watermark"):
            accounts.watch_trades(["a"], since={"a": "2026-01-01"})  # type: ignore[dict-item]
        with pytest.raises(ps.InvalidArgumentError, match="page_size"):
            accounts.watch_trades(["a"], page_size=501)
        with pytest.raises(ps.InvalidArgumentError):
            accounts.watch_trades([" padded "])


@virtual
async def test_iterating_a_watch_that_was_not_entered_raises_and_starts_nothing() -> None:
    """Defect 8: ``async for t in watch: break`` without ``async with`` leaked pollers."""
    async with feed_client() as (feed, client):
        feed.add("a", 3)
        before = asyncio.all_tasks()
        watch = client.partner.accounts.watch_trades(["a"], interval=0.01)
        with pytest.raises(ps.ClientClosedError, match="async with"):
            async for _ in watch:
                break
        await asyncio.sleep(1.0)
        assert asyncio.all_tasks() == before and sum(feed.requests.values()) == 0


@virtual
async def test_a_watch_left_running_warns_when_collected() -> None:
    async with feed_client() as (_, client):
        watch = client.partner.accounts.watch_trades(["a"], interval=0.01)
        await watch.__aenter__()
        with pytest.warns(ResourceWarning, match="never closed"):
            watch.__del__()
        await watch.aclose()
        watch.__del__()  # closed: silent (filterwarnings=error would fail otherwise)
        with pytest.raises(ps.ClientClosedError):
            await watch.__aenter__()


class RepeatingFeed(Feed):
    """A broken server: past the first page, every page names the same cursor again."""

    def page(self, request: ps.Request) -> ps.Response:
        answer = super().page(request)
        body = json.loads(answer.content)
        if body.get("next_cursor") and "cursor" in (request.params or {}):
            body["next_cursor"] = request.params["cursor"]  # type: ignore[index]
        return ps.Response.from_json(body)


@virtual
async def test_a_repeated_cursor_ends_the_watch_instead_of_redelivering() -> None:
    """Defect 4: the watch re-delivered the same fill when the server repeated a cursor."""
    async with feed_client(RepeatingFeed()) as (feed, client):
        feed.trades["a"] = []
        watch = client.partner.accounts.watch_trades(["a"], interval=0.01, page_size=10)
        got: list[ps.AccountTrade] = []
        async with watch:
            await asyncio.sleep(0.05)  # the starting point is read
            before = feed.requests["a"]
            feed.add("a", 40)  # a backlog of four pages: the walk meets the repeat
            with pytest.raises(ps.PaginationError):
                async for item in watch:
                    got.append(item)
    # Nothing delivered, no loop: the probe, the page naming the cursor again, and no more.
    assert got == [] and feed.requests["a"] - before == 2


@virtual
async def test_process_exception_decides_what_a_failed_poll_does() -> None:
    # A firm that wants unknown accounts skipped quietly rather than ending the watch.
    def patient(exc: Exception) -> Exception | None:
        return None if isinstance(exc, (ps.NotFoundError, ps.TransportError)) else exc

    async with feed_client() as (feed, client):
        feed.add("a", 2)
        since = {"a": ps.Watermark.beginning(), "gone": ps.Watermark.beginning()}
        watch = client.partner.accounts.watch_trades(
            ["a", "gone"], interval=0.01, since=since, process_exception=patient
        )
        async with watch:
            got = await collect(watch, 2)
            await asyncio.sleep(5.0)
    assert ids(got) == [1, 2] and watch.stats.retries >= 2 and feed.requests["gone"] >= 2


@virtual
async def test_a_bug_or_an_unreadable_page_ends_the_watch_instead_of_looping() -> None:
    class Broken(Feed):
        def page(self, request: ps.Request) -> ps.Response:
            self.requests[request.path.split("/")[-2]] += 1
            if request.path.endswith("/b/trades"):
                return ps.Response(200, {}, b'{"data": [{"trade_id": "x"}], "next_cursor": null}')
            if request.path.endswith("/c/trades"):
                raise KeyError("a bug in the transport")
            return super().page(request)

    for account, error in (("b", ps.DecodeError), ("c", KeyError)):
        async with feed_client(Broken()) as (feed, client):
            watch = client.partner.accounts.watch_trades([account], interval=0.01)
            async with watch:
                with pytest.raises(error):
                    await collect(watch, 1)
            assert feed.requests[account] == 1  # not retried


# -- proof against the sandbox, under the documented partner limits --------------------------


async def test_sandbox_200_accounts_every_fill_once_no_429_none_starved() -> None:
    from polysim_async.sandbox import Sandbox

    async with Sandbox(seed=9) as sb:
        sb.configure(rate_limits=False)  # set-up only; the watch runs under the limits
        async with ps.Client(sb.tenant_key, sb.url, rate_limit=None) as setup:
            user = await setup.partner.users.register("w-1", "w1@example.com")
            accounts = [
                (
                    await setup.partner.accounts.create(
                        user_id=user.user_id,
                        external_id=f"acc-{i}",
                        stage="challenge",
                        starting_balance="10000.00",
                    )
                ).account_id
                for i in range(200)
            ]
        sb.configure(rate_limits=True, partner_limits=(50, 3000))
        expected: dict[str, set[int]] = {a: set() for a in accounts}

        def burst(count: int, every: int = 1) -> None:
            for a in accounts[::every]:
                first = sb.generate_fills(count, account_id=a)
                expected[a].update(range(first, first + count))

        burst(2)  # before the watch: everything since the beginning is new
        since = dict.fromkeys(accounts, ps.Watermark.beginning())
        got: list[ps.AccountTrade] = []
        # The default budget ("auto": the partner's 50/s). Client and sandbox share this
        # event loop, so a request "arrives" when the loop next runs the server, late
        # under a loaded test run: the limiter counts each slot until its answer came back.
        async with ps.Client(sb.tenant_key, sb.url) as client:
            watch = client.partner.accounts.watch_trades(accounts, interval=0.05, since=since)
            async with watch:

                async def fills_keep_arriving() -> None:
                    for count, every in ((2, 1), (4, 3), (200, 50)):
                        await asyncio.sleep(0.3)  # several 0.05 s polling rounds apart
                        burst(count, every)

                producer = asyncio.create_task(fills_keep_arriving())
                total = lambda: sum(map(len, expected.values()))  # noqa: E731
                async for item in watch:  # a 429 here would end the test with it
                    got.append(item)
                    if producer.done() and len(got) == total():
                        break
                await producer
        per_account = Counter(i.account_id for i in got)
    assert sorted(ids(got)) == sorted(oid for s in expected.values() for oid in s)
    assert len(set(ids(got))) == len(got)  # each exactly once
    assert all(per_account[a] == len(expected[a]) for a in accounts)  # nobody starved
    # Paced by the shared limiter with the default settings: not one 429 (defect 7).
    assert client.stats.retries["rate_limit"] == 0, client.stats


async def test_example_watch_accounts_resumes_from_saved_watermarks(tmp_path: Path) -> None:
    from polysim_async.sandbox import Sandbox

    state = tmp_path / "watermarks.json"
    async with Sandbox(seed=23) as sb:
        async with ps.Client(sb.tenant_key, sb.url) as client:
            user = await client.partner.users.register("ex-1", "ex1@example.com")
            accounts = [
                (
                    await client.partner.accounts.create(
                        user_id=user.user_id,
                        external_id=f"ex-acc-{i}",
                        stage="demo",
                        starting_balance="1000.00",
                    )
                ).account_id
                for i in range(3)
            ]
        state.write_bytes(msgspec.json.encode(dict.fromkeys(accounts, ps.Watermark.beginning())))
        expected = {oid for a in accounts for oid in _generated(sb.generate_fills(2, account_id=a))}
        env = {**os.environ, "POLYSIM_TENANT_KEY": sb.tenant_key, "POLYSIM_BASE_URL": sb.url}

        async def run(max_fills: int) -> list[int]:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(EXAMPLES / "watch_accounts.py"), *accounts,
                "--state", str(state), "--interval", "0.02", "--max", str(max_fills),
                env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, out.decode()
            lines = out.decode().splitlines()
            assert lines[0] == "watching 3 accounts"
            return [int(line.split()[1].removeprefix("order=")) for line in lines[1:]]

        handled = await run(4)
        expected |= _generated(sb.generate_fills(2, account_id=accounts[0]))  # while down
        handled += await run(4)
    assert sorted(handled) == sorted(expected) and len(set(handled)) == 8


def _generated(first: int, count: int = 2) -> set[int]:
    return set(range(first, first + count))


@virtual
async def test_aclose_from_another_task_ends_a_waiting_consumer() -> None:
    async with feed_client() as (feed, client):
        feed.add("a", 1)
        watch = client.partner.accounts.watch_trades(["a"], interval=0.01)
        async with watch:

            async def consume() -> list[ps.AccountTrade]:
                return [item async for item in watch]

            consumer = asyncio.create_task(consume())
            await asyncio.sleep(0.03)  # the consumer now waits for a new fill
            await watch.aclose()
            assert await asyncio.wait_for(consumer, 1.0) == []
