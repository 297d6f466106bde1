"""The caller's wallets, ``/v1/me/wallets*`` (API.md §4.4, the wallets pages).

Any valid key may call these. Choices where the docs are silent (in API terms):

* ``GET /v1/me/wallets``: every wallet of the caller (API, partner ``PROP_FIRM``,
  ``SANDBOX``, archived generations too), oldest first, by ``limit`` (1..200,
  default 50) and ``offset``, as a bare array.
* ``POST /v1/me/wallets`` (``201``): ``kind`` defaults to ``SANDBOX`` (any case);
  an unknown kind is ``422 VALIDATION_FAILED``, ``MAIN``/``API``/``COMPETITION``/
  ``PROP_FIRM`` are ``400 INVALID_WALLET_KIND`` (only ``SANDBOX`` is accepted
  today). ``label`` is optional, at most 255 characters. A plan holds at most
  :data:`SANDBOX_CAPS` active ``SANDBOX`` wallets (free: none): past it, ``402
  UPGRADE_REQUIRED`` (``feature_key`` ``wallets.sandbox_baseline``). A new
  wallet opens at the plan's API baseline.
* ``PATCH`` takes ``{"label": str | null}`` and answers the wallet.
* ``DELETE`` archives a ``SANDBOX`` wallet (a repeat answers it as it is);
  other kinds are ``400 INVALID_WALLET_KIND`` (the API wallet is reset with
  ``reset-api-balance``, partner wallets belong to their tenant).
* ``POST .../reset`` archives a ``SANDBOX`` wallet and answers its next
  generation (``200``): same kind and label, ``generation`` + 1,
  ``parent_wallet_id`` = the old id, at the plan's baseline. Other kinds are
  ``400 INVALID_WALLET_KIND``; an archived generation is ``400 WALLET_ARCHIVED``.
* A wallet that is not the caller's is ``404 WALLET_NOT_FOUND``; a
  non-integer id ``422``.
"""

from __future__ import annotations

from aiohttp import web

from ._account_views import wallet_body
from ._core import Core
from ._errors import bad_request, not_found, upgrade_required, validation
from ._json import json_response
from ._parse import json_object, query_int, string_field
from ._state import TIERS, WALLET_KINDS, User, Wallet
from ._trader_routes import caller

__all__ = ["SANDBOX_CAPS", "routes"]

routes = web.RouteTableDef()
#: Active SANDBOX wallets a plan may hold (inferred; the docs name plan caps, not numbers).
SANDBOX_CAPS = {"free": 0, "pro": 3, "pro_plus": 10, "enterprise": 25}


def _wallet(core: Core, user: User, request: web.Request) -> Wallet:
    try:
        wallet_id = int(request.match_info["wallet_id"])
    except ValueError:
        raise validation("wallet_id must be an integer") from None
    wallet = core.state.wallets.get(wallet_id)
    if wallet is None or wallet.user_id != user.user_id:
        raise not_found("WALLET_NOT_FOUND", "wallet not found")
    return wallet


def _sandbox_only(wallet: Wallet, what: str) -> None:
    if wallet.kind != "SANDBOX":
        raise bad_request(
            "INVALID_WALLET_KIND", f"only SANDBOX wallets can be {what}; this one is {wallet.kind}"
        )


@routes.get("/v1/me/wallets")
async def list_wallets(request: web.Request) -> web.Response:
    """The caller's wallets, oldest first."""
    core, _, user = caller(request)
    limit = query_int(request, "limit", default=50, low=1, high=200)
    offset = query_int(request, "offset", default=0, low=0)
    ids = user.wallet_ids[offset : offset + limit]
    return json_response([wallet_body(core.state, core.state.wallets[i]) for i in ids])


@routes.post("/v1/me/wallets")
async def create_wallet(request: web.Request) -> web.Response:
    """Open a SANDBOX wallet at the plan's baseline."""
    core, _, user = caller(request)
    data = await json_object(request)
    label = string_field(data, "label", required=False)
    kind = data.get("kind", "SANDBOX")
    if not isinstance(kind, str) or kind.strip().upper() not in WALLET_KINDS:
        raise validation(f"kind must be one of {', '.join(WALLET_KINDS)}")
    kind = kind.strip().upper()
    if kind != "SANDBOX":
        raise bad_request("INVALID_WALLET_KIND", f"{kind} wallets cannot be created here")
    cap = SANDBOX_CAPS[user.tier]
    wallets = core.state.wallets
    held = sum(
        1 for i in user.wallet_ids if wallets[i].kind == "SANDBOX" and wallets[i].status == "ACTIVE"
    )
    if held >= cap:
        raise upgrade_required(
            "wallets.sandbox_baseline",
            f"your plan holds at most {cap} active SANDBOX wallets; upgrade or archive one",
        )
    wallet = core.state.add_wallet(user, "SANDBOX", TIERS[user.tier].baseline, label=label)
    return json_response(wallet_body(core.state, wallet), status=201)


@routes.get("/v1/me/wallets/{wallet_id}")
async def get_wallet(request: web.Request) -> web.Response:
    """One wallet of the caller."""
    core, _, user = caller(request)
    return json_response(wallet_body(core.state, _wallet(core, user, request)))


@routes.patch("/v1/me/wallets/{wallet_id}")
async def update_wallet(request: web.Request) -> web.Response:
    """Rename a wallet."""
    core, _, user = caller(request)
    wallet = _wallet(core, user, request)
    data = await json_object(request)
    if "label" not in data:
        raise validation("label is required (a string, or null to clear it)")
    wallet.label = string_field(data, "label", required=False)
    return json_response(wallet_body(core.state, wallet))


def _archive(core: Core, wallet: Wallet) -> None:
    wallet.status = "ARCHIVED"
    wallet.archived_us = wallet.updated_us = core.clock.stamp()


@routes.delete("/v1/me/wallets/{wallet_id}")
async def archive_wallet(request: web.Request) -> web.Response:
    """Archive a SANDBOX wallet."""
    core, _, user = caller(request)
    wallet = _wallet(core, user, request)
    _sandbox_only(wallet, "archived")
    if wallet.status != "ARCHIVED":
        _archive(core, wallet)
    return json_response(wallet_body(core.state, wallet))


@routes.post("/v1/me/wallets/{wallet_id}/reset")
async def reset_wallet(request: web.Request) -> web.Response:
    """Archive a SANDBOX wallet and open its next generation."""
    core, _, user = caller(request)
    wallet = _wallet(core, user, request)
    _sandbox_only(wallet, "reset")
    if wallet.status == "ARCHIVED":
        raise bad_request("WALLET_ARCHIVED", "this generation is archived; reset the newest one")
    _archive(core, wallet)
    new = core.state.add_wallet(
        user,
        wallet.kind,
        TIERS[user.tier].baseline,
        label=wallet.label,
        generation=wallet.generation + 1,
        parent_wallet_id=wallet.wallet_id,
    )
    return json_response(wallet_body(core.state, new))
