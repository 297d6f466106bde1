"""``client.account``: portfolio, settlements, the API-wallet reset and the CSV exports."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import polysim_async as ps
from polysim_async._download import save_csv

from ._helpers import SECRET, Routes, calls, error_body, make_client, url
from ._trader import params, sent

PORTFOLIO = {
    "balance": {
        "balance": "9993.50",
        "currency": "USD",
        "unrealized_pnl": "-6.50",
        "total_value": "10000.50",
        "starting_balance": "10000.00",
    },
    "positions": [
        {
            "id": 1,
            "market_id": "0x1a2b3c",
            "outcome": "Yes",
            "quantity": "10.0",
            "avg_entry_price": "0.65",
            "current_price": None,
            "market_value": None,
            "unrealized_pnl": None,
            "status": "OPEN",
        }
    ],
    "total_trades": 5,
    "win_rate": "60.0%",
}
SETTLEMENT = {
    "position_id": 77,
    "market_id": "0xabc",
    "outcome": "Yes",
    "quantity": "10.0000",
    "avg_entry_price": "0.4100",
    "cost_basis": "4.10",
    "payout": "10.00",
    "payout_per_share": "1.00",
    "realized_pnl": "5.90",
    "result": "won",
    "settled_at": "2026-03-01T00:00:00Z",
}


def files(directory: Path) -> list[Path]:
    return sorted(directory.iterdir())


def part_sizes(directory: Path) -> list[int]:
    return [p.stat().st_size for p in directory.glob(".*.part")]


class TestPortfolio:
    async def test_decodes_balance_positions_and_stats(self, mock: Routes) -> None:
        mock.get(url("/v1/account/portfolio"), payload=PORTFOLIO)
        async with make_client() as client:
            folio = await client.account.portfolio()
        assert params(mock, "/v1/account/portfolio") == [{}]
        assert folio.balance.total_value == Decimal("10000.50")
        assert folio.positions[0].current_price is None  # no live price cached
        assert folio.total_trades == 5 and folio.win_rate_percent == Decimal("60.0")

    @pytest.mark.parametrize(("wallet_id", "wire"), [("all", "all"), ("API", "api"), (7, "7")])
    async def test_wallet_scope(self, mock: Routes, wallet_id: Any, wire: str) -> None:
        mock.get(url("/v1/account/portfolio"), payload=PORTFOLIO)
        async with make_client() as client:
            await client.account.portfolio(wallet_id=wallet_id)
        assert params(mock, "/v1/account/portfolio") == [{"wallet_id": wire}]

    @pytest.mark.parametrize("rate", [None, "n/a", "NaN%"])
    def test_an_unclassifiable_win_rate_is_none(self, rate: Any) -> None:
        folio = ps.Portfolio(balance=ps.Balance(balance=Decimal(0)), win_rate=rate)
        assert folio.win_rate_percent is None

    async def test_bad_scope_is_refused(self, mock: Routes) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError):
                await client.account.portfolio(wallet_id="main")
        assert calls(mock) == []


class TestSettlements:
    async def test_pages_follow_the_cursor_until_empty(self, mock: Routes) -> None:
        older = {**SETTLEMENT, "position_id": 70, "result": "lost"}
        mock.get(
            url("/v1/account/settlements"), payload={"data": [SETTLEMENT], "next_cursor": "77"}
        )
        mock.get(url("/v1/account/settlements"), payload={"data": [older], "next_cursor": ""})
        async with make_client() as client:
            rows = [s async for s in client.account.settlements(page_size=1)]
        assert [(s.position_id, s.result) for s in rows] == [(77, "won"), (70, "lost")]
        assert rows[0].payout == Decimal("10.00") and rows[0].realized_pnl == Decimal("5.90")
        assert rows[0].settled_at == datetime(2026, 3, 1, tzinfo=timezone.utc)
        assert params(mock, "/v1/account/settlements") == [
            {"limit": "1"},
            {"limit": "1", "cursor": "77"},
        ]

    async def test_filters_use_the_wire_names(self, mock: Routes) -> None:
        mock.get(url("/v1/account/settlements"), payload={"data": [], "next_cursor": None})
        start = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2)))
        async with make_client() as client:
            pages = client.account.settlement_pages(
                wallet_id="all",
                market_id="0xabc",
                start=start,
                end=date(2026, 2, 1),
                page_size=500,
                cursor="99",
            )
            assert [p.data async for p in pages] == [[]]
        assert params(mock, "/v1/account/settlements") == [
            {
                "wallet_id": "all",
                "market_id": "0xabc",
                "from": "2026-01-01T00:00:00+02:00",
                "to": "2026-02-01",
                "limit": "500",
                "cursor": "99",
            }
        ]

    async def test_a_minimal_row_decodes(self, mock: Routes) -> None:
        row = {k: v for k, v in SETTLEMENT.items() if k not in ("position_id", "settled_at")}
        mock.get(url("/v1/account/settlements"), payload={"data": [row]})
        async with make_client() as client:
            [settled] = [s async for s in client.account.settlements()]
        assert settled.position_id is None and settled.payout_per_share == Decimal("1.00")

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"page_size": 501},
            {"page_size": 0},
            {"start": datetime(2026, 1, 1)},  # naive
            {"end": 20260101},
            {"market_id": ""},
            {"wallet_id": "everything"},
        ],
    )
    async def test_bad_filters_are_refused(self, mock: Routes, kwargs: dict[str, Any]) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError):
                client.account.settlements(**kwargs)
        assert calls(mock) == []


class TestResetApiBalance:
    async def test_resets_without_a_body(self, mock: Routes) -> None:
        body = {
            "message": "API balance reset to $10,000.00",
            "new_api_balance": "10000.00",
            "positions_closed": 3,
            "cooldown_days": 0,
        }
        mock.post(url("/v1/account/reset-api-balance"), payload=body)
        async with make_client() as client:
            reset = await client.account.reset_api_balance()
        assert reset == ps.ApiBalanceReset(
            message=body["message"],
            new_api_balance=Decimal("10000.00"),
            positions_closed=3,
            cooldown_days=0,
        )
        [kwargs] = sent(mock, "/v1/account/reset-api-balance")
        assert kwargs.get("data") is None

    @pytest.mark.parametrize(
        "failure",
        [
            {"exception": ConnectionResetError("reset after sending")},
            {"exception": asyncio.TimeoutError()},
            {"status": 503, "payload": error_body("SERVER_BUSY")},
            {"status": 500, "payload": error_body("INTERNAL_ERROR")},
        ],
    )
    async def test_never_repeated_once_it_may_have_arrived(
        self, mock: Routes, failure: dict[str, Any]
    ) -> None:
        mock.post(url("/v1/account/reset-api-balance"), **failure)
        async with make_client() as client:
            with pytest.raises((ps.TransportError, ps.ServerError)):
                await client.account.reset_api_balance()
        assert len(calls(mock)) == 1

    async def test_the_free_tier_gets_402(self, mock: Routes) -> None:
        mock.post(
            url("/v1/account/reset-api-balance"),
            status=402,
            payload=error_body("UPGRADE_REQUIRED"),
        )
        async with make_client() as client:
            with pytest.raises(ps.APIStatusError) as info:
                await client.account.reset_api_balance()
        assert (info.value.status, info.value.code) == (402, "UPGRADE_REQUIRED")


CSV = b"order_id,market_id,side,price\n" + b"".join(
    b"%d,0xabc,BUY,0.41\n" % i for i in range(1_000)
)


class TestExports:
    async def test_trades_csv_is_saved_whole_and_atomically(
        self, mock: Routes, tmp_path: Path
    ) -> None:
        mock.get(url("/v1/export/trades.csv"), body=CSV, content_type="text/csv")
        dest = tmp_path / "trades.csv"
        async with make_client() as client:
            saved = await client.account.export_trades_csv(
                dest, wallet_id=7, start="2026-01-01", end=date(2026, 2, 1), market_id="0xabc"
            )
        assert saved == ps.CsvExport(path=dest, size=len(CSV), truncated=False)
        assert files(tmp_path) == [dest]
        assert dest.read_bytes() == CSV
        [kwargs] = sent(mock, "/v1/export/trades.csv")
        assert kwargs["headers"]["Accept"] == "text/csv"
        assert dict(kwargs["params"]) == {
            "wallet_id": "7",
            "market_id": "0xabc",
            "from": "2026-01-01",
            "to": "2026-02-01",
        }

    async def test_a_refused_first_attempt_is_retried_before_any_byte_is_written(
        self, mock: Routes, tmp_path: Path
    ) -> None:
        mock.get(url("/v1/export/trades.csv"), status=503, payload=error_body("SERVER_BUSY"))
        mock.get(url("/v1/export/trades.csv"), body=CSV, content_type="text/csv")
        async with make_client() as client:
            saved = await client.account.export_trades_csv(tmp_path / "t.csv")
        assert saved.size == len(CSV) and (tmp_path / "t.csv").read_bytes() == CSV
        assert len(calls(mock)) == 2 and files(tmp_path) == [tmp_path / "t.csv"]

    async def test_a_transport_without_stream_gets_the_body_read_whole(
        self, tmp_path: Path
    ) -> None:
        class SendOnly:  # a custom transport predating stream()
            def __init__(self) -> None:
                self._mock = ps.MockTransport(lambda request: ps.Response(200, {}, CSV))
                self.closed = False

            async def send(self, request: ps.Request, timeout: ps.Timeout) -> ps.Response:
                return await self._mock.send(request, timeout)

            async def websocket(self, request: ps.Request) -> Any:
                raise AssertionError("not used")

            async def aclose(self) -> None:
                self.closed = True

        async with ps.Client(SECRET, base_url="https://x.test", transport=SendOnly()) as client:
            saved = await client.account.export_trades_csv(tmp_path / "t.csv")
        assert saved.size == len(CSV) and (tmp_path / "t.csv").read_bytes() == CSV

    async def test_a_capped_export_says_it_was_truncated(
        self, mock: Routes, tmp_path: Path
    ) -> None:
        body = b"position_id,payout\n1,10.00\n# truncated at 100000 rows\n"
        mock.get(url("/v1/export/settlements.csv"), body=body)
        async with make_client() as client:
            saved = await client.account.export_settlements_csv(tmp_path / "s.csv")
        assert saved.truncated and saved.size == len(body)

    async def test_a_failed_export_leaves_the_destination_untouched(
        self, mock: Routes, tmp_path: Path
    ) -> None:
        dest = tmp_path / "trades.csv"
        dest.write_bytes(b"yesterday's export")
        mock.get(url("/v1/export/trades.csv"), status=402, payload=error_body("UPGRADE_REQUIRED"))
        async with make_client() as client:
            with pytest.raises(ps.APIStatusError):
                await client.account.export_trades_csv(dest)
        assert dest.read_bytes() == b"yesterday's export"
        assert files(tmp_path) == [dest]

    async def test_bad_destinations_are_refused_before_sending(
        self, mock: Routes, tmp_path: Path
    ) -> None:
        async with make_client() as client:
            for bad in (tmp_path, tmp_path / "missing" / "x.csv", 5):
                with pytest.raises(ps.InvalidArgumentError):
                    await client.account.export_trades_csv(bad)  # type: ignore[arg-type]
        assert calls(mock) == []


class FakeStreamingRequester:
    """A request path with the proposed ``stream()``: hands the body over chunk by chunk,
    and notes the size of the file being written before each further chunk."""

    def __init__(self, chunks: list[bytes], part_dir: Path, fail_after: int | None = None) -> None:
        self.chunks = chunks
        self.part_dir = part_dir
        self.fail_after = fail_after
        self.on_disk: list[int] = []
        self.requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = []

    def _written(self) -> int:
        return sum(p.stat().st_size for p in self.part_dir.glob(".*.part"))

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[FakeStreamingRequester]:
        self.requests.append((method, path, dict(params or {}), dict(headers or {})))
        yield self

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            self.on_disk.append(self._written())
            if index == self.fail_after:
                raise ps.NetworkError("connection lost mid-body")
            yield chunk


class TestStreamingSeam:
    async def test_chunks_reach_the_disk_as_they_arrive(self, tmp_path: Path) -> None:
        chunks = [b"a,b\n", b"1,2\n" * 1000, b"3,4\n"]
        fake = FakeStreamingRequester(chunks, tmp_path)
        saved = await save_csv(fake, "/v1/export/trades.csv", tmp_path / "t.csv", {"a": "1"})  # type: ignore[arg-type]
        # Before each chunk arrives, every earlier chunk is already in the file.
        assert fake.on_disk == [0, len(chunks[0]), len(chunks[0]) + len(chunks[1])]
        assert (tmp_path / "t.csv").read_bytes() == b"".join(chunks)
        assert saved.size == sum(map(len, chunks))
        assert fake.requests == [
            ("GET", "/v1/export/trades.csv", {"a": "1"}, {"Accept": "text/csv"})
        ]

    async def test_a_broken_stream_removes_the_partial_file(self, tmp_path: Path) -> None:
        fake = FakeStreamingRequester([b"a\n", b"b\n", b"c\n"], tmp_path, fail_after=2)
        with pytest.raises(ps.NetworkError):
            await save_csv(fake, "/x.csv", tmp_path / "t.csv", {})  # type: ignore[arg-type]
        assert fake.on_disk[-1] == 4  # two chunks had been written
        assert files(tmp_path) == []

    async def test_cancellation_removes_the_partial_file(self, tmp_path: Path) -> None:
        first_written = asyncio.Event()

        class Stalling(FakeStreamingRequester):
            async def iter_chunks(self) -> AsyncIterator[bytes]:
                yield b"a\n"
                # Asked for the next chunk: the first one is on disk by now.
                first_written.set()
                await asyncio.Event().wait()  # the connection stalls
                yield b"b\n"

        task = asyncio.create_task(
            save_csv(Stalling([], tmp_path), "/x.csv", tmp_path / "t.csv", {})  # type: ignore[arg-type]
        )
        await first_written.wait()
        assert part_sizes(tmp_path) == [2]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert files(tmp_path) == []


@contextlib.asynccontextmanager
async def raw_server(
    handle: Any,
) -> AsyncIterator[str]:
    """A TCP server on loopback running ``handle(reader, writer)`` per connection."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        with contextlib.suppress(ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            await handle(reader, writer)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def until(predicate: Any) -> None:
    """Wait for a condition the client reaches on its own (bounded only to fail a broken run)."""
    async with asyncio.timeout(30) if hasattr(asyncio, "timeout") else contextlib.nullcontext():
        while not predicate():  # noqa: ASYNC110 - polls the file the client writes
            await asyncio.sleep(0.001)


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: %d\r\n\r\n"


