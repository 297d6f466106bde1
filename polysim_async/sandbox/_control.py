"""The control API over HTTP: ``/_sandbox/*`` (not part of PolySimulator's API).

No authentication unless the sandbox was given a ``control_token``; then every
control request needs ``X-Sandbox-Token: <token>`` (else ``401
CONTROL_TOKEN_REQUIRED``). Control requests skip rate limits, faults and clock
catch-up. Bodies are JSON objects; bad arguments are ``422 CONTROL_INVALID``, unknown
ids ``404 CONTROL_NOT_FOUND``; refused orders carry the trading error they would
get on ``POST /v1/orders``. Every route mirrors a :class:`Sandbox` method:

==========================================  ======================================
``GET  /_sandbox/state``                    keys, ids, markets, clock
``GET  /_sandbox/clock``                    ``now()``
``POST /_sandbox/clock/advance``            ``advance(seconds, minutes, hours, days)``
``GET  /_sandbox/markets``                  markets with mids, bids and asks
``POST /_sandbox/markets``                  ``create_market(...)``
``POST /_sandbox/markets/{id}/price``       ``set_price(id, price, outcome=)``
``POST /_sandbox/orders``                   ``place_order(account_id=|wallet_id=|user_id=, ...)``
``POST /_sandbox/orders/resting``           ``place_resting_orders(count, ...)``
``POST /_sandbox/fills``                    ``generate_fills(count, ...)``
``GET  /_sandbox/outbox``                   ``outbox()`` (``DELETE`` clears)
``POST /_sandbox/tenants``                  ``create_tenant(name, scopes=, ...)``
``POST /_sandbox/tenants/{id}/keys``        ``create_tenant_key(id, scopes=)``
``POST /_sandbox/traders``                  ``create_trader(email, tier=, permissions=)``
``POST /_sandbox/users/{id}/keys``          ``create_trader_key(id, tier=, permissions=)``
``POST /_sandbox/keys/revoke``              ``revoke_key(key)``
``GET|POST|DELETE /_sandbox/faults``        list, ``add_fault(...)``, ``clear_faults()``
``POST /_sandbox/ws/faults``                ``ws_drop_after`` / ``ws_chaos`` /
                                            ``ws_send_malformed`` / ``set_fill_frame_shape``
``POST /_sandbox/ws-tokens/expire``         ``expire_ws_tokens()``
``POST /_sandbox/config``                   ``configure(...)``
==========================================  ======================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ._clock import format_iso
from ._core import CORE, Core
from ._errors import ApiError
from ._ops import Controller
from ._parse import json_object
from ._views import json_response

__all__ = ["dispatch", "routes"]

routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Ctl(Controller):
    def __init__(self, core: Core) -> None:
        self._core = core


def _ctl(request: web.Request) -> _Ctl:
    return _Ctl(request.app[CORE])


async def dispatch(core: Core, request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run a control route, translating Python errors into envelopes.

    Raises:
        ApiError: 401/404/422 as described in the module docstring.
    """
    token = core.settings.control_token
    if token is not None and request.headers.get("X-Sandbox-Token") != token:
        raise ApiError(401, "CONTROL_TOKEN_REQUIRED", "send X-Sandbox-Token")
    try:
        return await handler(request)
    except KeyError as exc:
        raise ApiError(404, "CONTROL_NOT_FOUND", f"not found: {exc}") from None
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise ApiError(422, "CONTROL_INVALID", str(exc)) from None


async def _body(request: web.Request) -> dict[str, Any]:
    return await json_object(request, allow_empty=True)


@routes.get("/_sandbox/state")
async def state(request: web.Request) -> web.Response:
    """Default keys and ids, markets and the clock."""
    core = request.app[CORE]
    return json_response(
        {
            "tenant_key": core.default_tenant_key,
            "tenant_id": core.default_tenant_id,
            "api_key": core.default_api_key,
            "user_id": core.default_user_id,
            "market_ids": list(core.state.markets),
            "now": format_iso(core.clock.now_us()),
        }
    )


@routes.get("/_sandbox/clock")
async def clock(request: web.Request) -> web.Response:
    """The simulated now."""
    return json_response({"now": _ctl(request).now().isoformat(timespec="microseconds")})


@routes.post("/_sandbox/clock/advance")
async def advance(request: web.Request) -> web.Response:
    """Advance the clock."""
    body = await _body(request)
    now = _ctl(request).advance(
        float(body.get("seconds", 0)),
        minutes=float(body.get("minutes", 0)),
        hours=float(body.get("hours", 0)),
        days=float(body.get("days", 0)),
    )
    return json_response({"now": now.isoformat(timespec="microseconds")})


@routes.get("/_sandbox/markets")
async def markets(request: web.Request) -> web.Response:
    """Every market with its book."""
    out = []
    for m in request.app[CORE].state.markets.values():
        out.append(
            {
                "market_id": m.market_id,
                "question": m.question,
                "outcomes": m.outcomes,
                "closed": m.closed,
                "mids": {o: str(p) for o, p in m.mids.items()},
                "bids": {o: str(m.bid(o)) for o in m.outcomes},
                "asks": {o: str(m.ask(o)) for o in m.outcomes},
            }
        )
    return json_response(out)


@routes.post("/_sandbox/markets")
async def create_market(request: web.Request) -> web.Response:
    """List a market."""
    body = await _body(request)
    if "outcomes" in body:
        body["outcomes"] = tuple(body["outcomes"])
    return json_response({"market_id": _ctl(request).create_market(**body)}, status=201)


