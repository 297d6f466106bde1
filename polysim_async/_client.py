"""``Client``: configuration, lifecycle and the resource namespaces over one request path."""

from __future__ import annotations

import asyncio
import enum
import math
import random
import time
import warnings
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Literal

import aiohttp

from ._config import (
    DEFAULT_DEADLINE,
    DEFAULT_DRAIN_RETRIES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_POOL_SIZE,
    DEFAULT_RATE_LIMIT,
    DEFAULT_TIMEOUT,
    RateLimit,
    RetryPolicy,
    Timeout,
    mask_key,
    resolve_api_key,
    resolve_base_url,
)
from ._errors import ClientClosedError, InvalidArgumentError
from ._keyadmin import KeyManagement
from ._limits import Limiter, aclose_limiter
from ._portfolio import PortfolioReads
from ._ratelimit import RateLimiter
from ._requester import Requester
from ._retry import ClientStats
from ._tiers import fetch_me
from ._trading import TradingCalls
from ._transport import AiohttpTransport
from ._version import __version__
from .executions import ExecutionsAPI
from .markets import MarketsAPI
from .models.keys import Me
from .partner import PartnerAPI
from .prices import PricesAPI
from .wallets import WalletsAPI

__all__ = ["Client"]


class _State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


class Client:
    """An asyncio client for the PolySimulator partner and trader APIs.

    Use it as ``async with Client() as client:`` or call :meth:`aclose` when
    done. One pooled aiohttp session is created lazily on the first request,
    inside the running loop, and shared by every call and task.

    Args:
        api_key: tenant key (partner API) or ``ps_live_`` key (trader API);
            else ``POLYSIM_TENANT_KEY``, else ``POLYSIM_API_KEY``.
        base_url: else ``POLYSIM_BASE_URL``, else ``https://api.polysimulator.com``.
            Plain ``http`` is refused unless the host is loopback or
            ``allow_insecure=True``.
        timeout: per-attempt connect/read/total timeouts (a number means ``total``).
        deadline: seconds one call may take across attempts, backoffs and rate
            limiter waits; ``None`` for no deadline.
        max_retries: repeats for 429, 425/502/503/504 and transport errors;
            ``0`` disables all automatic repeats.
        max_retry_after: a 429 asking for a longer wait raises ``RateLimitError`` at once.
        drain_retries: repeats of close/reset on 409 ORDERS_NOT_CANCELLED.
        rate_limit: the client-side budget shared by all calls. ``"auto"`` (the
            default) starts at the partner limits, 50/s and 3,000/min, and
            tightens to lower limits the server advertises in
            ``X-RateLimit-Limit-Per-Second`` / ``X-RateLimit-Limit`` (a Pro trader
            key: 10/s, 600/min); a :class:`RateLimit` is used as given; ``None``
            turns the limiter off. Any other object implementing the limiter
            protocol (:class:`RedisRateLimit` for one budget shared by every
            process) is used as the limiter, and closed with the client.
        pool_size: maximum open connections.
        allow_insecure: permit plain ``http`` to a non-loopback host.
        clock, sleep, wall_clock: time sources, injectable for tests.

    Raises:
        InvalidArgumentError: no key anywhere, a bad URL or a bad option.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: Timeout | float = DEFAULT_TIMEOUT,
        deadline: float | None = DEFAULT_DEADLINE,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        drain_retries: int = DEFAULT_DRAIN_RETRIES,
        rate_limit: RateLimit | Limiter | Literal["auto"] | None = "auto",
        pool_size: int = DEFAULT_POOL_SIZE,
        allow_insecure: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        key = resolve_api_key(api_key)
        if key is None:
            raise InvalidArgumentError(
                "no API key: pass api_key= or set POLYSIM_TENANT_KEY or POLYSIM_API_KEY"
            )
        self._api_key = key
        self.base_url = resolve_base_url(base_url, allow_insecure=allow_insecure)
        if not isinstance(timeout, Timeout):
            timeout = Timeout(total=timeout)
        if deadline is not None and (
            isinstance(deadline, bool)
            or not isinstance(deadline, (int, float))
            or not 0 < deadline < math.inf  # also refuses NaN
        ):
            raise InvalidArgumentError(
                f"deadline must be a positive number or None, got {deadline!r}"
            )
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise InvalidArgumentError(f"pool_size must be a positive integer, got {pool_size!r}")
        adaptive = rate_limit == "auto"
        if adaptive:
            rate_limit = DEFAULT_RATE_LIMIT
        elif rate_limit is not None and not isinstance(rate_limit, (RateLimit, Limiter)):
            raise InvalidArgumentError(
                'rate_limit must be a RateLimit, a limiter (e.g. RedisRateLimit), "auto" or None'
            )
        self.timeout = timeout
        self.retry_policy = RetryPolicy(
            max_retries=max_retries, max_retry_after=max_retry_after, drain_retries=drain_retries
        )
        #: Counters of attempts, retries and waits; read it, don't write it.
        self.stats = ClientStats()
        self._state = _State.UNOPENED
        self._transport = AiohttpTransport(
            self.base_url,
            headers={
                "X-API-Key": key,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": f"polysim-async/{__version__}",
            },
            pool_size=pool_size,
        )
        self.limiter: Limiter = (
            rate_limit
            if isinstance(rate_limit, Limiter)
            else RateLimiter(
                rate_limit if isinstance(rate_limit, RateLimit) else None,
                clock=clock,
                sleep=sleep,
                wall_clock=wall_clock,
                adaptive=adaptive,
            )
        )
        self._requester = Requester(
            self._transport,
            limiter=self.limiter,
            policy=self.retry_policy,
            timeout=timeout,
            deadline=deadline,
            clock=clock,
            sleep=sleep,
            stats=self.stats,
            rng=random.Random(),
        )
        #: The partner API (tenant key): ``client.partner.users``, ``client.partner.accounts``.
        self.partner = PartnerAPI(self._requester)
        #: Trader account reads (personal key): equity, balance, positions, portfolio,
        #: settlements, the API-wallet reset, CSV exports.
        self.account = PortfolioReads(self._requester)
        #: Trader orders (personal key): place, place_many, get, list, cancel, cancel-all,
        #: cancel_market, heartbeat, keepalive.
        self.orders = TradingCalls(self._requester)
        #: Trader keys (personal key): WebSocket tokens, key management, the tier table.
        self.keys = KeyManagement(self._requester)
        #: The key owner's wallets (personal key).
        self.wallets = WalletsAPI(self._requester)
        #: Market data: markets, books, candles (personal key).
        self.markets = MarketsAPI(self._requester)
        #: Live prices of many markets (personal key).
        self.prices = PricesAPI(self._requester)
        #: The trader's fills as a reconnecting, gap-free stream (personal key).
        self.executions = ExecutionsAPI(
            self._requester,
            mint=self.keys.ws_token,
            session=lambda: self.session,
            base_url=self.base_url,
        )

    def __repr__(self) -> str:
        return (
            f"<polysim_async.Client base_url={self.base_url!r} "
            f"api_key={mask_key(self._api_key)!r} state={self._state.name.lower()}>"
        )

    __str__ = __repr__

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` has been called."""
        return self._state is _State.CLOSED

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled aiohttp session (created on first use). Do not close it yourself."""
        if self._state is _State.CLOSED:
            raise ClientClosedError("the client is closed")
        session = self._transport.session
        self._state = _State.OPENED
        return session

    async def __aenter__(self) -> Client:
        if self._state is _State.CLOSED:
            raise ClientClosedError("a closed client cannot be reopened; create a new Client")
        self._state = _State.OPENED
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections and a limiter given as ``rate_limit``.

        Idempotent; the client cannot be used afterwards.
        """
        self._state = _State.CLOSED
        try:
            await self._transport.aclose()
        finally:
            await aclose_limiter(self.limiter)

    def __del__(self) -> None:
        # Warn only; no I/O in a finalizer.
        transport = getattr(self, "_transport", None)
        if transport is not None and transport.has_open_session:
            warnings.warn(
                f"unclosed {self!r}; use 'async with Client()' or 'await client.aclose()'",
                ResourceWarning,
                stacklevel=2,
            )

    async def me(self, *, wallet_id: int | str | None = None) -> Me:
        """Return the trader key owner's profile, tier and the key's permissions (``GET /v1/me``).

        The tier is remembered, for the batch size of ``orders.place_many`` and
        ``prices.batch``.

        Args:
            wallet_id: forwarded as the official SDK does (``"all"``, ``"api"`` or
                a wallet id); the server's use of it is undocumented.

        Raises:
            InvalidArgumentError: a bad ``wallet_id`` (nothing sent).
            AuthenticationError: the key is missing, unknown or revoked.
        """
        return await fetch_me(self._requester, wallet_id)
