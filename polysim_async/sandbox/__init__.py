"""A local, in-memory PolySimulator server for tests, examples and benchmarks.

No key and no network needed: the sandbox speaks the partner API (``/v1/partner/*``),
the trader API (``/v1/me``, ``/v1/keys*``, ``/v1/me/wallets*``, ``/v1/account/*``,
``/v1/orders*``, ``/v1/cancel-all``, ``/v1/cancel-market-orders``,
``/v1/heartbeats``, ``/v1/markets*``, ``/v1/book``, ``/v1/prices/batch``,
``/v1/export/*.csv``) and both WebSockets (executions and prices), with the
documented errors, auth realms and rate limits, over a real loopback socket. State lives in memory;
``seed`` makes ids, keys, markets and the price walk reproducible. Importing
``polysim_async`` does not import this package.

Quick start::

    from polysim_async.sandbox import Sandbox

    async with Sandbox(seed=7) as sb:
        sb.url          # "http://127.0.0.1:<port>"
        sb.tenant_key   # partner key of the default tenant (all scopes)
        sb.api_key      # ps_live_ key of the default trader (tier "pro")
        sb.market_id    # the first of the seeded markets (sb.market_ids)

The control API: every operation is a :class:`Sandbox` method and a route under
``/_sandbox/`` (``GET /_sandbox/`` lists them with their parameters; the README
has the table). Answers that mirror an API answer (``place_order``,
``account_state``) are the JSON bodies the API would send, as dicts. Arguments
are checked: ``ValueError`` or ``KeyError`` in Python, ``422 CONTROL_INVALID``
naming the field or ``404 CONTROL_NOT_FOUND`` over HTTP.

Identities
    ``create_tenant``, ``create_tenant_key``, ``set_tenant_enabled``, ``revoke_key``,
    ``create_trader``, ``create_trader_key``, ``set_tier``, ``create_wallet``.
Markets and time
    ``create_market``, ``markets()``, ``set_price`` (resting orders that cross fill),
    ``set_market_closed``, ``resolve_market`` (settles every position),
    ``now()``, ``advance(seconds, *, minutes, hours, days)``.
Dead-man's switch
    ``heartbeats()``, ``lapse_heartbeats(*, user_id)``. Registrations lapse on the
    simulated clock (``advance`` past an expiry cancels the orders) and, when the
    clock flows with real time, as real time passes: a timed-event loop sleeps
    until the next lapse (or hourly step) and runs it without waiting for a request.
Trading as the trader
    ``await place_order(*, account_id | wallet_id | user_id, idempotency_key, **wire)``
    (the rules of ``POST /v1/orders``), ``await place_resting_orders(count, ...)``,
    ``generate_fills(count, ...)`` (a million fills in a few seconds, see
    :mod:`._bulk`), ``account_state(account_id)``.
Outbox
    ``outbox()`` (login-link emails), ``clear_outbox()``.
Faults
    ``add_fault`` and its shorthands ``fail_next``, ``add_latency``,
    ``send_malformed``, ``abort_next(after=)``; ``fault_rules()``;
    ``ws_drop_after``, ``ws_chaos``, ``ws_send_malformed``, ``set_fill_frame_shape``;
    ``expire_ws_tokens``; ``clear_faults``.
Knobs
    ``configure(*, bulk_cancel_limit, rate_limits, push_taker_fills, order_delay,
    random_walk, partner_limits, export_row_cap)``.

Rate limits count real request arrival (monotonic time), never the simulated
clock; ``Sandbox(rate_clock=...)`` drives them from a fake time source in tests.

How the modules fit (each imports only those above it; nothing from the client):
``_fields`` (the field tables), ``_json``, ``_clock``, ``_errors``, ``_parse``,
``_feed``, ``_faults``, ``_ratelimit``, ``_heartbeats`` (the switch's registry);
``_state``, ``_auth``; ``_context`` (knobs, request context); ``_exchange``
(matching, P&L, timed events), ``_ws`` (the channels' machinery, executions, tokens),
``_prices`` (the price channel); ``_views``, ``_market_views``, ``_account_views``
(bodies from state); ``_resolution`` (settling a market); ``_core`` (composition,
the timed-event loop); ``_trading`` (placement, batches, idempotency, close/reset),
``_bulk``; the route modules; ``_ops`` (the control operations); ``_control`` (their
HTTP routes); ``_app``; ``_server``.

Standalone: ``run(host, port, seed)`` blocks and prints the URL and keys;
``await serve(host, port, seed)`` does the same until cancelled.
"""

from ._context import Settings
from ._faults import FaultRule
from ._ops import Controller, TenantInfo, TraderInfo
from ._server import Sandbox, run, serve

__all__ = [
    "Controller",
    "FaultRule",
    "Sandbox",
    "Settings",
    "TenantInfo",
    "TraderInfo",
    "run",
    "serve",
]
