"""The ``aiohttp.web.Application`` factory, its one middleware, and the HTTP-level guards.

Per request, in order: an ``X-Request-Id`` is assigned (and set on every answer,
with a ``Date`` header read from the simulated clock, as a server's is from its own);
a URL over 8,190 bytes is ``414 URI_TOO_LONG`` and a header field over 8,190
bytes ``431 REQUEST_HEADER_FIELDS_TOO_LARGE``; control routes (``/_sandbox/*``)
skip everything else; due hourly events run (clock catch-up); injected faults
apply; the realm is authenticated (partner keys on ``/v1/partner*``, trader keys
on the rest of ``/v1/*``, the WebSocket path uses its token, ``/v1/health`` is
public); rate limits are counted (on real time); the partner scope is checked;
the handler runs.

Every :class:`ApiError`, aiohttp HTTP exception (unknown route ``404 NOT_FOUND``,
wrong method ``405 METHOD_NOT_ALLOWED``, oversized body ``413
PAYLOAD_TOO_LARGE``), broken body framing (``400 HTTP_400``) and - as a last
resort - any unexpected exception (``500 INTERNAL_ERROR``, no traceback in the
body, logged on the ``polysim_async.sandbox`` logger) becomes the standard
envelope. Requests too malformed to reach the application (a request line or
header beyond :data:`PARSER_LIMIT`, garbage instead of HTTP) get the same
envelope from :class:`JsonErrorServer`, never aiohttp's plain-text page.
``asyncio.CancelledError`` is never caught.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from wsgiref.handlers import format_date_time

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from . import (
    _control,
    _export_routes,
    _heartbeat_routes,
    _key_routes,
    _market_routes,
    _order_routes,
    _partner_routes,
    _trader_routes,
    _wallet_routes,
)
from ._auth import partner_key, require_scope, trader_key
from ._context import CONTEXT, RequestContext
from ._core import CORE, Core
from ._errors import ApiError, error_response
from ._fields import HEALTH
from ._json import json_response
from ._ratelimit import Limited
from ._state import TIERS

__all__ = ["MAX_FIELD", "PARSER_LIMIT", "JsonErrorRunner", "JsonErrorServer", "make_app"]

log = logging.getLogger("polysim_async.sandbox")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_HTTP_CODES = {
    400: "HTTP_400",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    414: "URI_TOO_LONG",
    431: "REQUEST_HEADER_FIELDS_TOO_LARGE",
}
_MALFORMED = b'{"data": [{"trade_id": 1, "order_id": '
#: The longest URL and header field served, as in most HTTP servers (aiohttp's default).
MAX_FIELD = 8190
#: What the HTTP parser reads before giving up, so that lines between
#: :data:`MAX_FIELD` and this reach the middleware and get a precise status.
PARSER_LIMIT = 1 << 16


async def health(request: web.Request) -> web.Response:
    """``GET /v1/health``: public liveness."""
    core = request.app[CORE]
    ts = core.clock.now().isoformat()
    return json_response(HEALTH.make(status="ok", timestamp=ts, version="sandbox"))


def _rate_limited(exc: Limited) -> ApiError:
    return ApiError(
        429,
        "RATE_LIMIT_EXCEEDED",
        f"Rate limit exceeded. Retry after {exc.retry_after}s.",
        headers={**exc.headers, "Retry-After": str(exc.retry_after)},
    )


def _check_sizes(request: web.Request) -> None:
    """Refuse a URL or a header field longer than :data:`MAX_FIELD` bytes.

    Raises:
        ApiError: 414 URI_TOO_LONG or 431 REQUEST_HEADER_FIELDS_TOO_LARGE.
    """
    if len(request.raw_path) > MAX_FIELD:
        raise ApiError(414, "URI_TOO_LONG", f"the URL is longer than {MAX_FIELD} bytes")
    for name, value in request.raw_headers:
        if len(name) + len(value) > MAX_FIELD:
            raise ApiError(
                431,
                "REQUEST_HEADER_FIELDS_TOO_LARGE",
                f"a header field is longer than {MAX_FIELD} bytes",
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
                headers = core.partner_limiter.hit(tenant.tenant_id, key.key, core.arrival())
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
                tkey.key, tier.name, tier.per_second, tier.per_minute, core.arrival()
            )
        except Limited as exc:
            raise _rate_limited(exc) from None
    ctx.trader_key = tkey
    return await handler(request)


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


async def _serve(
    core: Core, ctx: RequestContext, request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Everything after the size checks: control routes, or faults then the API."""
    if request.body_exists:
        # Read (and cache) the whole body first, so a broken body is one clear 400
        # whether or not the route reads it.
        await request.read()
    if request.path.startswith("/_sandbox/"):
        return await _control.dispatch(core, request, handler)
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
        return web.Response(body=_MALFORMED, content_type="application/json")
    if rule is not None and rule.action == "abort_before":
        _abort(request)
        return web.Response(status=204)
    response = await _guard(core, ctx, request, handler)
    if rule is not None and rule.action == "abort_after":
        _abort(request)
    return response


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The single middleware; see the module docstring."""
    core = request.app[CORE]
    rid = core.request_id()
    verbose = request.headers.get("X-Polysim-Verbose", "").lower() == "true"
    response: web.StreamResponse
    ctx = RequestContext()
    token = CONTEXT.set(ctx)
    try:
        _check_sizes(request)
        response = await _serve(core, ctx, request, handler)
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
            shape=exc.shape,
            extra=exc.extra,
        )
    except web.HTTPException as exc:
        code = _HTTP_CODES.get(exc.status, f"HTTP_{exc.status}")
        response = error_response(exc.status, code, exc.reason, verbose=verbose, request_id=rid)
    except (web.RequestPayloadError, HttpProcessingError) as exc:
        # The body's framing broke while a handler read it (chunking, encoding, length):
        # answer, and close the connection rather than read the rest of a broken body.
        cause = exc.__cause__ if isinstance(exc, web.RequestPayloadError) else exc
        text = cause.message if isinstance(cause, HttpProcessingError) else str(exc)
        response = error_response(
            400,
            "HTTP_400",
            " ".join(str(text).split()) or "malformed request body",
            verbose=verbose,
            request_id=rid,
        )
        response.force_close()
        request.content.feed_eof()  # nothing more to read: no lingering read of the rest
    except ConnectionError:
        response = web.Response(status=499)  # the client went away: nobody reads this
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
        # The server's clock is the simulated one: a client reading Date sees sandbox time.
        response.headers["Date"] = format_date_time(core.clock.now().timestamp())
    return response


async def _on_shutdown(app: web.Application) -> None:
    core = app[CORE]
    await core.hub.close_all()
    await core.prices.close_all()


async def _timed_events(app: web.Application) -> AsyncIterator[None]:
    """Run the core's timed events (heartbeat lapses, hourly walk) while the app serves."""
    task = asyncio.create_task(app[CORE].run_timed_events(), name="polysim-sandbox-events")
    yield
    task.cancel()
    await asyncio.wait([task])


