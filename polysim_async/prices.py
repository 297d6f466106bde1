"""Live prices: many markets at once (``POST /v1/prices/batch``) and the price
stream (``WS /v1/ws/prices``): ``client.prices``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from ._config import DEFAULT_STREAM_POLICY, StreamPolicy
from ._errors import InvalidArgumentError
from ._pricestream import PriceStream, market_list
from ._requester import Requester
from ._tiers import batch_limit
from .models.markets import MarketPrice
from .models.orders import WsToken

__all__ = ["PricesAPI"]

#: The schema's hard ceiling on ``market_ids`` per request; the tier's batch size is lower.
PRICE_BATCH_CEILING = 50


class PricesAPI:
    """``client.prices``: live prices of many markets."""

    def __init__(
        self,
        requester: Requester,
        *,
        mint: Callable[[], Awaitable[WsToken]],
        user_agent: str,
    ) -> None:
        self._r = requester
        self._mint = mint
        self._user_agent = user_agent

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
        ids = market_list(market_ids)
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

    def stream(
        self, market_ids: Sequence[str] = (), *, policy: StreamPolicy = DEFAULT_STREAM_POLICY
    ) -> PriceStream:
        """Stream the live prices of ``market_ids`` (condition ids) over ``WS /v1/ws/prices``.

        ``async with client.prices.stream(ids) as prices: async for tick in prices: ...``

        On entering, a token is minted (``POST /v1/keys/ws-token``, shared by
        the stream's connections while fresh), and the markets are spread over
        as few connections as hold them, at most 50 per connection (the
        server's cap), within the tier's ``max_ws_connections`` (a set that
        cannot fit raises :class:`SubscriptionLimitError` before anything is
        opened). Entering returns once every connection's subscription is
        acknowledged; the server sends no snapshot, only changes from then on.
        Each tick is a :class:`PriceTick` with exact ``Decimal`` prices.

        Every connection reconnects on its own, with the executions stream's
        rules (``policy``): at once with a fresh token after close 4001, else
        after a jittered exponential backoff (close 4002, too many connections,
        included); transient failures reconnect, anything else ends the stream
        (``policy.process_exception`` decides). After every reconnect the
        connection subscribes its whole set again (the server forgets it);
        once that is acknowledged, the prices of its markets are read with
        :meth:`batch`, and a market whose price differs from its last tick
        (or that had none) gets a tick made from it (``source="rest"``, no
        ``emit_ts_ms``; counted in ``stats.healed``), so a change made while
        the connection was down is not missed. A subscription left unanswered
        for ``policy.open_timeout`` drops the connection as a failed one.
        A JSON ping is sent after ``policy.ping_interval`` idle seconds.
        ``policy.reconcile_interval`` and ``policy.lookback`` do not apply.

        Buffering: "latest price wins" — per market only the newest unread tick
        is kept; see :class:`PriceStream`.

        Args:
            market_ids: condition ids; may be empty (add some with
                :meth:`PriceStream.subscribe`). Duplicates are ignored.
            policy: backoff, ping and handshake settings.

        Returns:
            The stream, to be entered with ``async with`` (once).

        Raises:
            InvalidArgumentError: a bare string, a bad id or a bad policy (at once).
            When entering or iterating: see :meth:`PriceStream.__aenter__` and
            :meth:`PriceStream.__anext__`.

        Cancellation: cancelling the consumer, ``break`` or an error inside the
        ``async with`` closes every socket and task before the block exits.
        """
        ids = market_list(market_ids)
        if not isinstance(policy, StreamPolicy):
            raise InvalidArgumentError("policy must be a StreamPolicy")
        return PriceStream(
            requester=self._r,
            mint=self._mint,
            fetch=self.batch,
            user_agent=self._user_agent,
            markets=ids,
            policy=policy,
        )
