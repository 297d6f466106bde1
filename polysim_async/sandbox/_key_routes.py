"""Identity and key management: ``GET /v1/me``, ``/v1/keys*`` (API.md §4.2, the api-keys page).

Any valid key may call these (no ``trade`` permission needed). Choices where the
docs are silent (in API terms):

* ``GET /v1/keys``: every key of the caller, revoked ones too (``is_active``
  false), oldest first, by ``limit`` (1..200, default 50) and ``offset``, as a
  bare array.
* ``POST /v1/keys`` (``201``): ``name`` 1..255 characters (``422``); an unknown
  ``tier`` or a sixth usable key is ``400 VALIDATION_FAILED`` as documented; a
  tier above the caller's plan, or ``trade`` on a free key, is ``403
  TIER_REQUIRES_UPGRADE``; ``permissions`` must be a non-empty list drawn from
  ``read``/``trade`` (``422``), default ``["read"]`` on free and ``["read",
  "trade"]`` above. The old half of a rotated key does not count toward the five.
* ``POST /v1/keys/{id}/rotate`` (``201``, the create answer): a new key with the
  old one's name, tier and permissions; the old one keeps working for 24
  simulated hours (``expires_at``), then gets ``401 KEY_EXPIRED``.
* ``PATCH /v1/keys/{id}`` (``{"name"}``) answers the key's listing row;
  ``DELETE`` answers ``{"message": "Key revoked successfully"}``. A key that is
  not the caller's, or (for rotate and delete) is already revoked or expired, is
  ``404 KEY_NOT_FOUND``; a non-integer id ``422``.
"""

from __future__ import annotations

from aiohttp import web

from ._account_views import api_key_row, me, new_api_key, tier_row
from ._clock import HOUR_US
from ._core import Core
from ._errors import ApiError, not_found, validation
from ._fields import KEY_REVOKED
from ._json import json_response
from ._parse import json_object, query_int, string_field
from ._state import TIERS, TraderKey, User
from ._trader_routes import caller, scoped_wallets

__all__ = ["MAX_KEYS", "routes"]

routes = web.RouteTableDef()
MAX_KEYS = 5
_PERMISSIONS = ("read", "trade")
_TIER_ORDER = list(TIERS)


@routes.get("/v1/me")
async def get_me(request: web.Request) -> web.Response:
    """The caller's profile, its key's tier and permissions, and a balance."""
    core, key, user = caller(request)
    raw = request.query.get("wallet_id")
    wallets = []
    if raw is not None or user.api_wallet_id is not None:
        wallets = scoped_wallets(core, user, raw)
    return json_response(me(user, key, wallets, core.clock.now_us()))


@routes.get("/v1/keys/tiers")
async def get_tiers(request: web.Request) -> web.Response:
    """The authoritative per-tier limits, as a bare array."""
    return json_response([tier_row(tier) for tier in TIERS.values()])


@routes.get("/v1/keys")
async def list_keys(request: web.Request) -> web.Response:
    """The caller's keys: prefixes and metadata, never the key itself."""
    core, _, user = caller(request)
    limit = query_int(request, "limit", default=50, low=1, high=200)
    offset = query_int(request, "offset", default=0, low=0)
    now = core.clock.now_us()
    return json_response([api_key_row(k, now) for k in user.keys[offset : offset + limit]])


def _permissions(data: dict[str, object], tier: str) -> frozenset[str]:
    value = data.get("permissions")
    if value is None:
        return frozenset({"read"} if tier == "free" else _PERMISSIONS)
    if not isinstance(value, list) or not value or not all(p in _PERMISSIONS for p in value):
        raise validation("permissions must be a non-empty list drawn from read, trade")
    return frozenset(value)


@routes.post("/v1/keys")
async def create_key(request: web.Request) -> web.Response:
    """Mint a key; its raw value is in this answer only."""
    core, _, user = caller(request)
    data = await json_object(request)
    name = string_field(data, "name", required=True)
    assert name is not None
    raw_tier = data.get("tier")
    if raw_tier is not None and (not isinstance(raw_tier, str) or raw_tier not in TIERS):
        raise ApiError(400, "VALIDATION_FAILED", f"tier must be one of {', '.join(TIERS)}")
    tier = raw_tier if raw_tier is not None else user.tier
    permissions = _permissions(data, tier)
    if _TIER_ORDER.index(tier) > _TIER_ORDER.index(user.tier):
        raise ApiError(403, "TIER_REQUIRES_UPGRADE", f"your plan does not include {tier} keys")
    if tier == "free" and "trade" in permissions:
        raise ApiError(403, "TIER_REQUIRES_UPGRADE", "free keys are read-only; omit trade")
    now = core.clock.now_us()
    if sum(1 for k in user.keys if k.usable(now) and k.expires_us is None) >= MAX_KEYS:
        raise ApiError(400, "VALIDATION_FAILED", f"at most {MAX_KEYS} active keys per user")
    key = core.state.add_trader_key(
        user, tier=tier, permissions=permissions, name=name, set_plan=False
    )
    return json_response(new_api_key(key), status=201)


def _own_key(core: Core, user: User, request: web.Request, *, usable: bool) -> TraderKey:
    try:
        key_id = int(request.match_info["key_id"])
    except ValueError:
        raise validation("key_id must be an integer") from None
    for key in user.keys:
        if key.key_id == key_id and (not usable or key.usable(core.clock.now_us())):
            return key
    raise not_found("KEY_NOT_FOUND", f"key {key_id} not found")


@routes.patch("/v1/keys/{key_id}")
async def rename_key(request: web.Request) -> web.Response:
    """Rename a key; answer its listing row."""
    core, _, user = caller(request)
    key = _own_key(core, user, request, usable=False)
    data = await json_object(request)
    name = string_field(data, "name", required=True)
    assert name is not None
    key.name = name
    return json_response(api_key_row(key, core.clock.now_us()))


@routes.delete("/v1/keys/{key_id}")
async def delete_key(request: web.Request) -> web.Response:
    """Revoke a key for good."""
    core, _, user = caller(request)
    key = _own_key(core, user, request, usable=True)
    key.active = False
    return json_response(KEY_REVOKED.make(message="Key revoked successfully"))


@routes.post("/v1/keys/{key_id}/rotate")
async def rotate_key(request: web.Request) -> web.Response:
    """Mint the key's successor; the old value expires 24 hours later."""
    core, _, user = caller(request)
    old = _own_key(core, user, request, usable=True)
    new = core.state.add_trader_key(
        user, tier=old.tier, permissions=old.permissions, name=old.name, set_plan=False
    )
    overlap_end = core.clock.now_us() + 24 * HOUR_US
    old.expires_us = overlap_end if old.expires_us is None else min(old.expires_us, overlap_end)
    return json_response(new_api_key(new), status=201)
