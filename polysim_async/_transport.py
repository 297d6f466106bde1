"""The seam between the client and the network: HTTP requests and WebSocket connections.

A :class:`Transport` sends one :class:`Request` and returns one fully read
:class:`Response`, and opens :class:`WebSocket` connections. The client uses
:class:`AiohttpTransport` unless given another (``Client(transport=...)``,
e.g. :class:`~polysim_async.MockTransport` in tests).

This is the only module that imports aiohttp's client classes, and the one
place their exceptions are translated into :mod:`polysim_async` errors. The
translated errors are raised outside the ``except`` block and never chained to
aiohttp's: aiohttp's exceptions can hold the request headers (with the API
key), the WebSocket URL (with its token) or raw response bytes (with a minted
token), so none of that may be reachable from an error the library raises.
For the same reason, messages name an exception's class, never its text.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

import aiohttp
import attr
import msgspec
from multidict import CIMultiDict

from ._config import DEFAULT_MAX_RESPONSE_SIZE, Timeout
from ._errors import (
    APIStatusError,
    ClientClosedError,
    ConnectError,
    ConnectTimeoutError,
    InvalidArgumentError,
    NetworkError,
    PolySimError,
    ReadTimeoutError,
    ResponseTooLargeError,
    TransportError,
    UsageError,
    from_response,
)

__all__ = [
    "AiohttpTransport",
    "Request",
    "Response",
    "ResponseStream",
    "Transport",
    "WebSocket",
    "handshake_refused",
    "ws_url",
]

_encoder = msgspec.json.Encoder(decimal_format="string")

#: Header names whose values are secrets: masked in reprs and trace callbacks.
_SECRET_HEADERS = ("X-API-Key", "Authorization")
_SECRET_HEADER_NAMES = frozenset(name.lower() for name in _SECRET_HEADERS)
#: Query parameters whose values are secrets (the WebSocket's minted token).
_SECRET_PARAMS = frozenset({"token"})


def _masked(items: Mapping[str, str] | None, secret: frozenset[str]) -> dict[str, str] | None:
    if items is None:
        return None
    return {k: "***" if k.lower() in secret else v for k, v in items.items()}


@dataclass(frozen=True, slots=True)
class Request:
    """What the client asks a transport to send.

    Attributes:
        method: ``GET``, ``POST``, ...
        path: starts with ``/``; joined to the base URL by the transport.
        params: the query string.
        body: the encoded JSON body, if any.
        headers: every header to send (the client's defaults included).
        websocket: ``True`` for a WebSocket handshake (see :meth:`Transport.websocket`).

    Its ``repr`` masks the secrets (``X-API-Key``, ``Authorization`` and the
    ``token`` query parameter show as ``***``), so neither a log line nor a
    traceback rendered with its locals (``pytest -l``, Sentry) shows the key.
    """

    method: str
    path: str
    params: Mapping[str, str] | None = None
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    websocket: bool = False

    def __repr__(self) -> str:
        return (
            f"Request(method={self.method!r}, path={self.path!r}, "
            f"params={_masked(self.params, _SECRET_PARAMS)!r}, body={self.body!r}, "
            f"headers={_masked(self.headers, _SECRET_HEADER_NAMES)!r}, "
            f"websocket={self.websocket!r})"
        )


@dataclass(frozen=True, slots=True)
class Response:
    """A fully read HTTP response.

    Attributes:
        status: the HTTP status.
        headers: case-insensitive when it comes from :class:`AiohttpTransport`.
        content: the whole body.
        reason: the reason phrase, if any.
    """

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""
    reason: str | None = None

    @classmethod
    def from_json(
        cls, data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """A response whose body is ``data`` as JSON (decimals as strings), for tests."""
        merged = CIMultiDict({"Content-Type": "application/json"})
        merged.update(headers or {})
        return cls(status, merged, _encoder.encode(data))

    @property
    def request_id(self) -> str | None:
        """The server's ``X-Request-Id``, if sent."""
        return self.headers.get("X-Request-Id")


class WebSocket(Protocol):
    """One open WebSocket connection, as a transport hands it out.

    Frames are read by one task at a time. Every method raises library errors
    only; cancellation propagates.
    """

    @property
    def close_code(self) -> int | None:
        """The close code once the connection closed (``None`` before)."""
        ...

    @property
    def close_reason(self) -> str:
        """The close reason the peer sent (``""`` if none)."""
        ...

    async def receive(self, timeout: float | None = None) -> str | bytes | None:
        """Wait for the next text or binary frame.

        Args:
            timeout: seconds (of the running event loop's time) to wait; ``None``
                waits as long as it takes.

        Returns:
            The frame's data, or ``None`` once the connection is closed
            (:attr:`close_code` and :attr:`close_reason` say how).

        Raises:
            ReadTimeoutError: no frame within ``timeout``; the connection stays usable.
            NetworkError: the connection broke.
        """
        ...

    async def send(self, data: str | bytes) -> None:
        """Send a text (``str``) or binary frame.

        Raises:
            NetworkError: the connection is closed or broke.
        """
        ...

    async def close(self, code: int = 1000) -> None:
        """Close the connection; idempotent, never raises a transport error."""
        ...


@dataclass(frozen=True, slots=True)
class ResponseStream:
    """A response whose body is read as it arrives (see :meth:`AiohttpTransport.stream`).

    Attributes:
        status: the HTTP status.
        headers: the response headers.
        reason: the reason phrase, if any.
        body: the body's chunks, in order; iterate it once.
    """

    status: int
    headers: Mapping[str, str]
    reason: str | None
    body: AsyncIterator[bytes]

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body's chunks as they arrive (the same iterator each time).

        Raises:
            TransportError: the connection failed mid-body.
        """
        return self.body


class Transport(Protocol):
    """What the client needs from a network stack.

    A transport may also offer ``stream(request, timeout)``, an async context
    manager giving a :class:`ResponseStream` (both shipped transports do); the
    CSV exports use it to write a body to disk as it arrives, and read the
    body whole through :meth:`send` from a transport without it.
    """

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        ...

    async def send(self, request: Request, timeout: Timeout) -> Response:
        """Send ``request`` and read the whole response.

        Raises:
            TransportError: no answer (with ``request_sent=False`` only when the
                request provably never left).
            ResponseTooLargeError: the body passed the size limit.
            ClientClosedError: the transport was closed.
        """
        ...

    async def websocket(self, request: Request) -> WebSocket:
        """Open a WebSocket at ``request.path`` with ``request.params``.

        The caller bounds the handshake's duration (it cancels this call).

        Raises:
            APIStatusError: the server refused the handshake with that status
                (see :func:`handshake_refused`).
            TransportError: no connection.
            ClientClosedError: the transport was closed.
        """
        ...

    async def aclose(self) -> None:
        """Release every connection."""
        ...


def ws_url(base_url: str, path: str) -> str:
    """Turn the REST base URL into a WebSocket URL: ``https→wss``, ``http→ws``, plus ``path``."""
    scheme, sep, rest = base_url.partition("://")
    ws_scheme = {"https": "wss", "http": "ws"}.get(scheme.lower(), scheme)
    return f"{ws_scheme}{sep}{rest.rstrip('/')}{path}"


def handshake_refused(
    status: int, headers: Mapping[str, str] | None = None, body: bytes = b""
) -> APIStatusError:
    """The error for a WebSocket handshake the server answered with ``status``.

    A 401/403 means the token was refused; a 404, that there is no such endpoint.
    """
    return from_response(
        status, headers or {}, body, reason=f"WebSocket handshake refused (HTTP {status})"
    )


def _translate(exc: BaseException, what: str, base_url: str) -> PolySimError:
    """The library error for a foreign exception raised while doing ``what``.

    The message names the exception's class (and an OS error's reason), never
    its text: aiohttp quotes raw response bytes and URLs in its messages.
    """
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectTimeoutError(f"timed out connecting to {base_url}")
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return ReadTimeoutError(f"timed out reading {what}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return ConnectError(f"cannot connect to {base_url}: {reason}")
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidArgumentError(f"invalid URL for {what}")
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return NetworkError(f"connection lost during {what} ({name})")
    if isinstance(exc, aiohttp.ClientResponseError):
        # A malformed answer (status line, headers, framing). Its text quotes the
        # offending bytes, and its request_info holds the request headers.
        return NetworkError(f"malformed answer to {what} ({name})")
    if isinstance(exc, aiohttp.ClientError):
        return NetworkError(f"{what} failed ({name})")
    if isinstance(exc, asyncio.TimeoutError):
        # aiohttp's ``total`` timeout; distinct from cancellation, which is not caught.
        return ReadTimeoutError(f"{what} exceeded its timeout")
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else name
    return TransportError(f"{what} failed: {reason}")


async def _raise_unchained(error: PolySimError) -> NoReturn:
    """Raise ``error`` with no foreign exception reachable from it.

    aiohttp's exceptions quote raw bytes, URLs (with a ``?token=``) and request
    headers, so none may be chained to what the library raises. Raising outside
    the ``except`` block is not enough on Python 3.10: a task resumed with a
    failed future runs its whole step inside the handler of that failure, so
    every ``raise`` in that step (here, and again in the retry layer) would
    chain aiohttp's exception as the context. Yielding once first ends that
    step; the error is raised from a clean one. Cancellation while yielding
    propagates.
    """
    await asyncio.sleep(0)
    try:
        raise error
    finally:
        error.__context__ = None


# What aiohttp may raise around a request; everything else is a bug and propagates.
_FOREIGN = (aiohttp.ClientError, asyncio.TimeoutError, OSError)

# Trace signals whose parameters carry the request headers (and so the key).
_HEADER_SIGNALS = (
    "on_request_start",
    "on_request_end",
    "on_request_exception",
    "on_request_redirect",
    "on_request_headers_sent",
)
_SIGNALS = tuple(name for name in dir(aiohttp.TraceConfig) if name.startswith("on_"))


def _sanitised(config: aiohttp.TraceConfig, secret_headers: Iterable[str]) -> aiohttp.TraceConfig:
    """A copy of ``config`` whose callbacks see ``secret_headers`` masked as ``***``."""
    hidden = frozenset(name.lower() for name in secret_headers)

    def ctx_factory(trace_request_ctx: Any = None) -> Any:
        return config.trace_config_ctx(trace_request_ctx=trace_request_ctx)

    def masking(callback: Any) -> Any:
        async def forward(session: Any, ctx: Any, params: Any) -> None:
            headers = CIMultiDict(params.headers)
            for name in list(headers):
                if name.lower() in hidden:
                    headers[name] = "***"
            await callback(session, ctx, attr.evolve(params, headers=headers))

        return forward

    copy = aiohttp.TraceConfig(trace_config_ctx_factory=ctx_factory)  # type: ignore[arg-type]
    for name in _SIGNALS:
        for callback in getattr(config, name):
            wrapped = masking(callback) if name in _HEADER_SIGNALS else callback
            getattr(copy, name).append(wrapped)
    return copy


class _AiohttpSocket:
    """:class:`WebSocket` over an aiohttp client WebSocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        self._ws = ws
        self._reason = ""

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code if self._ws.closed else None

    @property
    def close_reason(self) -> str:
        return self._reason

    async def receive(self, timeout: float | None = None) -> str | bytes | None:
        error: PolySimError
        try:
            # aiohttp reads 0 as "no timeout".
            msg = await self._ws.receive(None if timeout is None else max(timeout, 1e-6))
        except asyncio.TimeoutError:
            error = ReadTimeoutError("no WebSocket frame within the timeout")
        except _FOREIGN as exc:
            error = _translate(exc, "reading the WebSocket", "")
        else:
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                data: str | bytes = msg.data
                return data
            if msg.type is not aiohttp.WSMsgType.ERROR:  # CLOSE, CLOSING, CLOSED
                if isinstance(msg.extra, str):
                    self._reason = msg.extra
                return None
            error = NetworkError(f"WebSocket error ({type(msg.data).__name__})")
        await _raise_unchained(error)

    async def send(self, data: str | bytes) -> None:
        error: PolySimError
        try:
            if isinstance(data, str):
                await self._ws.send_str(data)
            else:
                await self._ws.send_bytes(data)
            return
        except _FOREIGN as exc:
            error = _translate(exc, "writing to the WebSocket", "")
        await _raise_unchained(error)

    async def close(self, code: int = 1000) -> None:
        with contextlib.suppress(*_FOREIGN):  # a broken socket: nothing left to release
            await self._ws.close(code=code)


