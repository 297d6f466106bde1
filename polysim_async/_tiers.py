"""What the client knows about its key's tier: identity, the tier table, its limits.

``POST /v1/orders/batch`` and ``POST /v1/prices/batch`` accept at most the
tier's ``max_batch_size`` entries; a larger request is refused whole with 400
``BATCH_LIMIT_EXCEEDED``. The WebSockets of a user may hold at most the tier's
``max_ws_connections`` connections at once (close 4002 beyond). To refuse (or
split) before sending, the client needs two facts, kept here per request path
(so per client) and shared by every resource area without constructor plumbing:

* the key's tier: the ``x-ratelimit-tier`` header of any response this module's
  callers saw (the key's own rate tier, most precise), else ``GET /v1/me``'s ``tier``;
* the tier table: ``GET /v1/keys/tiers`` (declared authoritative over every doc table).

:func:`tier_limits` reads both lazily, at most once each per client (a failed
lookup is tried again next time, but a refused one is not), and answers
``None`` when they cannot be known: the server then decides. :func:`batch_limit`
and :func:`ws_connection_limit` read one column of it.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Mapping
from typing import Any

import msgspec

from ._codec import decode
from ._errors import APIStatusError, DecodeError, TransportError
from ._requester import Requester
from ._validation import wallet_param
from .models.keys import Me, TierLimits

__all__ = [
    "TierBook",
    "batch_limit",
    "fetch_me",
    "fetch_tiers",
    "tier_book",
    "tier_limits",
    "ws_connection_limit",
]

logger = logging.getLogger("polysim_async")


class _TiersEnvelope(msgspec.Struct, kw_only=True, frozen=True):
    # The SDK unwraps a bare array or {"tiers": [...]} (API.md §4.2).
    tiers: list[TierLimits] = msgspec.field(default_factory=list)
    items: list[TierLimits] = msgspec.field(default_factory=list)


_TIERS_WIRE: Any = list[TierLimits] | _TiersEnvelope


class TierBook:
    """Per-client knowledge of the key's tier and the tier table."""

    def __init__(self) -> None:
        self.header_tier: str | None = None
        self.me_tier: str | None = None
        self.limits: dict[str, TierLimits] | None = None
        self.refused = False  # a lookup was refused (4xx): do not ask again
        self.lock = asyncio.Lock()

    @property
    def tier(self) -> str | None:
        """The key's tier, if known."""
        return self.header_tier or self.me_tier

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn the key's tier from a response's ``x-ratelimit-tier`` header."""
        raw = headers.get("x-ratelimit-tier") or headers.get("x-polysim-ratelimit-tier")
        if raw and raw.strip():
            self.header_tier = raw.strip().lower()

    def row(self) -> TierLimits | None:
        """The key's tier's row, or ``None`` while the tier or the table is unknown."""
        tier = self.tier
        if tier is None or self.limits is None:
            return None
        return self.limits.get(tier)


_books: weakref.WeakKeyDictionary[Requester, TierBook] = weakref.WeakKeyDictionary()


def tier_book(requester: Requester) -> TierBook:
    """Return the :class:`TierBook` of the client that owns ``requester``."""
    book = _books.get(requester)
    if book is None:
        book = _books[requester] = TierBook()
    return book


async def fetch_me(requester: Requester, wallet_id: int | str | None = None) -> Me:
    """``GET /v1/me``; also records the tier. See :meth:`Client.me`."""
    params: dict[str, str] = {}
    scope = wallet_param(wallet_id)
    if scope is not None:
        params["wallet_id"] = scope
    response = await requester.send("GET", "/v1/me", params=params)
    book = tier_book(requester)
    book.observe(response.headers)
    me = decode(Me, response.content, status=response.status, request_id=response.request_id)
    if me.tier:
        book.me_tier = me.tier.strip().lower()
    return me


async def fetch_tiers(requester: Requester) -> list[TierLimits]:
    """``GET /v1/keys/tiers``; also records the table. See :meth:`KeysAPI.tiers`."""
    response = await requester.send("GET", "/v1/keys/tiers")
    book = tier_book(requester)
    book.observe(response.headers)
    wire: list[TierLimits] | _TiersEnvelope = decode(
        _TIERS_WIRE, response.content, status=response.status, request_id=response.request_id
    )
    rows = wire if isinstance(wire, list) else (wire.tiers or wire.items)
    book.limits = {row.tier.strip().lower(): row for row in rows}
    return rows


async def tier_limits(requester: Requester) -> TierLimits | None:
    """Return the key's tier's limits, looking up what is missing once per client.

    A lookup that fails for a transient reason (transport error, 429, 5xx) is
    logged and tried again on the next call; one the server refuses (another
    4xx) or answers with a body that cannot be read (``DecodeError``) is not
    asked again. Either way this returns ``None`` and the caller
    sends the request as it is.

    Cancellation propagates unchanged.
    """
    book = tier_book(requester)
    known = book.row()
    if known is not None:
        return known
    async with book.lock:  # concurrent callers share one lookup
        if book.refused:
            return book.row()
        try:
            if book.limits is None:
                await fetch_tiers(requester)
            if book.tier is None:
                await fetch_me(requester)
        except (APIStatusError, DecodeError, TransportError) as exc:
            if isinstance(exc, DecodeError) or (
                isinstance(exc, APIStatusError) and exc.status < 500 and exc.status != 429
            ):
                book.refused = True
            logger.debug("cannot learn the tier's limits (%s); the server will decide", exc)
    return book.row()


async def batch_limit(requester: Requester) -> int | None:
    """Return the key's ``max_batch_size`` (see :func:`tier_limits`), ``None`` if unknown."""
    row = await tier_limits(requester)
    return None if row is None else row.max_batch_size


async def ws_connection_limit(requester: Requester) -> int | None:
    """Return the key's ``max_ws_connections`` (see :func:`tier_limits`), ``None`` if unknown."""
    row = await tier_limits(requester)
    return None if row is None else row.max_ws_connections
