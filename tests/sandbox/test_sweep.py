"""A sweep of malformed requests: no 500, and every answer JSON with the documented envelope.

Every field of every write route (API and control) gets each of the bad values below,
and an unknown key; every write route also gets bodies nested 5,000 levels deep (at
the top and inside a field) and a body over the 1 MiB cap; then bad headers, long
URLs and bytes that are not HTTP at all. Each route is swept on its own sandbox (a
valid-but-odd value, say an ``order_delay``, must not slow the next route), with
many requests in flight at once. Nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import io
import logging
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
import pytest

from polysim_async.sandbox import Sandbox
from polysim_async.sandbox._control import ROUTES as CONTROL_ROUTES

#: 28 kinds of bad value, sent in place of every field.
BAD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    10**30,
    1.5,
    -0.0,
    1e300,
    "",
    " ",
    "x" * 10_000,
    "\u0000",
    "NaN",
    "Infinity",
    "-1",
    "1e999999",
    "0x10",
    "\U0001f642",
    "<script>alert(1)</script>",
    "'; DROP TABLE users; --",
    "\n\r\t",
    [],
    [1, "a", None],
    {},
    {"a": {"b": [1]}},
    "9" * 5000,
]
#: Error codes whose envelope adds documented fields (API.md §5.2, price-candles page).
CARVE_OUTS = {
    "UPGRADE_REQUIRED": {"feature_key", "upgrade_url"},
    "INVALID_INTERVAL": {"supported_intervals"},
}
DEEP = 5_000
NESTED = b"[" * DEEP + b"]" * DEEP
OVERSIZED = b'{"x": "' + b"a" * (2 << 20) + b'"}'
CONCURRENCY = 16


@dataclass
class Ids:
    user_id: int
    account_id: str
    order_id: int
    tenant_id: int
    market_id: str
    key_id: int
    wallet_id: int


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # with {user_id}, {account_id}, {order_id}, {tenant_id}, {market_id}, ...
    realm: str  # "partner", "trader" or "control"
    body: dict[str, Any]  # a valid body
    extra_fields: tuple[str, ...] = ()  # fields the route takes beyond those in ``body``

    @property
    def fields(self) -> list[str]:
        return [*self.body, *(f for f in self.extra_fields if f not in self.body)]


def _api_routes() -> list[Route]:
    return [
        Route(
            "POST",
            "/v1/partner/users",
            "partner",
            {"external_id": "e-1", "email": "a@b.co", "metadata": {"k": 1}},
        ),
        Route(
            "POST",
            "/v1/partner/users/{user_id}/login-link",
            "partner",
            {"redirect_url": "https://polysimulator.com/x"},
        ),
        Route(
            "POST",
            "/v1/partner/accounts",
            "partner",
            {
                "user_id": "{user_id}",
                "external_id": "a-9",
                "stage": "demo",
                "starting_balance": "100.00",
                "metadata": {"k": 1},
                "rules": {"max_drawdown_pct": 10},
            },
        ),
        Route(
            "PATCH",
            "/v1/partner/accounts/{account_id}",
            "partner",
            {"stage": "funded", "metadata": {"k": 2}, "rules": {"profit_target_pct": 5}},
        ),
        Route("POST", "/v1/partner/accounts/{account_id}/close", "partner", {}),
        Route("POST", "/v1/partner/accounts/{account_id}/reset", "partner", {}),
        Route(
            "POST",
            "/v1/orders",
            "trader",
            {
                "market_id": "{market_id}",
                "side": "BUY",
                "outcome": "Yes",
                "quantity": "5",
                "order_type": "limit",
                "price": "0.30",
                "time_in_force": "GTD",
                "expiration": 1_900_000_000,
                "client_order_id": "c-1",
                "post_only": False,
            },
            ("amount",),
        ),
        Route("DELETE", "/v1/orders/{order_id}", "trader", {}),
        Route("POST", "/v1/cancel-all?confirm=true", "trader", {}),
        Route("DELETE", "/v1/cancel-all?confirm=true", "trader", {}),
        Route("POST", "/v1/keys/ws-token", "trader", {}),
        Route(
            "POST",
            "/v1/orders/batch",
            "trader",
            {
                "orders": [
                    {
                        "market_id": "{market_id}",
                        "side": "BUY",
                        "outcome": "Yes",
                        "quantity": "5",
                        "order_type": "limit",
                        "price": "0.30",
                        "client_order_id": "b-1",
                    }
                ]
            },
        ),
        Route("DELETE", "/v1/cancel-market-orders?market={market_id}", "trader", {}),
        Route("POST", "/v1/heartbeats", "trader", {"interval_ms": 5000, "client_label": "x"}),
        Route("POST", "/heartbeats", "trader", {"interval_ms": 5000, "client_label": "x"}),
        Route("POST", "/v1/account/reset-api-balance", "trader", {}),
        Route("POST", "/v1/keys", "trader", {"name": "k", "tier": "pro", "permissions": ["read"]}),
        Route("PATCH", "/v1/keys/{key_id}", "trader", {"name": "n"}),
        Route("POST", "/v1/keys/{key_id}/rotate", "trader", {}),
        Route("DELETE", "/v1/keys/{key_id}", "trader", {}),
        Route("POST", "/v1/me/wallets", "trader", {"label": "l", "kind": "SANDBOX"}),
        Route("PATCH", "/v1/me/wallets/{wallet_id}", "trader", {"label": "l"}),
        Route("DELETE", "/v1/me/wallets/{wallet_id}", "trader", {}),
        Route("POST", "/v1/me/wallets/{wallet_id}/reset", "trader", {}),
        Route("POST", "/v1/prices/batch", "trader", {"market_ids": ["{market_id}"]}),
    ]


#: A valid body for every control write route (each field is then replaced in turn).
CONTROL_BODIES: dict[str, dict[str, Any]] = {
    "/_sandbox/clock/advance": {"seconds": 1, "minutes": 1, "hours": 1, "days": 1},
    "/_sandbox/markets": {
        "market_id": "0xsweep",
        "question": "Q?",
        "outcomes": ["Yes", "No"],
        "price": "0.40",
        "spread": "0.02",
        "tick": "0.01",
        "min_size": "5",
        "fee_rate": "0",
        "slug": "sweep",
        "category": "crypto",
        "volume": "100",
    },
    "/_sandbox/markets/{market_id}/resolve": {"winner": "Yes"},
    "/_sandbox/users/{user_id}/tier": {"tier": "pro"},
    "/_sandbox/wallets": {"user_id": "{user_id}", "kind": "SANDBOX", "label": "l", "balance": "5"},
    "/_sandbox/heartbeats/lapse": {"user_id": "{user_id}"},
    "/_sandbox/markets/{market_id}/price": {"price": "0.55", "outcome": "Yes"},
    "/_sandbox/markets/{market_id}/closed": {"closed": False},
    "/_sandbox/orders": {
        "account_id": "{account_id}",
        "idempotency_key": "k-1",
        "market_id": "{market_id}",
        "side": "BUY",
        "outcome": "Yes",
        "quantity": "5",
        "order_type": "limit",
        "price": "0.30",
        "time_in_force": "GTC",
        "client_order_id": "c-2",
        "post_only": False,
    },
    "/_sandbox/orders/resting": {
        "count": 1,
        "account_id": "{account_id}",
        "market_id": "{market_id}",
        "price": "0.01",
        "quantity": "5",
    },
    "/_sandbox/fills": {"count": 2, "account_id": "{account_id}", "push": False},
    "/_sandbox/tenants": {
        "name": "Firm",
        "scopes": ["accounts:read"],
        "enabled": True,
        "redirect_domains": ["example.com"],
    },
    "/_sandbox/tenants/{tenant_id}/keys": {"scopes": ["accounts:read"]},
    "/_sandbox/tenants/{tenant_id}/enabled": {"enabled": True},
    "/_sandbox/traders": {"email": "t@e.co", "tier": "pro", "permissions": ["read"]},
    "/_sandbox/users/{user_id}/keys": {"tier": "free", "permissions": ["read"]},
    "/_sandbox/keys/revoke": {"key": "nope"},
    "/_sandbox/faults": {
        "path": "/nowhere/*",
        "action": "error",
        "method": "GET",
        "times": 1,
        "status": 503,
        "code": "X",
        "message": "m",
        "retry_after": 1,
        "delay": 0,
    },
    "/_sandbox/ws/faults": {"malformed": 1, "shape": "fill"},
    "/_sandbox/config": {"bulk_cancel_limit": 5, "push_taker_fills": True, "export_row_cap": 9},
}


def _control_routes() -> list[Route]:
    out = []
    for route in CONTROL_ROUTES:
        if route.method == "GET":
            continue
        body = CONTROL_BODIES.get(route.path, {}) if route.method == "POST" else {}
        fields = route.body.__struct_fields__
        assert set(body) <= set(fields), route.path
        out.append(Route(route.method, route.path, "control", body, fields))
    return out


ALL_ROUTES = _api_routes() + _control_routes()


def _fill(template: Any, ids: Ids) -> Any:
    if isinstance(template, str) and template.startswith("{") and template.endswith("}"):
        return getattr(ids, template[1:-1])
    if isinstance(template, list):
        return [_fill(item, ids) for item in template]
    if isinstance(template, dict):
        return {k: _fill(v, ids) for k, v in template.items()}
    return template


def _url(route: Route, ids: Ids, **overrides: str) -> str:
    values = {
        "user_id": str(ids.user_id),
        "account_id": ids.account_id,
        "order_id": str(ids.order_id),
        "tenant_id": str(ids.tenant_id),
        "market_id": ids.market_id,
        "key_id": str(ids.key_id),
        "wallet_id": str(ids.wallet_id),
    }
    values.update(overrides)
    return route.path.format(**values)


@dataclass
class Request:
    method: str
    url: str
    headers: dict[str, str]
    data: bytes | None


class Sweep:
    """Sends requests to one sandbox, checking every answer."""

    def __init__(self, sb: Sandbox, http: aiohttp.ClientSession) -> None:
        self.sb = sb
        self.http = http
        self.failures: list[str] = []
        self.count = 0
        self._sem = asyncio.Semaphore(CONCURRENCY)

    def headers(self, realm: str) -> dict[str, str]:
        hdrs = {"Content-Type": "application/json"}
        if realm == "partner":
            hdrs["X-API-Key"] = self.sb.tenant_key
        elif realm == "trader":
            hdrs["X-API-Key"] = self.sb.api_key
        return hdrs

    async def send(self, req: Request) -> None:
        async with self._sem:
            self.count += 1
            data: Any = req.data
            if data is not None and len(data) > 1 << 20:
                data = io.BytesIO(data)  # aiohttp warns about large raw bytes
            async with self.http.request(
                req.method, self.sb.url + req.url, headers=req.headers, data=data
            ) as resp:
                raw = await resp.read()
                self.verify(req, resp.status, resp.headers, raw)

    def verify(self, req: Request, status: int, headers: Any, raw: bytes) -> None:
        where = f"{req.method} {req.url[:80]} {(req.data or b'')[:80]!r}"
        if status >= 500:
            self.failures.append(f"{status} for {where}: {raw[:200]!r}")
            return
        if status == 200 and headers.get("Content-Type", "").startswith("text/csv"):
            return  # a CSV export
        try:
            body = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            self.failures.append(f"non-JSON {status} for {where}: {raw[:200]!r}")
            return
        if not headers.get("X-Request-Id"):
            self.failures.append(f"no X-Request-Id for {where}")
        envelope = {"error", "message"}
        if req.headers.get("X-Polysim-Verbose") == "true":
            envelope |= {"details", "request_id"}
        if (
            isinstance(body, dict)
            and status == 422
            and req.url.split("?")[0].endswith("heartbeats")
        ):
            # The heartbeat routes' documented Pydantic envelope.
            if set(body) != {"detail"} or headers.get("X-Polysim-Code") != "VALIDATION_FAILED":
                self.failures.append(f"422 without the detail envelope for {where}: {raw[:200]!r}")
            return
        if isinstance(body, dict):
            envelope |= CARVE_OUTS.get(body.get("error"), set())
        if status >= 400 and (
            not isinstance(body, dict)
            or set(body) != envelope
            or headers.get("X-Polysim-Code") != body["error"]
        ):
            self.failures.append(f"{status} without the envelope for {where}: {raw[:200]!r}")

    async def run(self, requests: list[Request]) -> None:
        await asyncio.gather(*(self.send(r) for r in requests))


async def _ids(sb: Sandbox, http: aiohttp.ClientSession) -> Ids:
    hdr = {"X-API-Key": sb.tenant_key}
    base = sb.url + "/v1/partner"
    async with http.post(
        base + "/users", json={"external_id": "u", "email": "u@e.co"}, headers=hdr
    ) as r:
        user_id = (await r.json())["user_id"]
    body = {"user_id": user_id, "external_id": "a", "stage": "demo", "starting_balance": "1000"}
    async with http.post(base + "/accounts", json=body, headers=hdr) as r:
        account_id = (await r.json())["account_id"]
    placed = await sb.place_order(
        market_id=sb.market_id,
        side="BUY",
        outcome="Yes",
        quantity="5",
        price="0.30",
        order_type="limit",
    )
    async with http.post(
        sb.url + "/v1/keys", json={"name": "spare"}, headers={"X-API-Key": sb.api_key}
    ) as r:
        key_id = (await r.json())["id"]
    wallet_id = sb.create_wallet(label="sweep")
    return Ids(
        user_id, account_id, placed["order_id"], sb.tenant_id, sb.market_id, key_id, wallet_id
    )


def _requests(route: Route, sweep: Sweep, ids: Ids) -> list[Request]:
    hdrs = sweep.headers(route.realm)
    url = _url(route, ids)
    base = {k: _fill(v, ids) for k, v in route.body.items()}
    out: list[Request] = []

    def body(data: Any) -> None:
        out.append(Request(route.method, url, hdrs, msgspec.json.encode(data)))

    for name in [*route.fields, "unknown_field"]:
        for bad in BAD_VALUES:
            body({**base, name: bad})
        if name in base:
            body({k: v for k, v in base.items() if k != name})  # the field missing
    for raw in (
        NESTED,
        b'{"metadata": ' + NESTED + b"}",
        b"[" * DEEP,
        OVERSIZED,
        b"",
        b"{",
        b"\xff\xfe\x00",
        b"null",
        b"[]",
        b'"text"',
        b"1e999999",
    ):
        out.append(Request(route.method, url, hdrs, raw))
    for param in (
        "user_id",
        "account_id",
        "order_id",
        "tenant_id",
        "market_id",
        "key_id",
        "wallet_id",
    ):
        if "{" + param + "}" not in route.path:
            continue
        for bad in ("abc", "-1", "0", "9" * 5000, "%00", "%F0%9F%99%82", "1.5", "%20"):
            out.append(
                Request(
                    route.method,
                    _url(route, ids, **{param: bad}),
                    hdrs,
                    msgspec.json.encode(base),
                )
            )
    return out


@pytest.fixture
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Any:
    """Fail if the sandbox's catch-all or aiohttp's server logged an error."""
    caplog.set_level(logging.ERROR)
    yield
    bad = [r for r in caplog.records if r.name.startswith(("polysim_async.sandbox", "aiohttp"))]
    assert not bad, [r.getMessage() for r in bad]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def _sweep_route(route: Route, http: aiohttp.ClientSession) -> tuple[int, list[str]]:
    async with Sandbox(seed=5, frozen_clock=True, random_walk=False, rate_limits=False) as sb:
        sweep = Sweep(sb, http)
        ids = await _ids(sb, http)
        await sweep.run(_requests(route, sweep, ids))
        return sweep.count, sweep.failures


@pytest.mark.parametrize("route", ALL_ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_bad_values_in_every_field(
    route: Route, http: aiohttp.ClientSession, no_server_errors: Any
) -> None:
    count, failures = await _sweep_route(route, http)
    assert count >= len(BAD_VALUES) * (len(route.fields) + 1)
    assert not failures, "\n".join(failures[:20])


async def test_bad_headers_and_long_urls(
    sb: Sandbox, http: aiohttp.ClientSession, no_server_errors: Any
) -> None:
    sweep = Sweep(sb, http)
    ids = await _ids(sb, http)
    order = msgspec.json.encode(
        {"market_id": ids.market_id, "side": "BUY", "outcome": "Yes", "quantity": "5"}
    )
    trader, partner = sweep.headers("trader"), sweep.headers("partner")
    odd_headers: list[dict[str, str]] = [
        {"X-API-Key": ""},
        {"X-API-Key": " "},
        {"X-API-Key": "x" * 8_000},
        {"X-API-Key": "ps_live_" + "\u00e9" * 10},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer " + "y" * 5000},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"POLY_API_KEY": sb.tenant_key},
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/json; charset=latin-1"},
        {"Content-Type": "multipart/form-data; boundary=x"},
        {"Idempotency-Key": "k" * 300},
        {"Idempotency-Key": " "},
        {"X-Polysim-Verbose": "true", "X-API-Key": "nope"},
        {"X-Confirm-Cancel-All": "maybe"},
        {"X-Big": "v" * 9_000},  # over 8,190 bytes: 431
        {"X-Huge": "v" * 70_000},  # over the parser's limit: still the envelope
        {"Accept": "text/html"},
        {"Content-Encoding": "gzip"},
        {"Content-Encoding": "br"},
        {"Content-Encoding": "deflate"},
    ]
    requests = []
    for extra in odd_headers:
        for realm, path, data in (
            ("trader", "/v1/orders", order),
            ("partner", "/v1/partner/users", b'{"external_id": "h", "email": "h@e.co"}'),
            ("trader", "/v1/cancel-all", b""),
            ("control", "/_sandbox/config", b"{}"),
        ):
            hdrs = {**{"trader": trader, "partner": partner}.get(realm, {}), **extra}
            requests.append(Request("POST", path, hdrs, data))
    for length in (8_191, 9_000, 60_000, 100_000):
        for path in ("/v1/partner/users/", "/v1/orders/", "/_sandbox/markets/"):
            padded = path + "1" * (length - len(path))
            requests.append(Request("GET", padded, trader, None))
            requests.append(Request("GET", "/v1/orders?x=" + "y" * length, trader, None))
    await sweep.run(requests)
    assert sweep.count == len(requests)
    assert not sweep.failures, "\n".join(sweep.failures[:20])


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00",
        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-A: 1\r\n" * 200 + b"\r\n",
        b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"GET /v1/health HTTP/9.9\r\n\r\n",
    ],
    ids=lambda raw: raw[:20].decode("latin-1").strip(),
)
async def test_bytes_that_are_not_http_get_the_json_envelope(
    sb: Sandbox, raw: bytes, no_server_errors: Any
) -> None:
    host, port = sb.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(raw)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    assert 400 <= status < 500, answer[:300]
    assert b"application/json" in head.lower() and b"x-polysim-code" in head.lower()
    decoded = msgspec.json.decode(body)
    assert set(decoded) == {"error", "message"}


async def test_deeply_nested_websocket_frames_keep_the_socket(
    sb: Sandbox, http: aiohttp.ClientSession
) -> None:
    async with http.post(sb.url + "/v1/keys/ws-token", headers={"X-API-Key": sb.api_key}) as r:
        token = (await r.json())["token"]
    async with http.ws_connect(f"{sb.ws_url}/v1/ws/executions?token={token}") as ws:
        await ws.receive_json()  # connected
        await ws.send_str("[" * DEEP + "]" * DEEP)
        await ws.send_str('{"a":' * DEEP + "1" + "}" * DEEP)
        await ws.send_str('{"action": "ping"}')
        pong = await ws.receive_json()
        assert pong["type"] == "pong"


#: Every query parameter of the read routes added for bots (issue 14), each swept below.
READ_ROUTES: list[tuple[str, tuple[str, ...]]] = [
    (
        "/v1/markets",
        ("limit", "offset", "q", "category", "hot_only", "active_only", "envelope", "cursor"),
    ),
    ("/v1/markets/{market_id}", ("include_book",)),
    ("/v1/markets/by-slug/sandbox-market-1", ("include_book",)),
    ("/v1/markets/{market_id}/book", ("outcome", "depth")),
    ("/v1/markets/{market_id}/candles", ("interval", "outcome", "start_time")),
    ("/v1/book", ("token_id", "depth")),
    ("/v1/markets-by-token/1", ()),
    ("/v1/me", ("wallet_id",)),
    ("/v1/keys", ("limit", "offset")),
    ("/v1/keys/tiers", ()),
    ("/v1/me/wallets", ("limit", "offset")),
    ("/v1/me/wallets/{wallet_id}", ()),
    ("/v1/account/portfolio", ("wallet_id",)),
    ("/v1/account/settlements", ("limit", "cursor", "wallet_id", "market_id", "from", "to")),
    ("/v1/export/trades.csv", ("wallet_id", "market_id", "from", "to")),
    ("/v1/export/settlements.csv", ("wallet_id", "market_id", "from", "to")),
]
BAD_QUERY = [
    "",
    " ",
    "x" * 9000,
    "\u0000",
    "NaN",
    "-1",
    "0",
    "1e999999",
    "9" * 5000,
    "0x10",
    "\U0001f642",
    "<script>",
    "'; DROP TABLE users; --",
    "\n\r\t",
    "true",
    "LTE=",
    "%",
    "[]",
    "9999-12-31T23:59:59+14:00",
    "0001-01-01",
]


async def test_bad_query_values_on_every_read_route(
    sb: Sandbox, http: aiohttp.ClientSession, no_server_errors: Any
) -> None:
    sweep = Sweep(sb, http)
    ids = await _ids(sb, http)
    sb.resolve_market(sb.market_ids[1], "Yes")  # settlements to page through
    requests = []
    for path, params in READ_ROUTES:
        url = path.format(market_id=ids.market_id, wallet_id=ids.wallet_id)
        requests.append(Request("GET", url, sweep.headers("trader"), None))
        for name in params:
            for bad in BAD_QUERY:
                query = urllib.parse.urlencode({name: bad})
                requests.append(Request("GET", f"{url}?{query}", sweep.headers("trader"), None))
    await sweep.run(requests)
    assert sweep.count == len(requests) > 600
    assert not sweep.failures, "\n".join(sweep.failures[:20])
