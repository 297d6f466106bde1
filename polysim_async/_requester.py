"""The one request path: limiter → retries → transport → error mapping → decoder.

Resource areas receive a :class:`Requester` and know nothing of aiohttp,
tenacity or the client object.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from multidict import CIMultiDict

from ._clock import Clock
from ._codec import decode, encode
from ._config import RetryPolicy, Timeout
from ._errors import (
    APIStatusError,
    ClientClosedError,
    DeadlineExceededError,
    RateLimitError,
    explain_key_kind,
    from_response,
)
from ._hooks import (
    NO_HOOKS,
    Hooks,
    LimiterWaitEvent,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
)
from ._limits import Limiter, release_turn
from ._retry import CallKind, ClientStats, run_with_retries
from ._transport import Request, Response, ResponseStream, Transport

__all__ = ["Requester"]

T = TypeVar("T")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_RATE_HEADERS = ("retry-after", "x-ratelimit-", "x-polysim-ratelimit-")
#: Bytes of an error answer read from a streamed response (its envelope is short).
_ERROR_BODY_LIMIT = 64 << 10


def _rate_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower().startswith(_RATE_HEADERS)}


class Requester:
    """Sends API requests for the resource areas, with pacing, retries and typed errors.

    Args:
        transport: where requests go.
        headers: sent with every request (key, content type, user agent).
        limiter: the client's shared rate limiter.
        policy: what is repeated.
        timeout: per attempt.
        deadline: seconds per call across attempts and waits (``None``: none).
        clock: the client's clock, for deadlines, waits and elapsed times.
        stats: counters to update.
        hooks: callbacks for requests, answers, retries and limiter waits.
        trader_key: whether the key is a trader key (to explain a 401/403 on
            the wrong kind of route).
        rng: jitter source.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        headers: Mapping[str, str],
        limiter: Limiter,
        policy: RetryPolicy,
        timeout: Timeout,
        deadline: float | None,
        clock: Clock,
        stats: ClientStats,
        hooks: Hooks = NO_HOOKS,
        trader_key: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.transport = transport
        self.headers = CIMultiDict(headers)
        self.limiter = limiter
        self.policy = policy
        self.timeout = timeout
        self.deadline = deadline
        self.clock = clock
        self.stats = stats
        self.hooks = hooks
        self.trader_key = trader_key
        self._rng = rng

    def _attempt_timeout(self, deadline: float | None) -> Timeout:
        if deadline is None:
            return self.timeout
        remaining = deadline - self.clock.now()
        if remaining <= 0:
            raise DeadlineExceededError("the call's deadline passed before the next attempt")
        total = self.timeout.total if self.timeout.total is not None else math.inf
        if remaining >= total:
            return self.timeout  # the common case: no copy on the hot path
        return replace(self.timeout, total=remaining)

    def _headers_with(self, extra: Mapping[str, str] | None) -> Mapping[str, str]:
        if not extra:
            return self.headers
        merged = CIMultiDict(self.headers)
        merged.update(extra)
        return merged

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
        done_on_retry: Callable[[APIStatusError], bool] | None = None,
        opener: Callable[[Request, Timeout], Awaitable[Response]] | None = None,
    ) -> Response:
        """Send one logical call and return its successful (2xx) response.

        Args:
            idempotent: whether the whole request may be repeated; defaults to
                ``True`` for GET/HEAD/OPTIONS/PUT/DELETE and ``False`` otherwise.
            drain: repeat on 409 ORDERS_NOT_CANCELLED (close and reset).
            done_on_retry: says whether an error answered to a *repeated*
                attempt means an earlier attempt already did the work (its
                answer was lost); such an answer is returned as it is, non-2xx
                status included. Never applied to the first attempt.
            opener: sends one attempt instead of ``transport.send`` (see :meth:`stream`).

        Raises:
            APIStatusError subclasses for error statuses, TransportError
            subclasses when no answer came, DeadlineExceededError when the
            call's deadline ran out, ResponseTooLargeError for an oversized
            body. Cancellation propagates unchanged.
        """
        if self.transport.closed:
            raise ClientClosedError("the client is closed")
        kind = CallKind(
            idempotent=method in _SAFE_METHODS if idempotent is None else idempotent, drain=drain
        )
        body = encode(json) if json is not None else None
        # No local holds the headers but ``request``, whose repr masks the key: a
        # traceback rendered with its locals (pytest -l, Sentry) must not show it.
        request = Request(method, path, params, body, self._headers_with(headers))
        clock, hooks, limiter, stats = self.clock, self.hooks, self.limiter, self.stats
        deadline = None if self.deadline is None else clock.now() + self.deadline
        attempts = 0

        async def attempt() -> Response:
            nonlocal attempts
            attempts += 1
            # Time this call's own wait: the limiter's ``waited`` total also grows with
            # every concurrent caller's wait, so a before/after difference of it is not ours.
            before = clock.now()
            try:
                await limiter.acquire(deadline)
            finally:
                waited = clock.now() - before
                stats.limiter_wait += waited
            if waited > 0 and hooks.on_limiter_wait is not None:
                hooks.on_limiter_wait(LimiterWaitEvent(method, path, waited))
            try:
                timeout = self._attempt_timeout(deadline)
                stats.attempts += 1
                if hooks.on_request is not None:
                    hooks.on_request(RequestEvent(method, path, attempts))
                started = clock.now()
                response = await (opener or self.transport.send)(request, timeout)
                limiter.observe(response.headers)
            finally:
                release_turn(limiter)
            if hooks.on_response is not None:
                hooks.on_response(
                    ResponseEvent(
                        method,
                        path,
                        attempts,
                        response.status,
                        response.request_id,
                        clock.now() - started,
                        _rate_headers(response.headers),
                    )
                )
            if 200 <= response.status < 300:
                return response
            error = from_response(
                response.status, response.headers, response.content, reason=response.reason
            )
            if attempts > 1 and done_on_retry is not None and done_on_retry(error):
                return response
            if (
                isinstance(error, RateLimitError)
                and error.retry_after is not None
                and error.retry_after <= self.policy.max_retry_after
            ):
                # Hold every call while the budget refills. A wait above the cap is
                # raised at once instead, and holding the others for it would only
                # delay their own fast failure.
                limiter.pause(error.retry_after)
            raise explain_key_kind(error, path=path, trader_key=self.trader_key)

        def on_retry(attempt: int, reason: str, wait: float, error: Exception) -> None:
            if hooks.on_retry is not None:
                hooks.on_retry(RetryEvent(method, path, attempt, reason, wait, error))

        return await run_with_retries(
            attempt,
            policy=self.policy,
            kind=kind,
            clock=clock,
            deadline=deadline,
            stats=stats,
            describe=f"{method} {path}",
            rng=self._rng,
            on_retry=on_retry,
        )

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncIterator[ResponseStream]:
        """Like :meth:`send`, but enter to get the 2xx answer with its body unread.

        Pacing, retries and error mapping are those of :meth:`send`, and they
        all happen before the block is entered, so before any byte of the body
        is handed over: a failure mid-body (``TransportError`` from the
        chunks) is not repeated. An error answer is mapped from its first
        64 KiB. With a transport that has no ``stream()``, the body is read
        whole through ``send`` and handed over as one chunk.

        Raises:
            As :meth:`send`. Leaving the block (also by cancellation) releases
            the connection.
        """
        open_stream = getattr(self.transport, "stream", None)
        if open_stream is None:
            response = await self.send(method, path, params=params, headers=headers)
            yield ResponseStream(response.status, response.headers, response.reason, _one(response))
            return
        async with contextlib.AsyncExitStack() as kept:
            opened: list[ResponseStream] = []

            async def attempt(request: Request, timeout: Timeout) -> Response:
                async with contextlib.AsyncExitStack() as this:
                    answer: ResponseStream = await this.enter_async_context(
                        open_stream(request, timeout)
                    )
                    if 200 <= answer.status < 300:
                        kept.push_async_exit(this.pop_all())
                        opened.append(answer)
                        return Response(answer.status, answer.headers, b"", answer.reason)
                    content = await _prefix(answer.iter_chunks(), _ERROR_BODY_LIMIT)
                    return Response(answer.status, answer.headers, content, answer.reason)

            await self.send(method, path, params=params, headers=headers, opener=attempt)
            yield opened[-1]

    async def request(
        self,
        tp: type[T],
        method: str,
        path: str,
        **kwargs: Any,
    ) -> T:
        """Like :meth:`send`, then decode the body into ``tp``.

        Results that carry a request id (pages, account states, orders, ...)
        get the answer's ``X-Request-Id``.

        Raises:
            DecodeError: the 2xx body does not match ``tp``.
        """
        response = await self.send(method, path, **kwargs)
        return self.decode(tp, response)

    @staticmethod
    def decode(tp: type[T], response: Response) -> T:
        """Decode a successful answer into ``tp`` and attach its request id.

        Raises:
            DecodeError: the body does not match ``tp``.
        """
        request_id = response.request_id
        result = decode(tp, response.content, status=response.status, request_id=request_id)
        if request_id is not None:
            attrs = getattr(result, "__dict__", None)
            if attrs is not None:
                attrs["request_id"] = request_id
        return result


async def _one(response: Response) -> AsyncIterator[bytes]:
    if response.content:
        yield response.content


async def _prefix(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """Up to ``limit`` bytes from the start of ``chunks`` (an error body: no need for more)."""
    data = b""
    async for chunk in chunks:
        data += chunk
        if len(data) >= limit:
            break
    return data[:limit]
