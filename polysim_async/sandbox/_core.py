"""The object every route and the control API share: state, exchange, sockets, knobs."""

from __future__ import annotations

import base64
import itertools
import json
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web

from ._clock import SandboxClock
from ._errors import ApiError
from ._exchange import Exchange
from ._faults import FaultSet, WsFaults
from ._ratelimit import FixedWindow, PartnerLimiter
from ._state import PartnerAccount, SandboxState, Tenant, TraderKey
from ._ws import Hub

__all__ = ["CONTEXT", "CORE", "Core", "RequestContext", "Settings", "WS_TOKEN_TTL"]

#: Lifetime of a WebSocket token, in seconds (API.md §2.3).
WS_TOKEN_TTL = 60


@dataclass(slots=True)
class Settings:
    """Knobs that tests and the control API flip at run time."""

    #: How many open orders one close/reset call may cancel before answering 409.
    bulk_cancel_limit: int = 100
    #: Enforce the documented rate limits.
    rate_limits: bool = True
    #: Push market-order (taker) fills to executions sockets, not only resting fills.
    push_taker_fills: bool = True
    #: Real seconds an order placement holds its idempotency key before executing.
    order_delay: float = 0.0
    #: When set, control routes require ``X-Sandbox-Token: <token>``.
    control_token: str | None = None


class Core:
    """Everything one running sandbox owns."""

    def __init__(
        self, *, seed: int, start: datetime, frozen_clock: bool, random_walk: bool
    ) -> None:
        self.clock = SandboxClock(start, frozen=frozen_clock)
        self.state = SandboxState(seed=seed, clock=self.clock)
        self.settings = Settings()
        self.exchange = Exchange(self.state, self.settings, random_walk=random_walk)
        self.faults = FaultSet()
        self.ws_faults = WsFaults()
        self.hub = Hub(self)
        self.exchange.on_fill = self.hub.push_fill
        self.partner_limiter = PartnerLimiter()
        self.trader_limiter = FixedWindow()
        #: The default trader (``Sandbox.api_key``) and tenant, set by the Sandbox.
        self.default_user_id = 0
        self.default_tenant_id = 0
        self.default_api_key = ""
        self.default_tenant_key = ""
        self.request_ids = itertools.count(1)
        #: ws token -> (user_id, tier, expires_us)
        self.ws_tokens: dict[str, tuple[int, str, int]] = {}

    def mint_ws_token(self, user_id: int, tier: str) -> str:
        """Issue a reusable JWT-shaped token valid for :data:`WS_TOKEN_TTL` simulated seconds."""
        expires = self.clock.now_us() + WS_TOKEN_TTL * 1_000_000

        def b64(data: dict[str, object]) -> str:
            raw = json.dumps(data, separators=(",", ":")).encode()
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")

        head = b64({"alg": "HS256", "typ": "JWT"})
        body = b64({"sub": str(user_id), "exp": expires // 1_000_000, "jti": self.state.hex(16)})
        sig = base64.urlsafe_b64encode(bytes.fromhex(self.state.hex(64))).decode().rstrip("=")
        token = f"{head}.{body}.{sig}"
        self.ws_tokens[token] = (user_id, tier, expires)
        return token

    def drain_orders(self, account: PartnerAccount) -> None:
        """Cancel up to the bulk-cancel limit of an account's open orders.

        Raises:
            ApiError: 409 ORDERS_NOT_CANCELLED while some remain after this batch.
        """
        left = self.exchange.cancel_batch(account.wallet, self.settings.bulk_cancel_limit)
        if left:
            raise ApiError(
                409,
                "ORDERS_NOT_CANCELLED",
                f"{left} open orders could not be cancelled in this call; retry to cancel the rest",
            )

    def close_account(self, account: PartnerAccount) -> bool:
        """Close (idempotently); return ``False`` when it was already closed.

        Raises:
            ApiError: 409 ORDERS_NOT_CANCELLED (see :meth:`drain_orders`).
        """
        if account.status == "closed":
            return False
        self.drain_orders(account)
        account.status = "closed"
        account.wallet.status = "ARCHIVED"
        account.wallet.updated_us = self.clock.stamp()
        return True

    def reset_account(self, account: PartnerAccount) -> None:
        """Reset to the starting balance, re-activating; history is kept.

        Raises:
            ApiError: 409 ORDERS_NOT_CANCELLED (see :meth:`drain_orders`).
        """
        self.drain_orders(account)
        self.exchange.reset_wallet(account.wallet)
        account.status = "active"


@dataclass(slots=True)
class RequestContext:
    """What the middleware learnt about the current request (kept in :data:`CONTEXT`)."""

    tenant: Tenant | None = None
    trader_key: TraderKey | None = None
    rate_headers: dict[str, str] = field(default_factory=dict)


#: The current request's context; set by the middleware, read by handlers (same task).
CONTEXT: ContextVar[RequestContext] = ContextVar("polysim_sandbox_request")

#: Where the app keeps its :class:`Core`.
CORE = web.AppKey("polysim_sandbox_core", Core)
