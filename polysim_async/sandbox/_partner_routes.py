"""The nine partner endpoints, ``/v1/partner/*`` (API.md §3).

Choices where the docs are silent (all in API terms):

* P1 replay with a *different* email for a known ``external_id`` keeps the stored
  trader and answers ``200`` with the stored email. An email that already belongs
  to a native user links to that user (same ``user_id``), exactly as for a new one.
  ``email`` must contain ``@``; it is trimmed and lower-cased; 3-320 characters.
* P1 answers exactly the seed's five fields (``metadata`` is stored, not echoed
  there); P2 answers the P1 shape (``created: false``) plus ``metadata``.
* P3: ``redirect_url`` is optional; when given it must be an ``http(s)`` URL
  (else ``422``) whose host is on the tenant's allowlist when it has one (else
  ``400 REDIRECT_NOT_ALLOWED``). Each call records one email in the outbox.
* P4: replaying an account ``external_id`` answers ``200`` with the stored account
  (the new body is ignored). ``starting_balance`` must be a decimal string (a
  JSON number is tolerated) with at most 2 dp, above 0 and at most 100,000,000;
  an unknown or other-tenant ``user_id`` is ``404 USER_NOT_FOUND``.
* P5-P9: an unknown or other-tenant ``account_id`` is ``404 ACCOUNT_NOT_FOUND``.
* P6: ``limit`` outside 1..500, a ``side`` other than BUY/SELL (any case) or a
  malformed cursor is ``422 VALIDATION_FAILED``.
* P7 takes any of ``stage``, ``metadata``, ``rules`` (others are ignored) and
  returns the P5 envelope.
* P8/P9 cancel at most the bulk-cancel limit of open orders per call and answer
  ``409 ORDERS_NOT_CANCELLED`` while some remain. A closed account's wallet
  refuses orders with ``400 ACCOUNT_CLOSED``; reset re-opens it.
* Anything else under ``/v1/partner`` is ``404 NOT_FOUND`` or ``405
  METHOD_NOT_ALLOWED`` (after authentication, as the whole surface is keyed).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import msgspec
from aiohttp import web

from ._context import CONTEXT
from ._core import CORE
from ._errors import ApiError, bad_request, not_found, validation
from ._feed import decode_cursor
from ._fields import LOGIN_LINK
from ._json import json_response
from ._parse import (
    decimal_field,
    json_object,
    optional_object,
    query_choice,
    query_int,
    string_field,
)
from ._state import PartnerAccount, Tenant, TenantUser
from ._trading import close_account as close
from ._trading import reset_account as reset
from ._views import account_state, partner_account, partner_user, register_response

__all__ = ["routes"]

routes = web.RouteTableDef()
STAGES = ("demo", "challenge", "funded")
_MAX_BALANCE = Decimal("100000000")


class _RawRules(msgspec.Struct):
    rules: msgspec.Raw = msgspec.Raw(b"null")


_rules_decoder = msgspec.json.Decoder(_RawRules)


def _tenant(request: web.Request) -> Tenant:
    tenant = CONTEXT.get().tenant
    assert tenant is not None
    return tenant


def _account(request: web.Request) -> PartnerAccount:
    core = request.app[CORE]
    account = core.state.accounts.get(request.match_info["account_id"])
    if account is None or account.tenant_id != _tenant(request).tenant_id:
        raise not_found("ACCOUNT_NOT_FOUND", "account not found")
    return account


def _mapping(request: web.Request) -> TenantUser:
    raw = request.match_info["user_id"]
    try:
        user_id = int(raw)
    except ValueError:
        raise validation("user_id must be an integer") from None
    mapping = _tenant(request).users_by_id.get(user_id)
    if mapping is None:
        raise not_found("USER_NOT_FOUND", "user not found")
    return mapping


async def _raw_rules(request: web.Request) -> bytes | None:
    raw = _rules_decoder.decode(await request.read()).rules
    text = bytes(raw).strip()
    if text == b"null":
        return None
    if not text.startswith(b"{"):
        raise validation("rules must be a JSON object")
    return text


def _stage(data: dict[str, Any], *, required: bool) -> str | None:
    stage = data.get("stage")
    if stage is None and not required:
        return None
    if stage not in STAGES:
        raise validation("stage must be one of demo, challenge, funded")
    return str(stage)


@routes.post("/v1/partner/users")
async def register_user(request: web.Request) -> web.Response:
    """P1: register or resolve a trader (201 new, 200 replay)."""
    core = request.app[CORE]
    data = await json_object(request)
    external_id = string_field(data, "external_id", required=True)
    email = string_field(data, "email", required=True, min_len=3, max_len=320)
    metadata = optional_object(data, "metadata")
    assert external_id is not None and email is not None
    email = email.strip().lower()
    if "@" not in email or len(email) < 3:
        raise validation("email must be an email address")
    tenant = _tenant(request)
    mapping = tenant.users_by_ext.get(external_id)
    if mapping is not None:
        return json_response(register_response(mapping, created=False))
    user, _ = core.state.user_for_email(email)
    mapping = tenant.users_by_id.get(user.user_id)
    if mapping is None:
        mapping = TenantUser(
            core.state.uuid(), tenant.tenant_id, external_id, user.user_id, email, metadata
        )
        tenant.users_by_id[user.user_id] = mapping
    tenant.users_by_ext[external_id] = mapping
    return json_response(register_response(mapping, created=True), status=201)


@routes.get("/v1/partner/users/{user_id}")
async def get_user(request: web.Request) -> web.Response:
    """P2: one mapped trader."""
    return json_response(partner_user(_mapping(request)))


@routes.post("/v1/partner/users/{user_id}/login-link")
async def login_link(request: web.Request) -> web.Response:
    """P3: email a one-time sign-in link (recorded in the outbox), answer 202."""
    core = request.app[CORE]
    mapping = _mapping(request)
    data = await json_object(request, allow_empty=True)
    redirect = string_field(data, "redirect_url", required=False, max_len=2048)
    tenant = _tenant(request)
    if redirect is not None:
        parts = urlsplit(redirect)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise validation("redirect_url must be an absolute http(s) URL")
        allowed = tenant.redirect_domains
        host = parts.hostname.lower()
        if allowed is not None and not any(host == d or host.endswith("." + d) for d in allowed):
            raise bad_request("REDIRECT_NOT_ALLOWED", f"{host} is not an allowlisted domain")
    core.state.outbox.append(
        {
            "tenant_id": tenant.tenant_id,
            "tenant_slug": tenant.slug,
            "user_id": mapping.user_id,
            "email": mapping.email,
            "redirect_url": redirect,
            "link": f"https://polysimulator.com/auth/magic?token={core.state.hex(32)}",
            "sent_at": core.clock.now().isoformat(timespec="microseconds"),
        }
    )
    return json_response(LOGIN_LINK.make(status="accepted"), status=202)


@routes.post("/v1/partner/accounts")
async def create_account(request: web.Request) -> web.Response:
    """P4: create a tenant-governed account (201), or return the existing one (200)."""
    core = request.app[CORE]
    data = await json_object(request)
    user_id = data.get("user_id")
    if type(user_id) is not int:
        raise validation("user_id must be an integer")
    external_id = string_field(data, "external_id", required=True)
    assert external_id is not None
    stage = _stage(data, required=True)
    balance = decimal_field(
        data,
        "starting_balance",
        required=True,
        low=Decimal(0),
        inclusive_low=False,
        high=_MAX_BALANCE,
        places=2,
    )
    assert balance is not None and stage is not None
    metadata = optional_object(data, "metadata")
    rules = await _raw_rules(request)
    tenant = _tenant(request)
    existing = tenant.accounts_by_ext.get(external_id)
    if existing is not None:
        return json_response(partner_account(existing))
    if user_id not in tenant.users_by_id:
        raise not_found("USER_NOT_FOUND", "user not found")
    user = core.state.users[user_id]
    wallet = core.state.add_wallet(user, "PROP_FIRM", balance)
    account = PartnerAccount(
        core.state.uuid(), tenant.tenant_id, external_id, user_id, wallet, stage, rules, metadata
    )
    wallet.account = account
    tenant.accounts_by_ext[external_id] = account
    core.state.accounts[account.account_id] = account
    return json_response(partner_account(account), status=201)


@routes.get("/v1/partner/accounts/{account_id}")
async def get_account(request: web.Request) -> web.Response:
    """P5: the account-state envelope."""
    core = request.app[CORE]
    return json_response(account_state(core.exchange, _account(request)))


@routes.get("/v1/partner/accounts/{account_id}/trades")
async def trades(request: web.Request) -> web.Response:
    """P6: one newest-first page of the keyset trade feed."""
    account = _account(request)
    query = request.query
    limit = query_int(request, "limit", default=100, low=1, high=500)
    side = query_choice(request, "side", ("BUY", "SELL"))
    market_id = query.get("market_id") or None
    if market_id is not None and len(market_id) > 256:
        raise validation("market_id must be at most 256 characters")
    before = None
    cursor = query.get("cursor")
    if cursor:
        try:
            before = decode_cursor(cursor)
        except (ValueError, OverflowError):
            raise validation("cursor is malformed; resend next_cursor unchanged") from None
    rows, next_cursor = account.wallet.fills.page(
        limit, before=before, side=side, market_id=market_id
    )
    # TRADE_PAGE, joined from pre-encoded rows: a page costs one slice, not a re-encode.
    cursor_json = b"null" if next_cursor is None else b'"' + next_cursor.encode() + b'"'
    body = b'{"data":' + rows + b',"next_cursor":' + cursor_json + b"}"
    return web.Response(body=body, content_type="application/json")


@routes.patch("/v1/partner/accounts/{account_id}")
async def update_account(request: web.Request) -> web.Response:
    """P7: change ``stage``, ``metadata`` and/or ``rules``; returns the P5 envelope."""
    core = request.app[CORE]
    account = _account(request)
    data = await json_object(request, allow_empty=True)
    stage = _stage(data, required=False)
    if "metadata" in data:
        account.metadata = optional_object(data, "metadata")
    if "rules" in data:
        account.rules = await _raw_rules(request)
    if stage is not None:
        account.stage = stage
    account.wallet.updated_us = core.clock.stamp()
    return json_response(account_state(core.exchange, account))


@routes.post("/v1/partner/accounts/{account_id}/close")
async def close_account(request: web.Request) -> web.Response:
    """P8: close idempotently (a second close is a 200 no-op)."""
    core = request.app[CORE]
    account = _account(request)
    close(core, account)
    return json_response(account_state(core.exchange, account))


@routes.post("/v1/partner/accounts/{account_id}/reset")
async def reset_account(request: web.Request) -> web.Response:
    """P9: reset the same account to its starting balance (resets again on each call)."""
    core = request.app[CORE]
    account = _account(request)
    reset(core, account)
    return json_response(account_state(core.exchange, account))


#: The scope each partner route needs, by (method, canonical path).
SCOPES: dict[tuple[str, str], str] = {
    ("POST", "/v1/partner/users"): "users:write",
    ("GET", "/v1/partner/users/{user_id}"): "accounts:read",
    ("POST", "/v1/partner/users/{user_id}/login-link"): "users:write",
    ("POST", "/v1/partner/accounts"): "accounts:write",
    ("GET", "/v1/partner/accounts/{account_id}"): "accounts:read",
    ("GET", "/v1/partner/accounts/{account_id}/trades"): "accounts:read",
    ("PATCH", "/v1/partner/accounts/{account_id}"): "accounts:write",
    ("POST", "/v1/partner/accounts/{account_id}/close"): "accounts:write",
    ("POST", "/v1/partner/accounts/{account_id}/reset"): "accounts:write",
}


def raise_unknown(request: web.Request) -> None:
    """Raise the 404/405 envelope for an unrouted partner request.

    Raises:
        ApiError: 404 NOT_FOUND or 405 METHOD_NOT_ALLOWED.
    """
    exc = request.match_info.http_exception
    if exc is not None and exc.status == 405:
        raise ApiError(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here")
    raise ApiError(404, "NOT_FOUND", "Not Found")
