"""``Client``: configuration, lifecycle and the resource namespaces over one request path."""

from __future__ import annotations

import asyncio
import enum
import math
import random
import warnings
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from ._clock import SYSTEM_CLOCK, Cancellable, Clock
from ._config import (
    DEFAULT_DEADLINE,
    DEFAULT_DRAIN_RETRIES,
    DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_POOL_SIZE,
    DEFAULT_TIMEOUT,
    RateLimit,
    RetryPolicy,
    Timeout,
    mask_key,
    resolve_api_key,
    resolve_base_url,
)
from ._errors import ClientClosedError, InvalidArgumentError, UsageError, is_trader_key
from ._hooks import NO_HOOKS, Hooks
from ._keyadmin import KeyManagement
from ._limits import Limiter, aclose_limiter
from ._logging import configure_from_env
from ._portfolio import PortfolioReads
from ._ratelimit import RateLimiter
from ._requester import Requester
from ._retry import ClientStats
from ._tiers import fetch_me
from ._trading import TradingCalls
from ._transport import AiohttpTransport, Transport
from ._version import __version__
from .executions import ExecutionsAPI
from .markets import MarketsAPI
from .models.keys import Me
from .partner import PartnerAPI
from .prices import PricesAPI
from .wallets import WalletsAPI

if TYPE_CHECKING:
    import aiohttp

__all__ = ["Client"]


class _State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


class _Unset(enum.Enum):
    UNSET = 0


_UNSET = _Unset.UNSET


class _CallableClock:
    """A :class:`Clock` built from the separate time functions of older releases."""

    def __init__(
        self,
        now: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        wall: Callable[[], float],
    ) -> None:
        self.now = now
        self.wall = wall
        self._sleep = sleep

    async def sleep(self, seconds: float) -> None:
        await self._sleep(max(0.0, seconds))

    def call_at(self, when: float, callback: Callable[[], object]) -> Cancellable:
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, when - self.now()), callback)


def _is_clock(value: object) -> bool:
    return all(callable(getattr(value, name, None)) for name in ("now", "wall", "sleep", "call_at"))


def _resolve_clock(
    clock: Clock | Callable[[], float],
    sleep: Callable[[float], Awaitable[None]] | _Unset,
    wall_clock: Callable[[], float] | _Unset,
) -> Clock:
    if sleep is _UNSET and wall_clock is _UNSET and _is_clock(clock):
        return clock  # type: ignore[return-value]
    if not callable(clock) and not _is_clock(clock):
        raise InvalidArgumentError(f"clock must be a Clock object, got {clock!r}")
    warnings.warn(
        "Client(clock=<function>, sleep=..., wall_clock=...) is deprecated: pass one Clock "
        "object (now, wall, sleep, call_at) as clock=; see polysim_async.SystemClock",
        DeprecationWarning,
        stacklevel=3,
    )
    base: Clock = clock if _is_clock(clock) else SYSTEM_CLOCK  # type: ignore[assignment]
    now: Callable[[], float] = base.now if _is_clock(clock) else clock  # type: ignore[assignment]
    return _CallableClock(
        now,
        base.sleep if isinstance(sleep, _Unset) else sleep,
        base.wall if isinstance(wall_clock, _Unset) else wall_clock,
    )


