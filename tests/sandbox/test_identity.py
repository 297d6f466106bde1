"""Identity, keys and wallets (API.md §4.2, §4.4, the api-keys and wallets pages)."""

from __future__ import annotations

from typing import Any

import pytest

from polysim_async.sandbox import Sandbox

from ._helpers import Api, assert_error


async def test_me_names_the_calling_key(api: Api, sb: Sandbox) -> None:
    _, _, me = await api.trader("GET", "/me")
    assert me == {
        "user_id": sb.user_id,
        "balance": "10000.00",
        "currency": "USD",
        "key_count": 1,
        "tier": "pro",
        "permissions": ["read", "trade"],
        "auth_user_id": None,
        "email": "trader@sandbox.local",
    }
    reader = sb.create_trader_key(sb.user_id, permissions={"read"}).api_key
    _, _, me = await api.trader("GET", "/me", key=reader)
    assert me["permissions"] == ["read"] and me["key_count"] == 2
    wallet = sb.create_wallet(balance="250")
    _, _, me = await api.trader("GET", f"/me?wallet_id={wallet}")
    assert me["balance"] == "250.00"
    _, _, me = await api.trader("GET", "/me?wallet_id=all")
    assert me["balance"] == "10250.00"
    assert_error(*await api.trader("GET", "/me?wallet_id=1"), 404, "WALLET_NOT_FOUND")


async def test_the_tier_table(api: Api) -> None:
    _, _, rows = await api.trader("GET", "/keys/tiers")
    assert [(r["tier"], r["max_batch_size"], r["max_ws_connections"]) for r in rows] == [
        ("free", 1, 1),
        ("pro", 5, 3),
        ("pro_plus", 10, 10),
        ("enterprise", 25, 50),
    ]


async def test_keys_are_minted_listed_renamed_and_revoked(api: Api, sb: Sandbox) -> None:
    status, _, new = await api.trader("POST", "/keys", json={"name": "bot"})
    assert status == 201 and new["raw_key"].startswith("ps_live_") and len(new["raw_key"]) == 72
    assert new["key_prefix"] == new["raw_key"][:16]
    assert (new["rate_limit_tier"], new["permissions"]) == ("pro", ["read", "trade"])
    status, _, _ = await api.trader("GET", "/account/balance", key=new["raw_key"])
    assert status == 200  # the new key works at once
    _, _, listed = await api.trader("GET", "/keys")
    assert [k["name"] for k in listed] == ["default", "bot"]
    assert "raw_key" not in listed[1] and listed[1]["key_prefix"] == new["key_prefix"]
    _, _, page = await api.trader("GET", "/keys?limit=1&offset=1")
    assert [k["id"] for k in page] == [new["id"]]
    _, _, renamed = await api.trader("PATCH", f"/keys/{new['id']}", json={"name": "bot-2"})
    assert renamed["name"] == "bot-2" and renamed["id"] == new["id"]
    _, _, gone = await api.trader("DELETE", f"/keys/{new['id']}")
    assert gone == {"message": "Key revoked successfully"}
    got = await api.trader("GET", "/account/balance", key=new["raw_key"])
    assert_error(*got, 401, "INVALID_KEY")
    assert_error(*await api.trader("DELETE", f"/keys/{new['id']}"), 404, "KEY_NOT_FOUND")
    _, _, listed = await api.trader("GET", "/keys")
    assert [k["is_active"] for k in listed] == [True, False]


async def test_a_rotated_key_overlaps_for_24_hours(api: Api, sb: Sandbox) -> None:
    _, _, first = await api.trader("POST", "/keys", json={"name": "rot"})
    status, _, second = await api.trader("POST", f"/keys/{first['id']}/rotate")
    assert status == 201 and second["id"] != first["id"] and second["name"] == "rot"
    _, _, listed = await api.trader("GET", "/keys")
    assert listed[1]["expires_at"] == "2026-06-02T00:00:00Z"
    sb.advance(hours=23, minutes=59)
    for key in (first["raw_key"], second["raw_key"]):
        assert (await api.trader("GET", "/account/balance", key=key))[0] == 200
    sb.advance(minutes=1)
    got = await api.trader("GET", "/account/balance", key=first["raw_key"])
    assert_error(*got, 401, "KEY_EXPIRED")
    assert (await api.trader("GET", "/account/balance", key=second["raw_key"]))[0] == 200
    got = await api.trader("POST", f"/keys/{first['id']}/rotate")
    assert_error(*got, 404, "KEY_NOT_FOUND")


