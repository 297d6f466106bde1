"""``client.keys.ws_token()``: request shape, token aliases, errors and retries."""

from __future__ import annotations

import pytest

import polysim_async as ps

from ._helpers import SECRET, FakeClock, Routes, calls, error_body, make_client, sent_json, url

WS_TOKEN = url("/v1/keys/ws-token")


async def test_mints_a_token_with_an_empty_body(mock: Routes) -> None:
    mock.post(WS_TOKEN, payload={"token": "jwt.abc", "expires_in": 60})
    async with make_client() as client:
        token = await client.keys.ws_token()
    assert token == ps.WsToken(token="jwt.abc", expires_in=60)
    [(method, _, kwargs)] = calls(mock)
    assert method == "POST" and sent_json(kwargs) == {}
    # The live token is never shown.
    for shown in (repr(token), str(token), f"{token}", repr([token])):
        assert "jwt.abc" not in shown and "expires_in=60" in shown
    assert "jwt.abc" not in repr(list(token.__rich_repr__()))


@pytest.mark.parametrize("field", ["token", "ws_token", "access_token", "jwt"])
async def test_reads_every_token_field_the_sdk_accepts(mock: Routes, field: str) -> None:
    mock.post(WS_TOKEN, payload={field: "t0k"})
    async with make_client() as client:
        token = await client.keys.ws_token()
    assert token.token == "t0k" and token.expires_in == 60


async def test_an_answer_without_a_token_is_a_decode_error(mock: Routes) -> None:
    mock.post(WS_TOKEN, payload={"expires_in": 60})
    async with make_client() as client:
        with pytest.raises(ps.DecodeError, match="no token"):
            await client.keys.ws_token()


async def test_a_revoked_key_raises_at_once(mock: Routes) -> None:
    mock.post(WS_TOKEN, status=401, payload=error_body("INVALID_KEY"))
    async with make_client() as client:
        with pytest.raises(ps.AuthenticationError) as info:
            await client.keys.ws_token()
    assert info.value.code == "INVALID_KEY" and SECRET not in str(info.value)
    assert len(calls(mock)) == 1


async def test_minting_is_retried_like_a_read(mock: Routes) -> None:
    clock = FakeClock()
    mock.post(WS_TOKEN, exception=ps.NetworkError("reset"))
    mock.post(WS_TOKEN, status=503, payload=error_body("SERVER_BUSY"))
    mock.post(
        WS_TOKEN, status=429, headers={"Retry-After": "2"}, payload=error_body("RATE_LIMITED")
    )
    mock.post(WS_TOKEN, payload={"token": "late"})
    async with make_client(clock) as client:
        assert (await client.keys.ws_token()).token == "late"
    assert len(calls(mock)) == 4 and 2.0 in clock.sleeps
