"""A hostile server: broken bodies, statuses, headers and framing, across every call type.

One raw TCP server on 127.0.0.1 answers every request with crafted bytes. For each
answer and each call of the client, only library errors (``PolySimError``) may
reach the caller, and no secret (the API key, a minted WebSocket token) may be
reachable from what it raised: not through ``__cause__``/``__context__``, ``args``,
``repr``, ``str``, a formatted traceback, nor any log record. The execution
stream gets the same treatment for its handshake and its frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import tempfile
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import polysim_async as ps

KEY = "ps_live_" + "5ec7e7" * 10 + "abcd"  # a trader-shaped key: 64 hex characters
TENANT = "tk_live_SECRETTENANT_9f8e7d6c5b4a"
TOKEN = "tok-SECRET-fedcba9876543210"
SECRETS = (KEY, TENANT, TOKEN, KEY[8:], TOKEN[4:])


def http(status: bytes, body: bytes, *headers: bytes, length: bool = True) -> bytes:
    head = [b"HTTP/1.1 " + status, *headers]
    if length:
        head.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(head) + b"\r\n\r\n" + body


JSON = b"Content-Type: application/json"
DEEP = b"[" * 3000 + b"]" * 3000
NEW_KEY_NESTED = b'{"id": 3, "raw_key": "' + TOKEN.encode() + b'", "d": ' + DEEP + b"}"
TOKEN_BODY = json.dumps({"token": TOKEN, "expires_in": 60}).encode()

#: Answers to sweep: (name, bytes). Where only a careless client would quote them (raw
#: bytes of a malformed answer, a redirect target, a body that is not JSON, a frame of
#: unknown shape), they carry the minted token: none of it may show up in an error or a
#: log line. (What a server writes as an error message, a request id, an error frame
#: or a close reason is shown as sent, made printable, by design.)
ANSWERS: list[tuple[str, bytes]] = [
    ("empty 200", http(b"200 OK", b"", JSON)),
    ("null", http(b"200 OK", b"null", JSON)),
    ("garbage", http(b"200 OK", b"<html>" + TOKEN.encode() + b"</html>", JSON)),
    ("truncated", http(b"200 OK", b'{"data": [{"trade_id": 1, "tok": "' + TOKEN.encode(), JSON)),
    ("nested 2xx", http(b"200 OK", b'{"x": "' + TOKEN.encode() + b'", "d": ' + DEEP + b"}", JSON)),
    ("nested new key", http(b"201 Created", NEW_KEY_NESTED)),
    ("nested error", http(b"500 Oops", b'{"error": ' + DEEP + b"}", JSON)),
    ("wrong types", http(b"200 OK", b'{"data": 5, "orders": "x", "balance": [], "token": 7}')),
    ("big numbers", http(b"200 OK", b'{"balance": 1e400, "user_id": 99999999999999999999999}')),
    ("surrogate", http(b"422 No", b'{"detail": ["\\ud800", "x"]}', JSON)),
    ("bad utf-8", http(b"400 No", b'{"error": "\xff\xfe", "message": "\xc3("}', JSON)),
    ("control chars", http(b"409 No", b'{"error": "A\\u0000B", "message": "\\u001b[31mred"}')),
    ("edge page", http(b"403 Forbidden", b"error code: 1010 " + b"\xff" * 300)),
    ("429 odd retry", http(b"429 Slow", b"{}", b"Retry-After: 1e309", JSON)),
    ("429 negative", http(b"429 Slow", b"{}", b"Retry-After: -5", b"X-RateLimit-Remaining: 0")),
    ("429 date", http(b"429 Slow", b"{}", b"Retry-After: Wed, 21 Oct 2015 07:28:00 GMT")),
    ("429 huge", http(b"429 Slow", b'{"retry_after": 1e999}', b"Retry-After: 999999999999")),
    ("503 venue", http(b"503 Down", b'{"error": "VENUE_UNAVAILABLE", "retry_after": "x"}', JSON)),
    ("204", http(b"204 No Content", b"", length=False)),
    ("302", http(b"302 Found", b"", b"Location: http://evil.example/?token=" + TOKEN.encode())),
    ("status 599", http(b"599 What", b"{}", JSON)),
    ("status 999", http(b"999 What", b"{}", JSON)),
    ("limit headers", http(b"200 OK", b"{}", b"X-RateLimit-Limit: -1", b"X-RateLimit-Reset: nan")),
    ("limit headers 2", http(b"200 OK", b"{}", b"X-RateLimit-Limit-Per-Second: 0.5")),
    ("request id", http(b"500 Oops", b"{}", b"X-Request-Id: r\x7f" + b"x" * 9000)),
    ("bad header", http(b"200 OK", b"{}", b"Bad Header: " + TOKEN.encode())),
    ("control header", http(b"200 OK", b"{}", b"X-A\x01: " + TOKEN.encode())),
    ("status line", b"HTTP/1.1 abc " + TOKEN.encode() + b"\r\n\r\n"),
    ("http/0.9", TOKEN_BODY),
    ("short body", http(b"200 OK", b"{}", b"Content-Length: 500", length=False)),
    ("long length", http(b"200 OK", b"{}", b"Content-Length: 99999999999999999999", length=False)),
    ("bad chunks", http(b"200 OK", b"zz\r\n" + TOKEN.encode(), b"Transfer-Encoding: chunked")),
    ("bad gzip", http(b"200 OK", b"not gzip " + TOKEN.encode(), b"Content-Encoding: gzip")),
    (
        "gzip bomb",
        http(
            b"200 OK", gzip.compress(b"[" + b"0," * (9 * 2**20) + b"0]"), b"Content-Encoding: gzip"
        ),
    ),
    ("closed", b""),
]


@contextlib.asynccontextmanager
async def hostile(answer: Callable[[bytes], bytes]) -> AsyncIterator[str]:
    """A TCP server answering each request head with ``answer(head)``, then closing."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
            head = await reader.readuntil(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    await reader.readexactly(int(line.split(b":")[1]))
            writer.write(answer(head))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


def reachable(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__]
    return seen


def leaks(exc: BaseException, records: list[logging.LogRecord]) -> list[str]:
    """The secrets reachable from ``exc`` or printed in ``records``."""
    texts = ["".join(traceback.format_exception(exc))]
    for item in reachable(exc):
        texts += [str(item), repr(item), repr(item.args)]
    texts += [r.getMessage() for r in records]
    return [s for s in SECRETS if any(s in t for t in texts)]


Call = Callable[[ps.Client], Awaitable[Any]]


async def drain(iterator: Any) -> None:
    async for _ in iterator:
        pass


async def export(client: ps.Client) -> None:
    # The streamed path: status, headers and body chunks read as they arrive.
    with tempfile.TemporaryDirectory() as directory:
        await client.account.export_trades_csv(Path(directory) / "t.csv")


CALLS: dict[str, Call] = {
    "users.register": lambda c: c.partner.users.register("e", "e@x.io"),
    "users.get": lambda c: c.partner.users.get(1),
    "users.send_login_link": lambda c: c.partner.users.send_login_link(1),
    "accounts.create": lambda c: c.partner.accounts.create(
        user_id=1, external_id="a", stage="demo", starting_balance="1", rules={"x": 1}
    ),
    "accounts.get": lambda c: c.partner.accounts.get("a"),
    "accounts.update": lambda c: c.partner.accounts.update("a", stage="funded"),
    "accounts.close": lambda c: c.partner.accounts.close("a"),
    "accounts.reset": lambda c: c.partner.accounts.reset("a"),
    "accounts.trades": lambda c: drain(c.partner.accounts.trades("a")),
    "accounts.trades_many": lambda c: drain(c.partner.accounts.trades_many(["a", "b"])),
    "account.equity": lambda c: c.account.equity(days=2),
    "account.balance": lambda c: c.account.balance(),
    "account.positions": lambda c: c.account.positions(),
    "account.history": lambda c: drain(c.account.history()),
    "orders.place": lambda c: c.orders.place(
        market_id="m", side="BUY", outcome="Yes", order_type="limit", price="0.5", quantity="5"
    ),
    "orders.get": lambda c: c.orders.get(1),
    "orders.list": lambda c: drain(c.orders.list()),
    "orders.cancel": lambda c: c.orders.cancel(1),
    "orders.cancel_all": lambda c: c.orders.cancel_all(),
    "keys.ws_token": lambda c: c.keys.ws_token(),
    # the trader calls added for bots
    "me": lambda c: c.me(),
    "account.portfolio": lambda c: c.account.portfolio(),
    "account.settlements": lambda c: drain(c.account.settlements()),
    "orders.place_many": lambda c: c.orders.place_many(
        [
            {
                "market_id": "m",
                "side": "BUY",
                "outcome": "Yes",
                "order_type": "limit",
                "price": "0.5",
                "quantity": "5",
            },
        ]
    ),
    "orders.heartbeat": lambda c: c.orders.heartbeat(5000),
    "orders.cancel_market": lambda c: c.orders.cancel_market(market_id="m"),
    "keys.list": lambda c: drain(c.keys.list()),
    "keys.tiers": lambda c: c.keys.tiers(),
    "keys.create": lambda c: c.keys.create("bot"),
    "keys.rotate": lambda c: c.keys.rotate(3),
    "keys.rename": lambda c: c.keys.rename(3, name="n"),
    "keys.delete": lambda c: c.keys.delete(3),
    "account.reset_api_balance": lambda c: c.account.reset_api_balance(),
    "account.export_trades_csv": export,
    "wallets.list": lambda c: drain(c.wallets.list()),
    "wallets.get": lambda c: c.wallets.get(7),
    "wallets.create": lambda c: c.wallets.create("lab"),
    "markets.list": lambda c: drain(c.markets.list()),
    "markets.get": lambda c: c.markets.get("0x" + "1a" * 32),
    "markets.book": lambda c: c.markets.book("0x" + "1a" * 32),
    "markets.candles": lambda c: c.markets.candles("0x" + "1a" * 32),
    "prices.batch": lambda c: c.prices.batch(["0x" + "1a" * 32]),
}


def fatal(exc: Exception) -> Exception:
    """Every failure ends the loop at once, so the sweep sees every error."""
    return exc


async def watch_once(client: ps.Client) -> None:
    since = {"a": ps.Watermark.beginning()}
    watch = client.partner.accounts.watch_trades(
        ["a"], interval=0.01, since=since, process_exception=fatal
    )
    async with watch:
        await asyncio.wait_for(watch.__anext__(), 1)


async def stream_once(client: ps.Client) -> None:
    policy = ps.StreamPolicy(open_timeout=1000, process_exception=fatal)  # 1 s on Quick
    async with client.executions.stream(policy=policy) as fills:
        await asyncio.wait_for(fills.__anext__(), 1)


CALLS["accounts.watch_trades"] = watch_once


def good_mint_and_history(answer: bytes) -> Callable[[bytes], bytes]:
    """Mint and history answer well; the WebSocket handshake gets ``answer``."""

    def route(head: bytes) -> bytes:
        if head.startswith(b"POST /v1/keys/ws-token"):
            return http(b"200 OK", TOKEN_BODY, JSON)
        if head.startswith(b"GET /v1/account/history"):
            return http(b"200 OK", b'{"data": [], "next_cursor": ""}', JSON)
        return answer

    return route


async def attempt(call: Call, client: ps.Client, records: list[logging.LogRecord]) -> str:
    """Run one call; fail the test on a foreign exception or a leaked secret."""
    try:
        await call(client)
    except asyncio.TimeoutError:
        return "waiting"  # a watch or stream still trying: no error to look at
    except ps.PolySimError as exc:
        assert not leaks(exc, records), leaks(exc, [])
        return type(exc).__name__
    return "ok"


@pytest.mark.parametrize(("name", "answer"), ANSWERS, ids=[a[0] for a in ANSWERS])
async def test_every_call_type_meets_the_answer_with_a_library_error_and_no_secret(
    name: str, answer: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="polysim_async")
    options: dict[str, Any] = {"rate_limit": None, "max_retries": 1, "deadline": 5}
    outcomes: dict[str, str] = {}
    async with hostile(lambda head: answer) as base:
        for key in (KEY, TENANT):
            async with ps.Client(key, base, clock=Quick(), **options) as client:
                for call_name, call in CALLS.items():
                    outcomes[call_name] = await attempt(call, client, caplog.records)
    async with (
        hostile(good_mint_and_history(answer)) as base,
        ps.Client(KEY, base, clock=Quick(), **options) as client,
    ):
        outcomes["executions.stream"] = await attempt(stream_once, client, caplog.records)
    assert not [r for r in caplog.records if any(s in r.getMessage() for s in SECRETS)]
    assert set(outcomes) == {*CALLS, "executions.stream"}


class Quick(ps.SystemClock):
    """Real time, with every sleep (backoff, the handshake's timeout) a thousand times shorter."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / 1000)


# -- the stream's socket: hostile frames after a good handshake ----------------------------

FRAMES: list[tuple[str, list[str | bytes]]] = [
    ("binary garbage", [b"\x00\xff\xfe" + TOKEN.encode()]),
    ("bad utf-8 text", [b'{"type":"fill","x":"\xff"}']),
    ("deep", ['{"type":"fill","data":' + "[" * 4000 + "]" * 4000 + "}"]),
    ("wrong types", ['{"type":"fill","order_id":"x","price":[],"filled_at":5e99}']),
    ("unknown", ['{"type":"nonsense","token":"' + TOKEN + '"}', '{"no":"type"}', "[]", "7"]),
    ("error frame", ['{"type":"error","message":"\\u001b[2Jbad \\ud800"}']),
    ("huge", ["x" * (17 * 2**20)]),
    ("nulls", ['{"type":null}', '{"type":"execution","data":null}', "null"]),
]


LAST = {
    "type": "fill",
    "order_id": 99,
    "market_id": "0xabc",
    "side": "BUY",
    "outcome": "Yes",
    "price": "0.5",
    "quantity": "1",
    "filled_at": "2026-06-04T14:09:31+00:00",
}


class Feed:
    """Mints the token, serves an empty history, then sends the hostile frames, one
    good fill, and (maybe) closes with ``close``; again on every connection."""

    def __init__(self, frames: list[str | bytes], close: int | None) -> None:
        self.frames = frames
        self.close = close
        self.connects = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/keys/ws-token", self.mint)
        app.router.add_get("/v1/account/history", self.history)
        app.router.add_get("/v1/ws/executions", self.ws)

    async def mint(self, request: web.Request) -> web.Response:
        return web.Response(body=TOKEN_BODY, content_type="application/json")

    async def history(self, request: web.Request) -> web.Response:
        return web.json_response({"data": [], "next_cursor": ""})

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        self.connects += 1
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        with contextlib.suppress(ConnectionError):
            for frame in [*self.frames, json.dumps(LAST)]:
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(frame)
            if self.close is not None:
                await ws.close(code=self.close, message=b"bye \x1b[2J")
            else:
                async for _ in ws:
                    pass
        return ws


@pytest.mark.parametrize("close", [None, 1000, 1011, 4001, 4002, 4999])
@pytest.mark.parametrize(("name", "frames"), FRAMES, ids=[f[0] for f in FRAMES])
async def test_hostile_frames_and_closes_end_in_library_errors_without_secrets(
    name: str, frames: list[str | bytes], close: int | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="polysim_async")
    feed = Feed(frames, close)
    app = web.Application()
    feed.routes(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    policy = ps.StreamPolicy(max_failures=2, backoff_base=0.01, backoff_max=0.01)
    try:
        async with (
            ps.Client(KEY, str(server.make_url("")).rstrip("/")) as client,
            client.executions.stream(policy=policy) as fills,
        ):
            try:
                # The good fill after the hostile frames: they were read and skipped.
                fill = await asyncio.wait_for(fills.__anext__(), 30)
                assert fill.order_id == 99
            except ps.PolySimError as exc:
                assert not leaks(exc, caplog.records)
                # Only a frame over max_response_size costs the connection (and the fill).
                assert name == "huge", exc
    finally:
        await server.close()
    assert not [r for r in caplog.records if any(s in r.getMessage() for s in SECRETS)]