class TestStreamedToDisk:
    """Over real sockets: the body reaches the file as it arrives, with no size cap."""

    async def test_each_chunk_is_on_disk_before_the_server_sends_the_next(
        self, tmp_path: Path
    ) -> None:
        chunks = [bytes([65 + i]) * (64 << 10) + b"\n" for i in range(8)]  # 512 KiB

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(HEAD % sum(map(len, chunks)))
            sent = 0
            for chunk in chunks[:-1]:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
                # The next chunk only once this one is in the file: a client that held
                # the body in memory would never get it.
                await until(lambda size=sent: size in part_sizes(tmp_path))
            writer.write(chunks[-1])
            await writer.drain()

        async with raw_server(handle) as base:
            # A 1 KiB max_response_size: it bounds decoded answers, not a streamed file.
            client = ps.Client(SECRET, base_url=base, max_response_size=1024, rate_limit=None)
            async with client:
                saved = await client.account.export_trades_csv(tmp_path / "t.csv")
        assert saved.size == sum(map(len, chunks))
        assert (tmp_path / "t.csv").read_bytes() == b"".join(chunks)
        assert files(tmp_path) == [tmp_path / "t.csv"]

    async def test_a_connection_lost_mid_body_is_not_repeated(self, tmp_path: Path) -> None:
        dest = tmp_path / "t.csv"
        dest.write_bytes(b"OLD")
        attempts: list[int] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            attempts.append(1)
            writer.write(HEAD % 10_000 + b"a,b\n1,2\n")
            await writer.drain()

        async with (
            raw_server(handle) as base,
            ps.Client(SECRET, base_url=base, rate_limit=None) as client,
        ):
            with pytest.raises(ps.TransportError):
                await client.account.export_trades_csv(dest)
        assert attempts == [1] and dest.read_bytes() == b"OLD" and files(tmp_path) == [dest]

    async def test_cancelling_mid_body_closes_the_connection(self, tmp_path: Path) -> None:
        closed = asyncio.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(HEAD % 10_000 + b"a,b\n")
            await writer.drain()
            await reader.read()  # returns once the client closes its end
            closed.set()

        async with (
            raw_server(handle) as base,
            ps.Client(SECRET, base_url=base, rate_limit=None) as client,
        ):
            task = asyncio.create_task(client.account.export_trades_csv(tmp_path / "t.csv"))
            await until(lambda: part_sizes(tmp_path) == [4])
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.wait_for(closed.wait(), 30)
        assert files(tmp_path) == []


