"""Authentication and permissions for the two realms (API.md §2).

Partner routes (``/v1/partner/*``) take a tenant key in ``X-API-Key`` or, as an
alias, ``Authorization: Bearer <key>``; ``X-API-Key`` wins when both are sent.
Trader routes (``/v1/*``) take a ``ps_live_``/``ps_test_`` key in ``X-API-Key``,
``POLY_API_KEY``, ``Poly-API-Key`` or ``Authorization: Bearer``, in that order of
precedence. No credential -> ``401 MISSING_API_KEY``, except on the routes the
docs open to a key *or* a Bearer JWT (``GET /v1/account/balance``), where it is
``401 MISSING_AUTH`` (API.md §4.3, §6.2); an unknown, revoked or other-realm key
-> ``401 INVALID_KEY``, a bare envelope as the real server sends (no hint about
the kind of key the route needs). A tenant that is not enabled sees ``404
NOT_FOUND`` on its whole partner surface; a missing scope is ``403
INSUFFICIENT_PERMISSION``; a trader key without ``trade`` on a write is ``403
INSUFFICIENT_PERMISSION``. The old half of a rotated trader key works for 24
simulated hours, then gets ``401 KEY_EXPIRED``.
"""

from __future__ import annotations

from aiohttp import web

from ._errors import ApiError
from ._state import SandboxState, Tenant, TenantKey, TraderKey

__all__ = ["partner_key", "require_scope", "trader_key"]

_TRADER_HEADERS = ("X-API-Key", "POLY_API_KEY", "Poly-API-Key")
#: Served trader routes that take a key or a Bearer JWT ("K/J"): a request with
#: neither is ``MISSING_AUTH`` there, not ``MISSING_API_KEY`` (API.md §6.2).
_KEY_OR_JWT_PATHS = frozenset({"/v1/account/balance"})


def _bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization")
    if auth is None:
        return None
    scheme, _, value = auth.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _missing() -> ApiError:
    return ApiError(401, "MISSING_API_KEY", "API key required: send it in the X-API-Key header")


def _missing_auth() -> ApiError:
    return ApiError(
        401, "MISSING_AUTH", "authentication required: send an API key or a Bearer token"
    )


def _invalid() -> ApiError:
    # A bare envelope, as the real server sends: a key of the wrong kind gets no hint
    # (the client adds one of its own).
    return ApiError(401, "INVALID_KEY", "API key is unknown, deactivated or not valid here")


def partner_key(state: SandboxState, request: web.Request) -> tuple[TenantKey, Tenant]:
    """Authenticate a partner request.

    Raises:
        ApiError: 401 MISSING_API_KEY / INVALID_KEY, or 404 when the tenant is disabled.
    """
    raw = request.headers.get("X-API-Key") or _bearer(request)
    if not raw:
        raise _missing()
    key = state.tenant_keys.get(raw.strip())
    if key is None or not key.active:
        raise _invalid()
    tenant = state.tenants[key.tenant_id]
    if not tenant.enabled:
        raise ApiError(404, "NOT_FOUND", "Not Found")
    return key, tenant


def require_scope(key: TenantKey, scope: str) -> None:
    """Check a tenant key's scope.

    Raises:
        ApiError: 403 INSUFFICIENT_PERMISSION.
    """
    if scope not in key.scopes:
        raise ApiError(
            403, "INSUFFICIENT_PERMISSION", f"this tenant key lacks the {scope} permission"
        )


def trader_key(state: SandboxState, request: web.Request) -> TraderKey:
    """Authenticate a trader request.

    Raises:
        ApiError: 401 MISSING_API_KEY (MISSING_AUTH on key-or-JWT routes) / INVALID_KEY.
    """
    raw: str | None = None
    for name in _TRADER_HEADERS:
        value = request.headers.get(name)
        if value and value.strip():
            raw = value.strip()
            break
    if raw is None:
        raw = _bearer(request)
    if not raw:
        raise _missing_auth() if request.path in _KEY_OR_JWT_PATHS else _missing()
    key = state.trader_keys.get(raw)
    if key is None or not key.active:
        raise _invalid()
    if not key.usable(state.clock.now_us()):
        raise ApiError(401, "KEY_EXPIRED", "this key was rotated and its overlap has ended")
    return key
