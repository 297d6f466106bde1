"""The nine partner endpoints: paths, bodies, typed results and argument checks (API.md §3)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

import polysim_async as ps

from ._helpers import (
    ACCOUNT_201,
    ACCOUNT_ID,
    ACCOUNT_STATE,
    USER_201,
    FakeClock,
    Routes,
    calls,
    make_client,
    sent_json,
    trade,
    url,
)

ACCOUNT_PATH = f"/v1/partner/accounts/{ACCOUNT_ID}"


def only_call(mock: Routes) -> tuple[str, str, dict[str, Any]]:
    (call,) = calls(mock)
    return call


class TestUsers:
    async def test_register_201_creates(self, mock: Routes) -> None:
        mock.post(url("/v1/partner/users"), status=201, payload=USER_201)
        async with make_client() as client:
            user = await client.partner.users.register(
                "pc_trader_123", "trader@example.com", metadata={"country": "ES"}
            )
        assert isinstance(user, ps.PartnerUser)
        assert (user.user_id, user.created) == (12345, True)
        method, u, kwargs = only_call(mock)
        assert (method, u) == ("POST", "https://api.test/v1/partner/users")
        assert sent_json(kwargs) == {
            "external_id": "pc_trader_123",
            "email": "trader@example.com",
            "metadata": {"country": "ES"},
        }

    async def test_register_201_without_the_flag_still_reports_created(self, mock: Routes) -> None:
        body = {k: v for k, v in USER_201.items() if k != "created"}
        mock.post(url("/v1/partner/users"), status=201, payload=body)
        async with make_client() as client:
            user = await client.partner.users.register("pc_trader_123", "trader@example.com")
        assert user.created is True
        assert "metadata" not in sent_json(only_call(mock)[2])

    async def test_register_200_replay_is_not_created(self, mock: Routes) -> None:
        body = {k: v for k, v in USER_201.items() if k != "created"}
        mock.post(url("/v1/partner/users"), status=200, payload=body)
        async with make_client() as client:
            user = await client.partner.users.register("pc_trader_123", "trader@example.com")
        assert user.created is False
        assert user.user_id == 12345

    async def test_register_replay_with_explicit_false(self, mock: Routes) -> None:
        mock.post(url("/v1/partner/users"), status=200, payload={**USER_201, "created": False})
        async with make_client() as client:
            user = await client.partner.users.register("pc_trader_123", "trader@example.com")
        assert user.created is False

    @pytest.mark.parametrize(
        ("args", "match"),
        [
            (("", "a@b.co"), "external_id"),
            (("x" * 256, "a@b.co"), "external_id"),
            ((123, "a@b.co"), "external_id"),
            (("ext", "no-at-sign"), "email"),
            (("ext", "@"), "email"),
            (("ext", "a@" + "b" * 320), "email"),
            (("ext", None), "email"),
            (("ext", "a@b.co", ["not", "a", "mapping"]), "metadata"),
            (("ext", "a@b.co", {1: "non-string key"}), "metadata"),
            (("ext", "a@b.co", {"when": object()}), "metadata"),
        ],
    )
    async def test_register_refuses_bad_arguments_before_sending(
        self, mock: Routes, args: tuple[Any, ...], match: str
    ) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError, match=match):
                await client.partner.users.register(
                    *args[:2], **({"metadata": args[2]} if len(args) > 2 else {})
                )
        assert calls(mock) == []

    async def test_get(self, mock: Routes) -> None:
        mock.get(url("/v1/partner/users/12345"), payload={**USER_201, "metadata": {"k": "v"}})
        async with make_client() as client:
            user = await client.partner.users.get(12345)
        assert user.metadata == {"k": "v"}
        method, u, kwargs = only_call(mock)
        assert (method, u) == ("GET", "https://api.test/v1/partner/users/12345")
        assert kwargs.get("data") is None

    @pytest.mark.parametrize("bad", [0, -1, "12345", True, 1.0, None])
    async def test_get_refuses_bad_ids(self, mock: Routes, bad: Any) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError):
                await client.partner.users.get(bad)
            with pytest.raises(ps.InvalidArgumentError):
                await client.partner.users.send_login_link(bad)
        assert calls(mock) == []

    async def test_get_unknown_user(self, mock: Routes) -> None:
        mock.get(url("/v1/partner/users/7"), status=404, body="", headers={"X-Request-Id": "r1"})
        async with make_client() as client:
            with pytest.raises(ps.NotFoundError) as info:
                await client.partner.users.get(7)
        assert (info.value.status, info.value.request_id) == (404, "r1")

    async def test_send_login_link_202(self, mock: Routes) -> None:
        mock.post(
            url("/v1/partner/users/12345/login-link"), status=202, payload={"status": "accepted"}
        )
        async with make_client() as client:
            ack = await client.partner.users.send_login_link(
                12345, redirect_url="https://polysimulator.com/markets"
            )
        assert ack == ps.LoginLink(status="accepted")
        assert sent_json(only_call(mock)[2]) == {
            "redirect_url": "https://polysimulator.com/markets"
        }

    async def test_send_login_link_without_redirect_or_body(self, mock: Routes) -> None:
        mock.post(url("/v1/partner/users/12345/login-link"), status=202, body=b"")
        async with make_client() as client:
            ack = await client.partner.users.send_login_link(12345)
        assert ack.status == "accepted"
        assert sent_json(only_call(mock)[2]) == {}

    @pytest.mark.parametrize("bad", ["/markets", "javascript:alert(1)", "ftp://x.example", 5])
    async def test_send_login_link_refuses_bad_redirects(self, mock: Routes, bad: Any) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError, match="redirect_url"):
                await client.partner.users.send_login_link(12345, redirect_url=bad)
        assert calls(mock) == []


CREATE: dict[str, Any] = {
    "user_id": 12345,
    "external_id": "pc_challenge_001",
    "stage": "challenge",
    "starting_balance": "10000.00",
}


class TestAccounts:
    async def test_create_sends_exact_money_and_numeric_rules(self, mock: Routes) -> None:
        mock.post(url("/v1/partner/accounts"), status=201, payload=ACCOUNT_201)
        async with make_client() as client:
            account = await client.partner.accounts.create(
                **CREATE,
                metadata={"plan": "10k", "attempt": 1},
                rules={"profit_target_pct": 20, "max_drawdown_pct": Decimal("10.5")},
            )
        assert isinstance(account, ps.PartnerAccount)
        assert (account.account_id, account.wallet_id) == (ACCOUNT_ID, 9911)
        assert account.starting_balance == Decimal("10000.00")
        body = only_call(mock)[2]["data"]
        assert json.loads(body) == {
            "user_id": 12345,
            "external_id": "pc_challenge_001",
            "stage": "challenge",
            "starting_balance": "10000.00",
            "metadata": {"plan": "10k", "attempt": 1},
            "rules": {"profit_target_pct": 20, "max_drawdown_pct": 10.5},
        }
        assert b'"max_drawdown_pct":10.5' in body  # a JSON number, written exactly

    @pytest.mark.parametrize(
        ("balance", "wire"),
        [
            (Decimal("2500.50"), "2500.50"),
            (25000, "25000"),
            (" 99.9 ", "99.9"),
            ("1e4", "10000"),
            (Decimal("2.5E+3"), "2500"),
        ],
    )
    async def test_create_accepts_exact_balances(
        self, mock: Routes, balance: Any, wire: str
    ) -> None:
        mock.post(url("/v1/partner/accounts"), status=201, payload=ACCOUNT_201)
        async with make_client() as client:
            await client.partner.accounts.create(
                **{**CREATE, "starting_balance": balance, "stage": ps.Stage.FUNDED}
            )
        sent = sent_json(only_call(mock)[2])
        assert (sent["starting_balance"], sent["stage"]) == (wire, "funded")
        assert "rules" not in sent and "metadata" not in sent

    @pytest.mark.parametrize(
        ("override", "match"),
        [
            ({"starting_balance": 10000.0}, "float"),
            ({"starting_balance": "ten"}, "starting_balance"),
            ({"starting_balance": "NaN"}, "starting_balance"),
            ({"starting_balance": "-5"}, "starting_balance"),
            ({"starting_balance": 0}, "starting_balance"),
            ({"stage": "pro"}, "stage"),
            ({"user_id": 0}, "user_id"),
            ({"user_id": "12345"}, "user_id"),
            ({"external_id": ""}, "external_id"),
            ({"rules": {"daily_loss": object()}}, "JSON"),
            ({"rules": {"profit_target_pct": 7.5}}, "float"),
            ({"rules": {"max_drawdown_pct": -1}}, "negative"),
            ({"starting_balance": "1e999999999"}, "too many digits"),
            ({"rules": ["profit_target_pct"]}, "rules"),
            ({"metadata": "plan=10k"}, "metadata"),
        ],
    )
    async def test_create_refuses_bad_arguments_before_sending(
        self, mock: Routes, override: dict[str, Any], match: str
    ) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError, match=match):
                await client.partner.accounts.create(**{**CREATE, **override})
        assert calls(mock) == []

    async def test_a_rule_of_zero_is_sent(self, mock: Routes) -> None:
        mock.post(url("/v1/partner/accounts"), status=201, payload=ACCOUNT_201)
        async with make_client() as client:
            await client.partner.accounts.create(
                **CREATE, rules={"max_drawdown_pct": 0, "profit_target_pct": "1e1"}
            )
        body = only_call(mock)[2]["data"]
        assert json.loads(body)["rules"] == {"profit_target_pct": 10, "max_drawdown_pct": 0}
        assert b'"profit_target_pct":10' in body and b"1E" not in body  # plain notation

    async def test_get(self, mock: Routes) -> None:
        mock.get(url(ACCOUNT_PATH), payload=ACCOUNT_STATE)
        async with make_client() as client:
            state = await client.partner.accounts.get(ACCOUNT_ID)
        assert isinstance(state, ps.AccountState)
        assert state.equity == Decimal("10142.42")
        assert state.open_positions[0].avg_entry_price == Decimal("0.4100")
        assert only_call(mock)[:2] == ("GET", "https://api.test" + ACCOUNT_PATH)

    async def test_ids_are_quoted_into_one_path_segment(self, mock: Routes) -> None:
        mock.get(url("/v1/partner/accounts/a%2Fb%3F"), payload=ACCOUNT_STATE)
        async with make_client() as client:
            await client.partner.accounts.get("a/b?")
        assert len(calls(mock)) == 1

    @pytest.mark.parametrize("bad", ["", "  ", " padded", None, True, ["id"], ".", ".."])
    async def test_bad_account_ids_are_refused_everywhere(self, mock: Routes, bad: Any) -> None:
        accounts = None
        async with make_client() as client:
            accounts = client.partner.accounts
            for call in (accounts.get, accounts.close, accounts.reset):
                with pytest.raises(ps.InvalidArgumentError):
                    await call(bad)
            with pytest.raises(ps.InvalidArgumentError):
                await accounts.update(bad, stage="demo")
            for walk in (accounts.trades, accounts.trade_pages):
                with pytest.raises(ps.InvalidArgumentError):
                    walk(bad)
            with pytest.raises(ps.InvalidArgumentError):
                accounts.trades_many([ACCOUNT_ID, bad])
        assert calls(mock) == []

    async def test_dot_segments_inside_an_id_are_quoted_not_refused(self, mock: Routes) -> None:
        mock.get(url("/v1/partner/accounts/...%2F.."), payload=ACCOUNT_STATE)
        async with make_client() as client:
            await client.partner.accounts.get(".../..")
        assert len(calls(mock)) == 1

    async def test_update_sends_only_the_given_fields(self, mock: Routes) -> None:
        mock.patch(url(ACCOUNT_PATH), payload={**ACCOUNT_STATE, "stage": "funded"})
        async with make_client() as client:
            state = await client.partner.accounts.update(ACCOUNT_ID, stage="FUNDED")
        assert state.stage is ps.Stage.FUNDED
        method, _, kwargs = only_call(mock)
        assert method == "PATCH"
        assert sent_json(kwargs) == {"stage": "funded"}

    async def test_update_rules_and_metadata(self, mock: Routes) -> None:
        mock.patch(url(ACCOUNT_PATH), payload=ACCOUNT_STATE)
        async with make_client() as client:
            await client.partner.accounts.update(
                ACCOUNT_ID,
                metadata={"attempt": 2},
                rules=ps.Rules(profit_target_pct=Decimal("25")),
            )
        assert sent_json(only_call(mock)[2]) == {
            "metadata": {"attempt": 2},
            "rules": {"profit_target_pct": 25},
        }

    @pytest.mark.parametrize(
        "kwargs", [{}, {"stage": "elite"}, {"metadata": 5}, {"rules": {"x": object()}}]
    )
    async def test_update_refuses_bad_arguments(self, mock: Routes, kwargs: dict[str, Any]) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError):
                await client.partner.accounts.update(ACCOUNT_ID, **kwargs)
        assert calls(mock) == []

    @pytest.mark.parametrize("action", ["close", "reset"])
    async def test_close_and_reset_post_without_a_body(self, mock: Routes, action: str) -> None:
        status = "closed" if action == "close" else "active"
        mock.post(url(f"{ACCOUNT_PATH}/{action}"), payload={**ACCOUNT_STATE, "status": status})
        async with make_client() as client:
            state = await getattr(client.partner.accounts, action)(ACCOUNT_ID)
        assert state.status is ps.AccountStatus(status)
        method, u, kwargs = only_call(mock)
        assert (method, u) == ("POST", f"https://api.test{ACCOUNT_PATH}/{action}")
        assert kwargs.get("data") is None


class TestDecodeErrors:
    @pytest.mark.parametrize(
        ("method", "path", "call", "body"),
        [
            ("GET", "/v1/partner/users/1", "get_user", {"user_id": "x"}),
            ("POST", "/v1/partner/users", "register", {"created": True}),
            ("POST", "/v1/partner/accounts", "create", {**ACCOUNT_201, "wallet_id": None}),
            ("GET", ACCOUNT_PATH, "get", {**ACCOUNT_STATE, "balance": None}),
            ("GET", ACCOUNT_PATH, "get", {**ACCOUNT_STATE, "updated_at": "2026-06-04T14:10:08"}),
            ("POST", f"{ACCOUNT_PATH}/close", "close", [ACCOUNT_STATE]),
            ("POST", "/v1/partner/users/1/login-link", "login", {"status": 202}),
        ],
    )
    async def test_a_2xx_body_of_the_wrong_shape_is_a_decode_error(
        self, mock: Routes, clock: FakeClock, method: str, path: str, call: str, body: Any
    ) -> None:
        mock.add(url(path), method, payload=body, headers={"X-Request-Id": "rid-42"})
        async with make_client(clock) as client:
            p = client.partner
            with pytest.raises(ps.DecodeError) as info:
                if call == "get_user":
                    await p.users.get(1)
                elif call == "register":
                    await p.users.register("e", "a@b.co")
                elif call == "login":
                    await p.users.send_login_link(1)
                elif call == "create":
                    await p.accounts.create(**CREATE)
                elif call == "get":
                    await p.accounts.get(ACCOUNT_ID)
                else:
                    await p.accounts.close(ACCOUNT_ID)
        assert info.value.status == 200
        assert info.value.request_id == "rid-42"
        assert len(calls(mock)) == 1  # a decode error is not retried


class TestNaming:
    async def test_positional_options_still_work_with_a_deprecation_warning(
        self, mock: Routes
    ) -> None:
        mock.post(url("/v1/partner/users"), status=201, payload=USER_201)
        mock.post(url("/v1/partner/users/1/login-link"), status=202, body=b"")
        async with make_client() as client:
            with pytest.warns(DeprecationWarning, match="metadata"):
                await client.partner.users.register("e", "e@x.io", {"k": "v"})  # type: ignore[misc]
            with pytest.warns(DeprecationWarning, match="redirect_url"):
                await client.partner.users.send_login_link(1, "https://x.example/a")  # type: ignore[misc]
            with pytest.raises(TypeError):
                await client.partner.users.register("e", "e@x.io", {}, "extra")  # type: ignore[misc]
        assert sent_json(calls(mock)[0][2])["metadata"] == {"k": "v"}

    async def test_trades_many_yields_account_trades_that_unpack_as_pairs(
        self, mock: Routes
    ) -> None:
        mock.get(url("/v1/partner/accounts/a/trades"), payload={"data": [trade(1)]})
        mock.get(url("/v1/partner/accounts/b/trades"), payload={"data": [trade(2)]})
        async with make_client() as client:
            items = [item async for item in client.partner.accounts.trades_many(["a", "b"])]
        assert all(isinstance(item, ps.AccountTrade) for item in items)
        pairs = {account_id: t.trade_id for account_id, t in items}
        assert pairs == {"a": 1, "b": 2}
        assert items[0] == (items[0].account_id, items[0].trade)


class TestFreeFormRules:
    def test_rules_is_a_read_only_mapping_with_two_typed_keys(self) -> None:
        rules = ps.Rules({"min_trading_days": 5, "nested": {"a": [1]}}, profit_target_pct=8)
        assert dict(rules) == {"min_trading_days": 5, "nested": {"a": [1]}, "profit_target_pct": 8}
        assert rules.profit_target_pct == Decimal(8) and rules.max_drawdown_pct is None
        assert rules == {"min_trading_days": 5, "nested": {"a": [1]}, "profit_target_pct": 8}
        copy = rules.to_dict()
        copy["nested"]["a"].append(2)
        assert rules["nested"] == {"a": [1]}  # to_dict() is a deep copy
        assert "Rules(" in repr(rules)

    def test_a_stored_percentage_that_is_not_a_number_is_a_decode_error(self) -> None:
        rules = ps.Rules.from_json(b'{"profit_target_pct": "lots", "max_drawdown_pct": [1]}')
        with pytest.raises(ps.DecodeError):
            _ = rules.profit_target_pct
        with pytest.raises(ps.DecodeError):
            _ = rules.max_drawdown_pct
        with pytest.raises(ps.DecodeError):
            ps.Rules.from_json(b"[1, 2]")

    async def test_a_rules_value_that_is_not_an_object_is_a_decode_error(
        self, mock: Routes
    ) -> None:
        mock.get(url(ACCOUNT_PATH), payload={**ACCOUNT_STATE, "rules": [1, 2]})
        mock.get(url(ACCOUNT_PATH), payload={**ACCOUNT_STATE, "rules": None})
        async with make_client() as client:
            with pytest.raises(ps.DecodeError):
                await client.partner.accounts.get(ACCOUNT_ID)
            state = await client.partner.accounts.get(ACCOUNT_ID)
        assert state.rules is None

    async def test_any_rule_keys_are_sent_with_numbers_as_json_numbers(self, mock: Routes) -> None:
        mock.post(url("/v1/partner/accounts"), status=201, payload=ACCOUNT_201)
        rules = ps.Rules(
            {"daily_loss_pct": Decimal("4.25"), "label": "10k", "days": {"min": 5}},
            max_drawdown_pct="7.50",
        )
        async with make_client() as client:
            await client.partner.accounts.create(**CREATE, rules=rules)
        body = calls(mock)[0][2]["data"]
        assert b'"rules":{"daily_loss_pct":4.25,"label":"10k","days":{"min":5},' in body
        assert b'"max_drawdown_pct":7.50}' in body  # exactly as given, a number
