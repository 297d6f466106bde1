"""Wire shapes of identity and key management: ``/v1/me``, ``/v1/keys*``, API.md §4.2.

A new key's value is returned exactly once (create, rotate). It is held in a
:class:`Secret`, whose ``repr`` and ``str`` never show it, so logging a
:class:`NewApiKey` (or an exception carrying one) cannot leak it; read it with
:meth:`Secret.reveal`. Encoding a :class:`NewApiKey` with msgspec fails on
purpose.
"""

from __future__ import annotations

import hmac

import msgspec

from .common import Money, MoneyStruct, UTCDateTime

__all__ = ["ApiKey", "Me", "NewApiKey", "Secret", "TierLimits"]


class Secret:
    """A secret string that never shows itself in ``repr``, ``str`` or f-strings.

    Equality compares the values in constant time; ``reveal()`` returns the value.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value. Store it; it cannot be read from the server again."""
        return self._value

    def __repr__(self) -> str:
        shown = "ps_live_" if self._value.startswith("ps_live_") else ""
        return f"Secret('{shown}…')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


class Me(MoneyStruct, kw_only=True, frozen=True):
    """``GET /v1/me``: the key owner's profile, tier and the calling key's permissions."""

    user_id: int
    balance: Money | None = None
    currency: str = "USD"
    key_count: int | None = None
    tier: str | None = None
    permissions: list[str] = msgspec.field(default_factory=list)
    auth_user_id: str | None = None
    email: str | None = None


class TierLimits(msgspec.Struct, kw_only=True, frozen=True):
    """One row of ``GET /v1/keys/tiers``, the authoritative per-tier limits."""

    tier: str
    requests_per_second: int
    requests_per_minute: int
    max_ws_connections: int
    max_batch_size: int


class ApiKey(msgspec.Struct, kw_only=True, frozen=True):
    """One key as listed by ``GET /v1/keys``: metadata and visible prefix only.

    ``expires_at`` is set by the server (e.g. on a rotated key's old half during
    its 24 h overlap).
    """

    id: int
    key_prefix: str | None = None
    name: str | None = None
    permissions: list[str] = msgspec.field(default_factory=list)
    rate_limit_tier: str | None = None
    is_active: bool = True
    created_at: UTCDateTime | None = None
    expires_at: UTCDateTime | None = None


class NewApiKey(msgspec.Struct, kw_only=True, frozen=True):
    """A key just created or rotated; ``raw_key`` is shown this once and never again."""

    id: int
    raw_key: Secret
    key_prefix: str | None = None
    name: str | None = None
    rate_limit_tier: str | None = None
    permissions: list[str] = msgspec.field(default_factory=list)
    created_at: UTCDateTime | None = None
