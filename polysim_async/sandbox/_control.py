"""The control API over HTTP: ``/_sandbox/*`` (not part of PolySimulator's API).

Every route mirrors a :class:`Sandbox` method (see :data:`ROUTES`, or ``GET
/_sandbox/``, which lists each route with its Python method and parameters).
No authentication unless the sandbox was given a ``control_token``; then every
control request needs ``X-Sandbox-Token: <token>`` (else ``401
CONTROL_TOKEN_REQUIRED``). Control requests skip rate limits, faults and clock
catch-up.

Bodies are JSON objects checked against a schema per route (an empty body is
``{}``): an unknown key, a wrong type, a missing required key or a value out of
range is ``422 CONTROL_INVALID`` with a message naming the field; an unknown id is
``404 CONTROL_NOT_FOUND``; a refused order carries the trading error it would get
on ``POST /v1/orders``. Decimals may be sent as strings or numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import msgspec
from aiohttp import web
from msgspec import UNSET, UnsetType

from ._core import CORE, Core
from ._errors import ApiError
from ._faults import FaultAction, FrameShape
from ._json import decode_body, json_response
from ._ops import Controller

__all__ = ["ROUTES", "ControlRoute", "add_routes", "dispatch", "listing"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A control request body: unknown keys are refused; unset keys keep their defaults."""

    def args(self) -> dict[str, Any]:
        """The keys that were sent, as keyword arguments."""
        names = self.__struct_fields__
        return {n: getattr(self, n) for n in names if getattr(self, n) is not UNSET}


class _Empty(_Body):
    pass


class _Advance(_Body):
    seconds: float | UnsetType = UNSET
    minutes: float | UnsetType = UNSET
    hours: float | UnsetType = UNSET
    days: float | UnsetType = UNSET


class _Market(_Body):
    market_id: str | UnsetType = UNSET
    question: str | UnsetType = UNSET
    outcomes: list[str] | UnsetType = UNSET
    price: Decimal | UnsetType = UNSET
    spread: Decimal | UnsetType = UNSET
    tick: Decimal | UnsetType = UNSET
    min_size: Decimal | UnsetType = UNSET
    fee_rate: Decimal | UnsetType = UNSET
    slug: str | UnsetType | None = UNSET
    category: str | UnsetType = UNSET
    volume: Decimal | UnsetType = UNSET


class _Resolve(_Body):
    winner: str | UnsetType | None = UNSET


class _Tier(_Body):
    tier: str


class _Wallet(_Body):
    user_id: int | UnsetType | None = UNSET
    kind: str | UnsetType = UNSET
    label: str | UnsetType | None = UNSET
    balance: Decimal | UnsetType | None = UNSET


class _Lapse(_Body):
    user_id: int | UnsetType | None = UNSET


class _Price(_Body):
    price: Decimal
    outcome: str | UnsetType | None = UNSET


class _Closed(_Body):
    closed: bool | UnsetType = UNSET


class _Target(_Body):
    account_id: str | UnsetType | None = UNSET
    wallet_id: int | UnsetType | None = UNSET
    user_id: int | UnsetType | None = UNSET


class _Order(_Target):
    idempotency_key: str | UnsetType | None = UNSET
    # The order's wire fields: their values are checked by the order rules (the
    # same statuses and codes as POST /v1/orders), only unknown names here.
    market_id: Any = UNSET
    side: Any = UNSET
    outcome: Any = UNSET
    quantity: Any = UNSET
    amount: Any = UNSET
    order_type: Any = UNSET
    price: Any = UNSET
    time_in_force: Any = UNSET
    client_order_id: Any = UNSET
    expiration: Any = UNSET
    post_only: Any = UNSET


class _Resting(_Target, kw_only=True):
    count: int
    market_id: str | UnsetType | None = UNSET
    price: Decimal | UnsetType = UNSET
    quantity: Decimal | UnsetType = UNSET


class _Fills(_Target, kw_only=True):
    count: int
    market_id: str | UnsetType | None = UNSET
    push: bool | UnsetType = UNSET


class _Tenant(_Body):
    name: str | UnsetType = UNSET
    scopes: list[str] | UnsetType | None = UNSET
    enabled: bool | UnsetType = UNSET
    redirect_domains: list[str] | UnsetType | None = UNSET


class _Scopes(_Body):
    scopes: list[str] | UnsetType | None = UNSET


class _Enabled(_Body):
    enabled: bool


class _Trader(_Body):
    email: str | UnsetType | None = UNSET
    tier: str | UnsetType = UNSET
    permissions: list[str] | UnsetType = UNSET


class _TraderKey(_Body):
    tier: str | UnsetType = UNSET
    permissions: list[str] | UnsetType = UNSET


