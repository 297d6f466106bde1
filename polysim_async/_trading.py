"""Order calls for bots, added to ``client.orders``: batch placement, cancel by
market, and the dead-man's switch (API.md §4.5 O2, O7, O8)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from ._batch import BatchWire, OrderEntry, build_entries, to_result
from ._codec import decode
from ._errors import InvalidArgumentError
from ._keepalive import HeartbeatLapsedError, KeepAlive, clock_of
from ._tiers import batch_limit, tier_book
from ._validation import check_int, check_str
from .models.orders import CancelAllResult, PlaceOrderRequest
from .models.trading import BatchResult, Heartbeat
from .orders import OrdersAPI

__all__ = ["TradingCalls"]

#: ``interval_ms`` bounds of ``POST /v1/heartbeats``.
HEARTBEAT_MIN_MS = 1_000
HEARTBEAT_MAX_MS = 60_000
#: ``client_label`` is at most 64 characters.
LABEL_MAX = 64


def _label(label: str) -> str:
    return check_str("label", label, min_len=0, max_len=LABEL_MAX)


class TradingCalls(OrdersAPI):
    """``client.orders``: :class:`OrdersAPI` plus batches, cancel by market, heartbeats
    and the keepalive."""

    async def batch_limit(self) -> int | None:
        """Return the most orders one :meth:`place_many` may carry, if it can be known.

        That is the key's tier's ``max_batch_size`` (free 1, pro 5, pro_plus 10,
        enterprise 25 today). The first call per client reads
        ``GET /v1/keys/tiers`` and, unless a response already named the tier in
        its ``x-ratelimit-tier`` header, ``GET /v1/me``; later calls answer from
        memory.

        Returns:
            The limit, or ``None`` when the lookups failed (the server then decides).

        Cancellation propagates unchanged.
        """
        return await batch_limit(self._r)

    def prepare_many(self, orders: Sequence[OrderEntry]) -> list[PlaceOrderRequest]:
        """Validate a batch and give every entry its ``client_order_id``, without sending.

        Keep the result to send it with :meth:`place_many`, and to send the
        very same entries again when a batch's outcome is unknown (a
        :class:`TransportError`, a 5xx after the retries, a cancellation): the
        server deduplicates each entry by its id, so nothing is placed twice.

        Returns:
            The request bodies, one per order, in order.

        Raises:
            InvalidArgumentError: as :meth:`place_many`.
        """
        return build_entries(orders)

    async def place_many(self, orders: Sequence[OrderEntry]) -> BatchResult:
        """Place several orders in one request (``POST /v1/orders/batch``).

        Each entry is a mapping of :meth:`place`'s keyword arguments, or a
        :class:`~polysim_async.models.PlaceOrderRequest`, validated like one
        placement. Every entry carries its own ``client_order_id`` (yours, or a
        generated UUID), reused unchanged on every retry: the server
        deduplicates each entry, so a retried batch never places an order twice,
        and the call is retried like a safe one (transport errors, 429,
        425/502/503/504, 409 busy). A batch counts as one request against the
        rate limit.

        With more than one entry, the tier's batch size is checked first
        (:meth:`batch_limit`): a larger batch is refused before sending. Split
        it, or send it anyway to let the server answer 400 ``BATCH_LIMIT_EXCEEDED``.

        Returns:
            One :class:`~polysim_async.Order` per entry in ``results``; the
            request succeeds even when entries fail (see
            :attr:`BatchResult.rejected`). Successful entries are never rolled back.

        Raises:
            InvalidArgumentError: no orders, a bad entry (named by its index), a
                ``client_order_id`` used twice, or more orders than the tier allows.
            ValidationError: 400 ``BATCH_LIMIT_EXCEEDED`` or a malformed batch.
            PermissionDeniedError: the key has no ``trade`` permission.
            TransportError: no answer after the retries; some entries may be
                placed. Resend the same entries (from :meth:`prepare_many`, or
                with your own ``client_order_id``s) to learn their fate.

        Cancellation propagates; a batch already sent may still be executed
        (resend the same entries to find out what was placed).
        """
        entries = build_entries(orders)
        if len(entries) > 1:
            limit = await batch_limit(self._r)
            if limit is not None and len(entries) > limit:
                raise InvalidArgumentError(
                    f"{len(entries)} orders exceed the tier's batch size of {limit}; "
                    "split them into several place_many calls"
                )
        async with self._write_lock:
            response = await self._r.send(
                "POST", "/v1/orders/batch", json={"orders": entries}, idempotent=True
            )
        tier_book(self._r).observe(response.headers)
        wire = decode(
            BatchWire, response.content, status=response.status, request_id=response.request_id
        )
        return to_result(wire)

    async def cancel_market(
        self, *, market_id: str | None = None, asset_id: str | None = None
    ) -> CancelAllResult:
        """Cancel every resting order in one market (``DELETE /v1/cancel-market-orders``).

        Give exactly one of ``market_id`` (a condition id, sent as ``market``)
        or ``asset_id`` (one outcome token). A repeat finds nothing left to
        cancel, so it is retried like a read.

        Returns:
            The cancelled ids and, per id, why the others were not cancelled.

        Raises:
            InvalidArgumentError: neither or both given (nothing sent).
            APIStatusError: as mapped from the server's answer.

        Cancellation propagates; the sweep may still run on the server.
        """
        if (market_id is None) == (asset_id is None):
            raise InvalidArgumentError("give exactly one of market_id or asset_id")
        params = (
            {"market": check_str("market_id", market_id, max_len=256)}
            if market_id is not None
            else {"asset_id": check_str("asset_id", asset_id, max_len=256)}
        )
        async with self._write_lock:
            return await self._r.request(
                CancelAllResult, "DELETE", "/v1/cancel-market-orders", params=params
            )

    async def heartbeat(self, interval_ms: int, *, label: str = "") -> Heartbeat:
        """Register or refresh the dead-man's switch (``POST /v1/heartbeats``).

        If no further heartbeat arrives within ``interval_ms`` plus a grace of
        ``max(1 s, interval / 4)``, the server cancels **every** pending order
        of the account (whatever the label). Send one every half interval, or
        use :meth:`keepalive`. A refresh has no other effect, so it is retried
        like a read.

        Args:
            interval_ms: 1,000 to 60,000 milliseconds.
            label: ``client_label``, at most 64 characters: lets several bot
                processes on one key hold separate registrations (a lapse of any
                still cancels every pending order).

        Returns:
            ``ok`` and the server's ``expires_at_ms``.

        Raises:
            InvalidArgumentError: bounds broken (nothing sent).
            ValidationError: 422 from the server.
        """
        body = {
            "interval_ms": check_int(
                "interval_ms", interval_ms, low=HEARTBEAT_MIN_MS, high=HEARTBEAT_MAX_MS
            ),
            "client_label": _label(label),
        }
        response = await self._r.send("POST", "/v1/heartbeats", json=body, idempotent=True)
        tier_book(self._r).observe(response.headers)
        return decode(
            Heartbeat, response.content, status=response.status, request_id=response.request_id
        )

    def keepalive(
        self,
        *,
        interval: float = 10.0,
        label: str = "",
        on_lapse: Callable[[HeartbeatLapsedError], object] | None = None,
    ) -> KeepAlive:
        """Keep the dead-man's switch alive for the length of an ``async with`` block::

            async with client.orders.keepalive(interval=10, label="mm") as switch:
                while switch.alive:
                    ...  # quote; switch.check() raises once it has lapsed

        Entering sends the first heartbeat (and raises if it fails); a
        background task then beats every ``interval / 2`` seconds on the
        client's clock, repeating failed beats until the switch would expire.
        If the process dies, beats stop and the server cancels every pending
        order of the account. If beats cannot get through before the expiry,
        the lapse is logged as a WARNING, ``switch.alive`` turns false,
        ``await switch.wait_lapsed()`` returns and ``on_lapse`` is called: the
        server cancels every pending order. Leaving the block stops the beats
        and logs when that will happen.

        Args:
            interval: seconds, 1 to 60 (sent as ``interval_ms``).
            label: ``client_label``, at most 64 characters.
            on_lapse: called with the :class:`HeartbeatLapsedError` at each lapse.

        Returns:
            A :class:`KeepAlive` to use with ``async with`` (once).

        Raises:
            InvalidArgumentError: bounds broken, raised by this call.
        """
        if (
            isinstance(interval, bool)
            or not isinstance(interval, (int, float))
            or not math.isfinite(interval)
        ):
            raise InvalidArgumentError(f"interval must be a number of seconds, got {interval!r}")
        interval_ms = round(interval * 1000)
        if not HEARTBEAT_MIN_MS <= interval_ms <= HEARTBEAT_MAX_MS:
            raise InvalidArgumentError(f"interval must be within 1..60 seconds, got {interval!r}")
        text = _label(label)

        async def beat() -> Heartbeat:
            return await self.heartbeat(interval_ms, label=text)

        return KeepAlive(
            beat,
            interval=interval_ms / 1000,
            label=text,
            clock=clock_of(self._r),
            on_lapse=on_lapse,
        )
