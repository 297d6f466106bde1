"""``MockTransport``: answer the client's HTTP requests and WebSockets from a function, in memory.

For your tests, as ``httpx.MockTransport`` is for httpx::

    def handler(request: Request) -> Response:
        if request.path == "/v1/account/balance":
            return Response.from_json({"balance": "100.00"})
        return Response.from_json({"error": "NOT_FOUND", "message": "no"}, status=404)

    async with Client("ps_live_test", transport=MockTransport(handler)) as client:
        balance = await client.account.balance()

Every call still goes through the client's request path (rate limiter,
retries, error mapping, decoding); only the network is replaced. The handler
may be a plain or an async function. To simulate a network failure, raise a
:class:`TransportError` (e.g. ``ConnectError``) from it.

WebSockets: a handshake reaches the same handler with ``request.websocket``
set. Return a :class:`MockWebSocket` (the server end) to accept it, or a
:class:`Response` to refuse it with that status::

    sockets = []

    def handler(request):
        if request.websocket:
            server = MockWebSocket(on_message=lambda ws, data: ws.send('{"type":"pong"}'))
            sockets.append(server)
            return server
        ...

    sockets[0].send('{"type": "fill", ...}')   # a frame to the client
    sockets[0].close(4001, "expired")           # a close the client sees
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Union

from ._config import Timeout
from ._errors import ClientClosedError, NetworkError, ReadTimeoutError
from ._tasks import wake
from ._transport import Request, Response, ResponseStream, WebSocket, handshake_refused

__all__ = ["MockTransport", "MockWebSocket"]

_CHUNK = 1 << 16  # bytes per chunk of a streamed mock body
_Answer = Union[Response, "MockWebSocket"]
#: What the handler of a :class:`MockTransport` is: request in, answer out (or awaitable).
Handler = Callable[[Request], "_Answer | Awaitable[_Answer]"]


class _Closed:
    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class _Broken:
    pass


class MockWebSocket:
    """The server end of one mock WebSocket connection.

    Return it from a :class:`MockTransport` handler to accept a handshake, then
    drive the connection from the test.

    Args:
        on_message: called as ``on_message(server, data)`` for every frame the
            client sends (e.g. to answer pings); it runs inside the client's send.

    Attributes:
        received: every frame the client sent, in order.
        close_code: how the connection closed (``None`` while open).
    """

    def __init__(
        self, *, on_message: Callable[[MockWebSocket, str | bytes], object] | None = None
    ) -> None:
        self.received: list[str | bytes] = []
        self.close_code: int | None = None
        self._on_message = on_message
        self._client: _ClientSocket | None = None
        # What the server sent before the handshake completed, delivered on accept.
        self._early: list[str | bytes | _Closed | _Broken] = []

    @property
    def closed(self) -> bool:
        """Whether either side closed the connection (or it was aborted)."""
        return self.close_code is not None

    def send(self, data: str | bytes) -> None:
        """Queue a frame for the client (also before the handshake completes: it
        arrives first); ignored once the connection is closed."""
        if not self.closed:
            self._deliver(data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection from the server side with ``code`` and ``reason``."""
        if not self.closed:
            self.close_code = code
            self._deliver(_Closed(code, reason))

    def abort(self) -> None:
        """Break the connection without a close frame: the client's next read fails."""
        if not self.closed:
            self.close_code = 1006
            self._deliver(_Broken())

    def _deliver(self, item: str | bytes | _Closed | _Broken) -> None:
        if self._client is None:
            self._early.append(item)
        else:
            self._client.deliver(item)

    def _accept(self, client: _ClientSocket) -> None:
        self._client = client
        early, self._early = self._early, []
        for item in early:
            client.deliver(item)

    def _from_client(self, data: str | bytes) -> None:
        self.received.append(data)
        if self._on_message is not None:
            self._on_message(self, data)


