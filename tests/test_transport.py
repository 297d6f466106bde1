"""The aiohttp seam: loopback servers for socket behaviour; the exception table unit-tested."""

from __future__ import annotations

import asyncio
import socket
import traceback
import types
from typing import Any

import aiohttp
import msgspec
import pytest
import tenacity
from aiohttp import web

import polysim_async as ps
from polysim_async._transport import AiohttpTransport, Request, _translate

from ._helpers import SECRET, base_of, make_client, serve

FOREIGN = (aiohttp.ClientError, msgspec.MsgspecError, tenacity.RetryError)
KEY = {"X-API-Key": SECRET}


def transport_for(base: str, **kwargs: Any) -> AiohttpTransport:
    return AiohttpTransport(base, pool_size=4, **kwargs)


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception reachable through ``__cause__`` and ``__context__``."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__]
    return seen


def routes(**handlers: Any) -> Any:
    def add(app: web.Application) -> None:
        for name, handler in handlers.items():
            app.router.add_route("*", "/" + name, handler)

    return add


async def slow(request: web.Request) -> web.Response:
    await asyncio.Event().wait()  # hangs until cancelled when the client gives up
    return web.json_response({})


async def drop(request: web.Request) -> web.Response:
    assert request.transport is not None
    request.transport.close()  # close without answering
    return web.json_response({})


