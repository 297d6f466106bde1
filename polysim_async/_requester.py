"""The one request path: limiter → retries → transport → error mapping → decoder.

Resource areas receive a :class:`Requester` and know nothing of aiohttp,
tenacity or the client object.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from ._codec import decode, encode
from ._config import RetryPolicy, Timeout
from ._errors import ClientClosedError, DeadlineExceededError, RateLimitError, from_response
from ._limits import Limiter
from ._retry import CallKind, ClientStats, run_with_retries
from ._transport import Request, Response, Transport

__all__ = ["Requester"]

T = TypeVar("T")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class Requester:
    """Sends API requests for the resource areas, with pacing, retries and typed errors."""

    def __init__(
        self,
        transport: Transport,
        *,
        limiter: Limiter,
        policy: RetryPolicy,
        timeout: Timeout,
        deadline: float | None,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        stats: ClientStats,
        rng: random.Random | None = None,
    ) -> None:
        self.transport = transport
        self.limiter = limiter
        self.policy = policy
        self.timeout = timeout
        self.deadline = deadline
        self.clock = clock
        self.sleep = sleep
        self.stats = stats
        self._rng = rng

    def _attempt_timeout(self, deadline: float | None) -> Timeout:
        if deadline is None:
            return self.timeout
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise DeadlineExceededError("the call's deadline passed before the next attempt")
        total = self.timeout.total if self.timeout.total is not None else math.inf
        if remaining >= total:
            return self.timeout  # the common case: no copy on the hot path
        return replace(self.timeout, total=remaining)

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        drain: bool = False,
    ) -> Response:
        """Send one logical call and return its successful (2xx) response.

        Args:
            idempotent: whether the whole request may be repeated; defaults to
                ``True`` for GET/HEAD/OPTIONS/PUT/DELETE and ``False`` otherwise.
            drain: repeat on 409 ORDERS_NOT_CANCELLED (close and reset).

        Raises:
            APIStatusError subclasses for error statuses, TransportError
            subclasses when no answer came, DeadlineExceededError when the
            call's deadline ran out. Cancellation propagates unchanged.
        """
        if self.transport.closed:
            raise ClientClosedError("the client is closed")
        kind = CallKind(
            idempotent=method in _SAFE_METHODS if idempotent is None else idempotent, drain=drain
        )
        body = encode(json) if json is not None else None
        request = Request(method, path, params, body, headers or {})
        deadline = None if self.deadline is None else self.clock() + self.deadline

        async def attempt() -> Response:
            # Time this call's own wait: the limiter's ``waited`` total also grows with
            # every concurrent caller's wait, so a before/after difference of it is not ours.
            before = self.clock()
            try:
                await self.limiter.acquire(deadline)
            finally:
                self.stats.limiter_wait += self.clock() - before
            timeout = self._attempt_timeout(deadline)
            self.stats.attempts += 1
            response = await self.transport.send(request, timeout)
            self.limiter.observe(response.headers)
            if 200 <= response.status < 300:
                return response
            error = from_response(
                response.status, response.headers, response.content, reason=response.reason
            )
            if (
                isinstance(error, RateLimitError)
                and error.retry_after is not None
                and error.retry_after <= self.policy.max_retry_after
            ):
                # Hold every call while the budget refills. A wait above the cap is
                # raised at once instead, and holding the others for it would only
                # delay their own fast failure.
                self.limiter.pause(error.retry_after)
            raise error

        return await run_with_retries(
            attempt,
            policy=self.policy,
            kind=kind,
            clock=self.clock,
            sleep=self.sleep,
            deadline=deadline,
            stats=self.stats,
            describe=f"{method} {path}",
            rng=self._rng,
        )

    async def request(
        self,
        tp: type[T],
        method: str,
        path: str,
        **kwargs: Any,
    ) -> T:
        """Like :meth:`send`, then decode the body into ``tp``.

        Raises:
            DecodeError: the 2xx body does not match ``tp``.
        """
        response = await self.send(method, path, **kwargs)
        return decode(tp, response.content, status=response.status, request_id=response.request_id)
