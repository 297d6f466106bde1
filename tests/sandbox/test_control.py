"""The control API: strict bodies (422 naming the field), a listing, and Python/HTTP parity."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

from polysim_async.sandbox import Sandbox
from polysim_async.sandbox._control import ROUTES

from ._helpers import Api, assert_error

WRITE_ROUTES = [r for r in ROUTES if r.method != "GET" and r.body.__struct_fields__]


def _path(route_path: str, sb: Sandbox) -> str:
    return route_path.format(
        market_id=sb.market_id, tenant_id=sb.tenant_id, user_id=sb.user_id, account_id="x"
    )


@pytest.mark.parametrize("route", WRITE_ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_unknown_keys_are_422_naming_the_key(api: Api, sb: Sandbox, route: Any) -> None:
    status, headers, body = await api.call(
        route.method, _path(route.path, sb), json={"bogus_key": 1}
    )
    assert_error(status, headers, body, 422, "CONTROL_INVALID")
    assert "bogus_key" in body["message"]


@pytest.mark.parametrize("route", WRITE_ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_wrong_types_are_422_naming_the_field(api: Api, sb: Sandbox, route: Any) -> None:
    typed = [
        name
        for name, kind in zip(route.body.__struct_fields__, _kinds(route), strict=True)
        if kind != "any"
    ]
    assert typed, route.path
    for name in typed:
        status, headers, body = await api.call(
            route.method, _path(route.path, sb), json={name: {"nested": [1]}}
        )
        assert_error(status, headers, body, 422, "CONTROL_INVALID")
        assert f"$.{name}" in body["message"], body


def _kinds(route: Any) -> list[str]:
    import msgspec

    info = msgspec.inspect.type_info(route.body)
    return ["any" if isinstance(f.type, msgspec.inspect.AnyType) else "typed" for f in info.fields]


async def test_the_reported_500s_are_422s_now(api: Api) -> None:
    got = await api.call("POST", "/_sandbox/tenants", json={"name": [1]})
    assert_error(*got, 422, "CONTROL_INVALID")
    assert "$.name" in got[2]["message"]
    got = await api.call("POST", "/_sandbox/config", json={"bogus": 1})
    assert_error(*got, 422, "CONTROL_INVALID")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/_sandbox/clock/advance", {"days": -1}, "days"),
        ("/_sandbox/clock/advance", {"days": 1000}, "days"),
        ("/_sandbox/clock/advance", {"days": 300, "hours": 3000}, "400 days"),
        ("/_sandbox/markets", {"price": "1.5"}, "price"),
        ("/_sandbox/markets", {"price": "NaN"}, "price"),
        ("/_sandbox/markets", {"outcomes": ["Yes"]}, "outcomes"),
        ("/_sandbox/markets/{market_id}/price", {"price": "0"}, "price"),
        ("/_sandbox/markets/{market_id}/price", {"price": "0.5", "outcome": "Maybe"}, "outcome"),
        ("/_sandbox/fills", {"count": 0}, "count"),
        ("/_sandbox/fills", {"count": 10**12}, "count"),
        ("/_sandbox/orders/resting", {"count": 10**6}, "count"),
        ("/_sandbox/tenants", {"scopes": ["admin"]}, "scopes"),
        ("/_sandbox/traders", {"tier": "gold"}, "tier"),
        ("/_sandbox/traders", {"permissions": ["root"]}, "permissions"),
        ("/_sandbox/faults", {"path": "/x", "status": 200}, "status"),
        ("/_sandbox/faults", {"path": "/x", "delay": 3600}, "delay"),
        ("/_sandbox/ws/faults", {"chaos": 2}, "probability"),
        ("/_sandbox/ws/faults", {"drop_after": 1, "code": 1005}, "code"),
        ("/_sandbox/ws/faults", {"mode": "abort"}, "drop_after"),
        ("/_sandbox/config", {"order_delay": 1e9}, "order_delay"),
        ("/_sandbox/config", {"partner_limits": [0, 10]}, "partner_limits"),
        ("/_sandbox/config", {"export_row_cap": 0}, "export_row_cap"),
        ("/_sandbox/markets", {"volume": "-1"}, "volume"),
        ("/_sandbox/markets", {"slug": "a/b"}, "slug"),
        ("/_sandbox/markets", {"category": ""}, "category"),
        ("/_sandbox/markets/{market_id}/resolve", {"winner": "Maybe"}, "winner"),
        ("/_sandbox/users/{user_id}/tier", {"tier": "gold"}, "tier"),
        ("/_sandbox/wallets", {"kind": "GOLD"}, "kind"),
        ("/_sandbox/wallets", {"balance": "-5"}, "balance"),
    ],
)
async def test_values_out_of_range_are_422_naming_the_field(
    api: Api, sb: Sandbox, path: str, body: dict[str, Any], field: str
) -> None:
    status, headers, got = await api.call("POST", _path(path, sb), json=body)
    assert_error(status, headers, got, 422, "CONTROL_INVALID")
    assert field in got["message"], got


async def test_unknown_ids_are_404(api: Api, sb: Sandbox) -> None:
    for method, path, body in (
        ("POST", "/_sandbox/markets/0xnone/price", {"price": "0.5"}),
        ("POST", "/_sandbox/tenants/999/keys", {}),
        ("POST", "/_sandbox/users/1/keys", {}),
        ("POST", "/_sandbox/keys/revoke", {"key": "nope"}),
        ("GET", "/_sandbox/accounts/nope", None),
        ("POST", "/_sandbox/fills", {"count": 2, "account_id": "nope"}),
        ("POST", "/_sandbox/users/1/tier", {"tier": "pro"}),
        ("POST", "/_sandbox/wallets", {"user_id": 1}),
        ("POST", "/_sandbox/markets/0xnone/resolve", {}),
        ("POST", "/_sandbox/heartbeats/lapse", {"user_id": 1}),
    ):
        assert_error(*await api.call(method, path, json=body), 404, "CONTROL_NOT_FOUND")
    got = await api.call("POST", "/_sandbox/tenants/abc/keys", json={})
    assert_error(*got, 422, "CONTROL_INVALID")


async def test_the_index_lists_every_route_with_its_parameters(api: Api) -> None:
    status, _, listing = await api.call("GET", "/_sandbox/")
    assert status == 200
    assert [(r["method"], r["path"]) for r in listing] == [(r.method, r.path) for r in ROUTES]
    by_path = {(r["method"], r["path"]): r for r in listing}
    market = by_path[("POST", "/_sandbox/markets")]
    assert market["python"].startswith("create_market(") and market["summary"]
    params = {p["name"]: p for p in market["body"]}
    assert params["price"] == {
        "name": "price",
        "type": "decimal (string or number)",
        "required": False,
    }
    assert params["outcomes"]["type"] == "array of string"
    fills = {p["name"]: p for p in by_path[("POST", "/_sandbox/fills")]["body"]}
    assert fills["count"] == {"name": "count", "type": "integer", "required": True}
    assert fills["account_id"]["type"] == "string or null"
    ws = {p["name"]: p for p in by_path[("POST", "/_sandbox/ws/faults")]["body"]}
    assert ws["shape"]["type"] == "one of execution_flat, execution_nested, fill"


def test_every_route_names_a_real_sandbox_method() -> None:
    for route in ROUTES:
        for name in re.findall(r"(\w+)\(", route.python):
            assert hasattr(Sandbox, name), (route.path, name)


def test_every_public_control_method_has_a_route() -> None:
    named = " ".join(r.python for r in ROUTES)
    lifecycle = {"start", "aclose", "url", "ws_url", "app", "user_id", "tenant_id"}
    conveniences = {"fail_next", "add_latency", "send_malformed", "abort_next", "market_id"}
    for name, _ in inspect.getmembers(Sandbox):
        if name.startswith("_") or name in lifecycle | conveniences:
            continue
        assert name in named, f"Sandbox.{name} has no control route"


async def test_python_and_http_agree(api: Api, sb: Sandbox) -> None:
    _, _, created = await api.call("POST", "/_sandbox/markets", json={"price": 0.3})
    assert created["market_id"] in sb.market_ids
    assert (await api.call("GET", "/_sandbox/markets"))[2] == sb.markets()
    _, account_id = await api.new_account()
    assert (await api.call("GET", f"/_sandbox/accounts/{account_id}"))[2] == sb.account_state(
        account_id
    )
    status, _, _ = await api.call(
        "POST", f"/_sandbox/markets/{created['market_id']}/closed", json={"closed": True}
    )
    assert status == 200 and sb.markets()[-1]["closed"] is True
    tenant = sb.create_tenant("T2")
    await api.call("POST", f"/_sandbox/tenants/{tenant.tenant_id}/enabled", json={"enabled": False})
    assert_error(*await api.partner("GET", "/users/1", key=tenant.key), 404, "NOT_FOUND")