@routes.post("/_sandbox/markets/{market_id}/price")
async def set_price(request: web.Request) -> web.Response:
    """Move a price."""
    body = await _body(request)
    filled = _ctl(request).set_price(
        request.match_info["market_id"], str(body["price"]), outcome=body.get("outcome")
    )
    return json_response({"filled": filled})


@routes.post("/_sandbox/orders")
async def place_order(request: web.Request) -> web.Response:
    """Place an order as a wallet's trader."""
    body = await _body(request)
    return json_response(await _ctl(request).place_order(**body))


@routes.post("/_sandbox/orders/resting")
async def place_resting(request: web.Request) -> web.Response:
    """Rest many limit orders."""
    body = await _body(request)
    count = int(body.pop("count"))
    return json_response({"order_ids": await _ctl(request).place_resting_orders(count, **body)})


@routes.post("/_sandbox/fills")
async def fills(request: web.Request) -> web.Response:
    """Bulk-generate fills."""
    body = await _body(request)
    count = int(body.pop("count"))
    first = _ctl(request).generate_fills(count, **body)
    return json_response({"first_order_id": first, "count": count})


@routes.get("/_sandbox/outbox")
async def outbox(request: web.Request) -> web.Response:
    """Recorded login-link emails."""
    return json_response(_ctl(request).outbox())


@routes.delete("/_sandbox/outbox")
async def clear_outbox(request: web.Request) -> web.Response:
    """Forget recorded emails."""
    _ctl(request).clear_outbox()
    return json_response({"ok": True})


@routes.post("/_sandbox/tenants")
async def tenants(request: web.Request) -> web.Response:
    """Create a tenant."""
    body = await _body(request)
    for name in ("scopes", "redirect_domains"):
        if body.get(name) is not None:
            body[name] = (set if name == "scopes" else tuple)(body[name])
    info = _ctl(request).create_tenant(**body)
    return json_response(dataclasses.asdict(info), status=201)


@routes.post("/_sandbox/tenants/{tenant_id}/keys")
async def tenant_keys(request: web.Request) -> web.Response:
    """Issue a tenant key."""
    body = await _body(request)
    scopes = set(body["scopes"]) if body.get("scopes") is not None else None
    key = _ctl(request).create_tenant_key(int(request.match_info["tenant_id"]), scopes=scopes)
    return json_response({"key": key}, status=201)


@routes.post("/_sandbox/traders")
async def traders(request: web.Request) -> web.Response:
    """Create a trader with a key."""
    body = await _body(request)
    if body.get("permissions") is not None:
        body["permissions"] = set(body["permissions"])
    return json_response(dataclasses.asdict(_ctl(request).create_trader(**body)), status=201)


@routes.post("/_sandbox/users/{user_id}/keys")
async def user_keys(request: web.Request) -> web.Response:
    """Issue a trader key for a user."""
    body = await _body(request)
    if body.get("permissions") is not None:
        body["permissions"] = set(body["permissions"])
    info = _ctl(request).create_trader_key(int(request.match_info["user_id"]), **body)
    return json_response(dataclasses.asdict(info), status=201)


@routes.post("/_sandbox/keys/revoke")
async def revoke(request: web.Request) -> web.Response:
    """Deactivate a key."""
    body = await _body(request)
    _ctl(request).revoke_key(str(body["key"]))
    return json_response({"ok": True})


@routes.get("/_sandbox/faults")
async def list_faults(request: web.Request) -> web.Response:
    """Active HTTP fault rules."""
    rules = request.app[CORE].faults.rules
    return json_response([dataclasses.asdict(r) for r in rules])


@routes.post("/_sandbox/faults")
async def add_fault(request: web.Request) -> web.Response:
    """Install an HTTP fault rule."""
    body = await _body(request)
    path = str(body.pop("path"))
    _ctl(request).add_fault(path, **body)
    return json_response({"ok": True}, status=201)


@routes.delete("/_sandbox/faults")
async def clear_faults(request: web.Request) -> web.Response:
    """Remove every fault."""
    _ctl(request).clear_faults()
    return json_response({"ok": True})


@routes.post("/_sandbox/ws/faults")
async def ws_faults(request: web.Request) -> web.Response:
    """Configure WebSocket faults."""
    body = await _body(request)
    ctl = _ctl(request)
    if "drop_after" in body:
        ctl.ws_drop_after(
            int(body["drop_after"]),
            mode=body.get("mode", "close"),
            code=int(body.get("code", 1011)),
        )
    if "chaos" in body:
        ctl.ws_chaos(float(body["chaos"]), seed=int(body.get("seed", 0)))
    if "malformed" in body:
        ctl.ws_send_malformed(int(body["malformed"]))
    if "shape" in body:
        ctl.set_fill_frame_shape(body["shape"])
    return json_response({"ok": True})


@routes.post("/_sandbox/ws-tokens/expire")
async def expire_tokens(request: web.Request) -> web.Response:
    """Expire every WebSocket token."""
    return json_response({"expired": _ctl(request).expire_ws_tokens()})


@routes.post("/_sandbox/config")
async def config(request: web.Request) -> web.Response:
    """Change knobs."""
    _ctl(request).configure(**(await _body(request)))
    return json_response({"ok": True})