async def test_at_most_five_usable_keys(api: Api, sb: Sandbox) -> None:
    for i in range(4):
        assert (await api.trader("POST", "/keys", json={"name": f"k{i}"}))[0] == 201
    got = await api.trader("POST", "/keys", json={"name": "sixth"})
    assert_error(*got, 400, "VALIDATION_FAILED")
    assert "5" in got[2]["message"]
    _, _, listed = await api.trader("GET", "/keys")
    await api.trader("POST", f"/keys/{listed[-1]['id']}/rotate")  # rotation is not capped
    await api.trader("DELETE", f"/keys/{listed[-2]['id']}")
    assert (await api.trader("POST", "/keys", json={"name": "again"}))[0] == 201


@pytest.mark.parametrize(
    ("plan", "body", "status", "code"),
    [
        ("pro", {"name": "x", "tier": "gold"}, 400, "VALIDATION_FAILED"),
        ("pro", {"name": "x", "tier": "enterprise"}, 403, "TIER_REQUIRES_UPGRADE"),
        (
            "pro",
            {"name": "x", "tier": "free", "permissions": ["read", "trade"]},
            403,
            "TIER_REQUIRES_UPGRADE",
        ),
        ("free", {"name": "x", "permissions": ["trade"]}, 403, "TIER_REQUIRES_UPGRADE"),
        ("pro", {"name": "x", "permissions": ["admin"]}, 422, "VALIDATION_FAILED"),
        ("pro", {"name": "x", "permissions": []}, 422, "VALIDATION_FAILED"),
        ("pro", {"name": ""}, 422, "VALIDATION_FAILED"),
        ("pro", {}, 422, "VALIDATION_FAILED"),
    ],
)
async def test_key_creation_rules(
    api: Api, sb: Sandbox, plan: str, body: dict[str, Any], status: int, code: str
) -> None:
    key = sb.create_trader(tier=plan).api_key
    assert_error(*await api.trader("POST", "/keys", key=key, json=body), status, code)


async def test_key_defaults_follow_the_plan(api: Api, sb: Sandbox) -> None:
    free = sb.create_trader(tier="free").api_key
    _, _, new = await api.trader("POST", "/keys", key=free, json={"name": "f"})
    assert (new["rate_limit_tier"], new["permissions"]) == ("free", ["read"])
    _, _, lower = await api.trader("POST", "/keys", json={"name": "p", "tier": "free"})
    assert (lower["rate_limit_tier"], lower["permissions"]) == ("free", ["read"])


async def test_someone_elses_key_is_not_found(api: Api, sb: Sandbox) -> None:
    other = sb.create_trader().api_key
    _, _, mine = await api.trader("POST", "/keys", json={"name": "mine"})
    for method, path in (
        ("PATCH", "/keys/{}"),
        ("DELETE", "/keys/{}"),
        ("POST", "/keys/{}/rotate"),
    ):
        got = await api.trader(method, path.format(mine["id"]), key=other, json={"name": "n"})
        assert_error(*got, 404, "KEY_NOT_FOUND")
    assert_error(*await api.trader("DELETE", "/keys/abc"), 422, "VALIDATION_FAILED")