async def partial(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Length": "100"})
    await resp.prepare(request)
    await resp.write(b'{"user_id":')
    assert request.transport is not None
    request.transport.close()
    return resp


async def echo(request: web.Request) -> web.Response:
    return web.json_response(
        {"method": request.method, "query": dict(request.query), "body": await request.text()},
        headers={"X-Request-Id": "rid-1", "x-polysim-code": "OK"},
    )


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/echo")


class TestRealSockets:
    async def test_fully_reads_the_response(self) -> None:
        async with serve(routes(echo=echo)) as server:
            transport = transport_for(base_of(server))
            try:
                resp = await transport.send(
                    Request("POST", "/echo", {"a": "1"}, b'{"x":1}'), ps.Timeout()
                )
            finally:
                await transport.aclose()
        assert resp.status == 200
        assert msgspec.json.decode(resp.content) == {
            "method": "POST",
            "query": {"a": "1"},
            "body": '{"x":1}',
        }
        assert resp.request_id == "rid-1"
        assert resp.headers["X-POLYSIM-CODE"] == "OK"  # case-insensitive

    async def test_read_timeout(self) -> None:
        async with serve(routes(slow=slow)) as server:
            transport = transport_for(base_of(server))
            try:
                with pytest.raises(ps.ReadTimeoutError) as info:
                    await transport.send(Request("GET", "/slow"), ps.Timeout(read=0.05))
            finally:
                await transport.aclose()
        assert isinstance(info.value, TimeoutError)
        assert info.value.request_sent is True

    async def test_total_timeout(self) -> None:
        async with serve(routes(slow=slow)) as server:
            transport = transport_for(base_of(server))
            try:
                with pytest.raises(ps.ReadTimeoutError):
                    await transport.send(Request("GET", "/slow"), ps.Timeout(read=None, total=0.05))
            finally:
                await transport.aclose()

    async def test_server_disconnect_without_answer(self) -> None:
        async with serve(routes(drop=drop)) as server:
            transport = transport_for(base_of(server))
            try:
                with pytest.raises(ps.NetworkError) as info:
                    await transport.send(Request("POST", "/drop", body=b"{}"), ps.Timeout())
            finally:
                await transport.aclose()
        assert info.value.request_sent is True
        assert "ServerDisconnectedError" in str(info.value)
        # aiohttp's exceptions can hold the key, a token or raw bytes: never chained.
        assert chain(info.value) == [info.value]

    async def test_server_disconnect_mid_body(self) -> None:
        async with serve(routes(partial=partial)) as server:
            transport = transport_for(base_of(server))
            try:
                with pytest.raises(ps.NetworkError) as info:
                    await transport.send(Request("GET", "/partial"), ps.Timeout())
            finally:
                await transport.aclose()
        assert "ClientPayloadError" in str(info.value)
        assert chain(info.value) == [info.value]

    async def test_connection_refused(self) -> None:
        with socket.socket() as sock:  # reserve a loopback port, then free it: nothing listens
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        transport = transport_for(f"http://127.0.0.1:{port}")
        try:
            with pytest.raises(ps.ConnectError) as info:
                await transport.send(Request("GET", "/x"), ps.Timeout())
        finally:
            await transport.aclose()
        assert info.value.request_sent is False

    async def test_garbage_response_does_not_leak_the_key(self) -> None:
        async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"this is not HTTP\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(garbage, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = transport_for(f"http://127.0.0.1:{port}")
        try:
            with pytest.raises(ps.NetworkError) as info:
                await transport.send(Request("GET", "/x", headers=KEY), ps.Timeout())
        finally:
            await transport.aclose()
            server.close()
            await server.wait_closed()
        assert SECRET not in str(info.value)
        assert SECRET not in repr(info.value)
        assert "ClientResponseError" in str(info.value)
        # The aiohttp error's repr holds the request headers: it is not chained.
        for exc in chain(info.value):
            assert SECRET not in repr(exc)
            assert not isinstance(exc, aiohttp.ClientResponseError)

    @pytest.mark.parametrize("retries", [0, 2])
    async def test_a_malformed_header_does_not_leak_the_key_through_the_chain(
        self, retries: int
    ) -> None:
        async def bad_header(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(bad_header, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            client = make_client(base_url=f"http://127.0.0.1:{port}", max_retries=retries)
            async with client:
                with pytest.raises(ps.NetworkError) as info:
                    await client.partner.users.get(1)
        finally:
            server.close()
            await server.wait_closed()
        exceptions = chain(info.value)
        assert not any(isinstance(exc, aiohttp.ClientResponseError) for exc in exceptions)
        for exc in exceptions:
            assert SECRET not in repr(exc)
            assert SECRET not in str(exc)
        assert SECRET not in "".join(traceback.format_exception(info.value))

    async def test_redirects_are_not_followed(self) -> None:
        async with serve(routes(redirect=redirect, echo=echo)) as server:
            transport = transport_for(base_of(server))
            try:
                resp = await transport.send(Request("GET", "/redirect"), ps.Timeout())
            finally:
                await transport.aclose()
        assert resp.status == 302

    async def test_cancelling_an_attempt_in_flight_propagates(self) -> None:
        arrived = asyncio.Event()

        async def hang(request: web.Request) -> web.Response:
            arrived.set()
            await asyncio.Event().wait()  # hangs until the client's cancellation closes it
            return web.json_response({})

        async with serve(routes(hang=hang)) as server:
            transport = transport_for(base_of(server))
            try:
                task = asyncio.create_task(transport.send(Request("GET", "/hang"), ps.Timeout()))
                await asyncio.wait_for(arrived.wait(), 2)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert task.cancelled()
            finally:
                await transport.aclose()


class TestLifecycle:
    async def test_session_is_created_lazily_once_and_closed(self) -> None:
        transport = transport_for("https://api.test")
        assert transport._session is None
        session = transport.session
        assert transport.session is session
        await transport.aclose()
        assert session.closed
        await transport.aclose()  # twice is fine
        with pytest.raises(ps.ClientClosedError):
            await transport.send(Request("GET", "/x"), ps.Timeout())


def _connector_error(cls: type[aiohttp.ClientConnectorError]) -> Exception:
    key = types.SimpleNamespace(host="api.test", port=443, ssl=True)
    return cls(key, OSError(111, "Connection refused"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "expected", "sent"),
    [
        (aiohttp.ConnectionTimeoutError("slow connect"), ps.ConnectTimeoutError, False),
        (aiohttp.SocketTimeoutError("slow read"), ps.ReadTimeoutError, True),
        (aiohttp.ServerTimeoutError("slow"), ps.ReadTimeoutError, True),
        (asyncio.TimeoutError(), ps.ReadTimeoutError, True),
        (_connector_error(aiohttp.ClientConnectorError), ps.ConnectError, False),
        (_connector_error(aiohttp.ClientConnectorDNSError), ps.ConnectError, False),
        (aiohttp.ServerDisconnectedError(), ps.NetworkError, True),
        (aiohttp.ClientPayloadError("truncated"), ps.NetworkError, True),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), ps.NetworkError, True),
        (aiohttp.ClientConnectionError("boom"), ps.NetworkError, True),
        (ConnectionResetError(104, "reset"), ps.TransportError, True),
    ],
)
def test_aiohttp_exceptions_are_translated(
    exc: Exception, expected: type[ps.TransportError], sent: bool
) -> None:
    error = _translate(exc, "GET /v1/partner/users/1", "https://api.test")
    assert type(error) is expected
    assert isinstance(error, ps.TransportError) and error.request_sent is sent
    assert not isinstance(error, FOREIGN)


def test_messages_name_the_exception_never_its_text() -> None:
    # aiohttp quotes raw response bytes in its messages (a minted token, say).
    exc = aiohttp.ClientResponseError(
        None,  # type: ignore[arg-type]
        (),
        status=400,
        message='Invalid header value char: b\'{"token": "tok-SECRET"}\'',
    )
    error = _translate(exc, "POST /v1/keys/ws-token", "https://api.test")
    assert "tok-SECRET" not in str(error) and "ClientResponseError" in str(error)
    assert _translate(aiohttp.InvalidURL("bad://?token=tok-SECRET"), "x", "y").args == (
        "invalid URL for x",
    )


class TestRequestRepr:
    def test_the_key_and_the_token_are_masked(self) -> None:
        request = Request(
            "GET",
            "/v1/ws/executions",
            {"token": "tok-SECRET", "cursor": "c1"},
            b"{}",
            {"X-API-Key": SECRET, "authorization": "Bearer " + SECRET, "Accept": "text/csv"},
            websocket=True,
        )
        shown = repr(request)
        assert SECRET not in shown and "tok-SECRET" not in shown
        assert "'X-API-Key': '***'" in shown and "'authorization': '***'" in shown
        assert "'token': '***'" in shown and "'cursor': 'c1'" in shown
        assert "'Accept': 'text/csv'" in shown and "websocket=True" in shown
        # Only the repr is masked: the transport still sends the real values.
        assert request.headers["X-API-Key"] == SECRET

    @pytest.mark.parametrize("api_key", [SECRET, "tk_live_" + "f" * 40])
    async def test_a_traceback_rendered_with_locals_does_not_show_the_key(
        self, api_key: str
    ) -> None:
        # pytest -l and Sentry render every frame's locals; Requester.send held the
        # headers (and the request) as locals.
        def refuse(request: ps.Request) -> ps.Response:
            raise ps.ConnectError("refused")

        transport = ps.MockTransport(refuse)
        client = ps.Client(api_key, base_url="https://x.test", transport=transport, max_retries=0)
        async with client:
            with pytest.raises(ps.ConnectError) as info:
                await client.account.balance()
        error = info.value
        assert error.__traceback__ is not None
        frames = error.__traceback__.tb_next  # not this test's own frame: its locals hold the key
        rendered = traceback.TracebackException(type(error), error, frames, capture_locals=True)
        text = "".join(rendered.format())
        assert "Requester.send" in text or "in send" in text  # the library's frames are there
        assert api_key not in text
