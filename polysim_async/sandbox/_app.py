"""The ``aiohttp.web.Application`` factory and its one middleware.

Per request, in order: an ``X-Request-Id`` is assigned (and set on every answer);
control routes (``/_sandbox/*``) skip everything else; due hourly events run
(clock catch-up); injected faults apply; the realm is authenticated (partner
keys on ``/v1/partner*``, trader keys on the rest of ``/v1/*``, the WebSocket
path uses its token, ``/v1/health`` is public); rate limits are counted; the
partner scope is checked; the handler runs. Every :class:`ApiError`, aiohttp
HTTP exception (unknown route ``404 NOT_FOUND``, wrong method ``405
METHOD_NOT_ALLOWED``, oversized body ``413 PAYLOAD_TOO_LARGE``) and - as a last
resort - any unexpected exception (``500 INTERNAL_ERROR``, no traceback in the
body) becomes the standard envelope. ``asyncio.CancelledError`` is never caught.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from . import _control, _order_routes, _partner_routes, _trader_routes
from ._auth import partner_key, require_scope, trader_key
from ._core import CONTEXT, CORE, Core, RequestContext
from ._errors import ApiError, error_response
from ._ratelimit import Limited
from ._state import TIERS
from ._ws import executions_handler

__all__ = ["make_app"]

log = logging.getLogger("polysim_async.sandbox")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}
_MALFORMED = b'{"data": [{"trade_id": 1, "order_id": '


async def health(request: web.Request) -> web.Response:
    """``GET /v1/health``: public liveness."""
    core = request.app[CORE]
    ts = core.clock.now().isoformat()
    return web.json_response({"status": "ok", "timestamp": ts, "version": "sandbox"})


def _rate_limited(exc: Limited) -> ApiError:
    return ApiError(
        429,
        "RATE_LIMIT_EXCEEDED",
        f"Rate limit exceeded. Retry after {exc.retry_after}s.",
        headers={**exc.headers, "Retry-After": str(exc.retry_after)},
    )


async def _guard(
    core: Core, ctx: RequestContext, request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Authenticate, rate-limit and authorise one API request, then run it."""
    path = request.path
    info = request.match_info
    unmatched = info.http_exception is not None
    limits = core.settings.rate_limits
    if path == "/v1/partner" or path.startswith("/v1/partner/"):
        key, tenant = partner_key(core.state, request)
        headers: dict[str, str] = {}
        if limits:
            try:
                headers = core.partner_limiter.hit(tenant.tenant_id, key.key, core.clock.seconds())
            except Limited as exc:
                raise _rate_limited(exc) from None
        ctx.rate_headers = headers
        if unmatched:
            _partner_routes.raise_unknown(request)
        scope = _partner_routes.SCOPES.get((request.method, info.route.resource.canonical))  # type: ignore[union-attr]
        if scope is not None:
            require_scope(key, scope)
        ctx.tenant = tenant
        return await handler(request)
    if unmatched or path == "/v1/health" or path.startswith("/v1/ws/"):
        return await handler(request)
    tkey = trader_key(core.state, request)
    if limits:
        tier = TIERS[tkey.tier]
        try:
            ctx.rate_headers = core.trader_limiter.hit(
                tkey.key, tier.name, tier.per_second, tier.per_minute, core.clock.seconds()
            )
        except Limited as exc:
            raise _rate_limited(exc) from None
    ctx.trader_key = tkey
    return await handler(request)


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The single middleware; see the module docstring."""
    core = request.app[CORE]
    rid = f"req_{next(core.request_ids):012x}"
    verbose = request.headers.get("X-Polysim-Verbose", "").lower() == "true"
    response: web.StreamResponse
    ctx = RequestContext()
    token = CONTEXT.set(ctx)
    try:
        if request.path.startswith("/_sandbox/"):
            response = await _control.dispatch(core, request, handler)
        else:
            core.exchange.catch_up()
            delay, rule = core.faults.take(request.method, request.path)
            if delay > 0:
                await asyncio.sleep(delay)
            if rule is not None and rule.action == "error":
                headers = {}
                if rule.retry_after is not None:
                    headers["Retry-After"] = str(rule.retry_after)
                raise ApiError(rule.status, rule.code, rule.message, headers=headers)
            if rule is not None and rule.action == "malformed":
                response = web.Response(body=_MALFORMED, content_type="application/json")
            elif rule is not None and rule.action == "abort_before":
                _abort(request)
                response = web.Response(status=204)
            else:
                response = await _guard(core, ctx, request, handler)
                if rule is not None and rule.action == "abort_after":
                    _abort(request)
    except ApiError as exc:
        headers = dict(ctx.rate_headers)
        headers.update(exc.headers)
        response = error_response(
            exc.status,
            exc.code,
            exc.message,
            headers=headers,
            verbose=verbose,
            request_id=rid,
            details=exc.details,
        )
    except web.HTTPException as exc:
        code = _HTTP_CODES.get(exc.status, f"HTTP_{exc.status}")
        response = error_response(exc.status, code, exc.reason, verbose=verbose, request_id=rid)
    except Exception:
        log.exception("sandbox handler failed (%s %s)", request.method, request.path)
        response = error_response(
            500, "INTERNAL_ERROR", "internal error", verbose=verbose, request_id=rid
        )
    else:
        rate = ctx.rate_headers
        if rate and not response.prepared:
            response.headers.update(rate)
    finally:
        CONTEXT.reset(token)
    if not response.prepared:
        response.headers["X-Request-Id"] = rid
    return response


async def _on_shutdown(app: web.Application) -> None:
    await app[CORE].hub.close_all()


def make_app(core: Core) -> web.Application:
    """Build the sandbox application around ``core``."""
    app = web.Application(middlewares=[middleware], client_max_size=1 << 20)
    app[CORE] = core
    app.router.add_get("/v1/health", health)
    app.router.add_get("/v1/ws/executions", executions_handler)
    app.router.add_routes(_partner_routes.routes)
    app.router.add_routes(_trader_routes.routes)
    app.router.add_routes(_order_routes.routes)
    app.router.add_routes(_control.routes)
    app.on_shutdown.append(_on_shutdown)
    return app