async def test_wallets_create_rename_reset_archive(api: Api, sb: Sandbox) -> None:
    status, _, lab = await api.trader("POST", "/me/wallets", json={"label": "lab"})
    assert status == 201
    assert (lab["kind"], lab["label"], lab["balance"], lab["baseline"]) == (
        "SANDBOX",
        "lab",
        "10000.00",
        "10000.00",
    )
    assert (lab["status"], lab["generation"], lab["parent_wallet_id"]) == ("ACTIVE", 1, None)
    _, _, renamed = await api.trader("PATCH", f"/me/wallets/{lab['id']}", json={"label": None})
    assert renamed["label"] is None
    _, _, fresh = await api.trader("POST", f"/me/wallets/{lab['id']}/reset")
    assert (fresh["generation"], fresh["parent_wallet_id"], fresh["status"]) == (
        2,
        lab["id"],
        "ACTIVE",
    )
    _, _, old = await api.trader("GET", f"/me/wallets/{lab['id']}")
    assert old["status"] == "ARCHIVED" and old["archived_at"] == "2026-06-01T00:00:00.000000+00:00"
    got = await api.trader("POST", f"/me/wallets/{lab['id']}/reset")
    assert_error(*got, 400, "WALLET_ARCHIVED")
    _, _, archived = await api.trader("DELETE", f"/me/wallets/{fresh['id']}")
    _, _, again = await api.trader("DELETE", f"/me/wallets/{fresh['id']}")
    assert archived["status"] == "ARCHIVED" and again == archived
    _, _, listed = await api.trader("GET", "/me/wallets")
    assert [(w["kind"], w["generation"]) for w in listed] == [
        ("API", 1),
        ("SANDBOX", 1),
        ("SANDBOX", 2),
    ]
    _, _, page = await api.trader("GET", "/me/wallets?limit=1&offset=2")
    assert [w["id"] for w in page] == [fresh["id"]]


async def test_wallet_kinds_and_plan_caps(api: Api, sb: Sandbox) -> None:
    for kind in ("MAIN", "api", "COMPETITION", "PROP_FIRM"):
        got = await api.trader("POST", "/me/wallets", json={"label": "x", "kind": kind})
        assert_error(*got, 400, "INVALID_WALLET_KIND")
    got = await api.trader("POST", "/me/wallets", json={"kind": "GOLD"})
    assert_error(*got, 422, "VALIDATION_FAILED")
    for _ in range(3):  # pro: three active SANDBOX wallets
        assert (await api.trader("POST", "/me/wallets", json={"kind": "sandbox"}))[0] == 201
    status, headers, body = await api.trader("POST", "/me/wallets", json={})
    assert status == 402 and headers["X-Polysim-Code"] == "UPGRADE_REQUIRED"
    assert body["feature_key"] == "wallets.sandbox_baseline" and body["upgrade_url"] == "/pricing"
    free = sb.create_trader(tier="free").api_key
    got = await api.trader("POST", "/me/wallets", key=free, json={})
    assert got[0] == 402
    _, _, listed = await api.trader("GET", "/me/wallets")
    api_wallet = listed[0]["id"]
    for method, path in (("DELETE", "/me/wallets/{}"), ("POST", "/me/wallets/{}/reset")):
        assert_error(*await api.trader(method, path.format(api_wallet)), 400, "INVALID_WALLET_KIND")


async def test_partner_wallets_carry_their_tenant(api: Api, sb: Sandbox) -> None:
    user_id, account_id = await api.new_account()
    key = sb.create_trader_key(user_id).api_key
    _, _, listed = await api.trader("GET", "/me/wallets", key=key)
    prop = next(w for w in listed if w["kind"] == "PROP_FIRM")
    assert prop["managed_by"] == {
        "tenant_slug": "sandbox-partner",
        "display_name": "Sandbox Partner",
    }
    assert prop["b2b_account"] == {
        "account_id": account_id,
        "stage": "challenge",
        "status": "active",
    }
    api_row = next(w for w in listed if w["kind"] == "API")
    assert "managed_by" not in api_row and "b2b_account" not in api_row
    await api.partner("POST", f"/accounts/{account_id}/close")
    _, _, closed = await api.trader("GET", f"/me/wallets/{prop['id']}", key=key)
    assert closed["status"] == "ARCHIVED" and closed["b2b_account"]["status"] == "closed"
    assert_error(*await api.trader("GET", f"/me/wallets/{prop['id']}"), 404, "WALLET_NOT_FOUND")
    assert_error(*await api.trader("GET", "/me/wallets/x"), 422, "VALIDATION_FAILED")
