"""``client.keys``: list, create, rename, rotate, delete; the new secret never shows itself."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest

import polysim_async as ps

from ._helpers import Routes, calls, error_body, make_client, sent_json, url
from ._trader import params, sent

KEYS = url("/v1/keys")
NEW_SECRET = "ps_live_" + "c0ffee" * 10 + "abcd"
CREATED = {
    "id": 3,
    "raw_key": NEW_SECRET,
    "key_prefix": NEW_SECRET[:16],
    "name": "my-trading-bot",
    "rate_limit_tier": "pro",
    "permissions": ["read", "trade"],
    "created_at": "2026-02-06T12:00:00Z",
}
LISTED = {
    "id": 1,
    "key_prefix": "ps_live_kJ9mNx2p",
    "name": "my-trading-bot",
    "permissions": ["read", "trade"],
    "rate_limit_tier": "pro",
    "is_active": True,
    "created_at": "2026-02-06T12:00:00Z",
    "expires_at": None,
}


class TestSecret:
    async def test_the_new_key_is_returned_once_and_never_shown(
        self, mock: Routes, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="polysim_async")
        mock.post(KEYS, status=201, payload=CREATED)
        async with make_client() as client:
            key = await client.keys.create("my-trading-bot")
        assert key.raw_key.reveal() == NEW_SECRET
        assert key.key_prefix == NEW_SECRET[:16] and key.permissions == ["read", "trade"]
        shown = [repr(key), str(key), f"{key}", repr(key.raw_key), f"{key.raw_key}", caplog.text]
        assert all(NEW_SECRET[16:] not in text and NEW_SECRET not in text for text in shown)
        assert "Secret('ps_live_…')" in repr(key)

    def test_a_secret_compares_and_hashes_by_value(self) -> None:
        assert ps.Secret("a") == ps.Secret("a") != ps.Secret("b")
        assert len({ps.Secret("a"), ps.Secret("a")}) == 1
        assert ps.Secret("a") != "a"
        assert repr(ps.Secret("hunter2")) == "Secret('…')"

    def test_a_new_key_cannot_be_encoded_by_accident(self) -> None:
        key = ps.NewApiKey(id=1, raw_key=ps.Secret(NEW_SECRET))
        with pytest.raises(TypeError):
            msgspec.json.encode(key)

    async def test_an_older_key_field_is_read(self, mock: Routes) -> None:
        mock.post(KEYS, payload={"id": 3, "key": NEW_SECRET})
        async with make_client() as client:
            key = await client.keys.create("bot")
        assert key.raw_key.reveal() == NEW_SECRET

    @pytest.mark.parametrize(
        "body",
        [
            {"id": "three", "raw_key": NEW_SECRET},
            {"raw_key": NEW_SECRET},
            {"id": 3, "raw_key": None},
        ],
    )
    async def test_an_undecodable_answer_never_carries_the_key(
        self, mock: Routes, body: dict[str, Any]
    ) -> None:
        mock.post(KEYS, payload=body)
        async with make_client() as client:
            with pytest.raises(ps.DecodeError) as info:
                await client.keys.create("bot")
        error = info.value
        assert error.body == b"" and error.__cause__ is None and error.__context__ is None
        assert NEW_SECRET not in str(error) and NEW_SECRET not in repr(error)

    async def test_a_deeply_nested_answer_is_a_decode_error_without_the_key(
        self, mock: Routes
    ) -> None:
        # Before: the key's own decoder let msgspec's RecursionError escape.
        nested = b"[" * 5000 + b"]" * 5000
        body = b'{"id": 3, "raw_key": "' + NEW_SECRET.encode() + b'", "extra": ' + nested + b"}"
        mock.post(KEYS, status=201, body=body)
        mock.post(url("/v1/keys/3/rotate"), body=body)
        async with make_client() as client:
            for call in (lambda: client.keys.create("bot"), lambda: client.keys.rotate(3)):
                with pytest.raises(ps.DecodeError, match="nested too deeply") as info:
                    await call()
                error = info.value
                assert error.body == b"" and error.__cause__ is None
                assert error.__context__ is None and NEW_SECRET not in repr(error)


class TestCreateAndRotate:
    async def test_create_body(self, mock: Routes) -> None:
        mock.post(KEYS, payload=CREATED, repeat=True)
        async with make_client() as client:
            await client.keys.create("bot")
            await client.keys.create("bot", tier="free", permissions=["read"])
        bodies = [sent_json(kw) for kw in sent(mock, "/v1/keys", "POST")]
        assert bodies == [{"name": "bot"}, {"name": "bot", "tier": "free", "permissions": ["read"]}]

    @pytest.mark.parametrize(
        "kwargs", [{"name": ""}, {"name": "x", "permissions": "read"}, {"name": "x", "tier": ""}]
    )
    async def test_bad_arguments(self, mock: Routes, kwargs: dict[str, Any]) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError):
                await client.keys.create(**kwargs)
        assert calls(mock) == []

    @pytest.mark.parametrize(
        "failure",
        [
            {"exception": ConnectionResetError("reset after sending")},
            {"status": 502, "payload": error_body("BAD_GATEWAY")},
        ],
    )
    async def test_create_and_rotate_are_not_repeated_once_they_may_have_arrived(
        self, mock: Routes, failure: dict[str, Any]
    ) -> None:
        mock.post(KEYS, **failure)
        mock.post(url("/v1/keys/3/rotate"), **failure)
        async with make_client() as client:
            with pytest.raises((ps.TransportError, ps.ServerError)):
                await client.keys.create("bot")
            with pytest.raises((ps.TransportError, ps.ServerError)):
                await client.keys.rotate(3)
        assert len(calls(mock)) == 2

    async def test_rotate_returns_the_new_secret(self, mock: Routes) -> None:
        mock.post(url("/v1/keys/3/rotate"), payload=CREATED)
        async with make_client() as client:
            key = await client.keys.rotate(3)
        assert key.raw_key.reveal() == NEW_SECRET and NEW_SECRET not in repr(key)

    async def test_free_tier_trade_is_refused(self, mock: Routes) -> None:
        mock.post(
            KEYS,
            status=403,
            headers={"X-Polysim-Code": "TIER_REQUIRES_UPGRADE"},
            payload={"error": "Free keys are read-only"},
        )
        async with make_client() as client:
            with pytest.raises(ps.PermissionDeniedError) as info:
                await client.keys.create("bot", tier="free", permissions=["read", "trade"])
        assert info.value.code == "TIER_REQUIRES_UPGRADE"


class TestListRenameDelete:
    async def test_list_reads_prefixes_only(self, mock: Routes) -> None:
        mock.get(KEYS, payload=[LISTED])
        async with make_client() as client:
            keys = [k async for k in client.keys.list()]
        assert keys == [
            ps.ApiKey(
                id=1,
                key_prefix="ps_live_kJ9mNx2p",
                name="my-trading-bot",
                permissions=["read", "trade"],
                rate_limit_tier="pro",
                is_active=True,
                created_at=keys[0].created_at,
            )
        ]
        assert params(mock, "/v1/keys") == [{"limit": "50", "offset": "0"}]

    async def test_list_unwraps_a_keyed_envelope(self, mock: Routes) -> None:
        mock.get(KEYS, payload={"keys": [LISTED]})
        async with make_client() as client:
            assert [k.id async for k in client.keys.list()] == [1]

    async def test_rename_is_a_patch_and_repeated(self, mock: Routes) -> None:
        mock.patch(url("/v1/keys/1"), status=503, payload=error_body("SERVER_BUSY"))
        mock.patch(url("/v1/keys/1"), payload={**LISTED, "name": "renamed"})
        async with make_client() as client:
            key = await client.keys.rename(1, name="renamed")
        assert key.name == "renamed"
        assert [sent_json(kw) for kw in sent(mock, "/v1/keys/1")] == [{"name": "renamed"}] * 2

    async def test_delete(self, mock: Routes) -> None:
        mock.delete(url("/v1/keys/1"), payload={"message": "Key revoked successfully"})
        async with make_client() as client:
            assert await client.keys.delete(1) is None
        assert len(calls(mock, "DELETE")) == 1

    async def test_a_404_to_a_repeated_delete_means_the_lost_attempt_revoked_it(
        self, mock: Routes
    ) -> None:
        mock.delete(url("/v1/keys/1"), exception=ConnectionResetError("answer lost"))
        mock.delete(url("/v1/keys/1"), status=404, payload=error_body("KEY_NOT_FOUND"))
        async with make_client() as client:
            assert await client.keys.delete(1) is None
        assert len(calls(mock, "DELETE")) == 2

    async def test_a_404_to_the_first_delete_is_raised(self, mock: Routes) -> None:
        mock.delete(url("/v1/keys/1"), status=404, payload=error_body("KEY_NOT_FOUND"))
        async with make_client() as client:
            with pytest.raises(ps.NotFoundError):
                await client.keys.delete(1)

    @pytest.mark.parametrize("bad", [0, "1", None, True])
    async def test_key_ids_are_positive_integers(self, mock: Routes, bad: Any) -> None:
        async with make_client() as client:
            with pytest.raises(ps.InvalidArgumentError):
                await client.keys.delete(bad)
            with pytest.raises(ps.InvalidArgumentError):
                await client.keys.rotate(bad)
            with pytest.raises(ps.InvalidArgumentError):
                await client.keys.rename(bad, name="x")
        assert calls(mock) == []
