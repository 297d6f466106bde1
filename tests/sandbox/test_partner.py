"""The nine partner endpoints (API.md §3) against the sandbox over loopback."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from polysim_async.models import AccountState, PartnerAccount, PartnerUser
from polysim_async.sandbox import Sandbox

from ._helpers import Api, assert_error


async def test_register_is_idempotent_on_external_id(api: Api) -> None:
    status, headers, first = await api.partner(
        "POST",
        "/users",
        json={
            "external_id": "pc_trader_123",
            "email": "  Trader@Example.COM ",
            "metadata": {"c": 1},
        },
    )
    assert status == 201 and first["created"] is True
    assert first["email"] == "trader@example.com"
    assert headers["X-Request-Id"]
    msgspec.json.decode(msgspec.json.encode(first), type=PartnerUser)
    status, _, again = await api.partner(
        "POST", "/users", json={"external_id": "pc_trader_123", "email": "other@example.com"}
    )
    assert status == 200 and again["created"] is False
    assert again["user_id"] == first["user_id"]
    assert again["tenant_user_id"] == first["tenant_user_id"]
    assert again["email"] == "trader@example.com"  # the stored trader wins


async def test_existing_email_links_to_the_same_native_user(api: Api, sb: Sandbox) -> None:
    other = sb.create_tenant("Other Firm")
    _, _, a = await api.partner("POST", "/users", json={"external_id": "x", "email": "s@e.com"})
    status, _, b = await api.partner(
        "POST", "/users", json={"external_id": "y", "email": "s@e.com"}, key=other.key
    )
    assert status == 201 and b["created"] is True and b["user_id"] == a["user_id"]


async def test_get_user_and_foreign_user_is_404(api: Api, sb: Sandbox) -> None:
    _, _, u = await api.partner("POST", "/users", json={"external_id": "x", "email": "x@e.com"})
    status, _, got = await api.partner("GET", f"/users/{u['user_id']}")
    assert status == 200 and got["external_id"] == "x" and got["created"] is False
    other = sb.create_tenant("Other Firm")
    assert_error(
        *await api.partner("GET", f"/users/{u['user_id']}", key=other.key), 404, "USER_NOT_FOUND"
    )
    assert_error(*await api.partner("GET", "/users/999999"), 404, "USER_NOT_FOUND")
    assert_error(*await api.partner("GET", "/users/abc"), 422, "VALIDATION_FAILED")


async def test_login_link_is_202_and_recorded_in_the_outbox(api: Api, sb: Sandbox) -> None:
    _, _, u = await api.partner("POST", "/users", json={"external_id": "x", "email": "x@e.com"})
    status, _, body = await api.partner(
        "POST",
        f"/users/{u['user_id']}/login-link",
        json={"redirect_url": "https://polysimulator.com/markets"},
    )
    assert status == 202 and body == {"status": "accepted"}
    status, _, body = await api.partner("POST", f"/users/{u['user_id']}/login-link")
    assert status == 202
    outbox = sb.outbox()
    assert len(outbox) == 2
    assert outbox[0]["email"] == "x@e.com" and outbox[0]["link"].startswith("https://")
    assert outbox[0]["redirect_url"] == "https://polysimulator.com/markets"
    assert "link" not in body
    sb.clear_outbox()
    assert sb.outbox() == []


async def test_login_link_redirect_rules(api: Api, sb: Sandbox, http: object) -> None:
    strict = sb.create_tenant("Strict", redirect_domains=("portal.example",))
    _, _, u = await api.partner(
        "POST", "/users", json={"external_id": "x", "email": "x@e.com"}, key=strict.key
    )
    path = f"/users/{u['user_id']}/login-link"
    ok = await api.partner(
        "POST", path, json={"redirect_url": "https://a.portal.example/x"}, key=strict.key
    )
    assert ok[0] == 202
    bad = await api.partner(
        "POST", path, json={"redirect_url": "https://evil.com/"}, key=strict.key
    )
    assert_error(*bad, 400, "REDIRECT_NOT_ALLOWED")
    worse = await api.partner("POST", path, json={"redirect_url": "javascript:x"}, key=strict.key)
    assert_error(*worse, 422, "VALIDATION_FAILED")
    assert_error(*await api.partner("POST", "/users/424242/login-link"), 404, "USER_NOT_FOUND")


async def test_create_account_echoes_rules_and_replays(api: Api) -> None:
    _, _, u = await api.partner("POST", "/users", json={"external_id": "x", "email": "x@e.com"})
    raw = (
        b'{"user_id": %d, "external_id": "pc_challenge_001", "stage": "challenge",'
        b' "starting_balance": "10000.00", "metadata": {"plan": "10k", "attempt": 1},'
        b' "rules": {"profit_target_pct": 20, "max_drawdown_pct": 10.50}}' % u["user_id"]
    )
    status, _, acc = await api.partner(
        "POST", "/accounts", data=raw, headers={"Content-Type": "application/json"}
    )
    assert status == 201, acc
    assert acc["status"] == "active" and acc["stage"] == "challenge"
    assert acc["starting_balance"] == "10000.00"
    assert acc["metadata"] == {"plan": "10k", "attempt": 1}
    async with api.http.get(
        api.sb.url + f"/v1/partner/accounts/{acc['account_id']}",
        headers={"X-API-Key": api.sb.tenant_key},
    ) as r:
        text = await r.read()
    assert b'"rules":{"profit_target_pct": 20, "max_drawdown_pct": 10.50}' in text
    msgspec.json.decode(msgspec.json.encode(acc), type=PartnerAccount)
    status, _, again = await api.partner(
        "POST",
        "/accounts",
        json={
            "user_id": u["user_id"],
            "external_id": "pc_challenge_001",
            "stage": "demo",
            "starting_balance": "5.00",
        },
    )
    assert status == 200 and again["account_id"] == acc["account_id"]
    assert again["stage"] == "challenge"


async def test_account_state_envelope_is_exact(api: Api, sb: Sandbox) -> None:
    _, account_id = await api.new_account()
    m = sb.market_id
    await sb.place_order(
        account_id=account_id, market_id=m, side="BUY", outcome="Yes", quantity="100", price="0.60"
    )
    await sb.place_order(
        account_id=account_id, market_id=m, side="SELL", outcome="yes", quantity="40", price="0.40"
    )
    sb.set_price(m, "0.55")
    status, _, body = await api.partner("GET", f"/accounts/{account_id}")
    assert status == 200
    state = msgspec.json.decode(msgspec.json.encode(body), type=AccountState)
    # BUY 100 @ ask 0.51, SELL 40 @ bid 0.49: cash 10000 - 51 + 19.60.
    assert state.balance == Decimal("9968.60")
    assert state.realized_pnl == Decimal("-0.80")
    (pos,) = state.open_positions
    assert pos.quantity == Decimal("60.0000") and pos.avg_entry_price == Decimal("0.5100")
    assert pos.current_price == Decimal("0.5500") and pos.market_value == Decimal("33.00")
    assert state.unrealized_pnl == Decimal("2.40") and pos.unrealized_pnl == Decimal("2.40")
    assert state.equity == state.balance + pos.market_value
    assert state.equity == state.starting_balance + state.realized_pnl + state.unrealized_pnl
    assert body["updated_at"].endswith("+00:00") and "." in body["updated_at"]
    assert sb.account_state(account_id) == body  # the control API returns the wire body


async def test_patch_updates_stage_metadata_rules(api: Api) -> None:
    _, account_id = await api.new_account()
    status, _, body = await api.partner(
        "PATCH",
        f"/accounts/{account_id}",
        json={"stage": "funded", "metadata": {"k": "v"}, "rules": {"max_drawdown_pct": 5}},
    )
    assert status == 200
    assert body["stage"] == "funded" and body["metadata"] == {"k": "v"}
    assert body["rules"] == {"max_drawdown_pct": 5}
    assert_error(
        *await api.partner("PATCH", f"/accounts/{account_id}", json={"stage": "pro"}),
        422,
        "VALIDATION_FAILED",
    )
    assert_error(
        *await api.partner("PATCH", f"/accounts/{account_id}", json={"rules": [1]}),
        422,
        "VALIDATION_FAILED",
    )


async def test_close_is_idempotent_and_freezes_trading(api: Api, sb: Sandbox) -> None:
    _, account_id = await api.new_account()
    status, _, first = await api.partner("POST", f"/accounts/{account_id}/close")
    assert status == 200 and first["status"] == "closed"
    status, _, second = await api.partner("POST", f"/accounts/{account_id}/close")
    assert status == 200 and second == first
    try:
        await sb.place_order(
            account_id=account_id,
            market_id=sb.market_id,
            side="BUY",
            outcome="Yes",
            quantity="5",
            price="0.9",
        )
    except Exception as exc:
        assert getattr(exc, "code", None) == "ACCOUNT_CLOSED"
    else:
        raise AssertionError("a closed account must refuse orders")


async def test_reset_same_account_back_to_start_and_again(api: Api, sb: Sandbox) -> None:
    _, account_id = await api.new_account(balance="2500.00")
    await sb.place_order(
        account_id=account_id,
        market_id=sb.market_id,
        side="BUY",
        outcome="Yes",
        quantity="100",
        price="0.60",
    )
    await api.partner("POST", f"/accounts/{account_id}/close")
    status, _, body = await api.partner("POST", f"/accounts/{account_id}/reset")
    assert status == 200
    assert body["account_id"] == account_id and body["status"] == "active"
    assert body["balance"] == "2500.00" and body["equity"] == "2500.00"
    assert body["open_positions"] == [] and body["realized_pnl"] is None
    _, _, trades = await api.partner("GET", f"/accounts/{account_id}/trades")
    assert len(trades["data"]) == 1  # history kept
    await sb.place_order(
        account_id=account_id,
        market_id=sb.market_id,
        side="BUY",
        outcome="Yes",
        quantity="10",
        price="0.60",
    )
    status, _, again = await api.partner("POST", f"/accounts/{account_id}/reset")
    assert status == 200 and again["balance"] == "2500.00"


async def test_close_and_reset_drain_in_batches(api: Api, sb: Sandbox) -> None:
    sb.configure(bulk_cancel_limit=3)
    _, account_id = await api.new_account()
    await sb.place_resting_orders(7, account_id=account_id)
    state = sb.account_state(account_id)
    assert Decimal(state["balance"]) == Decimal("10000.00") - Decimal("0.35")
    for _ in range(2):
        assert_error(
            *await api.partner("POST", f"/accounts/{account_id}/close"), 409, "ORDERS_NOT_CANCELLED"
        )
    status, _, body = await api.partner("POST", f"/accounts/{account_id}/close")
    assert status == 200 and body["status"] == "closed" and body["balance"] == "10000.00"
    _, account2 = await api.new_account("acc-2")
    await sb.place_resting_orders(4, account_id=account2)
    assert_error(
        *await api.partner("POST", f"/accounts/{account2}/reset"), 409, "ORDERS_NOT_CANCELLED"
    )
    assert (await api.partner("POST", f"/accounts/{account2}/reset"))[0] == 200


async def test_foreign_and_unknown_accounts_are_404(api: Api, sb: Sandbox) -> None:
    _, account_id = await api.new_account()
    other = sb.create_tenant("Other Firm")
    for method, suffix in [
        ("GET", ""),
        ("GET", "/trades"),
        ("PATCH", ""),
        ("POST", "/close"),
        ("POST", "/reset"),
    ]:
        got = await api.partner(method, f"/accounts/{account_id}{suffix}", key=other.key, json={})
        assert_error(*got, 404, "ACCOUNT_NOT_FOUND")
        got = await api.partner(method, f"/accounts/nope{suffix}", json={})
        assert_error(*got, 404, "ACCOUNT_NOT_FOUND")


async def test_create_account_for_unknown_user_is_404(api: Api, sb: Sandbox) -> None:
    body = {"user_id": 1, "external_id": "a", "stage": "demo", "starting_balance": "10.00"}
    assert_error(*await api.partner("POST", "/accounts", json=body), 404, "USER_NOT_FOUND")
    # A user of another tenant is unknown here too.
    other = sb.create_tenant("Other Firm")
    _, _, u = await api.partner(
        "POST", "/users", json={"external_id": "x", "email": "x@e.com"}, key=other.key
    )
    body["user_id"] = u["user_id"]
    assert_error(*await api.partner("POST", "/accounts", json=body), 404, "USER_NOT_FOUND")


async def test_partner_trades_appear_on_the_trader_side(api: Api, sb: Sandbox) -> None:
    user_id, account_id = await api.new_account()
    trader = sb.create_trader_key(user_id)
    await sb.place_order(
        account_id=account_id,
        market_id=sb.market_id,
        side="BUY",
        outcome="Yes",
        quantity="10",
        price="0.60",
    )
    wallet = sb.account_state(account_id)
    assert wallet["balance"] == "9994.90"
    _, _, acc = await api.partner("GET", f"/accounts/{account_id}")
    status, _, rows = await api.trader(
        "GET", "/account/positions?wallet_id=all", key=trader.api_key
    )
    assert status == 200 and len(rows) == 1 and rows[0]["quantity"] == "10.0000"
    status, _, rows = await api.trader("GET", "/account/positions", key=trader.api_key)
    assert rows == []  # the API wallet holds nothing
    assert acc["open_positions"][0]["quantity"] == "10.0000"
