"""Key management (``/v1/keys*``) and the tier table, added to ``client.keys``.

The new key returned by create and rotate is shown once: it is wrapped in a
:class:`~polysim_async.Secret` straight from the bytes, a response that does
not decode is reported without its body, and nothing here logs it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from ._codec import decode
from ._errors import APIStatusError, DecodeError, InvalidArgumentError
from ._offsets import walk_listing
from ._tiers import fetch_tiers
from ._validation import check_int, check_str
from .keys import KeysAPI
from .models.common import UTCDateTime
from .models.keys import ApiKey, NewApiKey, Secret, TierLimits

__all__ = ["KeyManagement"]

_PAGE_MAX = 200


class _KeysEnvelope(msgspec.Struct, kw_only=True, frozen=True):
    keys: list[ApiKey] = msgspec.field(default_factory=list)
    items: list[ApiKey] = msgspec.field(default_factory=list)

    @property
    def rows(self) -> list[ApiKey]:
        return self.keys or self.items


_LIST_WIRE: Any = list[ApiKey] | _KeysEnvelope


class _NewKeyWire(msgspec.Struct, kw_only=True, frozen=True):
    # ``raw_key`` today; an older page calls it ``key`` (API.md §13 #22).
    id: int
    raw_key: str | None = None
    key: str | None = None
    key_prefix: str | None = None
    name: str | None = None
    rate_limit_tier: str | None = None
    permissions: list[str] = msgspec.field(default_factory=list)
    created_at: UTCDateTime | None = None


def _gone(error: APIStatusError) -> bool:
    return error.status == 404


def _key_path(key_id: int, suffix: str = "") -> str:
    return f"/v1/keys/{check_int('key_id', key_id, low=1)}{suffix}"


class KeyManagement(KeysAPI):
    """``client.keys``: :class:`KeysAPI` plus list, create, rename, rotate and delete
    keys, and the tier table."""

    async def _new_key(self, path: str, body: dict[str, Any] | None) -> NewApiKey:
        # Never repeated once it may have arrived: each call mints another key.
        response = await self._r.send("POST", path, json=body, idempotent=False)
        status, request_id = response.status, response.request_id
        wire: _NewKeyWire | None = None
        reason = "it carried no raw_key"
        try:
            wire = decode(_NewKeyWire, response.content)
        except DecodeError as exc:
            # The one decode path's error holds the body (and the key): keep only its message.
            reason = exc.message
        secret = None if wire is None else wire.raw_key or wire.key
        if wire is None or not secret:
            # Raised here, outside the ``except``, with no ``body=`` and nothing
            # chained: the body holds the key.
            message = f"the new key's answer did not decode: {reason}"
            raise DecodeError(message, status=status, request_id=request_id)
        return NewApiKey(
            id=wire.id,
            raw_key=Secret(secret),
            key_prefix=wire.key_prefix,
            name=wire.name,
            rate_limit_tier=wire.rate_limit_tier,
            permissions=wire.permissions,
            created_at=wire.created_at,
        )

    async def create(
        self,
        name: str,
        *,
        tier: str | None = None,
        permissions: Sequence[str] | None = None,
    ) -> NewApiKey:
        """Mint a new key (``POST /v1/keys``); its value is in ``raw_key``, shown this once.

        Each call mints another key (at most 5 active), so the call is **not**
        repeated once it may have reached the server: after a
        :class:`TransportError` or a 5xx, :meth:`list` the keys to see whether
        it exists (and delete it if you cannot use it).

        Args:
            name: a label for the key.
            tier: ``free``, ``pro``, ``pro_plus`` or ``enterprise``; omitted, the
                server mints at your entitlement.
            permissions: e.g. ``["read", "trade"]``; omitted, the tier's default.

        Returns:
            The key; ``raw_key`` is a :class:`Secret` (``reveal()`` it to store it).

        Raises:
            InvalidArgumentError: bad arguments (nothing sent).
            ValidationError: 400 ``VALIDATION_FAILED`` (5 keys already, unknown tier).
            PermissionDeniedError: 403 ``TIER_REQUIRES_UPGRADE`` (``trade`` on free).
            DecodeError: the answer did not decode (reported without its body).

        Cancellation propagates; the key may still be minted by the server.
        """
        body: dict[str, Any] = {"name": check_str("name", name, max_len=255)}
        if tier is not None:
            body["tier"] = check_str("tier", tier, max_len=64)
        if permissions is not None:
            if isinstance(permissions, str):
                raise InvalidArgumentError("permissions must be a list of strings, not a string")
            body["permissions"] = [check_str("permission", p, max_len=64) for p in permissions]
        return await self._new_key("/v1/keys", body)

    async def rotate(self, key_id: int) -> NewApiKey:
        """Replace a key's value (``POST /v1/keys/{key_id}/rotate``); the old one lasts 24 h more.

        Not repeated once it may have reached the server (each call mints a new
        value): after a :class:`TransportError` or a 5xx, :meth:`list` the keys.

        Returns:
            The new key; ``raw_key`` is a :class:`Secret`, shown this once.

        Raises:
            InvalidArgumentError: ``key_id`` is not a positive integer (nothing sent).
            NotFoundError: no such key of yours.
            DecodeError: the answer did not decode (reported without its body).

        Cancellation propagates; the rotation may still happen on the server.
        """
        return await self._new_key(_key_path(key_id, "/rotate"), None)

    async def rename(self, key_id: int, *, name: str) -> ApiKey:
        """Rename a key (``PATCH /v1/keys/{key_id}``); retried like a read.

        Returns:
            The key's listing row with its new name.

        Raises:
            InvalidArgumentError: bad arguments (nothing sent).
            NotFoundError: no such key of yours.
        """
        body = {"name": check_str("name", name, max_len=255)}
        return await self._r.request(ApiKey, "PATCH", _key_path(key_id), json=body, idempotent=True)

    async def delete(self, key_id: int) -> None:
        """Revoke a key for good (``DELETE /v1/keys/{key_id}``).

        Retried like a read. When a *repeated* attempt answers 404 (a lost
        answer hid a revocation that succeeded), the call succeeds: the key is
        revoked either way. A 404 to the first attempt is raised.

        Raises:
            InvalidArgumentError: ``key_id`` is not a positive integer (nothing sent).
            NotFoundError: no such key of yours (or already revoked before this call).
        """
        await self._r.send("DELETE", _key_path(key_id), done_on_retry=_gone)

    async def tiers(self) -> list[TierLimits]:
        """Return the authoritative per-tier limits (``GET /v1/keys/tiers``).

        The table is also kept by the client: with the key's tier (from any
        trader response's ``x-ratelimit-tier`` header, or :meth:`Client.me`), it
        lets :meth:`OrdersAPI.place_many` and :meth:`PricesAPI.batch` know the
        tier's ``max_batch_size`` before sending.

        Raises:
            APIStatusError: as mapped from the server's answer.
        """
        return await fetch_tiers(self._r)

    def list(self, *, page_size: int = 50) -> AsyncIterator[ApiKey]:
        """Iterate over the owner's keys (``GET /v1/keys``): prefixes and metadata only.

        Args:
            page_size: keys per request, 1 to 200 (a user holds at most 5 active keys).

        Returns:
            An async iterator of keys; ``break`` is safe.

        Raises:
            InvalidArgumentError: bad ``page_size``, raised by this call before anything is sent.
        """
        size = check_int("page_size", page_size, low=1, high=_PAGE_MAX)
        return walk_listing(self._r, "/v1/keys", _LIST_WIRE, ApiKey, size)
