"""Low-level context every layer may read: the run-time knobs and the current request.

Nothing here imports the exchange, the sockets or the routes, so any module can
depend on it without a cycle.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

from ._state import Tenant, TraderKey

__all__ = ["CONTEXT", "RequestContext", "Settings"]


@dataclass(slots=True)
class Settings:
    """Knobs that tests and the control API flip at run time."""

    #: How many open orders one close/reset call may cancel before answering 409.
    bulk_cancel_limit: int = 100
    #: Enforce the documented rate limits (on real time, see :mod:`._ratelimit`).
    rate_limits: bool = True
    #: Push market-order (taker) fills to executions sockets, not only resting fills.
    push_taker_fills: bool = True
    #: Real seconds an order placement holds its idempotency key before executing.
    order_delay: float = 0.0
    #: When set, control routes require ``X-Sandbox-Token: <token>``.
    control_token: str | None = None
    #: Rows a CSV export holds before its ``# truncated`` line.
    export_row_cap: int = 10_000


@dataclass(slots=True)
class RequestContext:
    """What the middleware learnt about the current request (kept in :data:`CONTEXT`)."""

    tenant: Tenant | None = None
    trader_key: TraderKey | None = None
    rate_headers: dict[str, str] = field(default_factory=dict)


#: The current request's context; set by the middleware, read by handlers (same task).
CONTEXT: ContextVar[RequestContext] = ContextVar("polysim_sandbox_request")