class _ClientSocket:
    """The client end: a :class:`WebSocket` fed by a :class:`MockWebSocket`."""

    def __init__(self, server: MockWebSocket) -> None:
        self._server = server
        self._inbox: collections.deque[str | bytes | _Closed | _Broken] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._code: int | None = None
        self._reason = ""

    def deliver(self, item: str | bytes | _Closed | _Broken) -> None:
        self._inbox.append(item)
        wake(self._waiter)

    @property
    def close_code(self) -> int | None:
        return self._code

    @property
    def close_reason(self) -> str:
        return self._reason

    async def receive(self, timeout: float | None = None) -> str | bytes | None:
        if self._code is not None:
            return None
        if not self._inbox:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = None if timeout is None else loop.call_later(timeout, wake, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if not self._inbox:
                raise ReadTimeoutError("no WebSocket frame within the timeout")
        item = self._inbox.popleft()
        if isinstance(item, _Closed):
            self._code, self._reason = item.code, item.reason
            return None
        if isinstance(item, _Broken):
            self._code = 1006
            raise NetworkError("the WebSocket connection broke")
        return item

    async def send(self, data: str | bytes) -> None:
        if self._code is not None:
            raise NetworkError("the WebSocket is closed")
        if not self._server.closed:  # else the frame is lost, as on a real socket
            self._server._from_client(data)

    async def close(self, code: int = 1000) -> None:
        if self._code is None:
            self._code = code
        if not self._server.closed:
            self._server.close_code = code


class MockTransport:
    """A :class:`Transport` that answers from ``handler`` instead of the network.

    Args:
        handler: called with every :class:`Request` (HTTP, and WebSocket
            handshakes with ``request.websocket`` set); returns a
            :class:`Response`, or for a handshake a :class:`MockWebSocket`
            (accepted) or a :class:`Response` (refused with its status). It may
            be async, and may raise a ``TransportError`` to simulate the network
            failing.

    Attributes:
        requests: every request the handler was given, in order.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._closed = False
        self.requests: list[Request] = []

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    async def _answer(self, request: Request) -> _Answer:
        if self._closed:
            raise ClientClosedError("the client is closed")
        self.requests.append(request)
        answer = self._handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer

    async def send(self, request: Request, timeout: Timeout) -> Response:
        """Return the handler's answer to ``request`` (``timeout`` is not applied).

        Raises:
            TypeError: the handler returned something other than a Response.
            ClientClosedError: the transport was closed.
        """
        answer = await self._answer(request)
        if not isinstance(answer, Response):
            raise TypeError(f"the mock handler must return a Response, got {answer!r}")
        return answer

    def stream(
        self, request: Request, timeout: Timeout
    ) -> AbstractAsyncContextManager[ResponseStream]:
        """The handler's answer as a :class:`ResponseStream`, its body in 64 KiB chunks.

        Raises:
            TypeError: the handler returned something other than a Response.
            ClientClosedError: the transport was closed.
        """
        return self._stream(request, timeout)

    @contextlib.asynccontextmanager
    async def _stream(self, request: Request, timeout: Timeout) -> AsyncIterator[ResponseStream]:
        answer = await self.send(request, timeout)

        async def chunks() -> AsyncIterator[bytes]:
            view = memoryview(answer.content)
            for start in range(0, len(view), _CHUNK):
                yield bytes(view[start : start + _CHUNK])

        yield ResponseStream(answer.status, answer.headers, answer.reason, chunks())

    async def websocket(self, request: Request) -> WebSocket:
        """Accept (a :class:`MockWebSocket` answer) or refuse (a :class:`Response`) a handshake.

        Raises:
            APIStatusError: refused with the answer's status.
            TypeError: the handler returned something else.
        """
        answer = await self._answer(request)
        if isinstance(answer, Response):
            raise handshake_refused(answer.status, answer.headers, answer.content)
        if not isinstance(answer, MockWebSocket):
            raise TypeError(f"the mock handler must return a MockWebSocket, got {answer!r}")
        client = _ClientSocket(answer)
        answer._accept(client)
        return client

    async def aclose(self) -> None:
        """Mark the transport closed; idempotent."""
        self._closed = True
