"""``client.wallets``: offset paging, the wallet shape, and which calls are repeated."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

import polysim_async as ps

from ._helpers import Routes, calls, error_body, make_client, sent_json, url
from ._trader import WALLET, params, sent

WALLETS = url("/v1/me/wallets")
PROP = {
    **WALLET,
    "id": 9911,
    "kind": "PROP_FIRM",
    "managed_by": {"tenant_slug": "polychallenge", "display_name": "PolyChallenge"},
    "b2b_account": {
        "account_id": "0b1d8e2a-3c4f-5a6b-7c8d-9e0f1a2b3c4d",
        "stage": "challenge",
        "status": "active",
    },
}


def wallet(i: int) -> dict[str, Any]:
    return {**WALLET, "id": i}


class TestList:
    async def test_pages_by_offset_until_a_short_page(self, mock: Routes) -> None:
        mock.get(WALLETS, payload=[wallet(1), wallet(2)])
        mock.get(WALLETS, payload=[wallet(3)])
        async with make_client() as client:
            ids = [w.id async for w in client.wallets.list(page_size=2)]
        assert ids == [1, 2, 3]
        assert params(mock, "/v1/me/wallets") == [
            {"limit": "2", "offset": "0"},
            {"limit": "2", "offset": "2"},
        ]

    @pytest.mark.parametrize("key", ["wallets", "items"])
    async def test_keyed_envelopes_are_unwrapped(self, mock: Routes, key: str) -> None:
        mock.get(WALLETS, payload={key: [wallet(1)]})
        async with make_client() as client:
            assert [w.id async for w in client.wallets.list()] == [1]

    async def test_a_full_page_then_an_empty_one_ends(self, mock: Routes) -> None:
        mock.get(WALLETS, payload=[wallet(1)])
        mock.get(WALLETS, payload=[])
        async with make_client() as client:
            assert [w.id async for w in client.wallets.list(page_size=1)] == [1]
        assert len(calls(mock)) == 2

    async def test_a_server_ignoring_the_offset_is_caught(self, mock: Routes) -> None:
        mock.get(WALLETS, payload=[wallet(1)], repeat=True)
        async with make_client() as client:
            with pytest.raises(ps.PaginationError):
                async for _ in client.wallets.list(page_size=1):
                    pass

    async def test_prop_firm_wallets_carry_their_tenant(self, mock: Routes) -> None:
        mock.get(WALLETS, payload=[PROP])
        async with make_client() as client:
            [w] = [w async for w in client.wallets.list()]
        assert w.managed_by == ps.WalletManager(
            tenant_slug="polychallenge", display_name="PolyChallenge"
        )
        assert w.b2b_account is not None and w.b2b_account.stage == "challenge"

    @pytest.mark.parametrize("size", [0, 201, 2.0])
    async def test_page_size_bounds(self, mock: Routes, size: Any) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError):
                client.wallets.list(page_size=size)


class TestOne:
    async def test_get_decodes_money_and_times(self, mock: Routes) -> None:
        mock.get(url("/v1/me/wallets/7"), payload={**WALLET, "new": "field"})
        async with make_client() as client:
            w = await client.wallets.get(7)
        assert w.balance == Decimal("10000.00") and w.kind == "SANDBOX"
        assert w.created_at == datetime(2026, 2, 6, 12, tzinfo=timezone.utc)
        assert w.generation == 1 and w.is_legacy is False

    @pytest.mark.parametrize("bad", [0, -1, "7", True, None])
    async def test_wallet_ids_are_positive_integers(self, mock: Routes, bad: Any) -> None:
        async with make_client() as client:
            for call in (
                client.wallets.get,
                client.wallets.archive,
                client.wallets.reset,
            ):
                with pytest.raises(ps.InvalidArgumentError):
                    await call(bad)
        assert calls(mock) == []

    async def test_not_yours_is_not_found(self, mock: Routes) -> None:
        mock.get(url("/v1/me/wallets/8"), status=404, payload=error_body("WALLET_NOT_FOUND"))
        async with make_client() as client:
            with pytest.raises(ps.NotFoundError) as info:
                await client.wallets.get(8)
        assert info.value.code == "WALLET_NOT_FOUND"


class TestWrites:
    async def test_create_sends_label_and_kind(self, mock: Routes) -> None:
        mock.post(WALLETS, status=201, payload=WALLET, repeat=True)
        async with make_client() as client:
            w = await client.wallets.create("experiments")
            await client.wallets.create("more", kind="sandbox")
            await client.wallets.create("x", kind=ps.WalletKind.SANDBOX)
        bodies = [sent_json(kw) for kw in sent(mock, "/v1/me/wallets", "POST")]
        assert bodies[0] == {"label": "experiments", "kind": "SANDBOX"}
        assert bodies[1]["kind"] == "SANDBOX" and w.id == 7

    @pytest.mark.parametrize(
        ("label", "kind"), [("", "SANDBOX"), ("x" * 256, "SANDBOX"), ("x", "VAULT"), (1, "API")]
    )
    async def test_create_refuses_bad_arguments(self, mock: Routes, label: Any, kind: Any) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError):
                await client.wallets.create(label, kind=kind)
        assert calls(mock) == []

    @pytest.mark.parametrize(
        "failure",
        [
            {"exception": ConnectionResetError("reset after sending")},
            {"status": 503, "payload": error_body("SERVER_BUSY")},
        ],
    )
    async def test_create_and_reset_are_not_repeated_once_they_may_have_arrived(
        self, mock: Routes, failure: dict[str, Any]
    ) -> None:
        mock.post(WALLETS, **failure)
        mock.post(url("/v1/me/wallets/7/reset"), **failure)
        async with make_client() as client:
            with pytest.raises((ps.TransportError, ps.ServerError)):
                await client.wallets.create("x")
            with pytest.raises((ps.TransportError, ps.ServerError)):
                await client.wallets.reset(7)
        assert len(calls(mock)) == 2

    async def test_a_rate_limited_create_is_repeated(self, mock: Routes) -> None:
        mock.post(WALLETS, status=429, headers={"Retry-After": "1"}, payload=error_body("X"))
        mock.post(WALLETS, payload=WALLET)
        async with make_client() as client:
            assert (await client.wallets.create("x")).id == 7
        assert len(calls(mock)) == 2

    async def test_the_plan_cap_is_a_402(self, mock: Routes) -> None:
        body = {**error_body("UPGRADE_REQUIRED"), "feature_key": "wallets.sandbox_baseline"}
        mock.post(WALLETS, status=402, payload=body)
        async with make_client() as client:
            with pytest.raises(ps.APIStatusError) as info:
                await client.wallets.create("x")
        assert info.value.status == 402 and info.value.code == "UPGRADE_REQUIRED"

    async def test_update_renames_and_is_repeated(self, mock: Routes) -> None:
        mock.patch(url("/v1/me/wallets/7"), exception=ConnectionResetError("reset"))
        mock.patch(url("/v1/me/wallets/7"), payload={**WALLET, "label": "new"})
        async with make_client() as client:
            w = await client.wallets.update(7, label="new")
        assert w.label == "new"
        assert [sent_json(kw) for kw in sent(mock, "/v1/me/wallets/7")] == [{"label": "new"}] * 2

    async def test_archive_and_reset(self, mock: Routes) -> None:
        archived = {**WALLET, "status": "ARCHIVED", "archived_at": "2026-02-07T00:00:00Z"}
        successor = {**WALLET, "id": 8, "generation": 2, "parent_wallet_id": 7}
        mock.delete(url("/v1/me/wallets/7"), payload=archived)
        mock.post(url("/v1/me/wallets/7/reset"), payload=successor)
        async with make_client() as client:
            old = await client.wallets.archive(7)
            new = await client.wallets.reset(7)
        assert old.status == "ARCHIVED" and old.archived_at is not None
        assert (new.id, new.generation, new.parent_wallet_id) == (8, 2, 7)
        [reset] = sent(mock, "/v1/me/wallets/7/reset")
        assert reset.get("data") is None
