"""Wire shapes of batch placement and the dead-man's switch, API.md §4.5 O2 and O8."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

import msgspec

from .orders import Order, OrderStatus

__all__ = ["BatchResult", "Heartbeat"]

# 9999-12-31T23:59:59.999Z, the last instant a datetime holds: an expiry outside
# 0..this cannot be shown, so it is refused at decode time (a DecodeError).
_MAX_EPOCH_MS = 253_402_300_799_999

_FAILED = frozenset({OrderStatus.REJECTED, OrderStatus.ERROR})


class BatchResult(msgspec.Struct, kw_only=True, frozen=True):
    """``POST /v1/orders/batch``: one :class:`~polysim_async.Order` per entry, in request order.

    The request succeeds (HTTP 200) even when entries fail: a failed entry has
    ``status`` ``REJECTED`` (business or validation refusal) or ``ERROR``
    (internal), ``order_id`` 0, the machine code in ``error`` and prose in
    ``error_message``. Successful entries are never rolled back.
    """

    results: list[Order]
    succeeded: int = 0
    failed: int = 0

    @property
    def accepted(self) -> list[Order]:
        """The entries the server placed (any status but ``REJECTED``/``ERROR``)."""
        return [order for order in self.results if order.status not in _FAILED]

    @property
    def rejected(self) -> list[Order]:
        """The entries that failed; read ``error`` and ``error_message`` on each."""
        return [order for order in self.results if order.status in _FAILED]


class Heartbeat(msgspec.Struct, kw_only=True, frozen=True):
    """``POST /v1/heartbeats``: the registration is fresh until ``expires_at_ms``.

    ``expires_at_ms`` (a JSON integer, epoch milliseconds) is the last beat plus
    ``interval_ms`` plus a grace of ``max(1 s, interval / 4)``. If no beat
    arrives by then, the server cancels every pending order of the account.
    An answer whose ``expires_at_ms`` lies outside 1970..9999 is refused as a
    :class:`~polysim_async.DecodeError`.
    """

    ok: bool = True
    expires_at_ms: Annotated[int, msgspec.Meta(ge=0, le=_MAX_EPOCH_MS)]

    @property
    def expires_at(self) -> datetime:
        """``expires_at_ms`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.expires_at_ms / 1000, timezone.utc)