def make_app(core: Core) -> web.Application:
    """Build the sandbox application around ``core``."""
    app = web.Application(middlewares=[middleware], client_max_size=1 << 20)
    app[CORE] = core
    app.router.add_get("/v1/health", health)
    app.router.add_get("/v1/ws/executions", core.hub.handle)
    app.router.add_get("/v1/ws/prices", core.prices.handle)
    for module in (
        _partner_routes,
        _trader_routes,
        _order_routes,
        _heartbeat_routes,
        _key_routes,
        _wallet_routes,
        _market_routes,
        _export_routes,
    ):
        app.router.add_routes(module.routes)
    _control.add_routes(app)
    app.on_shutdown.append(_on_shutdown)
    app.cleanup_ctx.append(_timed_events)
    return app


class _JsonErrorHandler(web.RequestHandler):
    """aiohttp's connection handler, answering what never reached the app with the envelope."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # part of an answer already went out
            raise ConnectionError("the answer was already started")
        if status >= 500:
            # Only a failure outside the middleware lands here: log it like one inside.
            log.error("sandbox connection handler failed", exc_info=exc)
            code, text = "INTERNAL_ERROR", "internal error"
        elif isinstance(exc, LineTooLong):
            code, text = _HTTP_CODES[400], "a request line or header field is too long"
        else:
            code = _HTTP_CODES.get(status, f"HTTP_{status}")
            text = " ".join((message or "malformed HTTP request").split())
        response = error_response(status, code, text, headers={"X-Request-Id": _parser_rid()})
        response.force_close()
        return response


_parser_ids = itertools.count(1)


def _parser_rid() -> str:
    return f"req_p{next(_parser_ids):011x}"


class JsonErrorServer(web.Server):
    """``web.Server`` whose connections answer malformed HTTP with the JSON envelope."""

    def __call__(self) -> web.RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorRunner(web.AppRunner):
    """``web.AppRunner`` serving through :class:`JsonErrorServer`."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Same handler and options as aiohttp's own server, only the connection class differs.
        return JsonErrorServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            **self._kwargs,
        )
