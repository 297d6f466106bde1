"""Auth realms, scopes, header aliases, unknown routes (API.md §2, §3)."""

from __future__ import annotations

import email.utils

from polysim_async.sandbox import Sandbox

from ._helpers import Api, assert_error


async def test_missing_and_invalid_keys(api: Api, sb: Sandbox) -> None:
    assert_error(*await api.call("GET", "/v1/partner/users/1"), 401, "MISSING_API_KEY")
    # Balance takes a key or a Bearer JWT, so "no credential" is MISSING_AUTH there (API.md
    # §4.3, §6.2); key-only routes say MISSING_API_KEY (the equity-curve seed's error table).
    assert_error(*await api.call("GET", "/v1/account/balance"), 401, "MISSING_AUTH")
    for path in ("/v1/account/positions", "/v1/account/equity", "/v1/orders"):
        assert_error(*await api.call("GET", path), 401, "MISSING_API_KEY")
    assert_error(*await api.partner("GET", "/users/1", key="nope"), 401, "INVALID_KEY")
    assert_error(*await api.trader("GET", "/account/balance", key="ps_live_00"), 401, "INVALID_KEY")


async def test_wrong_realm_is_invalid_key(api: Api, sb: Sandbox) -> None:
    partner = await api.partner("GET", "/users/1", key=sb.api_key)
    trader = await api.trader("GET", "/account/balance", key=sb.tenant_key)
    unknown = await api.partner("GET", "/users/1", key="nope")
    for answer in (partner, trader):
        assert_error(*answer, 401, "INVALID_KEY")
        # A bare envelope, as the real server sends: no hint about the kind of key.
        assert answer[2]["message"] == unknown[2]["message"]


async def test_the_date_header_is_the_simulated_clock(api: Api, sb: Sandbox) -> None:
    status, headers, _ = await api.partner("GET", "/users/1", key=sb.tenant_key)
    assert status == 404
    assert email.utils.parsedate_to_datetime(headers["Date"]) == sb.now().replace(microsecond=0)


async def test_header_aliases_and_precedence(api: Api, sb: Sandbox) -> None:
    bearer = {"Authorization": f"Bearer {sb.tenant_key}"}
    assert (
        await api.call(
            "POST",
            "/v1/partner/users",
            headers=bearer,
            json={"external_id": "a", "email": "a@b.co"},
        )
    )[0] == 201
    both = {"X-API-Key": "wrong", "Authorization": f"Bearer {sb.tenant_key}"}
    assert_error(*await api.call("GET", "/v1/partner/users/1", headers=both), 401, "INVALID_KEY")
    for header in ("X-API-Key", "POLY_API_KEY", "Poly-API-Key"):
        status, _, _ = await api.call("GET", "/v1/account/balance", headers={header: sb.api_key})
        assert status == 200, header
    status, _, _ = await api.call(
        "GET", "/v1/account/balance", headers={"Authorization": f"Bearer {sb.api_key}"}
    )
    assert status == 200
    first_wins = {"X-API-Key": "bad", "POLY_API_KEY": sb.api_key}
    assert_error(
        *await api.call("GET", "/v1/account/balance", headers=first_wins), 401, "INVALID_KEY"
    )
    other_scheme = {"Authorization": f"Basic {sb.api_key}"}
    assert_error(
        *await api.call("GET", "/v1/account/balance", headers=other_scheme), 401, "MISSING_AUTH"
    )


