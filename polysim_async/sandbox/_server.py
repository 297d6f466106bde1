"""The :class:`Sandbox` (in-process server with its control API) and the standalone runner."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from types import TracebackType

from aiohttp import web

from ._app import PARSER_LIMIT, JsonErrorRunner, make_app
from ._clock import DEFAULT_START
from ._core import Core
from ._ops import Controller
from ._ratelimit import TimeSource

__all__ = ["Sandbox", "run", "serve"]


class Sandbox(Controller):
    """A faithful, stateful, in-memory PolySimulator server on a loopback port.

    Use ``async with Sandbox() as sb:``; the server listens between enter and exit,
    and exit closes every socket and task it started. It comes with one tenant
    (``tenant_key``), one trader (``api_key``, tier ``pro``) and ``markets``
    seeded markets; the control methods are those of :class:`Controller`.

    Args:
        host: interface to bind (loopback by default).
        port: TCP port; ``0`` picks a free one (read it back from :attr:`url`).
        seed: makes ids, keys, market ids and the random walk reproducible.
        start: simulated instant at start.
        frozen_clock: simulated time moves only through :meth:`advance` (exact
            timestamps). Rate limits are unaffected: they always count real time.
        random_walk: prices take one seeded tick step per simulated hour.
        rate_limits: enforce the documented partner and trader rate limits, on real
            (monotonic) request-arrival time whatever the simulated clock does.
        rate_clock: the time source of the rate-limit windows: any object with
            ``now()`` (monotonic seconds) and ``wall()`` (epoch seconds), such as
            the client's clock; real time by default. Tests inject a fake one to
            move the windows without sleeping.
        bulk_cancel_limit: open orders one close/reset call may cancel.
        control_token: require ``X-Sandbox-Token`` on ``/_sandbox`` routes.
        tier: the default trader's tier (``free``, ``pro``, ``pro_plus``, ``enterprise``).
        markets: how many markets to list at start (binary Yes/No, Yes mid 0.50).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        start: datetime = DEFAULT_START,
        frozen_clock: bool = False,
        random_walk: bool = True,
        rate_limits: bool = True,
        bulk_cancel_limit: int = 100,
        control_token: str | None = None,
        tier: str = "pro",
        markets: int = 3,
        rate_clock: TimeSource | None = None,
    ) -> None:
        self._host = host
        self._port = port
        core = self._core = Core(
            seed=seed,
            start=start,
            frozen_clock=frozen_clock,
            random_walk=random_walk,
            rate_clock=rate_clock,
        )
        core.settings.rate_limits = rate_limits
        core.settings.bulk_cancel_limit = bulk_cancel_limit
        core.settings.control_token = control_token
        tenant = self.create_tenant("Sandbox Partner")
        core.default_tenant_id = tenant.tenant_id
        core.default_tenant_key = tenant.key
        trader = self.create_trader("trader@sandbox.local", tier=tier)
        core.default_user_id = trader.user_id
        core.default_api_key = trader.api_key
        for i in range(markets):
            self.create_market(question=f"Sandbox market #{i + 1}?")
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash).

        Raises:
            RuntimeError: the sandbox is not running.
        """
        if self._url is None:
            raise RuntimeError("the sandbox is not running; use `async with Sandbox()`")
        return self._url

    @property
    def ws_url(self) -> str:
        """The ``ws://`` base for the executions socket."""
        return "ws" + self.url[4:]

    @property
    def app(self) -> web.Application:
        """A fresh ``aiohttp.web.Application`` over this sandbox's state (for custom serving).

        Served by a plain ``web.AppRunner``, requests too malformed to reach the
        application get aiohttp's plain-text 400; :meth:`start` serves through
        ``JsonErrorRunner`` (in ``_app``), which answers them with the JSON envelope.
        """
        return make_app(self._core)

    async def start(self) -> None:
        """Bind and start serving.

        Raises:
            RuntimeError: already started.
            OSError: the port could not be bound.
        """
        if self._runner is not None:
            raise RuntimeError("the sandbox is already running")
        runner = JsonErrorRunner(
            make_app(self._core),
            access_log=None,
            handle_signals=False,
            max_line_size=PARSER_LIMIT,
            max_field_size=PARSER_LIMIT,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port, reuse_address=True)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        host, port = server.sockets[0].getsockname()[:2]
        self._url = f"http://{host}:{port}"

    async def aclose(self) -> None:
        """Stop serving: close every WebSocket (1001) and connection. Idempotent."""
        runner, self._runner = self._runner, None
        self._url = None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    seed: int = 0,
    *,
    announce: Callable[[str], None] = print,
    **options: object,
) -> None:
    """Run a sandbox until cancelled, announcing its URL and keys first.

    Cancellation: cancelling the task shuts the server down cleanly and re-raises.
    """
    sandbox = Sandbox(host=host, port=port, seed=seed, **options)  # type: ignore[arg-type]
    async with sandbox:
        announce(f"PolySimulator sandbox listening on {sandbox.url}")
        announce(f"tenant key: {sandbox.tenant_key}")
        announce(f"trader key: {sandbox.api_key}")
        announce(f"markets: {', '.join(sandbox.market_ids)}")
        announce(f"control API: {sandbox.url}/_sandbox/ (lists every route)")
        await asyncio.Event().wait()


def run(
    host: str = "127.0.0.1",
    port: int = 8000,
    seed: int = 0,
    *,
    announce: Callable[[str], None] = print,
    **options: object,
) -> None:
    """Blocking entry point for a CLI: serve until Ctrl-C.

    ``options`` are :class:`Sandbox` keyword arguments (``rate_limits=False``, ...).
    """
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(host, port, seed, announce=announce, **options))