class TestCancelledExport:
    """A cancellation at any point leaves the destination as it was and no ``.part`` file.

    Each run cancels after a different number of event-loop steps, from before
    the task starts to after it finished; the outcome depends on where the
    cancellation lands, never on timing: either the export was cancelled (the
    old file is intact) or it had completed (the new file is whole).
    """

    async def _cancel_after(self, steps: int, export: Any, dest: Path) -> bool:
        dest.write_bytes(b"OLD")  # noqa: ASYNC240 - a tiny file, before the task starts
        task = asyncio.create_task(export(dest))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return task.cancelled()

    async def test_through_the_client(self, mock: Routes, tmp_path: Path) -> None:
        csv = b"order_id,price\n" + b"1,0.5\n" * 400_000  # 2.4 MB: several writes
        mock.get(url("/v1/export/trades.csv"), body=csv, content_type="text/csv", repeat=True)
        dest = tmp_path / "t.csv"
        outcomes = set()
        async with make_client() as client:
            for steps in range(60):
                cancelled = await self._cancel_after(steps, client.account.export_trades_csv, dest)
                assert dest.read_bytes() == (b"OLD" if cancelled else csv), steps
                assert files(tmp_path) == [dest], steps
                outcomes.add(cancelled)
            # And one left alone completes.
            await client.account.export_trades_csv(dest)
        assert dest.read_bytes() == csv
        assert True in outcomes

    async def test_while_streaming(self, tmp_path: Path) -> None:
        chunks = [b"a,b\n"] + [b"1,2\n" * 5000] * 20
        dest = tmp_path / "t.csv"

        async def export(path: Path) -> ps.CsvExport:
            fake = FakeStreamingRequester(chunks, tmp_path)
            return await save_csv(fake, "/x.csv", path, {})  # type: ignore[arg-type]

        outcomes = set()
        for steps in range(0, 120, 3):
            cancelled = await self._cancel_after(steps, export, dest)
            assert dest.read_bytes() == (b"OLD" if cancelled else b"".join(chunks)), steps
            assert files(tmp_path) == [dest], steps
            outcomes.add(cancelled)
        assert True in outcomes
