"""Building the body of ``POST /v1/orders/batch`` (API.md O2), pure.

Every entry is validated like a single placement and stamped with its own
``client_order_id`` (kept if given, else a fresh UUID) before anything is sent.
The body is built once, so a retried batch resends the very same ids: the
server deduplicates each entry by its id, and no entry can be placed twice.
There is no batch-level ``Idempotency-Key`` (as in the official SDK): it
would deduplicate the batch as one unit, the wrong granularity.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from ._errors import InvalidArgumentError
from .models.orders import Order, OrderStatus, PlaceOrderRequest
from .models.trading import BatchResult
from .orders import build_order

__all__ = ["BatchWire", "OrderEntry", "build_entries", "to_result"]

#: One batch entry: the keyword arguments of ``client.orders.place`` as a
#: mapping, or a ready :class:`~polysim_async.models.PlaceOrderRequest`.
OrderEntry = PlaceOrderRequest | Mapping[str, Any]

_REQUIRED = ("market_id", "side", "outcome", "order_type")
_OPTIONAL = (
    "price",
    "quantity",
    "amount",
    "time_in_force",
    "client_order_id",
    "expiration",
    "post_only",
)
_FIELDS = frozenset(_REQUIRED + _OPTIONAL)
_FAILED = frozenset({OrderStatus.REJECTED, OrderStatus.ERROR})


class BatchWire(msgspec.Struct, kw_only=True, frozen=True):
    """The batch answer as sent: results under ``results`` (docs) or ``orders``/``items`` (SDK)."""

    results: list[Order] | None = None
    orders: list[Order] | None = None
    items: list[Order] | None = None
    succeeded: int | None = None
    failed: int | None = None


def _arguments(entry: OrderEntry) -> dict[str, Any]:
    if isinstance(entry, PlaceOrderRequest):
        return msgspec.structs.asdict(entry)
    if not isinstance(entry, Mapping):
        raise InvalidArgumentError(
            f"an order must be a mapping of place() arguments or a PlaceOrderRequest, "
            f"got {type(entry).__name__}"
        )
    unknown = set(entry) - _FIELDS
    if unknown:
        raise InvalidArgumentError(f"unknown order fields: {', '.join(sorted(map(str, unknown)))}")
    missing = [name for name in _REQUIRED if entry.get(name) is None]
    if missing:
        raise InvalidArgumentError(f"missing order fields: {', '.join(missing)}")
    return {name: entry.get(name) for name in _FIELDS}


def build_entries(orders: Sequence[OrderEntry]) -> list[PlaceOrderRequest]:
    """Validate every entry and give each its own ``client_order_id``.

    Raises:
        InvalidArgumentError: no orders, a bad entry (named by its index), or
            two entries sharing a ``client_order_id``.
    """
    if isinstance(orders, (str, bytes, Mapping, PlaceOrderRequest)) or not isinstance(
        orders, Sequence
    ):
        raise InvalidArgumentError("orders must be a list of orders")
    if not orders:
        raise InvalidArgumentError("a batch needs at least one order")
    entries: list[PlaceOrderRequest] = []
    seen: set[str] = set()
    for index, entry in enumerate(orders):
        try:
            body = build_order(**_arguments(entry))
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"orders[{index}]: {exc}") from None
        key = body.client_order_id
        if key is None:
            key = uuid.uuid4().hex
            body = msgspec.structs.replace(body, client_order_id=key)
        elif key in seen:
            raise InvalidArgumentError(f"orders[{index}]: client_order_id {key!r} is used twice")
        seen.add(key)
        entries.append(body)
    return entries


def to_result(wire: BatchWire) -> BatchResult:
    """The typed result; counts are derived from the entries when the server omits them."""
    results = wire.results if wire.results is not None else (wire.orders or wire.items or [])
    failed = sum(1 for order in results if order.status in _FAILED)
    return BatchResult(
        results=results,
        succeeded=wire.succeeded if wire.succeeded is not None else len(results) - failed,
        failed=wire.failed if wire.failed is not None else failed,
    )
