"""Prices of many markets at once (``POST /v1/prices/batch``): ``client.prices``.

The price stream (``WS /v1/ws/prices``) will join this namespace as
``client.prices.stream(...)``; its frames are already typed in
:mod:`polysim_async.models.prices`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._errors import InvalidArgumentError
from ._requester import Requester
from ._tiers import batch_limit
from ._validation import check_str
from .models.markets import MarketPrice

__all__ = ["PricesAPI"]

#: The schema's hard ceiling on ``market_ids`` per request; the tier's batch size is lower.
PRICE_BATCH_CEILING = 50


class PricesAPI:
    """``client.prices``: live prices of many markets."""

    def __init__(self, requester: Requester) -> None:
        self._r = requester

    async def batch(self, market_ids: Sequence[str]) -> list[MarketPrice]:
        """Return the live prices of ``market_ids`` (condition ids), in the server's order.

        One request carries at most the tier's batch size (free 1, pro 5,
        pro_plus 10, enterprise 25; see :meth:`OrdersAPI.batch_limit`), so a
        longer list is sent as several requests, one after the other, and the
        rows are concatenated. Reading prices has no side effect, so each
        request is retried like a read.

        Returns:
            One row per market; a market without a cached price has only
            ``condition_id`` (every price ``None``).

        Raises:
            InvalidArgumentError: an empty list, a bare string or a bad id (nothing sent).
            ValidationError: 400 ``BATCH_LIMIT_EXCEEDED`` when the tier could not
                be learned and the server refuses the size.
        """
        if isinstance(market_ids, (str, bytes)) or not isinstance(market_ids, Sequence):
            raise InvalidArgumentError("market_ids must be a list of condition ids")
        ids = [check_str("market_id", market_id, max_len=256) for market_id in market_ids]
        if not ids:
            raise InvalidArgumentError("market_ids must not be empty")
        size = PRICE_BATCH_CEILING
        if len(ids) > 1:
            size = min(size, await batch_limit(self._r) or size)
        rows: list[MarketPrice] = []
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            rows += await self._r.request(
                list[MarketPrice],
                "POST",
                "/v1/prices/batch",
                json={"market_ids": chunk},
                idempotent=True,
            )
        return rows