class AiohttpTransport:
    """A pooled :class:`aiohttp.ClientSession`, created lazily inside the running loop.

    Args:
        base_url: every request path is joined to it.
        pool_size: maximum open connections.
        max_response_size: bytes of (decompressed) body read at most; a longer
            body raises :class:`ResponseTooLargeError` while reading, and a
            WebSocket frame larger than it ends the connection.
        trace_configs: aiohttp trace configs (OpenTelemetry's aiohttp
            instrumentation, ...), passed to the session with ``secret_headers``
            masked in the headers their callbacks see.
        secret_headers: header names never shown to trace callbacks.
    """

    def __init__(
        self,
        base_url: str,
        *,
        pool_size: int,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        trace_configs: Iterable[aiohttp.TraceConfig] = (),
        secret_headers: Iterable[str] = _SECRET_HEADERS,
    ) -> None:
        self._base_url = base_url
        self._pool_size = pool_size
        self._max_size = max_response_size
        self._trace_configs = list(trace_configs)
        self._secret_headers = tuple(secret_headers)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._timeouts: dict[Timeout, aiohttp.ClientTimeout] = {}

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    @property
    def has_open_session(self) -> bool:
        """Whether a session was created and not yet closed (for the finalizer's warning)."""
        return self._session is not None and not self._closed

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosedError("the client is closed")
        if self._session is None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                raise UsageError(
                    "the client's session can only be created inside a running event loop"
                ) from None
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=self._pool_size)
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=True,
                raise_for_status=False,
                trace_configs=[_sanitised(c, self._secret_headers) for c in self._trace_configs]
                or None,
            )
            # aiohttp (3.10+) silently sends an idempotent request a second time when a
            # pooled connection drops: an attempt the retry policy neither counts nor
            # paces, and one that hides a lost answer from the calls that read a repeat's
            # refusal as success (orders.cancel, keys.delete). Retries are ours alone.
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
        return self._session

    @property
    def session(self) -> aiohttp.ClientSession:
        """The underlying session (created on first use)."""
        return self._get_session()

    def _client_timeout(self, timeout: Timeout) -> aiohttp.ClientTimeout:
        cached = self._timeouts.get(timeout)
        if cached is None:
            cached = aiohttp.ClientTimeout(
                total=timeout.total, sock_connect=timeout.connect, sock_read=timeout.read
            )
            if len(self._timeouts) < 64:  # deadline-clamped totals vary; keep the cache small
                self._timeouts[timeout] = cached
        return cached

    def _request(self, request: Request, timeout: Timeout) -> Any:
        # aiohttp's request context manager (awaitable too); raises ClientClosedError.
        return self._get_session().request(
            request.method,
            self._base_url + request.path,
            params=request.params,
            data=request.body,
            headers=request.headers,
            timeout=self._client_timeout(timeout),
            allow_redirects=False,
        )

    async def send(self, request: Request, timeout: Timeout) -> Response:
        """Send one request; see :meth:`Transport.send`.

        Raises:
            ConnectError, ConnectTimeoutError: the request was not sent.
            NetworkError, ReadTimeoutError: the request may have reached the server.
            ResponseTooLargeError: the body passed ``max_response_size``.
            ClientClosedError: the transport was closed.

        Cancellation propagates unchanged; the connection is released.
        """
        what = f"{request.method} {request.path}"
        error: PolySimError
        try:
            async with self._request(request, timeout) as resp:
                content = await self._read(resp, what)
                # resp.headers is an immutable, case-insensitive view that stays
                # valid after the connection is released: no copy needed.
                return Response(resp.status, resp.headers, content, resp.reason)
        except _FOREIGN as exc:
            error = _translate(exc, what, self._base_url)
        await _raise_unchained(error)

    def stream(
        self, request: Request, timeout: Timeout
    ) -> AbstractAsyncContextManager[ResponseStream]:
        """Send one request; enter to get its status and headers, the body unread.

        The body has no size limit (``max_response_size`` does not apply: it is
        meant for a file) and no total timeout: each read waits at most
        ``timeout.read``.

        Raises:
            ConnectError, ConnectTimeoutError: the request was not sent (on entering).
            NetworkError, ReadTimeoutError: the request may have reached the
                server (on entering, or from the body's iterator mid-body).
            ClientClosedError: the transport was closed.

        Leaving the block (also by cancellation or an error) releases the
        connection, closing it when the body was not read to the end.
        """
        return self._stream(request, timeout)

    @contextlib.asynccontextmanager
    async def _stream(self, request: Request, timeout: Timeout) -> AsyncIterator[ResponseStream]:
        what = f"{request.method} {request.path}"
        unbounded = Timeout(connect=timeout.connect, read=timeout.read, total=None)
        resp: aiohttp.ClientResponse | None = None
        error: PolySimError | None = None
        try:
            resp = await self._request(request, unbounded)
        except _FOREIGN as exc:
            error = _translate(exc, what, self._base_url)
        if resp is None:
            assert error is not None
            await _raise_unchained(error)
        ended: list[bool] = []
        try:
            yield ResponseStream(
                resp.status, resp.headers, resp.reason, self._chunks(resp, what, ended)
            )
        finally:
            if ended:
                resp.release()
            else:
                resp.close()  # a half-read or broken body: the connection cannot be reused

    async def _chunks(
        self, resp: aiohttp.ClientResponse, what: str, ended: list[bool]
    ) -> AsyncIterator[bytes]:
        while True:
            error: PolySimError | None = None
            chunk = b""
            try:
                chunk = await resp.content.readany()
            except _FOREIGN as exc:
                error = _translate(exc, what, self._base_url)
            if error is not None:
                await _raise_unchained(error)
            if not chunk:
                ended.append(True)
                return
            yield chunk

    async def _read(self, resp: aiohttp.ClientResponse, what: str) -> bytes:
        """The whole body, refusing more than ``max_response_size`` bytes as it arrives."""
        limit = self._max_size
        length = resp.content_length
        if length is not None and length > limit and "Content-Encoding" not in resp.headers:
            raise self._too_large(resp, what)
        chunks: list[bytes] = []
        size = 0
        reader = resp.content
        while chunk := await reader.readany():
            size += len(chunk)
            if size > limit:
                raise self._too_large(resp, what)
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _too_large(self, resp: aiohttp.ClientResponse, what: str) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"the answer to {what} is larger than max_response_size ({self._max_size} bytes)",
            status=resp.status,
            request_id=resp.headers.get("X-Request-Id"),
        )

    async def websocket(self, request: Request) -> WebSocket:
        """Open a WebSocket; see :meth:`Transport.websocket`.

        Only ``request.headers`` are sent (no API key: the token is in the
        query). Frames larger than ``max_response_size`` end the connection.
        Cancellation closes a half-open connection.
        """
        session = self._get_session()
        what = f"the WebSocket handshake of {request.path}"
        error: PolySimError
        try:
            ws = await session.ws_connect(
                ws_url(self._base_url, request.path),
                params=request.params,
                headers=request.headers,
                decode_text=False,
                autoping=True,
                autoclose=True,
                max_msg_size=self._max_size,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
            )
            return _AiohttpSocket(ws)
        except aiohttp.WSServerHandshakeError as exc:
            error = handshake_refused(exc.status, exc.headers or {})
        except _FOREIGN as exc:
            error = _translate(exc, what, self._base_url)
        await _raise_unchained(error)

    async def aclose(self) -> None:
        """Close the session; safe to call twice."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()