async def test_scopes_are_enforced(api: Api, sb: Sandbox) -> None:
    _, account_id = await api.new_account()
    reader = sb.create_tenant_key(sb.tenant_id, scopes={"accounts:read"})
    assert (await api.partner("GET", f"/accounts/{account_id}", key=reader))[0] == 200
    assert (await api.partner("GET", f"/accounts/{account_id}/trades", key=reader))[0] == 200
    for method, path in [
        ("POST", "/users"),
        ("POST", "/accounts"),
        ("PATCH", f"/accounts/{account_id}"),
        ("POST", f"/accounts/{account_id}/close"),
        ("POST", f"/accounts/{account_id}/reset"),
        ("POST", "/users/1/login-link"),
    ]:
        got = await api.partner(method, path, key=reader, json={})
        assert_error(*got, 403, "INSUFFICIENT_PERMISSION")
    writer = sb.create_tenant_key(sb.tenant_id, scopes={"users:write"})
    assert_error(
        *await api.partner("GET", f"/accounts/{account_id}", key=writer),
        403,
        "INSUFFICIENT_PERMISSION",
    )
    assert_error(*await api.partner("GET", "/users/1", key=writer), 403, "INSUFFICIENT_PERMISSION")


async def test_disabled_tenant_sees_404_everywhere(api: Api, sb: Sandbox) -> None:
    _, account_id = await api.new_account()
    sb.set_tenant_enabled(sb.tenant_id, False)
    assert_error(*await api.partner("GET", f"/accounts/{account_id}"), 404, "NOT_FOUND")
    assert_error(*await api.partner("POST", "/users", json={}), 404, "NOT_FOUND")
    sb.set_tenant_enabled(sb.tenant_id, True)
    assert (await api.partner("GET", f"/accounts/{account_id}"))[0] == 200


async def test_revoked_keys(api: Api, sb: Sandbox) -> None:
    trader = sb.create_trader()
    sb.revoke_key(trader.api_key)
    assert_error(
        *await api.trader("GET", "/account/balance", key=trader.api_key), 401, "INVALID_KEY"
    )


async def test_unknown_routes(api: Api) -> None:
    assert_error(*await api.partner("GET", "/accounts"), 405, "METHOD_NOT_ALLOWED")
    assert_error(*await api.partner("DELETE", "/users/1"), 405, "METHOD_NOT_ALLOWED")
    assert_error(*await api.partner("GET", "/webhooks"), 404, "NOT_FOUND")
    assert_error(*await api.call("GET", "/v1/partner"), 401, "MISSING_API_KEY")
    assert_error(*await api.partner("GET", ""), 404, "NOT_FOUND")
    assert_error(*await api.trader("GET", "/nothing-here"), 404, "NOT_FOUND")
    assert_error(*await api.call("GET", "/"), 404, "NOT_FOUND")
    assert_error(*await api.trader("PUT", "/orders"), 405, "METHOD_NOT_ALLOWED")


async def test_health_is_public(api: Api) -> None:
    status, headers, body = await api.call("GET", "/v1/health")
    assert status == 200 and body["status"] == "ok" and headers["X-Request-Id"]


async def test_read_only_trader_cannot_trade(api: Api, sb: Sandbox) -> None:
    reader = sb.create_trader(permissions={"read"})
    assert (await api.trader("GET", "/account/balance", key=reader.api_key))[0] == 200
    order = {
        "market_id": sb.market_id,
        "side": "BUY",
        "outcome": "Yes",
        "quantity": "5",
        "price": "0.6",
    }
    for method, path, kw in [
        ("POST", "/orders", {"json": order}),
        ("DELETE", "/orders/1", {}),
        ("POST", "/cancel-all?confirm=true", {}),
    ]:
        got = await api.trader(method, path, key=reader.api_key, **kw)
        assert_error(*got, 403, "INSUFFICIENT_PERMISSION")
    status, _, token = await api.trader("POST", "/keys/ws-token", key=reader.api_key)
    assert status == 200 and token["expires_in"] == 60


async def test_verbose_errors(api: Api) -> None:
    status, headers, body = await api.call(
        "GET", "/v1/account/balance", headers={"X-Polysim-Verbose": "true"}
    )
    assert status == 401 and body["error"] == "MISSING_AUTH"
    assert body["request_id"] == headers["X-Request-Id"] and "details" in body
