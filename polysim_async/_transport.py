"""The seam between the client and aiohttp: one request in, one fully read response out.

Only this module imports aiohttp's client classes, and it is the one place
their exceptions are translated into :mod:`polysim_async` errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from multidict import CIMultiDict

from ._config import Timeout
from ._errors import (
    ClientClosedError,
    ConnectError,
    ConnectTimeoutError,
    InvalidArgumentError,
    NetworkError,
    ReadTimeoutError,
    TransportError,
    UsageError,
)

__all__ = ["AiohttpTransport", "Request", "Response", "Transport"]


@dataclass(frozen=True, slots=True)
class Request:
    """What the request path asks a transport to send. ``path`` starts with ``/``."""

    method: str
    path: str
    params: Mapping[str, str] | None = None
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Response:
    """A fully read HTTP response."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    reason: str | None = None

    @property
    def request_id(self) -> str | None:
        """The server's ``X-Request-Id``, if sent."""
        return self.headers.get("X-Request-Id")


def _describe(exc: BaseException) -> str:
    """Name an exception for a message without its ``repr``.

    The ``repr`` of :class:`aiohttp.ClientResponseError` (raised for a malformed
    response) includes the request headers, and with them the API key.
    """
    return f"{type(exc).__name__}: {exc}"


class Transport(Protocol):
    """What the request path needs from an HTTP stack."""

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        ...

    async def send(self, request: Request, timeout: Timeout) -> Response:
        """Send ``request`` and read the whole response, or raise a TransportError."""
        ...

    async def aclose(self) -> None:
        """Release every connection."""
        ...


class AiohttpTransport:
    """A pooled :class:`aiohttp.ClientSession`, created lazily inside the running loop."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        pool_size: int,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._base_url = base_url
        self._headers = CIMultiDict(headers)
        self._pool_size = pool_size
        self._session = session
        self._owns_session = session is None
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
                headers=self._headers,
                auto_decompress=True,
                raise_for_status=False,
            )
        return self._session

    @property
    def session(self) -> aiohttp.ClientSession:
        """The underlying session (created on first use); also used for WebSockets."""
        return self._get_session()

    @property
    def base_url(self) -> str:
        """The base URL every request path is joined to."""
        return self._base_url

    def _client_timeout(self, timeout: Timeout) -> aiohttp.ClientTimeout:
        cached = self._timeouts.get(timeout)
        if cached is None:
            cached = aiohttp.ClientTimeout(
                total=timeout.total, sock_connect=timeout.connect, sock_read=timeout.read
            )
            if len(self._timeouts) < 64:  # deadline-clamped totals vary; keep the cache small
                self._timeouts[timeout] = cached
        return cached

    async def send(self, request: Request, timeout: Timeout) -> Response:
        """Send one request; see :class:`Transport`.

        Raises:
            ConnectError, ConnectTimeoutError: the request was not sent.
            NetworkError, ReadTimeoutError: the request may have reached the server.
            ClientClosedError: the transport was closed.

        Cancellation propagates unchanged; the connection is released.
        """
        session = self._get_session()
        client_timeout = self._client_timeout(timeout)
        url = self._base_url + request.path
        unchained: TransportError
        try:
            async with session.request(
                request.method,
                url,
                params=request.params,
                data=request.body,
                headers=request.headers or None,
                timeout=client_timeout,
                allow_redirects=False,
            ) as resp:
                content = await resp.read()
                # resp.headers is an immutable, case-insensitive view that stays
                # valid after the connection is released: no copy needed.
                return Response(resp.status, resp.headers, content, resp.reason)
        except aiohttp.ConnectionTimeoutError as exc:
            raise ConnectTimeoutError(f"timed out connecting to {self._base_url}") from exc
        except aiohttp.ServerTimeoutError as exc:
            raise ReadTimeoutError(f"timed out reading {request.method} {request.path}") from exc
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(f"cannot connect to {self._base_url}: {exc.os_error}") from exc
        except aiohttp.InvalidURL as exc:
            raise InvalidArgumentError(f"invalid URL {url!r}") from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            raise NetworkError(
                f"connection lost during {request.method} {request.path}: {_describe(exc)}"
            ) from exc
        except aiohttp.ClientResponseError as exc:
            # Its repr holds the request headers, and with them the API key: the
            # error is raised below, outside this block, so that neither its
            # __cause__ nor its __context__ keeps ``exc``.
            unchained = NetworkError(f"{request.method} {request.path} failed: {_describe(exc)}")
        except aiohttp.ClientError as exc:
            raise NetworkError(f"{request.method} {request.path} failed: {_describe(exc)}") from exc
        except asyncio.TimeoutError as exc:
            # aiohttp's ``total`` timeout; distinct from cancellation, which is not caught.
            raise ReadTimeoutError(f"{request.method} {request.path} exceeded its timeout") from exc
        except OSError as exc:
            raise TransportError(
                f"{request.method} {request.path} failed: {_describe(exc)}"
            ) from exc
        raise unchained

    async def aclose(self) -> None:
        """Close the session if this transport created it; safe to call twice."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()