class Client:
    """An asyncio client for the PolySimulator partner and trader APIs.

    Use it as ``async with Client() as client:`` or call :meth:`aclose` when
    done. One pooled aiohttp session is created lazily on the first request,
    inside the running loop, and shared by every call and task.

    Args:
        api_key: tenant key (partner API) or ``ps_live_`` key (trader API);
            else ``POLYSIM_TENANT_KEY``, else ``POLYSIM_API_KEY``.
        base_url: the API root (no ``/v1``); else ``POLYSIM_BASE_URL``, else
            ``https://api.polysimulator.com``. Plain ``http`` is refused unless
            the host is loopback or ``allow_insecure=True``.
        timeout: per-attempt connect/read/total timeouts (a number means ``total``).
        deadline: seconds one call may take across attempts, backoffs and rate
            limiter waits; ``None`` for no deadline.
        max_retries: repeats for 429, 425/502/503/504 and transport errors;
            ``0`` disables all automatic repeats.
        max_retry_after: a 429 asking for a longer wait raises ``RateLimitError`` at once.
        drain_retries: repeats of close/reset on 409 ORDERS_NOT_CANCELLED.
        rate_limit: the client-side budget shared by all calls. ``"auto"`` (the
            default) follows the limits the server advertises: a tenant key
            starts at the partner limits (50/s, 3,000/min); a trader key
            (``ps_live_``/``ps_test_``) sends its first request alone and then
            paces at the tier its answer advertises (Pro 10/s and 600/min if it
            advertises none). A :class:`RateLimit` is used as given; ``None``
            turns the limiter off. Any other object implementing the limiter
            protocol (:class:`RedisRateLimit` for one budget shared by every
            process) is used as the limiter, and closed with the client.
        pool_size: maximum open connections.
        allow_insecure: permit plain ``http`` to a non-loopback host.
        max_response_size: bytes of (decompressed) body read at most per answer
            (and per WebSocket frame); a longer one raises ResponseTooLargeError.
        transport: another network stack (e.g. :class:`MockTransport` in tests).
        clock: where every timing decision reads time and sleeps: the request
            path, the limiter, retries, streams and watches.
        hooks: callbacks on requests, answers, retries, limiter waits and
            stream reconnects and gaps.
        trace_configs: aiohttp ``TraceConfig`` objects (e.g. OpenTelemetry's
            aiohttp instrumentation), given to the session with the key header
            masked; configure them before the first request.
        sleep, wall_clock: deprecated; pass one ``clock=`` object.

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
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        transport: Transport | None = None,
        clock: Clock | Callable[[], float] = SYSTEM_CLOCK,
        hooks: Hooks | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
        sleep: Callable[[float], Awaitable[None]] | _Unset = _UNSET,
        wall_clock: Callable[[], float] | _Unset = _UNSET,
    ) -> None:
        configure_from_env()
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
        for name, value in (("pool_size", pool_size), ("max_response_size", max_response_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
        if hooks is not None and not isinstance(hooks, Hooks):
            raise InvalidArgumentError(f"hooks must be a Hooks object, got {hooks!r}")
        the_clock = _resolve_clock(clock, sleep, wall_clock)
        trader = is_trader_key(key)
        limiter: Limiter
        if rate_limit == "auto":
            limiter = RateLimiter.auto(clock=the_clock, kind="trader" if trader else "tenant")
        elif rate_limit is None or isinstance(rate_limit, RateLimit):
            limiter = RateLimiter(rate_limit, clock=the_clock)
        elif isinstance(rate_limit, Limiter):
            limiter = rate_limit
        else:
            raise InvalidArgumentError(
                'rate_limit must be a RateLimit, a limiter (e.g. RedisRateLimit), "auto" or None'
            )
        self._timeout = timeout
        self._retry_policy = RetryPolicy(
            max_retries=max_retries, max_retry_after=max_retry_after, drain_retries=drain_retries
        )
        #: Counters of attempts, retries and waits; read it, don't write it.
        self.stats = ClientStats()
        self._state = _State.UNOPENED
        self._transport: Transport = transport or AiohttpTransport(
            self.base_url,
            pool_size=pool_size,
            max_response_size=max_response_size,
            trace_configs=trace_configs,
        )
        #: The shared rate limiter (its ``limit`` is the budget in force).
        self.limiter = limiter
        user_agent = f"polysim-async/{__version__}"
        self._requester = Requester(
            self._transport,
            headers={
                "X-API-Key": key,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": user_agent,
            },
            limiter=limiter,
            policy=self._retry_policy,
            timeout=timeout,
            deadline=deadline,
            clock=the_clock,
            stats=self.stats,
            hooks=hooks or NO_HOOKS,
            trader_key=trader,
            rng=random.Random(),
        )
        #: The partner API (tenant key): ``client.partner.users``, ``client.partner.accounts``.
        self.partner = PartnerAPI(self._requester)
        #: Trader account reads (personal key): equity, balance, positions, history,
        #: portfolio, settlements, the API-wallet reset, CSV exports.
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
        #: Live prices: many markets at once, and the price stream (personal key).
        self.prices = PricesAPI(self._requester, mint=self.keys.ws_token, user_agent=user_agent)
        #: The trader's fills as a reconnecting, gap-free stream (personal key).
        self.executions = ExecutionsAPI(
            self._requester,
            account=self.account,
            mint=self.keys.ws_token,
            user_agent=user_agent,
        )

    def __repr__(self) -> str:
        return (
            f"<polysim_async.Client base_url={self.base_url!r} "
            f"api_key={mask_key(self._api_key)!r} state={self._state.name.lower()}>"
        )

    __str__ = __repr__

    @property
    def timeout(self) -> Timeout:
        """The per-attempt timeouts (read-only)."""
        return self._timeout

    @property
    def retry_policy(self) -> RetryPolicy:
        """What is repeated and how (read-only)."""
        return self._retry_policy

    @property
    def clock(self) -> Clock:
        """The clock every timing decision of this client reads."""
        return self._requester.clock

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` has been called."""
        return self._state is _State.CLOSED

    @property
    def session(self) -> Any:
        """Deprecated: the pooled ``aiohttp.ClientSession`` of the default transport.

        Raises:
            ClientClosedError: the client is closed.
            UsageError: the client uses another transport.
        """
        warnings.warn(
            "Client.session is deprecated and will be removed; pass transport= to "
            "customise the network stack",
            DeprecationWarning,
            stacklevel=2,
        )
        if self._state is _State.CLOSED:
            raise ClientClosedError("the client is closed")
        if not isinstance(self._transport, AiohttpTransport):
            raise UsageError("this client uses another transport; it has no aiohttp session")
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
        if getattr(transport, "has_open_session", False):
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
