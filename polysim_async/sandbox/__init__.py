"""A local, in-memory PolySimulator server for tests, examples and benchmarks.

No key and no network needed: the sandbox speaks the partner API (``/v1/partner/*``),
the trader API (``/v1/account/*``, ``/v1/orders*``, ``/v1/cancel-all``,
``/v1/keys/ws-token``) and the execution WebSocket, with the documented errors,
auth realms and rate limits, over a real loopback socket. State lives in memory;
``seed`` makes ids, keys, markets and the price walk reproducible. Importing
``polysim_async`` does not import this package.

Quick start::

    from polysim_async.sandbox import Sandbox

    async with Sandbox(seed=7) as sb:
        sb.url          # "http://127.0.0.1:<port>"
        sb.tenant_key   # partner key of the default tenant (all scopes)
        sb.api_key      # ps_live_ key of the default trader (tier "pro")
        sb.market_id    # the first of the seeded markets (sb.market_ids)

The control API (Python methods; the same operations over HTTP under
``/_sandbox/*``, see :mod:`polysim_async.sandbox._control`):

Identities
    ``create_tenant(name, *, scopes=None, enabled=True, redirect_domains=None) -> TenantInfo``;
    ``create_tenant_key(tenant_id, *, scopes=None) -> str``;
    ``set_tenant_enabled(tenant_id, enabled)``; ``revoke_key(key)``;
    ``create_trader(email=None, *, tier="pro", permissions={"read","trade"}) -> TraderInfo``;
    ``create_trader_key(user_id, *, tier="pro", permissions=...) -> TraderInfo`` - e.g. for a
    user a partner registered, so the trader sees its partner accounts as wallets.
Markets and time
    ``create_market(*, market_id=None, question=..., outcomes=("Yes","No"), price="0.50",
    spread="0.02", tick="0.01", min_size="5", fee_rate="0") -> str``;
    ``set_price(market_id, price, *, outcome=None) -> int`` (resting orders that cross fill;
    returns how many); ``set_market_closed(market_id, closed=True)``; ``market_ids``;
    ``now()``; ``advance(seconds=0, *, minutes=0, hours=0, days=0)`` - runs every hourly
    event on the way (GTD expiry, random walk, matching, equity snapshots).
Trading as the trader
    ``await place_order(*, account_id=None, wallet_id=None, user_id=None,
    idempotency_key=None, **wire_fields) -> Order`` - the same rules as ``POST /v1/orders``
    on a partner account, any wallet, or a user's API wallet (default trader by default);
    ``await place_resting_orders(count, *, account_id=..., market_id=None, price="0.01",
    quantity="5") -> list[int]``;
    ``generate_fills(count, *, account_id=None, wallet_id=None, user_id=None,
    market_id=None, push=False) -> int`` - a million fills in a few seconds (balanced
    BUY/SELL round trips; see :mod:`polysim_async.sandbox._bulk`);
    ``account_state(account_id) -> AccountState``.
Outbox
    ``outbox() -> list[dict]`` (login-link emails: user_id, email, redirect_url, link,
    sent_at); ``clear_outbox()``.
Faults
    ``fail_next(path_glob, *, status=500, code="INTERNAL_ERROR", message=...,
    retry_after=None, times=1, method=None)``; ``add_latency(path_glob, delay, *,
    times=None, method=None)``; ``send_malformed(path_glob, *, times=1)``;
    ``abort_next(path_glob, *, after=False, times=1)`` - ``after=True`` acts first, then
    drops the connection (the answer is lost, the effect is not);
    ``add_fault(path_glob, action, ...)`` (the general form);
    ``ws_drop_after(frames, *, mode="close"|"abort", code=1011)``;
    ``ws_chaos(probability, *, seed=0)``; ``ws_send_malformed(count=1)``;
    ``set_fill_frame_shape("fill"|"execution_nested"|"execution_flat")``;
    ``expire_ws_tokens() -> int``; ``clear_faults()``.
Knobs
    ``configure(*, bulk_cancel_limit=None, rate_limits=None, push_taker_fills=None,
    order_delay=None, random_walk=None)``; ``order_delay`` holds an idempotency key
    "in flight" for that many real seconds.

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