class _Revoke(_Body):
    key: str


class _Fault(_Body):
    path: str
    action: FaultAction | UnsetType = UNSET
    method: str | UnsetType | None = UNSET
    times: int | UnsetType | None = UNSET
    status: int | UnsetType = UNSET
    code: str | UnsetType = UNSET
    message: str | UnsetType = UNSET
    retry_after: int | UnsetType | None = UNSET
    delay: float | UnsetType = UNSET


class _WsFaults(_Body):
    drop_after: int | UnsetType = UNSET
    mode: Literal["close", "abort"] | UnsetType = UNSET
    code: int | UnsetType = UNSET
    chaos: float | UnsetType = UNSET
    seed: int | UnsetType = UNSET
    malformed: int | UnsetType = UNSET
    shape: FrameShape | UnsetType = UNSET


class _Config(_Body):
    bulk_cancel_limit: int | UnsetType = UNSET
    rate_limits: bool | UnsetType = UNSET
    push_taker_fills: bool | UnsetType = UNSET
    order_delay: float | UnsetType = UNSET
    random_walk: bool | UnsetType = UNSET
    partner_limits: tuple[int, int] | UnsetType = UNSET
    export_row_cap: int | UnsetType = UNSET


Run = Callable[[Controller, dict[str, Any], dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class ControlRoute:
    """One control route: what it calls, what it takes, how it answers."""

    method: str
    path: str
    python: str
    summary: str
    body: type[_Body]
    run: Run
    status: int = 200
    int_params: tuple[str, ...] = ()


#: Every control route, in the order ``GET /_sandbox/`` lists them.
ROUTES: list[ControlRoute] = []


def _route(
    method: str,
    path: str,
    python: str,
    body: type[_Body] = _Empty,
    *,
    status: int = 200,
    int_params: tuple[str, ...] = (),
) -> Callable[[Run], Run]:
    def register(run: Run) -> Run:
        summary = (run.__doc__ or "").strip().splitlines()[0]
        ROUTES.append(ControlRoute(method, path, python, summary, body, run, status, int_params))
        return run

    return register


_OK = {"ok": True}


# -- state, clock, markets -----------------------------------------------------------------
@_route("GET", "/_sandbox/", "(this listing)")
async def _index(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Every control route with its Python method and parameters."""
    return listing()


@_route("GET", "/_sandbox/state", "tenant_key, tenant_id, api_key, user_id, market_ids, now()")
async def _state(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Default keys and ids, markets and the simulated clock."""
    return {
        "tenant_key": ctl.tenant_key,
        "tenant_id": ctl.tenant_id,
        "api_key": ctl.api_key,
        "user_id": ctl.user_id,
        "market_ids": ctl.market_ids,
        "now": ctl.now().isoformat(timespec="microseconds"),
    }


@_route("GET", "/_sandbox/clock", "now()")
async def _clock(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """The simulated now."""
    return {"now": ctl.now().isoformat(timespec="microseconds")}


@_route("POST", "/_sandbox/clock/advance", "advance(seconds, minutes=, hours=, days=)", _Advance)
async def _advance(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Jump the simulated clock forward, running every hourly event on the way."""
    return {"now": ctl.advance(**args).isoformat(timespec="microseconds")}


@_route("GET", "/_sandbox/markets", "markets()")
async def _markets(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Every market with its mids, bids and asks."""
    return ctl.markets()


@_route("POST", "/_sandbox/markets", "create_market(...)", _Market, status=201)
async def _create_market(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """List a market."""
    if "outcomes" in args:
        args["outcomes"] = tuple(args["outcomes"])
    return {"market_id": ctl.create_market(**args)}


@_route(
    "POST", "/_sandbox/markets/{market_id}/price", "set_price(market_id, price, outcome=)", _Price
)
async def _set_price(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Move a price; resting orders that cross fill."""
    return {"filled": ctl.set_price(path["market_id"], **args)}


@_route(
    "POST", "/_sandbox/markets/{market_id}/closed", "set_market_closed(market_id, closed)", _Closed
)
async def _close_market(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Close (or reopen, with closed=false) a market."""
    ctl.set_market_closed(path["market_id"], **args)
    return _OK


@_route(
    "POST",
    "/_sandbox/markets/{market_id}/resolve",
    "resolve_market(market_id, winner=None)",
    _Resolve,
)
async def _resolve(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Resolve a market (winner, or a split): settle every position in it."""
    return {"settled": ctl.resolve_market(path["market_id"], **args)}


# -- trading ---------------------------------------------------------------------------
@_route("POST", "/_sandbox/orders", "place_order(account_id=|wallet_id=|user_id=, ...)", _Order)
async def _place(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Place an order as a wallet's trader (the rules of POST /v1/orders)."""
    return await ctl.place_order(**args)


@_route("POST", "/_sandbox/orders/resting", "place_resting_orders(count, ...)", _Resting)
async def _resting(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Rest many non-marketable limit BUYs."""
    return {"order_ids": await ctl.place_resting_orders(**args)}


@_route("POST", "/_sandbox/fills", "generate_fills(count, ...)", _Fills)
async def _fills(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Bulk-generate fills in a wallet's feed."""
    return {"first_order_id": ctl.generate_fills(**args), "count": args["count"]}


@_route("GET", "/_sandbox/accounts/{account_id}", "account_state(account_id)")
async def _account(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """The account-state envelope of any account (no auth, no rate limit)."""
    return ctl.account_state(path["account_id"])


@_route("GET", "/_sandbox/outbox", "outbox()")
async def _outbox(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Recorded login-link emails, oldest first."""
    return ctl.outbox()


@_route("DELETE", "/_sandbox/outbox", "clear_outbox()")
async def _clear_outbox(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Forget recorded emails."""
    ctl.clear_outbox()
    return _OK


# -- identities ----------------------------------------------------------------------------
@_route("POST", "/_sandbox/tenants", "create_tenant(name, scopes=, ...)", _Tenant, status=201)
async def _tenant(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Create a tenant with one key."""
    if args.get("scopes") is not None:
        args["scopes"] = set(args["scopes"])
    if args.get("redirect_domains") is not None:
        args["redirect_domains"] = tuple(args["redirect_domains"])
    return dataclasses.asdict(ctl.create_tenant(**args))


@_route(
    "POST",
    "/_sandbox/tenants/{tenant_id}/keys",
    "create_tenant_key(tenant_id, scopes=)",
    _Scopes,
    status=201,
    int_params=("tenant_id",),
)
async def _tenant_key(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Issue another key for a tenant."""
    scopes = args.get("scopes")
    return {
        "key": ctl.create_tenant_key(
            path["tenant_id"], scopes=None if scopes is None else set(scopes)
        )
    }


@_route(
    "POST",
    "/_sandbox/tenants/{tenant_id}/enabled",
    "set_tenant_enabled(tenant_id, enabled)",
    _Enabled,
    int_params=("tenant_id",),
)
async def _tenant_enabled(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Enable or disable a tenant (disabled: 404 on its whole partner surface)."""
    ctl.set_tenant_enabled(path["tenant_id"], **args)
    return _OK


@_route(
    "POST", "/_sandbox/traders", "create_trader(email, tier=, permissions=)", _Trader, status=201
)
async def _trader(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Create a trader with a key and an API wallet."""
    if "permissions" in args:
        args["permissions"] = set(args["permissions"])
    return dataclasses.asdict(ctl.create_trader(**args))


@_route(
    "POST",
    "/_sandbox/users/{user_id}/keys",
    "create_trader_key(user_id, tier=, permissions=)",
    _TraderKey,
    status=201,
    int_params=("user_id",),
)
async def _user_key(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Issue a trader key for any user (e.g. one a partner registered)."""
    if "permissions" in args:
        args["permissions"] = set(args["permissions"])
    return dataclasses.asdict(ctl.create_trader_key(path["user_id"], **args))


@_route(
    "POST",
    "/_sandbox/users/{user_id}/tier",
    "set_tier(tier, user_id=)",
    _Tier,
    int_params=("user_id",),
)
async def _set_tier(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Move a trader's plan and every key of theirs to a tier."""
    ctl.set_tier(args["tier"], user_id=path["user_id"])
    return _OK


@_route(
    "POST",
    "/_sandbox/wallets",
    "create_wallet(*, user_id, kind, label, balance)",
    _Wallet,
    status=201,
)
async def _create_wallet(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Open a wallet of any kind for a trader (no plan cap)."""
    return {"wallet_id": ctl.create_wallet(**args)}


@_route("POST", "/_sandbox/keys/revoke", "revoke_key(key)", _Revoke)
async def _revoke(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Deactivate a tenant or trader key."""
    ctl.revoke_key(**args)
    return _OK


# -- faults and knobs ----------------------------------------------------------------------
@_route("GET", "/_sandbox/faults", "fault_rules()")
async def _faults(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """The active HTTP fault rules."""
    return ctl.fault_rules()


@_route(
    "POST", "/_sandbox/faults", "add_fault(path, action, ...), fail_next(), ...", _Fault, status=201
)
async def _add_fault(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Install an HTTP fault rule."""
    ctl.add_fault(**args)
    return _OK


@_route("DELETE", "/_sandbox/faults", "clear_faults()")
async def _clear_faults(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Remove every HTTP and WebSocket fault."""
    ctl.clear_faults()
    return _OK


@_route(
    "POST",
    "/_sandbox/ws/faults",
    "ws_drop_after(), ws_chaos(), ws_send_malformed(), set_fill_frame_shape()",
    _WsFaults,
)
async def _ws_faults(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """WebSocket faults: drop after N frames, chaos, malformed frames, older frame shapes."""
    if "drop_after" in args:
        ctl.ws_drop_after(
            args["drop_after"], mode=args.get("mode", "close"), code=args.get("code", 1011)
        )
    elif "mode" in args or "code" in args:
        raise ValueError("mode and code go with drop_after")
    if "chaos" in args:
        ctl.ws_chaos(args["chaos"], seed=args.get("seed", 0))
    elif "seed" in args:
        raise ValueError("seed goes with chaos")
    if "malformed" in args:
        ctl.ws_send_malformed(args["malformed"])
    if "shape" in args:
        ctl.set_fill_frame_shape(args["shape"])
    return _OK


@_route("GET", "/_sandbox/heartbeats", "heartbeats()")
async def _heartbeats(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Every live heartbeat registration."""
    return ctl.heartbeats()


@_route("POST", "/_sandbox/heartbeats/lapse", "lapse_heartbeats(*, user_id=)", _Lapse)
async def _lapse(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Lapse registrations now, cancelling the pending orders they protect."""
    return {"cancelled": ctl.lapse_heartbeats(**args)}


@_route("POST", "/_sandbox/ws-tokens/expire", "expire_ws_tokens()")
async def _expire(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Expire every WebSocket token now."""
    return {"expired": ctl.expire_ws_tokens()}


@_route("POST", "/_sandbox/config", "configure(...)", _Config)
async def _config(ctl: Controller, path: dict[str, Any], args: dict[str, Any]) -> Any:
    """Change run-time knobs."""
    ctl.configure(**args)
    return _OK


# -- serving -------------------------------------------------------------------------------
def _type_name(t: msgspec.inspect.Type) -> str:
    """A short, plain name for a parameter's type."""
    mi = msgspec.inspect
    if isinstance(t, mi.UnionType):
        return " or ".join(_type_name(x) for x in t.types)
    if isinstance(t, mi.LiteralType):
        return "one of " + ", ".join(str(v) for v in t.values)
    if isinstance(t, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)):
        return f"array of {_type_name(t.item_type)}"
    if isinstance(t, mi.TupleType):
        return "[" + ", ".join(_type_name(x) for x in t.item_types) + "]"
    simple = {
        mi.StrType: "string",
        mi.IntType: "integer",
        mi.FloatType: "number",
        mi.BoolType: "boolean",
        mi.DecimalType: "decimal (string or number)",
        mi.NoneType: "null",
        mi.AnyType: "any",
    }
    return simple.get(type(t), type(t).__name__)


def listing() -> list[dict[str, Any]]:
    """Every control route: method, path, Python method, summary and body parameters."""
    out = []
    for route in ROUTES:
        info = msgspec.inspect.type_info(route.body)
        assert isinstance(info, msgspec.inspect.StructType)
        params = [
            {"name": f.name, "type": _type_name(f.type), "required": f.required}
            for f in info.fields
        ]
        out.append(
            {
                "method": route.method,
                "path": route.path,
                "python": route.python,
                "summary": route.summary,
                "body": params,
            }
        )
    return out


class _Ctl(Controller):
    def __init__(self, core: Core) -> None:
        self._core = core


async def _read(route: ControlRoute, request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    data: Any = {}
    if raw.strip():
        try:
            data = decode_body(raw)
        except ValueError as exc:
            raise ApiError(422, "CONTROL_INVALID", str(exc)) from None
    try:
        return msgspec.convert(data, route.body).args()
    except msgspec.ValidationError as exc:
        raise ApiError(422, "CONTROL_INVALID", f"invalid body: {exc}") from None


def _endpoint(route: ControlRoute) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        path: dict[str, Any] = dict(request.match_info)
        for name in route.int_params:
            try:
                path[name] = int(path[name])
            except ValueError:
                raise ApiError(422, "CONTROL_INVALID", f"{name} must be an integer") from None
        args = await _read(route, request)
        data = await route.run(_Ctl(request.app[CORE]), path, args)
        return json_response(data, status=route.status)

    return handle


def add_routes(app: web.Application) -> None:
    """Serve every control route on ``app``."""
    for route in ROUTES:
        app.router.add_route(route.method, route.path, _endpoint(route))


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
        raise ApiError(
            404, "CONTROL_NOT_FOUND", f"not found: {exc.args[0] if exc.args else exc}"
        ) from None
    except (ValueError, ArithmeticError) as exc:
        raise ApiError(422, "CONTROL_INVALID", str(exc)) from None
